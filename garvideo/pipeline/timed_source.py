"""The video as the tracker sees it: frames decoded ahead in a background thread, the waiting timed.

:func:`track_with_sam2` is how the pipeline runs SAM2 over a video: every tracked frame streams through a
:class:`TimedSource`, so the ``decode`` and ``track`` stage times add up to the call's wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..devices import stage_threads, torch_threads
from ..tracking import FrameTracked, RegionPrompt, Sam2Tracker, Track
from ..video import DEFAULT_AHEAD, Frame, Span, VideoReader, decode_ahead
from .events import EventListener, StageProgress
from .results import StageTimings


class TimedSource:
    """A video reader seen by the tracker, its frames decoded ``ahead`` frames ahead in a background thread.

    ``seconds`` is the time the tracker waited for decoded frames: with decode-ahead that is the
    decoding *not* hidden behind tracking (all of it when tracking is faster than decoding, almost
    none when it is slower), so the pipeline's ``decode`` + ``track`` stage times still add up to the
    wall time of the tracking call. ``work_seconds`` is what the decode thread spent, overlapped or
    not. ``ahead=0`` decodes in the tracker's thread, as before. ``prepare`` (the tracker's
    :meth:`~garvideo.tracking.Sam2Tracker.prepare`) runs in the decode thread too, so the frames'
    resizing, normalising and upload to the device also overlap tracking (and count in
    ``work_seconds``, not in tracking).

    Backward, the reader decodes a GOP chunk (up to ``max_buffered_frames`` frames) before it
    hands out the chunk's first frame, so a backward stream is decoded a whole chunk ahead: the
    next chunk is decoded while this one is tracked. That holds no more frames than the reader
    alone: it keeps a chunk until the next one is decoded.
    """

    def __init__(
        self, reader: VideoReader, ahead: int = DEFAULT_AHEAD, prepare: Callable[[Frame], Any] | None = None
    ) -> None:
        self._reader = reader
        self.ahead = ahead
        self._prepare = prepare
        self.seconds = 0.0
        self.work_seconds = 0.0

    num_frames = property(lambda self: self._reader.num_frames)
    width = property(lambda self: self._reader.width)
    height = property(lambda self: self._reader.height)

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        frames = self._reader.iter_frames(start, stop, step)
        if self.ahead > 0:
            ahead = self.ahead if step > 0 else max(self.ahead, self._reader.max_buffered_frames)
            frames = decode_ahead(frames, ahead, transform=self._prepare)
        try:
            while True:
                began = time.perf_counter()
                frame = next(frames, None)
                elapsed = time.perf_counter() - began
                self.seconds += elapsed
                if self.ahead == 0:
                    self.work_seconds += elapsed
                if frame is None:
                    return
                yield frame
        finally:
            frames.close()  # with decode-ahead: stops and joins its thread before the next stream starts
            if self.ahead > 0:
                self.work_seconds += frames.work_seconds


def track_with_sam2(
    tracker: Sam2Tracker,
    reader: VideoReader,
    regions: Sequence[RegionPrompt],
    span: Span,
    stride: int,
    progress: bool,
    on_event: EventListener | None,
    threads: int | None,
) -> tuple[list[Track], StageTimings]:
    """SAM2's tracks of ``regions`` (times resolved to frames here; the tracker checks the rest) through ``span``
    on every ``stride``-th frame, decoded ahead; ``on_event`` hears every tracked frame and the progress."""
    prompts = [p.resolve(reader.time_to_index) for p in regions]
    # Prompts outside the range still anchor the track: track from them into the range.
    first = min([span.first, *(p.frame for p in prompts)])
    stop = max([span.stop, *(p.frame + 1 for p in prompts)])
    # On a GPU the frames' preprocessing (and their upload) joins decoding in the decode thread; on the CPU
    # it stays in the tracking thread: there its Python-heavy work contended with tracking's for the GIL
    # and cores, 0.82x the speed (bench/RESULTS.md, "Decode-ahead").
    on_cpu = tracker.device.type == "cpu"
    source = TimedSource(reader, prepare=None if on_cpu else tracker.prepare)
    on_frame = None
    if on_event is not None:

        def on_frame(event: FrameTracked) -> None:
            on_event(event)
            on_event(StageProgress("track", event.done, event.total))

    began = time.perf_counter()
    with torch_threads(stage_threads("track", tracker.device, threads)):
        tracks = tracker.track(
            source, prompts, start=first, stop=stop, stride=stride, progress=progress, on_frame=on_frame
        )
    elapsed = time.perf_counter() - began
    return tracks, StageTimings(decode=source.seconds, track=max(0.0, elapsed - source.seconds))
