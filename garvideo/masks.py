"""Binary masks: COCO run-length encoding and tight boxes.

The RLE is the compressed format of the COCO API, encoded and decoded by
``pycocotools.mask`` itself (C code, byte-identical to what COCO tools write
and read): column-major runs that start with background, stored as a
``counts`` string. Tracks, benchmark masks and results all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from .errors import InvalidInputError


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean mask as ``{"size": [h, w], "counts": str}``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InvalidInputError(f"a mask must be 2-D (height, width), got shape {mask.shape}")
    import cv2  # here, not at the top: the command line imports this module and need not load OpenCV

    height, width = mask.shape
    pixels = np.ascontiguousarray(mask if mask.dtype == bool else mask != 0).view(np.uint8)
    # pycocotools reads column by column; OpenCV's transpose gives that layout 20-80x faster than numpy's copy.
    column_major = cv2.transpose(pixels).T if pixels.size else np.asfortranarray(pixels)
    rle = coco_mask.encode(column_major)
    return {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list counts) to a bool array.

    The runs must cover the mask exactly: pycocotools refuses runs that go
    past it but leaves the pixels after runs that stop short of it unset
    (whatever was in memory), so the string's runs are summed first.
    """
    height, width, compressed = _compressed(rle)
    try:
        mask = coco_mask.decode(compressed)
    except ValueError as exc:  # runs beyond the mask, or a character outside the alphabet
        raise InvalidInputError(f"malformed RLE: {exc} for a {height}x{width} mask") from exc
    return mask.view(bool)  # pycocotools writes exactly 0 and 1


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels, without decoding the mask."""
    return int(coco_mask.area(_compressed(rle)[2]))


def _compressed(rle: Mapping[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """``(height, width, pycocotools' RLE with bytes counts)``; list counts are checked and compressed."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError("malformed RLE: expected {'size': [h, w], 'counts': ...}") from exc
    if height < 0 or width < 0:
        raise InvalidInputError(f"malformed RLE: negative size {[height, width]}")
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError as exc:
            raise InvalidInputError("malformed RLE: the counts string is not ASCII") from exc
    if isinstance(counts, bytes):
        _check_total(_string_runs(counts), height, width)
        return height, width, {"size": [height, width], "counts": counts}
    try:
        runs = [int(c) for c in counts]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("malformed RLE: counts must be a string or a list of whole numbers") from exc
    _check_total(runs, height, width)
    return height, width, coco_mask.frPyObjects({"size": [height, width], "counts": runs}, height, width)


def _string_runs(counts: bytes) -> list[int]:
    """The run lengths of a COCO counts string (its format: 5 bits a character, later runs as
    differences from the run two before). Only summed, to check the runs cover the mask; pycocotools
    decodes the pixels."""
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value = shift = 0
        more = True
        while more:
            if position >= len(counts):
                raise InvalidInputError("malformed RLE: the counts string ends inside a run")
            code = counts[position] - 48
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def _check_total(runs: list[int], height: int, width: int) -> None:
    if any(c < 0 for c in runs) or sum(runs) != height * width:
        raise InvalidInputError(
            f"malformed RLE: runs cover {sum(runs)} pixels, the size {height}x{width} needs {height * width}"
        )


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
