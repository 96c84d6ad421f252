"""Atomic file writes: a crash never leaves a half-written result behind.

Results get the mode any editor would give them (``0666`` less the umask), not
the private mode of a temporary file. Output paths are proven writable before
long work starts (:func:`check_writable`), and a write that still fails at the
end saves the result elsewhere rather than losing it (:func:`write_or_rescue`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .errors import GarvideoError, InvalidInputError
from .inputs import file_kind


class OutputNotWrittenError(GarvideoError):
    """An output could not be written where asked (it was saved elsewhere if at all possible: the message says where)."""


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (other threads may be creating files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@cache
def host_tag() -> str:
    """A short, file-name-safe tag of this machine: temporaries and locks say which machine made them."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (a process of another user counts as running, a zombie not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # Linux: a zombie (exited, not yet reaped by its parent) no longer runs.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is
    atomic on POSIX and Windows. On an exception the temporary file is removed
    and ``path`` is left as it was. Its name carries this machine's tag and
    process id, so a cleaner can tell an abandoned one from one being written
    (:func:`is_abandoned_temporary`). A symbolic link is written through: its
    target is replaced, atomically, and the link stays (:func:`output_target`).
    ``exclusive``: ``path`` is created, never replaced (``FileExistsError`` if it exists; see
    :func:`create_exclusively`).
    """
    target = output_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(**_temporary_name(target))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private (0600); a result should be readable like any other file.
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if exclusive:
            _link_new(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _link_new(tmp: Path, target: Path) -> None:
    """``tmp`` becomes ``target``, which must not exist (``FileExistsError``): a hard link is made, so the file
    appears whole; on a file system without hard links it is created exclusively, then filled."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        with open(target, "xb") as handle:
            handle.write(tmp.read_bytes())
    tmp.unlink()


def create_exclusively(path: str | os.PathLike[str], text: str) -> bool:
    """Write ``text`` to a new file at ``path`` (whole or not at all); False, leaving it alone, when ``path`` exists:
    of several processes creating one file, exactly one does."""
    try:
        with atomic_path(path, exclusive=True) as tmp:
            tmp.write_bytes(text.encode("utf-8"))
    except FileExistsError:
        return False
    return True


#: The longest file name most file systems take (bytes); temporary names are cut to fit.
_NAME_MAX = 255
#: A suffix longer than this is no file type: temporaries then carry none.
_SUFFIX_MAX = 16


def _temporary_name(target: Path) -> dict[str, Any]:
    """``mkstemp``'s arguments for a temporary of ``target``: ``.<name>.<host>-<pid>.<random>.tmp<suffix>``.

    The name part is shortened so the whole fits in :data:`_NAME_MAX` bytes whenever ``target``'s own name does
    (the suffix is kept: encoders choose the container by it).
    """
    suffix = ".tmp" + (target.suffix if len(target.suffix.encode()) <= _SUFFIX_MAX else "")
    owner = f".{host_tag()}-{os.getpid()}."
    room = _NAME_MAX - len(suffix) - len(owner) - 1 - 8  # the leading dot, mkstemp's 8 random characters
    name = target.name.encode()[: max(room, 1)].decode(errors="ignore") or "x"
    return {"prefix": f".{name}{owner}", "suffix": suffix, "dir": target.parent}


def output_target(path: str | os.PathLike[str]) -> Path:
    """The file an output written to ``path`` replaces: ``path`` itself, or the file a symbolic link names.

    Outputs are regular files only: an existing device, FIFO or socket (``/dev/null``, ``/proc/self/fd/1``)
    raises :class:`OutputNotRegularError` (an ``OSError``), so nothing ever replaces one.
    """
    target = Path(path)
    try:
        info = os.stat(target)  # follows links: what a write would reach
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        raise OutputNotRegularError(errno.EPERM, f"{target} is {file_kind(info.st_mode)}, not a regular file")
    return Path(os.path.realpath(target)) if target.is_symlink() else target


class OutputNotRegularError(OSError):
    """An output path names a device, FIFO or socket, which garvideo never replaces."""


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def json_text(obj: Any, indent: int | None = 2) -> str:
    """The text :func:`atomic_write_json` writes for ``obj`` (a service answers with the same bytes)."""
    return json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json_text(obj, indent))


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """True for the temporary files of :func:`atomic_path` (finished or not)."""
    name = Path(path).name
    return name.startswith(".") and ".tmp" in name


#: A temporary of another machine untouched this long is taken as abandoned (no write lasts that long).
ABANDONED_AFTER_S = 6 * 3600
# ".<name>.<host tag>-<pid>.<random>.tmp<suffix>" (mkstemp's random part has no dots)
_TEMPORARY_OWNER = re.compile(r"\.([0-9a-f]{8})-(\d+)\.[^.]+\.tmp")


