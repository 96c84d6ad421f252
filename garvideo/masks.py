"""Binary masks: COCO run-length encoding and tight boxes.

The RLE here is byte-for-byte the compressed format of the COCO API
(``pycocotools.mask.encode``): column-major runs that start with background,
each count stored as a LEB128-like string with the difference to the count
two places before. Tracks, benchmark masks and results all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InvalidInputError


def _runs_column_major(mask: np.ndarray) -> list[int]:
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return [int(r) for r in runs]


def _counts_to_string(counts: list[int]) -> str:
    out: list[str] = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _string_to_counts(text: str) -> list[int]:
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = 0
        shift = 0
        more = True
        while more:
            if pos >= len(text):
                raise InvalidInputError("malformed RLE: the counts string ends in the middle of a number")
            c = ord(text[pos]) - 48
            if c < 0 or c > 63:
                raise InvalidInputError(f"malformed RLE: unexpected character {text[pos]!r} in counts")
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and (c & 0x10):
                x |= -1 << shift
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean mask as ``{"size": [h, w], "counts": str}``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InvalidInputError(f"a mask must be 2-D (height, width), got shape {mask.shape}")
    height, width = mask.shape
    return {"size": [int(height), int(width)], "counts": _counts_to_string(_runs_column_major(mask))}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list counts) to a bool array."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts_field = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError("malformed RLE: expected {'size': [h, w], 'counts': ...}") from exc
    if isinstance(counts_field, bytes):
        counts_field = counts_field.decode("ascii")
    if isinstance(counts_field, str):
        counts = _string_to_counts(counts_field)
    else:
        counts = [int(c) for c in counts_field]
    if height < 0 or width < 0:
        raise InvalidInputError(f"malformed RLE: negative size {[height, width]}")
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise InvalidInputError(
            f"malformed RLE: runs cover {sum(counts)} pixels, the size {height}x{width} needs {height * width}"
        )
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels, without decoding the mask."""
    counts = rle["counts"]
    counts = (
        _string_to_counts(counts.decode("ascii") if isinstance(counts, bytes) else counts)
        if isinstance(counts, (str, bytes))
        else list(counts)
    )
    return int(sum(counts[1::2]))


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x_min, y_min, x_max, y_max)`` of the set pixels, max inclusive; None if empty."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def mask_from_image(image: Any) -> np.ndarray:
    """A PIL image as a mask: pixels that are not 0 are the region.

    Grey and palette images (DAVIS-style) use the pixel value or palette
    index; colour images count a pixel when any of R, G, B is not 0 (alpha is
    ignored). Every reader of mask files in garvideo goes through here, so a
    PNG means the same region everywhere.
    """
    if image.mode in ("1", "L", "P", "I", "I;16", "F"):
        return np.asarray(image) != 0
    if image.mode == "LA":
        return np.asarray(image)[..., 0] != 0
    return np.asarray(image.convert("RGB")).any(axis=-1)


def read_mask_image(path: Any) -> np.ndarray:
    """Read a mask image file (see :func:`mask_from_image`); a clear error if it is missing or unreadable."""
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            return mask_from_image(image)
    except FileNotFoundError as exc:
        raise InvalidInputError(f"mask image not found: {path}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(f"cannot read the mask image {path}: {exc}") from exc
