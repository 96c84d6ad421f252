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

Every file a job writes goes through :func:`garvideo.files.write_or_rescue`: a result the folder refuses
after the work (a full disk, a read-only remount) is saved elsewhere and its item recorded as failed with
where it went; the failures file and the summary are always written, there or elsewhere
(:attr:`BatchSummary.problems` says where). ``OUT/run.json`` records the settings the results were made
with, and so does every result (:data:`SETTINGS_KEY`): a later run with other settings is refused rather than
mixed in (:func:`check_run_settings`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from ..errors import GarvideoError, InvalidInputError
from ..files import (
    atomic_write_json,
    atomic_write_text,
    create_exclusively,
    is_abandoned_temporary,
    is_temporary,
    json_text,
    write_or_rescue,
)
from .locks import ItemLock, lock_path, remove_stale_locks

#: The settings a folder's results were made with (:func:`check_run_settings`).
RUN_FILE = "run.json"
#: The key under which a result document of a job with settings records them (:func:`check_run_settings`).
SETTINGS_KEY = "run_settings"


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
    problems: tuple[str, ...] = ()  # the job's own files (failures, summary) not written where they belong

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems

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
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ItemOutput:
    """What ``process`` may return for an item: its result document and the text files to write beside it
    (``(suffix, text)``: ``OUT/<key><suffix>``), written first so that a result on disk means a complete item.
    A plain dict is a result document alone."""

    document: dict[str, Any]
    side_files: tuple[tuple[str, str], ...] = ()


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"2/8"`` means the third of eight workers (0-based). None or empty gives ``(0, 1)``."""
    if not text:
        return (0, 1)
    try:
        index_text, count_text = text.split("/")
        index, count = _whole(index_text), _whole(count_text)
    except ValueError:
        raise InvalidInputError(
            f"cannot read shard {text!r}: use K/N, e.g. 0/4 for the first of four workers"
        ) from None
    return _checked_shard(index, count, f"shard {text!r}", "K/N needs 0 <= K < N")


def _whole(text: str) -> int:
    text = text.strip()
    if not text.lstrip("-").isdigit() or len(text) > 12:
        raise ValueError(text)
    return int(text)


def _checked_shard(index: int, count: int, given: str, rule: str) -> tuple[int, int]:
    if count < 1 or not 0 <= index < count:
        raise InvalidInputError(f"{given} is out of range: {rule}")
    return (index, count)


def _environment_whole(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    try:
        return _whole(text or "")
    except ValueError:
        raise InvalidInputError(f"{name}={text!r} is not a whole number: cannot tell this worker's shard") from None


def shard_from_environment() -> tuple[int, int] | None:
    """The worker's place in a SLURM job array or a torchrun/MPI launch, when run under one.

    Checked as ``--shard`` is: a SLURM task outside its array (``sbatch --array=0-6:2`` numbers tasks 0, 2, 4, 6:
    the step is taken into account), a size of 0 or a value that is no number is an :class:`InvalidInputError`,
    never a silently empty shard.
    """
    env = os.environ
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task, count = _environment_whole("SLURM_ARRAY_TASK_ID"), _environment_whole("SLURM_ARRAY_TASK_COUNT")
        first, step = _environment_whole("SLURM_ARRAY_TASK_MIN", 0), _environment_whole("SLURM_ARRAY_TASK_STEP", 1)
        given = f"SLURM_ARRAY_TASK_ID={task} (array of {count} tasks from {first}, step {step})"
        rule = "give each task its shard with --shard K/N (an array with gaps cannot be told apart)"
        if step < 1 or (task - first) % step:
            raise InvalidInputError(f"{given} is not one of the array's tasks: {rule}")
        return _checked_shard((task - first) // step, count, given, rule)
    for rank, size in (("RANK", "WORLD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")):
        if rank in env and size in env:
            index, count = _environment_whole(rank), _environment_whole(size)
            return _checked_shard(index, count, f"{rank}={index} with {size}={count}", f"{rank} must be below {size}")
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


def _failure_records(
    out_dir: Path, path: Path, failures: Sequence[Failure], handled: Collection[str]
) -> list[dict[str, Any]]:
    """This run's failures after those another run on the folder recorded for items this run did not handle."""
    handled = set(handled) | {failure.key for failure in failures}
    others = [
        record
        for record in _read_failures(path)
        if record["key"] not in handled and not is_done(out_dir, record["key"])
    ]
    return others + [f.to_dict() for f in failures]


def _records_text(records: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_failures(out_dir: Path, path: Path, failures: Sequence[Failure], handled: Collection[str] = ()) -> None:
    """Record this run's failures, keeping those another run on the folder recorded for items it did not handle.

    Entries of items this run handled (``handled``, and every item in ``failures``) or that are done now
    are replaced; the file is rewritten under a short lock so two runs never lose each other's records.
    Raises ``OSError`` when the folder refuses (see :func:`finish_job` for the rescue).
    """
    lock = ItemLock.wait(path.with_name(path.name + ".lock"))
    try:
        records = _failure_records(out_dir, path, failures, handled)
        if records:
            atomic_write_text(path, _records_text(records))
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        lock.release()


def note_failures(out_dir: Path, path: Path, failures: Sequence[Failure], handled: Collection[str] = ()) -> None:
    """:func:`write_failures` as the job goes (so a killed run leaves its failures): a folder that refuses now is
    left to :func:`finish_job`, which rescues the file."""
    with contextlib.suppress(OSError):
        write_failures(out_dir, path, failures, handled)


def write_item(
    out_dir: Path, key: str, output: dict[str, Any] | ItemOutput, settings: Mapping[str, Any] | None = None
) -> list[str]:
    """Write an item's side files, then its result document, each atomically; return what went wrong, one
    sentence each (empty: all written where they belong). ``settings``: the job's, recorded in the document
    under :data:`SETTINGS_KEY`.

    Nothing is lost: a file the folder refuses is saved elsewhere (:func:`~garvideo.files.write_or_rescue`). A
    result on disk means a complete item, so when a side file could not be written the document goes to
    ``<key>.incomplete.json`` instead and a re-run does the item again.
    """
    if not isinstance(output, ItemOutput):
        output = ItemOutput(output)
    if settings is not None:
        output = dataclasses.replace(output, document={**output.document, SETTINGS_KEY: _as_json(settings)})
    problems = []
    for suffix, text in output.side_files:
        write = functools.partial(_write_text, text=text)
        problems.append(write_or_rescue(out_dir / f"{key}{suffix}", write, f"{suffix} file of {key}"))
    problems = [problem for problem in problems if problem]
    write_document = functools.partial(_write_json, document=output.document)
    incomplete = out_dir / f"{key}.incomplete.json"
    if problems:
        problems.append(
            write_or_rescue(incomplete, write_document, f"result of {key}")
            or f"the result of {key} is in {incomplete}, as its other files are not all in {out_dir}"
        )
        return problems
    problem = write_or_rescue(result_path(out_dir, key), write_document, "result")
    if problem:
        return [problem]
    with contextlib.suppress(OSError):
        incomplete.unlink()  # an earlier run's
    return []


def _write_text(target: Path, text: str) -> None:
    atomic_write_text(target, text)


def _write_json(target: Path, document: Any) -> None:
    atomic_write_json(target, document)


def is_job_file(name: str, side_suffixes: Collection[str] = ()) -> bool:
    """Whether a job writes or removes files of this name in its folder: results (``<key>.json``, and the
    ``side_suffixes`` of their side files), ``run.json``, summaries, failure records, locks and temporaries."""
    return (
        name.endswith((".json", ".lock", *side_suffixes))
        or ".lock." in name
        or (name.startswith("failures") and ".jsonl" in name)
        or is_temporary(name)
    )


def check_inputs_outside(
    folder: Path, inputs: Mapping[str, str | os.PathLike[str]], side_suffixes: Collection[str] = ()
) -> None:
    """Refuse an input (``{label: path}``) that is one of the files a job writes in ``folder`` (:func:`is_job_file`),
    before any work: it would be overwritten (a manifest copied to ``OUT/failures.jsonl``). Compared as files, so a
    link counts; an input in the folder under another name (``OUT/regions.jsonl``) is fine."""
    for label, path in inputs.items():
        try:
            wanted = os.stat(path)
            entries = list(os.scandir(folder))
        except (OSError, ValueError):
            continue  # no such input, or no folder yet: nothing there to overwrite
        for entry in entries:
            if is_job_file(entry.name, side_suffixes) and _same_file(entry, wanted):
                written = folder / entry.name
                same = "" if os.path.abspath(path) == os.path.abspath(written) else f" the same file as {written},"
                raise InvalidInputError(
                    f"{label} {path} is{same} one of the files this run writes in {folder} (results, {RUN_FILE}, "
                    f"summary, failures, locks): keep it outside {folder}, or give it another name"
                )


def _same_file(entry: os.DirEntry, wanted: os.stat_result) -> bool:
    try:
        found = entry.stat()  # follows a link: what a write through it would replace
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino)


def _as_json(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(settings)))  # as it reads back from a file


