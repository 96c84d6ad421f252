"""Overlay videos: each region's mask, box and name drawn in its own colour, with timed captions.

>>> from garvideo.outputs.overlay import render_overlay
>>> from garvideo.outputs.subtitles import Cue
>>> render_overlay("clip.mp4", "clip.overlay.mp4", result.tracks,
...                [Cue(w.start, w.end, f"dog: {w.description}") for w in result.region("dog").windows if w.visible])

What is drawn on each frame:

- every region (track ``k`` in the order given gets ``PALETTE[k % len(PALETTE)]``):
  its mask as a semi-transparent fill with a solid outline, its tight box and
  its name on a label in the same colour. A region that is not visible on a
  frame draws nothing there.
- every caption (a :class:`~garvideo.outputs.subtitles.Cue`) active at the
  frame's time (``start <= t < end``), in white on a darkened band at the
  bottom, wrapped to the frame width; several active cues are stacked in
  order of start. The band never covers more than a third of the frame: text
  beyond that is cut with an ellipsis. Hershey fonts only draw ASCII, so
  accents are stripped and other characters become ``?``.

Strided tracks (the tracker run with ``stride > 1``) have masks on every
``stride``-th frame only. A frame without an entry shows the nearest tracked
entry if it is at most ``stride // 2`` frames away (the stride taken as the
median gap between the track's frames), so every frame between two tracked
ones is covered and nothing is drawn further than half a stride beyond the
tracked range.

The output keeps the input's displayed size (rotation applied), frame count
and presentation timestamps (a variable frame rate stays variable). It is
H.264 (libx264) when this PyAV build has it, MPEG-4 Part 2 otherwise; H.264
uses yuv420p for even sizes (plays everywhere) and yuv444p for odd ones,
since 4:2:0 cannot hold an odd width or height (FFmpeg-based players and
garvideo read it; some browsers do not play 4:4:4 H.264). Frames are
streamed: one decoded frame is held at a time, whatever the video's length.
The file is written atomically (:func:`garvideo.files.atomic_path`): an
error or interrupt mid-render leaves no partial file and keeps an older file
at the same path. Audio is not copied.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm.auto import tqdm

from ..errors import GarvideoError, InvalidInputError
from ..files import atomic_path
from ..tracking import Track, TrackFrame
from ..video import VideoReader, reading
from .subtitles import Cue

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

#: File suffixes the overlay can be written to (containers that hold H.264).
#: libx264 settings: visually lossless overlays, encoded faster than they are drawn.
X264_CRF = 18
X264_PRESET = "veryfast"
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")

#: Share of the frame's height the caption band may cover at most.
MAX_CAPTION_SHARE = 1 / 3

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_ELLIPSIS = "..."
_BAND_KEEP = 0.3  # the caption band keeps 30% of the picture's brightness
_TEXT_COLOUR = (255, 255, 255)
# Fine enough for any frame rate, coarse enough for every container's clock.
_FALLBACK_TIME_BASE = Fraction(1, 90000)


class OverlayError(GarvideoError):
    """The overlay video cannot be written as asked (bad path or suffix, no usable encoder)."""


def region_colour(position: int) -> tuple[int, int, int]:
    """The RGB colour of the region at ``position`` in the tracks given (the palette repeats)."""
    return PALETTE[position % len(PALETTE)]


def render_overlay(
    video: str | os.PathLike[str] | VideoReader,
    out_path: str | os.PathLike[str],
    tracks: Sequence[Track] = (),
    captions: Sequence[Cue] = (),
    *,
    progress: bool = True,
    fill_opacity: float = 0.4,
    codec: str | None = None,
) -> Path:
    """Write ``video`` with ``tracks`` and ``captions`` drawn on it to ``out_path``; return the path.

    ``video``: a path or an open :class:`~garvideo.video.VideoReader` (left
    open). ``tracks``: masks with the video's displayed size, drawn in
    :data:`PALETTE` colours by position. ``captions``: timed texts (seconds
    since the first frame). ``out_path`` must end in one of
    :data:`OUTPUT_SUFFIXES`; its folder is created if needed.
    ``fill_opacity``: weight of the region colour inside masks (0..1).
    ``codec``: an FFmpeg encoder name (default libx264, else mpeg4).
    ``progress``: a tqdm bar over the frames.

    Raises :class:`OverlayError` for a path that cannot be written,
    :class:`~garvideo.errors.InvalidInputError` for masks of another size,
    :class:`~garvideo.errors.VideoError` for an unreadable video.
    """
    target = Path(out_path)
    encoder_name = check_overlay_target(target, video, codec)
    if not 0.0 <= float(fill_opacity) <= 1.0:
        raise InvalidInputError(f"fill_opacity must be between 0 and 1, got {fill_opacity}")
    tracks = [tracks] if isinstance(tracks, Track) else list(tracks)
    cues = _checked_cues([captions] if isinstance(captions, Cue) else captions)
    with reading(video) as reader:
        regions = [_RegionPainter(track, region_colour(k)) for k, track in enumerate(tracks)]
        _check_sizes(regions, reader)
        if Path(reader.path).resolve() == target.resolve():
            raise OverlayError(f"the overlay would overwrite its own input {reader.path}: choose another output path")
        style = _Style.for_frame(reader.width, reader.height, float(fill_opacity))
        _make_folder(target.parent)
        try:
            with atomic_path(target) as tmp:
                _encode(reader, tmp, regions, cues, style, encoder_name, progress)
        except OSError as exc:  # the reader reports damage as warnings: an OSError here is the writing side
            raise OverlayError(f"cannot write the overlay {target}: {exc.strerror or exc}") from exc
    return target


# ---------------------------------------------------------------------- checks


def check_overlay_target(out_path: str | os.PathLike[str], video: object = None, codec: str | None = None) -> str:
    """Check that an overlay can be written to ``out_path``; return the encoder to use.

    Cheap, so callers run it before long work: a bad suffix, a folder, the
    input itself as output or a missing encoder raise :class:`OverlayError`.
    """
    target = Path(out_path)
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise OverlayError(
            f"cannot write an overlay video to {target}: use one of the suffixes {', '.join(OUTPUT_SUFFIXES)}"
        )
    if target.is_dir():
        raise OverlayError(f"the overlay path {target} is a folder: give a file name such as {target / 'overlay.mp4'}")
    if isinstance(video, (str, os.PathLike)) and Path(video).exists() and Path(video).resolve() == target.resolve():
        raise OverlayError(f"the overlay would overwrite its own input {video}: choose another output path")
    return _encoder_name(codec)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OverlayError(f"cannot create the folder {folder} for the overlay: {exc.strerror or exc}") from exc


def _encoder_name(codec: str | None) -> str:
    if codec is not None:
        if not _has_encoder(codec):
            raise OverlayError(f"this PyAV/FFmpeg build has no video encoder named {codec!r}")
        return codec
    for name in ("libx264", "mpeg4"):
        if _has_encoder(name):
            return name
    raise OverlayError("this PyAV/FFmpeg build has neither an H.264 (libx264) nor an MPEG-4 encoder")


@cache
def _has_encoder(name: str) -> bool:
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):  # ValueError: unknown name in older PyAV
        return False
    return codec.type == "video"


def _checked_cues(captions: Sequence[Cue]) -> list[Cue]:
    cues = []
    for cue in captions:
        try:
            start, end, text = float(cue.start), float(cue.end), str(cue.text)
        except (AttributeError, TypeError, ValueError):
            raise InvalidInputError(f"captions must be Cue(start, end, text) objects, got {cue!r:.100}") from None
        if end > start and text.strip():
            cues.append(Cue(start, end, text))
    return sorted(cues, key=lambda c: c.start)  # stable: cues starting together keep the caller's order


def _check_sizes(regions: Sequence[_RegionPainter], reader: VideoReader) -> None:
    for region in regions:
        size = region.mask_size
        if size is not None and size != (reader.height, reader.width):
            raise InvalidInputError(
                f"track {region.name!r} has {size[1]}x{size[0]} masks but {reader.path} shows "
                f"{reader.width}x{reader.height} frames: draw tracks made on this video"
            )


# ---------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Style:
    """Sizes that follow the frame's size, so an overlay reads the same at 240p and at 4K."""

    width: int
    height: int
    fill_opacity: float
    line: int  # outline and box thickness
    font_scale: float
    font_thickness: int
    label_scale: float

    @classmethod
    def for_frame(cls, width: int, height: int, fill_opacity: float) -> _Style:
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


