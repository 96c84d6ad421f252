"""Confinement of file access to one folder (``--root`` of the web app and the service)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .errors import InvalidInputError


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it (both already resolved)."""
    return path == folder or folder in path.parents


def resolve_under_root(root: Path, relative: str, where: str = "the --root folder") -> Path:
    """The real path of ``relative`` under ``root``; :class:`InvalidInputError` for anything that leaves it.

    Refused: absolute paths, ``..`` anywhere, and paths that resolve outside ``root`` (a symlink
    pointing out of it, at any depth). ``root`` must be resolved already. ``where`` names the folder
    in the messages (``"the app's --root folder"``).
    """
    text = (relative or "").strip()
    if not text:
        raise InvalidInputError(f"choose a video under {where}")
    parts = PurePosixPath(text.replace("\\", "/"))
    if parts.is_absolute() or os.path.isabs(text):
        raise InvalidInputError(f"{text!r} is an absolute path: give a path relative to {where}")
    if ".." in parts.parts:
        raise InvalidInputError(f"{text!r} leaves {where} ('..' is not allowed)")
    resolved = (root / Path(*parts.parts)).resolve()
    if not is_inside(resolved, root):
        raise InvalidInputError(f"{text!r} leads outside {where} (through a symbolic link)")
    if not resolved.exists():
        raise InvalidInputError(f"there is no {text!r} under {where}")
    return resolved


def safe_file_name(name: str, default: str = "video") -> str:
    """A plain file name from an uploaded name: no folders, no leading dots, no odd characters."""
    base = Path(name.replace("\\", "/")).name
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".")
    return cleaned[:120] or default
