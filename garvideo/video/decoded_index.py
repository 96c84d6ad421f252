"""Frame order and timestamps for files whose packets do not tell them: learnt by decoding the file once.

FFmpeg presents a video as the frames its decoder outputs, in output order, each at
its *best-effort timestamp*. For most files that is one frame per packet in
presentation-timestamp order, and :mod:`garvideo.video.probe` reads it off the
packets. Some real files break that model:

- MPEG-4 Part 2 (DivX/Xvid) AVIs with *packed B-frames*: one packet holds a P and a
  B frame, the next a tiny placeholder (an N-VOP) that gives no picture of its own,
  and placeholders for dropped frames that the decoder skips;
- streams with B-frames whose container timestamps are decode-order ones (AVI has no
  presentation times; some muxers write MP4s with pts equal to dts);
- timestamps that repeat or go backwards (frames re-timed with duplicate times, recordings
  joined end to end, a clock reset in a transport stream): sorting by them would merge or
  reorder frames that FFmpeg outputs one after the other.

For those the probe decodes the file once (no colour conversion) and records which
frames come out, in which order, from which packet, at which best-effort
timestamp. Later reads tag each packet with its identity and name every frame by
the packet it came from, so a seek lands on frame numbers exactly as a decode from
the start would count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av.error
import numpy as np

from ..errors import VideoError
from .timeline import Timeline

#: How a packet is recognised again after a seek: its byte position and decode timestamp.
PacketKey = tuple[int | None, int | None]

#: MPEG-4 Part 2 packets this small are placeholders (N-VOPs): no picture, or the B-frame of
#: the packet before. A coded frame is larger (its header alone takes most of these bytes).
PLACEHOLDER_MAX_BYTES = 24


def packet_key(packet: Any) -> PacketKey:
    position = packet.pos if packet.pos is not None and packet.pos >= 0 else None
    return (position, packet.dts)


@dataclass(frozen=True, eq=False)
class DecodedIndex:
    """What a decode from the start gives, packet by packet.

    ``frames_of_packet`` maps a packet to the frame indices that come out of the
    decoder carrying that packet's identity (usually one; none for a placeholder).
    ``seek_targets[k]`` is the decode timestamp to seek to for ``timeline.keyframes[k]``
    (None for frame 0: decoding restarts from the beginning of the file).
    ``seekable`` is False when packets cannot be recognised after a seek (then every
    jump back restarts from the beginning, still exact). ``follows_packets``: the
    decode found one frame per packet, in pts order, stamped with the packets' pts,
    so the packets alone describe the file after all (any reader may trust them).
    """

    frames_of_packet: dict[PacketKey, tuple[int, ...]]
    seek_targets: tuple[int | None, ...]
    seekable: bool
    follows_packets: bool
    #: How far (time base units) frame 0's timestamp is after the first packet's: packets before it gave no
    #: frame (a file that starts mid-GOP, see :mod:`garvideo.video.leading`).
    lead: int = 0


class BestEffortClock:
    """FFmpeg's best-effort timestamp of each decoded frame, in output order.

    The same rule as libavcodec's ``guess_correct_pts``: a frame's own pts, unless
    pts have gone backwards more often than the decode timestamps have, then its
    packet's dts.
    """

    def __init__(self) -> None:
        self._last_pts = self._last_dts = None
        self._faulty_pts = self._faulty_dts = 0

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self._faulty_dts += self._last_dts is not None and dts <= self._last_dts
            self._last_dts = dts
        elif pts is not None:
            self._last_dts = pts
        if pts is not None:
            self._faulty_pts += self._last_pts is not None and pts <= self._last_pts
            self._last_pts = pts
        elif dts is not None:
            self._last_pts = dts
        if pts is not None and (self._faulty_pts <= self._faulty_dts or dts is None):
            return pts
        return dts


@dataclass(frozen=True)
class PacketOrder:
    """What the probe's pass over the packets saw of their timestamps (see :func:`needs_decoding`)."""

    codec: str
    #: The decoder holds frames back to reorder them (B-frames): its output order is not the packets'.
    codec_reorders: bool
    container_format: str
    pts_equal_dts: bool
    small_packets: int
    #: Two packets share a presentation timestamp: sorting by it cannot tell their frames apart.
    duplicate_pts: bool
    #: A packet's pts is below the one before it in the file (without reordering, frames then leave the
    #: decoder in an order that is not the pts order).
    pts_backwards: bool
    #: A packet's dts is below the one before it: timestamps restart (joined recordings, a reset clock).
    dts_backwards: bool


