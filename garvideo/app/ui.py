"""The page (Gradio Blocks) and its HTTP API: every button is also an endpoint named in ``api_name``.

Handlers only translate between widgets and :class:`~garvideo.app.backend.Backend`; a user mistake
becomes a ``gr.Error`` carrying the CLI's one line (``garvideo: error: ...``) and the app keeps serving.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import os
import traceback
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from .. import defaults
from ..errors import GarvideoError
from ..outputs.document import track_summary
from ..pipeline import TextSearch
from ..timecode import format_clock, parse_seconds
from . import commands
from .backend import OVERLAY_FILE, Backend, Session, Settings
from .drawing import data_url
from .regions import REGION_KINDS, TEXT, Mark

log = logging.getLogger("garvideo.app")

TITLE = "garvideo"
INTRO = (
    "Open a video, scrub to a frame, **drag a box** (or click points) on the object, name it and add it "
    "(or name it **in words** and let the detector find it); "
    "then **Track**, **Describe**, or **Ask** about `<name>`. Every run shows the `garvideo` command that reproduces it."
)

# The frame view: the user drags a box or clicks; the page reports positions in the video's pixels.
FRAME_JS = """
let start = null;
const img = () => element.querySelector('img.gv-img');
const band = () => element.querySelector('.gv-band');
function where(e) {
  const im = img(); const r = im.getBoundingClientRect(); const stage = im.parentElement;
  const W = Number(stage.dataset.w), H = Number(stage.dataset.h);
  const cx = Math.min(Math.max(e.clientX - r.left, 0), r.width);
  const cy = Math.min(Math.max(e.clientY - r.top, 0), r.height);
  return {cx: cx, cy: cy, x: Math.round(cx / r.width * W), y: Math.round(cy / r.height * H)};
}
element.addEventListener('mousedown', (e) => {
  if (e.button !== 0 || !e.target.classList.contains('gv-img')) return;
  e.preventDefault(); start = where(e); start.shift = e.shiftKey;
});
element.addEventListener('contextmenu', (e) => {
  if (!e.target.classList.contains('gv-img')) return;
  e.preventDefault(); const p = where(e); trigger('point', {x: p.x, y: p.y, background: true});
});
window.addEventListener('mousemove', (e) => {
  if (!start || !img()) return;
  const p = where(e), b = band(), im = img();
  b.style.display = 'block';
  b.style.left = (im.offsetLeft + Math.min(start.cx, p.cx)) + 'px';
  b.style.top = (im.offsetTop + Math.min(start.cy, p.cy)) + 'px';
  b.style.width = Math.abs(p.cx - start.cx) + 'px';
  b.style.height = Math.abs(p.cy - start.cy) + 'px';
});
window.addEventListener('mouseup', (e) => {
  if (!start || !img()) { start = null; return; }
  const p = where(e), s = start; start = null; band().style.display = 'none';
  if (Math.abs(p.cx - s.cx) >= 4 && Math.abs(p.cy - s.cy) >= 4) {
    trigger('box', {box: [Math.min(s.x, p.x), Math.min(s.y, p.y), Math.max(s.x, p.x), Math.max(s.y, p.y)]});
  } else {
    trigger('point', {x: p.x, y: p.y, background: s.shift || e.shiftKey});
  }
});
"""

CSS = """
#gv-frame .gv-stage { position: relative; display: block; width: 100%; line-height: 0; }
#gv-frame img.gv-img { width: 100%; max-height: 70vh; object-fit: contain; cursor: crosshair; user-select: none; -webkit-user-drag: none; }
#gv-frame .gv-band { position: absolute; display: none; border: 2px dashed #fff; outline: 1px solid #000;
  pointer-events: none; }
#gv-frame .gv-empty { padding: 3em 1em; text-align: center; color: #888; border: 1px dashed #aaa;
  border-radius: 6px; line-height: 1.4; }
