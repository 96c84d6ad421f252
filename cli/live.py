"""``garvideo live``: track and describe regions of a live source as it comes."""

from __future__ import annotations

import os
import sys

import click

from garvideo import defaults

from .common import (
    PositiveSeconds,
    check_outputs,
    clock,
    detector_options,
    generation_options,
    input_files,
    load_pipeline,
    model_options,
    option_group,
    parse_regions,
    quiet_option,
    region_options,
    reports_warnings,
    text_search,
)

LIVE_HELP = """\b
Regions are marked on the first frame taken (@WHEN may be left out and is not
used): --box cup=120,80,260,240. A --text region is looked for on the first
frame and again every --search-every seconds: new instances become NAME#2, ...
(up to --max-instances at once); an instance lost and found again keeps its name.
While it runs, regions are added, corrected and removed, and questions asked,
with JSON lines on --control (a file or FIFO being appended to, or unix:PATH):
  {"name": "cup", "box": [120, 80, 260, 240]}      {"remove": "cup"}
  {"ask": "What is <cup> doing?", "last": 30}       {"stop": true}
Ctrl-C stops cleanly: the last window is described and every file completed."""

_source_options = option_group(
    click.option("--format", "input_format", metavar="NAME", help="FFmpeg demuxer (e.g. v4l2, avfoundation, mpegts)."),
    click.option(
        "--input-option",
        "input_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="An FFmpeg input option (e.g. rtsp_transport=tcp, fflags=nobuffer); repeat for several.",
    ),
    click.option(
        "--track-fps",
        type=PositiveSeconds(),
        default=defaults.LIVE_TRACK_FPS,
        metavar="FPS",
        help="Frames taken per second of stream time [default: as many as tracking keeps up with, newest first].",
    ),
    click.option(
        "--keep-all",
        is_flag=True,
        help="Never drop a frame: the reader waits for tracking (for pipes and files; a network source may lose data).",
    ),
    click.option(
        "--reconnect-s",
        type=PositiveSeconds(),
        default=defaults.LIVE_RECONNECT_S,
        show_default=True,
        help="Seconds before reconnecting a dropped source (doubling each try).",
    ),
    click.option(
        "--give-up-after-s",
        type=PositiveSeconds(),
        default=defaults.LIVE_GIVE_UP_AFTER_S,
        show_default=True,
        help="End the session after this many seconds without a frame.",
    ),
)

_text_options = option_group(
    detector_options,
    click.option(
        "--max-instances",
        default=defaults.LIVE_MAX_INSTANCES,
        show_default=True,
        type=click.IntRange(min=1),
        metavar="K",
        help="At most K instances of each --text phrase at once (NAME, NAME#2, ...).",
    ),
    click.option(
        "--search-every",
        default=defaults.LIVE_SEARCH_EVERY,
        show_default=True,
        type=PositiveSeconds(),
        metavar="SECONDS",
        help="Look for the --text phrases again every SECONDS (new instances, lost ones found again).",
    ),
    click.option(
        "--match-iou",
        default=defaults.MATCH_IOU,
        show_default=True,
        type=float,
        help="A detection overlapping an instance's box (or a lost one's last box) by this IoU is that instance.",
    ),
    click.option(
        "--lost-after-s",
        default=defaults.LIVE_LOST_AFTER_S,
        show_default=True,
        type=PositiveSeconds(),
        help="A region unseen this long is reported lost.",
    ),
)

_describe_options = option_group(
    click.option(
        "--window",
        type=PositiveSeconds(),
        default=defaults.LIVE_WINDOW,
        show_default=True,
        metavar="SECONDS",
        help="Describe each region every SECONDS of stream time (a window of its own).",
    ),
    click.option(
        "--frames-per-window",
        default=defaults.FRAMES_PER_WINDOW,
        show_default=True,
        type=click.IntRange(min=1),
        help="Frames shown to GAR for each window.",
    ),
    click.option("--no-describe", is_flag=True, help="Track only: no GAR (windows, questions) is loaded."),
)

_output_options = option_group(
    click.option("--events", metavar="FILE", help="Write every event as a JSON line to FILE (flushed line by line)."),
    click.option("--json", "as_json", is_flag=True, help="Print the events as JSON lines on standard output."),
    click.option(
        "--srt", metavar="FILE", help="Rolling subtitles of the descriptions (.vtt: WebVTT), rewritten atomically."
    ),
    click.option(
        "--record", metavar="DIR", help="Record the tracked frames with masks and descriptions drawn, as MP4 segments."
    ),
    click.option(
        "--segment-s",
        type=PositiveSeconds(),
        default=defaults.LIVE_SEGMENT_S,
        show_default=True,
        help="Length of each recorded segment.",
    ),
    click.option(
        "--report-every",
        type=PositiveSeconds(),
        default=defaults.LIVE_REPORT_EVERY,
        show_default=True,
        metavar="N",
        help="At most N frame events per second.",
    ),
    click.option("--control", metavar="FILE|unix:PATH", help="Read commands as JSON lines from FILE or a Unix socket."),
)


