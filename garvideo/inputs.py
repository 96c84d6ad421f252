"""Opening the files users hand in (videos, mask images, frames, checkpoints): regular files only.

A path may name something that is not a file: a FIFO (opening it blocks until a writer comes,
forever if none does), a device, a socket, a folder, a symbolic link loop or a link to nothing.
These are refused with one line that says what the path is, without blocking and without
following links forever: the file is opened non-blocking, then checked to be a regular file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import GarvideoError, InvalidInputError

#: What a path that is not a regular file is, by its ``stat`` mode (and why reading it is a problem).
_KINDS = (
    (stat.S_ISDIR, "a folder", ""),
    (stat.S_ISFIFO, "a FIFO (named pipe)", ": reading it would wait for a writer"),
    (stat.S_ISSOCK, "a socket", ""),
    (stat.S_ISCHR, "a device", ""),
    (stat.S_ISBLK, "a device", ""),
)


def file_kind(mode: int) -> str | None:
    """What a ``stat`` mode that is not a regular file's names (``"a FIFO (named pipe)"``), None for a regular file;
    inputs are refused so, and outputs (:func:`garvideo.files.output_target`) too."""
    for test, kind, _ in _KINDS:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def _kind_problem(mode: int) -> str | None:
    for test, kind, why in _KINDS:
        if test(mode):
            return f"it is {kind}, not a file{why}"
    return None if stat.S_ISREG(mode) else "it is not a regular file"


def _os_problem(path: Path, exc: OSError) -> str:
    """What an ``OSError`` from opening or stat-ing ``path`` means for the user."""
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link loop (links that lead back to themselves)"
    if exc.errno == errno.ENOENT:
        if path.is_symlink():
            return f"no such file (it is a symbolic link to {os.readlink(path)!r}, which does not exist)"
        return "no such file"
    if exc.errno == errno.EACCES:
        return "no permission to read it"
    if exc.errno == errno.ENXIO:
        return "it is a socket or device, not a file"
    if exc.errno == errno.ENOTDIR:
        return "no such file (a part of the path is not a folder)"
    return exc.strerror or str(exc)


def regular_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a regular file a program can read (``"it is a FIFO ..."``), or None if it is one.

    Never blocks (nothing is opened) and follows links only as far as the system does.
    """
    path = Path(path)
    try:
        return _kind_problem(os.stat(path).st_mode)
    except OSError as exc:
        return _os_problem(path, exc)
    except ValueError:  # an embedded NUL
        return "is not a valid path"


@contextmanager
def open_regular_file(
    path: str | os.PathLike[str], what: str = "file", error: type[GarvideoError] = InvalidInputError
) -> Iterator[BinaryIO]:
    """``path`` opened for binary reading, or ``error`` (``"cannot read WHAT PATH: PROBLEM"``) if it is not a
    readable regular file. Opened non-blocking and checked on the open descriptor, so a FIFO never blocks and
    what was checked is what is read."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {_os_problem(path, exc)}") from None
    except ValueError:
        raise error(f"cannot read {what} {path!s:.200}: not a valid path") from None
    try:
        problem = _kind_problem(os.fstat(descriptor).st_mode)
    except OSError as exc:
        os.close(descriptor)
        raise error(f"cannot read {what} {path}: {_os_problem(path, exc)}") from None
    if problem is not None:
        os.close(descriptor)
        raise error(f"cannot read {what} {path}: {problem}")
    with os.fdopen(descriptor, "rb") as handle:
        yield handle
