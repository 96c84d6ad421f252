"""Opening a video with PyAV and learning its facts without decoding it whole.

The probe reads the container's packets once (no decoding: a one-hour clip's
packets are read in about a second) to get every frame's presentation
timestamp and the keyframe positions, and decodes only the first frame (its
rotation and pixel format). Files whose packets do not give FFmpeg's frames
(packed B-frames, B-frames without presentation timestamps) are decoded once
instead, see :mod:`garvideo.video.decoded_index`; files that start mid-GOP have
their head decoded to learn which leading packets give no frame, see
:mod:`garvideo.video.leading`.
"""

from __future__ import annotations

import collections
import math
import os
import struct
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from ..errors import VideoError
from ..inputs import regular_file_problem
from . import decoded_index, leading
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
    #: Per timeline keyframe, the timestamp to seek to where it is not the keyframe's pts (None: start over
    #: from the beginning); None when pts seeks work (see :func:`~garvideo.video.decoded_index.is_mpeg_stream`).
    seek_targets: tuple[int | None, ...] | None = None
    #: Leading packets the decoder outputs no frame for (the file starts mid-GOP; see :mod:`.leading`).
    leading_dropped: int = 0
    #: Packets the container's edit list hides (decoded as references, never shown: an ``-ss`` copy cut).
    discarded: int = 0


@dataclass
class _Packets:
    """What one pass over a stream's packets tells, without decoding."""

    pts: list[int] = field(default_factory=list)
    keyframe_pts: list[int] = field(default_factory=list)
    keyframe_dts: dict[int, int | None] = field(default_factory=dict)
    durations: dict[int, int] = field(default_factory=dict)
    count: int = 0
    missing_pts: int = 0
    small: int = 0
    pts_equal_dts: bool = True  # as in AVI (no presentation times) and some broken MP4 muxers
    reordered: bool = False  # B-frames: packet durations then follow decode order, not display order
    pts_backwards: bool = False
    dts_backwards: bool = False
    headers: bytes | None = None
    damage: str | None = None
    #: Packets flagged damaged but decoded, as FFmpeg does in MPEG streams: how many, and where the first is.
    gaps: int = 0
    first_gap: int | None = None
    #: The start of the stream (discarded packets included): whether it may start mid-GOP (see leading.py).
    first_is_keyframe: bool | None = None
    first_dts: int | None = None
    keyframe_seen: bool = False
    first_keyframe_pts: int | None = None
    #: Leading packets the decoder outputs no frame for (a file that starts mid-GOP), left out of the frames,
    #: and how far (in time base units) the first frame left starts after the first of them.
    dropped: int = 0
    dropped_span: int = 0
    discarded: int = 0
    #: The first frame's facts (see :func:`_frame_facts`), where decoding the head already gave them.
    first_frame: tuple[float | None, int, int, str] | None = None
    _last_pts: int | None = None
    _last_dts: int | None = None

    def add(self, packet: Any, stream: Any) -> None:
        pts, dts, size = packet.pts, packet.dts, packet.size  # (each a property call: read once, per packet)
        if self.count == 0:
            self.headers = stream_headers(stream.codec_context, bytes(packet))
        self.count += 1
        if size <= decoded_index.PLACEHOLDER_MAX_BYTES:
            self.small += 1
        if dts is not None:
            if self._last_dts is not None and dts < self._last_dts:
                self.dts_backwards = True
            self._last_dts = dts
        if pts is None:
            self.missing_pts += 1
            return
        self.pts.append(pts)
        if self._last_pts is not None and pts < self._last_pts:
            self.pts_backwards = True
        self._last_pts = pts
        if dts is not None and dts != pts:
            self.reordered = True
            self.pts_equal_dts = False
        self.durations[pts] = packet.duration or 0
        if packet.is_keyframe:
            self.keyframe_pts.append(pts)
            self.keyframe_dts.setdefault(pts, dts)

    def note_start(self, packet: Any) -> None:
        """Called for each packet (discarded ones too) until the first keyframe."""
        keyframe = packet.is_keyframe
        if self.first_is_keyframe is None:
            self.first_is_keyframe, self.first_dts = keyframe, packet.dts
        if keyframe:
            self.keyframe_seen = True
            self.first_keyframe_pts = packet.pts

    def drop_leading(self, dropped_pts: list[int]) -> None:
        """Leave out leading packets that give no frame (each pts once, from the start)."""
        left = collections.Counter(dropped_pts)
        kept: list[int] = []
        for pts in self.pts:
            if left[pts] > 0:
                left[pts] -= 1
                self.durations.pop(pts, None)
            else:
                kept.append(pts)
        dropped = set(dropped_pts)
        self.keyframe_pts = [pts for pts in self.keyframe_pts if pts not in dropped]
        if kept:
            self.dropped_span = max(0, min(kept) - min(self.pts))
        self.pts, self.dropped = kept, len(self.pts) - len(kept)


