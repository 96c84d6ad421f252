"""``garvideo batch``: describe or question every video listed in a regions file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from garvideo import defaults

from .common import (
    ADAPTER_KEY,
    COMPILE_KEY,
    THREADS_KEY,
    check_outputs,
    check_sam2_name,
    generation_options,
    load_pipeline,
    model_options,
    option_group,
    quiet_option,
    range_options,
    reports_warnings,
    text_options,
    text_search,
    timeline_options,
)

MANIFEST_HELP = """\b
REGIONS.jsonl has one JSON object per line:
  {"video": "clips/a.mp4",
   "regions": [{"name": "dog", "when": {"frame": 12}, "box": [x1, y1, x2, y2]},
               {"name": "ball", "when": {"time": 4.5}, "points": [[x, y]], "labels": [1]},
               {"name": "cat", "when": {"frame": 0}, "mask": "masks/cat.png"},
               {"name": "car", "when": null, "text": "a red car"}],  (null: search)
   "question": "What is <dog> doing with <ball>?",     (optional)
   "options": ["playing", "sleeping"]}                  (optional)
A region is what result files list under regions[].prompts (copy them in as
they are; a mask is COCO RLE there, or here also a mask image's path): see
"Regions as JSON" in README.md.
Paths are relative to FOLDER (or to the regions file). Lines with a question
are answered, the others described (--describe always: both). Each line gives
OUT/<video>-<hash>.json; a re-run skips finished lines. Exit code 0 when every
line succeeded, 1 when some failed (see OUT/failures.jsonl), 2 for a usage error."""


def ray_cluster_options(purpose: str, workers: str, gpus: str = "") -> Callable:
    """--ray [ADDRESS], --workers, --cpus-per-worker and --gpus-per-worker; ``purpose`` says what the workers do
    (help of --ray), ``workers`` their default number, ``gpus`` more on --gpus-per-worker."""
    return option_group(
        click.option(
            "--ray",
            "ray_address",
            is_flag=False,
            flag_value="local",
            metavar="[ADDRESS]",
            help=f"{purpose}: no ADDRESS starts a local Ray, 'auto' joins the cluster `ray start` set up here, else a"
            " Ray address. Needs garvideo[ray].",
        ),
        click.option("--workers", type=click.IntRange(min=1), help=f"With --ray: {workers}."),
        click.option("--cpus-per-worker", type=click.FloatRange(min=0, min_open=True), help="With --ray (default 1)."),
        click.option(
            "--gpus-per-worker",
            type=click.FloatRange(min=0),
            help=f"With --ray (default: 1 on a cluster with GPUs, else 0{gpus}).",
        ),
    )


ray_options = ray_cluster_options(
    "Share the lines among the workers of a Ray cluster",
    "Ray workers, each with its own models (default: the cluster's GPUs, or CPUs / --cpus-per-worker)",
    "; fractions share a GPU",
)


def ray_settings(address, workers, cpus_per_worker, gpus_per_worker, shard):
    """The Ray options of a --ray run, or None for the one-machine batch (checked before anything loads)."""
    from garvideo.errors import InvalidInputError

    if address is None:
        given = [
            name
            for name, value in (
                ("--workers", workers),
                ("--cpus-per-worker", cpus_per_worker),
                ("--gpus-per-worker", gpus_per_worker),
            )
            if value is not None
        ]
        if given:
            raise InvalidInputError(f"{', '.join(given)} only apply with --ray")
        return None
    if shard:
        raise InvalidInputError("--shard and --ray do not mix: Ray already shares the lines among its workers")
    from garvideo.batch.ray_runner import RayOptions, import_ray

    import_ray()  # says how to install Ray when it is missing
    return RayOptions(
        address=None if address == "local" else address,
        workers=workers,
        cpus_per_worker=cpus_per_worker or 1.0,
        gpus_per_worker=gpus_per_worker,
    )


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
@range_options(scope=" in every video")
@timeline_options
@generation_options
@click.option(
    "--describe",
    "describe_mode",
    type=click.Choice(["auto", "always"]),
    default=defaults.BATCH_DESCRIBE,
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
@text_options
@ray_options
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
    detector,
    box_threshold,
    text_threshold,
    max_instances,
    search_every,
    ray_address,
    workers,
    cpus_per_worker,
    gpus_per_worker,
    model,
    sam2,
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
    from garvideo.batch import BatchOptions, parse_shard, run_batch, shard_from_environment
    from garvideo.batch.jobs import check_run_settings
    from garvideo.batch.ray_runner import PipelineSpec
    from garvideo.batch.runner import batch_settings, read_and_check_manifest
    from garvideo.timecode import parse_seconds

    # Usage errors (a manifest without a line that can run, an unwritable output folder or one holding results of
    # other settings, an unknown SAM2 alias, a bad shard) come before loading models or starting Ray.
    read_and_check_manifest(Path(folder), Path(regions_file), Path(out_dir))
    check_outputs({"--out": ("results folder", str(Path(out_dir) / "summary.json"))}, {"--regions": regions_file})
    check_sam2_name(sam2)
    ray = ray_settings(ray_address, workers, cpus_per_worker, gpus_per_worker, shard)
    part = parse_shard(shard) if shard else (None if ray else shard_from_environment()) or (0, 1)
    options = BatchOptions(
        frames=frames,
        frames_per_window=frames_per_window,
        window=window,
        start=parse_seconds(start) if start else None,
        end=parse_seconds(end) if end else None,
        stride=stride,
        tiling=tiling,
        max_new_tokens=max_new_tokens,
        search=text_search(box_threshold, text_threshold, max_instances, search_every),
        describe=describe_mode,
        srt=srt,
    )
    meta = click.get_current_context().meta
    models = PipelineSpec(
        model, sam2, device, dtype, detector, meta.get(COMPILE_KEY), meta.get(THREADS_KEY), meta.get(ADAPTER_KEY)
    )
    check_run_settings(Path(out_dir), batch_settings(options, models.models), record=False)
    if ray:
        from garvideo.batch.ray_runner import run_batch_on_ray

        summary = run_batch_on_ray(models, folder, regions_file, out_dir, options, ray, progress=not quiet)
    else:
        pipeline = load_pipeline(model, sam2, device, dtype, quiet, detector=detector, long_running=True)
        summary = run_batch(pipeline, folder, regions_file, out_dir, options, shard=part, progress=not quiet)
    _report(summary, part, out_dir)


def _report(summary, part: tuple[int, int], out_dir: str) -> None:
    """What the batch did, on standard output; failures and files saved elsewhere on stderr (exit 1 for either)."""
    shard_note = f" (shard {part[0]} of {part[1]})" if part[1] > 1 else ""
    elsewhere = f"{summary.done_elsewhere} done by another run, " if summary.done_elsewhere else ""
    click.echo(
        f"{summary.total} items{shard_note}: {summary.succeeded} done now, {summary.done_before} already done, "
        f"{elsewhere}{len(summary.failed)} failed ({summary.seconds:.1f} s)"
    )
    for failure in summary.failed:
        click.echo(f"  failed {failure.key}: {failure.reason}", err=True)
    for problem in summary.problems:
        click.echo(f"garvideo: warning: {problem}", err=True)
    if summary.failed:
        click.echo(f"see {out_dir}/failures{'' if part[1] == 1 else f'.shard-{part[0]}-of-{part[1]}'}.jsonl", err=True)
    if not summary.ok:
        raise SystemExit(1)
