"""What the overlay draws on one frame: each region's mask, box and name, and the timed captions.

- every region (track ``k`` in the order given gets ``PALETTE[k % len(PALETTE)]``):
  its mask as a semi-transparent fill with a solid outline, its tight box and
  its name on a label in the same colour. A region that is not visible on a
  frame draws nothing there.
- every caption active at the frame's time, in white on a darkened band at the
  bottom, wrapped to the frame width; several active captions are stacked in
  the order given. The band never covers more than a third of the frame: text
  beyond that is cut with an ellipsis. Hershey fonts only draw ASCII, so
  accents are stripped and other characters become ``?``.

Strided tracks (the tracker run with ``stride > 1``) have masks on every
``stride``-th frame only. A frame without an entry shows the nearest tracked
entry if it is at most ``stride // 2`` frames away (the stride taken as the
median gap between the track's frames; :func:`shown_entry`), so every frame
between two tracked ones is covered and nothing is drawn further than half a
stride beyond the tracked range. The web app's frames follow the same rule.

Encoding the frames into a video is :mod:`garvideo.outputs.overlay`'s part.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..tracking import Track, TrackFrame

#: Region colours (RGB) by track order: saturated, distinguishable hues, then repeated.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (30, 144, 255),  # blue
    (255, 140, 0),  # orange
    (50, 205, 50),  # green
    (255, 0, 200),  # magenta
    (255, 215, 0),  # yellow
    (0, 206, 209),  # turquoise
    (230, 25, 75),  # red
    (145, 80, 255),  # violet
    (170, 110, 40),  # brown
    (190, 240, 30),  # lime
)

#: Share of the frame's height the caption band may cover at most.
MAX_CAPTION_SHARE = 1 / 3

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_ELLIPSIS = "..."
_BAND_KEEP = 0.3  # the caption band keeps 30% of the picture's brightness
_TEXT_COLOUR = (255, 255, 255)


def region_colour(position: int) -> tuple[int, int, int]:
    """The RGB colour of the region at ``position`` in the tracks given (the palette repeats)."""
    return PALETTE[position % len(PALETTE)]


def stride_reach(track: Track) -> int:
    """How far (in frames) a tracked entry still shows: half the track's stride, its median gap between frames.

    Half the stride reaches every frame between two tracked ones (ties go to the earlier).
    """
    gaps = np.diff(np.asarray(track.indices, dtype=np.int64))
    return int(np.median(gaps)) // 2 if gaps.size else 0


def shown_entry(track: Track, index: int, reach: int) -> TrackFrame | None:
    """The tracked entry shown on frame ``index``: the nearest one within ``reach`` frames, if visible; else None."""
    if not track.frames:
        return None
    entry = track.nearest_frame(index)
    if abs(entry.index - index) > reach or not entry.visible:
        return None
    return entry


# ---------------------------------------------------------------------- regions


@dataclass(frozen=True)
class FrameStyle:
    """Sizes that follow the frame's size, so an overlay reads the same at 240p and at 4K."""

    width: int
    height: int
    fill_opacity: float
    line: int  # outline and box thickness
    font_scale: float
    font_thickness: int
    label_scale: float

    @classmethod
    def for_frame(cls, width: int, height: int, fill_opacity: float) -> FrameStyle:
        scale = min(2.0, max(0.3, 0.9 * height / 720))
        return cls(
            width=width,
            height=height,
            fill_opacity=fill_opacity,
            line=max(1, round(min(width, height) / 300)),
            font_scale=scale,
            font_thickness=1 if scale < 0.8 else 2 if scale < 1.6 else 3,
            label_scale=0.85 * scale,
        )


