"""``open_video``: a video's facts, exact index/time mapping, frame sampling and bounded decoding."""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Literal, Protocol

from ..errors import InvalidInputError, VideoError
from . import sampling
from .decoded_index import is_mpeg_stream
from .decord_backend import DecordDecoder, decord_available
from .facts import DecodeStats, Frame, FrameSelection, VideoDecodeWarning, VideoInfo, Window
from .frame_folder import FrameFolderDecoder, is_frame_folder, probe_frame_folder
from .probe import Probe, open_container, probe, video_stream
from .pyav_backend import PyAVDecoder
from .timeline import Timeline

Backend = Literal["auto", "pyav", "decord"]

#: Decoded RGB bytes a backward iteration (or a decord batch) may hold at once by
#: default; it sets how many frames that is (97 at 720p, 43 at 1080p, 10 at 4K).
DEFAULT_BUFFER_BYTES = 256 * 1024 * 1024
#: Bounds on that number of frames, whatever the frame size.
MIN_BUFFERED_FRAMES, MAX_BUFFERED_FRAMES = 4, 256


def default_max_buffered_frames(width: int, height: int) -> int:
    """Frames of ``width`` x ``height`` RGB that fit :data:`DEFAULT_BUFFER_BYTES` (within the bounds)."""
    fit = DEFAULT_BUFFER_BYTES // max(1, width * height * 3)
    return max(MIN_BUFFERED_FRAMES, min(MAX_BUFFERED_FRAMES, fit))


class _Decoder(Protocol):
    def decode(self, indices: Iterable[int]) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    @property
    def stats(self) -> DecodeStats | None: ...


