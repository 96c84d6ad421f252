"""``garvideo serve --ray``: the same API and job store on one ingress, the model work on Ray actors.

The ingress (this process: FastAPI, the SQLite store, the runners) is unchanged; only the executor differs.
Each actor loads the models once (:class:`~garvideo.batch.ray_runner.PipelineSpec`, as the batch-on-Ray
workers do; one actor per GPU by default, :func:`~garvideo.batch.ray_runner.worker_resources`; the runtime
from :func:`~garvideo.batch.ray_runner.ray_runtime`) and runs up to ``jobs_per_worker`` jobs at once on them,
shared as in a one-machine server (:mod:`garvideo.serve.models`). Its job is :func:`~garvideo.serve.work.run_job`,
not batch's ``LineWorker.process``: a batch line makes a batch document from a manifest line, while a job makes
the CLI's document, streams its events to the ingress and stops when cancelled.
A runner of the ingress hands its job to an actor and polls it for the job's events (and passes a cancel
on); a job whose actor dies (killed, out of memory, its node lost) raises :class:`WorkerLost`, and the
engine puts it back in the queue, up to ``max_attempts`` runs, while a new actor replaces the dead one.

Why not Ray Serve for the ingress: its HTTP proxy and replicas would replace this process, but the
guarantees live in the job store and the runners that own it. Serve's replicas answer requests, not jobs:
a request in flight on a replica that dies is lost to the client, with no queue that outlives the process,
no idempotency keys, no exactly-once finish and no per-client limits; keeping all of that would mean keeping
this ingress anyway, behind another proxy. So the ingress stays one FastAPI process (run it beside the Ray
head; it holds no model), and Ray does what it is good at here: placing actors on GPUs and reporting their
deaths. The workers read the videos and write the jobs' files under ``--state`` and ``--root``: on a
cluster, those folders must be on a shared file system (as batch's inputs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defaults
from ..batch.ray_runner import PipelineSpec, RayOptions, ray_runtime, worker_resources
from ..errors import GarvideoError
from .engine import JobCancelled, WorkerLost
from .events import pipeline_event
from .requests import JobRequest
from .work import JobOutput, run_job

log = logging.getLogger("garvideo.serve")

#: How often a runner asks its actor for the job's events.
POLL_S = 0.2


@dataclass
class _RemoteJob:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)


class ServeWorker:
    """One Ray actor: the models loaded once, jobs run on them a few at a time (a threaded actor)."""

    def __init__(self, models: PipelineSpec) -> None:
        self._models = models
        self._pipeline = None
        self._jobs: dict[str, _RemoteJob] = {}
        self._lock = threading.Lock()

    def load(self) -> GarvideoError | None:
        """Load the models; a user's mistake (a model that cannot be found) is returned for the ingress to show."""
        from .models import share_models

        with self._lock:
            if self._pipeline is None:
                try:
                    self._pipeline = share_models(self._models.load())
                except GarvideoError as exc:
                    return exc
        return None

    def pid(self) -> int:
        return os.getpid()

    def models(self) -> dict[str, Any]:
        from .local import model_refs

        return model_refs(self._pipeline) if self._pipeline is not None else {}

    def run(self, key: str, request: JobRequest, video: str, shown: str, folder: str) -> tuple[str, Any]:
        """Run one job: ("ok", JobOutput), ("error", the exception) or ("cancelled", None)."""
        remote = self._jobs.setdefault(key, _RemoteJob())

        def on_event(event: Any) -> None:
            if remote.cancel.is_set():
                raise JobCancelled
            remote.events.extend(pipeline_event(event))

        try:
            error = self.load()  # a replacement actor may still be loading: its first job waits for it
            if error is not None:
                return "error", error
            return "ok", run_job(self._pipeline, request, video, shown, Path(folder), on_event)
        except JobCancelled:
            return "cancelled", None
        except Exception as exc:  # noqa: BLE001 - the ingress records it as the one-machine server does
            if remote.cancel.is_set():
                return "cancelled", None
            return "error", exc

    def poll(self, key: str, start: int, cancel: bool) -> list[tuple[str, dict[str, Any]]]:
        """The job's events from number ``start`` on; ``cancel`` stops it at its next event."""
        remote = self._jobs.setdefault(key, _RemoteJob())
        if cancel:
            remote.cancel.set()
        return remote.events[start:]

    def forget(self, key: str) -> None:
        self._jobs.pop(key, None)