class RegionPainter:
    """One track's drawing: which entry shows on a frame, and the mask, box and label."""

    def __init__(self, track: Track, colour: tuple[int, int, int]) -> None:
        if not isinstance(track, Track):
            raise InvalidInputError(f"tracks must be Track objects, got {type(track).__name__}")
        self.track = track
        self.name = track.name
        self.colour = colour
        self.text_colour = (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150 else (255,) * 3
        self.reach = stride_reach(track)
        self.mask_size = track.frames[0].size if track.frames else None
        self._cached: tuple[int, np.ndarray] | None = None  # consecutive frames of a strided track share a mask

    def entry(self, index: int) -> TrackFrame | None:
        """The tracked entry shown on frame ``index``, or None (not tracked near it, or not visible)."""
        return shown_entry(self.track, index, self.reach)

    def mask(self, entry: TrackFrame) -> np.ndarray:
        if self._cached is None or self._cached[0] != entry.index:
            self._cached = (entry.index, entry.mask())
        return self._cached[1]


def tint_mask(
    canvas: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    opacity: float,
    line: int,
) -> None:
    """Blend ``colour`` into ``canvas`` (RGB uint8, in place) inside ``mask`` and outline it ``line`` pixels wide.

    ``box`` is the mask's tight box, maxima inclusive (:func:`garvideo.masks.mask_bbox`): only it is touched.
    """
    x1, y1, x2, y2 = box
    inside = mask[y1 : y2 + 1, x1 : x2 + 1]
    patch = canvas[y1 : y2 + 1, x1 : x2 + 1]
    solid = np.empty_like(patch)
    solid[:] = colour
    # OpenCV blends the box and copies the blend inside the mask (bench/outputs.py: several times numpy's speed).
    blended = cv2.addWeighted(patch, 1.0 - opacity, solid, opacity, 0.0)
    inside_u8 = inside.view(np.uint8)
    cv2.copyTo(blended, inside_u8, patch)  # patch is a view of the canvas: written in place
    contours, _ = cv2.findContours(inside_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x1, y1))
    cv2.drawContours(canvas, contours, -1, colour, line, cv2.LINE_AA)


def _tint(canvas: np.ndarray, region: RegionPainter, entry: TrackFrame, style: FrameStyle) -> None:
    # entry() only returns boxed entries
    tint_mask(canvas, region.mask(entry), entry.box, region.colour, style.fill_opacity, style.line)  # type: ignore[arg-type]


def _outline_box(canvas: np.ndarray, region: RegionPainter, entry: TrackFrame, style: FrameStyle) -> None:
    x1, y1, x2, y2 = entry.box  # type: ignore[misc]
    cv2.rectangle(canvas, (x1, y1), (x2, y2), region.colour, style.line)


def _label(canvas: np.ndarray, region: RegionPainter, entry: TrackFrame, style: FrameStyle) -> None:
    x1, y1, _, _ = entry.box  # type: ignore[misc]
    text = _ascii(region.name)
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, style.label_scale, style.font_thickness)
    pad = max(1, text_h // 4)
    label_w, label_h = text_w + 2 * pad, text_h + baseline + 2 * pad
    # Above the box where there is room, else just inside its top edge.
    top = y1 - label_h if y1 - label_h >= 0 else min(y1, max(0, style.height - label_h))
    left = max(0, min(x1, style.width - label_w))
    cv2.rectangle(canvas, (left, top), (left + label_w - 1, top + label_h - 1), region.colour, cv2.FILLED)
    cv2.putText(
        canvas,
        text,
        (left + pad, top + pad + text_h),
        _FONT,
        style.label_scale,
        region.text_colour,
        style.font_thickness,
        cv2.LINE_AA,
    )


_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
    }
)


def _ascii(text: str) -> str:
    """What a Hershey font can draw: accents stripped, typographic punctuation made plain, the rest as ``?``."""
    plain = unicodedata.normalize("NFKD", text.translate(_PUNCTUATION))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" else " " if c.isspace() else "?" for c in plain)


# ---------------------------------------------------------------------- captions


@dataclass(frozen=True)
class CaptionLayout:
    lines: tuple[str, ...]
    line_height: int
    text_height: int
    pad: int

    @property
    def band_height(self) -> int:
        return len(self.lines) * self.line_height + 2 * self.pad


def _text_width(text: str, style: FrameStyle) -> int:
    return cv2.getTextSize(text, _FONT, style.font_scale, style.font_thickness)[0][0]


