"""Decoding chosen frames with PyAV: forward through a GOP when that is cheaper, seeking otherwise."""

from __future__ import annotations

import collections
import warnings
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

import av.error
import av.filter
import numpy as np

from .decoded_index import DecodedIndex, is_mpeg_stream, packet_key
from .facts import DecodeStats, Frame, VideoDecodeWarning
from .probe import open_container
from .timeline import Timeline

# A seek flushes the decoder and refills its pipeline (frame threads, B-frame
# delay); decoding this many frames forward costs about the same.
SEEK_COST_FRAMES = 4


def to_display(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored picture ``rotation`` degrees clockwise (a multiple of 90), as a player shows it."""
    if rotation == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))


class OddAngleRotation:
    """FFmpeg's own ``rotate`` filter, which ``ffmpeg`` applies to display matrices that are not a multiple of
    90 degrees: the picture turned ``degrees`` clockwise inside a frame of the same size, corners black."""

    def __init__(self, degrees: int) -> None:
        self._angle = f"{float(degrees):f}*PI/180"  # the expression ffmpeg gives the filter
        self._graph: Any = None
        self._shape: tuple[int, int, str] | None = None

    def __call__(self, frame: Any) -> np.ndarray:
        shape = (frame.width, frame.height, frame.format.name)
        if shape != self._shape:  # a stream may change size or pixel format midway
            self._graph = av.filter.Graph()
            source = self._graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format.name, time_base=Fraction(1, 1)
            )
            rotate = self._graph.add("rotate", self._angle)
            sink = self._graph.add("buffersink")
            source.link_to(rotate)
            rotate.link_to(sink)
            self._graph.configure()
            self._shape = shape
        self._graph.push(frame)
        return self._graph.pull().to_ndarray(format="rgb24")


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
        seek_targets: tuple[int | None, ...] | None = None,
    ) -> None:
        self._path = path
        self._stream_index = stream_index
        self._threads = threads
        self._timeline = timeline
        self._rotation = rotation
        self._decoded = decoded
        self._stream_headers = stream_headers
        # Where to seek for each keyframe when not to its pts (None: start over); the decoded index knows its own.
        self._seek_targets = decoded.seek_targets if decoded is not None else seek_targets
        self._odd_rotation = OddAngleRotation(rotation) if rotation % 90 else None
        self._keyframe_indices = frozenset(int(k) for k in timeline.keyframes)
        self._can_seek = timeline.exact and (decoded.seekable if decoded is not None else timeline.pts is not None)
        self._frames_decoded = 0
        self._seeks = 0
        self._open()

    def _open(self) -> None:
        self._container = open_container(self._path)
        self._stream = self._container.streams[self._stream_index]
        self._gaps_decoded = is_mpeg_stream(self._container.format.name)  # as FFmpeg, and as the probe counted
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
        # After a seek, packets before the first keyframe are left out: some demuxers (MPEG-TS) land on
        # any packet, and a decoder given a P-frame first may output it drawn over a grey picture.
        self._await_keyframe = False

    def _seek_to_keyframe(self, keyframe_position: int) -> None:
        # Demuxers (MP4 and Matroska included) seek by presentation time; one that
        # lands elsewhere is caught by _position_for.
        keyframe = int(self._timeline.keyframes[keyframe_position])
        if self._seek_targets is not None:
            seek_target = self._seek_targets[keyframe_position]
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
        self._await_keyframe = True

    def _should_seek(self, wanted: int) -> bool:
        keyframe = int(self._timeline.keyframes[self._timeline.keyframe_at_or_before(wanted)])
        if wanted < self._next_index:
            return True  # behind us: only a seek (or a restart) goes back
        return keyframe > self._next_index + SEEK_COST_FRAMES

    # -- decoding ------------------------------------------------------------

    def _next_packet(self) -> Any | None:
        """The next packet to give the decoder; None at the end of the data (then the decoder is drained)."""
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                return None
            except av.error.FFmpegError:
                return None  # unreadable rest of the file: drain what the decoder holds
            # (packets an edit list discards are decoded all the same: the frames after them refer to theirs,
            # and the decoder drops their own frames, as in FFmpeg)
            if packet.size == 0 or (packet.is_corrupt and not self._gaps_decoded):
                continue
            if self._await_keyframe:
                if not packet.is_keyframe:
                    continue
                self._await_keyframe = False
                if not self._known_keyframe(packet):
                    self._rewind()  # a seek that lands where the timestamps are not the probe's: start over
                    continue
            if self._decoded is not None:
                packet.opaque = packet_key(packet)
            return packet

    def _known_keyframe(self, packet: Any) -> bool:
        """Whether a keyframe packet reached after a seek carries a keyframe's timestamp as the probe read it
        (a demuxer that interpolates timestamps may number packets differently after a seek)."""
        if self._decoded is not None:
            return True  # frames are known by their packets, whatever the timestamps say
        index = self._timeline.index_of_pts(packet.pts)
        return index is not None and index in self._keyframe_indices

    def _next_decoded(self) -> tuple[Any, int | None] | None:
        """The next frame out of the decoder and its display index (None: not a frame of the
        timeline), or None at the end of the stream."""
        while not self._pending:
            if self._at_end:
                return None
            packet = self._next_packet()
            self._at_end = packet is None
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
        if self._odd_rotation is not None:
            image = self._odd_rotation(decoded)
        else:
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
            if position == 0 or (decoded is not None and (index is None or index <= wanted)):
                return
            position -= 1  # landed later, or nothing decodes from there: try the keyframe before

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