class RayExecutor:
    """Runs the engine's jobs on Ray actors; ``slots`` = actors x ``jobs_per_worker``."""

    def __init__(self, models: PipelineSpec, options: RayOptions, jobs_per_worker: int = defaults.SERVE_JOBS) -> None:
        models.check()
        self._stack = contextlib.ExitStack()
        self.ray = self._stack.enter_context(ray_runtime(options.address, options.object_store_mib))
        count, gpus_each = worker_resources(self.ray.cluster_resources(), options, lines=1 << 30)
        self._class = self.ray.remote(ServeWorker).options(
            num_cpus=options.cpus_per_worker,
            num_gpus=gpus_each,
            max_restarts=0,
            max_task_retries=0,
            max_concurrency=jobs_per_worker + 3,  # its jobs, and the polls beside them
        )
        self._models = models
        self._per_worker = jobs_per_worker
        self._lock = threading.Lock()
        self._actors = [self._class.remote(models) for _ in range(count)]
        self._loaded: set[int] = set()
        self.slots = count * jobs_per_worker
        self._load_first()

    def _load_first(self) -> None:
        """Wait for the first actor's models: a model that cannot be found stops the server with its message."""
        refs = [actor.load.remote() for actor in self._actors]
        error = self.ray.get(refs[0])
        if error is not None:
            self.close()
            raise error
        self._loaded.add(id(self._actors[0]))
        for actor, ref in zip(self._actors[1:], refs[1:]):
            threading.Thread(target=self._await_load, args=(actor, ref), daemon=True).start()

    def _await_load(self, actor: Any, ref: Any) -> None:
        with contextlib.suppress(Exception):
            if self.ray.get(ref) is None:
                self._loaded.add(id(actor))

    def ready(self) -> bool:
        return bool(self._loaded)

    def models(self) -> dict[str, Any]:
        return self.ray.get(self._actors[0].models.remote())

    def actor_pids(self) -> list[int]:
        return self.ray.get([actor.pid.remote() for actor in self._actors])

    def run(
        self, slot: int, request: JobRequest, video: str, shown: str, folder: Any, on_event: Callable[[Any], None]
    ) -> JobOutput:
        number = slot // self._per_worker
        actor = self._actors[number]
        key = uuid.uuid4().hex
        ref = actor.run.remote(key, request, video, shown, str(folder))
        cancelled, seen = False, 0
        try:
            while True:
                done, _ = self.ray.wait([ref], timeout=POLL_S)
                events = self.ray.get(actor.poll.remote(key, seen, cancelled))
                seen += len(events)
                for event in events:
                    try:
                        on_event(event)
                    except JobCancelled:
                        cancelled = True
                if cancelled and not done:
                    self.ray.get(actor.poll.remote(key, seen, True))
                if done:
                    outcome, value = self.ray.get(ref)
                    break
        except self._lost_errors() as exc:
            self._replace(number, actor)
            raise WorkerLost(f"its Ray worker died ({_first_line(exc)})") from None
        actor.forget.remote(key)
        if outcome == "cancelled" or cancelled:
            raise JobCancelled
        if outcome == "error":
            raise value
        return value

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        errors = self.ray.exceptions
        return (errors.RayActorError, errors.WorkerCrashedError, errors.ObjectLostError)

    def _replace(self, number: int, dead: Any) -> None:
        with self._lock:
            if self._actors[number] is not dead:
                return  # another of its runners replaced it already
            with contextlib.suppress(Exception):
                self.ray.kill(dead)
            self._loaded.discard(id(dead))
            fresh = self._class.remote(self._models)
            self._actors[number] = fresh
            threading.Thread(target=self._await_load, args=(fresh, fresh.load.remote()), daemon=True).start()
            log.warning("a Ray worker died; worker %d replaced", number)

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self._stack.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
