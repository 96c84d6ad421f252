"""GAR in a worker of its own: each finished window described, questions about the last seconds answered.

Tracking never waits for GAR. A finished window is planned at once, as ``describe`` plans a timeline window
(the pipeline's own planning: its frames spread over the region's visible tracked frames in the window, one
prompt per region with the same per-frame RoI replay), and only the frames planned are kept. When GAR is still
busy with an earlier window, the waiting one and the new one are merged into one description (their planned
frames spread again), up to ``max_merged`` windows; beyond that the waiting ones are skipped. Either way the
``window`` event says so. Questions go before windows. A question is answered as ``ask`` answers one, over the
frames of its last seconds.
"""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from ..devices import stage_threads, torch_threads
from ..errors import GarvideoError
from ..pipeline import Pipeline, PipelineError, Track
from ..pipeline.events import PipelineEvent, TextGenerated
from ..pipeline.planning import DescriptionPlan, plan_answer, plan_description
from ..pipeline.prompting import Prompting, Question
from ..video import Span, spread
from .events import Answered, LiveEvent, Problem, TextSoFar, WindowDescribed
from .history import HistoryEntry

#: Added to a question's span end so that its last frame is inside ``[start, end)``.
_SPAN_END = 1e-6


@dataclass(frozen=True)
class DescribeSettings:
    """How GAR is asked (``prompting``: tiling, wording, decoding, batch size), with how many frames per window
    and per answer, how many windows may merge, and whether texts are reported as they are generated."""

    prompting: Prompting
    frames_per_window: int
    frames: int
    max_merged: int
    stream_text: bool = False


@dataclass(frozen=True, eq=False)
class WindowJob:
    """A finished window (or several merged), planned: per region seen in it, the frames GAR will see."""

    windows: tuple[int, ...]
    start: float
    end: float
    chosen: Mapping[str, tuple[HistoryEntry, ...]]
    unseen: tuple[str, ...]
    obj_ids: Mapping[str, int]
    arrival: float  # when the window's last frame arrived
    skipped: tuple[int, ...] = ()


def plan_window(
    number: int,
    start: float,
    end: float,
    entries: Sequence[HistoryEntry],
    obj_ids: Mapping[str, int],
    frames_per_window: int,
) -> WindowJob | None:
    """The job for window ``number`` (``[start, end)``) from its tracked frames; None when it has none."""
    if not entries:
        return None
    names = list(dict.fromkeys(name for entry in entries for name in entry.regions))
    tracks = [_track(name, obj_ids[name], entries) for name in names]
    seen = [track for track in tracks if any(f.visible for f in track.frames)]
    by_index = {entry.frame.index: entry for entry in entries}
    chosen: dict[str, tuple[HistoryEntry, ...]] = {}
    if seen:
        plan = plan_description(seen, Span(0, 0, start, end), [(start, end)], frames_per_window, frames_per_window)
        chosen = {track.name: tuple(by_index[i] for i in plan.frames[track.name, 0]) for track in seen}
    unseen = tuple(name for name in names if name not in chosen)
    return WindowJob((number,), start, end, chosen, unseen, dict(obj_ids), entries[-1].frame.arrival)


def merge_windows(first: WindowJob, then: WindowJob, frames_per_window: int) -> WindowJob:
    """One job for both: per region, its planned frames of each spread again over ``frames_per_window``."""
    names = list(dict.fromkeys([*first.chosen, *first.unseen, *then.chosen, *then.unseen]))
    chosen = {}
    for name in names:
        frames = [*first.chosen.get(name, ()), *then.chosen.get(name, ())]
        if frames:
            chosen[name] = tuple(spread(frames, frames_per_window))
    return WindowJob(
        windows=first.windows + then.windows,
        start=first.start,
        end=then.end,
        chosen=chosen,
        unseen=tuple(name for name in names if name not in chosen),
        obj_ids={**first.obj_ids, **then.obj_ids},
        arrival=then.arrival,
        skipped=first.skipped + then.skipped,
    )


@dataclass(frozen=True, eq=False)
class AskJob:
    """A question about ``names`` over the frames of the last ``last`` seconds (taken when it was asked)."""

    question: Question
    last: float
    names: tuple[str, ...]
    entries: tuple[HistoryEntry, ...]
    obj_ids: Mapping[str, int]
    future: Future = field(default_factory=Future)


def _track(name: str, obj_id: int, entries: Sequence[HistoryEntry]) -> Track:
    return Track(name=name, obj_id=obj_id, frames=tuple(e.regions[name] for e in entries if name in e.regions))


