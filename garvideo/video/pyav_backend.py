"""Decoding chosen frames with PyAV: forward through a GOP when that is cheaper, seeking otherwise."""

from __future__ import annotations

import collections
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import av.error
import numpy as np

from .decoded_index import DecodedIndex, packet_key
from .facts import DecodeStats, Frame, VideoDecodeWarning
from .probe import open_container
from .timeline import Timeline

# A seek flushes the decoder and refills its pipeline (frame threads, B-frame
# delay); decoding this many frames forward costs about the same.
SEEK_COST_FRAMES = 4


def to_display(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored picture ``rotation`` degrees clockwise, as a player shows it."""
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))


class PyAVDecoder:
    """Decodes frames by display index from one open container.

    Frames are identified by their timestamps (looked up in the timeline), or,
    for files indexed by decoding (``decoded``), by the packet each came from;
    never by counting after a seek, so a frame the decoder drops cannot shift
    the ones after it. Only streams without timestamps are counted, from the
    start of the file.
    """

    def __init__(
        self,
        path: str,
        stream_index: int,
        timeline: Timeline,
        rotation: int,
        threads: int = 0,
        decoded: DecodedIndex | None = None,
        stream_headers: bytes | None = None,
    ) -> None:
        self._path = path
        self._stream_index = stream_index
        self._threads = threads
        self._timeline = timeline
        self._rotation = rotation
        self._decoded = decoded
        self._stream_headers = stream_headers
        self._can_seek = timeline.exact and (decoded.seekable if decoded is not None else timeline.pts is not None)
        self._frames_decoded = 0
        self._seeks = 0
        self._open()

    def _open(self) -> None:
        self._container = open_container(self._path)
        self._stream = self._container.streams[self._stream_index]
        self._stream.thread_type = "AUTO"  # frame and slice threads
        self._stream.thread_count = self._threads
        if self._stream_headers:
            self._stream.codec_context.extradata = self._stream_headers  # as a decode from the start reads them
        if self._decoded is not None:
            self._stream.codec_context.copy_opaque = True  # frames carry their packet's identity
        self._reset_position(next_index=0)

    def close(self) -> None:
        self._container.close()

    @property
    def stats(self) -> DecodeStats:
        return DecodeStats(frames_decoded=self._frames_decoded, seeks=self._seeks)

    # -- positioning ---------------------------------------------------------

    def _rewind(self) -> None:
        """Start over from the first frame (streams without timestamps cannot seek)."""
        self._container.close()
        self._open()

    def _reset_position(self, next_index: int) -> None:
        self._packets = self._container.demux(self._stream)
        self._pending: collections.deque[tuple[Any, int | None]] = collections.deque()  # (frame, its index)
        self._at_end = False
        self._next_index = next_index  # display index the decoder is expected to give next
        self._counted = next_index - 1  # last index given out when counting (no timestamps)
        self._taken: dict[Any, int] = {}  # frames seen per packet since the last seek (decoded index)

    def _seek_to_keyframe(self, keyframe_position: int) -> None:
        # Demuxers (MP4 and Matroska included) seek by presentation time; one that
        # lands elsewhere is caught by _position_for.
        keyframe = int(self._timeline.keyframes[keyframe_position])
        if self._decoded is not None:
            seek_target = self._decoded.seek_targets[keyframe_position]
            if seek_target is None:
                self._rewind()  # frame 0: from the very start, as FFmpeg decodes it
                return
            target = seek_target  # the keyframe packet's decode timestamp
        else:
            assert self._timeline.pts is not None
            target = int(self._timeline.pts[keyframe])
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._seeks += 1
        self._reset_position(next_index=keyframe)

    def _should_seek(self, wanted: int) -> bool:
        keyframe = int(self._timeline.keyframes[self._timeline.keyframe_at_or_before(wanted)])
        if wanted < self._next_index:
            return True  # behind us: only a seek (or a restart) goes back
        return keyframe > self._next_index + SEEK_COST_FRAMES

    # -- decoding ------------------------------------------------------------

    def _next_decoded(self) -> tuple[Any, int | None] | None:
        """The next frame out of the decoder and its display index (None: not a frame of the
        timeline), or None at the end of the stream."""
        while not self._pending:
            if self._at_end:
                return None
            try:
                packet = next(self._packets)
            except StopIteration:
                packet = None
            except av.error.FFmpegError:
                packet = None  # unreadable rest of the file: drain what the decoder holds
            if packet is None:
                self._at_end = True
            elif packet.size == 0 or packet.is_corrupt or packet.is_discard:
                continue
            elif self._decoded is not None:
                packet.opaque = packet_key(packet)
            try:
                decoded = self._stream.decode(packet)
            except av.error.EOFError:
                continue
            except av.error.FFmpegError:
                continue  # a damaged packet: frames that need it will be missing, noticed by the caller
            self._frames_decoded += len(decoded)
            self._pending.extend((frame, self._index_of(frame)) for frame in decoded)
        return self._pending.popleft()

    def _index_of(self, frame: Any) -> int | None:
        if self._decoded is not None:
            # The n-th frame out of a packet since the seek is the n-th it gave in the from-start scan.
            indices = self._decoded.frames_of_packet.get(frame.opaque, ())
            taken = self._taken.get(frame.opaque, 0)
            self._taken[frame.opaque] = taken + 1
            return indices[taken] if taken < len(indices) else None
        if self._timeline.exact:
            return self._timeline.index_of_pts(frame.pts)
        self._counted += 1
        return self._counted

    def _to_frame(self, decoded: Any, index: int) -> Frame:
        image = to_display(decoded.to_ndarray(format="rgb24"), self._rotation)
        return Frame(index=index, time=float(self._timeline.times[index]), image=image)

    def _position_for(self, wanted: int) -> None:
        """Seek to the last keyframe at or before ``wanted``, stepping back if the seek lands later."""
        if not self._can_seek:
            self._rewind()
            return
        position = self._timeline.keyframe_at_or_before(wanted)
        while True:
            self._seek_to_keyframe(position)
            decoded = self._next_decoded()
            if decoded is not None:
                self._pending.appendleft(decoded)  # not consumed: the caller decodes from here
            index = None if decoded is None else decoded[1]
            if decoded is not None and index is None and self._decoded is not None:
                self._rewind()  # landed on packets the scan does not know: start over, exact
                return
            if position == 0 or index is None or index <= wanted:
                return
            position -= 1

    def decode(self, indices: Iterable[int]) -> Iterator[Frame]:
        """Yield the frames at ``indices`` (ascending, distinct, in range) in order, one at a time.

        Frames that cannot be decoded are skipped with a :class:`VideoDecodeWarning`.
        """
        timeline = self._timeline
        wanted_iter = iter(indices)
        wanted = next(wanted_iter, None)
        positioned_for = None
        while wanted is not None:
            if wanted != positioned_for and self._should_seek(wanted):
                self._position_for(wanted)
                positioned_for = wanted  # where the seek landed, decode forward from there
            next_decoded = self._next_decoded()
            if next_decoded is None:
                warnings.warn(
                    f"decoding {timeline.name} stopped at frame {wanted} ({timeline.times[wanted]:.3f} s) "
                    f"of 0-{len(timeline) - 1}: the rest of the file cannot be decoded, so frames from "
                    f"{wanted} on were not returned",
                    VideoDecodeWarning,
                    stacklevel=2,
                )
                return
            decoded, index = next_decoded
            if index is None:
                continue
            self._next_index = index + 1
            if index < wanted:
                continue  # decoded only as a reference for the frames we want
            if index > wanted:
                missing = wanted
                while wanted is not None and wanted < index:
                    wanted = next(wanted_iter, None)
                warnings.warn(
                    f"{timeline.name}: frames {missing} to {index - 1} could not be decoded (damaged data); "
                    "they were skipped",
                    VideoDecodeWarning,
                    stacklevel=2,
                )
                if wanted != index:
                    continue
            yield self._to_frame(decoded, index)
            wanted = next(wanted_iter, None)
