"""Where a live session's results go as they come: a JSON lines event log, rolling subtitles, recorded segments.

Each output gets every event (:meth:`LiveOutput.on_event`), each tracked frame (:meth:`LiveOutput.on_frame`) and
is closed once, after the session's last event, so that every file is complete when the session ends:

- :class:`EventLog`: one JSON object per line (``EVENTS_SCHEMA``), each line written whole and flushed;
- :class:`RollingSubtitles`: SRT or WebVTT of every window described so far, rewritten atomically after each
  one, so a player (or ``tail``) following the file never reads half a cue;
- :class:`SegmentRecorder`: the tracked frames with masks, boxes, names and the current descriptions drawn, in
  fixed-length MP4 segments (``segment-000000.mp4``, ...), each written atomically: complete and playable.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import av
import numpy as np

from ..errors import InvalidInputError
from ..files import atomic_path, atomic_write_text
from ..outputs.drawing import FrameStyle, RegionPainter, caption_layout, draw_frame, region_colour
from ..outputs.overlay import X264_CRF, X264_PRESET, check_overlay_target
from ..outputs.subtitles import Cue, to_srt, to_vtt
from ..tracking import Track, TrackFrame
from ..video.live_source import LiveFrame
from .events import LiveEvent, SegmentWritten, WindowDescribed


class LiveOutput:
    """An output of a live session; every method is called from the session's threads, never concurrently."""

    def bind(self, emit: Callable[[LiveEvent], None]) -> None:
        """Called once before the session starts: how this output reports events of its own."""

    def on_event(self, event: LiveEvent) -> None:
        """Every event the session emits."""

    def on_frame(self, frame: LiveFrame, regions: Mapping[str, TrackFrame]) -> None:
        """Every tracked frame with each region on it."""

    def finish(self) -> None:
        """The session is ending: finish the work (it may still emit events; the ``stopped`` event comes after)."""

    def close(self) -> None:
        """The session is over (its last event was given): release the output."""


class EventLog(LiveOutput):
    """Every event as one JSON line, to ``target`` (a path, created or emptied; or an open text stream)."""

    def __init__(self, target: str | os.PathLike[str] | TextIO) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._stream: TextIO = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._owned = True
        else:
            self._stream, self._owned = target, False

    def on_event(self, event: LiveEvent) -> None:
        self._stream.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()


