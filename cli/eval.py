"""``garvideo eval ...``: reproduce the published numbers (GAR-Bench-VQA, VideoRefer-Bench-Q/-D) and score predictions.

Each run command first checks the user's inputs without a model (the data, the
subset, --out, --video-root: ``plan_*``), then loads the model and runs the plan,
so a mistake costs seconds, not the minutes GAR-8B takes to load.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from garvideo.defaults import EVAL_MAX_NEW_TOKENS, MAX_NEW_TOKENS_LIMIT, VIDEOREFER_FRAMES
from garvideo.eval import (  # garvideo.eval and its videorefer module import no torch
    BENCHMARKS,
    format_score,
    score_predictions,
)
from garvideo.eval.videorefer import BENCHMARK_D, BENCHMARK_Q

from .common import load_pipeline, model_options, option_group

_shared_options = option_group(
    click.option(
        "--max-new-tokens",
        default=EVAL_MAX_NEW_TOKENS,
        show_default=True,
        type=click.IntRange(min=1, max=MAX_NEW_TOKENS_LIMIT),
        help="Longest answer in tokens (the reference's 1024; decoding is greedy).",
    ),
    click.option(
        "--limit",
        type=click.IntRange(min=1),
        metavar="N",
        help="Run only the first N items (a quick check; the score then covers those only).",
    ),
    click.option("-q", "--quiet", is_flag=True, help="No progress bars or loading messages."),
    click.option("--json", "as_json", is_flag=True, help="Print the run's summary and score as one JSON object."),
)


def _report(summary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
        return
    click.echo(summary.describe())
    if summary.report is not None:
        benchmark = "gar-bench-vqa" if summary.benchmark == "GAR-Bench-VQA" else "videorefer-q"
        click.echo(format_score(benchmark, summary.report))


@click.group("eval")
def eval_group() -> None:
    """Reproduce GAR's published benchmark numbers and score prediction files.

    \b
    gar-bench-vqa  GAR-Bench-VQA through GAR's image API, the reference's prompt
    videorefer-q   VideoRefer-Bench-Q through the pipeline (scored here)
    videorefer-d   VideoRefer-Bench-D descriptions (judged by an external LLM)
    score          per-type and overall accuracy of a prediction file

    Runs are resumable: per-item results are kept in PREDICTIONS.work/ beside
    the predictions file, and a re-run with the same --out answers only the
    items not done yet. Items that cannot be run (missing image or video,
    malformed mask, a region without a mask) are recorded and count as wrong.
    """


@eval_group.command("gar-bench-vqa")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Folder holding GAR-Bench-VQA.json and images/.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PREDICTIONS.json",
    help="Predictions file to write (the reference's format: the items with a model_output).",
)
@model_options(sam2=False)
@click.option(
    "--mode",
    type=click.Choice(["default", "reference"]),
    default="default",
    show_default=True,
    help="default: correct (each region replayed from its own box; items naming more than five regions "
    "refused and counted wrong). reference: as the reference ran, to reproduce its published figures "
    "(every region replayed from the last mask's box; extra regions listed but neither marked nor replayed).",
)
@click.option(
    "--subset",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Run only the items this file names, one per line: image paths as in the items "
    "(images/vqa_2.png, e.g. subset_with_images.txt) or item indices.",
)
@click.option(
    "--box-mode",
    type=click.Choice(["reference", "aligned"]),
    default="reference",
    show_default=True,
    help="GAR's RoI box: as the released weights were trained (reference) or geometrically correct.",
)
@_shared_options
def gar_bench_vqa_command(
    data, out, model, device, dtype, mode, subset, box_mode, max_new_tokens, limit, quiet, as_json
) -> None:
    """Answer GAR-Bench-VQA with GAR and print the score the reference's way.

    Every item (an image, one mask per <PromptK>, a question with lettered
    choices) gets the reference's prompt (the object list, the question,
    'Options:', one choice per line, 'Answer with the correct option's letter
    directly.'), greedy decoding and the reference's text decoding; the
    answer is right when it equals the letter (case-insensitive). The
    reference ran in bfloat16 on CUDA, garvideo's default there.
    """
    from garvideo.eval import plan_gar_bench_vqa, run_gar_bench_plan
    from garvideo.model import GenerationSettings

    plan = plan_gar_bench_vqa(data, out, mode=mode, subset=subset, limit=limit)  # user mistakes before the model
    pipeline = load_pipeline(model, None, device, dtype, quiet, progress=False, box_mode=box_mode, long_running=True)
    summary = run_gar_bench_plan(
        plan, pipeline.gar, generation=GenerationSettings(max_new_tokens=max_new_tokens), progress=not quiet
    )
    _report(summary, as_json)


_videorefer_options = option_group(
    model_options(),
    click.option(
        "--track",
        is_flag=True,
        help="Track each object with SAM2 (--sam2) from its mask on the item's frame_idx instead of "
        "using the benchmark's masks.",
    ),
    click.option(
        "--frames",
        default=VIDEOREFER_FRAMES,
        show_default=True,
        type=click.IntRange(min=1),
        help="Frames GAR sees per item, spread over those where the objects are visible.",
    ),
    click.option(
        "--single-frame",
        is_flag=True,
        help="Use only each object's mask on frame_idx (without --track GAR sees just that frame).",
    ),
    click.option(
        "--fps",
        type=click.FloatRange(min=0, min_open=True),
        help="Frame rate given to frame folders, which carry none (default 30).",
    ),
    click.option(
        "--video-root",
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="Where the items' videos are, if not in --data.",
    ),
)


def _videorefer_command(spec, name: str, summary: str, records: str):
    """The ``eval`` command running VideoRefer-Bench ``spec``: -Q and -D differ only in it (and its texts)."""
    others = [f"{folder}/" for folder in spec.video_folders if folder != "."]
    elsewhere = f" (there or in {', '.join(others)})" if others else ""

    @eval_group.command(name, help=summary)
    @click.option(
        "--data",
        required=True,
        type=click.Path(path_type=Path),
        metavar="DIR",
        help=f"Folder holding {spec.annotation_file} and the videos or frame folders it names{elsewhere}.",
    )
    @click.option(
        "--out",
        required=True,
        type=click.Path(path_type=Path),
        metavar="PREDICTIONS.jsonl",
        help=f"Predictions to write: JSON lines {records}.",
    )
    @_videorefer_options
    @_shared_options
    def command(data, out, model, sam2, device, dtype, max_new_tokens, quiet, as_json, **choices):
        """``choices``: --track, --frames, --single-frame, --fps, --video-root and --limit, as plan_videorefer's."""
        from garvideo.eval import plan_videorefer, run_videorefer_plan
        from garvideo.model import GenerationSettings

        plan = plan_videorefer(spec, data, out, **choices)  # user mistakes before the models are loaded
        # one progress bar over the items: the pipeline's own bars (tracking) would repeat per item
        pipeline = load_pipeline(
            model, sam2 if choices["track"] else None, device, dtype, quiet, progress=False, long_running=True
        )
        generation = GenerationSettings(max_new_tokens=max_new_tokens)
        _report(run_videorefer_plan(plan, pipeline, generation=generation, progress=not quiet), as_json)

    return command


