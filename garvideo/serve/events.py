"""What a running job tells its watchers: the pipeline's events as named, JSON-ready server-sent events.

Events: ``state`` (queued, running, done, ...), ``progress`` (``{"stage", "done", "total"}``), ``frame``
(a frame SAM2 has tracked: per region its box, score and visibility; masks are in the tracks file),
``text`` (GAR's text so far for one prompt) and ``window`` (a timeline window once described). A job's
:class:`EventLog` keeps them for clients that connect late (the oldest partial texts and frames are dropped
past :data:`KEPT_EVENTS`); the server's async handlers wait on it without holding a thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from typing import Any

#: Events a log keeps for late watchers.
KEPT_EVENTS = 20000


def pipeline_event(event: Any) -> list[tuple[str, dict[str, Any]]]:
    """The named events of one pipeline event (a finished window is also a ``window`` event)."""
    kind = type(event).__name__
    if kind == "StageProgress":
        return [("progress", {"stage": event.stage, "done": event.done, "total": event.total})]
    if kind == "FrameTracked":
        return [("frame", {"index": event.index, "time": event.time, "regions": _regions(event.regions)})]
    if kind == "TextGenerated":
        data = {
            "region": event.region,
            "window": event.window,
            "start": event.start,
            "end": event.end,
            "text": event.text,
            "done": event.done,
        }
        named = [("text", data)]
        if event.done and event.window is not None:
            named.append(("window", {key: value for key, value in data.items() if key != "done"}))
        return named
    return []


def _regions(regions: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "box": list(frame.box) if frame.box is not None else None,
            "score": frame.score,
            "visible": frame.visible,
        }
        for name, frame in regions.items()
    }


def sse(name: str, data: Any, event_id: int | None = None) -> str:
    """One server-sent event (``data`` as one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class EventLog:
    """The events of one job, appended from worker threads and followed by async handlers.

    Events are numbered from 0; reading the ones after a number costs only what is read (a watcher woken
    after every token of a long text must not re-read the whole log each time).
    """

    def __init__(self, kept: int = KEPT_EVENTS) -> None:
        self._kept = kept
        self._events: list[tuple[int, str, dict[str, Any]]] = []
        self._first = 0  # the number of self._events[0]
        self.closed = False
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def count(self) -> int:
        """How many events were ever appended (the next one's number)."""
        with self._lock:
            return self._first + len(self._events)

    def append(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._events.append((self._first + len(self._events), name, data))
            if len(self._events) >= 2 * self._kept:  # drop the oldest half at once: appends stay cheap
                self._first += len(self._events) - self._kept
                self._events = self._events[-self._kept :]
            self._wake()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._wake()

    def _wake(self) -> None:
        for loop, event in self._waiters:
            loop.call_soon_threadsafe(event.set)
        self._waiters.clear()

    def since(self, index: int) -> tuple[list[tuple[int, str, dict[str, Any]]], int, bool]:
        """Events numbered ``index`` on (those still kept), the next number, and whether the log is closed."""
        with self._lock:
            return self._events[max(0, index - self._first) :], self._first + len(self._events), self.closed

    async def wait(self, index: int, timeout: float) -> None:
        """Until there is an event numbered ``index`` or later, the log closes, or ``timeout`` seconds pass."""
        event = asyncio.Event()
        with self._lock:
            if self._first + len(self._events) > index or self.closed:
                return
            self._waiters.append((asyncio.get_running_loop(), event))
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
