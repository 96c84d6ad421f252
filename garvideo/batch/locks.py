"""Per-item locks, so several batch runs on one output folder share the work instead of repeating it.

Before computing an item a run creates ``OUT/<key>.lock`` exclusively
(``O_CREAT | O_EXCL``, atomic on local and NFS file systems), writes its
machine and process id into it, and removes it when the item is finished
(done or failed). Another run that finds the lock leaves the item alone and
comes back to it later. A lock is taken over when its owner is gone: on the
same machine when its process no longer runs; from another machine (a shared
folder) when it has not been refreshed for :data:`STALE_AFTER_S` (the owner
touches its lock every :data:`REFRESH_S` while it works).

Correctness never depends on the locks: results are written atomically, so at
worst (a lock broken in a race) an item is computed twice, never half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import host_tag, process_alive

#: How often a run refreshes the lock of the item it is computing.
REFRESH_S = 60.0
#: A lock of another machine not refreshed for this long is taken over.
STALE_AFTER_S = 10 * REFRESH_S
#: A lock whose owner has not finished writing its name into it yet (or never will): grace period.
UNREADABLE_GRACE_S = 30.0


def lock_path(out_dir: Path, key: str) -> Path:
    return out_dir / f"{key}.lock"


def _owner(path: Path) -> dict[str, Any] | None:
    """The owner written in a lock, or None while it is unreadable (being written, or gone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _is_stale(path: Path, owner: dict[str, Any] | None) -> bool:
    age = _age(path)
    if age is None:  # removed meanwhile: free, try again
        return True
    if owner is None:
        return age > UNREADABLE_GRACE_S
    pid = owner.get("pid")
    if owner.get("host_tag") == host_tag() and isinstance(pid, int):
        return not process_alive(pid)
    return age > STALE_AFTER_S


def _break(path: Path, judged: dict[str, Any] | None) -> None:
    """Remove a stale lock without removing a fresh one that replaced it meanwhile.

    The lock is renamed away first (only one taker can rename a given file);
    if what was renamed is not the lock judged stale, it is put back.
    """
    grave = path.with_name(f"{path.name}.broken-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return
    try:
        if _owner(grave) != judged:
            with contextlib.suppress(FileExistsError, OSError):
                os.link(grave, path)  # a fresh lock: give it back (unless yet another run holds one now)
    finally:
        with contextlib.suppress(FileNotFoundError):
            grave.unlink()


@dataclass
class ItemLock:
    """A held lock; :meth:`release` it when the item is finished (done or failed)."""

    path: Path
    owner: dict[str, Any]

    @classmethod
    def acquire(cls, path: str | os.PathLike[str]) -> ItemLock | None:
        """The lock at ``path`` for this process, or None while another live run holds it. ``OSError`` when the
        folder refuses the lock (read-only, full): then no lock file is left behind."""
        path = Path(path)
        owner = {
            "host": socket.gethostname(),
            "host_tag": host_tag(),
            "pid": os.getpid(),
            "since": time.time(),
            "token": secrets.token_hex(8),
        }
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                judged = _owner(path)
                if not _is_stale(path, judged):
                    return None
                _break(path, judged)
                continue
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(owner, handle)
            except BaseException:
                # An empty lock (a full disk) would read as one being written: every run would wait out
                # UNREADABLE_GRACE_S for it. Nobody holds it, so it goes.
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
            return cls(path, owner)
        return None

    @classmethod
    def wait(cls, path: str | os.PathLike[str], poll_s: float = 0.05) -> ItemLock:
        """Hold the lock at ``path``, waiting while another run holds it (for locks held a moment)."""
        while True:
            lock = cls.acquire(path)
            if lock is not None:
                return lock
            time.sleep(poll_s)

    def release(self) -> None:
        """Remove the lock if it is still this one (a run that took it over keeps its own)."""
        if _owner(self.path) == self.owner:
            # A folder gone read-only or away leaves the lock: stale once this process ends, it is taken over then.
            with contextlib.suppress(OSError):
                self.path.unlink()

    @contextlib.contextmanager
    def kept_fresh(self, every_s: float = REFRESH_S) -> Iterator[None]:
        """Refresh the lock's time every ``every_s`` seconds while the block runs (long items on shared folders)."""
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(every_s):
                with contextlib.suppress(OSError):
                    os.utime(self.path)

        thread = threading.Thread(target=refresh, name=f"refresh {self.path.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def remove_stale_locks(out_dir: Path) -> None:
    """Clear the locks runs left behind when killed (live runs' locks stay)."""
    for path in out_dir.iterdir():
        if path.name.endswith(".lock"):
            judged = _owner(path)
            if _is_stale(path, judged):
                _break(path, judged)
        elif ".lock.broken-" in path.name and (_age(path) or 0.0) > UNREADABLE_GRACE_S:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