videorefer_q_command = _videorefer_command(
    BENCHMARK_Q,
    "videorefer-q",
    """Answer VideoRefer-Bench-Q through the pipeline and score it per question type.

    Each question's <objectN><region> markers become named regions, its
    options '(A) text' the pipeline's options; by default the benchmark's own
    masks are the tracks (no SAM2), as the paper evaluated GAR zero-shot
    (its number is GAR-8B's: --model HaochenWang/GAR-8B).
    The answer letter is parsed the way the benchmark's scorer parses it.
    """,
    "{video, Answer, pred, type, ...} as the benchmark's scorer reads",
)
videorefer_d_command = _videorefer_command(
    BENCHMARK_D,
    "videorefer-d",
    """Describe every VideoRefer-Bench-D object, in the format its judge scripts read.

    Writes JSON lines with the video, the ground-truth caption and GAR's
    description (pred). Scoring them needs an external LLM judge (GPT-4o,
    VideoRefer's videorefer_bench_d scripts): that is out of garvideo's
    scope, so no score is printed.
    """,
    "{video, caption, pred, ...}",
)


@eval_group.command("score")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option(
    "--benchmark",
    type=click.Choice(["auto", *BENCHMARKS]),
    default="auto",
    show_default=True,
    help="Which benchmark's scorer to use (auto: from the file's fields).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"overall": {"correct", "total", "accuracy"}, "per_type": {TYPE: {...}}}.',
)
def score_command(predictions, benchmark, as_json) -> None:
    """Per-type and overall accuracy of a prediction file, printed as the benchmark's scorer prints it.

    GAR-Bench-VQA: exact, case-insensitive match of model_output and answer.
    VideoRefer-Bench-Q: the answer letter parsed as its eval script does
    ('(B)', else 'B)', else the first character once periods are removed).
    """
    benchmark, report = score_predictions(predictions, benchmark)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(format_score(benchmark, report))