def _wrap(text: str, max_width: int, style: FrameStyle) -> list[str]:
    """Greedy word wrap at ``max_width`` pixels; a word wider than a line is broken."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        paragraph = _ascii(paragraph)
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if _text_width(candidate, style) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while len(word) > 1 and _text_width(word, style) > max_width:
                cut = max(
                    1, next((n for n in range(len(word) - 1, 0, -1) if _text_width(word[:n], style) <= max_width), 1)
                )
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        if current:
            lines.append(current)
    return lines


def caption_layout(texts: tuple[str, ...], style: FrameStyle) -> CaptionLayout:
    (_, text_h), baseline = cv2.getTextSize("Ag", _FONT, style.font_scale, style.font_thickness)
    line_height = text_h + baseline + max(1, text_h // 3)
    pad = max(2, text_h // 2)
    margin = max(2, style.width // 50)
    max_width = max(1, style.width - 2 * margin)
    room = int(style.height * MAX_CAPTION_SHARE) - 2 * pad
    wrapped = [lines for text in texts if (lines := _wrap(text, max_width, style))]
    shown = _share_lines([len(lines) for lines in wrapped], max(1, room // line_height))
    out: list[str] = []
    for lines, count in zip(wrapped, shown):
        if count == 0:
            continue
        kept = lines[:count]
        if count < len(lines):
            kept[-1] = _with_ellipsis(kept[-1], max_width, style)
        out.extend(kept)
    if sum(1 for c in shown if c) < len(wrapped) and out and not out[-1].endswith(_ELLIPSIS):
        out[-1] = _with_ellipsis(out[-1], max_width, style)  # whole cues did not fit either
    return CaptionLayout(tuple(out), line_height, text_h, pad)


def _share_lines(wanted: Sequence[int], budget: int) -> list[int]:
    """Lines shown per cue: every cue gets its first line before any gets a second, in order."""
    shown = [0] * len(wanted)
    while budget > 0:
        grew = False
        for k, want in enumerate(wanted):
            if budget > 0 and shown[k] < want and (shown[k] == 0 or all(s > 0 for s in shown)):
                shown[k] += 1
                budget -= 1
                grew = True
        if not grew:
            break
    return shown


def _with_ellipsis(line: str, max_width: int, style: FrameStyle) -> str:
    while line and _text_width(line + _ELLIPSIS, style) > max_width:
        line = line[:-1]
    return line.rstrip() + _ELLIPSIS


def _caption(canvas: np.ndarray, layout: CaptionLayout, style: FrameStyle) -> None:
    if not layout.lines:
        return
    top = max(0, style.height - layout.band_height)
    band = canvas[top:]
    band[:] = (band.astype(np.float32) * _BAND_KEEP).astype(np.uint8)
    margin = max(2, style.width // 50)
    for row, line in enumerate(layout.lines):
        baseline_y = top + layout.pad + row * layout.line_height + layout.text_height
        x = max(margin, (style.width - _text_width(line, style)) // 2)  # centred, as subtitles are
        cv2.putText(
            canvas, line, (x, baseline_y), _FONT, style.font_scale, _TEXT_COLOUR, style.font_thickness, cv2.LINE_AA
        )


# ---------------------------------------------------------------------- one frame


def draw_frame(
    image: np.ndarray, index: int, regions: Sequence[RegionPainter], layout: CaptionLayout | None, style: FrameStyle
) -> np.ndarray:
    canvas = np.array(image, dtype=np.uint8, order="C", copy=True)  # OpenCV draws in place on contiguous arrays
    shown = [(region, entry) for region in regions if (entry := region.entry(index)) is not None]
    # Fills first, then outlines and boxes, then labels: no region's fill covers another's name.
    for region, entry in shown:
        _tint(canvas, region, entry, style)
    for region, entry in shown:
        _outline_box(canvas, region, entry, style)
    for region, entry in shown:
        _label(canvas, region, entry, style)
    if layout is not None:
        _caption(canvas, layout, style)
    return canvas