def needs_decoding(order: PacketOrder) -> bool:
    """Whether the packets alone cannot give FFmpeg's frames (see the module docstring)."""
    if order.codec == "mpeg4" and order.small_packets:
        return True  # packed B-frames or dropped-frame placeholders
    if order.duplicate_pts or order.dts_backwards:
        return True
    if not order.codec_reorders and order.pts_backwards:
        return True  # frames leave the decoder in packet order, which the pts do not follow
    # Without presentation timestamps in the container, pts order is decode order.
    return order.codec_reorders and (order.pts_equal_dts or is_avi(order.container_format))


def is_avi(container_format: str) -> bool:
    return "avi" in container_format.split(",")


#: MPEG transport and program streams (broadcast recordings, camera and live-source output).
MPEG_STREAM_FORMATS = ("mpegts", "mpeg")


def is_mpeg_stream(container_format: str) -> bool:
    """Whether the demuxer is one of :data:`MPEG_STREAM_FORMATS`. Their seeks go by decode timestamps and may
    land on any packet, not only keyframes; and a packet they flag damaged has lost data around it (a skipped
    continuity counter: packets lost in transit, files joined end to end) but is still decoded by FFmpeg."""
    return bool(set(container_format.split(",")) & set(MPEG_STREAM_FORMATS))


@dataclass
class _Scan:
    """What a decode from the start records: frames in output order, and the packets they came from."""

    clock: BestEffortClock = field(default_factory=BestEffortClock)
    stamps: list[int | None] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    origins: dict[PacketKey, list[int]] = field(default_factory=dict)
    key_packets: list[tuple[PacketKey, int | None]] = field(default_factory=list)
    packet_pts: dict[PacketKey, int | None] = field(default_factory=dict)
    recognisable: bool = True

    def packet(self, packet: Any) -> None:
        """Tag a packet with its identity (its frames carry it) and note it, unless an edit list discards it."""
        key = packet_key(packet)
        packet.opaque = key
        if packet.is_discard:
            return  # decoded all the same (later frames refer to its), its frame dropped by the decoder
        self.recognisable = self.recognisable and key not in self.packet_pts and key != (None, None)
        self.packet_pts[key] = packet.pts
        if packet.is_keyframe:
            self.key_packets.append((key, packet.dts if packet.dts is not None else packet.pts))

    def take(self, frames: list[Any]) -> None:
        for frame in frames:
            self.origins.setdefault(frame.opaque, []).append(len(self.stamps))
            self.stamps.append(self.clock(frame.pts, frame.dts))
            self.durations.append(frame.duration or 0)