def _differences(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, before, now)`` of each setting that differs; nested settings by their own name (``srt``)."""
    changed = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changed += _differences(old, new)
        elif old != new:
            changed.append((key, old, new))
    return changed


def _read_run_file(path: Path) -> dict[str, Any] | None:
    """The settings ``run.json`` records; None when there is none. One that cannot be read is refused: it is no
    record of garvideo's (those are written whole), and a run never writes over what it cannot read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path} ({exc}): move it away, or use another --out") from None
    try:
        recorded = json.loads(text)
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        raise InvalidInputError(
            f"{path} is not the record of settings a garvideo run writes: move it away, or use another --out"
        )
    return recorded


def _results_settings(folder: Path) -> tuple[dict[str, tuple[str, dict[str, Any]]], list[str]]:
    """What the results in ``folder`` record: ``{settings as text: (a result's name, settings)}``, and the names of
    the results that record none (made before results recorded them)."""
    recorded: dict[str, tuple[str, dict[str, Any]]] = {}
    unrecorded: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for path in sorted(folder.iterdir()):
            name = path.name
            if not name.endswith(".json") or name in (RUN_FILE, "eval_summary.json") or name.startswith("summary"):
                continue
            if is_temporary(path):
                continue
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not a result (is_done agrees): done again
            settings = document.get(SETTINGS_KEY) if isinstance(document, dict) else None
            if isinstance(settings, dict):
                recorded.setdefault(json.dumps(settings, sort_keys=True), (name, settings))
            else:
                unrecorded.append(name)
    return recorded, unrecorded