class _RegionPainter:
    """One track's drawing: which entry shows on a frame, and the mask, box and label."""

    def __init__(self, track: Track, colour: tuple[int, int, int]) -> None:
        if not isinstance(track, Track):
            raise InvalidInputError(f"tracks must be Track objects, got {type(track).__name__}")
        self.track = track
        self.name = track.name
        self.colour = colour
        self.text_colour = (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 150 else (255,) * 3
        gaps = np.diff(np.asarray(track.indices, dtype=np.int64))
        # Half the stride reaches every frame between two tracked ones (ties go to the earlier).
        self.reach = int(np.median(gaps)) // 2 if gaps.size else 0
        self.mask_size = track.frames[0].size if track.frames else None
        self._cached: tuple[int, np.ndarray] | None = None  # consecutive frames of a strided track share a mask

    def entry(self, index: int) -> TrackFrame | None:
        """The tracked entry shown on frame ``index``, or None (not tracked near it, or not visible)."""
        if not self.track.frames:
            return None
        entry = self.track.nearest_frame(index)
        if abs(entry.index - index) > self.reach or not entry.visible or entry.box is None:
            return None
        return entry

    def mask(self, entry: TrackFrame) -> np.ndarray:
        if self._cached is None or self._cached[0] != entry.index:
            self._cached = (entry.index, entry.mask())
        return self._cached[1]


def _tint(canvas: np.ndarray, region: _RegionPainter, entry: TrackFrame, style: _Style) -> None:
    x1, y1, x2, y2 = entry.box  # type: ignore[misc]  # inclusive; entry() only returns boxed entries
    inside = region.mask(entry)[y1 : y2 + 1, x1 : x2 + 1]
    patch = canvas[y1 : y2 + 1, x1 : x2 + 1]
    solid = np.empty_like(patch)
    solid[:] = region.colour
    # OpenCV blends the box and copies the blend inside the mask (bench/outputs.py: several times numpy's speed).
    blended = cv2.addWeighted(patch, 1.0 - style.fill_opacity, solid, style.fill_opacity, 0.0)
    inside_u8 = inside.view(np.uint8)
    cv2.copyTo(blended, inside_u8, patch)  # patch is a view of the canvas: written in place
    contours, _ = cv2.findContours(inside_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x1, y1))
    cv2.drawContours(canvas, contours, -1, region.colour, style.line, cv2.LINE_AA)


