"""``garvideo describe`` and ``garvideo ask``: what regions do over time, and answers about them."""

from __future__ import annotations

import click

from .common import (
    REGION_HELP,
    check_outputs,
    clock,
    emit_json,
    generation_options,
    load_pipeline,
    model_options,
    parse_regions,
    quiet_option,
    range_options,
    region_options,
    reports_warnings,
    write_json,
)


def _tracks_option(func):
    return click.option(
        "--tracks",
        "tracks_file",
        metavar="FILE",
        type=click.Path(path_type=str),
        help="Use tracks from `garvideo track --out FILE` (or ground truth in that format) instead of tracking.",
    )(func)


def _outputs(func):
    for decorator in reversed(
        [
            click.option("--out", metavar="FILE", help="Write the result document (JSON; '-' = standard output)."),
            click.option("--json", "as_json", is_flag=True, help="Print the result document instead of text."),
            click.option("--save-tracks", metavar="FILE", help="Also write the tracks (masks per frame) as JSON."),
        ]
    ):
        func = decorator(func)
    return func


def _inputs(boxes, points, masks, tracks_file):
    """Prompts from the options, or tracks from a file (exactly one of them)."""
    prompts = parse_regions(boxes, points, masks)
    if tracks_file and prompts:
        raise click.UsageError("give regions (--box/--points/--mask) or --tracks, not both")
    if not tracks_file and not prompts:
        raise click.UsageError("mark at least one region with --box, --points or --mask (or give --tracks)")
    tracks = None
    if tracks_file:
        from garvideo.tracking import load_tracks

        tracks = load_tracks(tracks_file)
    return prompts, tracks


def _save_tracks(path, tracks, video_info):
    if path:
        from garvideo.tracking import save_tracks

        save_tracks(path, tracks, {"video": video_info.to_dict()})
        click.echo(f"wrote {path}", err=True)


@click.command("describe", epilog=REGION_HELP)
@click.argument("video", type=click.Path(exists=True, path_type=str))
@region_options
@_tracks_option
@range_options
@click.option(
    "--window",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Timeline window length (default: adaptive, at most 8 windows).",
)
@click.option(
    "--frames-per-window",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Frames shown to GAR for each window.",
)
@generation_options
@model_options()
@_outputs
@click.option("--srt", metavar="FILE", help="Write the timeline as SubRip subtitles.")
@click.option("--vtt", metavar="FILE", help="Write the timeline as WebVTT subtitles.")
@click.option(
    "--overlay",
    metavar="FILE.mp4",
    help="Write the video with each region's mask, box, name and the current description drawn on it.",
)
@quiet_option
@reports_warnings
def describe_command(
    video,
    boxes,
    points,
    masks,
    tracks_file,
    start,
    end,
    stride,
    window,
    frames_per_window,
    frames,
    tiling,
    max_new_tokens,
    gar_model,
    sam2_model,
    device,
    dtype,
    out,
    as_json,
    save_tracks,
    srt,
    vtt,
    overlay,
    quiet,
):
    """Describe what each region is and does in VIDEO: overall and window by window.

    The regions are tracked through the video (both ways from where they are
    marked), then GAR describes each from frames where it is visible: once for
    the whole span and once per timeline window. Windows where a region is not
    seen are reported as not visible.
    """
    from garvideo.files import atomic_write_text
    from garvideo.model import GenerationSettings
    from garvideo.outputs.document import result_document, timeline_cues
    from garvideo.outputs.subtitles import to_srt, to_vtt

    prompts, tracks = _inputs(boxes, points, masks, tracks_file)
    check_outputs(result=out, tracks=save_tracks, subtitles=srt, WebVTT_subtitles=vtt)
    if overlay:
        from garvideo.outputs.overlay import check_overlay_target

        check_overlay_target(overlay, video)
    pipeline = load_pipeline(gar_model, None if tracks else sam2_model, device, dtype, quiet)
    if overlay:  # one reader for describing and drawing: opening an hour's video reads all its packets (seconds)
        from garvideo.video import open_video

        video = open_video(video)
        click.get_current_context().call_on_close(video.close)
    result = pipeline.describe(
        video,
        prompts or None,
        tracks=tracks,
        start=start,
        end=end,
        window=window,
        frames=frames,
        frames_per_window=frames_per_window,
        stride=stride,
        tiling=tiling,
        settings=GenerationSettings(max_new_tokens=max_new_tokens),
    )
    document = result_document("describe", result.video, result.tracks, prompts, result)
    if out:
        write_json(out, document)
    _save_tracks(save_tracks, result.tracks, result.video)
    cues = timeline_cues(result)
    for path, render in ((srt, to_srt), (vtt, to_vtt)):
        if path:
            atomic_write_text(path, render(cues))
            click.echo(f"wrote {path}", err=True)
    if overlay:
        from garvideo.outputs.overlay import render_overlay

        render_overlay(video, overlay, result.tracks, cues, progress=not quiet)
        click.echo(f"wrote {overlay}", err=True)
    if as_json:
        emit_json(document)
    elif out != "-":
        for timeline in result.regions:
            first, last = timeline.visible_span
            click.echo(f"{timeline.name} (seen {clock(first)} to {clock(last)}): {timeline.description}")
            for window in timeline.windows:
                text = window.description if window.visible else "(not visible)"
                click.echo(f"  [{clock(window.start)} - {clock(window.end)}] {text}")


