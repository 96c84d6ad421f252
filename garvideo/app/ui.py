"""The page (Gradio Blocks) and its HTTP API: every action is also an endpoint named in ``api_name``.

The page is two columns: the frame (sticky, with its slider and the strip of tracked frames) and the
controls. Handlers are the methods of :class:`Page`; they take their fields as sent (``preprocess=False``)
and read them through :mod:`.fields`. A user mistake is the CLI's one line (``garvideo: error: ...``): API
clients get it as the call's error, the page shows it, escaped, in the status line under the action's
button (Gradio's own toast is not used: it renders HTML). Model work (preview, find, track, describe, ask)
runs one job at a time through :class:`~garvideo.app.jobs.ModelQueue`; each job is a generator that says
"waiting for N jobs" while it waits, then draws what the pipeline's events bring (masks frame by frame,
texts as GAR writes them, progress) where the user is looking.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from .. import defaults
from ..errors import GarvideoError
from ..pipeline import TextSearch
from ..pipeline.events import EventListener, StageProgress
from . import fields, jobs
from . import view as show
from .assets import FRAME_JS, SCROLL_TO_FRAME, STRIP_JS
from .backend import OVERLAY_FILE, THUMBNAILS, Backend
from .live_page import LiveTab
from .regions import REGION_KINDS, TEXT
from .session import LiveRun, Notice, Session

log = logging.getLogger("garvideo.app")

TITLE = "garvideo"
INTRO = (
    "Open a video, scrub to a frame, **drag a box** (or click points) on the object: SAM2's mask shows at once. "
    "Name it and add it (or name it **in words** and let the detector find it); then **Track** (the masks appear "
    "as SAM2 goes), **Describe** or **Ask** about `<name>` (the text appears as GAR writes it). Every run shows the "
    "`garvideo` command that reproduces it."
)

#: The widgets that show a session, in the order every full-page endpoint returns them.
STATE = (
    "details", "facts", "frame", "view", "frame_label", "strip", "upload", "root_pick", "regions", "remove_pick",
    "name", "mark", "track_text", "descriptions", "timeline", "overlay", "answer", "letter", "conversation",
    "conversation_text", "downloads", "command", "open_status", "region_status", "run_status", "ask_status",
)  # fmt: skip
#: What a mark's preview changes (the rest of the page may be in use meanwhile: a name typed, a video opened).
PREVIEWED = ("details", "view", "region_status")
#: The status line each action reports in (by the widget's name).
STATUSES = ("open_status", "region_status", "run_status", "ask_status")
#: The buttons of model work: disabled while a job of the tab runs.
MODEL_BUTTONS = ("find", "track", "describe", "ask")

#: What a running job's progress is called on the page.
_STAGES = {
    "find": "finding: {done} of {total} frames searched",
    "track": "tracking: {done} of {total} frames",
    "describe": "describing: {done} of {total} texts written",
    "answer": "answering",
}


class Widgets:
    """The page's components by name (attributes set as the page is built)."""

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def all(self, names: tuple[str, ...]) -> list[Any]:
        return [getattr(self, n) for n in names]


