"""Resumable benchmark runs: per-item results in a work folder, the predictions file assembled at the end.

A run over ``PREDICTIONS`` keeps its per-item results in the work folder
``PREDICTIONS.work/`` beside it (one JSON file per item, written atomically by
:class:`garvideo.batch.jobs.BatchJob`), so a run that is killed loses at most
the item it was on, and the next run with the same ``--out`` answers only the
items that have no result yet. The predictions file itself is written once,
atomically, when every item has been tried: it never exists half-written.

The work folder also holds ``run.json`` (the settings the results were made
with, which each result records too: a later run with other settings is refused rather than mixing results),
``failures.jsonl`` (this run's per-item failures, from BatchJob) and
``eval_summary.json`` (:class:`EvalSummary`).

A run is planned before any model is loaded (:class:`EvalPlan`: the items read
once, those chosen, ``out`` checked and its work folder created by
:func:`prepare_out`), so a user's mistake costs seconds; :func:`run_items` then
answers the items and :func:`finish` writes the summary.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..batch.jobs import BatchJob, check_inputs_outside, is_done, result_path
from ..errors import InvalidInputError
from ..files import atomic_write_json, check_distinct, check_writable
from .scoring import ScoreReport

if TYPE_CHECKING:
    from ..model import ModelInfo

SUMMARY_FILE = "eval_summary.json"


def work_folder(predictions: str | Path) -> Path:
    """Where the per-item results of a run writing ``predictions`` live: ``PREDICTIONS.work/`` beside it."""
    predictions = Path(predictions)
    return predictions.with_name(predictions.name + ".work")


def prepare_out(out: str | Path, inputs: Mapping[str, str | Path | None] | None = None) -> Path:
    """``out`` checked as a predictions file that can be written and that is none of ``inputs`` (``{what: path}``:
    the benchmark file, a subset list), and its work folder created.

    Runs before any model is loaded, so a mistaken ``--out`` costs nothing.
    """
    check_distinct({"--out": out}, inputs)
    out = check_writable(out, "predictions")
    work_dir = work_folder(out)
    check_inputs_outside(work_dir, {label: path for label, path in (inputs or {}).items() if path is not None})
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot create the work folder {work_dir} beside the predictions {out}: {exc.strerror or exc}"
        ) from None
    return out


def model_settings(info: ModelInfo) -> dict[str, Any]:
    """The part of a run's recorded settings that says which model made the results."""
    settings = {
        "model": info.model_id,
        "revision": info.revision,
        "dtype": info.dtype,
        "box_mode": info.box_mode,
        "double_bos": info.double_bos,
    }
    if info.adapter is not None:  # only then, so runs made before adapters existed still resume
        settings["adapter"] = info.adapter.to_dict()
    return settings


def item_key(index: int, item: Mapping[str, Any], ignore: Sequence[str] = ()) -> str:
    """A stable key for item ``index``: its position and a digest of its content.

    The digest makes an edited item (another question, other masks) count as new on resume.
    """
    content = {k: v for k, v in item.items() if k not in ignore}
    digest = hashlib.sha1(json.dumps(content, sort_keys=True, ensure_ascii=True).encode()).hexdigest()[:10]
    return f"{index:05d}-{digest}"


