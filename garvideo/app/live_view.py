"""What the Live tab shows, as HTML and JSON: the live picture, the regions, the descriptions and answers as they
arrive, the log. Every string that came from a user, a stream or the model is escaped (``esc``).

The functions are pure (a stream's feed snapshot in, strings out), but :func:`draw`, which paints a frame.
"""

from __future__ import annotations

import time
from typing import Any

from ..live import LiveEvent
from ..timecode import format_clock
from .drawing import data_url, draw_frame
from .live import LiveStream
from .live_feed import FeedSnapshot, LatestFrame, Turn
from .session import Notice
from .view import esc, swatch

EMPTY_LIVE = (
    "<div class='gv-empty'>Open a stream (a URL such as rtsp://, udp://, http://, srt://, an HLS .m3u8, a device "
    "or a file under --root) to see it here, tracked as it comes.</div>"
)


def draw(frame: LatestFrame, names: tuple[str, ...]) -> str:
    """The frame with each region's mask in its colour (the session's masks, as tracked), as a data URL."""
    masks = {name: entry.mask() for name, entry in frame.regions.items() if entry.visible}
    return data_url(draw_frame(frame.image, frame.index, names, (), masks))


def picture(stream: LiveStream | None, snapshot: FeedSnapshot | None, url: str | None, tick: int = 0) -> str:
    """The live panel: the newest frame at the source's size (the page maps the mouse to its pixels, as on the
    Video tab), with what the page's script needs to ask for the next one (``data-seq``, ``data-state``)."""
    if stream is None or snapshot is None:
        return EMPTY_LIVE
    frame, started = snapshot.frame, snapshot.started
    state = stream.state
    size = f" data-w='{started.source['width']}' data-h='{started.source['height']}'" if started else ""
    seq = frame.seq if frame is not None else -1
    attributes = f"class='gv-stage'{size} data-seq='{seq}' data-state='{state}' data-tick='{tick}'"
    if frame is None or url is None:
        waiting = {"waiting": "waiting for the models (see the line below)", "running": "opening: the first frame…"}
        shown = waiting.get(state, "no frame was tracked")
        return f"<div {attributes}><div class='gv-empty'>{esc(shown)}</div></div>"
    return (
        f"<div {attributes} data-frame='{frame.index}' data-arrival='{frame.arrival:.3f}'>"
        f"<img class='gv-img' alt='live frame {frame.index}' "
        f"draggable='false' src='{url}'><div class='gv-band'></div></div>"
    )


def where(snapshot: FeedSnapshot | None) -> str:
    """Which frame the picture is: its stream time, and how long ago it was captured."""
    frame = snapshot.frame if snapshot is not None else None
    if frame is None:
        return ""
    ago = max(0.0, time.time() - frame.arrival)
    return (
        f"<div class='gv-where gv-live'>frame <b>{frame.index}</b> · stream time <b>{format_clock(frame.time)}</b> · "
        f"captured {ago:.1f} s ago</div>"
    )


def notice(stream: LiveStream | None, snapshot: FeedSnapshot | None) -> Notice | None:
    """The live session's status line."""
    if stream is None or snapshot is None:
        return None
    state = stream.state
    if state == "waiting":
        return Notice("busy", "waiting for the model jobs before it to finish (one model job runs at a time)")
    if state == "stopped":
        stopped = snapshot.stopped
        why = stream.failure or (stopped.reason if stopped is not None else "it could not open")
        counts = (
            f": {stopped.frames_tracked} frames tracked, {stopped.frames_dropped} dropped, "
            f"{stopped.windows_described} windows described"
            if stopped is not None
            else ""
        )
        failed = stream.failure is not None or why.startswith("failed")
        return Notice("error" if failed else "done", f"stopped ({why}){counts}")
    frames = snapshot.frame.seq + 1 if snapshot.frame is not None else 0
    doing = "stopping: describing the last window" if state == "stopping" else "live"
    return Notice("busy", f"{doing}: {stream.source.shown} · {frames} frames tracked")


