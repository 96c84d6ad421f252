"""The service's job store: one SQLite database (WAL) in the ``--state`` folder, and the jobs' files beside it.

A job is accepted only once its row is committed (``synchronous=FULL``: on disk before the client hears
``202``), so nothing accepted is lost to a crash. Every change of state is one transaction, and the one that
finishes a job writes its result document in the same transaction: a job is done with its result, or not
done at all. A job is run under an attempt number (its ``attempts`` when claimed); finishing checks it, so
a run that was given up (its worker died, the server restarted) can never finish the job a second time.
Every change is also appended to ``transitions`` (job, state, attempt, time): the audit trail the
exactly-once tests read.

One server at a time owns a state folder (an exclusive lock on ``state/lock``, released by the system
however the server ends, ``kill -9`` included).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GarvideoError, InvalidInputError

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    video TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT,
    error TEXT,
    error_kind TEXT,
    result BLOB,
    files TEXT NOT NULL DEFAULT '[]',
    idempotency_key TEXT,
    request_hash TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_key ON jobs(owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS transitions (job TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL, at REAL NOT NULL);
"""

_COLUMNS = (
    "id, owner, kind, request, video, state, progress, error, error_kind, files, attempts, cancel_requested, "
    "created, started, finished"
)


class StateFolderBusyError(GarvideoError):
    """Another server holds the state folder."""


class QueueFull(GarvideoError):
    """As many jobs wait as allowed: ``scope`` is "owner" (one client's) or "all"; ``waiting`` how many."""

    def __init__(self, scope: str, waiting: int) -> None:
        super().__init__(f"{waiting} jobs waiting ({scope})")
        self.scope, self.waiting = scope, waiting


@dataclass(frozen=True)
class Job:
    """One job as stored (its result document is read on its own: :meth:`JobStore.result`)."""

    id: str
    owner: str
    kind: str
    request: dict[str, Any]  # the accepted request, as JSON
    video: dict[str, Any]  # where its video is: {"source": root|upload|url|data, "name": shown name, "path": ...}
    state: str
    progress: dict[str, Any] | None
    error: str | None
    error_kind: str | None  # "input": the request's own mistake; "internal": the server's
    files: tuple[str, ...]
    attempts: int
    cancel_requested: bool
    created: float
    started: float | None
    finished: float | None

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> Job:
        (id_, owner, kind, request, video, state, progress, error, error_kind, files, attempts, cancel, *times) = row
        return cls(
            id=id_,
            owner=owner,
            kind=kind,
            request=json.loads(request),
            video=json.loads(video),
            state=state,
            progress=json.loads(progress) if progress else None,
            error=error,
            error_kind=error_kind,
            files=tuple(json.loads(files)),
            attempts=attempts,
            cancel_requested=bool(cancel),
            created=times[0],
            started=times[1],
            finished=times[2],
        )


