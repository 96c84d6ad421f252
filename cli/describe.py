"""``garvideo describe`` and ``garvideo ask``: what regions do over time, and answers about them."""

from __future__ import annotations

import click

from .common import (
    REGION_HELP,
    Outputs,
    check_outputs,
    clock,
    document_prompts,
    emit_json,
    generation_options,
    load_pipeline,
    model_options,
    open_video_first,
    option_group,
    parse_regions,
    quiet_option,
    range_options,
    region_options,
    report_found,
    reports_warnings,
    text_options,
    text_search,
    timeline_options,
)


def _tracks_option(func):
    return click.option(
        "--tracks",
        "tracks_file",
        metavar="FILE",
        type=click.Path(path_type=str),
        help="Use tracks from `garvideo track --out FILE` (or ground truth in that format) instead of tracking.",
    )(func)


_outputs = option_group(
    click.option("--out", metavar="FILE", help="Write the result document (JSON; '-' = standard output)."),
    click.option("--json", "as_json", is_flag=True, help="Print the result document instead of text."),
    click.option("--save-tracks", metavar="FILE", help="Also write the tracks (masks per frame) as JSON."),
)


def _inputs(boxes, points, masks, texts, tracks_file):
    """Prompts from the options, or tracks from a file (exactly one of them)."""
    prompts = parse_regions(boxes, points, masks, texts)
    if tracks_file and prompts:
        raise click.UsageError("give regions (--box/--points/--mask/--text) or --tracks, not both")
    if not tracks_file and not prompts:
        raise click.UsageError("mark at least one region with --box, --points, --mask or --text (or give --tracks)")
    tracks = None
    if tracks_file:
        from garvideo.tracking import load_tracks

        tracks = load_tracks(tracks_file)
    return prompts, tracks


def _save_tracks(outputs, path, tracks, video_info):
    if path:
        from garvideo.tracking import save_tracks

        outputs.write(path, lambda target: save_tracks(target, tracks, {"video": video_info.to_dict()}), "tracks")


def _check_question(question, options, prompts, tracks, max_instances):
    """The regions the question and its options name must be given (checked again by the pipeline, but only
    after the models load); a --text region may become NAME, NAME#2, ... NAME#K (--max-instances K)."""
    from garvideo.names import resolve_references
    from garvideo.pipeline.grounding import instance_names

    if tracks is not None:
        names = [track.name for track in tracks]
    else:
        names = []
        for prompt in prompts:
            for name in instance_names(prompt.name, max_instances) if prompt.kind == "text" else [prompt.name]:
                if name not in names:
                    names.append(name)
    resolve_references(" ".join([question, *options]), names)


def _check_window(reader, window, stride):
    """A window shorter than a (tracked) frame interval is refused before the models load (the pipeline checks again)."""
    from garvideo.video import check_window_length

    info = reader.info
    check_window_length(window, info.duration / max(1, info.num_frames), stride=stride, source=reader.path)