def regions(snapshot: FeedSnapshot | None) -> str:
    if snapshot is None or not snapshot.regions:
        return "<div class='gv-none'>No region yet: drag a box or click on the live picture.</div>"
    names = list(snapshot.names)
    rows = []
    for row in snapshot.regions:
        how = {"box": "box", "points": "clicks", "text": "words", "detected": "found"}.get(row.how, row.how)
        since = "next frame" if row.since is None else format_clock(row.since)
        seen = "lost" if row.lost else ("tracked" if row.first_frame is not None else "waiting")
        rows.append(
            f"<tr data-name='{esc(row.name)}'><td>{swatch(row.name, names)}{esc(row.name)}</td><td>{how}</td>"
            f"<td>{esc(row.mark)}</td><td>{since}</td><td>{seen}</td></tr>"
        )
    head = "<tr><th>region</th><th>marked by</th><th>mark</th><th>since</th><th>now</th></tr>"
    return f"<table class='gv-table'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def removable(snapshot: FeedSnapshot | None) -> list[str]:
    return [row.name for row in snapshot.regions] if snapshot is not None else []


def texts(snapshot: FeedSnapshot | None) -> str:
    """The descriptions, newest first: those GAR is writing (…), then each window described."""
    if snapshot is None:
        return ""
    names = list(snapshot.names)
    parts = []
    for event in snapshot.writing:
        parts.append(
            f"<div class='gv-description gv-writing-now' data-name='{esc(event.region)}'>{swatch(event.region, names)}"
            f"<b>{esc(event.region)}</b> (writing): <span class='gv-text'>{esc(event.text)}</span> …</div>"
        )
    for event in reversed(snapshot.windows):
        merged = f", windows {event.windows[0]}–{event.windows[-1]} merged" if len(event.windows) > 1 else ""
        skipped = f", {len(event.skipped)} skipped before it" if event.skipped else ""
        said = f"<span class='gv-text'>{esc(event.text)}</span>" if event.visible else "<i>not seen</i>"
        parts.append(
            f"<div class='gv-description' data-name='{esc(event.region)}' data-window='{event.windows[-1]}'>"
            f"{swatch(event.region, names)}<b>{esc(event.region)}</b> "
            f"({format_clock(event.start)} – {format_clock(event.end)}{merged}{skipped}): {said}</div>"
        )
    return "".join(parts)


def conversation(snapshot: FeedSnapshot | None) -> str:
    """The questions and their answers (the text as GAR writes it), newest last."""
    if snapshot is None or not snapshot.turns:
        return ""
    parts = []
    for turn in snapshot.turns:
        options = "".join(f"<li>{esc(o)}</li>" for o in turn.options)
        parts.append(
            f"<div class='gv-turn' data-turn='{turn.number}'><div class='gv-question'>{esc(turn.question)} "
            f"<span class='gv-last'>(the last {turn.last:g} s)</span></div>"
            + (f"<ol type='A'>{options}</ol>" if options else "")
            + f"<div class='gv-answer'>{_answer_text(turn)}</div></div>"
        )
    return "".join(parts)


def _answer_text(turn: Turn) -> str:
    if turn.error is not None:
        return f"<span class='gv-error'>{esc(turn.error)}</span>"
    if turn.answer is None:
        return f"{esc(turn.text)} …"
    letter = f" <b>({esc(turn.answer.letter)})</b>" if turn.answer.letter else ""
    return esc(turn.text) + letter


def log(snapshot: FeedSnapshot | None, stream: LiveStream | None = None) -> str:
    """What happened, newest first: the source's gaps, regions appearing, lost and found, falling behind, errors."""
    if snapshot is None or not snapshot.log:
        return ""
    lines = []
    for event in reversed(snapshot.log):
        when = format_clock(event.time) if event.time is not None else "—"
        lines.append(
            f"<div class='gv-log-line gv-log-{event.kind}'><span class='gv-log-time'>{when}</span> "
            f"<b>{event.kind}</b> {esc(_hidden(log_text(event, stream.source.shown if stream else ''), stream))}</div>"
        )
    return f"<div class='gv-log'>{''.join(lines)}</div>"