class VideoReader:
    """An open video: its :class:`VideoInfo`, its :class:`Timeline` and frame decoding.

    Use :func:`open_video` to make one; close it (or use ``with``) to release the file.
    """

    def __init__(self, info: VideoInfo, timeline: Timeline, decoder: _Decoder, backend: str, max_buffered_frames: int):
        self.info = info
        self.timeline = timeline
        self.backend = backend
        self.max_buffered_frames = max_buffered_frames
        self._decoder = decoder

    # -- facts ---------------------------------------------------------------

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def duration(self) -> float:
        return self.info.duration

    def index_to_time(self, index: int) -> float:
        """Presentation time (seconds since the first frame) of frame ``index``."""
        return self.timeline.index_to_time(index)

    def time_to_index(self, seconds: float) -> int:
        """Index of the frame on screen at ``seconds``."""
        return self.timeline.time_to_index(seconds)

    # -- streaming -----------------------------------------------------------

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        """Frames ``start, start + step, ...`` with ``range()`` semantics (``stop`` exclusive).

        A negative ``step`` goes backward from ``start`` (``stop=None``: down to frame
        0 included). Whatever the video's length, at most ``max_buffered_frames``
        decoded frames are held at once (forward: one).
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step == 0:
            raise InvalidInputError(f"the frame step must be a non-zero integer, got {step!r}")
        if stop is not None and (isinstance(stop, bool) or not isinstance(stop, numbers.Integral)):
            raise InvalidInputError(f"the frame to stop before must be an integer index or None, got {stop!r}")
        step = int(step)
        start = self.timeline.check_index(start)
        if step > 0:
            stop = self.num_frames if stop is None else max(0, min(int(stop), self.num_frames))
            return self._decoder.decode(range(start, stop, step))
        stop = -1 if stop is None else max(-1, min(int(stop), self.num_frames))
        return self._iter_backward(range(start, stop, step))

    def _iter_backward(self, wanted: range) -> Iterator[Frame]:
        # Chunks of at most max_buffered_frames frames, each inside one GOP: decode a
        # chunk forward from its keyframe, hand it out reversed, then step back.
        position = 0
        while position < len(wanted):
            keyframe = int(self.timeline.keyframes[self.timeline.keyframe_at_or_before(wanted[position])])
            end = position + 1
            while end < len(wanted) and end - position < self.max_buffered_frames and wanted[end] >= keyframe:
                end += 1
            chunk = list(self._decoder.decode(wanted[position:end][::-1]))
            yield from reversed(chunk)
            position = end

    # -- sampling ------------------------------------------------------------

    def sample_uniform(
        self, count: int, start: float | str | None = None, end: float | str | None = None
    ) -> FrameSelection:
        """``count`` of the frames that start in ``[start, end)`` seconds (default: the whole video), spread
        evenly with the first and last included: the pipeline's spread (:func:`~garvideo.video.sampling.uniform`)."""
        return sampling.uniform(self.timeline, count, start, end)

    def sample_rate(
        self, fps: float, start: float | str | None = None, end: float | str | None = None
    ) -> FrameSelection:
        """The frames on screen every ``1 / fps`` seconds over ``[start, end)``."""
        return sampling.at_rate(self.timeline, fps, start, end)

    def sample_every(self, step: int, start: int = 0, stop: int | None = None) -> FrameSelection:
        """Every ``step``-th frame index from ``start`` to ``stop`` (exclusive)."""
        return sampling.every(self.timeline, step, start, stop)

    def select_indices(self, indices: Iterable[int]) -> FrameSelection:
        """These frame indices with their times, in the given order."""
        return sampling.at_indices(self.timeline, indices)

    def select_times(self, seconds: Iterable[float]) -> FrameSelection:
        """The frames on screen at these times, in the given order."""
        return sampling.at_times(self.timeline, seconds)

    def sample_windows(
        self,
        length: float | None = None,
        frames_per_window: int | None = None,
        fps: float | None = None,
        start: float | str | None = None,
        end: float | str | None = None,
    ) -> list[Window]:
        """The windows ``Pipeline.describe`` cuts ``[start, end)`` into (``length`` None: its adaptive length; a
        short last window merged), each with its frames (:func:`~garvideo.video.sampling.windows`)."""
        return sampling.windows(self.timeline, length, frames_per_window, fps, start, end)

    # -- decoding a selection ------------------------------------------------

    def read(self, selection: FrameSelection | Iterable[int]) -> list[Frame]:
        """Decode the selected frames, returned in the selection's order (repeats share one Frame).

        The distinct frames are decoded in ascending order: forward through a GOP
        where that is cheaper than seeking, seeking to a keyframe otherwise.
        Frames that cannot be decoded (damaged file) are left out, with a
        :class:`VideoDecodeWarning` that names them (and the decoder's warning saying why).
        """
        raw = selection.indices if isinstance(selection, FrameSelection) else selection
        indices = tuple(self.timeline.check_index(i) for i in raw)  # a selection made on another video too
        wanted = sorted(set(indices))
        decoded = {frame.index: frame for frame in self._decoder.decode(wanted)}
        missing = [i for i in wanted if i not in decoded]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
            warnings.warn(
                f"{self.path}: {len(missing)} of the {len(wanted)} frames asked for could not be decoded and are "
                f"left out: {shown} (damaged or missing data in the file)",
                VideoDecodeWarning,
                stacklevel=2,
            )
        return [decoded[i] for i in indices if i in decoded]

    def frame(self, index: int) -> Frame:
        """The frame at ``index``."""
        frames = self.read([self.timeline.check_index(index)])
        if not frames:
            raise VideoError(f"frame {index} of {self.path} cannot be decoded")
        return frames[0]

    def frame_at(self, seconds: float) -> Frame:
        """The frame on screen at ``seconds``."""
        return self.frame(self.time_to_index(seconds))

    @property
    def decode_stats(self) -> DecodeStats | None:
        """Frames decoded and seeks made so far (PyAV backend; None for decord)."""
        return self._decoder.stats

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        self._decoder.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        info = self.info
        return (
            f"VideoReader({info.path!r}, {info.width}x{info.height}, {info.num_frames} frames, "
            f"{info.fps:.3f} fps, backend={self.backend!r})"
        )


def video_info(path: str | os.PathLike[str], *, fps: float | None = None) -> VideoInfo:
    """The facts of the video at ``path`` without keeping it open (reads its packets, decodes one frame).

    A folder is read as a frame folder (see :mod:`garvideo.video.frame_folder`; ``fps`` is its frame
    rate, 30 if None).
    """
    if is_frame_folder(path):
        return probe_frame_folder(path, fps)[0]
    _no_fps_for_files(path, fps)
    return probe(os.fspath(path)).info


def _no_fps_for_files(path: str | os.PathLike[str], fps: float | None) -> None:
    if fps is not None:
        raise InvalidInputError(
            f"fps applies to frame folders only: {os.fspath(path)} is a video file, whose timestamps give its frame rate"
        )


