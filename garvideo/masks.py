"""Binary masks: COCO run-length encoding and tight boxes.

The RLE is the compressed format of the COCO API, encoded by ``pycocotools.mask``
itself (C code, byte-identical to what COCO tools write) and decoded with numpy
(the same pixels, checked against pycocotools in the tests, faster): column-major
runs that start with background, stored as a ``counts`` string. Tracks, benchmark masks and results all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from .errors import InvalidInputError
from .images import MAX_IMAGE_PIXELS


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


def polygon_rle(polygons: Any, height: int, width: int) -> dict[str, Any]:
    """COCO polygons (``[[x1, y1, x2, y2, ...], ...]``, the parts of one object) as one compressed RLE."""
    if (
        not isinstance(polygons, list)
        or not polygons
        or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
    ):
        raise InvalidInputError("a polygon mask must be a list of [x1, y1, x2, y2, x3, y3, ...] lists (3+ points)")
    try:
        parts = coco_mask.frPyObjects([[float(v) for v in p] for p in polygons], int(height), int(width))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"a polygon mask holds something that is not a number: {exc}") from exc
    merged = coco_mask.merge(parts)
    return {"size": [int(height), int(width)], "counts": merged["counts"].decode("ascii")}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list counts) to a bool array.

    The runs must cover the mask exactly (pycocotools would leave the pixels after runs
    that stop short unset). The array is column-major, as pycocotools gives it.
    """
    height, width, runs = _runs(rle)
    # numpy fills each run in one go; pycocotools writes pixel by pixel in a C loop (about 10x slower for a
    # smooth mask of a few hundred runs, 2x for a noisy one), and its check of the runs was a Python loop.
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape((height, width), order="F")


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels, without decoding the mask."""
    return int(_runs(rle)[2][1::2].sum())


def _runs(rle: Mapping[str, Any]) -> tuple[int, int, np.ndarray]:
    """``(height, width, run lengths)``, checked to cover the mask exactly."""
    try:
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError("malformed RLE: expected {'size': [h, w], 'counts': ...}") from exc
    if height < 0 or width < 0:
        raise InvalidInputError(f"malformed RLE: negative size {[height, width]}")
    if height * width > MAX_IMAGE_PIXELS:  # refused before anything the size of it is made
        raise InvalidInputError(
            f"an RLE mask of {width}x{height} pixels is larger than the {MAX_IMAGE_PIXELS:,} (16384x8192) garvideo reads"
        )
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError as exc:
            raise InvalidInputError("malformed RLE: the counts string is not ASCII") from exc
    if isinstance(counts, bytes):
        runs = _string_runs(counts)
    else:
        try:
            runs = np.array([int(c) for c in counts], dtype=np.int64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInputError("malformed RLE: counts must be a string or a list of whole numbers") from exc
    total = int(runs.sum())
    if (runs < 0).any() or total != height * width:
        raise InvalidInputError(
            f"malformed RLE: runs cover {total} pixels, the size {height}x{width} needs {height * width}"
        )
    return height, width, runs


#: Characters a run may take: 12 of 5 bits hold any run a mask of up to 2**59 pixels has.
_MAX_RUN_CHARACTERS = 12
_GROUP_WEIGHTS = np.left_shift(1, 5 * np.arange(_MAX_RUN_CHARACTERS + 1, dtype=np.int64))


def _string_runs(counts: bytes) -> np.ndarray:
    """The run lengths of a COCO counts string, parsed with numpy (no loop over characters).

    The format (maskApi.c, rleFrString): each run in groups of 5 bits, low first, one character
    each (group + 48, plus 32 when another group follows), the last group's 0x10 bit its sign;
    from the fourth run on, each is stored as its difference from the run two before.
    """
    codes = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes.min() < 0 or codes.max() > 63:
        bad = counts[int(np.flatnonzero((codes < 0) | (codes > 63))[0])]
        raise InvalidInputError(f"malformed RLE: the counts string holds {chr(bad)!r}, outside its alphabet")
    ends = np.flatnonzero((codes & 0x20) == 0)  # the last character of each run
    if ends.size == 0 or ends[-1] != codes.size - 1:
        raise InvalidInputError("malformed RLE: the counts string ends inside a run")
    low = codes & 0x1F
    if ends.size == codes.size:  # every run one character (most of a noisy mask's): no groups to join
        lengths = np.ones(ends.size, dtype=np.int64)
        values = low
    else:
        starts = np.concatenate(([0], ends[:-1] + 1))
        lengths = ends - starts + 1
        if lengths.max() > _MAX_RUN_CHARACTERS:
            raise InvalidInputError(f"malformed RLE: a run of {int(lengths.max())} characters is longer than any mask")
        values = low[starts]
        for group in range(1, int(lengths.max())):  # few runs take more than one or two characters
            longer = np.flatnonzero(lengths > group)
            values[longer] += low[starts[longer] + group] << (5 * group)
    # the last group's 0x10 bit makes the run negative (sign-extends it)
    values -= ((codes if ends.size == codes.size else codes[ends]) >> 4 & 1) * _GROUP_WEIGHTS[lengths]
    # Undo the differences: from the fourth run on, each adds the run two before (runs 1 and 2 are whole).
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    return values


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
    """Read a mask image file (see :func:`mask_from_image`); a clear error if it is missing, not a regular
    file (a FIFO is refused, never waited on), not an image, or too large (:func:`garvideo.images.read_image`)."""
    from .images import read_image

    return read_image(path, mask_from_image, "the mask image")