class Page:
    """Builds the Blocks and answers every event (each handler is a method)."""

    def __init__(self, backend: Backend, model_queue: jobs.ModelQueue | None = None) -> None:
        self.backend = backend
        self.queue = model_queue or backend.model_queue
        self.w = Widgets()
        self.live_tab = LiveTab(self)

    # ================================================================ the page

    def build(self) -> gr.Blocks:
        with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
            gr.Markdown(f"## garvideo — point at regions in a video, read what they do\n{INTRO}")
            with gr.Tabs(elem_id="gv-tabs"):
                with gr.Tab("Video", elem_id="gv-video-tab"):
                    with gr.Row(equal_height=False, elem_id="gv-columns"):
                        with gr.Column(scale=3, elem_id="gv-left"):
                            self._frame_column()
                        with gr.Column(scale=2, elem_id="gv-right"):
                            self._open_group()
                            self._region_group()
                            self._run_group()
                            self._ask_group()
                            self._files_group()
                    with gr.Accordion("details (JSON, as the API returns them)", open=False):
                        self.w.details = gr.JSON(label="details", elem_id="gv-details")
                    self.w.close = gr.Button("Close this video and delete its files", size="sm", elem_id="gv-close")
                with gr.Tab("Live", elem_id="gv-live-tab") as self.live_tab_widget:
                    self.live_tab.build()
            self._wire(demo)
        return demo

    def _frame_column(self) -> None:
        w = self.w
        w.facts = gr.HTML("", elem_id="gv-facts-box")
        w.view = gr.HTML(show.EMPTY_FRAME, js_on_load=FRAME_JS, elem_id="gv-frame")
        w.frame = gr.Slider(0, 1, value=0, step=1, label="frame", interactive=False, elem_id="gv-slider")
        w.frame_label = gr.HTML("", elem_id="gv-frame-label")
        w.strip = gr.HTML("", js_on_load=STRIP_JS, elem_id="gv-strip")

    def _open_group(self) -> None:
        w, root = self.w, self.backend.config.root
        with gr.Group():
            with gr.Row():
                w.upload = gr.File(
                    label="upload a video", type="filepath", file_count="single", height=130, elem_id="gv-upload"
                )
                with gr.Column(visible=root is not None):
                    w.root_pick = gr.Dropdown(
                        label="or open a video under --root",
                        choices=self.backend.root_videos(),
                        value=None,
                        allow_custom_value=True,
                        elem_id="gv-root-pick",
                    )
                    w.open = gr.Button("Open", size="sm", elem_id="gv-open")
            w.open_status = gr.HTML(show.status(None), elem_id="gv-open-status")

    def _region_group(self) -> None:
        w, search = self.w, self.backend.config.text_search
        with gr.Group():
            # One entry per region kind (garvideo.app.regions.REGION_KINDS). A text region is found by the
            # detector: its own options and button show instead of "Add" when it is chosen.
            w.kind = gr.Radio(
                [(k.label, k.key) for k in REGION_KINDS], value=REGION_KINDS[0].key, label="mark a region with",
                elem_id="gv-kind",
            )  # fmt: skip
            with gr.Row():
                w.name = gr.Textbox("region1", label="name", scale=1, elem_id="gv-name")
                w.mark = gr.Textbox(
                    label="mark (pixels, as the CLI's --box / --points)",
                    placeholder="x1,y1,x2,y2   or   x,y;!x,y",
                    scale=2,
                    elem_id="gv-mark",
                )
            with gr.Row(visible=False) as w.text_options:
                w.box_threshold = gr.Number(search.box_threshold, label="box threshold", elem_id="gv-box-threshold")
                w.text_threshold = gr.Number(search.text_threshold, label="text threshold")
                w.max_instances = gr.Number(search.max_instances, label="max instances", precision=0)
                w.on_frame = gr.Checkbox(False, label="on this frame only (else search the video)")
            with gr.Row():
                w.add = gr.Button("Add", variant="primary", size="sm", elem_id="gv-add")
                w.find = gr.Button("Find and add", variant="primary", size="sm", visible=False, elem_id="gv-find")
            w.region_status = gr.HTML(show.status(None), elem_id="gv-region-status")
            w.regions = gr.HTML(show.regions(_empty_session()), elem_id="gv-regions")
            with gr.Row():
                w.remove_pick = gr.Dropdown(
                    label="remove a region (name) or one mark (name@frame)",
                    choices=[],
                    allow_custom_value=True,
                    scale=3,
                    elem_id="gv-remove-pick",
                )
                w.remove = gr.Button("Remove", scale=1, size="sm", elem_id="gv-remove")

    def _run_group(self) -> None:
        w = self.w
        with gr.Accordion("settings", open=False, elem_id="gv-settings"):
            with gr.Row():
                w.start = gr.Textbox("", label="start (4.5 or 1:02.5)", placeholder="video start")
                w.end = gr.Textbox("", label="end", placeholder="video end")
                w.stride = gr.Number(defaults.STRIDE, label="track every N-th frame", precision=0, minimum=1)
            with gr.Row():
                w.window = gr.Number(defaults.WINDOW or 0, label="timeline window (s; 0 = adaptive)", minimum=0)
                w.frames_per_window = gr.Number(
                    defaults.FRAMES_PER_WINDOW, label="frames per window", precision=0, minimum=1
                )
                w.frames = gr.Number(defaults.FRAMES, label="frames (overall, answers)", precision=0, minimum=1)
            with gr.Row():
                w.tiling = gr.Radio(["vanilla", "thumb+tile"], value=defaults.TILING, label="tiling")
                w.max_new_tokens = gr.Number(
                    defaults.MAX_NEW_TOKENS,
                    label=f"max new tokens (at most {defaults.MAX_NEW_TOKENS_LIMIT})",
                    precision=0,
                    minimum=1,
                    maximum=defaults.MAX_NEW_TOKENS_LIMIT,
                    elem_id="gv-max-new",
                )
                w.overlay_on = gr.Checkbox(True, label="draw the overlay video")
        with gr.Group():
            with gr.Row():
                w.track = gr.Button("Track", variant="secondary", elem_id="gv-track")
                w.describe = gr.Button("Describe", variant="primary", elem_id="gv-describe")
            w.run_status = gr.HTML(show.status(None), elem_id="gv-run-status")
            w.track_text = gr.HTML("", elem_id="gv-track-text")
            w.descriptions = gr.HTML("", elem_id="gv-descriptions")
            w.timeline = gr.Dataframe(
                headers=["region", "window", "visible", "description"],
                datatype=["str", "str", "str", "str"],
                interactive=False,
                wrap=True,
                column_widths=["14%", "30%", "10%", "46%"],
                label="timeline (click a window to go there)",
                elem_id="gv-timeline",
            )
            w.overlay = gr.Video(label="overlay video", interactive=False, elem_id="gv-overlay")

    def _ask_group(self) -> None:
        w = self.w
        with gr.Group():
            w.conversation = gr.HTML("", elem_id="gv-conversation")
            w.question = gr.Textbox(
                "", label="question (name regions as <name>)", placeholder="What is <region1> doing?",
                elem_id="gv-question",
            )  # fmt: skip
            w.options = gr.Textbox(
                "", label="options, one per line (optional: makes it multiple choice)", lines=2, elem_id="gv-options"
            )
            w.ask = gr.Button("Ask", elem_id="gv-ask")
            w.ask_status = gr.HTML(show.status(None), elem_id="gv-ask-status")
            with gr.Row():
                w.answer = gr.Textbox(label="latest answer", interactive=False, scale=3, elem_id="gv-answer")
                w.letter = gr.Textbox(label="chosen option", interactive=False, scale=1, elem_id="gv-letter")
            w.conversation_text = gr.Textbox(
                label="the conversation as text (with the command of each answer)",
                interactive=False,
                lines=3,
                buttons=["copy"],
                elem_id="gv-conversation-text",
            )

    def _files_group(self) -> None:
        w = self.w
        w.downloads = gr.File(label="downloads", file_count="multiple", interactive=False, elem_id="gv-downloads")
        w.command = gr.Code(
            label="the same run from the command line", language="shell", lines=3, interactive=False,
            elem_id="gv-command",
        )  # fmt: skip

    # ================================================================ what the widgets show

    def state(self, session: Session, index: Any, only: tuple[str, ...] = STATE) -> dict[Any, Any]:
        """Every widget that shows session state (or ``only`` those), as it should be now."""
        video = session.video
        n = video.info.num_frames if video else 1
        index = min(max(int(index or 0), 0), n - 1)
        values = {
            "details": show.summary(session),
            "facts": show.facts(session),
            "frame": gr.Slider(minimum=0, maximum=max(n - 1, 1), value=index, step=1, interactive=video is not None),
            "view": self._frame(session, index),
            "frame_label": show.frame_label(session, index),
            "strip": show.strip(session.thumbnails),
            "upload": None,
            "root_pick": gr.Dropdown(choices=self.backend.root_videos(), value=_picked(session)),
            "regions": show.regions(session),
            "remove_pick": gr.Dropdown(choices=show.removable(session), value=None),
            "name": self.backend.next_name(session),
            "mark": session.draft.body if session.draft is not None else "",
            "track_text": show.tracks(session),
            "descriptions": show.descriptions(session),
            "timeline": show.timeline_rows(session),
            "overlay": str(session.files[OVERLAY_FILE]) if OVERLAY_FILE in session.files else None,
            "answer": session.answer.text if session.answer else "",
            "letter": session.conversation[-1].letter if session.conversation else "",
            "conversation": show.conversation(session),
            "conversation_text": show.conversation_text(session),
            "downloads": [str(session.files[k]) for k in sorted(session.files)] or None,
            "command": "\n".join(session.commands[k] for k in ("track", "describe", "ask") if k in session.commands),
            **{name: show.status(session.notices.get(name)) for name in STATUSES},
        }
        return {self.w[name]: values[name] for name in only}

    def _frame(self, session: Session, index: int, live: bool = False) -> str:
        if session.video is None:
            return show.EMPTY_FRAME
        return show.frame_html(self.backend.frame_view(session, index, live), live)

    # ================================================================ plumbing

    def _key(self, request: gr.Request) -> str:
        return request.session_hash or "no-session"

    @contextlib.contextmanager
    def _acting(self, request: gr.Request, status: str) -> Iterator[Session]:
        """The caller's session for one quick action; a mistake becomes the CLI's line, under ``status``."""
        try:
            with self.backend.using(self._key(request)) as session:
                session.notices.pop(status, None)
                yield session
        except Exception as exc:
            raise self._failure(request, status, exc) from exc

    def _failure(self, request: gr.Request, status: str, exc: BaseException) -> gr.Error:
        """The error an action raises: the CLI's line for API clients, also put in the page's status line."""
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, GarvideoError):
            line = f"garvideo: error: {exc}"
        else:  # a bug: keep serving, say so, log the traceback
            log.error("garvideo app: unexpected error\n%s", traceback.format_exc())
            line = f"garvideo: internal error: {type(exc).__name__}: {exc}"
        line = " ".join(line.split())  # one line, whatever the message held
        session = self.backend.existing(self._key(request))  # a tab closed meanwhile gets no new session
        if session is not None:
            with session.lock:
                session.notices[status] = Notice("error", line)
        return gr.Error(line, title="garvideo", print_exception=False, visible=False)

    # ================================================================ quick actions

    def open_upload(self, request: gr.Request, upload: Any):
        with self._acting(request, "open_status") as session:
            self.backend.open_upload(session, fields.upload(upload))
            return self.state(session, 0)

    def open_path(self, request: gr.Request, relative: Any):
        with self._acting(request, "open_status") as session:
            self.backend.open_root_file(session, fields.text(relative, "the path"))
            return self.state(session, 0)

    def refresh_videos(self, request: gr.Request):
        with self._acting(request, "open_status") as session:
            return gr.Dropdown(choices=self.backend.root_videos(), value=_picked(session))

    def seek(self, request: gr.Request, index: Any):
        with self._acting(request, "region_status") as session:
            index = fields.frame(index)
            return {self.w.view: self._frame(session, index), self.w.frame_label: show.frame_label(session, index)}

    def summary(self, request: gr.Request):
        with self._acting(request, "region_status") as session:
            return show.summary(session)

    def on_box(self, request: gr.Request, name: Any, index: Any, evt: gr.EventData):
        box = getattr(evt, "box", None)
        if not isinstance(box, list) or len(box) != 4:
            raise gr.Error("garvideo: error: a drawn box is four numbers", visible=False)
        mark = ",".join(str(fields.whole(v, "a drawn box's corner", -(2**20), 2**20)) for v in box)
        return self._drafted(request, name, "box", mark, index)

    def on_point(self, request: gr.Request, name: Any, kind: Any, body: Any, index: Any, evt: gr.EventData):
        x = fields.whole(getattr(evt, "x", None), "a click's x", -(2**20), 2**20)
        y = fields.whole(getattr(evt, "y", None), "a click's y", -(2**20), 2**20)
        click = f"{'!' if getattr(evt, 'background', False) is True else ''}{x},{y}"
        body = fields.text(body, "the mark").strip()
        body = f"{body};{click}" if kind == "points" and body else click
        return self._drafted(request, name, "points", body, index)

    def typed(self, request: gr.Request, name: Any, kind: Any, body: Any, index: Any):
        if kind == TEXT.key:
            return {}
        return self._drafted(request, name, fields.choice(kind, "the kind", ("box", "points")), body, index)

    def _drafted(self, request: gr.Request, name: Any, kind: str, body: Any, index: Any):
        """The mark drawn or typed, not added yet: shown on the frame (its mask follows from the preview)."""
        with self._acting(request, "region_status") as session:
            index = fields.frame(index)
            name = fields.text(name, "the name")
            draft = self.backend.draft(session, name, kind, fields.text(body, "the mark"), index)
            if draft is not None:
                session.name = draft.name
                if draft.warning:
                    session.notices["region_status"] = Notice("warning", f"garvideo: warning: {draft.warning}")
            return {
                self.w.kind: kind,
                self.w.mark: draft.body if draft is not None else fields.text(body, "the mark"),
                self.w.view: self._frame(session, index),
                self.w.region_status: show.status(session.notices.get("region_status")),
            }

    def add_region(self, request: gr.Request, name: Any, kind: Any, mark: Any, index: Any):
        with self._acting(request, "region_status") as session:
            added = self.backend.add_mark(
                session,
                fields.text(name, "the name"),
                fields.choice(kind, "the kind", [k.key for k in REGION_KINDS]),
                fields.text(mark, "the mark"),
                fields.frame(index),
            )
            if added.warning:
                session.notices["region_status"] = Notice("warning", f"garvideo: warning: {added.warning}")
            return self.state(session, index)

    def remove_region(self, request: gr.Request, label: Any, index: Any):
        with self._acting(request, "region_status") as session:
            index, label = fields.frame(index), fields.text(label, "the region to remove")
            self.backend.remove_mark(session, label)
            return self.state(session, index)

    def choose_kind(self, kind: Any):
        text = kind == TEXT.key
        return {
            self.w.add: gr.Button(visible=not text),
            self.w.find: gr.Button(visible=text),
            self.w.text_options: gr.Row(visible=text),
            self.w.mark: gr.Textbox(
                label="phrase (as the CLI's --text)" if text else "mark (pixels, as the CLI's --box / --points)",
                placeholder=TEXT.placeholder if text else "x1,y1,x2,y2   or   x,y;!x,y",
            ),
        }

    def go_to_window(self, request: gr.Request, evt: gr.SelectData):
        with self._acting(request, "run_status") as session:
            result = session.described
            if result is None or session.video is None:
                return {}
            windows = [win for t in result.regions for win in t.windows]
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            start = windows[fields.whole(row, "the window", 0, len(windows) - 1)].start
            return {self.w.frame: gr.Slider(value=session.video.reader.time_to_index(start))}

    def go_to_thumbnail(self, request: gr.Request, evt: gr.EventData):
        with self._acting(request, "run_status") as session:
            if session.video is None:
                return {}
            index = fields.whole(
                getattr(evt, "frame", None), "the thumbnail's frame", 0, session.video.info.num_frames - 1
            )
            return {self.w.frame: gr.Slider(value=index)}

    def close_session(self, request: gr.Request):
        self.backend.end_session(self._key(request))
        # The empty page, without starting a new session (and a folder) until the next action.
        return self.state(_empty_session(), 0)

    def end_session(self, request: gr.Request) -> None:  # the tab was closed: its files go now
        self.backend.end_session(self._key(request))

    def _buttons(self, enabled: bool) -> dict[Any, Any]:
        """The model buttons: off while a job of this tab runs."""
        return {self.w[b]: gr.Button(interactive=enabled) for b in MODEL_BUTTONS}

    # ================================================================ model jobs

    def preview(self, request: gr.Request, name: Any, kind: Any, mark: Any, index: Any):
        """SAM2's mask of the mark not added yet, on its frame (nothing to do without a drawn mark)."""

        def prepare(session: Session):
            name_, body = fields.text(name, "the name"), fields.text(mark, "the mark")
            if kind == TEXT.key or not body.strip():
                session.draft = None  # words are found, not previewed; no mark, nothing to show
                return None
            kind_ = fields.choice(kind, "the kind", ("box", "points"))
            # strict: a mark that cannot be read gets the CLI's message
            draft = self.backend.draft(session, name_, kind_, body, fields.frame(index), strict=True)
            return (
                None if draft is None or draft.key in session.previews else self.backend.prepare_preview(session, draft)
            )

        yield from self._job(request, "region_status", "preview", prepare, index, only=PREVIEWED)

    def find_region(
        self, request: gr.Request, name, phrase, on_frame, box_threshold, text_threshold, max_instances, start, end,
        index,
    ):  # fmt: skip
        def prepare(session: Session):
            search = TextSearch(
                box_threshold=fields.number(box_threshold, "the box threshold", 0.0, 1.0),
                text_threshold=fields.number(text_threshold, "the text threshold", 0.0, 1.0),
                max_instances=fields.whole(max_instances, "max instances", 1, defaults.MAX_INSTANCES_LIMIT),
                every=self.backend.config.text_search.every,
            )
            span = fields.settings(start, end, 1).span
            frame = fields.frame(index) if fields.flag(on_frame, "on this frame only") else None
            name_, phrase_ = fields.text(name, "the name"), fields.text(phrase, "the phrase")
            return self.backend.prepare_find(session, name_, phrase_, frame, search, span)

        yield from self._job(request, "region_status", "find", prepare, index, go_to_found=True)

    def track(self, request: gr.Request, start, end, stride, index):
        def prepare(session: Session):
            return self.backend.prepare_track(session, fields.settings(start, end, stride))

        yield from self._job(request, "run_status", "track", prepare, index)

    def describe(
        self, request: gr.Request, start, end, stride, window, per_window, frames, tiling, max_new, overlay_on, index
    ):
        def prepare(session: Session):
            return self.backend.prepare_describe(
                session,
                fields.settings(start, end, stride),
                fields.window(window),
                fields.whole(per_window, "frames per window", 1, fields.MAX_FRAMES, default=defaults.FRAMES_PER_WINDOW),
                fields.generation(frames, tiling, max_new),
                fields.flag(overlay_on if overlay_on is not None else True, "draw the overlay video"),
            )

        yield from self._job(request, "run_status", "describe", prepare, index)

    def ask(self, request: gr.Request, question, options, start, end, stride, frames, tiling, max_new, index):
        def prepare(session: Session):
            return self.backend.prepare_ask(
                session,
                fields.settings(start, end, stride),
                fields.text(question, "the question", fields.MAX_QUESTION),
                fields.text(options, "the options", fields.MAX_QUESTION).splitlines(),
                fields.generation(frames, tiling, max_new),
            )

        yield from self._job(request, "ask_status", "ask", prepare, index)

    def _job(
        self,
        request: gr.Request,
        status: str,
        action: str,
        prepare: Callable[[Session], Callable[[EventListener], Any] | None],
        index: Any,
        go_to_found: bool = False,
        only: tuple[str, ...] = STATE,
    ):
        """A model job: checked at once, then queued (saying how many jobs are ahead), then run while the page
        shows what its events bring, and finally the whole page. (No lock is held across a ``yield``: Gradio
        may run each step of a generator in another thread.)"""
        with self._acting(request, status) as session:
            index = fields.frame(index)  # every field is checked before anything is done
            uses_marks = action != "preview"  # a preview reads only its own mark: other work may go on
            if uses_marks:
                self.backend.check_idle(session, f"start a {action}")
            work = prepare(session)
            nothing = None if work is not None else self.state(session, index, only)
            if work is not None:
                session.busy += 1
                if uses_marks:
                    session.running, session.live = action, LiveRun(action)
        if nothing is not None:
            yield nothing
            return
        ticket = self.queue.join()
        try:
            yield from self._wait_turn(session, ticket, status)
            result = yield from self._run(session, action, work, status, index)
            with session.lock:
                session.notices[status] = _finished(session, action, result, session.notices.get(status))
                _forget_live(session)
                final = self.state(session, result.frame if go_to_found else index, only)
            yield final
        except Exception as exc:
            raise self._failure(request, status, exc) from exc
        finally:
            self.queue.leave(ticket)
            with session.lock:
                session.busy -= 1
                if uses_marks:
                    _forget_live(session)
                    session.running = None

    def _wait_turn(self, session: Session, ticket: object, status: str):
        while self.queue.wait(ticket, jobs.REFRESH_S) > 0:
            with session.lock:
                session.notices[status] = Notice("busy", self.queue.waiting(ticket))
                shown = {self.w[status]: show.status(session.notices[status])}
            yield shown

    def _run(self, session: Session, action: str, work: Callable[[EventListener], Any], status: str, index: int):
        """Run ``work``; between its events draw what they brought. Returns what ``work`` returned."""
        with session.lock:
            session.notices[status] = Notice("busy", f"{action}: starting")
            shown = {self.w[status]: show.status(session.notices[status])}
        yield shown
        runner = jobs.stream(work)
        while True:
            try:
                batch = next(runner)
            except StopIteration as finished:
                return finished.value
            with session.lock:
                run = session.live
                if run is None:  # a preview: one frame, drawn when done
                    continue
                for event in batch:
                    run.hear(event)
                session.notices[status] = _progress_notice(action, run.progress)
                shown = self._live(session, run, status, index)
            yield shown

    def _live(self, session: Session, run: LiveRun, status: str, index: int) -> dict[Any, Any]:
        """What changes on the page while a job runs: masks of the frame tracked last, texts so far, progress."""
        out: dict[Any, Any] = {self.w[status]: show.status(session.notices.get(status))}
        if run.last_frame is not None:
            out[self.w.view] = self._frame(session, run.last_frame, live=True)
            out[self.w.frame_label] = show.live_label(session, run)
            out[self.w.strip] = self._live_strip(session, run)
        if run.texts:
            out[self.w.descriptions] = show.descriptions(session)
            out[self.w.conversation] = show.conversation(session)
        return out

    def _live_strip(self, session: Session, run: LiveRun) -> str:
        """The strip while tracking: per eighth of the video, the frame tracked last in it, with its masks."""
        video = session.require_video()
        n = video.info.num_frames
        for index in sorted(run.frames):
            slot = index * THUMBNAILS // n
            if slot not in run.strip or run.strip[slot].frame != index:
                frame = video.reader.frame(index)
                run.strip[slot] = self.backend.thumbnail(session, index, frame.image, frame.time, live=True)
        return show.strip([run.strip[slot] for slot in sorted(run.strip)])

    # ================================================================ wiring

    def _wire(self, demo: gr.Blocks) -> None:
        # API endpoints are events of a button the page never shows (they raise the CLI's line); the page's
        # own events (private) never fail: they show what went wrong in the action's status line instead.
        self.api_only = gr.Button(visible=False)
        self._wire_quick()
        self._wire_marks()
        self._wire_jobs()
        self.live_tab.wire(self.live_tab_widget)
        demo.unload(self.end_session)

    def _action(
        self, triggers, fn, inputs, outputs, status: str | None, api_name: str | None = None, clear=(), **options
    ):
        """One action: an API endpoint (when named) and the page's events for it; returns the page's last event."""
        common = {"show_progress": "hidden", "concurrency_limit": None, "preprocess": False}
        buttons = self.w.all(MODEL_BUTTONS)
        if api_name is not None:
            self.api_only.click(fn, inputs, [o for o in outputs if o not in buttons], api_name=api_name, **common,
                                **options)  # fmt: skip
        page = _forgiving(self, fn, status, buttons=any(o in buttons for o in outputs), clear=tuple(clear))
        dep = None
        for trigger in triggers:
            dep = trigger(page, inputs, outputs, api_visibility="private", **common, **options)
        return dep

    def _wire_quick(self) -> None:
        w, everything = self.w, self.w.all(STATE)
        self._action(
            [w.upload.upload], self.open_upload, [w.upload], everything, "open_status", "open_upload", clear=[w.upload]
        )
        self._action([w.open.click], self.open_path, [w.root_pick], everything, "open_status", "open_path")
        self._action([w.root_pick.focus], self.refresh_videos, None, [w.root_pick], None)
        self._action(
            [w.frame.change], self.seek, [w.frame], [w.view, w.frame_label, w.region_status], "region_status", "seek",
            trigger_mode="always_last",
        )  # fmt: skip
        self._action([w.close.click], self.close_session, None, everything, None, "close_session")
        self._action([], self.summary, None, [w.details], None, "summary")
        for select, fn in ((w.timeline.select, self.go_to_window), (w.strip.pick, self.go_to_thumbnail)):
            self._action([select], fn, None, [w.frame, w.run_status], "run_status").then(None, js=SCROLL_TO_FRAME)

    def _wire_marks(self) -> None:
        w, everything, previewed = self.w, self.w.all(STATE), self.w.all(PREVIEWED)
        drafted = [w.kind, w.mark, w.view, w.region_status]
        mark = [w.name, w.kind, w.mark, w.frame]
        for trigger, fn, inputs in (
            (w.view.box, self.on_box, [w.name, w.frame]),
            (w.view.point, self.on_point, mark),
            (w.mark.submit, self.typed, mark),
            (w.mark.blur, self.typed, mark),
        ):
            dep = self._action([trigger], fn, inputs, drafted, "region_status")
            # then SAM2's mask of it (a model job: queued, and the latest drawing wins)
            dep.success(_forgiving(self, self.preview, "region_status"), mark, previewed, api_visibility="private",
                        show_progress="hidden", concurrency_limit=None, preprocess=False, trigger_mode="always_last")  # fmt: skip
        self._action([], self.preview, mark, previewed, "region_status", "preview")
        self._action([w.add.click], self.add_region, mark, everything, "region_status", "add_region")
        remove = [w.remove_pick, w.frame]
        self._action([w.remove.click], self.remove_region, remove, everything, "region_status", "remove_region")
        w.kind.change(
            self.choose_kind, [w.kind], [w.add, w.find, w.text_options, w.mark], api_visibility="private",
            show_progress="hidden", concurrency_limit=None,
        )  # fmt: skip

    def _wire_jobs(self) -> None:
        w = self.w
        span, generation = [w.start, w.end, w.stride], [w.frames, w.tiling, w.max_new_tokens]
        find = [w.name, w.mark, w.on_frame, w.box_threshold, w.text_threshold, w.max_instances, w.start, w.end, w.frame]
        describe = [*span, w.window, w.frames_per_window, *generation, w.overlay_on, w.frame]
        ask = [w.question, w.options, *span, *generation, w.frame]
        outputs = [*self.w.all(STATE), *self.w.all(MODEL_BUTTONS)]
        self._action([w.find.click], self.find_region, find, outputs, "region_status", "find_region")
        self._action([w.track.click], self.track, [*span, w.frame], outputs, "run_status", "track")
        self._action([w.describe.click], self.describe, describe, outputs, "run_status", "describe")
        self._action([w.ask.click, w.question.submit], self.ask, ask, outputs, "ask_status", "ask")