@click.command("describe", epilog=REGION_HELP)
@click.argument("video", type=click.Path(exists=True, path_type=str))
@region_options
@text_options
@_tracks_option
@range_options
@timeline_options
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
    texts,
    detector,
    box_threshold,
    text_threshold,
    max_instances,
    search_every,
    tracks_file,
    start,
    end,
    stride,
    window,
    frames_per_window,
    frames,
    tiling,
    max_new_tokens,
    model,
    sam2,
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
    # Mistakes first, before anything imports torch or loads a model.
    prompts, tracks = _inputs(boxes, points, masks, texts, tracks_file)
    search = text_search(box_threshold, text_threshold, max_instances, search_every)  # before the models load
    if overlay:
        from garvideo.outputs.overlay import check_overlay_target

        check_overlay_target(overlay, video)
    check_outputs(result=out, tracks=save_tracks, subtitles=srt, WebVTT_subtitles=vtt, overlay=overlay)
    # One reader for the checks, describing and drawing: opening an hour's video reads all its packets (seconds).
    reader = open_video_first(video)
    if window is not None:
        _check_window(reader, window, stride)
    from garvideo.outputs.document import result_document, timeline_cues
    from garvideo.outputs.subtitles import to_srt, to_vtt

    pipeline = load_pipeline(
        model, None if tracks else sam2, device, dtype, quiet, detector=detector if texts else None
    )
    result = pipeline.describe(
        reader,
        prompts or None,
        tracks=tracks,
        start=start,
        end=end,
        stride=stride,
        window=window,
        frames_per_window=frames_per_window,
        frames=frames,
        tiling=tiling,
        max_new_tokens=max_new_tokens,
        search=search,
    )
    report_found(result.found, prompts, max_instances)
    document = result_document("describe", result.video, result.tracks, document_prompts(prompts, result.found), result)
    outputs = Outputs()
    if out:
        outputs.json(out, document)
    _save_tracks(outputs, save_tracks, result.tracks, result.video)
    cues = timeline_cues(result)
    for path, render, what in ((srt, to_srt, "subtitles"), (vtt, to_vtt, "WebVTT subtitles")):
        if path:
            outputs.text(path, render(cues), what)
    if overlay:
        from garvideo.outputs.overlay import render_overlay

        outputs.write(
            overlay, lambda target: render_overlay(reader, target, result.tracks, cues, progress=not quiet), "overlay"
        )
    if as_json:
        emit_json(document)
    elif out != "-":
        for timeline in result.regions:
            first, last = timeline.visible_span
            click.echo(f"{timeline.name} (seen {clock(first)} to {clock(last)}): {timeline.description}")
            for window in timeline.windows:
                text = (
                    window.description
                    if window.visible
                    else "(no tracked frame in this window)"
                    if window.visible is None
                    else "(not visible)"
                )
                click.echo(f"  [{clock(window.start)} - {clock(window.end)}] {text}")
    outputs.finish()


@click.command("ask", epilog=REGION_HELP)
@click.argument("video", type=click.Path(exists=True, path_type=str))
@click.argument("question")
@region_options
@text_options
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
    texts,
    detector,
    box_threshold,
    text_threshold,
    max_instances,
    search_every,
    tracks_file,
    options,
    start,
    end,
    stride,
    frames,
    tiling,
    max_new_tokens,
    model,
    sam2,
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
      garvideo ask clip.mp4 "Which is faster, <car> or <car#2>?" \\
          --text car="a red car" --max-instances 2

    With --option choices the question is multiple choice and the answer's
    letter is printed with the chosen text. --start/--end restrict the frames
    the model sees to that span.
    """
    prompts, tracks = _inputs(boxes, points, masks, texts, tracks_file)
    search = text_search(box_threshold, text_threshold, max_instances, search_every)  # before the models load
    if len(options) == 1:
        raise click.UsageError("a multiple-choice question needs at least two --option choices")
    _check_question(question, options, prompts, tracks, max_instances)
    check_outputs(result=out, tracks=save_tracks)
    reader = open_video_first(video)
    from garvideo.outputs.document import result_document

    pipeline = load_pipeline(
        model, None if tracks else sam2, device, dtype, quiet, detector=detector if texts else None
    )
    answer = pipeline.ask(
        reader,
        question,
        prompts or None,
        tracks=tracks,
        options=list(options) or None,
        start=start,
        end=end,
        stride=stride,
        frames=frames,
        tiling=tiling,
        max_new_tokens=max_new_tokens,
        search=search,
    )
    report_found(answer.found, prompts, max_instances)
    document = result_document(
        "ask", answer.video, answer.tracks, document_prompts(prompts, answer.found), None, [answer]
    )
    outputs = Outputs()
    if out:
        outputs.json(out, document)
    _save_tracks(outputs, save_tracks, answer.tracks, answer.video)
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
    outputs.finish()
