"""Where the app may read and write: videos under ``--root`` and its own temporary folder, nothing else."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import InvalidInputError

#: File suffixes listed in the ``--root`` picker (any file may still be opened by name).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp")
#: At most this many files are listed from ``--root`` (a huge folder must not stall the page).
MAX_LISTED = 2000


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it (both already resolved)."""
    return path == folder or folder in path.parents


def resolve_under_root(root: Path, relative: str) -> Path:
    """The real path of ``relative`` under ``root``; :class:`InvalidInputError` for anything that leaves it.

    Refused: absolute paths, ``..`` anywhere, and paths that resolve outside ``root`` (a symlink
    pointing out of it, at any depth). ``root`` must be resolved already.
    """
    text = (relative or "").strip()
    if not text:
        raise InvalidInputError("choose a video under the app's --root folder")
    parts = PurePosixPath(text.replace("\\", "/"))
    if parts.is_absolute() or os.path.isabs(text):
        raise InvalidInputError(f"{text!r} is an absolute path: give a path relative to the app's --root folder")
    if ".." in parts.parts:
        raise InvalidInputError(f"{text!r} leaves the app's --root folder ('..' is not allowed)")
    resolved = (root / Path(*parts.parts)).resolve()
    if not is_inside(resolved, root):
        raise InvalidInputError(f"{text!r} leads outside the app's --root folder (through a symbolic link)")
    if not resolved.exists():
        raise InvalidInputError(f"there is no {text!r} under the app's --root folder")
    return resolved


def list_root_videos(root: Path) -> list[str]:
    """Video files under ``root`` (relative POSIX paths, sorted), never following links out of it."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(VIDEO_SUFFIXES):
                continue
            path = Path(folder) / name
            if not is_inside(path.resolve(), root):
                continue  # a link out of the root is not offered (and refused if typed)
            found.append(path.relative_to(root).as_posix())
            if len(found) >= MAX_LISTED:
                return sorted(found)
    return sorted(found)


def safe_file_name(name: str, default: str = "video") -> str:
    """A plain file name from an uploaded name: no folders, no leading dots, no odd characters."""
    base = Path(name.replace("\\", "/")).name
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".")
    return cleaned[:120] or default
