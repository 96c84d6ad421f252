"""The service's engine: accepted jobs queue in the store, a fixed number of runners take them in order.

Each runner claims the oldest queued job (skipping clients already running their share,
``max_running_per_key``), runs it on the executor (the shared pipeline of this process, or a Ray worker),
and records how it ended in one store transaction. A job's events go to its :class:`EventLog`; a cancel
request makes its next event raise :class:`JobCancelled` inside the pipeline, which stops the work. A run
whose worker died is put back in the queue (at most ``max_attempts`` runs); at start-up the jobs a stopped
server was running are put back the same way, so every accepted job ends exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import defaults
from ..errors import GarvideoError, InvalidInputError
from .events import EventLog, pipeline_event
from .requests import JobRequest, parse_request
from .store import Job, JobStore, QueueFull
from .videos import VideoSources
from .work import JobOutput

log = logging.getLogger("garvideo.serve")


class JobCancelled(Exception):
    """Raised from a job's event callback to stop its work (its client cancelled it)."""


class WorkerLost(Exception):
    """The worker running a job is gone (a Ray actor killed, its node lost): the job goes back in the queue."""


class LimitExceeded(GarvideoError):
    """A client (or the server) has as many jobs waiting as it may: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int, status: int = 429) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class Executor(Protocol):
    """Runs jobs: :class:`~garvideo.serve.local.LocalExecutor` or :class:`~garvideo.serve.ray_workers.RayExecutor`."""

    slots: int  # jobs it runs at once

    def run(self, slot: int, request: JobRequest, video: str, shown: str, folder: Any, on_event: Callable) -> JobOutput:
        """Run one job; raises :class:`WorkerLost` when its worker died."""

    def ready(self) -> bool: ...

    def models(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EngineSettings:
    """The queue's limits (see :mod:`garvideo.defaults` for each)."""

    max_running_per_key: int = defaults.SERVE_MAX_RUNNING_PER_KEY
    max_queued_per_key: int = defaults.SERVE_MAX_QUEUED_PER_KEY
    max_queued: int = defaults.SERVE_MAX_QUEUED
    keep_hours: float = defaults.SERVE_KEEP_HOURS
    max_attempts: int = 3  # runs of a job whose worker died (or whose server stopped) before it fails


@dataclass
class _Running:
    job: Job
    log: EventLog
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: dict[str, Any] | None = None
    saved_at: float = 0.0


@dataclass
class Stats:
    """What the metrics show beyond the store's counts."""

    finished: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_count: dict[str, int] = field(default_factory=dict)
    run_seconds: float = 0.0
    wait_seconds: float = 0.0
    runs: int = 0
    requeued: int = 0