@click.command("live", epilog=LIVE_HELP)
@click.argument("source")
@region_options
@_text_options
@_source_options
@_describe_options
@generation_options
@model_options()
@_output_options
@quiet_option
@reports_warnings
def live_command(source, boxes, points, masks, texts, **options):
    """Track and describe regions of SOURCE as it comes: rtsp://, rtmp://, srt://, udp://, http(s)://
    (MPEG-TS, HLS), a device (/dev/video0, avfoundation:0), a file still being written, or '-' (standard input).

    Prints each window's description as it is made (and everything else as events with --json or --events);
    runs until the source ends, stays away longer than --give-up-after-s, or Ctrl-C.
    """
    o = click.get_current_context().params
    prompts = parse_regions(*(_on_first_frame(v) for v in (boxes, points, masks)), texts)
    input_options = _key_values(o["input_options"])
    text_search(o["box_threshold"], o["text_threshold"], o["max_instances"], o["search_every"])  # checked now
    if not 0 < o["match_iou"] <= 1:
        raise click.BadParameter("must be above 0 and at most 1", param_hint="--match-iou")
    files = {"--events": ("event log", o["events"]), "--srt": ("subtitles", o["srt"])}
    check_outputs(files, input_files(source if os.path.isfile(source) else None, masks=masks))
    outputs = _outputs(o)
    gar = None if o["no_describe"] else o["model"]
    pipeline = load_pipeline(
        gar,
        o["sam2"],
        o["device"],
        o["dtype"],
        o["quiet"],
        detector=o["detector"] if texts else None,
        long_running=True,
    )
    session = pipeline.live(
        source,
        prompts,
        window=o["window"],
        frames_per_window=o["frames_per_window"],
        frames=o["frames"],
        track_fps=o["track_fps"],
        report_every=o["report_every"],
        reconnect_s=o["reconnect_s"],
        give_up_after_s=o["give_up_after_s"],
        box_threshold=o["box_threshold"],
        text_threshold=o["text_threshold"],
        max_instances=o["max_instances"],
        search_every=o["search_every"],
        lost_after_s=o["lost_after_s"],
        match_iou=o["match_iou"],
        describe=not o["no_describe"],
        tiling=o["tiling"],
        max_new_tokens=o["max_new_tokens"],
        keep_all=o["keep_all"],
        input_format=o["input_format"],
        input_options=input_options,
        outputs=[*outputs, _Printer(o["quiet"], o["as_json"])],
    )
    _run(session, o["control"])


def _on_first_frame(values):
    """--box NAME=x1,y1,x2,y2 without @WHEN: on the first frame taken (frame 0 of the session)."""
    return tuple(value if "@" in value else value + "@0" for value in values)


def _key_values(pairs):
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--input-option {pair!r}: give KEY=VALUE, e.g. rtsp_transport=tcp")
        out[key.strip()] = value
    return out


def _outputs(o):
    from garvideo.live import EventLog, RollingSubtitles, SegmentRecorder

    outputs = []
    if o["events"]:
        outputs.append(EventLog(o["events"]))
    if o["as_json"]:
        outputs.append(EventLog(sys.stdout))
    if o["srt"]:
        outputs.append(RollingSubtitles(o["srt"]))
    if o["record"]:
        outputs.append(SegmentRecorder(o["record"], o["segment_s"]))
    return outputs


def _run(session, control):
    """Wait for the session to end; Ctrl-C (or SIGTERM) stops it cleanly."""
    import signal

    from garvideo.live.control import ControlChannel

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        channel = ControlChannel(session, control) if control else None
        try:
            while not session.wait(0.2):
                pass
        except KeyboardInterrupt:
            click.echo("stopping: tracking the frames taken, describing the last window ...", err=True)
        session.close()
        if channel is not None:
            channel.close()
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Printer:
    """What a person watching the terminal wants: descriptions and answers on standard output, what happens to
    the source and the regions on standard error (unless -q); with --json the events are the output."""

    def __init__(self, quiet: bool, as_json: bool) -> None:
        self.quiet, self.as_json = quiet, as_json

    def bind(self, emit) -> None:
        pass

    def on_frame(self, frame, regions) -> None:
        pass

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass

    def on_event(self, event) -> None:
        d = event.to_dict()
        kind = d["event"]
        if kind == "window" and d["text"] and not self.as_json:
            click.echo(f"{clock(d['start'])}-{clock(d['end'])} {d['region']}: {d['text']}")
        elif kind == "answer" and not self.as_json:
            click.echo(f"{d['question']} -> {d['text'] if d['error'] is None else d['error']}")
        elif not self.quiet:
            line = _status_line(d)
            if line:
                click.echo(line, err=True)


def _status_line(d) -> str | None:
    kind = d["event"]
    if kind == "started":
        s = d["source"]
        return f"live: {s['url']} ({s['kind']}, {s['codec']} {s['width']}x{s['height']}), regions: {', '.join(d['regions']) or 'none yet'}"
    if kind == "appeared":
        how = f"found {d['phrase']!r}" if d["how"] == "detected" else "marked"
        return f"{d['region']}: {how} at {clock(d['time'])}"
    if kind in ("lost", "found", "removed"):
        return f"{d['region']}: {kind} at {clock(d['time'])}" if d["time"] is not None else f"{d['region']}: {kind}"
    if kind == "gap":
        return (
            f"source resumed after {d['seconds']:.1f} s"
            if d["resumed"]
            else f"source dropped: {d['reason']}; reconnecting"
        )
    if kind == "error":
        return f"garvideo: warning: {d['message']}"
    if kind == "segment":
        return f"wrote {d['path']}"
    if kind == "stopped":
        return (
            f"stopped ({d['reason']}): {d['frames_tracked']} frames tracked, {d['frames_dropped']} dropped, "
            f"{d['windows_described']} windows described"
        )
    return None