def log_text(event: LiveEvent, source: str = "") -> str:
    """One event as a short line (``source``: the stream as the page names it)."""
    d = event.to_dict()
    kind = event.kind
    if kind == "started":
        s = d["source"]
        return f"{source or s['source']}: {s['format']}, {s['codec']}, {s['width']}×{s['height']}"
    if kind == "appeared":
        found = f" ({d['phrase']!r}, score {d['score']:.2f})" if d.get("phrase") is not None else ""
        return f"{d['region']} appeared, {d['how']}{found}"
    if kind == "lost":
        return f"{d['region']} lost (last seen at {format_clock(d['last_seen'])})"
    if kind == "found":
        return f"{d['region']} found again after {d['after']:.1f} s, by the {d['by']}"
    if kind == "removed":
        return f"{d['region']} removed"
    if kind == "gap":
        if d["resumed"]:
            return f"the source is back after {d['seconds']:.1f} s ({d['attempts']} reconnection(s))"
        return f"the source dropped: {d['reason']}"
    if kind == "behind":
        return f"tracking {d['seconds']:.1f} s behind capture; {d['dropped']} frame(s) dropped ({d['dropped_total']} in all)"
    if kind == "stopped":
        return (
            f"{d['reason']}: {d['frames_tracked']} frames tracked, {d['frames_dropped']} dropped, "
            f"{d['windows_described']} windows described"
        )
    return str(d.get("message", ""))


def summary(stream: LiveStream | None, snapshot: FeedSnapshot | None) -> dict[str, Any]:
    """Everything the Live tab shows, as JSON: what API clients read (the frame's masks as the session's RLE)."""
    if stream is None or snapshot is None:
        return {"state": None}
    obj_ids = {row.name: row.obj_id for row in snapshot.regions}
    frame = snapshot.frame
    shown = None
    if frame is not None:
        regions = {name: {"obj_id": obj_ids.get(name), **e.to_dict()} for name, e in frame.regions.items()}
        shown = {
            "seq": frame.seq,
            "index": frame.index,
            "time": frame.time,
            "arrival": frame.arrival,
            "regions": regions,
        }
    answered = [t for t in snapshot.turns if t.answer is not None or t.error is not None]
    started = snapshot.started
    return _hidden(
        {
            "state": stream.state,
            "source": {"opened_as": stream.source.shown, "kind": stream.source.kind}
            | ({k: v for k, v in started.source.items() if k not in ("source", "url")} if started else {}),
            "failure": stream.failure,
            "frame": shown,
            "regions": [row.__dict__ for row in snapshot.regions],
            "descriptions": [e.to_dict() for e in snapshot.windows],
            "writing": [e.to_dict() for e in snapshot.writing],
            "conversation": [_turn(t) for t in snapshot.turns],
            "answer": _turn(answered[-1]) if answered else None,
            "log": [e.to_dict() for e in snapshot.log],
        },
        stream,
    )


def _hidden(value: Any, stream: LiveStream | None) -> Any:
    """``value`` naming the source as the page does: a URL's password and the app's path for a file never show."""
    if stream is None or stream.source.target == stream.source.shown:
        return value
    if isinstance(value, str):
        return value.replace(stream.source.target, stream.source.shown)
    if isinstance(value, dict):
        return {k: _hidden(v, stream) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hidden(v, stream) for v in value]
    return value


def _turn(turn: Turn) -> dict[str, Any]:
    answer = turn.answer.to_dict() if turn.answer is not None else None
    return {"number": turn.number, "question": turn.question, "last": turn.last, "options": list(turn.options),
            "text": turn.text, "answer": answer, "error": turn.error}  # fmt: skip
