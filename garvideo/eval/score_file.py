"""Scoring a prediction file, whichever benchmark wrote it (``garvideo eval score``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from . import gar_bench, videorefer
from .items import read_records
from .scoring import ScoreReport

BENCHMARKS = ("gar-bench-vqa", "videorefer-q")


def detect_benchmark(records: list[dict[str, Any]], path: Path | str = "the file") -> str:
    """``"gar-bench-vqa"`` (items with ``model_output``) or ``"videorefer-q"`` (records with ``Answer`` and ``pred``)."""
    keys = set().union(*(r.keys() for r in records)) if records else set()
    if "model_output" in keys:
        return "gar-bench-vqa"
    if {"Answer", "pred"} <= keys:
        return "videorefer-q"
    if {"caption", "pred"} <= keys:
        raise InvalidInputError(
            f"{path} holds VideoRefer-Bench-D descriptions: they are judged by an external LLM (GPT-4o, VideoRefer's "
            "videorefer_bench_d scripts), not scored here"
        )
    raise InvalidInputError(
        f"cannot tell which benchmark {path} belongs to: expected GAR-Bench-VQA items with 'model_output' or "
        "VideoRefer-Bench-Q records with 'Answer' and 'pred' (or pass --benchmark)"
    )


def score_predictions(path: str | Path, benchmark: str = "auto") -> tuple[str, ScoreReport]:
    """The benchmark (detected unless given) and its per-type and overall score of the file at ``path``."""
    path = Path(path)
    if benchmark not in ("auto", *BENCHMARKS):
        raise InvalidInputError(f"unknown benchmark {benchmark!r}: use auto, {', '.join(BENCHMARKS)}")
    records = read_records(path, "predictions file")
    if benchmark == "auto":
        benchmark = detect_benchmark(records, path)
    if benchmark == "gar-bench-vqa":
        if not any("model_output" in r for r in records):
            raise InvalidInputError(
                f"no item of {path} has a model_output: is it the annotation file, not predictions?"
            )
        return benchmark, gar_bench.score(records)
    missing = next((r for r in records if "Answer" not in r), None)
    if missing is not None:
        raise InvalidInputError(f"{path}: a record has no 'Answer', so it cannot be scored: {str(missing)[:120]}")
    return benchmark, videorefer.score(records)


def format_score(benchmark: str, report: ScoreReport) -> str:
    """The printout of that benchmark's reference scorer."""
    return gar_bench.format_report(report) if benchmark == "gar-bench-vqa" else videorefer.format_report(report)
