"""What the page shows of a session, as text and HTML: every string that came from a user, a file name, a
region name or the model is escaped here (``esc``), so the page shows it as written and never runs it.

The functions are pure (a session in, strings out); :mod:`.ui` puts them into widgets.
"""

from __future__ import annotations

import html
from typing import Any

from ..outputs.document import track_summary
from ..timecode import format_clock
from .backend import FrameView
from .drawing import colour_of, data_url
from .session import LiveRun, Notice, Session, Thumbnail, Turn

EMPTY_FRAME = "<div class='gv-empty'>Open a video (upload one, or pick one under --root) to see its frames here.</div>"


def esc(text: Any) -> str:
    """Text as the page shows it: characters, never markup."""
    return html.escape(str(text), quote=True)


def swatch(name: str, names: list[str]) -> str:
    r, g, b = colour_of(name, names)
    return f"<span class='gv-swatch' style='background: rgb({r}, {g}, {b})'></span>"


def facts(session: Session) -> str:
    video = session.video
    if video is None:
        return ""
    info = video.info
    rate = f"{info.fps:.3f} fps" + (" (variable)" if info.variable_frame_rate else "")
    turned = f", turned {info.rotation}°" if info.rotation else ""
    return (
        f"<div class='gv-facts'><b>{esc(video.shown)}</b> — {info.width}×{info.height}{turned}, "
        f"{info.num_frames} frames, {rate}, {info.duration:.3f} s, {esc(info.codec)}</div>"
    )


def frame_html(view: FrameView | None, live: bool = False) -> str:
    """The frame panel: the picture, sized by the page, with the video's size for the page's mouse mapping."""
    if view is None:
        return EMPTY_FRAME
    return (
        f"<div class='gv-stage' data-w='{view.width}' data-h='{view.height}' data-frame='{view.index}'"
        f" data-live='{int(live)}'>"
        f"<img class='gv-img' alt='frame {view.index}' draggable='false' src='{data_url(view.image)}'>"
        "<div class='gv-band'></div></div>"
    )


def strip(thumbnails: list[Thumbnail]) -> str:
    """The tracked frames in a row, each keeping the video's shape; a click goes to that frame."""
    if not thumbnails:
        return ""
    figures = "".join(
        f"<figure class='gv-thumb' data-frame='{t.frame}' title='go to frame {t.frame}'>"
        f"<img src='{t.url}' alt='frame {t.frame}'><figcaption>{esc(t.caption)}</figcaption></figure>"
        for t in thumbnails
    )
    return f"<div class='gv-strip'>{figures}</div>"


def frame_label(session: Session, index: int) -> str:
    video = session.video
    if video is None:
        return ""
    index = min(max(int(index), 0), video.info.num_frames - 1)
    time = video.reader.index_to_time(index)
    return (
        f"<div class='gv-where'>frame <b>{index}</b> of {video.info.num_frames} · "
        f"<b>{format_clock(time)}</b> of {format_clock(video.info.duration)}</div>"
    )


def live_label(session: Session, run: LiveRun) -> str:
    """Where a running track is: the frame it tracked last."""
    video = session.video
    if video is None or run.last_frame is None:
        return ""
    time = video.reader.index_to_time(run.last_frame)
    return f"<div class='gv-where gv-live'>tracking: frame <b>{run.last_frame}</b> · <b>{format_clock(time)}</b></div>"


def _mark_text(mark) -> str:
    """The mark as typed; for a text region also what was found, with the --box that marks it again."""
    if not mark.found:
        return mark.body
    found = "; ".join(f"{f.box_option} (score {f.score:.2f})" for f in mark.found)
    where = f"frame {mark.frame} ({format_clock(mark.found[0].time)})"
    searched = len(mark.found[0].searched)
    return f"{mark.body!r} found on {where}" + (f" after {searched} frames" if searched > 1 else "") + f": {found}"