def _outline_box(canvas: np.ndarray, region: _RegionPainter, entry: TrackFrame, style: _Style) -> None:
    x1, y1, x2, y2 = entry.box  # type: ignore[misc]
    cv2.rectangle(canvas, (x1, y1), (x2, y2), region.colour, style.line)


def _label(canvas: np.ndarray, region: _RegionPainter, entry: TrackFrame, style: _Style) -> None:
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


@dataclass(frozen=True)
class _CaptionLayout:
    lines: tuple[str, ...]
    line_height: int
    text_height: int
    pad: int

    @property
    def band_height(self) -> int:
        return len(self.lines) * self.line_height + 2 * self.pad


def _text_width(text: str, style: _Style) -> int:
    return cv2.getTextSize(text, _FONT, style.font_scale, style.font_thickness)[0][0]


def _wrap(text: str, max_width: int, style: _Style) -> list[str]:
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


def _layout(texts: tuple[str, ...], style: _Style) -> _CaptionLayout:
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
    return _CaptionLayout(tuple(out), line_height, text_h, pad)


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


def _with_ellipsis(line: str, max_width: int, style: _Style) -> str:
    while line and _text_width(line + _ELLIPSIS, style) > max_width:
        line = line[:-1]
    return line.rstrip() + _ELLIPSIS