class RollingSubtitles(LiveOutput):
    """The windows described so far as subtitles at ``path`` (``.vtt``: WebVTT, else SRT), rewritten atomically
    after each; region names prefix the texts once there are several regions."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._render = to_vtt if self.path.suffix.lower() == ".vtt" else to_srt
        self._cues: list[tuple[str, Cue]] = []

    def on_event(self, event: LiveEvent) -> None:
        if isinstance(event, WindowDescribed) and event.visible and event.text:
            self._cues.append((event.region, Cue(event.start, event.end, event.text)))
            self._write()

    def _write(self) -> None:
        named = len({name for name, _ in self._cues}) > 1
        cues = [Cue(c.start, c.end, f"{name}: {c.text}") if named else c for name, c in self._cues]
        atomic_write_text(self.path, self._render(cues))

    def finish(self) -> None:
        if not self.path.exists():
            atomic_write_text(self.path, self._render([]))  # a session that described nothing still leaves a file


_STOP = object()


class SegmentRecorder(LiveOutput):
    """Tracked frames drawn as ``garvideo describe --overlay`` draws them, in ``segment_s``-second MP4 segments
    in ``folder``; drawn and encoded in a thread of its own, at most a few frames behind tracking."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        segment_s: float,
        fps: float | None = None,
        codec: str | None = None,
        queue_frames: int = 8,
    ) -> None:
        if isinstance(segment_s, bool) or not isinstance(segment_s, (int, float)) or not segment_s > 0:
            raise InvalidInputError(f"the segment length must be a positive number of seconds, got {segment_s!r}")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InvalidInputError(f"cannot record into {self.folder}: it is a file, not a folder")
        self.segment_s = float(segment_s)
        self._encoder = check_overlay_target(self.folder / "segment.mp4", codec=codec)
        self._rate = Fraction(fps if fps and fps > 0 else 25.0).limit_denominator(1001)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_frames)
        self._emit: Callable[[LiveEvent], None] = lambda event: None
        self._segment: _Segment | None = None
        self._captions: dict[str, str] = {}
        self._colours: dict[str, tuple[int, int, int]] = {}
        self._thread = threading.Thread(target=self._run, name="garvideo-live-record", daemon=True)
        self._thread.start()

    def bind(self, emit: Callable[[LiveEvent], None]) -> None:
        self._emit = emit

    def on_event(self, event: LiveEvent) -> None:
        if isinstance(event, WindowDescribed):
            self._queue.put(("caption", event.region, event.text if event.visible else None))

    def on_frame(self, frame: LiveFrame, regions: Mapping[str, TrackFrame]) -> None:
        self._queue.put(("frame", frame, dict(regions)))

    def finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not _STOP:
                if item[0] == "caption":
                    self._captions[item[1]] = item[2]
                    if item[2] is None:
                        del self._captions[item[1]]
                else:
                    self._record(item[1], item[2])
        finally:
            self._finish()

    def _record(self, frame: LiveFrame, regions: Mapping[str, TrackFrame]) -> None:
        number = int(math.floor(frame.time / self.segment_s))
        if self._segment is not None and self._segment.number != number:
            self._finish()
        if self._segment is None:
            height, width = frame.image.shape[:2]
            path = self.folder / f"segment-{number:06d}.mp4"
            self._segment = _Segment(number, path, width, height, self._encoder, self._rate, number * self.segment_s)
        for name in regions:
            self._colours.setdefault(name, region_colour(len(self._colours)))
        painters = [
            RegionPainter(Track(name=name, obj_id=1, frames=(entry,)), self._colours[name])
            for name, entry in regions.items()
        ]
        texts = tuple(f"{name}: {text}" for name, text in self._captions.items() if name in regions)
        style = self._segment.style
        layout = caption_layout(texts, style) if texts else None
        self._segment.write(draw_frame(frame.image, frame.index, painters, layout, style), frame.time)

    def _finish(self) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            written = segment.close()
            self._emit(
                SegmentWritten(
                    time=segment.last_time,
                    arrival=None,
                    path=str(written),
                    start=segment.start,
                    end=segment.start + self.segment_s,
                    frames=segment.frames,
                )
            )


class _Segment:
    """One MP4 being written at a temporary path beside its own (renamed when closed)."""

    def __init__(
        self, number: int, path: Path, width: int, height: int, encoder: str, rate: Fraction, start: float
    ) -> None:
        self.number, self.path, self.start = number, path, start
        self.style = FrameStyle.for_frame(width, height, 0.4)
        self.frames = 0
        self.last_time = start
        self._last_pts = -1
        self._files = contextlib.ExitStack()
        tmp = self._files.enter_context(atomic_path(path))
        self._container = self._files.enter_context(av.open(str(tmp), "w", options={"movflags": "+faststart"}))
        stream = self._container.add_stream(encoder, rate=rate)
        stream.width, stream.height = width, height
        supported = [f.name for f in (stream.codec_context.codec.video_formats or ())]
        stream.pix_fmt = "yuv444p" if (width % 2 or height % 2) and "yuv444p" in supported else "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if encoder == "libx264":
            stream.options = {"preset": X264_PRESET, "crf": str(X264_CRF)}
        else:
            stream.bit_rate = max(2_000_000, int(width * height * float(rate) * 0.5))
        self._stream = stream

    def write(self, image: np.ndarray, seconds: float) -> None:
        out = av.VideoFrame.from_ndarray(image, format="rgb24")
        out.pts = self._last_pts = max(self._last_pts + 1, round((seconds - self.start) * 1000))
        out.time_base = Fraction(1, 1000)
        self._container.mux(self._stream.encode(out))
        self.frames += 1
        self.last_time = seconds

    def close(self) -> Path:
        try:
            self._container.mux(self._stream.encode())
        except BaseException:
            self._files.__exit__(*sys.exc_info())
            raise
        self._files.close()  # the container, then the rename onto the segment's path
        return self.path
