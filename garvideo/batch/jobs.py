"""Resumable batch jobs: one result file per item, written atomically.

A job is a list of items, each with a stable ``key``. For every item whose
result file ``OUT/<key>.json`` does not exist yet, ``process(item)`` runs and
its JSON-able result is written atomically, so a crash or SIGKILL never leaves
a half file and a re-run skips exactly the finished items. An item that fails
is recorded with its reason in ``OUT/failures.jsonl`` (rewritten atomically
after each failure) and the job goes on. Items can be split over several
workers (``shard=(k, n)``): each worker takes the items whose position is
``k`` modulo ``n`` and keeps its own failures and summary files, so workers
of a cluster job array can share one output folder. Runs of the same items
on one folder at the same time share the work: each item is locked while it
is computed (:mod:`garvideo.batch.locks`), the other runs leave it and come
back for it (its result, or the item itself if its run died) at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from ..errors import GarvideoError, InvalidInputError
from ..files import atomic_write_json, atomic_write_text, is_abandoned_temporary
from .locks import ItemLock, lock_path, remove_stale_locks


class Keyed(Protocol):
    key: str


ItemT = TypeVar("ItemT", bound=Keyed)


@dataclass(frozen=True)
class Failure:
    key: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "reason": self.reason, **self.detail}


@dataclass(frozen=True)
class BatchSummary:
    total: int
    done_before: int
    succeeded: int
    failed: tuple[Failure, ...]
    seconds: float
    shard: tuple[int, int] = (0, 1)
    done_elsewhere: int = 0  # finished meanwhile by another run on the same folder

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "skipped_already_done": self.done_before,
            "succeeded": self.succeeded,
            "done_by_another_run": self.done_elsewhere,
            "failed": len(self.failed),
            "failures": [f.to_dict() for f in self.failed],
            "seconds": round(self.seconds, 3),
            "shard": {"index": self.shard[0], "count": self.shard[1]},
        }


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"2/8"`` means the third of eight workers (0-based). None or empty gives ``(0, 1)``."""
    if not text:
        return (0, 1)
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError as exc:
        raise InvalidInputError(f"cannot read shard {text!r}: use K/N, e.g. 0/4 for the first of four workers") from exc
    if count < 1 or not 0 <= index < count:
        raise InvalidInputError(f"shard {text!r} is out of range: K/N needs 0 <= K < N")
    return (index, count)


def shard_from_environment() -> tuple[int, int] | None:
    """The worker's place in a SLURM job array or a torchrun/MPI launch, when run under one."""
    env = os.environ
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        offset = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        return (int(env["SLURM_ARRAY_TASK_ID"]) - offset, int(env["SLURM_ARRAY_TASK_COUNT"]))
    for rank, size in (("RANK", "WORLD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")):
        if rank in env and size in env:
            return (int(env[rank]), int(env[size]))
    return None


def result_path(out_dir: Path, key: str) -> Path:
    return out_dir / f"{key}.json"


def _shard_suffix(shard: tuple[int, int]) -> str:
    return "" if shard[1] == 1 else f".shard-{shard[0]}-of-{shard[1]}"


