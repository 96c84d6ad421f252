"""What the app does, without the page: sessions, their files, and calls into the public pipeline API.

One :class:`Backend` per process holds the models (loaded once) and the sessions (:mod:`.session`). A
session is one browser tab or one API client: its video, its marks, its results, its conversation and a
private folder under the app's temporary folder, removed when the session ends (tab closed,
``close_session``, idle too long, or the app stops). Every user mistake is a
:class:`~garvideo.errors.GarvideoError` whose message is the one the CLI prints. The model calls take
``on_event`` (the pipeline's events: progress, tracked frames, text as it is generated) for the page to
draw while they run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import defaults
from ..errors import GarvideoError, InvalidInputError
from ..files import atomic_write_json, atomic_write_text
from ..names import resolve_references
from ..outputs import result_document, result_prompts, timeline_cues, to_srt, to_vtt, tracks_document
from ..outputs.overlay import render_overlay
from ..pipeline import Answer, DescribeResult, Pipeline, TextSearch, TrackingResult
from ..pipeline.events import EventListener
from ..timecode import format_clock
from ..tracking import RegionClippedWarning, TrackFrame
from ..video import VideoReader, open_video, spread
from . import commands
from .drawing import THUMB_WIDTH, data_url, draw_frame, frame_masks
from .jobs import ModelQueue
from .live import LiveRoom
from .paths import is_inside, list_root_videos, resolve_under_root, safe_file_name
from .regions import Mark, default_name, found_mark, make_mark, text_prompt
from .session import AppError, OpenVideo, Session, Settings, Thumbnail, Turn

__all__ = ["AppConfig", "AppError", "Backend", "FrameView", "Upload"]

#: Files of a session, by what they are (the names the CLI commands shown use too).
TRACKS_FILE = "tracks.json"
RESULT_FILE = "result.json"
SRT_FILE = "result.srt"
VTT_FILE = "result.vtt"
OVERLAY_FILE = "overlay.mp4"
THUMBNAILS = 8


def answer_file(number: int) -> str:
    """The result document of the conversation's ``number``-th answer."""
    return f"answer-{number}.json"


@dataclass(frozen=True)
class AppConfig:
    """How ``garvideo app`` was started."""

    models: commands.Models
    temp_root: Path  # everything the app writes lives here (also Gradio's upload cache)
    root: Path | None = None  # resolved --root, or None
    root_arg: str | None = None  # --root as typed (for the commands shown)
    max_upload_mb: float = defaults.APP_MAX_UPLOAD_MB
    session_ttl_s: float = defaults.APP_SESSION_HOURS * 3600
    text_search: TextSearch = TextSearch()  # the page's text-region fields start here (and `every` is used as is)
    live_devices: tuple[str, ...] = ()  # devices the Live tab may open (--live-device), besides URLs and --root files

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True)
class Upload:
    """A file Gradio's upload route received: where it put it, and the file's name as the user gave it."""

    path: str
    name: str


@dataclass(frozen=True)
class FrameView:
    index: int
    time: float
    image: np.ndarray  # RGB, scaled for the page
    width: int  # the video's displayed size (what mark coordinates refer to)
    height: int


