"""The video as the tracker sees it: frames decoded ahead in a background thread, the waiting timed.

:meth:`Pipeline.track <garvideo.pipeline.Pipeline.track>` streams every tracked frame through a
:class:`TimedSource` so its ``decode`` and ``track`` stage times add up to the call's wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ..video import DEFAULT_AHEAD, Frame, VideoReader, decode_ahead


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
