"""One pipeline shared by the jobs a server (or a Ray worker) runs at the same time.

Each job runs ``Pipeline.describe|ask|track`` in its own thread: decoding, planning and preparing prompts
overlap freely. The models are the bounded queue: SAM2's calls go to one tracking thread and GAR's to one
generation thread, each taking one call at a time (so one job's tracking overlaps another's describing, and
a model never runs two calls at once, as compiled code and static caches need). The GAR thread takes every
call that is waiting when it frees up and generates their prompts together, so the prompts of concurrent
jobs share batches wherever garvideo's length grouping allows (:func:`garvideo.model.batching.plan_batches`:
on a CPU prompts of one length; on CUDA within a quarter of padding). Only calls with equal decoding
settings are merged, and never seeded sampling (its draws depend on the batch).

Nothing in the pipeline changes for this: the pipeline's ``tracker`` and ``gar`` are swapped for stand-ins
that forward everything else to the real models.
"""

from __future__ import annotations

import collections
import copy
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..devices import stage_threads, torch_threads


class _Forwarding:
    """Attributes not defined here are the wrapped model's."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class SharedTracker(_Forwarding):
    """The SAM2 tracker, its calls run one at a time on its own thread."""

    def __init__(self, tracker: Any, threads: int | None = None) -> None:
        super().__init__(tracker)
        self._threads = stage_threads("track", tracker.device, threads)
        self._line = ThreadPoolExecutor(max_workers=1, thread_name_prefix="garvideo-sam2")

    def track(self, *args: Any, **kwargs: Any) -> Any:
        return self._line.submit(self._run, args, kwargs).result()

    def _run(self, args: tuple, kwargs: dict) -> Any:
        with torch_threads(self._threads):
            return self._model.track(*args, **kwargs)

    def close(self) -> None:
        self._line.shutdown(wait=False, cancel_futures=True)


@dataclass(eq=False)  # calls are told apart by identity (their prompts hold tensors)
class _Call:
    prompts: list
    generation: Any
    batch_size: int | None
    on_text: Callable[[int, str, bool], None] | None
    future: Future = field(default_factory=Future)
    error: BaseException | None = None  # raised by its own on_text while sharing a batch

    def mergeable(self, other: _Call) -> bool:
        settings = self.generation
        seeded = settings is not None and settings.do_sample and settings.seed is not None
        return not seeded and (other.generation, other.batch_size) == (settings, self.batch_size)


class SharedGAR(_Forwarding):
    """GAR, its ``answer`` calls from several jobs generated together on one thread."""

    def __init__(self, gar: Any, threads: int | None = None) -> None:
        super().__init__(gar)
        self._threads = stage_threads("gar", gar.model.device, threads)
        self._calls: queue.Queue[_Call | None] = queue.Queue()
        self.merged_calls = 0  # calls that shared a generate run with another job's (for the metrics)
        self._thread = threading.Thread(target=self._serve, name="garvideo-gar", daemon=True)
        self._thread.start()

    def answer(
        self,
        prompts: Any,
        generation: Any = None,
        batch_size: int | None = None,
        progress: bool = False,
        on_text: Callable[[int, str, bool], None] | None = None,
    ) -> list:
        single = not isinstance(prompts, (list, tuple))
        call = _Call([prompts] if single else list(prompts), generation, batch_size, on_text)
        self._calls.put(call)
        return call.future.result()

    def ask_video(self, frames: Sequence, regions: Any, question: str, options: Any = None, **kwargs: Any) -> Any:
        generation = kwargs.pop("generation", None)
        on_text = kwargs.pop("on_text", None)  # (text, done): the answer of the one prompt
        kwargs.pop("progress", None)
        prompt = self._model.prepare_video(frames, regions, question, options, **kwargs)
        stream = (lambda _, text, done: on_text(text, done)) if on_text is not None else None
        return self.answer(prompt, generation, on_text=stream)[0]

    def close(self) -> None:
        self._calls.put(None)

    def _serve(self) -> None:
        waiting: collections.deque[_Call] = collections.deque()
        while True:
            if not waiting:
                waiting.append(self._calls.get())
            while True:  # every call already waiting joins the line, in order
                try:
                    waiting.append(self._calls.get_nowait())
                except queue.Empty:
                    break
            if waiting[0] is None:
                return
            leader = waiting.popleft()
            group = [leader] + [c for c in waiting if c is not None and leader.mergeable(c)]
            for call in group[1:]:
                waiting.remove(call)
            self._generate(group)

    def _generate(self, group: list[_Call]) -> None:
        prompts = [p for call in group for p in call.prompts]
        owners = [(call, k) for call in group for k in range(len(call.prompts))]
        keywords: dict[str, Any] = {}
        if any(call.on_text is not None for call in group):
            keywords["on_text"] = group[0].on_text if len(group) == 1 else _shared_on_text(owners)
        if len(group) > 1:
            self.merged_calls += len(group)
        try:
            with torch_threads(self._threads):
                results = self._model.answer(prompts, group[0].generation, batch_size=group[0].batch_size, **keywords)
        except BaseException as exc:  # noqa: BLE001 - handed to the callers, whose jobs fail with it
            for call in group:
                call.future.set_exception(exc)
            return
        start = 0
        for call in group:
            share = results[start : start + len(call.prompts)]
            start += len(call.prompts)
            if call.error is not None:
                call.future.set_exception(call.error)
            else:
                call.future.set_result(share)


def _shared_on_text(owners: list[tuple[_Call, int]]) -> Callable[[int, str, bool], None]:
    """One ``on_text`` for a shared run: each prompt's text goes to its own call's callback, with its own index;
    a callback that raises (its job was cancelled) stops hearing, without stopping the other jobs' prompts."""

    def on_text(index: int, text: str, done: bool) -> None:
        call, own = owners[index]
        if call.on_text is None or call.error is not None:
            return
        try:
            call.on_text(own, text, done)
        except BaseException as exc:  # noqa: BLE001 - raised to its own caller once the run ends
            call.error = exc

    return on_text


def share_models(pipeline: Any) -> Any:
    """A copy of the pipeline whose models concurrent calls share safely (see the module docstring); the
    pipeline given is left as it was."""
    shared = copy.copy(pipeline)
    if pipeline.tracker is not None:
        shared.tracker = SharedTracker(pipeline.tracker, pipeline.threads)
    if pipeline.gar is not None:
        shared.gar = SharedGAR(pipeline.gar, pipeline.threads)
    return shared


def release_models(pipeline: Any) -> None:
    """Stop the model threads of a pipeline made by :func:`share_models`."""
    for model in (pipeline.gar, pipeline.tracker):
        if isinstance(model, (SharedGAR, SharedTracker)):
            model.close()
