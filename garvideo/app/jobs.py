"""Model work, one job at a time: a first-come queue whose waiters know their place, and a job run in a thread
of its own whose pipeline events reach the page while it runs.

The page's model actions (preview, find, track, describe, ask) are generators: each joins the
:class:`ModelQueue`, says "waiting for N jobs" while others run, then runs its pipeline call through
:func:`stream`, drawing what the call's events say (masks, texts, progress) between steps. Closing the
generator (the tab went away) cancels the call: the next event it sends raises :class:`JobCancelled`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ..errors import GarvideoError
from ..pipeline.events import EventListener, PipelineEvent

T = TypeVar("T")

#: How often a running job's page is redrawn at most, and a waiting job's place is looked at (seconds).
REFRESH_S = 0.3


class JobCancelled(GarvideoError):
    """The page that asked for a job went away: the job stops at its next event."""


class _Ticket:
    """A place in the queue; ``what`` holds it: a ``job`` or a ``live`` session (which holds the models while
    it runs)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


class ModelQueue:
    """One model job at a time, in the order they were asked for; each waiting job knows how many are ahead."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._line: list[object] = []  # tickets; the first one runs

    def join(self, what: str = "job") -> object:
        ticket = _Ticket(what)
        with self._changed:
            self._line.append(ticket)
        return ticket

    def wait(self, ticket: object, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for ``ticket``'s turn; how many jobs are still ahead of it (none once it has
        left the line: its holder gave its place up meanwhile)."""
        with self._changed:
            self._changed.wait_for(lambda: ticket not in self._line or self._line.index(ticket) == 0, timeout)
            return self._line.index(ticket) if ticket in self._line else 0

    def leave(self, ticket: object) -> None:
        with self._changed:
            if ticket in self._line:
                self._line.remove(ticket)
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._line)

    def waiting(self, ticket: object) -> str:
        """What a waiting ticket waits for, as its page says it."""
        with self._changed:
            ahead = self._line[: self._line.index(ticket)] if ticket in self._line else []
        live = any(getattr(t, "what", None) == "live" for t in ahead)
        return waiting_text(len(ahead) - live, live)


def waiting_text(ahead: int, live: bool = False) -> str:
    """``ahead`` jobs (besides a live session, ``live``) run or wait before this one."""
    jobs = f"{ahead} job{'s' if ahead != 1 else ''}"
    if live:
        then = f", then for {jobs}" if ahead else ""
        return f"waiting for the live session to stop (the Live tab's Stop){then}: it holds the models while it runs"
    return f"waiting for {jobs} to finish (one model job runs at a time)"


def stream(
    work: Callable[[EventListener], T], cancelled: threading.Event | None = None
) -> Generator[list[PipelineEvent], None, T]:
    """Run ``work(on_event)`` in a thread; yield the events it sent: the first of each kind alone, then a batch
    every :data:`REFRESH_S` at most.

    Returns what ``work`` returned (``result = yield from stream(...)``) or raises what it raised. Closed
    early, the generator sets ``cancelled`` (the work's next event raises :class:`JobCancelled`) and waits
    for the work to end.
    """
    events: queue.Queue[Any] = queue.Queue()
    cancelled = cancelled or threading.Event()
    outcome: dict[str, Any] = {}
    finished = object()

    def hear(event: PipelineEvent) -> None:
        if cancelled.is_set():
            raise JobCancelled("the page that asked for this job has gone: stopped")
        events.put(event)

    def run() -> None:
        try:
            outcome["result"] = work(hear)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            events.put(finished)

    thread = threading.Thread(target=run, name="garvideo-app-job", daemon=True)
    thread.start()
    kinds: set[type] = set()
    try:
        done = False
        while not done:
            batch = [events.get()]
            # The first event of each kind (the first mask, the first words) is shown at once, however fast the
            # rest comes; then at most one batch every REFRESH_S.
            if batch[0] is not finished and type(batch[0]) in kinds:
                batch += _drain(events, REFRESH_S, finished)
            kinds.add(type(batch[0]))
            done = batch[-1] is finished
            news = [e for e in batch if e is not finished]
            if news:
                yield news
    finally:
        if thread.is_alive():
            cancelled.set()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _drain(events: queue.Queue[Any], seconds: float, finished: object) -> list[Any]:
    """Whatever else arrives within ``seconds``, stopping at the end of the work."""
    out: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = events.get(timeout=left)
        except queue.Empty:
            break
        out.append(item)
        if item is finished:
            break
    return out