class Backend:
    """The models (loaded once per process) and the sessions.

    ``uploaded(path)`` says whether Gradio's upload route received the file at ``path`` (the page passes
    its record of uploads); without it no upload is opened.
    """

    def __init__(self, config: AppConfig, pipeline: Pipeline, uploaded: Callable[[Path], bool] | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.uploaded = uploaded or (lambda path: False)
        self.sessions_folder = config.temp_root / "sessions"
        self.sessions_folder.mkdir(parents=True, exist_ok=True)
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        # The page queues model jobs one at a time (jobs.ModelQueue); the lock keeps that true for any caller.
        self._model_lock = threading.Lock()
        self.model_queue = ModelQueue()
        # The Live tab's one live session: it takes the model queue while it runs.
        self.live = LiveRoom(self.model_queue)

    # ------------------------------------------------------------------ sessions

    def session(self, key: str) -> Session:
        """The session of a browser tab or API client (Gradio's session hash), made on first use."""
        with self._sessions_lock:
            session = self._sessions.get(key)
            if session is None:
                # The folder name is ours, never the client's string: it cannot point anywhere else.
                folder = self.sessions_folder / secrets.token_hex(8)
                folder.mkdir()
                session = self._sessions[key] = Session(key=key, folder=folder)
            session.last_used = time.monotonic()
            return session

    def existing(self, key: str) -> Session | None:
        """The session of ``key`` if it is open (None once it ended: nothing is made for it)."""
        with self._sessions_lock:
            return self._sessions.get(key)

    def end_session(self, key: str) -> bool:
        """The tab's session ends (closed, ``close_session``, idle): its live session stops, its files go."""
        self.live.end(key)
        with self._sessions_lock:
            session = self._sessions.pop(key, None)
        remove_upload_leftovers(self.config.temp_root)
        if session is None:
            return False
        session.close()
        return True

    def end_idle_sessions(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        with self._sessions_lock:
            idle = [
                k for k, s in self._sessions.items() if not s.busy and now - s.last_used > self.config.session_ttl_s
            ]
        for key in idle:
            self.end_session(key)
        remove_upload_leftovers(self.config.temp_root)
        return idle

    def close(self) -> None:
        self.live.close()
        for key in list(self._sessions):
            self.end_session(key)

    @contextlib.contextmanager
    def using(self, key: str):
        session = self.session(key)
        with session.lock:
            session.busy += 1
            try:
                yield session
            finally:
                session.busy -= 1
                session.last_used = time.monotonic()

    @staticmethod
    def check_idle(session: Session, what: str) -> None:
        """Refuse a change of the video or the marks while the session's model job uses them."""
        if session.running is not None:
            raise AppError(f"wait for the running {session.running} to finish before you {what}")

    # ------------------------------------------------------------------ opening videos

    def root_videos(self) -> list[str]:
        return list_root_videos(self.config.root) if self.config.root is not None else []

    def open_upload(self, session: Session, upload: Upload) -> OpenVideo:
        """Open a file Gradio's upload route received; it moves into the session's folder.

        Only a file the upload route put in a folder of its own at the top of the app's temporary folder
        is taken: never a session's file (this one's or another's), nor anything else the folder holds.
        """
        self.check_idle(session, "open another video")
        shown = safe_file_name(upload.name or Path(upload.path).name)
        source = self._checked_upload(upload)
        try:
            size = source.stat().st_size
            if size > self.config.max_upload_bytes:
                raise AppError(
                    f"{shown} is {size / 2**20:.1f} MB; this app takes videos up to {self.config.max_upload_mb:g} "
                    f"MB (start it with --max-upload-mb, or put the video under --root)"
                )
            # A folder of its own per opened video: closing the previous one never touches this one.
            target = session.folder / "video" / secrets.token_hex(4) / shown
            target.parent.mkdir(parents=True)
            shutil.move(source, target)
        finally:
            _remove_upload(source, self.config.temp_root)
            remove_upload_leftovers(self.config.temp_root)
        try:
            reader = _open_as(target, shown)
        except BaseException:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise
        return self._opened(session, target, shown, reader)

    def _checked_upload(self, upload: Upload) -> Path:
        temp_root = self.config.temp_root.resolve()
        source = Path(upload.path).resolve()
        if (
            source.parent.parent != temp_root
            or is_inside(source, self.sessions_folder.resolve())
            or not source.is_file()
            or not self.uploaded(source)
        ):
            raise AppError("only a video uploaded to this app can be opened this way: upload it again")
        return source

    def open_root_file(self, session: Session, relative: str) -> OpenVideo:
        if self.config.root is None:
            raise AppError("this app was started without --root: upload a video instead")
        self.check_idle(session, "open another video")
        path = resolve_under_root(self.config.root, relative)
        if path.is_dir():
            raise AppError(f"{relative.strip()!r} is a folder: choose a video file")
        shown = os.path.join(self.config.root_arg or str(self.config.root), relative.strip())
        return self._opened(session, path, shown, _open_as(path, shown), picked=relative.strip())

    def _opened(
        self, session: Session, path: Path, shown: str, reader: VideoReader, picked: str | None = None
    ) -> OpenVideo:
        session.close_video()
        session.video = OpenVideo(path=path, shown=shown, info=reader.info, reader=reader, picked=picked)
        return session.video

    # ------------------------------------------------------------------ frames and marks

    def frame_view(self, session: Session, index: int, live: bool = False) -> FrameView:
        """Frame ``index`` with what is known there: tracked masks (while tracking, the frames tracked so far),
        else SAM2's masks of the marks on it, the marks, and the mark not added yet."""
        video = session.require_video()
        index = int(min(max(int(index), 0), video.info.num_frames - 1))
        frame = video.reader.frame(index)
        masks = frame_masks(session, index, live)
        image = draw_frame(frame.image, index, session.names, session.marks, masks, session.draft)
        return FrameView(index, frame.time, image, video.info.width, video.info.height)

    def draft(self, session: Session, name: str, kind: str, body: str, frame: int, strict: bool = False) -> Mark | None:
        """A mark not added yet (shown on the frame, and what a preview is of); None while incomplete or invalid.

        ``strict``: a mark that cannot be read (or a name that cannot be used) raises the CLI's message."""
        video = session.require_video() if strict else session.video
        session.draft = None
        if video is None or not body.strip():
            return None
        if strict:
            _check_frame(video, frame)
            session.draft = make_mark(name, kind, body, frame, video.info.width, video.info.height)
            return session.draft
        for label in (name, default_name(session.marks)):  # the name typed so far may not be valid yet
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RegionClippedWarning)
                    session.draft = make_mark(label, kind, body, frame, video.info.width, video.info.height)
                return session.draft
            except InvalidInputError:
                continue
        return None

    def add_mark(self, session: Session, name: str, kind: str, body: str, frame: int) -> Mark:
        video = session.require_video()
        self.check_idle(session, "add a region")
        _check_frame(video, frame)
        mark = make_mark(name, kind, body, frame, video.info.width, video.info.height)
        texts = [m for m in session.marks if m.found and mark.name in m.region_names]
        if texts:
            raise AppError(
                f"{mark.name!r} is the region {texts[0].name!r} found from {texts[0].body!r}: a region named in words "
                f"cannot be corrected with a {mark.kind.key} (the CLI refuses it too); remove it, or use another name"
            )
        if any(m.name == mark.name and m.frame == mark.frame for m in session.marks):
            raise AppError(
                f"region {mark.name!r} is already marked on frame {mark.frame}: remove that mark first, or mark another frame"
            )
        session.marks.append(mark)
        session.name, session.draft = mark.name, None
        session.forget_results()
        return mark

    def prepare_find(
        self, session: Session, name: str, phrase: str, frame: int | None, search: TextSearch, span: commands.Span
    ) -> Callable[[EventListener], Mark]:
        """Check a region named in words; the returned call finds it (on ``frame``, or searched for in the span)
        and adds it, placed where found. The phrase found nowhere is the CLI's error."""
        video = session.require_video()
        self.check_idle(session, "add a region")
        if frame is not None:
            _check_frame(video, frame)
        prompt = text_prompt(name, phrase, frame)
        if prompt.name in session.names:
            raise AppError(
                f"the name {prompt.name!r} is taken: a region named in words needs a name of its own "
                f"(its matches become {prompt.name}, {prompt.name}#2, ...)"
            )
        used = session.text_search
        # `every` may differ: a found region is placed on its frame, nothing is searched again.
        if used is not None and _found_with(used) != _found_with(search):
            raise AppError(
                "the text regions of one run share their thresholds and max instances (the CLI takes one set): "
                f"use box {used.box_threshold:g}, text {used.text_threshold:g}, max instances {used.max_instances} "
                f"again, or remove the other text regions first"
            )

        def find(on_event: EventListener) -> Mark:
            with self._model_lock:
                _, found = self.pipeline.find(
                    video.path,
                    [prompt],
                    start=span.start,
                    end=span.end,
                    on_event=on_event,
                    progress=False,
                    search=search,
                )
            mark = found_mark(prompt, found, search)
            with session.lock:
                session.marks.append(mark)
                session.name = mark.name
                session.forget_results()
            return mark

        return find

    def remove_mark(self, session: Session, label: str) -> int:
        """Remove ``name@frame`` (one mark) or ``name`` (every mark of that region); how many were removed."""
        self.check_idle(session, "remove a region")
        label = label.strip()
        kept = [m for m in session.marks if label not in (m.name, m.label)]
        removed = len(session.marks) - len(kept)
        if not removed:
            known = ", ".join([*session.names, *(m.label for m in session.marks)]) or "none yet"
            raise AppError(f"there is no region or mark {label!r} (marked: {known})")
        session.marks = kept
        session.forget_results()
        return removed

    def next_name(self, session: Session) -> str:
        """The name field's text: the last name used, or the first free default name."""
        return session.name or default_name(session.marks)

    # ------------------------------------------------------------------ model work

    def prepare_preview(self, session: Session, mark: Mark) -> Callable[[EventListener], TrackFrame]:
        """SAM2's mask of ``mark`` on its own frame: one image prediction (a track of that one frame), not a
        track through the video. It is the mask a track starts from on that frame."""
        video = session.require_video()
        frame = mark.frame
        end = video.reader.index_to_time(frame + 1) if frame + 1 < video.info.num_frames else None

        def preview(on_event: EventListener) -> TrackFrame:
            with self._model_lock, warnings.catch_warnings():
                warnings.simplefilter("ignore", RegionClippedWarning)  # the mark carries the warning
                result = self.pipeline.track(
                    video.path,
                    [mark.prompt],
                    start=video.reader.index_to_time(frame),
                    end=end,
                    on_event=on_event,
                    progress=False,
                )
            (entry,) = [f for f in result.tracks[0].frames if f.index == frame]
            with session.lock:
                if session.video is video:  # not another video opened meanwhile
                    session.previews[mark.key] = entry
            return entry

        return preview

    def prepare_track(self, session: Session, settings: Settings) -> Callable[[EventListener], TrackingResult]:
        video = session.require_video()
        if not session.marks:
            raise AppError("mark at least one region: drag a box or click on the frame, then add it")
        marks, search = list(session.marks), session.text_search  # None without text regions: nothing to find

        def track(on_event: EventListener) -> TrackingResult:
            with self._model_lock:
                # Text regions are found again on the frame they were found on (the same box), as the command does.
                result = self.pipeline.track(
                    video.path,
                    [m.prompt for m in marks],
                    start=settings.span.start,
                    end=settings.span.end,
                    stride=settings.stride,
                    on_event=on_event,
                    progress=False,
                    search=search or self.config.text_search,
                )
            with session.lock:
                self._tracked_files(session, video, marks, settings, result)
            return result

        return track

    def _tracked_files(
        self, session: Session, video: OpenVideo, marks: list[Mark], settings: Settings, result: TrackingResult
    ) -> None:
        session.forget_results()
        session.tracking, session.tracked_with = result, settings
        # What `garvideo track --out tracks.json` writes (text regions listed with the box each became).
        document = tracks_document(result, [m.prompt for m in marks])
        self._write(session, TRACKS_FILE, lambda p: atomic_write_json(p, document))
        search = session.text_search
        session.commands["track"] = commands.shell_line(
            commands.track_command(
                video.shown, marks, settings.span, settings.stride, self.config.models, TRACKS_FILE, search
            )
        )
        self._thumbnails(session)

    def _tracked(self, session: Session, settings: Settings, on_event: EventListener) -> TrackingResult:
        """The session's tracks for these settings, tracking first when there are none (or they are stale)."""
        if session.tracking is None or session.tracked_with != settings:
            return self.prepare_track(session, settings)(on_event)
        return session.tracking

    def prepare_describe(
        self,
        session: Session,
        settings: Settings,
        window: float | None,
        frames_per_window: int,
        generation: commands.Generation,
        overlay: bool,
    ) -> Callable[[EventListener], DescribeResult]:
        video = session.require_video()
        if session.tracking is None and not session.marks:
            self.prepare_track(session, settings)  # says what to do first

        def describe(on_event: EventListener) -> DescribeResult:
            tracking = self._tracked(session, settings, on_event)
            with self._model_lock:
                result = self.pipeline.describe(
                    video.path,
                    tracks=tracking.tracks,
                    start=settings.span.start,
                    end=settings.span.end,
                    window=window,
                    frames_per_window=frames_per_window,
                    frames=generation.frames,
                    tiling=generation.tiling,
                    max_new_tokens=generation.max_new_tokens,
                    on_event=on_event,
                    progress=False,
                )
            with session.lock:
                self._described_files(session, video, settings, result, window, frames_per_window, generation)
            if overlay:
                self._overlay(session, video, result)
            return result

        return describe

    def _described_files(
        self,
        session: Session,
        video: OpenVideo,
        settings: Settings,
        result: DescribeResult,
        window: float | None,
        frames_per_window: int,
        generation: commands.Generation,
    ) -> None:
        session.described = result
        # The document of `garvideo describe --tracks tracks.json`, listing the marks the tracks were made from.
        prompts = _prompts(session.marks, session.tracking)
        document = result_document("describe", result.video, result.tracks, prompts, result)
        self._write(session, RESULT_FILE, lambda p: atomic_write_json(p, document))
        cues = timeline_cues(result)
        self._write(session, SRT_FILE, lambda p: atomic_write_text(p, to_srt(cues)))
        self._write(session, VTT_FILE, lambda p: atomic_write_text(p, to_vtt(cues)))
        stale = session.files.pop(OVERLAY_FILE, None)
        if stale is not None:
            stale.unlink(missing_ok=True)
        session.commands["describe"] = commands.shell_line(
            commands.describe_command(
                video.shown,
                TRACKS_FILE,
                settings.span,
                window,
                frames_per_window,
                generation,
                self.config.models,
                {"--out": RESULT_FILE, "--srt": SRT_FILE, "--vtt": VTT_FILE},
            )
        )

    def _overlay(self, session: Session, video: OpenVideo, result: DescribeResult) -> None:
        cues = timeline_cues(result)
        path = session.folder / OVERLAY_FILE
        render_overlay(video.path, path, result.tracks, cues, progress=False)
        with session.lock:
            if session.described is result:  # still the session's description
                session.files[OVERLAY_FILE] = path
                session.commands["describe"] += " " + commands.shell_line(["--overlay", OVERLAY_FILE])

    def prepare_ask(
        self,
        session: Session,
        settings: Settings,
        question: str,
        options: Sequence[str],
        generation: commands.Generation,
    ) -> Callable[[EventListener], Turn]:
        video = session.require_video()
        options = [o.strip() for o in options if o.strip()]
        if len(options) == 1:
            raise AppError("a multiple-choice question needs at least two options (one per line)")
        if not question.strip():
            raise AppError("type a question first, naming regions as <name>")
        if session.tracking is None and not session.marks:
            self.prepare_track(session, settings)  # says what to do first
        # The regions named must be marked: said now, as the command line does, not after tracking.
        resolve_references(" ".join([question, *options]), session.names)
        number = len(session.conversation) + 1
        with session.lock:
            session.conversation.append(Turn(number, question, tuple(options)))

        def ask(on_event: EventListener) -> Turn:
            try:
                tracking = self._tracked(session, settings, on_event)
                with self._model_lock:
                    answer = self.pipeline.ask(
                        video.path,
                        question,
                        tracks=tracking.tracks,
                        options=options or None,
                        start=settings.span.start,
                        end=settings.span.end,
                        frames=generation.frames,
                        tiling=generation.tiling,
                        max_new_tokens=generation.max_new_tokens,
                        on_event=on_event,
                        progress=False,
                    )
            except BaseException:
                with session.lock:  # an unanswered question leaves no turn behind
                    session.conversation = [t for t in session.conversation if t.number != number]
                raise
            with session.lock:
                return self._answered(session, video, settings, generation, number, answer)

        return ask

    def _answered(
        self,
        session: Session,
        video: OpenVideo,
        settings: Settings,
        generation: commands.Generation,
        number: int,
        answer: Answer,
    ) -> Turn:
        name = answer_file(number)
        prompts = _prompts(session.marks, session.tracking)
        document = result_document("ask", answer.video, answer.tracks, prompts, None, [answer])
        self._write(session, name, lambda p: atomic_write_json(p, document))
        options = list(answer.options or ())
        command = commands.shell_line(
            commands.ask_command(
                video.shown, answer.question, options, TRACKS_FILE, settings.span, generation, self.config.models, name
            )
        )
        session.commands["ask"] = command
        turn = Turn(number, answer.question, tuple(options), answer, answer.text, command, name)
        session.conversation = [turn if t.number == number else t for t in session.conversation]
        return turn

    # ------------------------------------------------------------------ helpers

    def _write(self, session: Session, name: str, write: Callable[[Path], Any]) -> Path:
        path = session.folder / name
        write(path)
        session.files[name] = path
        return path

    def _thumbnails(self, session: Session) -> None:
        """A strip of frames spread over the tracked span, each with the masks drawn."""
        video = session.require_video()
        tracking = session.tracking
        session.thumbnails = []
        if tracking is None:
            return
        tracked = sorted({f.index for t in tracking.tracks for f in t.frames})
        if not tracked:
            return
        for frame in video.reader.read(spread(tracked, THUMBNAILS)):
            session.thumbnails.append(self.thumbnail(session, frame.index, frame.image, frame.time, live=False))

    def thumbnail(self, session: Session, index: int, image: np.ndarray, time_s: float, live: bool) -> Thumbnail:
        """A small picture of frame ``index`` with its masks (while a job runs, ``live``: the masks it made)."""
        small = draw_frame(image, index, session.names, (), frame_masks(session, index, live), width=THUMB_WIDTH)
        return Thumbnail(index, f"{index} · {format_clock(time_s)}", data_url(small))


def _prompts(marks: Sequence[Mark], tracking: TrackingResult | None) -> list:
    """The prompts a result lists: the marks the tracks came from, text regions with the box each was found as."""
    return result_prompts([m.prompt for m in marks], tracking.found if tracking is not None else ())


def _check_frame(video: OpenVideo, frame: int) -> None:
    if not 0 <= frame < video.info.num_frames:
        raise AppError(f"frame {frame} is outside the video, which has {video.info.num_frames} frames")


def _open_as(path: Path, shown: str) -> VideoReader:
    """Open a video; a message names it as the user gave it (not the app's own path for it)."""
    try:
        return open_video(path)
    except GarvideoError as exc:
        message = str(exc).replace(str(path), shown)
        try:
            renamed = type(exc)(message)
        except Exception:  # an error class that takes more than its message
            renamed = AppError(message)
        raise renamed from None


def _found_with(search: TextSearch) -> tuple[float, float, int]:
    return search.box_threshold, search.text_threshold, search.max_instances


def _remove_upload(path: Path, temp_root: Path) -> None:
    """Delete an upload (if still there) and its folder when empty; never anything outside the temp folder."""
    temp_root = temp_root.resolve()
    if not is_inside(path, temp_root) or path == temp_root:
        return
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()
    parent = path.parent
    if parent != temp_root and is_inside(parent, temp_root) and parent != temp_root / "sessions":
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty


def remove_upload_leftovers(temp_root: Path, settled_s: float = 1.0) -> list[Path]:
    """Delete the empty files Gradio's upload parser leaves beside each upload (one per upload, never used).

    Gradio writes an upload to a temporary file at the top of its folder, then renames it into a
    folder of its own; an extra empty file stays behind. The app's own files are all in folders, so an
    empty top-level file that has not changed for ``settled_s`` seconds is such a leftover (an upload
    still arriving has data, or is younger).
    """
    removed = []
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(temp_root):
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat(follow_symlinks=False)
                if entry.is_file(follow_symlinks=False) and info.st_size == 0 and now - info.st_mtime > settled_s:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed
