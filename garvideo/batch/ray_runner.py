"""``garvideo batch --ray``: the one-machine batch, its lines shared among the workers of a Ray cluster.

The output is exactly the one-machine batch's (:mod:`garvideo.batch.runner`):
one result document per line, the failures file and the summary, planned,
skipped and written by the same functions of :mod:`garvideo.batch.jobs`.
Only the driver writes to the output folder (each file atomically, as it
arrives), so the workers need to read the videos but not the output folder,
and a line is on disk once or not at all whatever dies: a worker, a node or
the driver (a re-run skips the finished lines).

Why Ray tasks on actors and not Ray Data ``map_batches`` with an actor pool:
both load the models once per worker and pull work as workers free up, but
this job needs per-line control that Ray Data hides. Ray Data retries or
fails whole blocks and has no hook to count one line's tries, record it as
failed after N worker deaths and carry on; it draws its own progress bars;
its results come back through block iterators after its own buffering, so a
finished line could wait in memory behind a long one instead of being written
at once; and it would add pyarrow/pandas to the workers for ten-line rows.
Here the driver keeps the queue: each actor (one per worker, models loaded
once) holds at most one line at a time, so a long video occupies one worker
while the others keep taking short ones, and a line whose actor died goes back
to the front of the queue for the next free worker, a bounded number of times.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GarvideoError, InvalidInputError
from ..grounding import DEFAULT_DETECTOR
from .jobs import (
    BatchSummary,
    Failure,
    ItemOutput,
    check_run_settings,
    failure_from,
    failures_path,
    finish_job,
    is_done,
    note_failures,
    prepare_job,
    write_item,
)
from .manifest import ManifestLine
from .runner import BatchOptions, batch_settings, process_line, read_and_check_manifest

INSTALL_HINT = "--ray needs Ray, which is not installed here: pip install 'garvideo[ray]'"


@dataclass(frozen=True)
class PipelineSpec:
    """The models every worker loads (the arguments of :meth:`Pipeline.from_pretrained`)."""

    model: str | None  # GAR
    sam2: str | None
    device: str | None = None
    dtype: str | None = None
    detector: str | None = DEFAULT_DETECTOR  # for text regions; loaded only when a line has one
    compile: bool | str | None = None  # GAR's compiled decoding (None: garvideo.defaults.COMPILE)
    threads: int | None = None  # torch CPU threads (None: chosen per stage)
    adapter: str | None = None  # GAR's fine-tuned LoRA adapter folder (garvideo train), on the shared file system

    def check(self) -> None:
        """Refuse a model named by a missing folder or a malformed id here, before Ray starts and every
        worker finds out for itself (the detector is left to the lines that need it, as without Ray)."""
        from ..checkpoints import check_checkpoint_name

        for name in (self.model, self._sam2_name):
            if name:
                check_checkpoint_name(name)
        if self.adapter is not None:
            from ..model.adapters import check_adapter_folder

            check_adapter_folder(self.adapter)

    @property
    def _sam2_name(self) -> str | None:
        from ..tracking import SAM2_ALIASES  # torch-free

        return SAM2_ALIASES.get(self.sam2, self.sam2) if self.sam2 else None

    @property
    def models(self) -> dict[str, str | None]:
        """The models as the workers' pipelines will name them (:attr:`Pipeline.models`), nothing loaded."""
        from ..checkpoints import checkpoint_id

        names = {"gar": self.model, "sam2": self._sam2_name, "detector": self.detector}
        models = {role: checkpoint_id(name) if name else None for role, name in names.items()}
        if self.adapter is not None:  # as the pipeline names it (GAR.adapter.path)
            models["adapter"] = str(Path(self.adapter).expanduser().resolve())
        return models

    def load(self):
        from ..pipeline import Pipeline

        return Pipeline.from_pretrained(
            model=self.model,
            sam2=self.sam2,
            device=self.device,
            dtype=self.dtype,
            progress=False,
            detector=self.detector,
            compile=self.compile,
            threads=self.threads,
            adapter=self.adapter,
            long_running=True,  # a worker serves lines until the queue is empty
        )


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run.

    ``address``: None starts a local Ray runtime (unless this process already
    runs one, which is then used and left running), ``"auto"`` joins the
    cluster that ``ray start`` set up on this machine, anything else is a Ray
    address. ``workers``: default as many as the cluster's GPUs hold (GPU
    clusters) or its CPUs (``cpus_per_worker`` each). ``gpus_per_worker``:
    default 1 when the cluster has GPUs, else 0. ``max_attempts``: tries of a
    line whose worker died before it is recorded as failed.
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    max_attempts: int = 3
    object_store_mib: int = 128  # a local runtime's shared memory: results are small JSON documents


@dataclass(frozen=True)
class LineOutcome:
    """What a worker sends back for one line: its output or why it failed, and the warnings it raised."""

    output: ItemOutput | None
    failure: Failure | None
    warnings: tuple[tuple[str, type[Warning]], ...] = field(default_factory=tuple)


class LineWorker:
    """One Ray actor: loads the models on its first call, then runs lines one at a time."""

    def __init__(self, models: PipelineSpec, folder: Path, manifest_dir: Path, options: BatchOptions) -> None:
        self._models = models
        self._folder = folder
        self._manifest_dir = manifest_dir
        self._options = options
        self._pipeline = None

    def load(self) -> GarvideoError | None:
        """Load the models; a user's mistake (a model that cannot be found) is returned for the driver to raise."""
        if self._pipeline is None:
            try:
                self._pipeline = self._models.load()
            except GarvideoError as exc:
                return exc
        return None

    def process(self, line: ManifestLine) -> LineOutcome:
        with warnings.catch_warnings(record=True) as caught:  # the driver shows them, as the one-machine batch would
            try:
                error = self.load()
                if error is not None:
                    raise error
                output = process_line(self._pipeline, line, self._folder, self._manifest_dir, self._options)
                failure = None
            except Exception as exc:  # noqa: BLE001 - recorded exactly as the one-machine batch records it
                output, failure = None, failure_from(line.key, exc)
        return LineOutcome(output, failure, tuple((str(w.message), w.category) for w in caught))


