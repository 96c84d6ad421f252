"""Pictures the page shows: a frame with the marks and tracked masks on it, thumbnails, data URLs."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np

from ..masks import mask_bbox
from ..outputs.drawing import region_colour, shown_entry, stride_reach, tint_mask
from ..tracking import Track
from .regions import Mark

#: Frames are sent to the page at most this wide (coordinates are always in the video's pixels).
VIEW_WIDTH = 960
THUMB_WIDTH = 200
#: Weight of a region's colour inside its mask (the overlay video's default is 0.4).
FILL_OPACITY = 0.45


def _scaled(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    if w <= width:
        return image.copy(), 1.0
    scale = width / w
    return cv2.resize(image, (width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def _mask_on(track: Track, index: int) -> np.ndarray | None:
    """The mask the overlay video shows on frame ``index`` (a strided track's nearest entry), or None."""
    entry = shown_entry(track, index, stride_reach(track))
    return None if entry is None else entry.mask()


def draw_frame(
    image: np.ndarray,
    index: int,
    names: Sequence[str],
    marks: Sequence[Mark] = (),
    tracks: Sequence[Track] = (),
    draft: Mark | None = None,
    width: int = VIEW_WIDTH,
) -> np.ndarray:
    """``image`` (RGB) scaled to at most ``width`` with each track's mask and the marks on this frame.

    Colours follow ``names`` (the regions in order), as in the overlay video; the draft (a mark not
    added yet) is white.
    """
    canvas, scale = _scaled(image, width)
    thick = max(1, round(canvas.shape[1] / 320))
    for track in tracks:
        mask = _mask_on(track, index)
        if mask is None:
            continue
        colour = region_colour(names.index(track.name) if track.name in names else 0)
        if scale != 1.0:
            mask = (
                cv2.resize(mask.astype(np.uint8), (canvas.shape[1], canvas.shape[0]), interpolation=cv2.INTER_NEAREST)
                > 0
            )
        box = mask_bbox(mask)
        if box is not None:  # a thin region can vanish when the frame is scaled down
            tint_mask(canvas, mask, box, colour, FILL_OPACITY, thick)
    shown = [(m, region_colour(names.index(m.name)) if m.name in names else (255, 255, 255)) for m in marks]
    if draft is not None:
        shown.append((draft, (255, 255, 255)))
    for mark, colour in shown:
        if mark.frame != index:
            continue
        if mark.found:  # a region named in words: each box the detector found, with its score
            for found in mark.found:
                colour = region_colour(names.index(found.name)) if found.name in names else (255, 255, 255)
                _draw_box(canvas, found.box, f"{found.name} {found.score:.2f}", colour, scale, thick)
            continue
        _draw_mark(canvas, mark, colour, scale, thick)
    return canvas


def _draw_box(canvas: np.ndarray, box, label: str, colour: tuple[int, int, int], scale: float, thick: int) -> None:
    x1, y1, x2, y2 = (round(v * scale) for v in box)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thick + 1)
    cv2.putText(
        canvas, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 + 0.1 * thick, colour, thick, cv2.LINE_AA
    )


def _draw_mark(canvas: np.ndarray, mark: Mark, colour: tuple[int, int, int], scale: float, thick: int) -> None:
    prompt = mark.prompt
    if prompt.box is not None:
        _draw_box(canvas, prompt.box, mark.name, colour, scale, thick)
        return
    if prompt.points is not None:
        for (x, y), label in zip(prompt.points, prompt.labels or ()):
            centre = (round(x * scale), round(y * scale))
            cv2.circle(canvas, centre, 4 + thick, colour, -1 if label else thick + 1)
            cv2.circle(canvas, centre, 5 + thick, (0, 0, 0), 1)
        x, y = prompt.points[0]
        anchor = (round(x * scale) + 8, max(12, round(y * scale) - 8))
    else:
        return
    cv2.putText(canvas, mark.name, anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.45 + 0.1 * thick, colour, thick, cv2.LINE_AA)


def jpeg_bytes(image: np.ndarray, quality: int = 88) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes an RGB uint8 array
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def data_url(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image)).decode("ascii")
