"""Reading a benchmark's item list: a JSON list of objects, given as a file or the folder holding it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError


def read_item_list(path: str | Path, annotation_file: str, benchmark: str) -> list[dict[str, Any]]:
    """The items of ``path`` (or of ``path/annotation_file`` when ``path`` is a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / annotation_file
    if not path.is_file():
        raise InvalidInputError(f"no {benchmark} file at {path}")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise InvalidInputError(f"{path} must hold a JSON list of items")
    return items
