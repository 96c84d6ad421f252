"""What the Live tab shows of a running live session, kept as the session reports it.

A :class:`LiveFeed` is one of the session's outputs (:class:`garvideo.live.LiveOutput`): it keeps only the newest
tracked frame with each region's mask (the session's own :class:`~garvideo.tracking.TrackFrame`, unchanged), so a
page that asks for frames gets the latest one and never a backlog; and the descriptions, answers and events as
they arrive, each list bounded. Readers take a :class:`FeedSnapshot` (copied under the feed's lock) and may
wait for a frame newer than the one they show.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import numpy as np

from ..live import (
    Answered,
    Appeared,
    Found,
    LiveEvent,
    LiveOutput,
    Lost,
    Removed,
    Started,
    Stopped,
    TextSoFar,
    WindowDescribed,
)
from ..tracking import TrackFrame

#: Descriptions, questions and log lines kept for the page (older ones go first).
KEPT_WINDOWS = 200
KEPT_TURNS = 50
KEPT_LOG = 60
#: The events shown in the log: what happened to the source, to the regions and to the session.
LOGGED = ("started", "appeared", "lost", "found", "removed", "gap", "behind", "error", "stopped")


@dataclass(frozen=True)
class LatestFrame:
    """The newest tracked frame: ``seq`` counts the frames tracked (the page asks for one newer than it shows)."""

    seq: int
    index: int
    time: float
    arrival: float
    image: np.ndarray  # RGB, the source's pixels
    regions: Mapping[str, TrackFrame]  # the session's own entries


@dataclass(frozen=True)
class RegionRow:
    """A region of the session, as the page lists it."""

    name: str
    how: str  # "box", "points", "text" (marked here), or "detected"
    mark: str  # the mark as given (a box, clicks or a phrase), or what the detector found
    obj_id: int | None = None  # None until tracked
    first_frame: int | None = None  # the frame it was first tracked on
    since: float | None = None  # its stream time
    lost: bool = False


@dataclass(frozen=True)
class Turn:
    """A question about the last ``last`` seconds and its answer (None while GAR writes it: ``text`` so far)."""

    number: int
    question: str
    last: float
    options: tuple[str, ...] = ()
    text: str = ""
    answer: Answered | None = None
    error: str | None = None


@dataclass(frozen=True)
class FeedSnapshot:
    """The feed at one moment (what one page refresh shows)."""

    frame: LatestFrame | None
    names: tuple[str, ...]  # every region seen, in order: their colours
    regions: tuple[RegionRow, ...]
    windows: tuple[WindowDescribed, ...]  # newest last
    writing: tuple[TextSoFar, ...]  # descriptions being written
    turns: tuple[Turn, ...]
    log: tuple[LiveEvent, ...]  # newest last
    started: Started | None
    stopped: Stopped | None
    versions: Mapping[str, int]  # what changed since an earlier snapshot: "frame", "regions", "texts", "turns", "log"


@dataclass
class _State:
    frame: LatestFrame | None = None
    names: list[str] = field(default_factory=list)
    regions: dict[str, RegionRow] = field(default_factory=dict)
    windows: collections.deque = field(default_factory=lambda: collections.deque(maxlen=KEPT_WINDOWS))
    writing: dict[tuple[str, tuple[int, ...]], TextSoFar] = field(default_factory=dict)
    turns: collections.deque = field(default_factory=lambda: collections.deque(maxlen=KEPT_TURNS))
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=KEPT_LOG))
    started: Started | None = None
    stopped: Stopped | None = None
    versions: collections.Counter = field(default_factory=collections.Counter)


class LiveFeed(LiveOutput):
    """See the module's doc. ``on_closed`` is called once, after the session's last event (it has stopped)."""

    def __init__(self, on_closed: Callable[[], None] | None = None) -> None:
        self._changed = threading.Condition()
        self._state = _State()
        self._on_closed = on_closed
        self._turns = 0
        self.closed = False

    # -- the session's side (its threads) ---------------------------------------------------------

    def on_frame(self, frame, regions: Mapping[str, TrackFrame]) -> None:
        with self._changed:
            state = self._state
            seq = state.frame.seq + 1 if state.frame is not None else 0
            state.frame = LatestFrame(seq, frame.index, frame.time, frame.arrival, frame.image, dict(regions))
            for name, entry in regions.items():
                self._seen(name)
                row = state.regions.get(name)
                if row is not None and row.first_frame is None:
                    state.regions[name] = replace(row, first_frame=entry.index, since=frame.time)
                    state.versions["regions"] += 1
            state.versions["frame"] += 1
            self._changed.notify_all()

    def on_event(self, event: LiveEvent) -> None:
        with self._changed:
            state = self._state
            if isinstance(event, TextSoFar):
                self._text_so_far(event)
            elif isinstance(event, WindowDescribed):
                state.windows.append(event)
                state.writing.pop((event.region, event.windows), None)
                state.versions["texts"] += 1
            elif isinstance(event, (Appeared, Lost, Found, Removed)):
                self._region_event(event)
            if isinstance(event, Started):
                state.started = event
            elif isinstance(event, Stopped):
                state.stopped = event
            if event.kind in LOGGED:
                state.log.append(event)
                state.versions["log"] += 1
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()
        if self._on_closed is not None:
            self._on_closed()

    def _seen(self, name: str) -> None:
        if name not in self._state.names:
            self._state.names.append(name)

    def _text_so_far(self, event: TextSoFar) -> None:
        state = self._state
        if event.region is not None:
            state.writing[(event.region, event.windows or ())] = event
            state.versions["texts"] += 1
            return
        # GAR answers questions one at a time, in the order asked: the text is the oldest unanswered one's
        waiting = next((k for k, t in enumerate(state.turns) if t.answer is None and t.error is None), None)
        if waiting is not None:
            state.turns[waiting] = replace(state.turns[waiting], text=event.text)
            state.versions["turns"] += 1

    def _region_event(self, event: Appeared | Lost | Found | Removed) -> None:
        state = self._state
        if isinstance(event, Removed):
            state.regions.pop(event.region, None)
        elif isinstance(event, Appeared):
            self._seen(event.region)
            row = state.regions.get(event.region)
            if row is None or event.how == "detected":
                found = f"{event.phrase!r}, score {event.score:.2f}" if event.phrase is not None else ""
                row = RegionRow(event.region, event.how, found)
            state.regions[event.region] = replace(row, obj_id=event.obj_id)
        elif event.region in state.regions:
            state.regions[event.region] = replace(state.regions[event.region], lost=isinstance(event, Lost))
        state.versions["regions"] += 1

    # -- the app's side ---------------------------------------------------------------------------

    def marked(self, name: str, how: str, mark: str) -> None:
        """A region marked (or corrected) from the page: listed at once, tracked from the next frame taken."""
        with self._changed:
            state = self._state
            self._seen(name)
            row = state.regions.get(name)
            state.regions[name] = RegionRow(name, how, mark) if row is None else replace(row, how=how, mark=mark)
            state.versions["regions"] += 1
            self._changed.notify_all()

    def asking(self, question: str, last: float, options: tuple[str, ...]) -> Turn:
        """A question about to be asked: listed (its answer streamed into it) before GAR can start on it."""
        with self._changed:
            self._turns += 1
            turn = Turn(self._turns, question, last, options)
            self._state.turns.append(turn)
            self._state.versions["turns"] += 1
            self._changed.notify_all()
            return turn

    def answered(self, turn: Turn, future: Future | None = None, error: str | None = None) -> None:
        """The question's Future is done (or asking failed, ``error``): its answer, or what went wrong."""
        answer: Answered | None = None
        if future is not None:
            failure = future.exception()
            if failure is None:
                answer = future.result()
            else:
                error = str(failure)
        with self._changed:
            turns = self._state.turns
            for k, shown in enumerate(turns):
                if shown.number == turn.number:
                    text = (answer.text or "") if answer is not None else shown.text
                    said = error or (answer.error if answer is not None else None)
                    turns[k] = replace(shown, answer=answer, text=text, error=said)
            self._state.versions["turns"] += 1
            self._changed.notify_all()

    def snapshot(self) -> FeedSnapshot:
        with self._changed:
            return self._snapshot()

    def _snapshot(self) -> FeedSnapshot:
        state = self._state
        return FeedSnapshot(
            frame=state.frame,
            names=tuple(state.names),
            regions=tuple(state.regions.values()),
            windows=tuple(state.windows),
            writing=tuple(state.writing.values()),
            turns=tuple(state.turns),
            log=tuple(state.log),
            started=state.started,
            stopped=state.stopped,
            versions=dict(state.versions),
        )

    def wait_newer(self, seq: int, timeout: float) -> FeedSnapshot:
        """The feed once it holds a frame after ``seq``, or anything changed, or it closed, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            before = dict(self._state.versions)

            def news() -> bool:
                frame = self._state.frame
                newer = frame is not None and frame.seq > seq
                return newer or self.closed or self._state.versions != before

            while not news() and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self._snapshot()

    def wait_turn(self, number: int, timeout: float) -> Turn | None:
        """Question ``number`` once answered (or failed), else as it is after ``timeout`` seconds (None: unknown)."""
        deadline = time.monotonic() + timeout

        def turn() -> Turn | None:
            return next((t for t in self._state.turns if t.number == number), None)

        with self._changed:
            while (shown := turn()) is not None and shown.answer is None and shown.error is None and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return turn()
