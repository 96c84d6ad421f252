"""Where the app may read and write: videos under ``--root`` and its own temporary folder, nothing else."""

from __future__ import annotations

import os
from pathlib import Path

from ..paths import is_inside, safe_file_name
from ..paths import resolve_under_root as _resolve_under_root

__all__ = ["is_inside", "list_root_videos", "resolve_under_root", "safe_file_name"]

#: File suffixes listed in the ``--root`` picker (any file may still be opened by name).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp")
#: At most this many files are listed from ``--root`` (a huge folder must not stall the page).
MAX_LISTED = 2000


def resolve_under_root(root: Path, relative: str) -> Path:
    """The real path of ``relative`` under ``root`` (see :func:`garvideo.paths.resolve_under_root`)."""
    return _resolve_under_root(root, relative, "the app's --root folder")


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