def regions(session: Session) -> str:
    """The marks as a table, each row in its region's colour."""
    if not session.marks:
        return "<div class='gv-none'>No region yet: drag a box or click on the frame, then add it.</div>"
    names = session.names
    rows = "".join(
        f"<tr data-name='{esc(m.name)}'><td>{swatch(m.name, names)}{esc(m.name)}</td><td>{esc(m.kind.key)}</td>"
        f"<td>{m.frame}</td><td>{esc(_mark_text(m))}</td></tr>"
        for m in session.marks
    )
    return (
        "<table class='gv-table'><thead><tr><th>region</th><th>kind</th><th>frame</th><th>mark</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def removable(session: Session) -> list[str]:
    labels = list(dict.fromkeys(m.name for m in session.marks))
    labels += [m.label for m in session.marks if sum(n.name == m.name for n in session.marks) > 1]
    return labels


def tracks(session: Session) -> str:
    tracking = session.tracking
    if tracking is None:
        return ""
    names = session.names
    parts = []
    for track in tracking.tracks:
        summary = track_summary(track)
        seen = (
            f"visible {format_clock(summary['first_visible']['time'])} to {format_clock(summary['last_visible']['time'])}"
            if summary["first_visible"]
            else "never visible"
        )
        parts.append(
            f"<div>{swatch(track.name, names)}<b>{esc(track.name)}</b>: {summary['frames_tracked']} frames tracked, "
            f"{summary['frames_visible']} visible, {seen}</div>"
        )
    return "".join(parts)


def descriptions(session: Session) -> str:
    """Each region's overall description; while GAR writes, every text so far (windows too), as it comes."""
    run = session.live
    if run is not None and run.texts:
        return _live_texts(session, run)
    result = session.described
    if result is None:
        return ""
    names = session.names
    return "".join(
        f"<div class='gv-description' data-name='{esc(t.name)}'>{swatch(t.name, names)}<b>{esc(t.name)}</b> "
        f"(seen {format_clock(t.visible_span[0])} to {format_clock(t.visible_span[1])}): "
        f"<span class='gv-text'>{esc(t.description)}</span></div>"
        for t in result.regions
    )


def _live_texts(session: Session, run: LiveRun) -> str:
    names = session.names
    parts = []
    for (region, window), event in run.texts.items():
        if region is None:
            continue  # an answer: the conversation shows it
        where = "overall" if window is None else f"{format_clock(event.start or 0)} – {format_clock(event.end or 0)}"
        writing = "" if event.done else " <span class='gv-writing'>…</span>"
        parts.append(
            f"<div class='gv-description' data-name='{esc(region)}' data-window='{'' if window is None else window}'>"
            f"{swatch(region, names)}<b>{esc(region)}</b> ({where}): "
            f"<span class='gv-text'>{esc(event.text)}</span>{writing}</div>"
        )
    return "".join(parts)


def timeline_rows(session: Session) -> list[list[Any]]:
    result = session.described
    if result is None:
        return []
    return [
        [t.name, f"{format_clock(w.start)} – {format_clock(w.end)}", "yes" if w.visible else "no", w.description or ""]
        for t in result.regions
        for w in t.windows
    ]


def _turn_answer(turn: Turn, run: LiveRun | None) -> tuple[str, bool]:
    """The answer's text (so far, while GAR writes it) and whether it is finished."""
    if turn.answer is not None:
        return turn.text, True
    event = run.texts.get((None, None)) if run is not None else None
    return (event.text if event is not None else ""), False


def conversation(session: Session) -> str:
    """The session's questions and answers, newest last, each with the command that asks it again."""
    if not session.conversation:
        return ""
    parts = []
    for turn in session.conversation:
        text, finished = _turn_answer(turn, session.live)
        options = "".join(f"<li>{esc(o)}</li>" for o in turn.options)
        letter = f"<div class='gv-letter'>chosen: {esc(turn.letter)}</div>" if turn.letter else ""
        command = f"<pre class='gv-command'>{esc(turn.command)}</pre>" if turn.command else ""
        parts.append(
            f"<div class='gv-turn' data-turn='{turn.number}'><div class='gv-question'>{esc(turn.question)}</div>"
            + (f"<ol type='A'>{options}</ol>" if options else "")
            + f"<div class='gv-answer'>{esc(text)}{'' if finished else ' …'}</div>{letter}{command}</div>"
        )
    return "".join(parts)


def conversation_text(session: Session) -> str:
    """The conversation as plain text, to copy."""
    lines = []
    for turn in session.conversation:
        if turn.answer is None:
            continue
        lines.append(f"Q{turn.number}: {turn.question}")
        lines += [f"  {chr(ord('A') + k)}. {o}" for k, o in enumerate(turn.options)]
        lines.append(f"A{turn.number}: {turn.text}" + (f" ({turn.letter})" if turn.letter else ""))
        lines.append(f"$ {turn.command}")
    return "\n".join(lines)


def status(notice: Notice | None) -> str:
    """The line under an action's button: what it waits for, how far it is, or what went wrong."""
    if notice is None:
        return "<div class='gv-status gv-idle'></div>"
    bar = ""
    if notice.kind == "busy" and notice.total:
        bar = f"<progress value='{notice.done or 0}' max='{notice.total}'></progress>"
    return f"<div class='gv-status gv-{esc(notice.kind)}' role='status'>{bar}<span>{esc(notice.text)}</span></div>"


def summary(session: Session) -> dict[str, Any]:
    """Everything the session holds, as JSON: what API clients read."""
    video = session.video
    answer = session.answer
    return {
        # No "path" key: gradio_client would take the dict for a file to download.
        "video": {"opened_as": video.shown, **{k: v for k, v in video.info.to_dict().items() if k != "path"}}
        if video
        else None,
        "regions": [
            {"name": m.name, "kind": m.kind.key, "frame": m.frame, "mark": m.body}
            | ({"found": [f.to_dict() for f in m.found]} if m.found else {})
            | ({"warning": m.warning} if m.warning else {})
            for m in session.marks
        ],
        "tracks": [{"name": t.name, **track_summary(t)} for t in session.tracking.tracks] if session.tracking else None,
        "description": [t.to_dict() for t in session.described.regions] if session.described else None,
        "answer": answer.to_dict() if answer else None,
        "conversation": [
            {"question": t.question, "options": list(t.options), "answer": t.answer.to_dict(), "command": t.command}
            for t in session.conversation
            if t.answer is not None
        ],
        "preview": _preview(session),
        "files": sorted(session.files),
        "commands": dict(session.commands),
    }


def _preview(session: Session) -> dict[str, Any] | None:
    """SAM2's mask of the mark not added yet, on its frame (None without one)."""
    draft = session.draft
    entry = session.previews.get(draft.key) if draft is not None else None
    if entry is None:
        return None
    return {"name": draft.name, "kind": draft.kind.key, "mark": draft.body, "frame": draft.frame, **entry.to_dict()}