"""

EMPTY_FRAME = "<div class='gv-empty'>Open a video (upload one, or pick one under --root) to see its frames here.</div>"


def _frame_html(backend: Backend, session: Session, index: int, draft=None) -> str:
    if session.video is None:
        return EMPTY_FRAME
    view = backend.frame_view(session, index, draft)
    return (
        f"<div class='gv-stage' data-w='{view.width}' data-h='{view.height}' data-frame='{view.index}'>"
        f"<img class='gv-img' alt='frame {view.index}' draggable='false' src='{data_url(view.image)}'>"
        "<div class='gv-band'></div></div>"
    )


def _frame_label(session: Session, index: int) -> str:
    video = session.video
    if video is None:
        return ""
    index = min(max(int(index), 0), video.info.num_frames - 1)
    time = video.reader.index_to_time(index)
    return f"frame **{index}** of {video.info.num_frames} · **{format_clock(time)}** of {format_clock(video.info.duration)}"


def _facts(session: Session) -> str:
    video = session.video
    if video is None:
        return ""
    info = video.info
    rate = f"{info.fps:.3f} fps" + (" (variable)" if info.variable_frame_rate else "")
    turned = f", turned {info.rotation}°" if info.rotation else ""
    return (
        f"**{html.escape(video.shown)}** — {info.width}×{info.height}{turned}, {info.num_frames} frames, "
        f"{rate}, {info.duration:.3f} s, {info.codec}"
    )


def _mark_text(mark: Mark) -> str:
    """The mark as typed; for a text region also what was found, with the --box that marks it again."""
    if not mark.found:
        return mark.body
    found = "; ".join(f"{f.box_option} (score {f.score:.2f})" for f in mark.found)
    where = f"frame {mark.frame} ({format_clock(mark.found[0].time)})"
    searched = len(mark.found[0].searched)
    return f"{mark.body!r} found on {where}" + (f" after {searched} frames" if searched > 1 else "") + f": {found}"


def _regions_rows(session: Session) -> list[list[Any]]:
    return [[m.name, m.kind.key, m.frame, _mark_text(m)] for m in session.marks]


def _removable(session: Session) -> list[str]:
    labels = list(dict.fromkeys(m.name for m in session.marks))
    labels += [m.label for m in session.marks if sum(n.name == m.name for n in session.marks) > 1]
    return labels


def _timeline_rows(session: Session) -> list[list[Any]]:
    result = session.described
    if result is None:
        return []
    return [
        [t.name, f"{format_clock(w.start)} – {format_clock(w.end)}", "yes" if w.visible else "no", w.description or ""]
        for t in result.regions
        for w in t.windows
    ]


def _descriptions(session: Session) -> str:
    result = session.described
    if result is None:
        return ""
    lines = []
    for t in result.regions:
        first, last = t.visible_span
        lines.append(f"**{t.name}** (seen {format_clock(first)} to {format_clock(last)}): {html.escape(t.description)}")
    return "\n\n".join(lines)


def _track_text(session: Session) -> str:
    tracking = session.tracking
    if tracking is None:
        return ""
    parts = []
    for track in tracking.tracks:
        summary = track_summary(track)
        seen = (
            f"visible {format_clock(summary['first_visible']['time'])} to {format_clock(summary['last_visible']['time'])}"
            if summary["first_visible"]
            else "never visible"
        )
        parts.append(
            f"**{track.name}**: {summary['frames_tracked']} frames tracked, {summary['frames_visible']} visible, {seen}"
        )
    return "\n\n".join(parts)


def _details(session: Session) -> dict[str, Any]:
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
            for m in session.marks
        ],
        "tracks": [{"name": t.name, **track_summary(t)} for t in session.tracking.tracks] if session.tracking else None,
        "description": [t.to_dict() for t in session.described.regions] if session.described else None,
        "answer": answer.to_dict() if answer else None,
        "files": sorted(session.files),
        "commands": dict(session.commands),
    }


class Page:
    """Builds the Blocks and wires every widget to the backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- handler plumbing ----------------------------------------------------------

    def _handler(self, fn: Callable) -> Callable:
        """Run ``fn(session, ...)`` in the caller's session; user mistakes become the CLI's one line."""

        @functools.wraps(fn)
        def run(request: gr.Request, *args, **kwargs):
            key = request.session_hash or "no-session"
            try:
                with self.backend.using(key) as session:
                    return fn(session, *args, **kwargs)
            except GarvideoError as exc:
                raise gr.Error(f"garvideo: error: {exc}", title="garvideo", print_exception=False) from exc
            except gr.Error:
                raise
            except Exception as exc:  # a bug: keep serving, say so, log the traceback
                log.error("garvideo app: unexpected error\n%s", traceback.format_exc())
                raise gr.Error(
                    f"garvideo: internal error: {type(exc).__name__}: {exc}", title="garvideo", print_exception=False
                ) from exc

        # Gradio finds gr.Request / gr.Progress / EventData by signature and type hints: fn's, the session replaced.
        run.__signature__, run.__annotations__ = _with_request(fn)  # type: ignore[attr-defined]
        del run.__wrapped__  # or inspect would show fn's own signature
        return run

    def _everything(self, session: Session, index: int) -> dict:
        """Every widget that shows session state, as it should be now."""
        w = self.w
        video = session.video
        n = video.info.num_frames if video else 1
        index = min(max(int(index or 0), 0), n - 1)
        files = [str(session.files[k]) for k in sorted(session.files)]
        return {
            w["details"]: _details(session),
            w["facts"]: _facts(session),
            w["frame"]: gr.Slider(minimum=0, maximum=max(n - 1, 1), value=index, step=1, interactive=video is not None),
            w["view"]: _frame_html(self.backend, session, index),
            w["frame_label"]: _frame_label(session, index),
            w["regions"]: _regions_rows(session),
            w["remove_pick"]: gr.Dropdown(choices=_removable(session), value=None, allow_custom_value=True),
            w["name"]: self.backend.next_name(session),
            w["track_text"]: _track_text(session),
            w["strip"]: [(str(p), caption) for p, caption, _ in session.thumbnails],
            w["descriptions"]: _descriptions(session),
            w["timeline"]: _timeline_rows(session),
            w["overlay"]: str(session.files[OVERLAY_FILE]) if OVERLAY_FILE in session.files else None,
            w["answer"]: session.answer.text if session.answer else "",
            w["letter"]: _letter(session),
            w["downloads"]: files or None,
            w["command"]: "\n".join(session.commands[k] for k in ("track", "describe", "ask") if k in session.commands),
        }

    # -- the page --------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        backend = self.backend
        w: dict[str, Any] = {}
        self.w = w
        with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
            gr.Markdown(f"## garvideo — point at regions in a video, read what they do\n{INTRO}")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    with gr.Row():
                        w["upload"] = gr.File(
                            label="upload a video",
                            type="filepath",
                            file_count="single",
                            height=110,
                            elem_id="gv-upload",
                        )
                        with gr.Column(visible=backend.config.root is not None):
                            w["root_pick"] = gr.Dropdown(
                                label="or open a video under --root",
                                choices=backend.root_videos(),
                                value=None,
                                allow_custom_value=True,
                                elem_id="gv-root-pick",
                            )
                            w["open"] = gr.Button("Open", size="sm", elem_id="gv-open")
                    w["facts"] = gr.Markdown(label="video", elem_id="gv-facts")
                    w["view"] = gr.HTML(EMPTY_FRAME, label="view", js_on_load=FRAME_JS, elem_id="gv-frame")
                    w["frame"] = gr.Slider(0, 1, value=0, step=1, label="frame", interactive=False, elem_id="gv-slider")
                    w["frame_label"] = gr.Markdown(label="position", elem_id="gv-frame-label")
                    w["strip"] = gr.Gallery(
                        label="tracked frames (click one to go there)",
                        columns=4,
                        height="auto",
                        allow_preview=False,
                        interactive=False,
                        elem_id="gv-strip",
                    )
                    w["descriptions"] = gr.Markdown(label="descriptions", elem_id="gv-descriptions")
                    w["timeline"] = gr.Dataframe(
                        headers=["region", "window", "visible", "description"],
                        interactive=False,
                        wrap=True,
                        column_widths=["14%", "30%", "10%", "46%"],
                        label="timeline (click a window to go there)",
                        elem_id="gv-timeline",
                    )
                    w["overlay"] = gr.Video(label="overlay video", interactive=False, elem_id="gv-overlay")
                with gr.Column(scale=2):
                    with gr.Group():
                        # One entry per region kind (garvideo.app.regions.REGION_KINDS). A text region is found
                        # by the detector: its own options and button show instead of "Add" when it is chosen.
                        w["kind"] = gr.Radio(
                            [(k.label, k.key) for k in REGION_KINDS],
                            value=REGION_KINDS[0].key,
                            label="mark a region with",
                            elem_id="gv-kind",
                        )
                        with gr.Row():
                            w["name"] = gr.Textbox("region1", label="name", scale=1, elem_id="gv-name")
                            w["mark"] = gr.Textbox(
                                label="mark (pixels, as the CLI's --box / --points)",
                                placeholder="x1,y1,x2,y2   or   x,y;!x,y",
                                scale=2,
                                elem_id="gv-mark",
                            )
                        w["add"] = gr.Button("Add region on this frame", elem_id="gv-add")
                        search = backend.config.text_search  # the page starts from `garvideo app`'s text options
                        with gr.Row(visible=False, elem_id="gv-text-options") as w["text_options"]:
                            w["on_frame"] = gr.Checkbox(
                                False, label="look only on this frame (else the video is searched)", scale=2
                            )
                            w["box_threshold"] = gr.Number(
                                search.box_threshold, label="box threshold", minimum=0, elem_id="gv-box-threshold"
                            )
                            w["text_threshold"] = gr.Number(search.text_threshold, label="text threshold", minimum=0)
                            w["max_instances"] = gr.Number(
                                search.max_instances, label="max instances", precision=0, minimum=1
                            )
                        w["find"] = gr.Button("Find and add", visible=False, elem_id="gv-find")
                    w["regions"] = gr.Dataframe(
                        headers=["region", "kind", "frame", "mark"],
                        interactive=False,
                        label="regions",
                        elem_id="gv-regions",
                    )
                    with gr.Row():
                        w["remove_pick"] = gr.Dropdown(
                            label="remove a region (or one mark: name@frame)", allow_custom_value=True, scale=3
                        )
                        w["remove"] = gr.Button("Remove", scale=1, size="sm")
                    with gr.Accordion("settings", open=False, elem_id="gv-settings"):
                        with gr.Row():
                            w["start"] = gr.Textbox("", label="start (4.5 or 1:02.5)", placeholder="video start")
                            w["end"] = gr.Textbox("", label="end", placeholder="video end")
                            w["stride"] = gr.Number(
                                defaults.STRIDE, label="track every N-th frame", precision=0, minimum=1
                            )
                        with gr.Row():
                            w["window"] = gr.Number(
                                defaults.WINDOW or 0, label="timeline window (s; 0 = adaptive)", minimum=0
                            )
                            w["frames_per_window"] = gr.Number(
                                defaults.FRAMES_PER_WINDOW, label="frames per window", precision=0, minimum=1
                            )
                            w["frames"] = gr.Number(
                                defaults.FRAMES, label="frames (overall, answers)", precision=0, minimum=1
                            )
                        with gr.Row():
                            w["tiling"] = gr.Radio(["vanilla", "thumb+tile"], value=defaults.TILING, label="tiling")
                            w["max_new_tokens"] = gr.Number(
                                defaults.MAX_NEW_TOKENS,
                                label="max new tokens",
                                precision=0,
                                minimum=1,
                                elem_id="gv-max-new",
                            )
                            w["overlay_on"] = gr.Checkbox(True, label="draw the overlay video")
                    with gr.Row():
                        w["track"] = gr.Button("Track", variant="secondary", elem_id="gv-track")
                        w["describe"] = gr.Button("Describe", variant="primary", elem_id="gv-describe")
                    w["track_text"] = gr.Markdown(label="tracks", elem_id="gv-track-text")
                    w["question"] = gr.Textbox(
                        "",
                        label="question (name regions as <name>)",
                        placeholder="What is <region1> doing?",
                        elem_id="gv-question",
                    )
                    w["options"] = gr.Textbox(
                        "",
                        label="options, one per line (optional: makes it multiple choice)",
                        lines=2,
                        elem_id="gv-options",
                    )
                    w["ask"] = gr.Button("Ask", elem_id="gv-ask")
                    with gr.Row():
                        w["answer"] = gr.Textbox(label="answer", interactive=False, scale=3, elem_id="gv-answer")
                        w["letter"] = gr.Textbox(label="chosen option", interactive=False, scale=1, elem_id="gv-letter")
                    w["downloads"] = gr.File(
                        label="downloads", file_count="multiple", interactive=False, elem_id="gv-downloads"
                    )
                    w["command"] = gr.Code(
                        label="the same run from the command line",
                        language="shell",
                        lines=3,
                        interactive=False,
                        elem_id="gv-command",
                    )
            with gr.Accordion("details (JSON, as the API returns them)", open=False):
                w["details"] = gr.JSON(label="details", elem_id="gv-details")
            self._wire(demo)
        return demo

    def _wire(self, demo: gr.Blocks) -> None:
        w, backend = self.w, self.backend
        everything = [
            w[k]
            for k in (
                "details", "facts", "frame", "view", "frame_label", "regions", "remove_pick", "name", "track_text",
                "strip", "descriptions", "timeline", "overlay", "answer", "letter", "downloads", "command",
            )
        ]  # fmt: skip
        # Page updates never wait behind model work and flash no spinners (a refusal shows as a message).
        light = {"concurrency_limit": None, "show_progress": "hidden"}
        # One model job at a time, the others queue; the progress bar (or the error) shows on the tracks text.
        model = {"concurrency_limit": 1, "concurrency_id": "model", "show_progress_on": [w["track_text"]]}

        def open_upload(session: Session, upload: str | None):
            if not upload:
                raise gr.Error("garvideo: error: choose a video file to upload", print_exception=False)
            backend.open_upload(session, upload)
            return {**self._everything(session, 0), w["upload"]: None}

        def open_path(session: Session, relative: str | None):
            backend.open_root_file(session, relative or "")
            return self._everything(session, 0)

        def seek(session: Session, index: float):
            return {w["view"]: _frame_html(backend, session, index), w["frame_label"]: _frame_label(session, index)}

        def on_box(session: Session, name: str, index: float, evt: gr.EventData):
            box = ",".join(str(int(v)) for v in evt.box)
            draft = backend.draft(session, name, "box", box, int(index))
            return {w["kind"]: "box", w["mark"]: box, w["view"]: _frame_html(backend, session, index, draft)}

        def on_point(session: Session, name: str, kind: str, body: str, index: float, evt: gr.EventData):
            click = f"{'!' if evt.background else ''}{int(evt.x)},{int(evt.y)}"
            body = f"{body};{click}" if kind == "points" and (body or "").strip() else click
            draft = backend.draft(session, name, "points", body, int(index))
            return {w["kind"]: "points", w["mark"]: body, w["view"]: _frame_html(backend, session, index, draft)}

        def add_region(session: Session, name: str, kind: str, mark: str, index: float):
            backend.add_mark(session, name, kind, mark, int(index))
            return {**self._everything(session, index), w["mark"]: ""}

        def find_region(
            session: Session, name, phrase, on_frame, box_threshold, text_threshold, max_instances, start, end, index,
            progress=gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio hands out a progress bar
        ):  # fmt: skip
            search = TextSearch(
                box_threshold=box_threshold,
                text_threshold=text_threshold,
                max_instances=_whole(max_instances),
                every=backend.config.text_search.every,
            )
            span = commands.Span(_time_text(start, "start"), _time_text(end, "end"))
            frame = int(index or 0) if on_frame else None
            mark = backend.find_mark(session, name or "", phrase or "", frame, search, span, _reporter(progress))
            return {**self._everything(session, mark.frame), w["mark"]: ""}

        def choose_kind(kind: str):
            text = kind == TEXT.key
            return {
                w["add"]: gr.Button(visible=not text),
                w["find"]: gr.Button(visible=text),
                w["text_options"]: gr.Row(visible=text),
                w["mark"]: gr.Textbox(
                    label="phrase (as the CLI's --text)" if text else "mark (pixels, as the CLI's --box / --points)",
                    placeholder=TEXT.placeholder if text else "x1,y1,x2,y2   or   x,y;!x,y",
                ),
            }

        def remove_region(session: Session, label: str | None, index: float):
            backend.remove_mark(session, label or "")
            return self._everything(session, index)

        def track(session: Session, start, end, stride, index, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
            backend.track(session, _settings(start, end, stride), _reporter(progress))
            return self._everything(session, index)

        def describe(
            session: Session, start, end, stride, window, per_window, frames, tiling, max_new, overlay_on, index,
            progress=gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio hands out a progress bar
        ):  # fmt: skip
            generation = _generation(frames, tiling, max_new)
            window_s = float(window) if window not in (None, "") and float(window) > 0 else None
            backend.describe(
                session, _settings(start, end, stride), window_s, _count(per_window, "frames per window"),
                generation, bool(overlay_on), _reporter(progress),
            )  # fmt: skip
            return self._everything(session, index)

        def ask(
            session: Session, question, options, start, end, stride, frames, tiling, max_new, index,
            progress=gr.Progress(track_tqdm=True),  # noqa: B008 - how Gradio hands out a progress bar
        ):  # fmt: skip
            backend.ask(
                session, _settings(start, end, stride), question or "", (options or "").splitlines(),
                _generation(frames, tiling, max_new), _reporter(progress),
            )  # fmt: skip
            return self._everything(session, index)

        def go_to_window(session: Session, evt: gr.SelectData):
            result = session.described
            if result is None or session.video is None:
                return gr.Slider()
            windows = [win for t in result.regions for win in t.windows]
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            return gr.Slider(value=session.video.reader.time_to_index(windows[int(row)].start))

        def go_to_thumbnail(session: Session, evt: gr.SelectData):
            if not session.thumbnails:
                return gr.Slider()
            return gr.Slider(value=session.thumbnails[int(evt.index)][2])

        def close_session(request: gr.Request):
            backend.end_session(request.session_hash or "no-session")
            # The empty page, without starting a new session (and a folder) until the next action.
            return self._everything(Session(key="", folder=Path(os.devnull)), 0)

        h = self._handler
        w["upload"].upload(h(open_upload), [w["upload"]], [*everything, w["upload"]], api_name="open_upload", **light)
        w["open"].click(h(open_path), [w["root_pick"]], everything, api_name="open_path", **light)
        w["frame"].change(
            h(seek), [w["frame"]], [w["view"], w["frame_label"]], api_name="seek", trigger_mode="always_last", **light
        )
        w["view"].box(
            h(on_box), [w["name"], w["frame"]], [w["kind"], w["mark"], w["view"]], api_visibility="private", **light
        )
        w["view"].point(
            h(on_point),
            [w["name"], w["kind"], w["mark"], w["frame"]],
            [w["kind"], w["mark"], w["view"]],
            api_visibility="private",
            **light,
        )
        w["add"].click(
            h(add_region),
            [w["name"], w["kind"], w["mark"], w["frame"]],
            [*everything, w["mark"]],
            api_name="add_region",
            **light,
        )
        w["find"].click(
            h(find_region),
            [w["name"], w["mark"], w["on_frame"], w["box_threshold"], w["text_threshold"], w["max_instances"],
             w["start"], w["end"], w["frame"]],
            [*everything, w["mark"]],
            api_name="find_region",
            **model,
        )  # fmt: skip
        w["kind"].change(
            choose_kind,
            [w["kind"]],
            [w["add"], w["find"], w["text_options"], w["mark"]],
            api_visibility="private",
            **light,
        )
        w["remove"].click(
            h(remove_region), [w["remove_pick"], w["frame"]], everything, api_name="remove_region", **light
        )
        span = [w["start"], w["end"], w["stride"]]
        generation = [w["frames"], w["tiling"], w["max_new_tokens"]]
        w["track"].click(h(track), [*span, w["frame"]], everything, api_name="track", **model)
        w["describe"].click(
            h(describe),
            [*span, w["window"], w["frames_per_window"], *generation, w["overlay_on"], w["frame"]],
            everything,
            api_name="describe",
            **model,
        )
        w["ask"].click(
            h(ask), [w["question"], w["options"], *span, *generation, w["frame"]], everything, api_name="ask", **model
        )
        w["question"].submit(
            h(ask),
            [w["question"], w["options"], *span, *generation, w["frame"]],
            everything,
            api_visibility="private",
            **model,
        )
        w["timeline"].select(h(go_to_window), None, [w["frame"]], api_visibility="private", **light)
        w["strip"].select(h(go_to_thumbnail), None, [w["frame"]], api_visibility="private", **light)
        close = gr.Button("Close this video and delete its files", size="sm", elem_id="gv-close")
        close.click(close_session, None, everything, api_name="close_session", **light)

        def end_session(request: gr.Request) -> None:  # the tab was closed: its files go now
            backend.end_session(request.session_hash or "no-session")

        demo.unload(end_session)


def _with_request(fn: Callable) -> tuple[inspect.Signature, dict[str, Any]]:
    hints = typing.get_type_hints(fn)
    # Gradio passes the request where the session was (it inserts special arguments by position).
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    params = [request, *list(inspect.signature(fn).parameters.values())[1:]]
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params]
    annotations = {p.name: p.annotation for p in params if p.annotation is not inspect.Parameter.empty}
    return inspect.Signature(params), annotations


def _reporter(progress: gr.Progress):
    return lambda fraction, what: progress(fraction, desc=what)


def _letter(session: Session) -> str:
    answer = session.answer
    if answer is None or answer.options is None:
        return ""
    return f"{answer.letter}. {answer.choice}" if answer.letter else "(no option letter recognised)"


def _count(value: Any, what: str) -> int:
    from ..errors import InvalidInputError

    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a whole number, got {value!r}") from None
    if number < 1:
        raise InvalidInputError(f"{what} must be at least 1, got {number}")
    return number


def _whole(value: Any) -> Any:
    """A whole number typed in a number field as an int (anything else as given: TextSearch says what is wrong)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _time_text(value: Any, what: str) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    parse_seconds(text)  # the CLI's own check and message
    return text


def _settings(start: Any, end: Any, stride: Any) -> Settings:
    return Settings(
        commands.Span(_time_text(start, "start"), _time_text(end, "end")),
        _count(stride or defaults.STRIDE, "the stride"),
    )


def _generation(frames: Any, tiling: Any, max_new: Any) -> commands.Generation:
    return commands.Generation(
        _count(frames, "frames"), str(tiling or defaults.TILING), _count(max_new, "max new tokens")
    )
