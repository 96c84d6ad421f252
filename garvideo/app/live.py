"""The Live tab's side of the app: a stream opened as a ``garvideo.live`` session, one at a time per app.

The tab drives the session through its public API only (``Pipeline.live``, the session's ``add``, ``remove``,
``ask``, ``close`` and its events, received by a :class:`~garvideo.app.live_feed.LiveFeed`). What it may open is
checked as every other request field is: a URL of a scheme the app allows (never ``file://``), a device the app
was started with (``--live-device``), or a file under ``--root``.

A live session holds the models (SAM2 tracks every frame, GAR describes every window) and threads, so it takes
the app's model queue (:class:`~garvideo.app.jobs.ModelQueue`) while it runs: the file jobs of every tab wait,
their pages saying for what. It ends when its tab says Stop, when its tab closes (or its session ends: the
app's idle limit, ``close_session``), and when the app stops; its place in the queue goes with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import defaults
from ..errors import GarvideoError
from ..pipeline import Pipeline, RegionPrompt, TextSearch
from .jobs import ModelQueue
from .live_feed import FeedSnapshot, LiveFeed, Turn
from .session import AppError

#: URL schemes the Live tab opens: FFmpeg's network protocols for live video (an HLS playlist is http(s)).
LIVE_SCHEMES = ("udp", "http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "srt")
#: The only protocols FFmpeg may use for a URL and what it leads to (an HLS playlist's segments, RTSP's RTP, a
#: redirect): never ``file``, ``pipe`` or the like, so no stream makes the app read a file of this machine.
NETWORK_PROTOCOLS = "udp,rtp,srtp,tcp,tls,http,https,httpproxy,rtsp,rtsps,rtmp,rtmps,rtmpt,rtmpts,srt,crypto,data"
#: How long Stop (and the app stopping) waits for the session to finish its last window.
STOP_WAIT_S = 60.0


class LiveBusy(AppError):
    """A live session already runs in this app (one at a time: it holds the models)."""


@dataclass(frozen=True)
class LiveSource:
    """What a Live tab opens: ``target`` is given to FFmpeg; ``shown`` names it on the page and in messages (a URL
    with its password hidden, a file as ``--root/relative``)."""

    target: str
    shown: str
    kind: str  # "url", "device" or "file"
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)  # FFmpeg input options


@dataclass(frozen=True)
class LiveOptions:
    """The Live tab's settings (``garvideo live``'s options of the same names)."""

    window: float = defaults.LIVE_WINDOW
    frames_per_window: int = defaults.FRAMES_PER_WINDOW
    max_new_tokens: int = defaults.MAX_NEW_TOKENS
    max_instances: int = defaults.LIVE_MAX_INSTANCES
    search_every: float = defaults.LIVE_SEARCH_EVERY
    keep_all: bool = False

    def session_options(self, search: TextSearch) -> dict[str, Any]:
        """The keywords of ``Pipeline.live`` (the text thresholds are the app's: ``garvideo app``'s options)."""
        return {
            "window": self.window,
            "frames_per_window": self.frames_per_window,
            "max_new_tokens": self.max_new_tokens,
            "max_instances": self.max_instances,
            "search_every": self.search_every,
            "keep_all": self.keep_all,
            "box_threshold": search.box_threshold,
            "text_threshold": search.text_threshold,
            "match_iou": search.match_iou,
        }


class LiveStream:
    """One tab's live session: its source and settings, its place in the model queue, the running session and the
    feed the page reads. Made by :meth:`LiveRoom.reserve`; the session starts once the queue lets it."""

    def __init__(self, key: str, source: LiveSource, options: LiveOptions, queue: ModelQueue) -> None:
        self.key, self.source, self.options = key, source, options
        self._queue = queue
        self.ticket = queue.join("live")
        self.feed = LiveFeed(on_closed=self._release)
        self.session: Any = None  # the garvideo.live.LiveSession while it runs
        self.failure: str | None = None  # why it could not open, or failed
        self._lock = threading.Lock()
        self._active = True  # holds the room (and its place in the queue) until released
        self._stopping = False
        self._opening = False
        self.rendered: tuple[int, str] | None = None  # the newest frame drawn for the page: (seq, data URL)
        self.sent: dict[str, int] = {}  # what the page was last sent (FeedSnapshot.versions)
        self.tick = 0  # panels sent: each differs from the one before, so the page always asks for the next
        self.name = ""  # the name field's text: kept until the user types another

    @property
    def active(self) -> bool:
        with self._lock:
            return self._active

    @property
    def state(self) -> str:
        """``waiting`` (for the model queue), ``running``, ``stopping`` or ``stopped``."""
        with self._lock:
            if not self._active:
                return "stopped"
            if self._stopping:
                return "stopping"
            return "running" if self.session is not None else "waiting"

    def start(self, pipeline: Pipeline, search: TextSearch) -> None:
        """Open the source and start the session (its turn in the queue has come); the CLI's line if it cannot."""
        with self._lock:
            if self._stopping or not self._active:
                raise AppError("the live session was stopped before its source opened")
            self._opening = True
        try:
            session = pipeline.live(
                self.source.target,
                (),
                stream_text=True,
                input_options=dict(self.source.options),
                outputs=[self.feed],
                **self.options.session_options(search),
            )
        except BaseException as exc:
            with self._lock:
                self._opening = False
            self._release()
            if isinstance(exc, GarvideoError):
                raise _renamed(exc, self.source) from None
            raise
        with self._lock:
            self._opening = False
            # a source that ended at once has released its place already; a tab gone meanwhile stops it now
            keep = self._active and not self._stopping
            if keep:
                self.session = session
        if not keep:
            with contextlib.suppress(Exception):
                session.close(STOP_WAIT_S)
            self._release()

    def running_session(self) -> Any:
        with self._lock:
            session = self.session if self._active and not self._stopping else None
        if session is None:
            raise AppError("no live session runs in this tab: open a stream first")
        return session

    def add(self, prompt: RegionPrompt, how: str, mark: str) -> None:
        self.running_session().add(prompt)
        self.feed.marked(prompt.name, how, mark)

    def remove(self, name: str) -> None:
        self.running_session().remove(name)

    def ask(self, question: str, last: float, options: tuple[str, ...]) -> Turn:
        """Ask the session; the turn is listed first, so that the answer's text streams into it."""
        session = self.running_session()
        turn = self.feed.asking(question, last, options)
        try:
            future = session.ask(question, last=last, options=list(options) or None)
        except BaseException as exc:
            self.feed.answered(turn, error=str(exc))
            raise
        future.add_done_callback(lambda done: self.feed.answered(turn, done))
        return turn

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Stop the session (the last window is still described); its place in the queue goes once it has stopped."""
        with self._lock:
            self._stopping = True
            session, opening = self.session, self._opening
        if session is None:  # never opened (waiting in the queue, or it failed); one opening is stopped by start()
            if not opening:
                self._release()
            return
        try:
            session.close(timeout)
        except Exception as exc:  # tracking failed: the session is over; say why
            self.failure = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GarvideoError) else str(exc)

    def _release(self) -> None:
        with self._lock:
            was, self._active, self.session = self._active, False, None  # the session's frames go with it
        if was:
            self._queue.leave(self.ticket)

    def snapshot(self) -> FeedSnapshot:
        return self.feed.snapshot()


def _renamed(exc: GarvideoError, source: LiveSource) -> GarvideoError:
    """The error naming the source as the page shows it (never a password, never the app's own path for a file)."""
    message = str(exc).replace(source.target, source.shown)
    try:
        return type(exc)(message)
    except Exception:  # an error class that takes more than its message
        return AppError(message)


class LiveRoom:
    """The app's one live session (by the tab that opened it) and each tab's last one, stopped, still shown."""

    def __init__(self, queue: ModelQueue) -> None:
        self.queue = queue
        self._lock = threading.Lock()
        self._streams: dict[str, LiveStream] = {}

    def reserve(self, key: str, source: LiveSource, options: LiveOptions) -> LiveStream:
        """A stream for tab ``key``, in the model queue; refused while any live session is active."""
        with self._lock:
            active = next((s for s in self._streams.values() if s.active), None)
            if active is not None and active.key == key:
                raise AppError("this tab's live session is running: stop it before you open another source")
            if active is not None:
                raise LiveBusy(
                    "a live session is running in another tab (one at a time per app: it holds the models); "
                    "try again once it has stopped"
                )
            stream = self._streams[key] = LiveStream(key, source, options, self.queue)
            return stream

    def stream(self, key: str) -> LiveStream | None:
        with self._lock:
            return self._streams.get(key)

    def busy_elsewhere(self, key: str) -> bool:
        """Whether another tab's live session holds the room."""
        with self._lock:
            return any(s.active and s.key != key for s in self._streams.values())

    def end(self, key: str) -> bool:
        """The tab's session ended (closed, idle, ``close_session``): its live session stops and is forgotten."""
        with self._lock:
            stream = self._streams.pop(key, None)
        if stream is None:
            return False
        stream.stop()
        return True

    def close(self, timeout: float = STOP_WAIT_S) -> None:
        """The app stops: every live session stops."""
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.stop(timeout)
