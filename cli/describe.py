"""``garvideo describe`` and ``garvideo ask``: what regions do over time, and answers about them."""

from __future__ import annotations

import click

from .common import (
    REGION_HELP,
    Outputs,
    check_outputs,
    clock,
    emit_json,
    generation_options,
    input_files,
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
    """Prompts from the options, or a tracks file read (exactly one of them)."""
    prompts = parse_regions(boxes, points, masks, texts)
    if tracks_file and prompts:
        raise click.UsageError("give regions (--box/--points/--mask/--text) or --tracks, not both")
    if not tracks_file and not prompts:
        raise click.UsageError("mark at least one region with --box, --points, --mask or --text (or give --tracks)")
    recorded = None
    if tracks_file:
        from garvideo.outputs import read_tracks_file

        recorded = read_tracks_file(tracks_file)
    return prompts, recorded


def _checked(video, regions, tracks_file, search, outputs, question=None, **checks):
    """Every mistake found before a model loads: the regions or tracks file (``regions``: the --box, --points,
    --mask and --text values), the text search (``search``: its four options), the question and its options
    (``(question, options)``), the outputs (see check_outputs) and, once the video is open, the regions against it
    (``checks``). Returns the prompts, the tracks file read (or None), the TextSearch and the open video."""
    prompts, recorded = _inputs(*regions, tracks_file)
    text = text_search(*search, prompts)
    if question is not None:
        _check_question(*question, prompts, recorded, max_instances=search[2])
    check_outputs(outputs, input_files(video, tracks_file, regions[2]))
    reader = open_video_first(video, prompts, recorded.tracks if recorded else None, **checks)
    return prompts, recorded, text, reader


def _save_tracks(outputs, path, run, prompts):
    if path:
        from garvideo.outputs import save_tracks_file

        outputs.write(path, lambda target: save_tracks_file(target, run, prompts), "tracks")


def _check_question(question, options, prompts, recorded, max_instances):
    """The question, its options and the regions they name, checked now (the pipeline checks again, but only
    after the models load); a --text region may become NAME, NAME#2, ... NAME#K (--max-instances K)."""
    from garvideo.names import check_question
    from garvideo.pipeline import region_names

    names = [track.name for track in recorded.tracks] if recorded else region_names(prompts, max_instances)
    check_question(question, list(options) or None, names)


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
    if overlay:
        from garvideo.outputs.overlay import check_overlay_target

        check_overlay_target(overlay, video)
    outputs = {
        "--out": ("result", out),
        "--save-tracks": ("tracks", save_tracks),
        "--srt": ("subtitles", srt),
        "--vtt": ("WebVTT subtitles", vtt),
        "--overlay": ("overlay", overlay),
    }
    prompts, recorded, search, reader = _checked(
        video, (boxes, points, masks, texts), tracks_file, (box_threshold, text_threshold, max_instances, search_every),
        outputs, start=start, end=end, stride=stride, window=window, describing=True,
    )  # fmt: skip
    tracks = recorded.tracks if recorded else None
    from garvideo.outputs import timeline_cues, to_srt, to_vtt

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
    outputs, document = _result_outputs("describe", result, prompts, recorded, out, save_tracks, description=result)
    cues = timeline_cues(result)
    for path, render, what in ((srt, to_srt, "subtitles"), (vtt, to_vtt, "WebVTT subtitles")):
        if path:
            outputs.text(path, render(cues), what)
    if overlay:
        from garvideo.outputs.overlay import render_overlay

        outputs.write(
            overlay, lambda target: render_overlay(reader, target, result.tracks, cues, progress=not quiet), "overlay"
        )
    _show(document, out, as_json, lambda: _print_timelines(result))
    outputs.finish()


def _result_outputs(command, run, prompts, recorded, out, save_tracks, description=None, answers=()):
    """The result document of a run and its Outputs, with --out and --save-tracks written: the marks listed are
    the regions given, or those the --tracks file records."""
    from garvideo.outputs import result_document, result_prompts

    marks = prompts or (recorded.prompts if recorded else ())
    listed = result_prompts(marks, run.found)
    document = result_document(command, run.video, run.tracks, listed, description, answers)
    outputs = Outputs()
    if out:
        outputs.json(out, document)  # '-' prints it
    _save_tracks(outputs, save_tracks, run, marks)
    return outputs, document


def _show(document, out, as_json, print_text) -> None:
    """Print the document (--json) or the text, unless --out - has printed the document already."""
    if out == "-":
        return
    if as_json:
        emit_json(document)
    else:
        print_text()


def _print_timelines(result) -> None:
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
    prompts, recorded, search, reader = _checked(
        video, (boxes, points, masks, texts), tracks_file, (box_threshold, text_threshold, max_instances, search_every),
        {"--out": ("result", out), "--save-tracks": ("tracks", save_tracks)}, (question, options),
        start=start, end=end, stride=stride,
    )  # fmt: skip
    tracks = recorded.tracks if recorded else None
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
    outputs, document = _result_outputs("ask", answer, prompts, recorded, out, save_tracks, answers=[answer])
    _show(document, out, as_json, lambda: click.echo(_answer_text(answer)))
    outputs.finish()


def _answer_text(answer) -> str:
    if answer.options is None:
        return answer.text
    if answer.letter is not None:
        return f"{answer.letter}. {answer.choice}"
    return f"(no option letter recognised) {answer.text}"