def failures_path(out_dir: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    return out_dir / f"failures{_shard_suffix(shard)}.jsonl"


def summary_path(out_dir: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    return out_dir / f"summary{_shard_suffix(shard)}.json"


def is_done(out_dir: Path, key: str) -> bool:
    """A result exists and is complete JSON (atomic writes make partial files impossible; be safe anyway)."""
    path = result_path(out_dir, key)
    if not path.is_file():
        return False
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary files of a killed run are never results: delete them (not those another run is writing)."""
    for path in out_dir.iterdir():
        if is_abandoned_temporary(path):
            with contextlib.suppress(OSError):
                path.unlink()


def _read_failures(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                records.append(record)
    return records


def write_failures(out_dir: Path, path: Path, failures: Sequence[Failure], handled: Collection[str] = ()) -> None:
    """Record this run's failures, keeping those another run on the folder recorded for items it did not handle.

    Entries of items this run handled (``handled``, and every item in ``failures``) or that are done now
    are replaced; the file is rewritten under a short lock so two runs never lose each other's records.
    """
    handled = set(handled) | {failure.key for failure in failures}
    lock = ItemLock.wait(path.with_name(path.name + ".lock"))
    try:
        others = [
            record
            for record in _read_failures(path)
            if record["key"] not in handled and not is_done(out_dir, record["key"])
        ]
        records = others + [f.to_dict() for f in failures]
        if records:
            atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        lock.release()


@dataclass
class _RunState:
    """What one :meth:`BatchJob.run` has seen and done so far."""

    out_dir: Path
    fail_file: Path
    done_at_start: set[str]  # results that existed before this run (not another concurrent run's work)
    handled: set[str] = field(default_factory=set)  # items this run computed (or tried to)
    failures: list[Failure] = field(default_factory=list)


def prepare_job(items: Sequence[ItemT], out_dir: Path, shard: tuple[int, int] = (0, 1)) -> list[ItemT]:
    """Ready ``out_dir`` (created, an earlier run's temporary files gone) and return the shard's items."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    remove_stale_locks(out_dir)
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise InvalidInputError("batch items must have distinct keys (the same item appears twice)")
    index, count = shard
    return [item for position, item in enumerate(items) if position % count == index]


def failure_from(key: str, exc: BaseException) -> Failure:
    """The record of an item that raised: a user's mistake by its message, anything else with its traceback."""
    if isinstance(exc, GarvideoError):
        return Failure(key, str(exc))
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Failure(key, f"{type(exc).__name__}: {exc}", {"traceback": trace})


def finish_job(
    out_dir: Path,
    total: int,
    done_before: int,
    succeeded: int,
    failures: Sequence[Failure],
    start: float,
    shard: tuple[int, int] = (0, 1),
    *,
    handled: Collection[str] = (),
    done_elsewhere: int = 0,
) -> BatchSummary:
    """Write the final failures file and the summary (``start``: the run's ``time.monotonic()``).

    ``handled``: the items this run computed or tried (see :func:`write_failures`); ``done_elsewhere``:
    items another run on the same folder finished meanwhile.
    """
    write_failures(out_dir, failures_path(out_dir, shard), failures, handled)
    summary = BatchSummary(
        total=total,
        done_before=done_before,
        succeeded=succeeded,
        failed=tuple(failures),
        seconds=time.monotonic() - start,
        shard=shard,
        done_elsewhere=done_elsewhere,
    )
    atomic_write_json(summary_path(out_dir, shard), summary.to_dict())
    return summary


@dataclass
class BatchJob(Generic[ItemT]):
    """Runs ``process`` over ``items`` into ``out_dir``; see the module docstring."""

    items: Sequence[ItemT]
    out_dir: Path
    process: Callable[[ItemT], dict[str, Any]]
    shard: tuple[int, int] = (0, 1)
    progress: bool = True
    on_item: Callable[[ItemT, str], None] | None = None  # called with "done", "skipped" or "failed"
    poll_s: float = 0.5  # how often to look again at items another run is computing

    def run(self) -> BatchSummary:
        from tqdm.auto import tqdm

        start = time.monotonic()
        out_dir = Path(self.out_dir)
        mine = prepare_job(self.items, out_dir, self.shard)
        state = _RunState(
            out_dir, failures_path(out_dir, self.shard), {item.key for item in mine if is_done(out_dir, item.key)}
        )
        tally = {"done": 0, "skipped": 0, "elsewhere": 0, "failed": 0}
        bar = tqdm(total=len(mine), desc="batch", unit="item", disable=not self.progress)
        # Items another run is computing are left for the next pass, a poll later; then their results are
        # picked up, or the items themselves once their run is gone (its lock stale).
        pending: list[ItemT] = list(mine)
        while pending:
            busy = []
            for item in pending:
                status = self._attempt(state, item, bar)
                if status == "busy":
                    busy.append(item)
                else:
                    tally[status] += 1
                    bar.update()
            pending = busy
            if pending:
                time.sleep(self.poll_s)
        bar.close()
        return finish_job(
            out_dir,
            len(mine),
            tally["skipped"],
            tally["done"],
            state.failures,
            start,
            self.shard,
            handled=state.handled,
            done_elsewhere=tally["elsewhere"],
        )

    def _attempt(self, state: _RunState, item: ItemT, bar: Any) -> str:
        """Compute one item unless it is done or locked: "done", "failed", "skipped", "elsewhere" or "busy"."""
        out_dir = state.out_dir
        finished = "skipped" if item.key in state.done_at_start else "elsewhere"
        if is_done(out_dir, item.key):
            self._notify(item, "skipped")
            return finished
        lock = ItemLock.acquire(lock_path(out_dir, item.key))
        if lock is None:
            return "busy"
        try:
            if is_done(out_dir, item.key):  # finished by another run between the check and the lock
                self._notify(item, "skipped")
                return finished
            bar.set_postfix_str(item.key[-40:])
            state.handled.add(item.key)
            try:
                with lock.kept_fresh():
                    result = self.process(item)
            except Exception as exc:  # noqa: BLE001 - one bad item must not stop the batch
                state.failures.append(failure_from(item.key, exc))
            else:
                atomic_write_json(result_path(out_dir, item.key), result)
                self._notify(item, "done")
                return "done"
            write_failures(out_dir, state.fail_file, state.failures, state.handled)
            self._notify(item, "failed")
            return "failed"
        finally:
            lock.release()

    def _notify(self, item: ItemT, status: str) -> None:
        if self.on_item is not None:
            self.on_item(item, status)
