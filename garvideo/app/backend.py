"""What the app does, without the page: sessions, their files, and calls into the public pipeline API.

One :class:`Backend` per process holds the models (loaded once) and the sessions. A session is one
browser tab or one API client: its video, its marks, its last results and a private folder under the
app's temporary folder, removed when the session ends (tab closed, ``close_session``, idle too long,
or the app stops). Every user mistake is a :class:`~garvideo.errors.GarvideoError` whose message is
the one the CLI prints.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import defaults
from ..errors import InvalidInputError
from ..files import atomic_write_json, atomic_write_text
from ..outputs import result_document, result_prompts, timeline_cues, to_srt, to_vtt, tracks_document
from ..outputs.overlay import render_overlay
from ..pipeline import Answer, DescribeResult, Pipeline, TextSearch, TrackingResult
from ..timecode import format_clock
from ..video import VideoInfo, VideoReader, open_video, spread
from . import commands
from .drawing import THUMB_WIDTH, draw_frame, jpeg_bytes
from .paths import is_inside, list_root_videos, resolve_under_root, safe_file_name
from .regions import Mark, default_name, found_mark, make_mark, text_prompt

#: Files of a session, by what they are (the names the CLI commands shown use too).
TRACKS_FILE = "tracks.json"
RESULT_FILE = "result.json"
ANSWER_FILE = "answer.json"
SRT_FILE = "result.srt"
VTT_FILE = "result.vtt"
OVERLAY_FILE = "overlay.mp4"
THUMBNAILS = 8

Progress = Callable[[float, str], None]


class AppError(InvalidInputError):
    """A request the app cannot serve as asked (no video open yet, a file outside --root, too large)."""


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

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class OpenVideo:
    path: Path  # what is read
    shown: str  # how the CLI commands name it: the uploaded file's name, or --root/relative path
    info: VideoInfo
    reader: VideoReader


@dataclass(frozen=True)
class Settings:
    """The settings a run used, as typed (they go into the commands shown)."""

    span: commands.Span = commands.Span()
    stride: int = 1


@dataclass
class Session:
    key: str
    folder: Path
    video: OpenVideo | None = None
    marks: list[Mark] = field(default_factory=list)
    tracking: TrackingResult | None = None
    tracked_with: Settings | None = None
    described: DescribeResult | None = None
    answer: Answer | None = None
    files: dict[str, Path] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    thumbnails: list[tuple[Path, str, int]] = field(default_factory=list)  # (file, caption, frame)
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0

    @property
    def names(self) -> list[str]:
        """Region names in the order first marked (colours and tracks follow this order).

        A text region is every instance it was found as (``car``, ``car#2``, ...)."""
        return list(dict.fromkeys(n for m in self.marks for n in m.region_names))

    @property
    def text_search(self) -> TextSearch | None:
        """How the session's text regions were found (one setting for all: the CLI takes one), None without any."""
        return next((m.search for m in self.marks if m.search is not None), None)

    def require_video(self) -> OpenVideo:
        if self.video is None:
            raise AppError("open a video first (upload one, or pick one under --root)")
        return self.video

    def forget_results(self) -> None:
        """Marks changed: tracks and everything made from them are out of date."""
        self.tracking = self.tracked_with = self.described = self.answer = None
        for name in list(self.files):
            with contextlib.suppress(FileNotFoundError):
                self.files.pop(name).unlink()
        self.commands.clear()
        self._drop_thumbnails()

    def _drop_thumbnails(self) -> None:
        for path, _, _ in self.thumbnails:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.thumbnails = []

    def close_video(self) -> None:
        self.forget_results()
        self.marks = []
        if self.video is not None:
            self.video.reader.close()
            if is_inside(self.video.path, self.folder):  # an upload (a --root file is only read)
                shutil.rmtree(self.video.path.parent, ignore_errors=True)
            self.video = None

    def close(self) -> None:
        with self.lock:
            self.close_video()
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class FrameView:
    index: int
    time: float
    image: np.ndarray  # RGB, scaled for the page
    width: int  # the video's displayed size (what mark coordinates refer to)
    height: int


class Backend:
    """The models (loaded once per process) and the sessions."""

    def __init__(self, config: AppConfig, pipeline: Pipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.sessions_folder = config.temp_root / "sessions"
        self.sessions_folder.mkdir(parents=True, exist_ok=True)
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        # Gradio runs one model job at a time (concurrency 1); the lock keeps that true for any caller.
        self._model_lock = threading.Lock()

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

    def end_session(self, key: str) -> bool:
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

    # ------------------------------------------------------------------ opening videos

    def root_videos(self) -> list[str]:
        return list_root_videos(self.config.root) if self.config.root is not None else []

    def open_upload(self, session: Session, upload: str | os.PathLike[str], name: str | None = None) -> OpenVideo:
        """Open an uploaded file (it must be in the app's temporary folder); it moves into the session's folder."""
        source = Path(upload).resolve()
        shown = safe_file_name(name or source.name)
        try:
            if not is_inside(source, self.config.temp_root.resolve()) or not source.is_file():
                raise AppError("only files uploaded to this app can be opened this way")
            size = source.stat().st_size
            if size > self.config.max_upload_bytes:
                raise AppError(
                    f"the upload is {size / 2**20:.1f} MB; this app takes videos up to {self.config.max_upload_mb:g} MB "
                    f"(start it with --max-upload-mb, or put the video under --root)"
                )
            # A folder of its own per opened video: closing the previous one never touches this one.
            target = session.folder / "video" / secrets.token_hex(4) / shown
            target.parent.mkdir(parents=True)
            shutil.move(source, target)
        finally:
            _remove_upload(source, self.config.temp_root)
            remove_upload_leftovers(self.config.temp_root)
        try:
            reader = open_video(target)  # a non-video file is refused here, with the CLI's message
        except BaseException:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise
        return self._opened(session, target, shown, reader)

    def open_root_file(self, session: Session, relative: str) -> OpenVideo:
        if self.config.root is None:
            raise AppError("this app was started without --root: upload a video instead")
        path = resolve_under_root(self.config.root, relative)
        if path.is_dir():
            raise AppError(f"{relative.strip()!r} is a folder: choose a video file")
        reader = open_video(path)
        shown = os.path.join(self.config.root_arg or str(self.config.root), relative.strip())
        return self._opened(session, path, shown, reader)

    def _opened(self, session: Session, path: Path, shown: str, reader: VideoReader) -> OpenVideo:
        session.close_video()
        session.video = OpenVideo(path=path, shown=shown, info=reader.info, reader=reader)
        return session.video

    # ------------------------------------------------------------------ frames and marks

    def frame_view(self, session: Session, index: int, draft: Mark | None = None) -> FrameView:
        video = session.require_video()
        index = int(min(max(int(index), 0), video.info.num_frames - 1))
        frame = video.reader.frame(index)
        tracks = session.tracking.tracks if session.tracking is not None else ()
        image = draw_frame(frame.image, index, session.names, session.marks, tracks, draft)
        return FrameView(index, frame.time, image, video.info.width, video.info.height)

    def draft(self, session: Session, name: str, kind: str, body: str, frame: int) -> Mark | None:
        """A mark not added yet, for the preview; None while it is incomplete or invalid."""
        video = session.video
        if video is None or not (body or "").strip():
            return None
        for label in (name, "new"):  # the name typed so far may not be valid yet
            try:
                return make_mark(label, kind, body, frame, video.info.width, video.info.height)
            except InvalidInputError:
                continue
        return None

    def add_mark(self, session: Session, name: str, kind: str, body: str, frame: int) -> Mark:
        video = session.require_video()
        if not 0 <= int(frame) < video.info.num_frames:
            raise AppError(f"frame {frame} is outside the video, which has {video.info.num_frames} frames")
        mark = make_mark(name, kind, body, int(frame), video.info.width, video.info.height)
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
        session.forget_results()
        return mark

    def find_mark(
        self,
        session: Session,
        name: str,
        phrase: str,
        frame: int | None,
        search: TextSearch,
        span: commands.Span,
        progress: Progress,
    ) -> Mark:
        """Find a region named in words (on ``frame``, or searched for in the span) and add it, placed where found.

        The phrase not found anywhere is the CLI's error (the phrase, the frames searched, the best score).
        """
        video = session.require_video()
        if frame is not None and not 0 <= int(frame) < video.info.num_frames:
            raise AppError(f"frame {frame} is outside the video, which has {video.info.num_frames} frames")
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
        progress(0.0, f"finding {prompt.text!r}")
        with self._model_lock:
            _, found = self.pipeline.find(video.path, [prompt], start=span.start, end=span.end, search=search)
        mark = found_mark(prompt, found, search)
        session.marks.append(mark)
        session.forget_results()
        return mark

    def remove_mark(self, session: Session, label: str) -> int:
        """Remove ``name@frame`` (one mark) or ``name`` (every mark of that region); how many were removed."""
        label = (label or "").strip()
        kept = [m for m in session.marks if label not in (m.name, m.label)]
        removed = len(session.marks) - len(kept)
        if not removed:
            known = ", ".join([*session.names, *(m.label for m in session.marks)]) or "none yet"
            raise AppError(f"there is no region or mark {label!r} (marked: {known})")
        session.marks = kept
        session.forget_results()
        return removed

    def next_name(self, session: Session) -> str:
        return default_name(session.marks)

    # ------------------------------------------------------------------ model work

    def track(self, session: Session, settings: Settings, progress: Progress) -> TrackingResult:
        video = session.require_video()
        if not session.marks:
            raise AppError("mark at least one region: drag a box or click on the frame, then add it")
        progress(0.0, "tracking")
        search = session.text_search  # None without text regions: nothing to find
        with self._model_lock:
            # Text regions are found again on the frame they were found on (the same box), as the command does.
            result = self.pipeline.track(
                video.path,
                [m.prompt for m in session.marks],
                start=settings.span.start,
                end=settings.span.end,
                stride=settings.stride,
                search=search or self.config.text_search,
            )
        session.forget_results()
        session.tracking, session.tracked_with = result, settings
        # What `garvideo track --out tracks.json` writes (text regions listed with the box each became).
        document = tracks_document(result, [m.prompt for m in session.marks])
        self._write(session, TRACKS_FILE, lambda p: atomic_write_json(p, document))
        session.commands["track"] = commands.shell_line(
            commands.track_command(
                video.shown, session.marks, settings.span, settings.stride, self.config.models, TRACKS_FILE, search
            )
        )
        progress(0.95, "thumbnails")
        self._thumbnails(session)
        return result

    def _tracked(self, session: Session, settings: Settings, progress: Progress) -> TrackingResult:
        """The session's tracks for these settings, tracking first when there are none (or they are stale)."""
        if session.tracking is None or session.tracked_with != settings:
            self.track(session, settings, progress)
        assert session.tracking is not None
        return session.tracking

    def describe(
        self,
        session: Session,
        settings: Settings,
        window: float | None,
        frames_per_window: int,
        generation: commands.Generation,
        overlay: bool,
        progress: Progress,
    ) -> DescribeResult:
        video = session.require_video()
        tracking = self._tracked(session, settings, progress)
        progress(0.3, "describing")
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
            )
        session.described = result
        # The document of `garvideo describe --tracks tracks.json`, whose marks the tracks file records.
        document = result_document("describe", result.video, result.tracks, _marks(session), result)
        self._write(session, RESULT_FILE, lambda p: atomic_write_json(p, document))
        cues = timeline_cues(result)
        self._write(session, SRT_FILE, lambda p: atomic_write_text(p, to_srt(cues)))
        self._write(session, VTT_FILE, lambda p: atomic_write_text(p, to_vtt(cues)))
        outputs = {"--out": RESULT_FILE, "--srt": SRT_FILE, "--vtt": VTT_FILE}
        stale = session.files.pop(OVERLAY_FILE, None)
        if stale is not None:
            stale.unlink(missing_ok=True)
        if overlay:
            progress(0.8, "drawing the overlay video")
            self._write(
                session, OVERLAY_FILE, lambda p: render_overlay(video.path, p, result.tracks, cues, progress=False)
            )
            outputs["--overlay"] = OVERLAY_FILE
        session.commands["describe"] = commands.shell_line(
            commands.describe_command(
                video.shown,
                TRACKS_FILE,
                settings.span,
                window,
                frames_per_window,
                generation,
                self.config.models,
                outputs,
            )
        )
        return result

    def ask(
        self,
        session: Session,
        settings: Settings,
        question: str,
        options: Sequence[str],
        generation: commands.Generation,
        progress: Progress,
    ) -> Answer:
        video = session.require_video()
        options = [o.strip() for o in options if o.strip()]
        if len(options) == 1:
            raise AppError("a multiple-choice question needs at least two options (one per line)")
        tracking = self._tracked(session, settings, progress)
        progress(0.5, "answering")
        span = settings.span
        with self._model_lock:
            answer = self.pipeline.ask(
                video.path,
                question,
                tracks=tracking.tracks,
                options=options or None,
                start=span.start,
                end=span.end,
                frames=generation.frames,
                tiling=generation.tiling,
                max_new_tokens=generation.max_new_tokens,
            )
        session.answer = answer
        document = result_document("ask", answer.video, answer.tracks, _marks(session), None, [answer])
        self._write(session, ANSWER_FILE, lambda p: atomic_write_json(p, document))
        session.commands["ask"] = commands.shell_line(
            commands.ask_command(
                video.shown, question, options, TRACKS_FILE, span, generation, self.config.models, ANSWER_FILE
            )
        )
        return answer

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
        session._drop_thumbnails()
        if tracking is None:
            return
        tracked = sorted({f.index for t in tracking.tracks for f in t.frames})
        if not tracked:
            return
        indices = spread(tracked, THUMBNAILS)
        folder = session.folder / "thumbnails"
        folder.mkdir(exist_ok=True)
        run = secrets.token_hex(3)  # new names each run: the page must not show a cached older strip
        for frame in video.reader.read(indices):
            image = draw_frame(frame.image, frame.index, session.names, (), tracking.tracks, width=THUMB_WIDTH)
            path = folder / f"{run}-{frame.index:06d}.jpg"
            path.write_bytes(jpeg_bytes(image))
            session.thumbnails.append((path, f"{frame.index} · {format_clock(frame.time)}", frame.index))


def _marks(session: Session) -> list:
    """The prompts a result lists: the session's marks, text regions with the box each was found as."""
    found = session.tracking.found if session.tracking is not None else ()
    return result_prompts([m.prompt for m in session.marks], found)


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