def _refuse_other_settings(
    folder: Path, before: Mapping[str, Any], now: Mapping[str, Any], source: str, has_results: bool
) -> None:
    if before == now:
        return
    details = ", ".join(f"{k}: {old!r} before, {new!r} now" for k, old, new in _differences(before, now))
    if has_results:
        raise InvalidInputError(
            f"{folder} holds results made with other settings ({details}) according to {source}: use another "
            "--out, or delete that folder to start over"
        )
    raise InvalidInputError(
        f"{folder} was begun with other settings ({details}) according to {source}, by a run that may still be "
        f"going (no result yet): use another --out, or delete {folder / RUN_FILE} to start over"
    )


def check_run_settings(folder: Path, settings: Mapping[str, Any], *, record: bool = True) -> None:
    """Refuse a folder whose results were made with other settings; else (``record``) record these in
    ``folder/run.json`` if it records none yet.

    Both records are compared: ``run.json`` and the settings each result holds (:data:`SETTINGS_KEY`), so a
    deleted or replaced ``run.json`` lets no other settings in. ``run.json`` is created exclusively and differing
    settings are refused even before the first result, so of two runs started together with other settings
    the second is refused, never mixed in. Results that record no settings (older ones) are taken on
    ``run.json``'s word, and refused without it.
    """
    wanted = _as_json(settings)
    path = folder / RUN_FILE
    recorded = _read_run_file(path)
    results, unrecorded = _results_settings(folder)
    has_results = bool(results or unrecorded)
    if recorded is not None:
        _refuse_other_settings(folder, recorded, wanted, RUN_FILE, has_results)
    for name, result_settings in results.values():
        _refuse_other_settings(folder, result_settings, wanted, f"the result {name}", has_results)
    if recorded is None and unrecorded:
        raise InvalidInputError(
            f"{folder} holds results ({unrecorded[0]}{', ...' if len(unrecorded) > 1 else ''}) that record no "
            f"settings, and no {RUN_FILE} says which: use another --out, or delete that folder to start over"
        )
    if record and recorded is None:
        folder.mkdir(parents=True, exist_ok=True)
        if not create_exclusively(path, json_text(wanted)):
            check_run_settings(folder, settings, record=False)  # another run recorded its settings meanwhile


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
    problems = []
    fail_file = failures_path(out_dir, shard)
    try:
        write_failures(out_dir, fail_file, failures, handled)
    except OSError:  # the folder refuses (full, read-only): the records are saved elsewhere
        text = _records_text(_failure_records(out_dir, fail_file, failures, handled))
        problems.append(write_or_rescue(fail_file, functools.partial(_write_text, text=text), "failures file"))
    summary = BatchSummary(
        total=total,
        done_before=done_before,
        succeeded=succeeded,
        failed=tuple(failures),
        seconds=time.monotonic() - start,
        shard=shard,
        done_elsewhere=done_elsewhere,
        problems=tuple(p for p in problems if p),
    )
    problem = write_or_rescue(
        summary_path(out_dir, shard), functools.partial(_write_json, document=summary.to_dict()), "summary"
    )
    if problem:
        summary = dataclasses.replace(summary, problems=(*summary.problems, problem))
    return summary


