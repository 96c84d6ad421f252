"""``garvideo batch``: describe or question every video listed in a regions file."""

from __future__ import annotations

from pathlib import Path

import click

from .common import PositiveSeconds, check_outputs, load_pipeline, model_options, quiet_option, reports_warnings

MANIFEST_HELP = """\b
REGIONS.jsonl has one JSON object per line:
  {"video": "clips/a.mp4",
   "regions": [{"name": "dog", "box": [x1, y1, x2, y2], "frame": 12},
               {"name": "ball", "points": [[x, y]], "labels": [1], "time": 4.5},
               {"name": "cat", "mask": "masks/cat.png", "frame": 0}],
   "question": "What is <dog> doing with <ball>?",     (optional)
   "options": ["playing", "sleeping"]}                  (optional)
Paths are relative to FOLDER (or to the regions file). Lines with a question
are answered, the others described (--describe always: both). Each line gives
OUT/<video>-<hash>.json; a re-run skips finished lines. Exit code 0 when every
line succeeded, 1 when some failed (see OUT/failures.jsonl), 2 for a usage error."""


@click.command("batch", epilog=MANIFEST_HELP)
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "--regions",
    "regions_file",
    required=True,
    type=click.Path(path_type=str),
    metavar="REGIONS.jsonl",
    help="The manifest: one video with its regions (and optional question) per line.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    metavar="DIR",
    help="Folder for the result files, failures.jsonl and summary.json.",
)
@click.option(
    "--frames",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Frames shown to GAR for an overall description or an answer.",
)
@click.option("--frames-per-window", default=4, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--window",
    type=PositiveSeconds(),
    metavar="SECONDS",
    help="Timeline window length (default: adaptive).",
)
@click.option("--start", metavar="TIME", help="Only look from this time on, in every video.")
@click.option("--end", metavar="TIME", help="Only look until this time, in every video.")
@click.option("--stride", default=1, show_default=True, type=click.IntRange(min=1), help="Track every N-th frame.")
@click.option("--tiling", type=click.Choice(["vanilla", "thumb+tile"]), default="vanilla", show_default=True)
@click.option("--max-new-tokens", default=512, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--describe",
    "describe_mode",
    type=click.Choice(["auto", "always"]),
    default="auto",
    show_default=True,
    help="auto: describe lines without a question; always: every line.",
)
@click.option("--srt", is_flag=True, help="Also write each description's timeline as OUT/<key>.srt.")
@click.option(
    "--shard",
    metavar="K/N",
    help="Run the K-th of N parts (0-based), e.g. one per job of a cluster array. Default: the "
    "SLURM array task or torchrun rank when run under one, else everything.",
)
@model_options()
@quiet_option
@reports_warnings
def batch_command(
    folder,
    regions_file,
    out_dir,
    frames,
    frames_per_window,
    window,
    start,
    end,
    stride,
    tiling,
    max_new_tokens,
    describe_mode,
    srt,
    shard,
    gar_model,
    sam2_model,
    device,
    dtype,
    quiet,
):
    """Run describe (or ask) over every line of REGIONS.jsonl, resumably.

    The models are loaded once. Every result is written atomically, so a
    crash or kill leaves no partial file and a re-run continues where it
    stopped. A failing line (missing video, bad region, corrupt file) is
    recorded with its reason and the batch goes on.
    """
    from garvideo.batch import BatchOptions, parse_shard, read_manifest, run_batch, shard_from_environment
    from garvideo.model import GenerationSettings
    from garvideo.timecode import parse_seconds

    # Usage errors (a missing or empty manifest, an unwritable output folder) come before loading models.
    read_manifest(regions_file)
    check_outputs(results_folder=str(Path(out_dir) / "summary.json"))
    part = parse_shard(shard) if shard else (shard_from_environment() or (0, 1))
    options = BatchOptions(
        frames=frames,
        frames_per_window=frames_per_window,
        window=window,
        start=parse_seconds(start) if start else None,
        end=parse_seconds(end) if end else None,
        stride=stride,
        tiling=tiling,
        settings=GenerationSettings(max_new_tokens=max_new_tokens),
        describe=describe_mode,
        srt=srt,
    )
    pipeline = load_pipeline(gar_model, sam2_model, device, dtype, quiet)
    summary = run_batch(pipeline, folder, regions_file, out_dir, options, shard=part, progress=not quiet)
    shard_note = f" (shard {part[0]} of {part[1]})" if part[1] > 1 else ""
    elsewhere = f"{summary.done_elsewhere} done by another run, " if summary.done_elsewhere else ""
    click.echo(
        f"{summary.total} items{shard_note}: {summary.succeeded} done now, {summary.done_before} already done, "
        f"{elsewhere}{len(summary.failed)} failed ({summary.seconds:.1f} s)"
    )
    for failure in summary.failed:
        click.echo(f"  failed {failure.key}: {failure.reason}", err=True)
    if summary.failed:
        click.echo(f"see {out_dir}/failures{'' if part[1] == 1 else f'.shard-{part[0]}-of-{part[1]}'}.jsonl", err=True)
        raise SystemExit(1)