def is_abandoned_temporary(path: str | os.PathLike[str]) -> bool:
    """True for a temporary of :func:`atomic_path` that no running process will finish (safe to delete).

    One of this machine is abandoned when its process is gone; one of another
    machine (a shared folder) when untouched for :data:`ABANDONED_AFTER_S`.
    """
    path = Path(path)
    if not is_temporary(path):
        return False
    owner = _TEMPORARY_OWNER.search(path.name)
    if owner is not None and owner.group(1) == host_tag():
        return not process_alive(int(owner.group(2)))
    try:
        return time.time() - path.stat().st_mtime > ABANDONED_AFTER_S
    except FileNotFoundError:
        return False


def check_writable(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Prove, before any long work, that a file can be written at ``path``.

    The path must not be a folder nor a device, FIFO or socket (a symbolic link is checked where it points:
    that is what is written); a temporary file is created (with any missing folders) and removed again in its
    folder, so permissions, read-only and special file systems (``/proc``), names too long are all found out
    now. Raises :class:`InvalidInputError` with the reason.
    """
    given = Path(path)
    try:
        target = output_target(given)
        if target.is_dir():
            raise InvalidInputError(f"the {what} path {given} is a folder: give a file name")
        _probe_folder(target, what, given)
    except OSError as exc:
        raise InvalidInputError(f"cannot write the {what} {_shown(given)}: {_reason(exc)}") from None
    return given


def _probe_folder(target: Path, what: str, given: Path) -> None:
    """Create ``target``'s missing folders and a temporary file there, then remove them all again."""
    folder = target.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInputError(f"cannot write the {what} {given}: {existing} is a file, not a folder")
    created: list[Path] = []
    try:
        for missing in reversed([folder, *folder.parents][: len(folder.relative_to(existing).parts)]):
            missing.mkdir()
            created.append(missing)
        fd, probe = tempfile.mkstemp(**_temporary_name(target))
        os.close(fd)
        os.unlink(probe)
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return f"the name is too long for the file system (at most {_NAME_MAX} bytes a name)"
    return exc.strerror or str(exc)


def _shown(path: Path, limit: int = 120) -> str:
    """A path for a one-line message: a very long one is cut in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def _identity(path: str | os.PathLike[str]) -> tuple[Any, ...]:
    """What makes two paths one file: device and inode when it exists (hard links, ``..``, symbolic links),
    else the fully resolved path."""
    try:
        info = os.stat(path)
        return ("file", info.st_dev, info.st_ino)
    except (OSError, ValueError):
        return ("path", os.path.realpath(path))


def check_distinct(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> None:
    """Refuse an output that is an input or another output (``{label: path}``; None and ``'-'`` are skipped).

    Paths are compared as files: a symbolic link, a hard link or a ``..`` that reaches the same file counts.
    Raises :class:`InvalidInputError` naming both, before any work.
    """
    seen: dict[tuple[Any, ...], str] = {}
    inputs = inputs or {}
    for label, path in inputs.items():
        if path is not None and path != "-":
            seen.setdefault(_identity(path), label)
    for label, path in outputs.items():
        if path is None or path == "-":
            continue
        key = _identity(path)
        if key in seen:
            other = seen[key]
            if other in inputs:
                raise InvalidInputError(
                    f"{label} {_shown(Path(path))} is {other} itself: write the output somewhere else"
                )
            raise InvalidInputError(
                f"{other} and {label} both name {_shown(Path(path))}: give each output a file of its own"
            )
        seen[key] = label


def _is_write_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or isinstance(exc.__cause__, OSError)


def _rescue_places(target: Path) -> Iterator[Path]:
    """Where to save an output that cannot be written where asked: beside it, the working folder, the temp folder."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stamped = f"{target.stem}.saved-{stamp}{target.suffix}"
    yield target.with_name(stamped)
    here = Path.cwd()
    yield here / target.name if not (here / target.name).exists() else here / stamped
    yield Path(tempfile.gettempdir()) / stamped


def write_or_rescue(path: str | os.PathLike[str], write: Callable[[Path], Any], what: str = "result") -> str | None:
    """Run ``write(path)``; if the file system refuses, write the output elsewhere instead of losing it.

    Returns None when the output is where asked, else one sentence saying why
    it is not and where it was saved (tried: beside it, the working folder, the
    temporary folder). Errors that are not about writing propagate.
    """
    target = Path(path)
    try:
        write(target)
        return None
    except Exception as exc:
        if not _is_write_failure(exc):
            raise
        cause = exc if isinstance(exc, OSError) else exc.__cause__
        reason = getattr(cause, "strerror", None) or str(cause)
    for place in _rescue_places(target):
        try:
            write(place)
        except Exception as exc:
            if not _is_write_failure(exc):
                raise
            continue
        return f"cannot write the {what} {target} ({reason}): saved it as {place} instead"
    return f"cannot write the {what} {target} ({reason}), nor anywhere else: the {what} is lost"