def _caption(canvas: np.ndarray, layout: _CaptionLayout, style: _Style) -> None:
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


def _draw(
    image: np.ndarray, index: int, regions: Sequence[_RegionPainter], layout: _CaptionLayout | None, style: _Style
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


# ---------------------------------------------------------------------- encoding


def _output_clock(reader: VideoReader) -> tuple[Fraction, np.ndarray, np.ndarray]:
    """The output's time base, every frame's timestamp in it and every frame's duration.

    The input's own timestamps are reused where the container gave them
    (exact: a variable frame rate survives unchanged); otherwise times are
    rounded to a 90 kHz clock.
    """
    timeline = reader.timeline
    time_base = timeline.time_base
    if timeline.exact and timeline.pts is not None and time_base is not None and time_base.denominator <= 10**7:
        pts = np.asarray(timeline.pts, dtype=np.int64) - int(timeline.pts[0])
    else:
        time_base = _FALLBACK_TIME_BASE
        pts = np.round(np.asarray(timeline.times, dtype=np.float64) / float(time_base)).astype(np.int64)
        steps = np.arange(pts.size)
        pts = np.maximum.accumulate(pts - steps) + steps  # strictly increasing: never two frames on one tick
    end = max(int(pts[-1]) + 1, round(timeline.duration / float(time_base)))
    durations = np.diff(np.append(pts, end))
    return Fraction(time_base), pts, durations


def _nominal_rate(reader: VideoReader) -> Fraction:
    # The encoder's rate control needs a frame rate; the timestamps carry the real timing.
    fps = reader.fps if reader.fps and reader.fps > 0 else 25.0
    return Fraction(fps).limit_denominator(1001)


def _encode(
    reader: VideoReader,
    path: Path,
    regions: Sequence[_RegionPainter],
    cues: Sequence[Cue],
    style: _Style,
    encoder_name: str,
    progress: bool,
) -> None:
    time_base, pts, durations = _output_clock(reader)
    duration_of = dict(zip(pts.tolist(), durations.tolist()))
    suffix = path.suffix.lower()
    options = {"movflags": "+faststart"} if suffix in (".mp4", ".m4v", ".mov") else {}
    layouts: dict[tuple[str, ...], _CaptionLayout] = {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(encoder_name, rate=_nominal_rate(reader))
        stream.width, stream.height = style.width, style.height
        odd = style.width % 2 or style.height % 2
        supported = [f.name for f in (stream.codec_context.codec.video_formats or ())]
        stream.pix_fmt = "yuv444p" if odd and "yuv444p" in supported else "yuv420p"
        stream.codec_context.time_base = time_base
        if encoder_name == "libx264":
            stream.options = {"preset": X264_PRESET, "crf": str(X264_CRF)}
        else:
            stream.bit_rate = max(2_000_000, int(style.width * style.height * float(_nominal_rate(reader)) * 0.5))

        def mux(packets: list[av.Packet]) -> None:
            for packet in packets:
                # Encoders guess durations from the nominal rate; keep the input's true ones.
                if packet.pts is not None:
                    packet.duration = duration_of.get(int(packet.pts), packet.duration)
                container.mux(packet)

        bar = tqdm(total=reader.num_frames, desc="overlay", unit="frame", disable=not progress)
        with bar:
            for frame in reader.iter_frames():
                active = tuple(cue.text for cue in cues if cue.start <= frame.time < cue.end)
                layout = None
                if active:
                    layout = layouts.get(active)
                    if layout is None:
                        layout = layouts[active] = _layout(active, style)
                image = _draw(frame.image, frame.index, regions, layout, style)
                out = av.VideoFrame.from_ndarray(image, format="rgb24")
                out.pts = int(pts[frame.index])
                out.time_base = time_base
                mux(stream.encode(out))
                bar.update(1)
            mux(stream.encode())