@click.command("ask", epilog=REGION_HELP)
@click.argument("video", type=click.Path(exists=True, path_type=str))
@click.argument("question")
@region_options
@_tracks_option
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="TEXT",
    help="A choice of a multiple-choice question (repeat: the first is A, the next B, ...).",
)
@range_options
@generation_options
@model_options()
@_outputs
@quiet_option
@reports_warnings
def ask_command(
    video,
    question,
    boxes,
    points,
    masks,
    tracks_file,
    options,
    start,
    end,
    stride,
    frames,
    tiling,
    max_new_tokens,
    gar_model,
    sam2_model,
    device,
    dtype,
    out,
    as_json,
    save_tracks,
    quiet,
):
    """Answer QUESTION about regions of VIDEO; the question names them as <NAME>.

    \b
    Example:
      garvideo ask clip.mp4 "What is <dog> doing with <ball>?" \\
          --box dog=10,20,200,220@0 --box ball=300,200,340,240@2.5s

    With --option choices the question is multiple choice and the answer's
    letter is printed with the chosen text. --start/--end restrict the frames
    the model sees to that span.
    """
    from garvideo.model import GenerationSettings
    from garvideo.outputs.document import result_document

    prompts, tracks = _inputs(boxes, points, masks, tracks_file)
    if len(options) == 1:
        raise click.UsageError("a multiple-choice question needs at least two --option choices")
    check_outputs(result=out, tracks=save_tracks)
    pipeline = load_pipeline(gar_model, None if tracks else sam2_model, device, dtype, quiet)
    time_range = (start, end) if start is not None or end is not None else None
    answer = pipeline.ask(
        video,
        prompts or None,
        question,
        options=list(options) or None,
        time_range=time_range,
        tracks=tracks,
        frames=frames,
        stride=stride,
        tiling=tiling,
        settings=GenerationSettings(max_new_tokens=max_new_tokens),
    )
    document = result_document("ask", answer.video, answer.tracks, prompts, None, [answer])
    if out:
        write_json(out, document)
    _save_tracks(save_tracks, answer.tracks, answer.video)
    if as_json:
        emit_json(document)
    elif out != "-":
        if options:
            if answer.letter is not None:
                click.echo(f"{answer.letter}. {answer.choice}")
            else:
                click.echo(f"(no option letter recognised) {answer.text}")
        else:
            click.echo(answer.text)
