"""Benchmark files and items: reading record files, finding a benchmark's data, choosing items, item masks.

Light: scoring, the command line and the checks a run makes before any model is loaded import it
(no torch; numpy only once masks are read).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np


def read_records(path: str | Path, what: str, *, list_only: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of the file at ``path``: a JSON list of objects, or JSON lines (one object per line;
    refused with ``list_only``).

    ``what`` names the file in messages (``"predictions file"``).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no {what} at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not a text file (not UTF-8): is it the {what}?") from None
    if not text.strip():
        raise InvalidInputError(f"{path} is empty")
    try:
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON, neither a JSON list nor JSON lines: {exc}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInputError(f"{path} must hold JSON objects (a JSON list of them, or one per line)")
    if list_only and not text.lstrip().startswith("["):
        raise InvalidInputError(f"{path} is not a {what}: it must hold a JSON list of items, as the benchmark ships it")
    return records


def read_item_list(path: str | Path, annotation_file: str, benchmark: str) -> list[dict[str, Any]]:
    """The items of ``path`` (or of ``path/annotation_file`` when ``path`` is a folder): a non-empty JSON list, as
    every benchmark ships them (an object instead would run as one malformed item and score 0 without a word)."""
    path = Path(path)
    if path.is_dir():
        path = path / annotation_file
    items = read_records(path, f"{benchmark} file", list_only=True)
    if not items:  # would load the model to score 0 items as "accuracy: 0.0"
        raise InvalidInputError(f"{path} holds no items (an empty list): is it the {benchmark} file?")
    return items


def find_data(data: str | Path, annotation_file: str, benchmark: str) -> tuple[Path, Path]:
    """``(folder, annotation file)`` for a benchmark's data folder (or its annotation file).

    The files the items name (images, videos) are relative to the folder.
    """
    data = Path(data)
    if data.is_dir():
        return data, data / annotation_file
    if data.is_file():
        return data.parent, data
    raise InvalidInputError(
        f"no {benchmark} data at {data}: pass the folder holding {annotation_file} and the files its items name"
    )


def limit_items(chosen: Sequence[int], limit: int | None) -> list[int]:
    """The first ``limit`` of the chosen item indices (all of them when ``limit`` is None)."""
    if limit is None:
        return list(chosen)
    if limit < 1:
        raise InvalidInputError(f"limit must be at least 1, got {limit}")
    return list(chosen[:limit])


def _malformed(where: str, exc: Exception) -> InvalidInputError:
    detail = str(exc).removeprefix("malformed RLE: ") or type(exc).__name__
    return InvalidInputError(f"malformed RLE: {where} cannot be decoded: {detail}")


def decode_item_mask(rle: Any, where: str) -> np.ndarray:
    """An item's COCO RLE mask decoded; a malformed one says ``where`` it is (``"the mask of <Prompt1>"``)."""
    from ..masks import decode_rle

    try:
        return decode_rle(rle)
    except InvalidInputError as exc:
        raise _malformed(where, exc) from None


def item_mask_area(rle: Any, where: str) -> int:
    """Foreground pixels of an item's COCO RLE mask, without decoding it (a malformed one says where it is)."""
    from ..masks import rle_area

    try:
        return rle_area(rle)
    except (InvalidInputError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise _malformed(where, exc) from None