def import_ray():
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InvalidInputError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def ray_runtime(address: str | None, object_store_mib: int = 128) -> Iterator[Any]:
    """Connect to Ray for the job's length; a runtime this function started is shut down after it."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray  # the caller's runtime (a notebook, a test) stays theirs
        return
    # No usage reports and no dashboard: a batch job needs neither, and clusters are often offline.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    settings: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        settings.update(address="local", include_dashboard=False, object_store_memory=object_store_mib * 1024 * 1024)
    else:
        settings["address"] = address
    try:
        ray.init(**settings)
    except ConnectionError as exc:
        if address == "auto":
            raise InvalidInputError(
                "--ray auto found no running Ray cluster here: start one with `ray start --head`, "
                "or give its address (--ray HOST:PORT)"
            ) from None
        raise InvalidInputError(f"cannot reach the Ray cluster at {address}: {_first_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def worker_resources(cluster: dict[str, float], options: RayOptions, lines: int) -> tuple[int, float]:
    """How many workers to start, and the GPUs each takes, on a cluster with these resources."""
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    gpus_each = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus >= 1 else 0.0)
    if options.workers is not None:
        count = options.workers
    elif gpus_each > 0:
        count = int(gpus // gpus_each)
    else:
        count = int(cpus // options.cpus_per_worker)
    if count < 1:
        raise InvalidInputError(
            f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs, not enough for one worker of "
            f"{options.cpus_per_worker:g} CPUs and {gpus_each:g} GPUs: lower --cpus-per-worker or --gpus-per-worker"
        )
    return min(count, lines), gpus_each


def run_batch_on_ray(
    models: PipelineSpec,
    folder: str | Path,
    regions_file: str | Path,
    out_dir: str | Path,
    options: BatchOptions | None = None,
    ray_options: RayOptions = RayOptions(),
    progress: bool = True,
    on_item: Callable[[ManifestLine, str], None] | None = None,
) -> BatchSummary:
    """:func:`~garvideo.batch.run_batch` on Ray: the same files, summary and failures.

    ``on_item`` is called with each line and ``"skipped"``, ``"done"``,
    ``"failed"`` or ``"retried"`` (its worker died; the line went back to the queue).
    """
    start = time.monotonic()
    models.check()
    options = options or BatchOptions()
    folder, regions_file, out_dir = Path(folder), Path(regions_file), Path(out_dir)
    lines = read_and_check_manifest(folder, regions_file, out_dir)
    check_run_settings(out_dir, batch_settings(options, models.models))
    mine = prepare_job(lines, out_dir)
    pending = [line for line in mine if not is_done(out_dir, line.key)]
    if on_item is not None:
        waiting = {line.key for line in pending}
        for line in mine:
            if line.key not in waiting:
                on_item(line, "skipped")
    done_before = len(mine) - len(pending)
    failures: list[Failure] = []
    succeeded = 0
    if pending:
        with ray_runtime(ray_options.address, ray_options.object_store_mib) as ray:
            dispatcher = _Dispatcher(
                ray, models, folder, regions_file.parent, options, ray_options, out_dir, failures, on_item
            )
            succeeded = dispatcher.run(pending, total=len(mine), done_before=done_before, progress=progress)
    return finish_job(out_dir, len(mine), done_before, succeeded, failures, start)


@dataclass
class _Dispatcher:
    """The driver's side: a queue of lines, one line at a time per worker, results written as they come."""

    ray: Any
    models: PipelineSpec
    folder: Path
    manifest_dir: Path
    options: BatchOptions
    ray_options: RayOptions
    out_dir: Path
    failures: list[Failure]
    on_item: Callable[[ManifestLine, str], None] | None
    succeeded: int = 0
    retried: int = 0
    _queue: deque[ManifestLine] = field(default_factory=deque)
    _tries: Counter[str] = field(default_factory=Counter)
    _actors: list[Any] = field(default_factory=list)
    _idle: list[Any] = field(default_factory=list)
    _in_flight: dict[Any, tuple[Any, ManifestLine | None]] = field(default_factory=dict)  # ref -> (actor, line)
    _load_deaths: int = 0
    _actor_class: Any = None  # LineWorker as a Ray actor class with this job's resources

    def run(self, lines: list[ManifestLine], total: int, done_before: int, progress: bool) -> int:
        from tqdm.auto import tqdm

        count, gpus_each = worker_resources(self.ray.cluster_resources(), self.ray_options, len(lines))
        # No restarts by Ray: a dead actor is replaced here, so the line it held is counted and requeued
        # by this loop (a restarted actor would take new calls while its lost line was never answered).
        self._actor_class = self.ray.remote(LineWorker).options(
            num_cpus=self.ray_options.cpus_per_worker, num_gpus=gpus_each, max_restarts=0, max_task_retries=0
        )
        self._queue.extend(lines)
        self._actors = [self._start_actor() for _ in range(count)]
        bar = tqdm(
            total=total, initial=done_before, desc=f"batch on ray ({count} workers)", unit="video", disable=not progress
        )
        try:
            while self._queue or any(line is not None for _, line in self._in_flight.values()):
                while self._queue and self._idle:
                    actor, line = self._idle.pop(), self._queue.popleft()
                    self._in_flight[actor.process.remote(line)] = (actor, line)
                (ref,), _ = self.ray.wait(list(self._in_flight), num_returns=1)
                actor, line = self._in_flight.pop(ref)
                try:
                    answer = self.ray.get(ref)
                except self._worker_lost_errors() as exc:
                    finished = self._worker_lost(actor, line, exc)
                else:
                    self._idle.append(actor)
                    finished = self._answered(line, answer)
                if finished:
                    bar.update(1)
                bar.set_postfix(failed=len(self.failures), retried=self.retried, refresh=finished)
        finally:
            bar.close()
            for actor in self._actors:
                self.ray.kill(actor)
        return self.succeeded

    def _start_actor(self) -> Any:
        actor = self._actor_class.remote(self.models, self.folder, self.manifest_dir, self.options)
        self._in_flight[actor.load.remote()] = (actor, None)
        return actor

    def _answered(self, line: ManifestLine | None, answer: Any) -> bool:
        """Write a line's result or record its failure; True when a line is finished."""
        if line is None:  # a worker has loaded the models
            if answer is not None:
                raise answer  # a user's mistake (a model not found), the same on every worker: stop
            return False
        for message, category in answer.warnings:
            warnings.warn(message, category, stacklevel=1)
        if answer.failure is not None:
            self._fail(line, answer.failure)
        else:
            settings = batch_settings(self.options, self.models.models)
            problems = write_item(self.out_dir, line.key, answer.output, settings)
            if problems:
                self._fail(line, Failure(line.key, "; ".join(problems)))
            else:
                self.succeeded += 1
                self._notify(line, "done")
        return True

    def _worker_lost(self, actor: Any, line: ManifestLine | None, exc: BaseException) -> bool:
        """Replace the dead worker and requeue its line, or record the line as failed after its last try."""
        self.ray.kill(actor)
        self._actors[self._actors.index(actor)] = self._start_actor()
        if line is None:
            self._load_deaths += 1
            if self._load_deaths > len(self._actors) * self.ray_options.max_attempts:
                raise GarvideoError(f"Ray workers keep dying while loading the models: {_first_line(exc)}") from None
            return False
        self._tries[line.key] += 1
        if self._tries[line.key] < self.ray_options.max_attempts:
            self._queue.appendleft(line)  # first in line for the next free worker
            self.retried += 1
            self._notify(line, "retried")
            return False
        tries = self._tries[line.key]
        reason = f"its Ray worker died while running it, on try {tries} of {tries} (last: {_first_line(exc)})"
        self._fail(line, Failure(line.key, reason))
        return True

    def _worker_lost_errors(self) -> tuple[type[BaseException], ...]:
        errors = self.ray.exceptions
        return (errors.RayActorError, errors.WorkerCrashedError, errors.ObjectLostError)

    def _fail(self, line: ManifestLine, failure: Failure) -> None:
        self.failures.append(failure)
        note_failures(self.out_dir, failures_path(self.out_dir), self.failures)
        self._notify(line, "failed")

    def _notify(self, line: ManifestLine, status: str) -> None:
        if self.on_item is not None:
            self.on_item(line, status)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
