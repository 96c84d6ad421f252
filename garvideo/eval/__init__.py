"""Benchmarks: reproduce GAR's published numbers (GAR-Bench-VQA, VideoRefer-Bench-Q/-D).

- :mod:`.gar_bench`: GAR-Bench-VQA items, the reference's question text, scorer and printout.
- :mod:`.videorefer`: VideoRefer-Bench formats, the -Q scorer's letter parsing and printout.
- :func:`run_gar_bench_vqa` (GAR's image API), :func:`run_videorefer` (the pipeline; the benchmark,
  -Q or -D, is its first argument; :func:`run_videorefer_q` and :func:`run_videorefer_d` fix it): resumable runs that write prediction files in
  each benchmark's own format and return an :class:`EvalSummary`. Each is two halves:
  :func:`plan_gar_bench_vqa` / :func:`plan_videorefer` check the inputs without a model
  (the command line runs them before loading one), :func:`run_gar_bench_plan` /
  :func:`run_videorefer_plan` run the plan.
- :func:`score_predictions`: score a prediction file, whichever benchmark it belongs to.

Scoring needs no model and imports no torch: the runners load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .score_file import BENCHMARKS, detect_benchmark, format_score, score_predictions
from .scoring import ScoreReport, Tally

if TYPE_CHECKING:
    from .run_gar_bench import GarBenchPlan, plan_gar_bench_vqa, run_gar_bench_plan, run_gar_bench_vqa
    from .run_videorefer import (
        VideoReferPlan,
        plan_videorefer,
        run_videorefer,
        run_videorefer_d,
        run_videorefer_plan,
        run_videorefer_q,
    )
    from .work import EvalSummary, work_folder

# Imported on first use: they pull in torch.
_LAZY = {
    "EvalSummary": ".work",
    "work_folder": ".work",
    "GarBenchPlan": ".run_gar_bench",
    "plan_gar_bench_vqa": ".run_gar_bench",
    "run_gar_bench_plan": ".run_gar_bench",
    "run_gar_bench_vqa": ".run_gar_bench",
    "VideoReferPlan": ".run_videorefer",
    "plan_videorefer": ".run_videorefer",
    "run_videorefer_plan": ".run_videorefer",
    "run_videorefer": ".run_videorefer",
    "run_videorefer_q": ".run_videorefer",
    "run_videorefer_d": ".run_videorefer",
}

__all__ = [
    "BENCHMARKS",
    "EvalSummary",
    "GarBenchPlan",
    "ScoreReport",
    "Tally",
    "VideoReferPlan",
    "detect_benchmark",
    "format_score",
    "plan_gar_bench_vqa",
    "plan_videorefer",
    "run_gar_bench_plan",
    "run_gar_bench_vqa",
    "run_videorefer",
    "run_videorefer_d",
    "run_videorefer_plan",
    "run_videorefer_q",
    "score_predictions",
    "work_folder",
]

__getattr__ = lazy_attributes(__name__, _LAZY)