@dataclass
class BatchJob(Generic[ItemT]):
    """Runs ``process`` over ``items`` into ``out_dir``; see the module docstring."""

    items: Sequence[ItemT]
    out_dir: Path
    process: Callable[[ItemT], dict[str, Any] | ItemOutput]
    shard: tuple[int, int] = (0, 1)
    progress: bool = True
    on_item: Callable[[ItemT, str], None] | None = None  # called with "done", "skipped" or "failed"
    poll_s: float = 0.5  # how often to look again at items another run is computing
    # What the results depend on: checked against the folder's (check_run_settings) and recorded in each result.
    settings: Mapping[str, Any] | None = None

    def run(self) -> BatchSummary:
        from tqdm.auto import tqdm

        start = time.monotonic()
        out_dir = Path(self.out_dir)
        if self.settings is not None:
            check_run_settings(out_dir, self.settings)
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
        try:
            lock = ItemLock.acquire(lock_path(out_dir, item.key))
        except OSError as exc:  # the folder refuses even a lock (read-only, full): the item cannot be done here
            return self._failed(state, item, Failure(item.key, f"cannot lock it in {out_dir}: {exc.strerror or exc}"))
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
                return self._failed(state, item, failure_from(item.key, exc))
            problems = write_item(out_dir, item.key, result, self.settings)
            if problems:
                return self._failed(state, item, Failure(item.key, "; ".join(problems)))
            self._notify(item, "done")
            return "done"
        finally:
            lock.release()

    def _failed(self, state: _RunState, item: ItemT, failure: Failure) -> str:
        state.handled.add(item.key)
        state.failures.append(failure)
        note_failures(state.out_dir, state.fail_file, state.failures, state.handled)
        self._notify(item, "failed")
        return "failed"

    def _notify(self, item: ItemT, status: str) -> None:
        if self.on_item is not None:
            self.on_item(item, status)
