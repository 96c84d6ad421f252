"""Reading a live source frame by frame: a camera, a network stream, a pipe, a file still being written.

    with open_live("rtsp://cam.local/stream") as source:
        while (item := source.get(timeout=1.0)) is not None or not source.ended:
            ...  # a LiveFrame, or a SourceGap / SourceResumed / SourceEnded notice

Whatever FFmpeg opens live, through PyAV: ``rtsp://`` (``rtsp_transport`` tcp or udp), ``rtmp://``,
``srt://``, ``udp://`` and ``http(s)://`` MPEG-TS, HLS playlists, ``-`` (standard input), a V4L2 device
(``/dev/video0`` on Linux), ``avfoundation:0`` on macOS, and a file still being written (followed while it
grows). There is no index and no seeking: frames come in the order the source sends them, decoded in a
background thread.

Only the newest decoded frame waits for the consumer (``keep_all=False``): when the consumer is slower
than the source, older frames are dropped (counted), never queued. ``keep_all=True`` holds a few frames
and makes the reader wait instead, for pipes and files that must not lose a frame.

Every frame carries its stream time (seconds since the first frame, from the stream's timestamps where
they exist, else from its arrival) and its arrival (wall clock). A source that stops delivering (an error,
a stall, the end of a network stream) is reopened with backoff, each gap reported; its times go on from
where the gap ended. The end of standard input or of a file that no longer grows ends the source at once;
so does ``give_up_after_s`` without a frame.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np

from .. import defaults
from ..errors import InvalidInputError, VideoError
from .probe import display_rotation, rotation_clockwise, video_stream
from .pyav_backend import OddAngleRotation, to_display

#: Frames ``keep_all`` lets wait before the reader waits for the consumer.
KEEP_ALL_FRAMES = 4
#: A timestamp this far from where the clock says the next frame should be is a new clock (a wrap, a restart).
CLOCK_JUMP_S = 10.0
#: Stream times never step back; frames with the same timestamp are this far apart.
TIME_EPSILON = 1e-6


@dataclass(frozen=True)
class LiveSourceInfo:
    """What was opened: ``source`` as given, the ``url`` and demuxer FFmpeg used, and the first frame's size."""

    source: str
    url: str
    format: str
    codec: str
    width: int
    height: int
    fps: float | None  # the rate the stream declares, if any
    kind: str  # "network", "device", "pipe", "file" or "growing file"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One decoded frame of a live source (a :class:`garvideo.tracking.FrameLike`).

    ``index``: frames decoded since the source was opened (dropped ones count), so gaps in it are frames
    the consumer never saw. ``time``: stream time in seconds since the first frame. ``arrival``: wall clock
    (``time.time()``) when it was decoded. ``image``: ``(height, width, 3)`` uint8 RGB, displayed orientation,
    at the size of the source's first frame.
    """

    index: int
    time: float
    arrival: float
    image: np.ndarray


@dataclass(frozen=True)
class SourceGap:
    """The source stopped delivering: ``reason``; ``time`` is the stream time of the last frame before it."""

    time: float
    arrival: float
    reason: str


@dataclass(frozen=True)
class SourceResumed:
    """Frames come again after a gap of ``seconds`` (wall clock) and ``attempts`` reopenings."""

    time: float
    arrival: float
    seconds: float
    attempts: int


@dataclass(frozen=True)
class SourceEnded:
    """The source is done: the end of a pipe or file, ``give_up_after_s`` without a frame, or closed."""

    arrival: float
    reason: str


SourceNotice = SourceGap | SourceResumed | SourceEnded


@dataclass(frozen=True)
class SourceStats:
    """Counts so far: frames decoded, handed out, dropped (the consumer was behind), skipped (``track_fps``)."""

    decoded: int
    taken: int
    dropped: int
    skipped: int
    gaps: int
    resized: int


@dataclass(frozen=True)
class _Target:
    """How FFmpeg is asked to open a source."""

    url: str
    format: str | None
    options: dict[str, str]
    kind: str


def _target(source: str, input_format: str | None, options: Mapping[str, str], growing_s: float) -> _Target:
    """Where ``source`` points and how to open it: a URL, ``-``, a device or a file."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInputError("the live source is empty: give a URL (rtsp://...), a device, a file or '-'")
    source = source.strip()
    opts = {str(k): str(v) for k, v in options.items()}
    if source == "-":
        return _Target("pipe:0", input_format, opts, "pipe")
    if source.startswith("avfoundation:"):  # macOS cameras: avfoundation:0, avfoundation:"FaceTime HD Camera"
        return _Target(source.removeprefix("avfoundation:"), input_format or "avfoundation", opts, "device")
    if "://" in source:
        return _Target(source, input_format, opts, "network")
    if not os.path.exists(source):
        raise InvalidInputError(
            f"no such live source: {source} (give a URL such as rtsp://HOST/PATH, a device such as /dev/video0, a file "
            f"or '-' for standard input)"
        )
    mode = os.stat(source).st_mode
    if stat.S_ISCHR(mode):
        return _Target(source, input_format or ("v4l2" if sys.platform.startswith("linux") else None), opts, "device")
    if stat.S_ISFIFO(mode):
        return _Target(source, input_format, opts, "pipe")
    if time.time() - os.stat(source).st_mtime < growing_s:
        # Being written: read on at its end, until nothing is added for growing_s seconds (then it is done).
        opts = {"follow": "1", "rw_timeout": str(int(growing_s * 1e6)), **opts}
        return _Target(source, input_format, opts, "growing file")
    return _Target(source, input_format, opts, "file")


def _open(target: _Target, open_timeout_s: float, stall_s: float) -> Any:
    """``av.open`` with its failures as one :class:`VideoError` line naming the source."""
    try:
        return av.open(
            target.url,
            format=target.format,
            options=target.options,
            timeout=(open_timeout_s, stall_s),
            metadata_errors="replace",
        )
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoError(f"cannot open the live source {target.url}: {reason}") from None


class _Clock:
    """Stream times: from the stream's timestamps while they run on, from arrival where there are none.

    A new connection, or a timestamp jumping more than :data:`CLOCK_JUMP_S` away from the last one (a wrap, a
    restarted encoder), starts a new anchor: the time goes on from the last frame's plus the wall-clock time
    since it, so a gap lasts as long in stream time as it did in reality.
    """

    def __init__(self) -> None:
        self.started: float | None = None  # monotonic clock at the first frame
        self.last = 0.0
        self._last_seen: float | None = None  # monotonic clock at the last frame
        self._anchor: tuple[int, float, Fraction] | None = None  # (pts, its stream time, time base)

    def restart(self) -> None:
        """A new connection: its timestamps start anew."""
        self._anchor = None

    def time_of(self, pts: int | None, time_base: Fraction | None, now: float) -> float:
        if self.started is None or self._last_seen is None:
            self.started = self._last_seen = now
            if pts is not None and time_base:
                self._anchor = (pts, 0.0, time_base)
            return 0.0
        since_last = now - self._last_seen
        self._last_seen = now
        if pts is None or not time_base:
            seconds = now - self.started
        else:
            if self._anchor is None or self._anchor[2] != time_base:
                self._anchor = (pts, self.last + since_last, time_base)
            seconds = self._anchor[1] + float((pts - self._anchor[0]) * time_base)
            if not self.last - CLOCK_JUMP_S <= seconds <= self.last + since_last + CLOCK_JUMP_S:
                self._anchor = (pts, self.last + since_last, time_base)
                seconds = self._anchor[1]
        self.last = max(seconds, self.last + TIME_EPSILON)
        return self.last


class LiveReader:
    """A live source, decoded in a background thread; see the module's doc. Make one with :func:`open_live`."""

    def __init__(
        self,
        source: str,
        *,
        keep_all: bool = False,
        track_fps: float | None = defaults.LIVE_TRACK_FPS,
        reconnect_s: float = defaults.LIVE_RECONNECT_S,
        give_up_after_s: float = defaults.LIVE_GIVE_UP_AFTER_S,
        open_timeout_s: float = defaults.LIVE_OPEN_TIMEOUT_S,
        stall_s: float = defaults.LIVE_STALL_S,
        growing_s: float = defaults.LIVE_GROWING_FILE_S,
        input_format: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        for name, value in (("reconnect_s", reconnect_s), ("give_up_after_s", give_up_after_s)):
            _check_seconds(value, name)
        for name, value in (("open_timeout_s", open_timeout_s), ("stall_s", stall_s), ("growing_s", growing_s)):
            _check_seconds(value, name)
        if track_fps is not None:
            _check_seconds(track_fps, "track_fps")
        self._target = _target(source, input_format, options or {}, growing_s)
        self.source = source
        self.keep_all = bool(keep_all)
        self.track_fps = track_fps
        self.reconnect_s = float(reconnect_s)
        self.give_up_after_s = float(give_up_after_s)
        self._timeouts = (float(open_timeout_s), float(stall_s))
        self._clock = _Clock()
        self._items: collections.deque[Any] = collections.deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts = collections.Counter()
        self._next_due = -1.0
        self._gap_began: float | None = None  # wall clock when the current gap began
        self._last_arrival: float | None = None  # wall clock of the last frame decoded
        self.ended = False
        self.info, self._container, self._first_frames = self._first_open()

    # -- opening ----------------------------------------------------------------------

    def _first_open(self) -> tuple[LiveSourceInfo, Any, Iterator[Any]]:
        """Open the source and decode its first frame now, so that a source that cannot be read is an error."""
        container = _open(self._target, *self._timeouts)
        try:
            stream = _video_stream(container, self._target.url)
            frames = _frames(container, stream, self._stop)
            first = next(frames, None)
        except av.error.FFmpegError as exc:
            container.close()
            raise VideoError(f"cannot read the live source {self._target.url}: {exc}") from None
        except BaseException:
            container.close()
            raise
        if first is None:
            container.close()
            raise VideoError(f"the live source {self._target.url} gave no video frame")
        # turned as ffmpeg turns it, by the display matrix of the first frame (a stream keeps its orientation)
        self._rotation = rotation_clockwise(display_rotation(first))
        self._odd_rotation = OddAngleRotation(self._rotation) if self._rotation % 90 else None
        image = self._rgb(first)
        self._size = (image.shape[0], image.shape[1])
        rate = stream.average_rate or stream.guessed_rate
        info = LiveSourceInfo(
            source=self.source,
            url=self._target.url,
            format=container.format.name,
            codec=stream.codec_context.name,
            width=image.shape[1],
            height=image.shape[0],
            fps=float(rate) if rate else None,
            kind=self._target.kind,
        )
        self._deliver(first, image)
        return info, container, frames

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    def start(self) -> LiveReader:
        """Start reading in the background (idempotent)."""
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="garvideo-live-reader", daemon=True)
            self._thread.start()
        return self

    # -- the consumer's side ------------------------------------------------------------

    def get(self, timeout: float | None = None) -> LiveFrame | SourceNotice | None:
        """The next frame or notice, in the order they happened; None when nothing came within ``timeout``
        seconds or the source has ended and everything was taken."""
        with self._ready:
            if not self._items and not self.ended:
                self._ready.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._ready.notify_all()  # a keep_all reader may be waiting for room
        if isinstance(item, tuple):
            frame, image, index, seconds, arrival = item
            self._counts["taken"] += 1
            return LiveFrame(index, seconds, arrival, image if image is not None else self._image(frame))
        return item

    @property
    def stats(self) -> SourceStats:
        c = self._counts
        return SourceStats(c["decoded"], c["taken"], c["dropped"], c["skipped"], c["gaps"], c["resized"])

    def pending(self) -> int:
        """Frames decoded and not yet taken (at most 1, or :data:`KEEP_ALL_FRAMES` with ``keep_all``)."""
        with self._ready:
            return sum(isinstance(item, tuple) for item in self._items)

    def close(self, wait_s: float | None = None) -> None:
        """Stop reading; frames already decoded can still be taken with :meth:`get`. The thread is waited
        for up to ``wait_s`` seconds (default: the stall timeout; a blocked pipe read cannot be interrupted)."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._timeouts[1] + 1.0 if wait_s is None else wait_s)
        if thread is None and self._container is not None:
            self._container.close()
            self._container = None
            self._end("closed")

    def __enter__(self) -> LiveReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the reader's side ----------------------------------------------------------

    def _run(self) -> None:
        container, frames, attempts = self._container, self._first_frames, 0
        reason = "closed"
        try:
            while container is not None and not self._stop.is_set():
                reason = self._read(container, frames, attempts)
                container.close()
                container = self._container = None
                if self._stop.is_set():
                    reason = "closed"
                    break
                if self._target.kind in ("pipe", "file", "growing file"):  # the end of the input: done
                    reason = (
                        "the file stopped growing" if self._target.kind == "growing file" else "the end of the input"
                    )
                    break
                self._notice(SourceGap(self._clock.last, time.time(), reason))
                self._counts["gaps"] += 1
                container, attempts = self._reconnect()
                frames = None
                if container is None and not self._stop.is_set():
                    reason = f"no frame for {self.give_up_after_s:g} s: gave up reconnecting"
        finally:
            if container is not None:
                container.close()
            self._container = None
            self._end(reason)

    def _read(self, container: Any, frames: Iterator[Any] | None, attempts: int) -> str:
        """Decode one connection until it ends and say why it ended. After a reconnection its first frame is
        preceded by a :class:`SourceResumed`."""
        if frames is None:
            try:
                frames = _frames(container, _video_stream(container, self._target.url), self._stop)
            except VideoError as exc:
                return str(exc)
            self._clock.restart()
        try:
            for frame in frames:
                if self._gap_began is not None:
                    now = time.time()
                    seconds = now - self._gap_began
                    self._gap_began = None
                    self._deliver(frame, resumed=SourceResumed(self._clock.last, now, seconds, attempts))
                else:
                    self._deliver(frame)
        except av.error.FFmpegError as exc:
            return f"read error: {getattr(exc, 'strerror', None) or exc}"
        return "the stream ended"

    def _reconnect(self) -> tuple[Any, int]:
        """Reopen with backoff (``reconnect_s``, doubling, at most :data:`defaults.LIVE_RECONNECT_MAX_S`) until a
        connection opens or ``give_up_after_s`` passed since the last frame: (container or None, attempts)."""
        self._gap_began = time.time()
        last_frame = self._last_arrival or self._gap_began
        wait, attempts = self.reconnect_s, 0
        while True:
            remaining = self.give_up_after_s - (time.time() - last_frame)
            if remaining <= 0 or self._stop.wait(min(wait, remaining)):
                return None, attempts
            attempts += 1
            try:
                open_s = max(0.1, min(self._timeouts[0], self.give_up_after_s - (time.time() - last_frame)))
                return _open(self._target, open_s, self._timeouts[1]), attempts
            except VideoError:
                wait = min(wait * 2, max(self.reconnect_s, defaults.LIVE_RECONNECT_MAX_S))

    def _deliver(self, frame: Any, image: np.ndarray | None = None, resumed: SourceResumed | None = None) -> None:
        """Stamp a decoded frame and hand it over: newest wins, or wait for room with ``keep_all``. ``resumed``
        goes ahead of it (and is never dropped with it)."""
        now_wall, now = time.time(), time.monotonic()
        self._last_arrival = now_wall
        index = self._counts["decoded"]
        self._counts["decoded"] += 1
        time_base = Fraction(frame.time_base) if frame.time_base is not None else None
        seconds = self._clock.time_of(frame.pts, time_base, now)
        if resumed is not None:
            self._notice(dataclasses.replace(resumed, time=seconds))
        if self.track_fps is not None:
            if seconds < self._next_due:
                self._counts["skipped"] += 1
                return
            self._next_due = seconds + 1.0 / self.track_fps - TIME_EPSILON
        item = (frame, image, index, seconds, now_wall)
        with self._ready:
            if self.keep_all:
                while self._frames_waiting() >= KEEP_ALL_FRAMES and not self._stop.is_set():
                    self._ready.wait(0.1)
            elif self._items and isinstance(self._items[-1], tuple):  # the newest wins
                self._items.pop()
                self._counts["dropped"] += 1
            self._items.append(item)
            self._ready.notify_all()

    def _frames_waiting(self) -> int:
        return sum(isinstance(item, tuple) for item in self._items)

    def _notice(self, notice: SourceNotice) -> None:
        with self._ready:
            self._items.append(notice)
            self._ready.notify_all()

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self._notice(SourceEnded(time.time(), reason))
        with self._ready:
            self.ended = True
            self._ready.notify_all()

    def _rgb(self, frame: Any) -> np.ndarray:
        if self._odd_rotation is not None:
            return self._odd_rotation(frame)
        return to_display(frame.to_ndarray(format="rgb24"), self._rotation)

    def _image(self, frame: Any) -> np.ndarray:
        """RGB at the first frame's size (a source that changes size mid-run is scaled back to it)."""
        image = self._rgb(frame)
        if image.shape[:2] != self._size:
            import cv2

            self._counts["resized"] += 1
            image = cv2.resize(image, (self._size[1], self._size[0]), interpolation=cv2.INTER_AREA)
        return image


def _check_seconds(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive number of seconds, got {value!r}")


def _video_stream(container: Any, url: str) -> Any:
    stream = video_stream(container, f"the live source {url}")  # cover art is not the video
    stream.thread_type = "AUTO"
    return stream


def _frames(container: Any, stream: Any, stop: threading.Event):
    """Decoded frames of one connection until it ends, then what the decoder still holds; damaged packets are
    skipped. A read error or stall ends it (raised after the decoder is drained)."""
    error: av.error.FFmpegError | None = None
    try:
        for packet in container.demux(stream):
            if stop.is_set():
                return
            try:
                yield from stream.decode(packet)
            except (av.error.InvalidDataError, av.error.UndefinedError):
                continue
    except av.error.FFmpegError as exc:
        error = exc
    try:
        yield from stream.decode(None)
    except av.error.FFmpegError:
        pass
    if error is not None:
        raise error


def open_live(source: str, **options: Any) -> LiveReader:
    """A :class:`LiveReader` over ``source`` (opened now: a source that cannot be read raises
    :class:`~garvideo.errors.VideoError`); ``with`` starts it and closes it."""
    return LiveReader(source, **options)