def open_video(
    path: str | os.PathLike[str],
    backend: Backend = "pyav",
    *,
    max_buffered_frames: int | None = None,
    threads: int = 0,
    fps: float | None = None,
) -> VideoReader:
    """Open a video file, or a folder of frames, for reading.

    ``backend``: ``"pyav"`` (the default), ``"decord"`` (optional extra, an error
    when absent, and for files decord cannot read frame-exactly: rotated ones, MPEG
    transport and program streams, and those indexed by decoding, see
    :mod:`garvideo.video.decoded_index`) or
    ``"auto"`` (decord when installed and able to read this file, else PyAV). PyAV is the default because it handles rotated and damaged files,
    which decord 0.6 does not, and was not slower in ``bench/decode.py``.
    ``max_buffered_frames``: most decoded frames held at once when iterating
    backward (each chunk decodes forward from a keyframe, so more frames mean
    fewer passes over long GOPs); None = as many as fit in 256 MiB of RGB.
    ``threads``: decoder threads (0 = let FFmpeg choose). Raises
    :class:`~garvideo.errors.VideoError` for a missing, unreadable or video-less file;
    a truncated file opens with a :class:`VideoDecodeWarning`.

    A folder is read as a frame folder (DAVIS, MeViS): its image files sorted by name are the
    frames, frame ``i`` at ``i / fps`` seconds (``fps`` defaults to 30; it is an error for
    files, which carry their own timestamps); see :mod:`garvideo.video.frame_folder`.
    Its reader's ``backend`` is ``"images"`` and its ``info.codec`` is ``"images"``.
    """
    if backend not in ("auto", "pyav", "decord"):
        raise InvalidInputError(f"unknown video backend {backend!r}: use 'auto', 'pyav' or 'decord'")
    if max_buffered_frames is not None and (
        isinstance(max_buffered_frames, bool)
        or not isinstance(max_buffered_frames, numbers.Integral)
        or max_buffered_frames < 1
    ):
        raise InvalidInputError(f"max_buffered_frames must be a positive integer, got {max_buffered_frames!r}")
    if max_buffered_frames is not None:
        max_buffered_frames = int(max_buffered_frames)
    name = os.fspath(path)
    if is_frame_folder(name):
        folder_info, folder_timeline, files = probe_frame_folder(name, fps)
        if max_buffered_frames is None:
            max_buffered_frames = default_max_buffered_frames(folder_info.width, folder_info.height)
        decoder_of_images = FrameFolderDecoder(files, folder_timeline, folder_info.width, folder_info.height)
        return VideoReader(folder_info, folder_timeline, decoder_of_images, "images", max_buffered_frames)
    _no_fps_for_files(name, fps)
    facts = probe(name)
    info, timeline = facts.info, facts.timeline
    if max_buffered_frames is None:
        max_buffered_frames = default_max_buffered_frames(info.width, info.height)
    if backend == "decord" or (backend == "auto" and decord_available()):
        try:
            decoder: _Decoder = DecordDecoder(
                name, timeline, info.rotation, max_buffered_frames, threads, not_exact=_not_for_decord(facts)
            )
            return VideoReader(info, timeline, decoder, "decord", max_buffered_frames)
        except VideoError:
            if backend == "decord":
                raise
    with open_container(name) as container:
        stream_index = video_stream(container, name).index
    decoder = PyAVDecoder(
        name,
        stream_index,
        timeline,
        info.rotation,
        threads,
        decoded=facts.decoded,
        stream_headers=facts.stream_headers,
        seek_targets=facts.seek_targets,
    )
    return VideoReader(info, timeline, decoder, "pyav", max_buffered_frames)


def _not_for_decord(facts: Probe) -> str | None:
    """Why decord would give other frames than FFmpeg's for this file; None if it gives the same."""
    if facts.decoded is not None:
        return (
            "its frames are not one per packet in timestamp order: packed B-frames, B-frames without "
            "presentation timestamps, or repeated or backward timestamps"
        )
    if is_mpeg_stream(facts.info.container):
        return "an MPEG transport or program stream, which decord seeks to the wrong frames"
    if facts.leading_dropped:
        return f"it starts mid-GOP: FFmpeg's decoder drops its first {facts.leading_dropped} packets, decord does not"
    if facts.discarded:
        return f"its edit list hides {facts.discarded} packets, which decord shows"
    return None


@contextlib.contextmanager
def reading(video: str | os.PathLike[str] | VideoReader, **options) -> Iterator[VideoReader]:
    """Use an open :class:`VideoReader` as it is (the caller closes it), or open a path for the block.

    ``options`` go to :func:`open_video` when a path is opened.
    """
    if isinstance(video, VideoReader):
        yield video
        return
    with open_video(video, **options) as reader:
        yield reader