def scan(name: str, container: Any, stream: Any) -> tuple[Timeline, DecodedIndex, str | None]:
    """Decode ``stream`` from the start: its timeline, packet-to-frame index and damage (None if clean)."""
    stream.thread_type = "AUTO"
    stream.codec_context.copy_opaque = True  # each frame carries the identity of the packet it came from
    # AVI stores no presentation times; FFmpeg versions differ in the ones they guess, so
    # stamp frames by decode times alone, as FFmpeg's own AVI reading long did.
    has_presentation_times = not is_avi(container.format.name)
    gaps_decoded = is_mpeg_stream(container.format.name)
    found = _Scan()
    damage = None
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            damage = f"a read error after {len(found.packet_pts)} packets ({exc.strerror})"
            break
        if packet.size == 0:
            continue  # end-of-stream marker or an empty (dropped-frame) index entry
        if packet.is_corrupt and not gaps_decoded:
            damage = f"a damaged packet at byte {packet.pos} of {container.size}"
            break
        found.packet(packet)
        if not has_presentation_times:
            packet.pts = None
        try:
            found.take(stream.decode(packet))
        except av.error.FFmpegError:
            continue  # a damaged packet: FFmpeg goes on without its frame too
    try:
        found.take(stream.decode(None))
    except av.error.FFmpegError:
        pass
    if not found.stamps:
        raise VideoError(f"{name} has a video stream but none of its frames can be decoded")
    timeline, index = _indexed(name, stream, found)
    return timeline, index, damage


def _indexed(name: str, stream: Any, found: _Scan) -> tuple[Timeline, DecodedIndex]:
    stamps = found.stamps
    times, duration = _seconds(stamps, found.durations, stream.time_base, stream.average_rate)
    frames_of_packet = {key: tuple(indices) for key, indices in found.origins.items() if key is not None}
    keyframes: dict[int, int | None] = {0: None}
    for key, target in found.key_packets:
        own = frames_of_packet.get(key)
        if own and own[0] > 0 and target is not None:
            keyframes.setdefault(own[0], target)
    ordered = sorted(keyframes)
    timeline = Timeline(
        name=name,
        times=times,
        duration=duration,
        exact=True,
        pts=None,
        time_base=stream.time_base,
        keyframes=np.asarray(ordered, dtype=np.int64),
    )
    shown_pts = [pts for pts in found.packet_pts.values() if pts is not None]
    index = DecodedIndex(
        frames_of_packet=frames_of_packet,
        seek_targets=tuple(keyframes[k] for k in ordered),
        seekable=found.recognisable,
        follows_packets=_follows_packets(frames_of_packet, found.packet_pts, stamps) and found.recognisable,
        lead=max(0, stamps[0] - min(shown_pts)) if stamps[0] is not None and shown_pts else 0,
    )
    return timeline, index


def _follows_packets(
    frames_of_packet: dict[PacketKey, tuple[int, ...]], packet_pts: dict[PacketKey, int | None], stamps: list
) -> bool:
    """One frame per packet, frame ``i`` from the packet with the ``i``-th smallest pts, stamped with it."""
    if len(frames_of_packet) != len(packet_pts) or any(len(f) != 1 for f in frames_of_packet.values()):
        return False
    by_frame = sorted((frames[0], packet_pts[key]) for key, frames in frames_of_packet.items())
    stamped = [pts for _, pts in by_frame]
    if any(pts is None for pts in stamped) or stamped != stamps:
        return False
    return all(a < b for a, b in zip(stamped, stamped[1:]))


def _seconds(
    stamps: list[int | None], durations: list[int], time_base: Fraction, rate: Fraction | None
) -> tuple[np.ndarray, float]:
    """Seconds since the first frame, a frame without a timestamp one step after the frame before."""
    known = [s for s in stamps if s is not None]
    steps = np.diff(np.asarray(known, dtype=np.int64)) if len(known) > 1 else np.zeros(0, dtype=np.int64)
    positive = steps[steps > 0]
    if positive.size:
        step = int(np.median(positive))
    elif rate:
        step = max(1, round(1 / (float(rate) * float(time_base))))
    else:
        step = 1
    filled: list[int] = []
    for stamp in stamps:
        if stamp is None:
            stamp = filled[-1] + step if filled else 0
        filled.append(stamp)
    values = np.asarray(filled, dtype=np.int64)
    origin = int(values[0])
    times = ((values - origin) * time_base.numerator).astype(np.float64) / time_base.denominator
    last = durations[-1] if durations and durations[-1] > 0 else step
    duration = float((int(values.max()) - origin + last) * time_base)
    return times, duration
