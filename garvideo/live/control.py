"""Driving a running session with JSON lines: from a file (or FIFO) being appended to, or a Unix socket.

One JSON object per line:

- a region, in the schema of "Regions as JSON" (``{"name": "cup", "box": [120, 80, 260, 240]}``; ``when`` may be
  left out: a region is marked on the next frame taken): a new region, or a correction of one;
- ``{"remove": "cup"}``;
- ``{"ask": "What is <cup> doing?", "last": 30, "options": ["...", "..."]}`` (``last`` and ``options`` optional);
- ``{"stop": true}``.

A line that cannot be done is an ``error`` event (and, on a socket, the reply); the session goes on. On a socket
every line gets a one-line JSON reply: ``{"ok": true}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import GarvideoError, InvalidInputError
from ..tracking import RegionPrompt
from .session import LiveSession

#: How often a control file is looked at for new lines.
_POLL_S = 0.1
_REGION_KEYS = ("box", "points", "mask", "text")


def run_command(session: LiveSession, line: str) -> None:
    """Do what one control line says; :class:`InvalidInputError` (one line) when it cannot."""
    try:
        command = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"a control line must be one JSON object: {exc.msg} in {line.strip()[:80]!r}") from None
    if not isinstance(command, dict):
        raise InvalidInputError(f"a control line must be a JSON object, got {line.strip()[:80]!r}")
    if any(key in command for key in _REGION_KEYS):
        if "when" not in command and "text" not in command:
            command = {**command, "when": {"frame": 0}}  # not used: a mark goes on the next frame taken
        session.add(RegionPrompt.from_dict(command))
    elif set(command) == {"remove"}:
        session.remove(str(command["remove"]))
    elif "ask" in command and set(command) <= {"ask", "last", "options"}:
        session.ask(command["ask"], **{k: command[k] for k in ("last", "options") if k in command})
    elif command == {"stop": True}:
        threading.Thread(target=session.close, name="garvideo-live-stop", daemon=True).start()
    else:
        raise InvalidInputError(
            f"unknown control line {line.strip()[:80]!r}: give a region (name and box, points, mask or text), "
            f'{{"remove": NAME}}, {{"ask": QUESTION, "last": SECONDS}} or {{"stop": true}}'
        )


class ControlChannel:
    """Reads control lines for ``session`` in a thread of its own until the session stops.

    ``where``: a file or FIFO path (created empty when missing; lines already in it are done first), or
    ``unix:PATH`` for a Unix socket made at PATH (removed again at the end).
    """

    def __init__(self, session: LiveSession, where: str) -> None:
        self.session = session
        self.where = where
        self._closed = threading.Event()
        if where.startswith("unix:"):
            self._path = Path(where.removeprefix("unix:"))
            self._socket = _listen(self._path)
            target = self._serve
        else:
            self._socket = None
            path = Path(where)
            if not path.exists():
                path.touch()
            target = self._follow
        self._thread = threading.Thread(target=target, name="garvideo-live-control", daemon=True)
        self._thread.start()

    def _do(self, line: str) -> dict[str, Any]:
        if not line.strip():
            return {"ok": True}
        try:
            run_command(self.session, line)
        except GarvideoError as exc:
            self.session.problem(f"control: {exc}")
            return {"error": str(exc)}
        return {"ok": True}

    def _follow(self) -> None:
        """A file read as it grows (``tail -f``); a FIFO read as writers come and go."""
        path = Path(self.where)
        fifo = stat.S_ISFIFO(path.stat().st_mode)
        fd = os.open(path, os.O_RDONLY | (os.O_NONBLOCK if fifo else 0))
        with os.fdopen(fd, "rb", buffering=0) as stream:
            pending = b""
            while not self.session.stopped.is_set() and not self._closed.is_set():
                chunk = _read(stream)
                if not chunk:
                    time.sleep(_POLL_S)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._do(line.decode("utf-8", errors="replace"))

    def _serve(self) -> None:
        assert self._socket is not None
        self._socket.settimeout(_POLL_S)
        try:
            while not self.session.stopped.is_set() and not self._closed.is_set():
                try:
                    connection, _ = self._socket.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._closed.is_set():
                        return  # closed meanwhile
                    raise
                threading.Thread(target=self._converse, args=(connection,), daemon=True).start()
        finally:
            self.close()

    def _converse(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rwb", buffering=0) as stream:
            for line in stream:
                reply = self._do(line.decode("utf-8", errors="replace"))
                stream.write((json.dumps(reply) + "\n").encode())

    def close(self) -> None:
        """Stop listening (a socket is removed); idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._socket is not None:
            self._socket.close()
            with contextlib.suppress(OSError):
                self._path.unlink()


def _read(stream: Any) -> bytes:
    try:
        return stream.read(65536) or b""
    except BlockingIOError:
        return b""


def _listen(path: Path) -> socket.socket:
    if path.exists():
        if not stat.S_ISSOCK(path.stat().st_mode):
            raise InvalidInputError(f"cannot make the control socket {path}: a file is there")
        path.unlink()  # a socket left by an earlier run
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
    except OSError as exc:
        server.close()
        raise InvalidInputError(f"cannot make the control socket {path}: {exc.strerror or exc}") from None
    server.listen()
    return server
