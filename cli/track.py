"""``garvideo track``: follow regions through a video with SAM2 and write the tracks as JSON."""

from __future__ import annotations

import json

import click

from .common import (
    REGION_HELP,
    Outputs,
    check_outputs,
    input_files,
    load_pipeline,
    model_options,
    open_video_first,
    parse_regions,
    quiet_option,
    range_options,
    region_options,
    report_found,
    reports_warnings,
    text_options,
    text_search,
)


@click.command("track", epilog=REGION_HELP)
@click.argument("video", type=click.Path(exists=True, path_type=str))
@region_options
@text_options
@range_options
@model_options(gar=False)
@click.option(
    "--out", "out", required=True, metavar="FILE", help="Where to write the tracks (JSON; '-' for standard output)."
)
@quiet_option
@reports_warnings
def track_command(
    video,
    boxes,
    points,
    masks,
    texts,
    detector,
    box_threshold,
    text_threshold,
    max_instances,
    search_every,
    start,
    end,
    stride,
    sam2,
    device,
    dtype,
    out,
    quiet,
):
    """Track regions through VIDEO, forward and backward from where they are marked.

    Writes one JSON document (format "garvideo.tracks", version 1): the video's
    facts, the prompts, provenance, and per object and tracked frame its mask
    (COCO compressed RLE, readable by pycocotools), tight box (x_min, y_min,
    x_max, y_max, max inclusive), score and whether it is visible.
    """
    prompts = parse_regions(boxes, points, masks, texts)
    if not prompts:
        raise click.UsageError("mark at least one region with --box, --points, --mask or --text")
    search = text_search(box_threshold, text_threshold, max_instances, search_every, prompts)
    check_outputs({"--out": ("tracks", out)}, input_files(video, masks=masks))
    reader = open_video_first(video, prompts, start=start, end=end, stride=stride)
    from garvideo.outputs import save_tracks_file, track_sentence, tracks_document

    pipeline = load_pipeline(None, sam2, device, dtype, quiet, detector=detector if texts else None)
    result = pipeline.track(
        reader,
        prompts,
        start=start,
        end=end,
        stride=stride,
        search=search,
    )
    report_found(result.found, prompts, max_instances)
    outputs = Outputs()
    if out == "-":
        click.echo(json.dumps(tracks_document(result, prompts)))
    else:
        outputs.write(out, lambda target: save_tracks_file(target, result, prompts), "tracks")  # streamed
    for track in result.tracks:
        click.echo(f"{track.name}: {track_sentence(track)}", err=out == "-")
    outputs.finish()