class Engine:
    def __init__(self, store: JobStore, executor: Executor, sources: VideoSources, settings: EngineSettings) -> None:
        self.store = store
        self.executor = executor
        self.sources = sources
        self.settings = settings
        self.stats = Stats()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._running: dict[str, _Running] = {}
        self._logs: dict[str, EventLog] = {}  # queued jobs someone watches
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        for job_id, state in self.store.recover(self.settings.max_attempts):
            log.warning("job %s was running when the server stopped: now %s", job_id, state)
        self.store.remove_orphans()
        for slot in range(self.executor.slots):
            self._spawn(f"garvideo-runner-{slot}", lambda slot=slot: self._runner(slot))
        self._spawn("garvideo-cleaner", self._cleaner)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        self.executor.close()

    # ------------------------------------------------------------------ clients' side

    def submit(self, owner: str, request: JobRequest, video: dict[str, Any], idempotency_key: str | None, digest: str):
        """Accept a job (or find the one this idempotency key made): (job, created)."""
        limits = (self.settings.max_queued_per_key, self.settings.max_queued)
        try:
            job, created = self.store.add(
                owner, request.kind, request.to_json(), video, idempotency_key, digest, max_waiting=limits
            )
        except QueueFull as full:
            if full.scope == "all":
                message = f"the server has {full.waiting} jobs waiting, its limit: try again later"
                raise LimitExceeded(message, self.retry_after(), 503) from None
            message = (
                f"you have {full.waiting} jobs waiting, the most this server queues for one client: wait for some to "
                "finish (or cancel some) and try again"
            )
            raise LimitExceeded(message, self.retry_after()) from None
        if created:
            with self._wakeup:
                self._wakeup.notify()
        return job, created

    def retry_after(self) -> int:
        """Seconds until about one waiting job has started: the mean run time per runner, at least 1."""
        mean = self.stats.run_seconds / self.stats.runs if self.stats.runs else 5.0
        return max(1, round(mean / max(1, self.executor.slots)))

    def cancel(self, job_id: str) -> Job | None:
        job = self.store.request_cancel(job_id)
        with self._lock:
            running = self._running.get(job_id)
            if running is not None:
                running.cancel.set()
            watched = self._logs.pop(job_id, None) if job is not None and job.state == "cancelled" else None
        if watched is not None:
            watched.append("state", {"state": "cancelled"})
            watched.close()
        return job

    def progress(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            running = self._running.get(job_id)
            return running.progress if running is not None else None

    def log_of(self, job_id: str) -> EventLog | None:
        """The events of an unfinished job (None once it has finished: its result holds what it made)."""
        with self._lock:
            running = self._running.get(job_id)
            if running is not None:
                return running.log
            job = self.store.get(job_id)
            if job is None or job.is_finished:
                return None
            return self._logs.setdefault(job_id, EventLog())

    # ------------------------------------------------------------------ runners

    def _runner(self, slot: int) -> None:
        while not self._stopping.is_set():
            try:
                job = self.store.claim(self.settings.max_running_per_key)
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the runner
                log.exception("claiming a job failed")
                job = None
            if job is None:
                with self._wakeup:
                    if not self._stopping.is_set():
                        self._wakeup.wait(timeout=1.0)
                continue
            try:
                self._run(slot, job)
            except Exception:  # noqa: BLE001
                log.exception("runner %d failed on job %s", slot, job.id)
            with self._wakeup:
                self._wakeup.notify()  # a client's share freed up: another runner may take its next job

    def _run(self, slot: int, job: Job) -> None:
        with self._lock:
            watched = self._logs.pop(job.id, None)
            running = _Running(job, watched or EventLog())
            self._running[job.id] = running
        running.log.append("state", {"state": "running", "attempt": job.attempts})
        began = time.time()
        with self._lock:
            self.stats.wait_seconds += max(0.0, began - job.created)
        state, output, error, kind = self._outcome(slot, job, running)
        try:
            state, error = self._record(job, state, output, error, kind)
        finally:
            self._done(job, running, state, error, time.time() - began)

    def _record(
        self, job: Job, state: str, output: JobOutput | None, error: str | None, kind: str | None
    ) -> tuple[str, str | None]:
        """Store how a run ended; the job's state now ("lost": the run no longer held the job)."""
        if state == "release":
            return ("queued" if self.store.release(job.id, job.attempts) else "lost"), None
        if state == "requeue":
            with self._lock:
                self.stats.requeued += 1
            new = self.store.requeue(job.id, job.attempts, self.settings.max_attempts, error or "its worker died")
            if new == "failed":
                return new, self.store.get(job.id).error
            return new or "lost", None
        result = output.result if output is not None else None
        files = output.files if output is not None else ()
        if not self.store.finish(job.id, job.attempts, state, result, files, error, kind):
            return "lost", error
        if output is not None:
            self._count_stages(output)
        return state, error

    def _outcome(self, slot: int, job: Job, running: _Running) -> tuple[str, JobOutput | None, str | None, str | None]:
        """Run the job: (state, output, error, error kind); state "requeue" when its worker died."""
        try:
            request = parse_request(job.request, upload=job.request.get("video") is None)
            if self.store.get(job.id).cancel_requested:
                raise JobCancelled
            video = self.sources.local_path(job.video, self.store)
            folder = self.store.job_folder(job.id)
            output = self.executor.run(slot, request, str(video), job.video["name"], folder, self._listener(running))
            return "done", output, None, None
        except JobCancelled:
            return (
                ("cancelled" if running.cancel.is_set() or not self._stopping.is_set() else "release"),
                None,
                None,
                None,
            )
        except WorkerLost as exc:
            return "requeue", None, str(exc), None
        except GarvideoError as exc:
            if running.cancel.is_set():
                return "cancelled", None, None, None
            return "failed", None, one_line(str(exc)), "input" if isinstance(exc, InvalidInputError) else "job"
        except Exception as exc:  # noqa: BLE001 - recorded with the job; the server goes on
            if running.cancel.is_set() or isinstance(exc.__cause__, JobCancelled):
                return "cancelled", None, None, None
            log.error("job %s failed:\n%s", job.id, "".join(traceback.format_exception(exc)))
            return "failed", None, one_line(f"{type(exc).__name__}: {exc}"), "internal"

    def _listener(self, running: _Running) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:
            if running.cancel.is_set() or self._stopping.is_set():
                raise JobCancelled
            for name, data in pipeline_event(event) if not isinstance(event, tuple) else [event]:
                running.log.append(name, data)
                if name == "progress":
                    running.progress = data
                    if time.monotonic() - running.saved_at > 1.0:
                        running.saved_at = time.monotonic()
                        self.store.set_progress(running.job.id, running.job.attempts, data)

        return on_event

    def _done(self, job: Job, running: _Running, state: str, error: str | None, seconds: float) -> None:
        with self._lock:
            if state in ("done", "failed", "cancelled"):
                self.stats.finished[state] = self.stats.finished.get(state, 0) + 1
            self.stats.run_seconds += seconds
            self.stats.runs += 1
            self._running.pop(job.id, None)
        running.log.append("state", {"state": state if state != "lost" else "queued", "error": error})
        running.log.close()

    def _count_stages(self, output: JobOutput) -> None:
        with self._lock:
            self._add_stages(output.timings)

    def _add_stages(self, timings: dict[str, float]) -> None:
        for stage, seconds in timings.items():
            self.stats.stage_seconds[stage] = self.stats.stage_seconds.get(stage, 0.0) + float(seconds)
            self.stats.stage_count[stage] = self.stats.stage_count.get(stage, 0) + 1

    def _cleaner(self) -> None:
        while not self._stopping.wait(60.0):
            try:
                for job_id in self.store.expired(time.time() - self.settings.keep_hours * 3600):
                    self.store.delete(job_id)
            except Exception:  # noqa: BLE001
                log.exception("removing expired jobs failed")

    def expire_now(self) -> list[str]:
        """Delete the finished jobs older than ``keep_hours`` now (the cleaner does it every minute)."""
        expired = self.store.expired(time.time() - self.settings.keep_hours * 3600)
        return [job_id for job_id in expired if self.store.delete(job_id)]


def one_line(message: str) -> str:
    return " ".join(str(message).split())