def _forgiving(page: Page, fn: Callable, status: str | None, buttons: bool = False, clear: tuple = ()) -> Callable:
    """``fn`` as the page calls it: a failure shows in the action's status line (Gradio would mark every output
    "Error" and toast the message as HTML), and empties the ``clear`` widgets. ``buttons``: the model buttons are
    off while it runs."""

    def failed(request: gr.Request) -> dict[Any, Any]:
        session = page.backend.existing(page._key(request))
        if status is None or session is None:
            return {}
        with session.lock:
            return {page.w[status]: show.status(session.notices.get(status))} | {c: None for c in clear}

    if inspect.isgeneratorfunction(fn):

        def run_job(request: gr.Request, *args):
            if buttons:
                yield page._buttons(enabled=False)
            try:
                yield from fn(request, *args)
            except gr.Error:
                yield failed(request)
            if buttons:
                yield page._buttons(enabled=True)

        run = run_job
    else:

        def run_quick(request: gr.Request, *args):
            try:
                return fn(request, *args)
            except gr.Error:
                return failed(request)

        run = run_quick
    # Gradio reads the request and event data from the signature and its type hints: give it fn's.
    run.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    run.__annotations__ = dict(getattr(fn, "__annotations__", {}))
    return run


def _empty_session() -> Session:
    return Session(key="", folder=Path(os.devnull))


