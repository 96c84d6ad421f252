"""What one browser tab or API client holds: its video, marks, results, conversation and the job it runs.

A session is changed by one request at a time (its ``lock``); a model job runs outside the lock (the
page keeps answering while it runs) and marks the session ``running``, so no request changes the marks
or the video under it. What a running job has produced so far (masks of the frames tracked, texts as
GAR writes them, its progress) is its :class:`LiveRun`, which the page draws while the job runs.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..pipeline import Answer, DescribeResult, TextSearch, TrackingResult
from ..pipeline.events import PipelineEvent, StageProgress, TextGenerated
from ..tracking import FrameTracked, TrackFrame
from ..video import VideoInfo, VideoReader
from . import commands
from .paths import is_inside
from .regions import Mark


class AppError(InvalidInputError):
    """A request the app cannot serve as asked (no video open yet, a file outside --root, too large)."""


@dataclass
class OpenVideo:
    path: Path  # what is read
    shown: str  # how the user gave it (the uploaded file's name, or --root/relative path): messages and commands
    info: VideoInfo
    reader: VideoReader
    picked: str | None = None  # the path under --root it was picked as (None: an upload)


@dataclass(frozen=True)
class Settings:
    """The settings a run used, as typed (they go into the commands shown)."""

    span: commands.Span = commands.Span()
    stride: int = 1


@dataclass(frozen=True)
class Turn:
    """One question of the session's conversation and its answer (None while GAR writes it)."""

    number: int
    question: str
    options: tuple[str, ...]
    answer: Answer | None = None
    text: str = ""  # the answer so far, then the whole answer
    command: str = ""
    file: str = ""  # the answer's result document (answer-N.json)

    @property
    def letter(self) -> str:
        answer = self.answer
        if answer is None or answer.options is None:
            return ""
        return f"{answer.letter}. {answer.choice}" if answer.letter else "(no option letter recognised)"


@dataclass(frozen=True)
class Thumbnail:
    """A small picture of a frame with its masks, as the page shows it in the strip."""

    frame: int
    caption: str
    url: str  # a data URL (JPEG)


@dataclass(frozen=True)
class Notice:
    """What the page says under an action's button: ``kind`` is ``error``, ``warning``, ``busy`` or ``done``."""

    kind: str
    text: str
    done: int | None = None  # a progress bar's position, when known
    total: int | None = None


@dataclass
class LiveRun:
    """What a running model job has produced so far (drawn on the page while it runs)."""

    action: str  # "track", "describe", "ask", "find", "preview"
    progress: StageProgress | None = None
    frames: dict[int, dict[str, TrackFrame]] = field(default_factory=dict)  # tracked frame -> region -> mask
    last_frame: int | None = None  # the frame tracked last
    texts: dict[tuple[str | None, int | None], TextGenerated] = field(default_factory=dict)
    strip: dict[int, Thumbnail] = field(default_factory=dict)  # an eighth of the video -> its frame tracked last

    def hear(self, event: PipelineEvent) -> None:
        """Take one pipeline event in (called in the job's thread, under the session's lock)."""
        if isinstance(event, StageProgress):
            self.progress = event
        elif isinstance(event, FrameTracked):
            self.frames[event.index] = dict(event.regions)
            self.last_frame = event.index
        elif isinstance(event, TextGenerated):
            self.texts[(event.region, event.window)] = event


@dataclass
class Session:
    key: str
    folder: Path
    video: OpenVideo | None = None
    marks: list[Mark] = field(default_factory=list)
    name: str = ""  # the name field's text: kept until the user types another
    tracking: TrackingResult | None = None
    tracked_with: Settings | None = None
    described: DescribeResult | None = None
    conversation: list[Turn] = field(default_factory=list)
    previews: dict[tuple[str, int, str, str], TrackFrame] = field(default_factory=dict)  # mark -> SAM2's mask
    draft: Mark | None = None  # a mark drawn but not added yet
    files: dict[str, Path] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    thumbnails: list[Thumbnail] = field(default_factory=list)  # the strip of tracked frames
    notices: dict[str, Notice] = field(default_factory=dict)  # by the page's status line they show in
    live: LiveRun | None = None
    running: str | None = None  # the model job this session runs now
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

    @property
    def answer(self) -> Answer | None:
        """The latest answer."""
        return next((t.answer for t in reversed(self.conversation) if t.answer is not None), None)

    def require_video(self) -> OpenVideo:
        if self.video is None:
            raise AppError("open a video first (upload one, or pick one under --root)")
        return self.video

    def forget_results(self) -> None:
        """Marks changed: tracks and everything made from them are out of date (the conversation stays)."""
        self.tracking = self.tracked_with = self.described = None
        for name in [n for n in self.files if not n.startswith("answer-")]:
            with contextlib.suppress(FileNotFoundError):
                self.files.pop(name).unlink()
        for key in ("track", "describe"):
            self.commands.pop(key, None)
        self.thumbnails = []

    def close_video(self) -> None:
        """Everything of the open video goes: its marks, results, conversation, files and notices."""
        self.forget_results()
        for path in self.files.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.files.clear()
        self.commands.clear()
        self.marks, self.conversation, self.previews, self.draft = [], [], {}, None
        self.notices.clear()
        self.name = ""
        if self.video is not None:
            self.video.reader.close()
            if is_inside(self.video.path, self.folder):  # an upload (a --root file is only read)
                shutil.rmtree(self.video.path.parent, ignore_errors=True)
            self.video = None

    def close(self) -> None:
        with self.lock:
            self.close_video()
            shutil.rmtree(self.folder, ignore_errors=True)
