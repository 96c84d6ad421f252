"""A live session: a source, SAM2 tracking frame by frame, GAR describing windows, events out.

    with pipe.live("rtsp://cam.local/stream", [cup], window=10) as session:
        for event in session:                  # started, frame, window, answer, appeared, lost, found, gap, ...
            print(event.to_dict())

It runs in threads of its own: the source is read in one (the newest frame waiting), tracked in another (marks,
corrections and removals applied between frames, text regions searched for every ``search_every`` seconds),
described by GAR in a third. :meth:`LiveSession.add`, :meth:`~LiveSession.remove`, :meth:`~LiveSession.ask`
and :meth:`~LiveSession.close` may be called from any thread while it runs; its events can be iterated, polled
(:meth:`~LiveSession.poll`) or received by a callback (``on_event``) and by outputs (:mod:`garvideo.live.outputs`).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .. import defaults
from ..devices import stage_threads, torch_threads
from ..errors import InvalidInputError
from ..grounding import GroundingDetector, distinct, match_detections
from ..pipeline import RegionPrompt, TextSearch
from ..pipeline.grounding import instance_names
from ..pipeline.prompting import Question
from ..tracking import TrackFrame
from ..tracking.live import LiveTracker
from ..video.live_source import LiveFrame, LiveReader, SourceEnded, SourceGap, SourceResumed
from .describer import AskJob, Describer, plan_window
from .events import (
    Appeared,
    Behind,
    FrameReport,
    Gap,
    LiveEvent,
    Problem,
    RegionReport,
    Removed,
    Started,
    Stopped,
)
from .history import FrameHistory
from .outputs import LiveOutput
from .regions import Phrase, Phrases, Visibility

#: How long the tracking thread waits for a frame before it looks at its commands again.
_POLL_S = 0.1
#: At most one ``behind`` report per this many seconds.
_BEHIND_EVERY_S = 1.0


@dataclass(frozen=True)
class LiveSettings:
    """How a session tracks and reports (the ``garvideo live`` options of the same names)."""

    window: float = defaults.LIVE_WINDOW
    report_every: float = defaults.LIVE_REPORT_EVERY
    lost_after: float = defaults.LIVE_LOST_AFTER_S
    history_s: float = defaults.LIVE_HISTORY_S
    history_bytes: int = defaults.LIVE_HISTORY_BYTES
    behind_s: float = defaults.LIVE_BEHIND_S
    event_buffer: int = defaults.LIVE_EVENT_BUFFER
    search: TextSearch = TextSearch(max_instances=defaults.LIVE_MAX_INSTANCES, every=defaults.LIVE_SEARCH_EVERY)

    def __post_init__(self) -> None:
        for name in ("window", "report_every", "lost_after", "history_s", "behind_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
        for name in ("history_bytes", "event_buffer"):
            if (
                isinstance(getattr(self, name), bool)
                or not isinstance(getattr(self, name), int)
                or getattr(self, name) < 1
            ):
                raise InvalidInputError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "search": self.search.to_dict()}


@dataclass(frozen=True)
class LiveStats:
    """What a session did so far."""

    frames_decoded: int
    frames_tracked: int
    frames_dropped: int
    frames_skipped: int
    windows_described: int
    windows_merged: int
    windows_skipped: int
    events_lost: int  # events nobody iterated or polled before the buffer filled
    history_bytes: int
    tracker_state_bytes: int


class LiveSession:
    """See the module's doc. Made by :func:`garvideo.live.open_session` (or ``Pipeline.live``), already running."""

    def __init__(
        self,
        reader: LiveReader,
        tracker: LiveTracker,
        regions: Sequence[RegionPrompt] = (),
        *,
        settings: LiveSettings | None = None,
        describer: Callable[[Callable[[LiveEvent], None]], Describer] | None = None,
        detector: Callable[[], GroundingDetector] | None = None,
        outputs: Sequence[LiveOutput] = (),
        on_event: Callable[[LiveEvent], None] | None = None,
        threads: int | None = None,
    ) -> None:
        self.reader, self.tracker = reader, tracker
        self._threads = threads
        self.settings = settings or LiveSettings()
        self.info = reader.info
        self._detector = detector
        self._outputs = list(outputs)
        self._on_event = on_event
        self._events: collections.deque[LiveEvent] = collections.deque()
        self._events_ready = threading.Condition(threading.RLock())
        self._events_lost = 0
        self._commands: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._phrases = Phrases(self.settings.search.max_instances, self.settings.search.every)
        self._visibility = Visibility(self.settings.lost_after)
        self._history = FrameHistory(max(self.settings.history_s, self.settings.window), self.settings.history_bytes)
        self._announce: dict[str, dict[str, Any]] = {}
        self._names: tuple[str, ...] = ()  # regions tracked now (read by other threads)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.stopped = threading.Event()
        self.failure: BaseException | None = None
        self._window: int | None = None
        self._clock = {"report": -math.inf, "behind": -math.inf, "dropped": 0, "began": time.time()}
        for prompt in regions:
            self._mark(self._check(prompt), "marked")
        for output in self._outputs:
            output.bind(self._emit)
        self._describer = describer(self._emit) if describer is not None else None
        self._thread = threading.Thread(target=self._run, name="garvideo-live-track", daemon=True)
        self.reader.start()
        self._thread.start()

    # -- what callers may do while it runs (any thread) -----------------------------------------------

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions tracked now (text regions as their instances)."""
        with self._lock:
            return self._names

    def add(self, region: RegionPrompt) -> None:
        """Mark a new region, or correct one, on the next frame taken (the prompt's own moment is not used); a text
        region is searched for from the next frame on. Bad regions raise :class:`InvalidInputError` now."""
        self._commands.put(("mark", self._check(region)))

    def remove(self, name: str) -> None:
        """Stop tracking a region (a text region: its phrase and every instance of it)."""
        with self._lock:
            known = name in self._names or name in self._phrases.names() or name in self._announce
        if not known:
            raise InvalidInputError(
                f"no region named {name!r} in this session (regions: {', '.join(self._names) or 'none'})"
            )
        self._commands.put(("remove", name))

    def ask(
        self, question: str, last: float = defaults.LIVE_ASK_LAST_S, options: Sequence[str] | None = None
    ) -> Future:
        """Ask about the regions over the last ``last`` seconds of the stream, as ``Pipeline.ask`` asks (the regions
        it names as ``<name>``, or all of them); a Future of the :class:`~garvideo.live.events.Answered` event (also
        emitted). Bad questions raise :class:`InvalidInputError` now."""
        if self._describer is None:
            raise InvalidInputError("this session has no GAR model (describe=False): it cannot answer questions")
        asked = Question.of(question, options, self._describer.gar.max_regions)
        if isinstance(last, bool) or not isinstance(last, (int, float)) or not 0 < last <= self._history.keep_s:
            raise InvalidInputError(f"last must be a number of seconds in (0, {self._history.keep_s:g}], got {last!r}")
        names = tuple(asked.regions_among(self.regions))
        latest = self._history.latest
        if latest is None:
            raise InvalidInputError("nothing has been tracked yet: ask again once frames have come")
        entries = tuple(self._history.between(latest.time - last, math.inf))
        obj_ids = {name: self.tracker.obj_id(name) for name in names}
        return self._describer.submit_ask(AskJob(asked, float(last), names, entries, obj_ids))

    def problem(self, message: str) -> None:
        """Report something this session's driver could not do (an ``error`` event); the session goes on."""
        self._emit(Problem(time=None, arrival=None, message=str(message)))

    def close(self, timeout: float | None = None) -> None:
        """Stop: the source is closed, the frames taken are tracked, the last window described, the outputs
        finished. Returns once the session has stopped (or after ``timeout`` seconds); idempotent."""
        self._stopping.set()
        self.reader.close(wait_s=0)  # a pipe's blocked read cannot be interrupted: the frames taken are enough
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if self.failure is not None and self.stopped.is_set():
            failure, self.failure = self.failure, None
            raise failure

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the session stops by itself (the source ended or was gone too long); True once stopped."""
        return self.stopped.wait(timeout)

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ---------------------------------------------------------------------------------

    def poll(self) -> list[LiveEvent]:
        """The events since the last poll (or iteration), without waiting."""
        with self._events_ready:
            events = list(self._events)
            self._events.clear()
        return events

    def __iter__(self) -> Iterator[LiveEvent]:
        """Every event as it comes, until the session has stopped and all were taken."""
        while True:
            with self._events_ready:
                while not self._events and not self.stopped.is_set():
                    self._events_ready.wait(_POLL_S)
                if not self._events:
                    return
                event = self._events.popleft()
            yield event

    def _emit(self, event: LiveEvent) -> None:
        with self._events_ready:
            if len(self._events) >= self.settings.event_buffer:
                self._events.popleft()
                self._events_lost += 1
            self._events.append(event)
            self._events_ready.notify_all()
            for output in self._outputs:
                output.on_event(event)
            if self._on_event is not None and self.failure is None:
                try:
                    self._on_event(event)
                except BaseException as exc:  # the caller's callback stops the session; close() raises it
                    self.failure = exc
                    self._stopping.set()
                    self.reader.close(wait_s=0)

    @property
    def stats(self) -> LiveStats:
        source, gar = self.reader.stats, self._describer
        return LiveStats(
            frames_decoded=source.decoded,
            frames_tracked=self.tracker.frames_tracked,
            frames_dropped=source.dropped,
            frames_skipped=source.skipped,
            windows_described=gar.described if gar else 0,
            windows_merged=gar.merged if gar else 0,
            windows_skipped=gar.skipped if gar else 0,
            events_lost=self._events_lost,
            history_bytes=self._history.nbytes,
            tracker_state_bytes=self.tracker.held()[2],
        )

    # -- regions --------------------------------------------------------------------------------

    def _check(self, region: RegionPrompt) -> RegionPrompt:
        """Refuse a region that cannot be added, in the caller's thread; a box reaching out of the frame is clipped
        (with a warning)."""
        if not isinstance(region, RegionPrompt):
            raise InvalidInputError(f"regions must be RegionPrompt objects, got {type(region).__name__}")
        with self._lock:  # what the tracking thread changes is read under the lock
            phrases = self._phrases.names()
            taken = set(self._names) | set(self._announce) | phrases
            an_instance = self._phrases.owner(region.name) is not None
        if region.kind == "text":
            if self._detector is None:
                raise InvalidInputError(
                    f"the region {region.name!r} is named in words, but this session has no detector"
                )
            clash = taken.intersection(instance_names(region.name, self.settings.search.max_instances))
            if clash:
                raise InvalidInputError(
                    f"the text region {region.name!r} would make a region {sorted(clash)[0]!r}, which is taken: give "
                    f"the text region a name of its own"
                )
            return region
        if region.name in phrases and not an_instance:
            raise InvalidInputError(
                f"{region.name!r} is a text region's name: correct its instances by their names ({region.name}#2, ...)"
            )
        return region.fit_to_frame(self.info.width, self.info.height)

    def _mark(self, prompt: RegionPrompt, how: str, **facts: Any) -> None:
        """Hand a prompt to the tracker (or a phrase to the searches), in the tracking thread."""
        if prompt.kind == "text":
            with self._lock:
                self._phrases.add(prompt)
            return
        if prompt.box is not None and how == "detected":
            prompt = dataclasses.replace(prompt, box=_inside(prompt.box, self.info.width, self.info.height))
        self.tracker.mark(prompt)
        if how == "marked" and prompt.box is not None:
            facts = {"box": prompt.box, **facts}
        if prompt.name not in {o.name for o in self.tracker.objects}:
            with self._lock:
                self._announce.setdefault(prompt.name, {"how": how, **facts})

    def _apply_commands(self) -> None:
        while True:
            try:
                command, value = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                if command == "mark":
                    self._mark(value, "marked")
                else:
                    self._remove(value)
            except InvalidInputError as exc:  # still possible: the frame changed under a pending command
                self._emit(Problem(time=None, arrival=None, message=str(exc)))

    def _remove(self, name: str) -> None:
        with self._lock:
            gone = [*self._phrases.instances_of(name), name]
            self._phrases.remove(name)
        for region in gone:
            if region in self.tracker:
                self.tracker.remove(region)
            with self._lock:
                self._announce.pop(region, None)
            self._visibility.forget(region)
            self._emit(Removed(time=None, arrival=None, region=region))
        self._publish_names()

    def _publish_names(self) -> None:
        with self._lock:
            self._names = tuple(o.name for o in self.tracker.objects)

    # -- the tracking thread --------------------------------------------------------------------

    def _run(self) -> None:
        reason = "closed"
        try:
            self._emit(
                Started(
                    time=0.0,
                    arrival=None,
                    source=self.info.to_dict(),
                    regions=tuple(self._announce) + tuple(sorted(self._phrases.names())),
                    settings=self.settings.to_dict(),
                )
            )
            # torch's CPU threads are set per thread: tracking's here, GAR's in its worker (see devices.stage_threads)
            with torch_threads(stage_threads("track", self.tracker.tracker.device, self._threads)):
                reason = self._loop()
        except BaseException as exc:  # a failure in tracking ends the session; close() raises it
            self.failure = exc
            reason = f"failed: {type(exc).__name__}: {exc}"
        finally:
            self._finish(reason)

    def _loop(self) -> str:
        while True:
            self._apply_commands()
            item = self.reader.get(timeout=_POLL_S)
            if item is None:
                if self._stopping.is_set() or self.reader.ended:
                    return "closed" if self._stopping.is_set() else "the source ended"
                continue
            if isinstance(item, LiveFrame):
                self._track(item)
            elif isinstance(item, SourceGap):
                self._emit(Gap(time=item.time, arrival=item.arrival, resumed=False, reason=item.reason))
            elif isinstance(item, SourceResumed):
                self._emit(
                    Gap(
                        time=item.time, arrival=item.arrival, resumed=True, seconds=item.seconds, attempts=item.attempts
                    )
                )
            elif isinstance(item, SourceEnded):
                return "closed" if self._stopping.is_set() else item.reason

    def _track(self, frame: LiveFrame) -> None:
        redetected = self._search(frame)
        entries = self.tracker.step(frame)
        self._publish_names()
        window = self.settings.window
        # first of all: whatever a caller does on this frame's events (a question) sees this frame
        self._history.add(frame, entries, protect_from=(self._window or 0) * window)
        obj_ids = {name: self.tracker.obj_id(name) for name in entries}
        for name in entries:
            with self._lock:
                facts = self._announce.pop(name, None)
            if facts is not None:
                self._emit(Appeared(time=frame.time, arrival=frame.arrival, region=name, obj_id=obj_ids[name], **facts))
        for event in self._visibility.update(entries, obj_ids, frame.arrival, redetected):
            self._emit(event)
        self._report(frame, entries, obj_ids)
        self._advance_windows(int(frame.time // window))
        for output in self._outputs:
            output.on_frame(frame, entries)
        self._check_behind(frame)

    def _search(self, frame: LiveFrame) -> list[str]:
        """Look for the text regions on ``frame`` when due; mark what was found. Returns the regions found again."""
        due = self._phrases.due(frame.time)
        if not due or self._detector is None:
            return []
        detector, search = self._detector(), self.settings.search
        found_again = []
        for phrase in due:
            result = detector.detect(frame.image, phrase.prompt.text, search.box_threshold, search.text_threshold)
            current, lost = self._instance_boxes(phrase)
            free = phrase.free_names(search.max_instances)
            detections = distinct(result.detections, search.max_instances)
            for match in match_detections(detections, current, lost, free, search.match_iou):
                prompt = RegionPrompt.from_box(match.region, match.detection.box, frame.index)
                if match.how == "new":
                    with self._lock:
                        self._phrases.issue(phrase, match.region)
                    facts = {"phrase": phrase.prompt.text, "score": match.detection.score, "box": match.detection.box}
                    self._mark(prompt, "detected", **facts)
                else:
                    self._mark(prompt, "detected")
                    found_again.append(match.region)
        return found_again

    def _instance_boxes(self, phrase: Phrase) -> tuple[dict[str, Any], dict[str, Any]]:
        """A phrase's instances: ``(not lost: last box, lost: last box)``."""
        current, lost = {}, {}
        for name in phrase.instances:
            (lost if self._visibility.is_lost(name) else current)[name] = self._visibility.last_box(name)
        return current, lost

    def _report(self, frame: LiveFrame, entries: Mapping[str, TrackFrame], obj_ids: Mapping[str, int]) -> None:
        now = time.monotonic()
        if now - self._clock["report"] < 1.0 / self.settings.report_every:
            return
        self._clock["report"] = now
        stats = self.reader.stats
        regions = {
            name: RegionReport(obj_ids[name], entry.box, round(entry.score, 6), entry.visible)
            for name, entry in entries.items()
        }
        self._emit(
            FrameReport(
                time=frame.time,
                arrival=frame.arrival,
                index=frame.index,
                regions=regions,
                dropped=stats.dropped,
                skipped=stats.skipped,
            )
        )

    def _check_behind(self, frame: LiveFrame) -> None:
        now = time.time()
        lag, dropped = now - frame.arrival, self.reader.stats.dropped
        if (lag > self.settings.behind_s or dropped > self._clock["dropped"]) and (
            time.monotonic() - self._clock["behind"] >= _BEHIND_EVERY_S
        ):
            self._clock["behind"] = time.monotonic()
            new = dropped - self._clock["dropped"]
            self._clock["dropped"] = dropped
            self._emit(Behind(time=frame.time, arrival=frame.arrival, seconds=lag, dropped=new, dropped_total=dropped))

    def _advance_windows(self, number: int) -> None:
        """The frame just tracked is in window ``number``: the window before it (if any) is finished."""
        if self._window is None:
            self._window = number
        elif number > self._window:
            self._close_window()
            self._window = number

    def _close_window(self) -> None:
        if self._window is None or self._describer is None:
            return
        window = self.settings.window
        start, end = self._window * window, (self._window + 1) * window
        entries = self._history.between(start, end)
        obj_ids = {name: self.tracker.obj_id(name) for entry in entries for name in entry.regions}
        job = plan_window(self._window, start, end, entries, obj_ids, self._describer.settings.frames_per_window)
        if job is not None:
            self._describer.submit_window(job)

    def _finish(self, reason: str) -> None:
        """The last window described, then the outputs finished; the ``stopped`` event is the last one."""
        try:
            self.reader.close(wait_s=0)
            self._close_window()
            if self._describer is not None:
                self._describer.close()
            for output in self._outputs:
                output.finish()
            stats = self.stats
            self._emit(
                Stopped(
                    time=self._history.latest.time if self._history.latest else None,
                    arrival=None,
                    reason=reason,
                    frames_decoded=stats.frames_decoded,
                    frames_tracked=stats.frames_tracked,
                    frames_dropped=stats.frames_dropped,
                    frames_skipped=stats.frames_skipped,
                    windows_described=stats.windows_described,
                    windows_merged=stats.windows_merged,
                    windows_skipped=stats.windows_skipped,
                    seconds=time.time() - self._clock["began"],
                )
            )
        finally:
            for output in self._outputs:
                output.close()
            self.stopped.set()
            with self._events_ready:
                self._events_ready.notify_all()


def _inside(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """A detector's box in the frame (it may stick out a little), to 0.01 px, as the offline search records it."""
    x1, y1, x2, y2 = box
    return tuple(round(min(max(v, 0.0), side), 2) for v, side in zip((x1, y1, x2, y2), (width, height) * 2))  # type: ignore[return-value]