@dataclass(frozen=True)
class EvalItem:
    """One benchmark item as a batch item: its key, its position in the benchmark file and its fields."""

    key: str
    index: int
    data: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class EvalPlan:
    """A run checked before any model is loaded: the benchmark's items (read once), those to run, where to write.

    The benchmarks' plans add what their runs need (a mode, video folders, ...).
    """

    benchmark: str
    root: Path  # the data folder: items name their images and videos relative to it
    items: tuple[Mapping[str, Any], ...] = field(repr=False)  # every item of the benchmark file
    chosen: tuple[int, ...]  # indices of the items to run, in order
    out: Path  # the predictions file; its work folder exists

    @property
    def work_dir(self) -> Path:
        return work_folder(self.out)

    def entries(self, ignore: Sequence[str] = ()) -> list[EvalItem]:
        """The chosen items as batch items (``ignore``: fields left out of their keys)."""
        return [EvalItem(item_key(i, self.items[i], ignore), i, self.items[i]) for i in self.chosen]


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item: its stored result, or the reason it failed (which scores as wrong)."""

    item: EvalItem
    result: Mapping[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class EvalSummary:
    """What a benchmark run did and how it scored."""

    benchmark: str
    predictions: Path
    work_dir: Path
    total: int  # items in this run
    computed: int  # answered by this run
    reused: int  # answered by an earlier run (resumed), not computed again
    failed: int  # per-item failures of this run, counted as wrong
    failures: tuple[tuple[str, str], ...]  # (key, reason)
    seconds: float
    report: ScoreReport | None  # None where the benchmark needs an external judge
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what a reader of the score must know (reference-mode items, limits)
    counts: Mapping[str, int] = field(default_factory=dict)  # benchmark-specific tallies

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "predictions": str(self.predictions),
            "work_dir": str(self.work_dir),
            "total": self.total,
            "computed": self.computed,
            "reused": self.reused,
            "failed": self.failed,
            "failures": [{"key": key, "reason": reason} for key, reason in self.failures],
            "seconds": round(self.seconds, 3),
            "score": self.report.to_dict() if self.report is not None else None,
            "settings": dict(self.settings),
            "notes": list(self.notes),
            "counts": dict(self.counts),
        }

    def describe(self) -> str:
        """A few lines for people: what was computed, reused and refused, and why."""
        lines = [
            (
                f"{self.benchmark}: {self.total} items: {self.computed} answered now, {self.reused} reused from an "
                f"earlier run, {self.failed} failed (counted as wrong)"
            )
        ]
        reasons: dict[str, int] = {}
        for _, reason in self.failures:
            kind = _reason_kind(reason)
            reasons[kind] = reasons.get(kind, 0) + 1
        for kind, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count} x {kind}")
        lines += [f"note: {note}" for note in self.notes]
        lines.append(f"predictions: {self.predictions} (per-item results and failures in {self.work_dir})")
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    # Failures of one kind differ only in the item's details; group them by the text before the first colon.
    head = reason.split(": ", 1)[0]
    return head if len(head) <= 120 else head[:117] + "..."


@dataclass(frozen=True)
class ItemsRun:
    """A finished pass over a run's items: every item's outcome, in order."""

    outcomes: tuple[ItemOutcome, ...]
    computed: int  # answered by this pass
    reused: int  # answered by an earlier run
    started: float  # time.monotonic() when the pass began


def run_items(
    items: Sequence[EvalItem],
    predictions: Path,
    process: Callable[[EvalItem], dict[str, Any]],
    settings: Mapping[str, Any],
    progress: bool = True,
) -> ItemsRun:
    """Run ``process`` over the items not done yet; return every item's outcome, and the counts."""
    started = time.monotonic()
    work_dir = work_folder(predictions)
    summary = BatchJob(list(items), work_dir, process, progress=progress, settings=settings).run()
    errors = {failure.key: failure.reason for failure in summary.failed}
    outcomes = []
    for item in items:
        if item.key in errors:
            outcomes.append(ItemOutcome(item, None, errors[item.key]))
        elif is_done(work_dir, item.key):
            result = json.loads(result_path(work_dir, item.key).read_text(encoding="utf-8"))
            outcomes.append(ItemOutcome(item, result, None))
        else:  # not possible after a completed job; kept so a bug cannot pass for a result
            outcomes.append(ItemOutcome(item, None, "no result was recorded for this item"))
    return ItemsRun(tuple(outcomes), summary.succeeded, summary.done_before, started)


def finish(
    plan: EvalPlan,
    run: ItemsRun,
    *,
    report: ScoreReport | None,
    settings: Mapping[str, Any],
    notes: Sequence[str] = (),
    counts: Mapping[str, int] | None = None,
) -> EvalSummary:
    """The run's :class:`EvalSummary`, written to the work folder; a partial run says so first in its notes."""
    failures = tuple((o.item.key, o.error) for o in run.outcomes if o.error is not None)
    if len(plan.chosen) != len(plan.items):
        notes = [
            f"{len(plan.chosen)} of the {len(plan.items)} items were run (subset/limit): the score covers those only",
            *notes,
        ]
    summary = EvalSummary(
        benchmark=plan.benchmark,
        predictions=plan.out,
        work_dir=plan.work_dir,
        total=len(run.outcomes),
        computed=run.computed,
        reused=run.reused,
        failed=len(failures),
        failures=failures,
        seconds=time.monotonic() - run.started,
        report=report,
        settings=dict(settings),
        notes=tuple(notes),
        counts=dict(counts or {}),
    )
    atomic_write_json(summary.work_dir / SUMMARY_FILE, summary.to_dict())
    return summary