def open_container(path: str | os.PathLike[str]) -> Any:
    """``av.open`` with the failures a user can cause turned into :class:`VideoError`.

    Folders never get here: the readers open them as frame folders.
    """
    file = Path(path)
    problem = regular_file_problem(file)  # a FIFO would block FFmpeg until a writer comes, a link loop fail late
    if problem == "no such file":
        raise VideoError(f"no such video file: {file}")
    if problem is not None:
        raise VideoError(f"cannot read the video {file}: {problem}")
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


def display_rotation(frame: Any) -> float | None:
    """The counter-clockwise angle (degrees) of a frame's display matrix, as FFmpeg's
    ``av_display_rotation_get`` computes it; None without a matrix (or with a degenerate one)."""
    try:
        data = frame.side_data.get("DISPLAYMATRIX")
    except (KeyError, TypeError, ValueError, AttributeError):  # a PyAV without this lookup: its own angle
        return float(getattr(frame, "rotation", 0) or 0) or None
    raw = bytes(data) if data is not None else b""
    if len(raw) < 36:
        return None
    matrix = struct.unpack("=9i", raw[:36])
    scale_x, scale_y = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if scale_x == 0 or scale_y == 0:
        return None
    return -math.degrees(math.atan2(matrix[1] / scale_y, matrix[0] / scale_x))


def rotation_clockwise(counter_clockwise: float | None) -> int:
    """How many degrees clockwise ``ffmpeg`` turns frames with this display-matrix angle (0-359).

    As FFmpeg's autorotation: the angle rounded to a whole degree; 90, 180 and 270 turn the
    picture losslessly, any other angle over 1 degree goes through its ``rotate`` filter (same
    frame size, black corners), and smaller ones are ignored.
    """
    if counter_clockwise is None or not math.isfinite(counter_clockwise):
        return 0
    rounded = math.floor(abs(counter_clockwise) + 0.5)  # C's round(): halves away from zero
    theta = -math.copysign(rounded, counter_clockwise)
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    return int(theta) if theta > 1 else 0