class Describer:
    """The GAR worker thread; see the module's doc. ``emit`` receives its events (from its own thread)."""

    def __init__(
        self,
        pipeline: Pipeline,
        settings: DescribeSettings,
        emit: Callable[[LiveEvent], None],
        threads: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        if pipeline.gar is None:
            raise PipelineError("this pipeline has no GAR model to describe with")
        self.gar = pipeline.gar
        self.settings = settings
        self._emit = emit
        self._threads = threads
        self._asks: collections.deque[AskJob] = collections.deque()
        self._pending: WindowJob | None = None
        self._closing = False
        self._busy = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="garvideo-live-gar", daemon=True)
        self.described = self.merged = self.skipped = 0
        self._thread.start()

    # -- from the tracking thread and callers -------------------------------------------------

    def submit_window(self, job: WindowJob) -> None:
        """Describe ``job`` next, merged with a window still waiting (or skipping those beyond ``max_merged``)."""
        with self._ready:
            waiting = self._pending
            if waiting is not None:
                if len(waiting.windows) + len(job.windows) <= self.settings.max_merged:
                    job = merge_windows(waiting, job, self.settings.frames_per_window)
                else:
                    self.skipped += len(waiting.windows)
                    job = WindowJob(**{**job.__dict__, "skipped": waiting.skipped + waiting.windows + job.skipped})
            self._pending = job
            self._ready.notify_all()

    def submit_ask(self, job: AskJob) -> Future:
        with self._ready:
            self._asks.append(job)
            self._ready.notify_all()
        return job.future

    @property
    def waiting(self) -> int:
        """Jobs not started yet."""
        with self._ready:
            return len(self._asks) + (self._pending is not None)

    def close(self, timeout: float | None = None) -> None:
        """Finish what was submitted (the last window included), then stop the worker."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        self._thread.join(timeout)

    # -- the worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._asks and self._pending is None and not self._closing:
                    self._ready.wait()
                if self._asks:
                    job: AskJob | WindowJob = self._asks.popleft()
                elif self._pending is not None:
                    job, self._pending = self._pending, None
                else:
                    return
            try:
                with torch_threads(stage_threads("gar", self.gar.model.device, self._threads)):
                    if isinstance(job, AskJob):
                        self._answer(job)
                    else:
                        self._describe(job)
            except Exception as exc:  # a failed description or answer is reported; the session goes on
                if isinstance(job, AskJob):
                    job.future.set_exception(exc)
                message = str(exc) if isinstance(exc, GarvideoError) else f"{type(exc).__name__}: {exc}"
                what = "the question" if isinstance(job, AskJob) else f"window {job.windows}"
                self._emit(Problem(time=None, arrival=None, message=f"GAR failed on {what}: {message}"))

    def _describe(self, job: WindowJob) -> None:
        tracks = [_track(name, job.obj_ids[name], entries) for name, entries in job.chosen.items()]
        frames = {e.frame.index: e.frame for entries in job.chosen.values() for e in entries}
        plan = DescriptionPlan(
            bounds=((job.start, job.end),),
            frames={(name, 0): tuple(e.frame.index for e in entries) for name, entries in job.chosen.items()},
            visible_spans={},
            untracked=frozenset(),
        )
        texts, _ = self.pipeline.describe_frames(
            frames, plan, tracks, self.settings.prompting, on_event=self._streamed(job.end, job.arrival, job.windows)
        )
        self.described += len(job.windows)
        self.merged += len(job.windows) - 1
        for name in [*job.chosen, *job.unseen]:
            entries = job.chosen.get(name, ())
            self._emit(
                WindowDescribed(
                    time=job.end,
                    arrival=job.arrival,
                    region=name,
                    start=job.start,
                    end=job.end,
                    visible=bool(entries),
                    text=texts.get((name, 0)),
                    frames=tuple(e.frame.index for e in entries),
                    times=tuple(e.frame.time for e in entries),
                    windows=job.windows,
                    skipped=job.skipped,
                )
            )

    def _streamed(
        self, at: float, arrival: float, windows: tuple[int, ...] | None
    ) -> Callable[[PipelineEvent], None] | None:
        """GAR's texts so far as ``text`` events (when asked for): a window's (``windows``) or an answer's (None)."""
        if not self.settings.stream_text:
            return None

        def forward(event: PipelineEvent) -> None:
            if isinstance(event, TextGenerated) and not event.done:
                self._emit(TextSoFar(time=at, arrival=arrival, region=event.region, windows=windows, text=event.text))

        return forward

    def _answer(self, job: AskJob) -> None:
        latest = job.entries[-1].frame
        start, end = max(0.0, latest.time - job.last), latest.time
        tracks = [_track(name, job.obj_ids[name], job.entries) for name in job.names]
        asked = job.question
        answer = functools.partial(
            Answered, time=end, arrival=latest.arrival, question=asked.text, last=job.last, options=asked.options
        )
        answer = functools.partial(answer, regions=job.names, start=start, end=end)
        try:
            chosen = plan_answer(tracks, Span(0, 0, start, end + _SPAN_END), self.settings.frames)
        except PipelineError as exc:  # a region asked about was not seen in those seconds: an answer that says so
            event = answer(text=None, letter=None, frames=(), times=(), error=str(exc))
            job.future.set_result(event)
            self._emit(event)
            return
        frames = {e.frame.index: e.frame for e in job.entries}
        on_event = self._streamed(end, latest.arrival, None)
        result, _ = self.pipeline.answer_frames(
            frames, tracks, chosen, asked, self.settings.prompting, on_event=on_event
        )
        event = answer(
            text=result.text.strip(),
            letter=result.choice,
            frames=tuple(chosen),
            times=tuple(frames[i].time for i in chosen),
        )
        job.future.set_result(event)
        self._emit(event)