def _picked(session: Session) -> str | None:
    """The --root video the session has open, as it was picked (None for an upload or none)."""
    return session.video.picked if session.video is not None else None


def _progress_notice(action: str, progress: StageProgress | None) -> Notice:
    if progress is None:
        return Notice("busy", f"{action}: starting")
    text = _STAGES.get(progress.stage, progress.stage).format(done=progress.done, total=progress.total or "?")
    return Notice("busy", text, progress.done, progress.total)


def _forget_live(session: Session) -> None:
    """The job is over: what it drew while it ran goes."""
    session.live = None


def _finished(session: Session, action: str, result: Any, shown: Notice | None) -> Notice | None:
    """What a finished job's status line says. A preview keeps its mark's warning, and says nothing once its
    mark was added or redrawn meanwhile (the line then says what that did)."""
    if action != "preview":
        return Notice("done", _done_text(action, result))
    draft = session.draft
    if draft is None or session.previews.get(draft.key) is not result:
        return shown if shown is None or shown.kind != "busy" else None
    done = _done_text(action, result)
    return Notice("warning", f"{done} · garvideo: warning: {draft.warning}") if draft.warning else Notice("done", done)


def _done_text(action: str, result: Any) -> str:
    if action == "track":
        return f"tracked {len(result.tracks)} region(s) over {len({f.index for t in result.tracks for f in t.frames})} frames"
    if action == "describe":
        return f"described {len(result.regions)} region(s)"
    if action == "ask":
        return f"answered question {result.number}"
    if action == "find":
        return f"found {result.body!r} on frame {result.frame}"
    return f"SAM2's mask on frame {result.index}" + ("" if result.visible else ": empty (nothing found there)")
