"""Files that start mid-GOP: which leading packets give no frame, learnt by decoding the head of the file.

A capture of a live source (a transport stream recorded from the middle of a broadcast, ``dd`` of
part of a ``.ts``) or a ``-c copy`` cut at a non-key point starts with packets whose references
are missing. FFmpeg's decoders drop them: H.264 and HEVC slices before the first keyframe (or
before the parameter sets that come with it), MPEG-2 P and B pictures before the first I
picture, and an open GOP's leading B pictures after it. ``ffmpeg`` outputs no frame for those
packets, so they are not frames: frame 0 is the first frame the decoder outputs.

Whether a file may start so is seen in the packets (the first is not a keyframe, or a later one
is shown before the first keyframe); only then is the head of the file decoded, up to the first
frame shown at or after the first keyframe. Output leaves a decoder in presentation order, so a
packet shown before a frame that came out, that gave none itself, never will. The rest of the
file is indexed from its packets as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import av.error


def may_start_mid_gop(first_is_keyframe: bool, first_keyframe_pts: int | None, pts: Sequence[int]) -> bool:
    """Whether the decoder may drop leading packets: the first packet is not a keyframe, or some packet is
    shown before the first keyframe (an open GOP's leading pictures, which refer to the GOP before it)."""
    if not first_is_keyframe:
        return True
    return first_keyframe_pts is not None and bool(pts) and min(pts) < first_keyframe_pts


@dataclass(frozen=True)
class Lead:
    """What decoding the head of a file told: the pts of the leading packets that give no frame, and the first
    frame the decoder output (None if none did), which the probe reads its size and rotation from."""

    dropped_pts: list[int]
    first_frame: Any | None


def decode_head(container: Any, stream: Any, first_keyframe_pts: int | None) -> Lead:
    """Decode ``stream`` from the start until a frame shown at or after ``first_keyframe_pts`` comes out (the
    whole stream when no packet is a keyframe): which leading packets its decoder outputs no frame for.

    Packets the container discards (edit lists) are decoded but never counted.
    """
    stream.thread_type = "AUTO"
    stream.codec_context.copy_opaque = True  # each frame carries the opaque of the packet it came from
    fed: dict[int, int] = {}  # packet number (decode order) -> pts, of the packets that are frames unless dropped
    shown: set[int] = set()
    first: list[Any] = []
    latest: int | None = None  # the largest pts of a packet that gave a frame

    def take(frames: list[Any]) -> bool:
        nonlocal latest
        for frame in frames:
            if not first:
                first.append(frame)
            shown.add(frame.opaque)
            pts = fed.get(frame.opaque)
            if pts is not None and (latest is None or pts > latest):
                latest = pts
        return latest is not None and first_keyframe_pts is not None and latest >= first_keyframe_pts

    settled = False
    try:
        for number, packet in enumerate(container.demux(stream)):
            if packet.size == 0:
                continue
            if not packet.is_discard and packet.pts is not None:
                fed[number] = packet.pts
            packet.opaque = number
            try:
                settled = take(stream.decode(packet))
            except av.error.FFmpegError:
                continue  # no parameter sets yet, or a picture cut short by the start of the file: as in FFmpeg
            if settled:
                break
        if not settled:
            take(stream.decode(None))
    except av.error.FFmpegError:
        pass  # damage further on is the probe's to report
    dropped = [pts for number, pts in fed.items() if number not in shown and latest is not None and pts < latest]
    return Lead(dropped_pts=dropped, first_frame=first[0] if first else None)
