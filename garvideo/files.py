"""Atomic file writes: a crash never leaves a half-written result behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidInputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is
    atomic on POSIX and Windows. On an exception the temporary file is removed
    and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """True for the leftovers of an interrupted :func:`atomic_path` (safe to delete)."""
    name = Path(path).name
    return name.startswith(".") and ".tmp" in name


def check_writable(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Refuse, before any long work, an output path that cannot be written as a file.

    The path must not be a folder, and its folder must exist or be creatable
    and be writable. Raises :class:`InvalidInputError` with the reason.
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidInputError(f"the {what} path {target} is a folder: give a file name")
    folder = target.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInputError(f"cannot write the {what} {target}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInputError(f"cannot write the {what} {target}: {existing} is not writable")
    return target
