"""Opening a video with PyAV and learning its facts without decoding it whole.

The probe reads the container's packets once (no decoding: a one-hour clip's
packets are read in about a second) to get every frame's presentation
timestamp and the keyframe positions, and decodes only the first frame (its
rotation and pixel format). Files whose packets do not give FFmpeg's frames
(packed B-frames, B-frames without presentation timestamps) are decoded once
instead, see :mod:`garvideo.video.decoded_index`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from ..errors import VideoError
from . import decoded_index
from .decoded_index import DecodedIndex
from .facts import VideoDecodeWarning, VideoInfo
from .timeline import Timeline, build_timeline, estimated_timeline


@dataclass(frozen=True)
class Probe:
    info: VideoInfo
    timeline: Timeline
    #: Set when the frames were learnt by decoding (their order is not the packets'): how to find them again.
    decoded: DecodedIndex | None = None
    #: Codec headers a decoder must read before it starts after a seek (see :func:`stream_headers`).
    stream_headers: bytes | None = None


def open_container(path: str | os.PathLike[str]) -> Any:
    """``av.open`` with the failures a user can cause turned into :class:`VideoError`.

    Folders never get here: the readers open them as frame folders.
    """
    file = Path(path)
    if not file.exists():
        raise VideoError(f"no such video file: {file}")
    if file.stat().st_size == 0:
        raise VideoError(f"{file} is empty (0 bytes)")
    try:
        return av.open(str(file), metadata_errors="replace")
    except av.error.EOFError:
        raise VideoError(f"{file} holds no frames (the file ends before any data)") from None
    except av.error.InvalidDataError:
        raise VideoError(f"{file} is not a video file FFmpeg can read (unknown or damaged format)") from None
    except av.error.PermissionError:
        raise VideoError(f"no permission to read {file}") from None
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot open {file}: {exc}") from None


def video_stream(container: Any, name: str) -> Any:
    """The first real video stream (cover art stored as a video stream does not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    kinds = sorted({stream.type for stream in container.streams})
    held = f" (it holds only {', '.join(kinds)})" if kinds else ""
    raise VideoError(f"{name} has no video stream{held}")


def rotation_clockwise(display_rotation: float | int | None) -> int:
    """FFmpeg's counter-clockwise display-matrix angle as clockwise degrees in {0, 90, 180, 270}."""
    if not display_rotation:
        return 0
    return int(round(-float(display_rotation) / 90.0)) * 90 % 360


def _declared_duration(container: Any, stream: Any) -> float | None:
    """The duration the container's header promises (seconds), if any."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def probe(path: str | os.PathLike[str]) -> Probe:
    """Facts and timeline of the video at ``path``; :class:`VideoError` if it has no decodable video."""
    name = str(path)
    container = open_container(path)
    try:
        stream = video_stream(container, name)
        return _probe_stream(name, container, stream)
    finally:
        container.close()


def _probe_stream(name: str, container: Any, stream: Any) -> Probe:
    time_base: Fraction = stream.time_base
    pts: list[int] = []
    keyframe_pts: list[int] = []
    durations: dict[int, int] = {}
    missing_pts = 0
    pts_equal_dts = True  # as in AVI (no presentation times) and some broken MP4 muxers
    small_packets = 0
    headers: bytes | None = None
    reordered = False  # B-frames: packet durations then follow decode order, not display order
    damage: str | None = None
    packets = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if packet.is_corrupt:
                damage = f"a damaged packet at byte {packet.pos} of {container.size}"
                break
            if packet.is_discard:
                continue  # dropped by the container's edit list: never shown
            if packets == 0:
                headers = stream_headers(stream.codec_context, bytes(packet))
            packets += 1
            small_packets += packet.size <= decoded_index.PLACEHOLDER_MAX_BYTES
            if packet.pts is None:
                missing_pts += 1
                continue
            pts.append(packet.pts)
            reordered = reordered or (packet.dts is not None and packet.dts != packet.pts)
            pts_equal_dts = pts_equal_dts and packet.dts in (None, packet.pts)
            durations[packet.pts] = packet.duration or 0
            if packet.is_keyframe:
                keyframe_pts.append(packet.pts)
    except av.error.FFmpegError as exc:
        damage = f"a read error after {packets} packets ({exc.strerror})"

    if packets == 0:
        raise VideoError(f"{name} has a video stream but no frames in it")

    average_rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    codec_context = stream.codec_context
    if missing_pts == 0 and pts:
        last_duration = None if reordered else durations.get(max(pts))
        timeline = build_timeline(name, pts, keyframe_pts, time_base, last_duration)
    else:
        # Raw elementary streams carry no timestamps: only an estimate is possible.
        timeline = estimated_timeline(name, packets, float(average_rate or 25))
    decoded: DecodedIndex | None = None
    if packets > missing_pts and decoded_index.needs_decoding(
        codec_context.name,
        bool(getattr(codec_context, "has_b_frames", False)),
        container.format.name,
        pts_equal_dts,
        small_packets,
    ):
        with open_container(name) as fresh:
            scanned_timeline, scanned, scan_damage = decoded_index.scan(name, fresh, fresh.streams[stream.index])
        if not scanned.follows_packets:  # else the packets' timeline above is FFmpeg's too
            timeline, decoded, damage = scanned_timeline, scanned, scan_damage

    display_rotation, coded_width, coded_height, frame_format = _first_frame(name, stream.index)
    rotation = rotation_clockwise(display_rotation)
    width, height = (coded_height, coded_width) if rotation in (90, 270) else (coded_width, coded_height)

    declared_frames = stream.frames or 0
    declared_duration = _declared_duration(container, stream)
    readable = len(timeline)
    # A header's frame count also counts empty index entries (AVI's dropped frames) and placeholders
    # that give no picture: it shows truncation only when the header gives no duration to compare.
    if damage is None and declared_duration is None and decoded is None and declared_frames > readable:
        damage = f"the end of the data, though the header promises {declared_frames} frames"
    elif damage is None and declared_duration is not None and readable > 1:
        frame_span = timeline.duration / readable
        if declared_duration - timeline.duration > max(2 * frame_span, 0.02 * declared_duration):
            damage = f"the end of the data, though the header promises {declared_duration:.3f} s"
    if damage is not None:
        warnings.warn(
            f"{name} is truncated or corrupt: reading stopped at {damage}; "
            f"only frames 0-{readable - 1} ({timeline.duration:.3f} s) can be read",
            VideoDecodeWarning,
            stacklevel=3,
        )

    duration = timeline.duration
    fps = readable / duration if duration > 0 else float(average_rate or 0)
    info = VideoInfo(
        path=name,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        num_frames=readable,
        num_frames_exact=timeline.exact,
        duration=duration,
        codec=codec_context.name,
        container=container.format.name,
        pixel_format=codec_context.pix_fmt or frame_format,
        bit_rate=stream.bit_rate or container.bit_rate or None,
        has_audio=len(container.streams.audio) > 0,
        variable_frame_rate=timeline.is_variable_rate(),
        keyframes=int(timeline.keyframes.size),
        coded_width=coded_width,
        coded_height=coded_height,
    )
    return Probe(info=info, timeline=timeline, decoded=decoded, stream_headers=headers)


def stream_headers(codec_context: Any, first_packet: bytes) -> bytes | None:
    """MPEG-4 Part 2 headers that a file keeps in its first packet, after the container's extradata.

    DivX and Xvid write the VOL header and a user-data string (encoder build, "p" for packed
    B-frames) ahead of the first picture only. A decode from the start reads them; a decoder
    that starts after a seek must be given them as extradata, or it loses packed B-frames and
    the encoder-bug workarounds. None for other codecs, or when the first packet has none.
    """
    if codec_context.name != "mpeg4":
        return None
    start = first_packet.find(b"\x00\x00\x01\xb6")  # the first VOP (picture) start code
    if start <= 0:
        return None
    return bytes(codec_context.extradata or b"") + first_packet[:start]


def _first_frame(name: str, stream_index: int) -> tuple[int, int, int, str]:
    """Decode from the start (a fresh container: rewinding is not reliable everywhere) until a frame comes out."""
    with open_container(name) as container:
        stream = container.streams[stream_index]
        try:
            for frame in container.decode(stream):
                return frame.rotation, frame.width, frame.height, frame.format.name
        except av.error.FFmpegError as exc:
            raise VideoError(f"{name}: the first frame cannot be decoded ({exc.strerror})") from None
    raise VideoError(f"{name} has a video stream but none of its frames can be decoded")
