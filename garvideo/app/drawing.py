"""Pictures the page shows: a frame with the marks and masks on it (tracked, being tracked, or SAM2's preview of a
mark), thumbnails, data URLs. Colours are the overlay video's, by the region's place among the regions."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..masks import mask_bbox
from ..outputs.drawing import region_colour, shown_entry, stride_reach, tint_mask
from ..tracking import Track
from .regions import Mark

if TYPE_CHECKING:
    from .session import Session

#: Frames are sent to the page at most this wide (coordinates are always in the video's pixels).
VIEW_WIDTH = 960
THUMB_WIDTH = 200
#: Weight of a region's colour inside its mask (the overlay video's default is 0.4).
FILL_OPACITY = 0.45
#: The cross of a background click (not the object), whatever the region's colour.
BACKGROUND_CLICK = (255, 40, 40)


def _scaled(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    if w <= width:
        return image.copy(), 1.0
    scale = width / w
    return cv2.resize(image, (width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def track_masks(tracks: Sequence[Track], index: int) -> dict[str, np.ndarray]:
    """Each track's mask on frame ``index`` as the overlay video shows it (a strided track's nearest entry)."""
    out = {}
    for track in tracks:
        entry = shown_entry(track, index, stride_reach(track))
        if entry is not None and entry.visible:
            out[track.name] = entry.mask()
    return out


def frame_masks(session: Session, index: int, live: bool) -> dict[str, np.ndarray]:
    """The masks to draw on frame ``index``, by region name.

    While a job runs (``live``), the frames it has tracked so far; else the session's tracks, or without
    tracks SAM2's mask of each mark on this frame; and on top, SAM2's mask of the mark not added yet (its
    preview: a correction shows its own mask in place of the track's).
    """
    run = session.live
    if live and run is not None and run.frames:
        return {name: e.mask() for name, e in run.frames.get(index, {}).items() if e.visible}
    marks = [] if session.tracking is not None else list(session.marks)
    out = track_masks(session.tracking.tracks, index) if session.tracking is not None else {}
    for mark in (*marks, session.draft):
        entry = session.previews.get(mark.key) if mark is not None and mark.frame == index else None
        if entry is not None and entry.visible:
            out[mark.name] = entry.mask()
    return out


def colour_of(name: str, names: Sequence[str]) -> tuple[int, int, int]:
    """A region's colour: its place among the regions (as in the overlay video); a new name gets the next one."""
    return region_colour(names.index(name) if name in names else len(names))


def draw_frame(
    image: np.ndarray,
    index: int,
    names: Sequence[str],
    marks: Sequence[Mark] = (),
    masks: Mapping[str, np.ndarray] | None = None,
    draft: Mark | None = None,
    width: int = VIEW_WIDTH,
) -> np.ndarray:
    """``image`` (RGB) scaled to at most ``width`` with each region's mask and the marks on this frame.

    Colours follow ``names`` (the regions in order), as in the overlay video; the draft (a mark not
    added yet) is outlined in white, its mask in the colour it will have.
    """
    canvas, scale = _scaled(image, width)
    thick = max(1, round(canvas.shape[1] / 320))
    for name, mask in (masks or {}).items():
        if scale != 1.0:
            size = (canvas.shape[1], canvas.shape[0])
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        box = mask_bbox(mask)
        if box is not None:  # a thin region can vanish when the frame is scaled down
            tint_mask(canvas, mask, box, colour_of(name, names), FILL_OPACITY, thick)
    shown = [(m, colour_of(m.name, names)) for m in marks]
    if draft is not None:
        shown.append((draft, (255, 255, 255)))
    for mark, colour in shown:
        if mark.frame != index:
            continue
        if mark.found:  # a region named in words: each box the detector found, with its score
            for found in mark.found:
                _draw_box(
                    canvas, found.box, f"{found.name} {found.score:.2f}", colour_of(found.name, names), scale, thick
                )
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
            _draw_click(canvas, (round(x * scale), round(y * scale)), bool(label), colour, thick)
        x, y = prompt.points[0]
        anchor = (round(x * scale) + 8, max(12, round(y * scale) - 8))
    else:
        return
    cv2.putText(canvas, mark.name, anchor, cv2.FONT_HERSHEY_SIMPLEX, 0.45 + 0.1 * thick, colour, thick, cv2.LINE_AA)


def _draw_click(canvas: np.ndarray, centre: tuple[int, int], on_object: bool, colour, thick: int) -> None:
    """An object click is a filled dot ringed in white; a background click a dark ring crossed in red."""
    radius = 4 + thick
    if on_object:
        cv2.circle(canvas, centre, radius, colour, -1, cv2.LINE_AA)
        cv2.circle(canvas, centre, radius + 1, (255, 255, 255), max(1, thick // 2), cv2.LINE_AA)
        return
    x, y = centre
    cv2.circle(canvas, centre, radius + 1, (0, 0, 0), thick + 1, cv2.LINE_AA)
    for dx in (-radius, radius):
        cv2.line(canvas, (x - dx, y - radius), (x + dx, y + radius), BACKGROUND_CLICK, thick + 1, cv2.LINE_AA)


def jpeg_bytes(image: np.ndarray, quality: int = 88) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes an RGB uint8 array
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def data_url(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image)).decode("ascii")