def _declared_duration(container: Any, stream: Any, first_dts: int | None) -> float | None:
    """The duration the container's header promises (seconds), if any."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        seconds = container.duration / 1_000_000
        if "flv" in container.format.name.split(",") and stream.start_time is not None and first_dts is not None:
            # FLV's header counts from the first packet's decode time, before the first frame's by the B-frames' delay
            seconds -= float(max(0, stream.start_time - first_dts) * stream.time_base)
        return seconds
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


def _read_packets(container: Any, stream: Any) -> _Packets:
    packets = _Packets()
    gaps_decoded = decoded_index.is_mpeg_stream(container.format.name)
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if packet.is_corrupt:
                if not gaps_decoded:
                    packets.damage = f"a damaged packet at byte {packet.pos} of {container.size}"
                    break
                packets.gaps += 1
                packets.first_gap = packet.pos if packets.first_gap is None else packets.first_gap
            if not packets.keyframe_seen:
                packets.note_start(packet)
            if packet.is_discard:
                packets.discarded += 1  # dropped by the container's edit list: never shown
                continue
            packets.add(packet, stream)
    except av.error.FFmpegError as exc:
        packets.damage = f"a read error after {packets.count} packets ({exc.strerror})"
    return packets


def _packet_timeline(name: str, packets: _Packets, stream: Any) -> Timeline:
    if packets.missing_pts == 0 and packets.pts:
        last_duration = None if packets.reordered else packets.durations.get(max(packets.pts))
        return build_timeline(name, packets.pts, packets.keyframe_pts, stream.time_base, last_duration)
    # Raw elementary streams carry no timestamps: only an estimate is possible.
    return estimated_timeline(name, packets.count, float(_average_rate(stream) or 25))


def _average_rate(stream: Any) -> Fraction | None:
    return stream.average_rate or stream.guessed_rate or stream.base_rate


def _seek_targets(container: Any, timeline: Timeline, packets: _Packets) -> tuple[int | None, ...] | None:
    """Where to seek for each keyframe (None: start over from the beginning), where not to its pts; else None.

    A transport stream seeks by decode timestamps, so to the keyframe's own dts. A program stream (.mpg,
    .vob) splits pictures over packets whose missing timestamps libavformat fills in differently after a
    seek, so reading there starts over instead (exact; slower only for going back in long files). A file
    that starts mid-GOP has no keyframe at frame 0: reading frame 0 starts over too.
    """
    mpeg = decoded_index.is_mpeg_stream(container.format.name)
    if timeline.pts is None or not (mpeg or packets.dropped):
        return None
    transport = "mpegts" in container.format.name.split(",")
    if mpeg and not transport:
        return (None,) * len(timeline.keyframes)
    targets: list[int | None] = [None]
    for index in timeline.keyframes[1:]:
        pts = int(timeline.pts[index])
        dts = packets.keyframe_dts.get(pts) if transport else None
        targets.append(pts if dts is None else dts)
    return tuple(targets)


def _frames_of(
    name: str, container: Any, stream: Any, packets: _Packets
) -> tuple[Timeline, DecodedIndex | None, str | None]:
    """The frames FFmpeg outputs: from the packets, less those a decoder drops at a mid-GOP start; or, where the
    packets cannot tell them, from a decode of the whole file (its index, and the damage it found)."""
    timeline = _packet_timeline(name, packets, stream)
    codec_context = stream.codec_context
    order = decoded_index.PacketOrder(
        codec=codec_context.name,
        codec_reorders=bool(getattr(codec_context, "has_b_frames", False)),
        container_format=container.format.name,
        pts_equal_dts=packets.pts_equal_dts,
        small_packets=packets.small,
        duplicate_pts=timeline.pts is not None and len(timeline) < len(packets.pts),
        pts_backwards=packets.pts_backwards,
        dts_backwards=packets.dts_backwards,
    )
    if packets.count > packets.missing_pts and decoded_index.needs_decoding(order):
        with open_container(name) as fresh:
            scanned_timeline, scanned, scan_damage = decoded_index.scan(name, fresh, fresh.streams[stream.index])
        if not scanned.follows_packets:  # else the packets' timeline above is FFmpeg's too
            packets.dropped_span = scanned.lead
            return scanned_timeline, scanned, scan_damage
    elif timeline.pts is not None and leading.may_start_mid_gop(
        bool(packets.first_is_keyframe), packets.first_keyframe_pts, packets.pts
    ):
        with open_container(name) as fresh:
            lead = leading.decode_head(fresh, fresh.streams[stream.index], packets.first_keyframe_pts)
            packets.first_frame = _frame_facts(lead.first_frame) if lead.first_frame is not None else None
        if lead.dropped_pts and len(lead.dropped_pts) < len(packets.pts):
            packets.drop_leading(lead.dropped_pts)
            timeline = _packet_timeline(name, packets, stream)
    return timeline, None, packets.damage


def _probe_stream(name: str, container: Any, stream: Any) -> Probe:
    packets = _read_packets(container, stream)
    if packets.count == 0:
        raise VideoError(f"{name} has a video stream but no frames in it")
    codec_context = stream.codec_context
    timeline, decoded, damage = _frames_of(name, container, stream, packets)

    counter_clockwise, coded_width, coded_height, frame_format = packets.first_frame or _first_frame(name, stream.index)
    rotation = rotation_clockwise(counter_clockwise)
    width, height = (coded_height, coded_width) if rotation in (90, 270) else (coded_width, coded_height)
    _warn_if_damaged(name, container, stream, timeline, damage, decoded is not None, packets)
    if packets.gaps:
        warnings.warn(
            f"{name}: {packets.gaps} packet(s) are flagged damaged by a gap in the stream (the first at byte "
            f"{packets.first_gap}: data lost in transmission, or files joined end to end); they are decoded as "
            "FFmpeg decodes them, so frames near a gap may show damage",
            VideoDecodeWarning,
            stacklevel=3,
        )
    duration = timeline.duration
    info = VideoInfo(
        path=name,
        width=width,
        height=height,
        rotation=rotation,
        fps=len(timeline) / duration if duration > 0 else float(_average_rate(stream) or 0),
        num_frames=len(timeline),
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
    targets = None if decoded is not None else _seek_targets(container, timeline, packets)
    return Probe(
        info=info,
        timeline=timeline,
        decoded=decoded,
        stream_headers=packets.headers,
        seek_targets=targets,
        leading_dropped=packets.dropped,
        discarded=packets.discarded,
    )


def _warn_if_damaged(
    name: str, container: Any, stream: Any, timeline: Timeline, damage: str | None, decoded: bool, packets: _Packets
) -> None:
    # The header counts the leading packets a mid-GOP start drops (see leading.py) as frames and time.
    declared_frames = (stream.frames or 0) - packets.dropped
    declared_duration = _declared_duration(container, stream, packets.first_dts)
    if declared_duration is not None and packets.dropped_span:
        declared_duration -= float(packets.dropped_span * stream.time_base)
    readable = len(timeline)
    # A header's frame count also counts empty index entries (AVI's dropped frames) and placeholders
    # that give no picture: it shows truncation only when the header gives no duration to compare.
    if damage is None and declared_duration is None and not decoded and declared_frames > readable:
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
            stacklevel=4,
        )


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


def _first_frame(name: str, stream_index: int) -> tuple[float | None, int, int, str]:
    """Decode from the start (a fresh container: rewinding is not reliable everywhere) until a frame comes out.

    A packet that fails to decode is passed over, as FFmpeg does: a file that starts mid-GOP opens with
    packets whose parameter sets come later (with the first keyframe).
    """
    failure = ""
    with open_container(name) as container:
        stream = container.streams[stream_index]
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets, None)
            except av.error.FFmpegError as exc:
                failure = f" ({exc.strerror})"
                packet = None  # unreadable from here: drain the decoder
            try:
                for frame in stream.decode(packet):
                    return _frame_facts(frame)
            except av.error.FFmpegError as exc:
                failure = f" ({exc.strerror})"
            if packet is None:
                break
    raise VideoError(f"{name} has a video stream but none of its frames can be decoded{failure}")


def _frame_facts(frame: Any) -> tuple[float | None, int, int, str]:
    """A decoded frame's display-matrix angle (counter-clockwise), coded width and height, and pixel format."""
    return display_rotation(frame), frame.width, frame.height, frame.format.name