class JobStore:
    """The jobs of one state folder; safe to share between threads (one connection behind a lock)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.folder / "lock", "a+")  # noqa: SIM115 - held for the store's life
        except OSError as exc:
            raise InvalidInputError(f"cannot use the state folder {self.folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise StateFolderBusyError(
                f"another garvideo serve is using the state folder {self.folder}: stop it, or give another --state"
            ) from None
        self.files_root = self.folder / "files"
        self.uploads_root = self.folder / "uploads"
        for folder in (self.files_root, self.uploads_root):
            folder.mkdir(exist_ok=True)
        self._guard = threading.RLock()
        self._db = sqlite3.connect(self.folder / "jobs.sqlite", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a 202 means the job is on disk
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._guard:
            self._db.close()
        self._lock_file.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._guard:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _note(self, db: sqlite3.Connection, job_id: str, state: str, attempt: int) -> None:
        db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?)", (job_id, state, attempt, time.time()))

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> Job | None:
        with self._guard:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job._from_row(row) if row else None

    def by_key(self, owner: str, idempotency_key: str) -> Job | None:
        """The job ``owner`` made with this idempotency key, if any."""
        with self._guard:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE owner = ? AND idempotency_key = ?", (owner, idempotency_key)
            ).fetchone()
        return Job._from_row(row) if row else None

    def result(self, job_id: str) -> bytes | None:
        """The result document of a done job, as the bytes written (``garvideo describe --out``'s)."""
        with self._guard:
            row = self._db.execute("SELECT result FROM jobs WHERE id = ? AND state = 'done'", (job_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def list(self, owner: str | None = None, state: str | None = None, limit: int = 100, after: int = 0) -> list[Job]:
        """Jobs in the order they were accepted (``owner`` None: everyone's); ``after``: skip that many."""
        where, args = [], []
        for column, value in (("owner", owner), ("state", state)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._guard:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs {clause} ORDER BY seq LIMIT ? OFFSET ?", (*args, limit, after)
            ).fetchall()
        return [Job._from_row(row) for row in rows]

    def counts(self, owner: str | None = None) -> dict[str, int]:
        """Jobs per state (every state listed, 0 included)."""
        clause, args = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        with self._guard:
            rows = self._db.execute(f"SELECT state, COUNT(*) FROM jobs {clause} GROUP BY state", args).fetchall()
        found = dict(rows)
        return {state: found.get(state, 0) for state in STATES}

    def transitions(self, job_id: str | None = None) -> list[tuple[str, str, int]]:
        """The audit trail: (job, state, attempt) in order."""
        clause, args = ("WHERE job = ?", (job_id,)) if job_id else ("", ())
        with self._guard:
            return [
                tuple(row) for row in self._db.execute(f"SELECT job, state, attempt FROM transitions {clause}", args)
            ]

    # ------------------------------------------------------------------ changing

    def add(
        self,
        owner: str,
        kind: str,
        request: dict[str, Any],
        video: dict[str, Any],
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        max_waiting: tuple[int | None, int | None] = (None, None),
    ) -> tuple[Job, bool]:
        """Accept a job (queued); with an idempotency key already used by ``owner``: that job, and False.

        ``max_waiting``: the most jobs that may wait for ``owner`` and for everyone (None: no limit); a new job
        beyond either raises :class:`QueueFull`, checked in the same transaction as the job's insertion.
        """
        job_id = secrets.token_hex(10)
        with self._transaction() as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT id, request_hash FROM jobs WHERE owner = ? AND idempotency_key = ?",
                    (owner, idempotency_key),
                ).fetchone()
                if row is not None:
                    if row[1] != request_hash:
                        raise IdempotencyConflict(
                            f"the Idempotency-Key {idempotency_key!r} was used for another request (job {row[0]}): "
                            "use a new key for a new request"
                        )
                    return self._get_in(db, row[0]), False  # the retried request's job stands
            self._check_waiting(db, owner, *max_waiting)
            db.execute(
                "INSERT INTO jobs (id, owner, kind, request, video, state, idempotency_key, request_hash, created) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job_id,
                    owner,
                    kind,
                    json.dumps(request, ensure_ascii=False),
                    json.dumps(video, ensure_ascii=False),
                    idempotency_key,
                    request_hash,
                    time.time(),
                ),
            )
            self._note(db, job_id, "queued", 0)
            return self._get_in(db, job_id), True

    def _check_waiting(self, db: sqlite3.Connection, owner: str, most_owner: int | None, most_all: int | None) -> None:
        for scope, most, clause, args in (("all", most_all, "", ()), ("owner", most_owner, "AND owner = ?", (owner,))):
            if most is not None:
                (waiting,) = db.execute(f"SELECT COUNT(*) FROM jobs WHERE state = 'queued' {clause}", args).fetchone()
                if waiting >= most:
                    raise QueueFull(scope, waiting)

    def _get_in(self, db: sqlite3.Connection, job_id: str) -> Job:
        return Job._from_row(db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def claim(self, max_running_per_owner: int | None = None, exclude: Sequence[str] = ()) -> Job | None:
        """The oldest queued job whose owner runs fewer than ``max_running_per_owner`` jobs, now running."""
        with self._transaction() as db:
            busy: list[str] = []
            if max_running_per_owner is not None:
                busy = [
                    owner
                    for (owner,) in db.execute(
                        "SELECT owner FROM jobs WHERE state = 'running' GROUP BY owner HAVING COUNT(*) >= ?",
                        (max_running_per_owner,),
                    )
                ]
            skip = [*busy, *exclude]
            marks = ",".join("?" * len(skip))
            clause = f"AND owner NOT IN ({marks})" if skip else ""
            row = db.execute(
                f"SELECT id FROM jobs WHERE state = 'queued' {clause} ORDER BY seq LIMIT 1", skip
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started = ?, progress = NULL WHERE id = ?",
                (time.time(), row[0]),
            )
            job = self._get_in(db, row[0])
            self._note(db, job.id, "running", job.attempts)
            return job

    def set_progress(self, job_id: str, attempt: int, progress: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running' AND attempts = ?",
                (json.dumps(progress), job_id, attempt),
            )

    def finish(
        self,
        job_id: str,
        attempt: int,
        state: str,
        result: bytes | None = None,
        files: Sequence[str] = (),
        error: str | None = None,
        error_kind: str | None = None,
    ) -> bool:
        """End the run ``attempt`` of a running job: done (with its result), failed or cancelled, in one step.

        False (and nothing changed) when that run no longer holds the job: it was re-queued, or it ended.
        """
        if state not in FINISHED:
            raise ValueError(f"a job finishes as one of {FINISHED}, not {state!r}")
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = ?, result = ?, files = ?, error = ?, error_kind = ?, finished = ? "
                "WHERE id = ? AND state = 'running' AND attempts = ?",
                (state, result, json.dumps(list(files)), error, error_kind, time.time(), job_id, attempt),
            ).rowcount
            if changed:
                self._note(db, job_id, state, attempt)
            return bool(changed)

    def requeue(self, job_id: str, attempt: int, max_attempts: int, reason: str) -> str | None:
        """Put back a running job whose run was lost (its worker died): queued again, or failed after
        ``max_attempts`` runs. The new state, or None when that run no longer held the job."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT cancel_requested FROM jobs WHERE id = ? AND state = 'running' AND attempts = ?",
                (job_id, attempt),
            ).fetchone()
            if row is None:
                return None
            return self._put_back(db, job_id, attempt, bool(row[0]), max_attempts, reason)

    def _put_back(
        self, db: sqlite3.Connection, job_id: str, attempt: int, cancelled: bool, max_attempts: int, reason: str
    ) -> str:
        if cancelled:
            state, error = "cancelled", None
        elif attempt >= max_attempts:
            state, error = "failed", f"{reason} on each of its {attempt} runs: it is not tried again"
        else:
            state, error = "queued", None
        finished = time.time() if state != "queued" else None
        db.execute(
            "UPDATE jobs SET state = ?, error = ?, error_kind = ?, finished = ?, progress = NULL WHERE id = ?",
            (state, error, "internal" if error else None, finished, job_id),
        )
        self._note(db, job_id, state, attempt)
        return state

    def release(self, job_id: str, attempt: int) -> bool:
        """Put back a running job the server stops before it ends (shutting down): queued, this run not counted."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, progress = NULL "
                "WHERE id = ? AND state = 'running' AND attempts = ?",
                (job_id, attempt),
            ).rowcount
            if changed:
                self._note(db, job_id, "queued", attempt)
            return bool(changed)

    def recover(self, max_attempts: int) -> list[tuple[str, str]]:
        """At start-up: every job a stopped server left running is queued again (run from scratch), cancelled
        if that was asked, or failed once it stopped the server ``max_attempts`` times. Returns (id, state)."""
        with self._transaction() as db:
            rows = db.execute("SELECT id, attempts, cancel_requested FROM jobs WHERE state = 'running'").fetchall()
            reason = "the server stopped while running it"
            return [(job, self._put_back(db, job, attempt, bool(c), max_attempts, reason)) for job, attempt, c in rows]

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; mark a running one (its run stops at its next step). None: no such job."""
        with self._transaction() as db:
            job = db.execute("SELECT state, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if job is None:
                return None
            state, attempt = job
            if state == "queued":
                db.execute("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ?", (time.time(), job_id))
                self._note(db, job_id, "cancelled", attempt)
            elif state == "running":
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return self._get_in(db, job_id)

    def delete(self, job_id: str) -> bool:
        """Remove a finished job, its files and its upload. False: no such finished job."""
        with self._transaction() as db:
            row = db.execute("SELECT state, video FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] not in FINISHED:
                return False
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            self._note(db, job_id, "deleted", 0)
        shutil.rmtree(self.job_folder(job_id), ignore_errors=True)
        upload = json.loads(row[1]).get("upload")
        if upload:
            shutil.rmtree(self.uploads_root / upload, ignore_errors=True)
        return True

    def expired(self, finished_before: float) -> list[str]:
        with self._guard:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ? AND state IN ('done', 'failed', "
                "'cancelled')",
                (finished_before,),
            ).fetchall()
        return [row[0] for row in rows]

    # ------------------------------------------------------------------ files

    def job_folder(self, job_id: str) -> Path:
        return self.files_root / job_id

    def new_upload_folder(self) -> tuple[str, Path]:
        """A fresh folder for an upload (its id, its path); the job that takes it names the id in its video."""
        upload_id = secrets.token_hex(10)
        folder = self.uploads_root / upload_id
        folder.mkdir()
        return upload_id, folder

    def remove_orphans(self) -> list[str]:
        """Folders of jobs that are not in the store (a crash between a job's removal, or an upload's
        arrival, and its row): deleted. Returns their names."""
        with self._guard:
            known = {row[0] for row in self._db.execute("SELECT id FROM jobs")}
            uploads = {json.loads(row[0]).get("upload") for row in self._db.execute("SELECT video FROM jobs")}
        removed = []
        for root, keep in ((self.files_root, known), (self.uploads_root, uploads)):
            for folder in root.iterdir():
                if folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
        return removed


class IdempotencyConflict(InvalidInputError):
    """An idempotency key reused for a different request."""
