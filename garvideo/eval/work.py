"""Resumable benchmark runs: per-item results in a work folder, the predictions file assembled at the end.

A run over ``PREDICTIONS`` keeps its per-item results in the work folder
``PREDICTIONS.work/`` beside it (one JSON file per item, written atomically by
:class:`garvideo.batch.jobs.BatchJob`), so a run that is killed loses at most
the item it was on, and the next run with the same ``--out`` answers only the
items that have no result yet. The predictions file itself is written once,
atomically, when every item has been tried: it never exists half-written.

The work folder also holds ``run.json`` (the settings the results were made
with: a later run with other settings is refused rather than mixing results),
``failures.jsonl`` (this run's per-item failures, from BatchJob) and
``eval_summary.json`` (:class:`EvalSummary`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch.jobs import BatchJob, is_done, result_path
from ..errors import InvalidInputError
from ..files import atomic_write_json
from .scoring import ScoreReport

RUN_FILE = "run.json"
SUMMARY_FILE = "eval_summary.json"


def work_folder(predictions: str | Path) -> Path:
    """Where the per-item results of a run writing ``predictions`` live: ``PREDICTIONS.work/`` beside it."""
    predictions = Path(predictions)
    return predictions.with_name(predictions.name + ".work")


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


def check_run_settings(work_dir: Path, settings: Mapping[str, Any]) -> None:
    """Record the run's settings in the work folder, or refuse results made with other settings."""
    path = work_dir / RUN_FILE
    wanted = json.loads(json.dumps(dict(settings)))  # as it reads back from JSON
    if path.is_file():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and recorded != wanted:
            changed = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
            details = ", ".join(f"{k}: {recorded.get(k)!r} before, {wanted.get(k)!r} now" for k in changed)
            raise InvalidInputError(
                f"{work_dir} holds results made with other settings ({details}): use another --out, "
                f"or delete that folder to start over"
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, wanted)


def run_items(
    items: Sequence[EvalItem],
    predictions: Path,
    process: Callable[[EvalItem], dict[str, Any]],
    settings: Mapping[str, Any],
    progress: bool = True,
) -> tuple[list[ItemOutcome], int, int]:
    """Run ``process`` over the items not done yet; return every item's outcome, and (computed, reused) counts."""
    work_dir = work_folder(predictions)
    check_run_settings(work_dir, settings)
    summary = BatchJob(list(items), work_dir, process, progress=progress).run()
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
    return outcomes, summary.succeeded, summary.done_before


def write_summary(summary: EvalSummary) -> None:
    atomic_write_json(summary.work_dir / SUMMARY_FILE, summary.to_dict())
