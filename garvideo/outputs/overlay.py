"""Overlay videos: the input video re-encoded with its regions and timed captions drawn on every frame.

>>> from garvideo.outputs.overlay import render_overlay
>>> from garvideo.outputs.subtitles import Cue
>>> render_overlay("clip.mp4", "clip.overlay.mp4", result.tracks,
...                [Cue(w.start, w.end, f"dog: {w.description}") for w in result.region("dog").windows if w.visible])

What is drawn (:mod:`garvideo.outputs.drawing`): each region's mask, box and
name in its own colour, and every caption (a
:class:`~garvideo.outputs.subtitles.Cue`) active at the frame's time
(``start <= t < end``) on a band at the bottom, stacked in order of start.

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
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
from tqdm.auto import tqdm

from ..errors import GarvideoError, InvalidInputError
from ..files import atomic_path
from ..tracking import Track
from ..video import VideoReader, reading
from .drawing import (
    MAX_CAPTION_SHARE,
    PALETTE,
    CaptionLayout,
    FrameStyle,
    RegionPainter,
    caption_layout,
    draw_frame,
    region_colour,
)
from .subtitles import Cue

__all__ = [
    "MAX_CAPTION_SHARE",
    "OUTPUT_SUFFIXES",
    "PALETTE",
    "OverlayError",
    "check_overlay_target",
    "region_colour",
    "render_overlay",
]

#: File suffixes the overlay can be written to (containers that hold H.264).
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
#: libx264 settings: visually lossless overlays, encoded faster than they are drawn.
X264_CRF = 18
X264_PRESET = "veryfast"

# Fine enough for any frame rate, coarse enough for every container's clock.
_FALLBACK_TIME_BASE = Fraction(1, 90000)


class OverlayError(GarvideoError):
    """The overlay video cannot be written as asked (bad path or suffix, no usable encoder)."""


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
        regions = [RegionPainter(track, region_colour(k)) for k, track in enumerate(tracks)]
        _check_sizes(regions, reader)
        if Path(reader.path).resolve() == target.resolve():
            raise OverlayError(f"the overlay would overwrite its own input {reader.path}: choose another output path")
        style = FrameStyle.for_frame(reader.width, reader.height, float(fill_opacity))
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


def _check_sizes(regions: Sequence[RegionPainter], reader: VideoReader) -> None:
    for region in regions:
        size = region.mask_size
        if size is not None and size != (reader.height, reader.width):
            raise InvalidInputError(
                f"track {region.name!r} has {size[1]}x{size[0]} masks but {reader.path} shows "
                f"{reader.width}x{reader.height} frames: draw tracks made on this video"
            )


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
    regions: Sequence[RegionPainter],
    cues: Sequence[Cue],
    style: FrameStyle,
    encoder_name: str,
    progress: bool,
) -> None:
    time_base, pts, durations = _output_clock(reader)
    duration_of = dict(zip(pts.tolist(), durations.tolist()))
    suffix = path.suffix.lower()
    options = {"movflags": "+faststart"} if suffix in (".mp4", ".m4v", ".mov") else {}
    layouts: dict[tuple[str, ...], CaptionLayout] = {}
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
                        layout = layouts[active] = caption_layout(active, style)
                image = draw_frame(frame.image, frame.index, regions, layout, style)
                out = av.VideoFrame.from_ndarray(image, format="rgb24")
                out.pts = int(pts[frame.index])
                out.time_base = time_base
                mux(stream.encode(out))
                bar.update(1)
            mux(stream.encode())
