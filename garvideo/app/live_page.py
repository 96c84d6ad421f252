"""The Live tab (Gradio) and its API: open a stream, see it tracked, mark regions on it, read what GAR says.

The tab's handlers are the methods of :class:`LiveTab`; they use the page's plumbing (:class:`~garvideo.app.ui.Page`:
the caller's session, the one-line errors, the API endpoints) and the app's :class:`~garvideo.app.live.LiveRoom`.
The live picture asks for its next frame once the last one is on screen (``next``, a custom event of its own
script), so frames reach the browser as fast as tracking gives them and never faster than it draws them; the
server keeps only the newest frame, so nothing queues. Marks are drawn on it with the Video tab's mouse mapping
(the same script) and take effect on the next frame tracked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from .. import defaults
from ..tracking.marks import free_names
from . import fields, jobs
from . import live_view as shown
from . import view as show
from .assets import FRAME_JS, LIVE_JS
from .live import LiveStream
from .live_feed import FeedSnapshot
from .regions import make_mark, text_prompt
from .session import AppError, Notice, Session

if TYPE_CHECKING:
    from .ui import Page

#: The widgets that show the live session, in the order every full live endpoint returns them.
LIVE_STATE = (
    "live_details", "live_picture", "live_where", "live_regions", "live_remove_pick", "live_texts",
    "live_conversation", "live_log", "live_name", "live_status", "live_mark_status", "live_ask_status",
)  # fmt: skip
#: Which of the feed's changes each widget shows (the picture and the status line change with every frame).
SHOWS = {
    "live_regions": "regions", "live_remove_pick": "regions", "live_texts": "texts",
    "live_conversation": "turns", "live_log": "log",
}  # fmt: skip
#: How long a request for the next frame waits for one (the page asks again at once when it gets none).
NEXT_WAIT_S = 2.0
#: The status a frame refresh reports its (unlikely) mistakes in: never shown, so it clears nothing.
_REFRESH = "live_refresh"
#: Region kinds on the Live tab: drawn on the picture, or named in words (searched again and again).
KINDS = [("box (drag on the picture)", "box"), ("clicks (click; shift-click = background)", "points"),
         ("words (the detector finds every instance)", "text")]  # fmt: skip


class LiveTab:
    """Builds the Live tab inside the page and answers its events."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.backend = page.backend
        self.room = page.backend.live
        self.w = page.w

    # ================================================================ the tab

    def build(self) -> None:
        w = self.w
        with gr.Row(equal_height=False, elem_id="gv-live-columns"):
            with gr.Column(scale=3, elem_id="gv-live-left"):
                w.live_picture = gr.HTML(shown.EMPTY_LIVE, js_on_load=FRAME_JS + LIVE_JS, elem_id="gv-live-frame")
                w.live_where = gr.HTML("", elem_id="gv-live-where")
                w.live_texts = gr.HTML("", elem_id="gv-live-texts")  # the descriptions, beside what they describe
                w.live_log = gr.HTML("", elem_id="gv-live-log")
            with gr.Column(scale=2, elem_id="gv-live-right"):
                self._source_group()
                self._mark_group()
                self._ask_group()
        with gr.Accordion("live details (JSON, as the API returns them)", open=False):
            w.live_details = gr.JSON(label="live details", elem_id="gv-live-details")
        w.live_after = gr.Number(-1, visible=False, precision=0)  # /live_frame's argument

    def _source_group(self) -> None:
        w = self.w
        with gr.Group():
            w.live_source = gr.Textbox(
                label="stream URL, device or file under --root",
                placeholder="rtsp://camera.local/stream   udp://127.0.0.1:1234   https://host/live.m3u8",
                elem_id="gv-live-source",
            )
            with gr.Row():
                w.live_open = gr.Button("Open", variant="primary", size="sm", elem_id="gv-live-open")
                w.live_stop = gr.Button("Stop", variant="stop", size="sm", elem_id="gv-live-stop")
            w.live_status = gr.HTML(show.status(None), elem_id="gv-live-status")
        with gr.Accordion("live settings", open=False, elem_id="gv-live-settings"):
            with gr.Row():
                w.live_window = gr.Number(
                    defaults.LIVE_WINDOW, label="describe every (s)", minimum=0.1, elem_id="gv-live-window"
                )
                w.live_frames_per_window = gr.Number(
                    defaults.FRAMES_PER_WINDOW, label="frames per description", precision=0, minimum=1
                )
                w.live_max_new = gr.Number(
                    defaults.MAX_NEW_TOKENS, label="max new tokens", precision=0, minimum=1, elem_id="gv-live-max-new"
                )
            with gr.Row():
                w.live_max_instances = gr.Number(
                    defaults.LIVE_MAX_INSTANCES, label="instances per phrase", precision=0, minimum=1
                )
                w.live_search_every = gr.Number(defaults.LIVE_SEARCH_EVERY, label="search phrases every (s)")
                w.live_keep_all = gr.Checkbox(False, label="never drop a frame (files, pipes)")

    def _mark_group(self) -> None:
        w = self.w
        with gr.Group():
            w.live_kind = gr.Radio(KINDS, value="box", label="mark a region with", elem_id="gv-live-kind")
            with gr.Row():
                w.live_name = gr.Textbox("region1", label="name", scale=1, elem_id="gv-live-name")
                w.live_mark = gr.Textbox(
                    label="mark (as the CLI's --box / --points / --text), or draw it on the picture",
                    placeholder="x1,y1,x2,y2   or   x,y;!x,y   or   a person",
                    scale=2,
                    elem_id="gv-live-mark",
                )
            w.live_add = gr.Button("Mark", size="sm", elem_id="gv-live-add")
            w.live_mark_status = gr.HTML(show.status(None), elem_id="gv-live-mark-status")
            w.live_regions = gr.HTML(shown.regions(None), elem_id="gv-live-regions")
            with gr.Row():
                w.live_remove_pick = gr.Dropdown(
                    label="remove a region", choices=[], allow_custom_value=True, scale=3, elem_id="gv-live-remove-pick"
                )
                w.live_remove = gr.Button("Remove", scale=1, size="sm", elem_id="gv-live-remove")

    def _ask_group(self) -> None:
        w = self.w
        with gr.Group():
            w.live_conversation = gr.HTML("", elem_id="gv-live-conversation")
            with gr.Row():
                w.live_question = gr.Textbox(
                    "", label="question (name regions as <name>)", placeholder="What is <region1> doing?", scale=3,
                    elem_id="gv-live-question",
                )  # fmt: skip
                w.live_last = gr.Number(
                    defaults.LIVE_ASK_LAST_S, label="about the last (s)", scale=1, elem_id="gv-live-last"
                )
            w.live_options = gr.Textbox("", label="options, one per line (optional)", lines=2)
            w.live_ask = gr.Button("Ask", elem_id="gv-live-ask")
            w.live_ask_status = gr.HTML(show.status(None), elem_id="gv-live-ask-status")

    # ================================================================ what the widgets show

    def state(self, session: Session, changed_only: bool = False) -> dict[Any, Any]:
        """Every live widget as it should be now (``changed_only``: the picture, the status line and what changed
        since the page was last sent the feed)."""
        stream = self.room.stream(session.key)
        snapshot = stream.snapshot() if stream is not None else None
        return self._shown(session, stream, snapshot, changed_only)

    def _shown(
        self, session: Session, stream: LiveStream | None, snapshot: FeedSnapshot | None, changed_only: bool
    ) -> dict[Any, Any]:
        status = session.notices.get("live_status") or shown.notice(stream, snapshot)
        if stream is None and self.room.busy_elsewhere(session.key):
            status = Notice("busy", "a live session is running in another tab (one at a time per app)")
        values = {
            "live_details": lambda: shown.summary(stream, snapshot),
            "live_picture": lambda: self._picture(stream, snapshot),
            "live_where": lambda: shown.where(snapshot),
            "live_regions": lambda: shown.regions(snapshot),
            "live_remove_pick": lambda: gr.Dropdown(choices=shown.removable(snapshot), value=None),
            "live_texts": lambda: shown.texts(snapshot),
            "live_conversation": lambda: shown.conversation(snapshot),
            "live_log": lambda: shown.log(snapshot, stream),
            "live_name": lambda: self._name(stream, snapshot),
            "live_status": lambda: show.status(status),
            "live_mark_status": lambda: show.status(session.notices.get("live_mark_status")),
            "live_ask_status": lambda: show.status(session.notices.get("live_ask_status")),
        }
        names = list(LIVE_STATE)
        if changed_only and stream is not None and snapshot is not None:
            news = {k for k, v in snapshot.versions.items() if stream.sent.get(k) != v}
            names = ["live_picture", "live_where", "live_status", *(n for n, key in SHOWS.items() if key in news)]
            if news - {"frame"}:
                names.append("live_details")
        if stream is not None and snapshot is not None:
            stream.sent = dict(snapshot.versions)
        return {self.w[name]: values[name]() for name in names}

    def _picture(self, stream: LiveStream | None, snapshot: FeedSnapshot | None) -> str:
        """The newest frame drawn (once per frame), in a panel that differs from the last one sent (``tick``), so
        the page always sees a change and asks for the next frame."""
        if stream is None or snapshot is None:
            return shown.EMPTY_LIVE
        url = None
        frame = snapshot.frame
        if frame is not None:
            if stream.rendered is None or stream.rendered[0] != frame.seq:
                stream.rendered = (frame.seq, shown.draw(frame, snapshot.names))
            url = stream.rendered[1]
        stream.tick += 1
        return shown.picture(stream, snapshot, url, stream.tick)

    @staticmethod
    def _name(stream: LiveStream | None, snapshot: FeedSnapshot | None) -> str:
        if stream is not None and stream.name:
            return stream.name
        return next(free_names(set(snapshot.names) if snapshot is not None else set()))

    def _stream(self, session: Session) -> LiveStream:
        stream = self.room.stream(session.key)
        if stream is None:
            raise AppError("no live session runs in this tab: open a stream first")
        return stream

    # ================================================================ opening and stopping

    def open(self, request: gr.Request, source, window, per_window, max_new, max_instances, every, keep_all):
        """Open a stream: checked at once, then queued behind the model jobs before it, then started."""
        config = self.backend.config
        with self.page._acting(request, "live_status") as session:
            chosen = fields.live_source(source, config.root, config.root_arg, config.live_devices)
            options = fields.live_options(window, per_window, max_new, max_instances, every, keep_all)
            stream = self.room.reserve(session.key, chosen, options)
        started = False
        try:
            while stream.active and self.page.queue.wait(stream.ticket, jobs.REFRESH_S) > 0:
                yield {self.w.live_status: show.status(Notice("busy", self.page.queue.waiting(stream.ticket)))}
            stream.start(self.backend.pipeline, config.text_search)
            started = True
        except Exception as exc:
            raise self.page._failure(request, "live_status", exc) from exc
        finally:
            if not started:  # refused, failed, or its tab went away while it waited: its place goes
                stream.stop()
        with session.lock:  # (no lock is held across a yield: Gradio may run each step in another thread)
            opened = self.state(session)
        yield opened

    def stop(self, request: gr.Request):
        with self.page._acting(request, "live_status") as session:
            stream = self.room.stream(session.key)
        if stream is not None:
            stream.stop()  # outside the session's lock: the last window is described first
        with session.lock:
            return self.state(session)

    def frame(self, request: gr.Request, after: Any):
        """``/live_frame``: the live widgets once a frame newer than ``after`` (a ``seq``) was tracked, or anything
        else changed, or after a short wait."""
        return self._refresh(request, fields.whole(after, "the frame shown", -1, 2**62, default=-1), False)

    def on_next(self, request: gr.Request, evt: gr.EventData):
        """The page has drawn its frame and asks for the next one."""
        return self._refresh(request, fields.whole(getattr(evt, "after", -1), "the frame shown", -1, 2**62), True)

    def _refresh(self, request: gr.Request, after: int, changed_only: bool):
        with self.page._acting(request, _REFRESH) as session:
            stream = self.room.stream(session.key)
        try:
            snapshot = stream.feed.wait_newer(after, NEXT_WAIT_S) if stream is not None else None
            with session.lock:
                return self._shown(session, stream, snapshot, changed_only)
        except Exception as exc:
            raise self.page._failure(request, _REFRESH, exc) from exc

    def on_select(self, request: gr.Request):
        """The tab was chosen: say whether another tab's live session holds the room."""
        with self.page._acting(request, _REFRESH) as session:
            return self.state(session)

    # ================================================================ regions and questions

    def mark(self, request: gr.Request, name: Any, kind: Any, body: Any):
        """``/live_mark``: a region marked, or corrected, from the next frame tracked (a box, clicks or words)."""
        with self.page._acting(request, "live_mark_status") as session:
            stream = self._stream(session)
            name = fields.text(name, "the name")
            kind = fields.choice(kind, "the kind", ("box", "points", "text"))
            body = fields.text(body, "the mark")
            stream.name = name.strip()
            self._mark(session, stream, name, kind, body)
            return self.state(session)

    def on_box(self, request: gr.Request, name: Any, evt: gr.EventData):
        box = getattr(evt, "box", None)
        if not isinstance(box, list) or len(box) != 4:
            raise gr.Error("garvideo: error: a drawn box is four numbers", visible=False)
        body = ",".join(str(fields.whole(v, "a drawn box's corner", -(2**20), 2**20)) for v in box)
        return {**self.mark(request, name, "box", body), self.w.live_mark: body, self.w.live_kind: "box"}

    def on_point(self, request: gr.Request, name: Any, evt: gr.EventData):
        x = fields.whole(getattr(evt, "x", None), "a click's x", -(2**20), 2**20)
        y = fields.whole(getattr(evt, "y", None), "a click's y", -(2**20), 2**20)
        body = f"{'!' if getattr(evt, 'background', False) is True else ''}{x},{y}"
        return {**self.mark(request, name, "points", body), self.w.live_mark: body, self.w.live_kind: "points"}

    def _mark(self, session: Session, stream: LiveStream, name: str, kind: str, body: str) -> None:
        live = stream.running_session()
        corrected = name.strip() in {row.name for row in stream.snapshot().regions}
        if kind == "text":
            prompt = text_prompt(name, body, None)
            if not prompt.text:
                raise AppError(f'type the words that name {prompt.name!r} (as the CLI\'s --text NAME="a red car")')
            self.backend.pipeline.detector  # noqa: B018 - loaded now: a missing detector is this request's error
            stream.add(prompt, "text", repr(prompt.text))
            every = stream.options.search_every
            said = f"{prompt.name}: searched for {prompt.text!r} from the next frame, then every {every:g} s"
            session.notices["live_mark_status"] = Notice("done", said)
            return
        mark = make_mark(name, kind, body, 0, live.info.width, live.info.height)
        stream.add(mark.prompt, kind, mark.body)
        said = f"{mark.name}: {'corrected' if corrected else 'marked'} on the next frame tracked"
        if mark.warning:
            session.notices["live_mark_status"] = Notice("warning", f"{said} · garvideo: warning: {mark.warning}")
        else:
            session.notices["live_mark_status"] = Notice("done", said)

    def remove(self, request: gr.Request, name: Any):
        with self.page._acting(request, "live_mark_status") as session:
            name = fields.text(name, "the region to remove").strip()
            self._stream(session).remove(name)
            session.notices["live_mark_status"] = Notice("done", f"{name}: removed from the next frame")
            return self.state(session)

    def ask(self, request: gr.Request, question: Any, last: Any, options: Any):
        """``/live_ask``: a question about the last seconds; its answer streams in as GAR writes it."""
        with self.page._acting(request, "live_ask_status") as session:
            stream = self._stream(session)
            question = fields.text(question, "the question", fields.MAX_QUESTION).strip()
            if not question:
                raise AppError("type a question first, naming regions as <name>")
            choices = tuple(o.strip() for o in fields.text(options, "the options", fields.MAX_QUESTION).splitlines())
            choices = tuple(o for o in choices if o)
            if len(choices) == 1:
                raise AppError("a multiple-choice question needs at least two options (one per line)")
            seconds = fields.number(last, "the seconds", 0.1, defaults.LIVE_HISTORY_S, default=defaults.LIVE_ASK_LAST_S)
            turn = stream.ask(question, seconds, choices)
            session.notices["live_ask_status"] = Notice("busy", f"answering question {turn.number}")
            asked = self.state(session)
        yield asked
        while (now := stream.feed.wait_turn(turn.number, jobs.REFRESH_S)) is not None and now.answer is None:
            if now.error is not None or stream.state == "stopped":
                break
            yield {self.w.live_conversation: shown.conversation(stream.snapshot())}
        with session.lock:
            session.notices["live_ask_status"] = _answered(now)
            answered = self.state(session)
        yield answered

    # ================================================================ wiring

    def wire(self, tab: gr.Tab) -> None:
        w, page = self.w, self.page
        everything = w.all(LIVE_STATE)
        settings = [w.live_window, w.live_frames_per_window, w.live_max_new, w.live_max_instances,
                    w.live_search_every, w.live_keep_all]  # fmt: skip
        page._action([w.live_open.click, w.live_source.submit], self.open, [w.live_source, *settings], everything,
                     "live_status", "live_open")  # fmt: skip
        page._action([w.live_stop.click], self.stop, None, everything, "live_status", "live_stop")
        page._action([], self.frame, [w.live_after], everything, "live_status", "live_frame")
        page._action([w.live_picture.next], self.on_next, None, everything, None, trigger_mode="always_last")
        page._action([tab.select], self.on_select, None, everything, None)
        marked = [*everything, w.live_mark, w.live_kind]
        page._action([w.live_add.click, w.live_mark.submit], self.mark, [w.live_name, w.live_kind, w.live_mark],
                     everything, "live_mark_status", "live_mark")  # fmt: skip
        page._action([w.live_picture.box], self.on_box, [w.live_name], marked, "live_mark_status")
        page._action([w.live_picture.point], self.on_point, [w.live_name], marked, "live_mark_status")
        page._action([w.live_remove.click], self.remove, [w.live_remove_pick], everything, "live_mark_status",
                     "live_remove")  # fmt: skip
        page._action([w.live_ask.click, w.live_question.submit], self.ask, [w.live_question, w.live_last,
                     w.live_options], everything, "live_ask_status", "live_ask")  # fmt: skip


def _answered(turn) -> Notice:
    if turn is None:
        return Notice("error", "the question was lost: ask it again")
    if turn.error is not None:
        return Notice("warning", f"no answer to question {turn.number}: {turn.error}")
    if turn.answer is None:
        return Notice("warning", f"question {turn.number} was not answered: the live session stopped")
    return Notice("done", f"answered question {turn.number}")
