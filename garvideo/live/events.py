"""What a live session reports: small frozen events, each one JSON line (``to_dict``).

Every event has ``time`` (the stream time it is about, seconds since the session's first frame; None when it
is about no moment), ``arrival`` (the wall clock, ``time.time()``, when that moment's frame arrived),
``emitted`` (the wall clock when the event was made) and so ``behind``: how many seconds after capture it
came out (capture to mask for ``frame``, capture of the window's last frame to description for ``window``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: ``events.jsonl``'s schema: each line is one event's ``to_dict()``.
EVENTS_SCHEMA = "garvideo.live.events"
EVENTS_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class LiveEvent:
    """The fields every event has; see the module's doc."""

    kind: ClassVar[str] = "event"
    time: float | None
    arrival: float | None
    emitted: float = field(default_factory=time.time)

    @property
    def behind(self) -> float | None:
        """Seconds from capture to this event (None for an event about no frame)."""
        return None if self.arrival is None else max(0.0, self.emitted - self.arrival)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"event": kind, "time", "arrival", "emitted", "behind", ...its own fields}``."""
        own = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        behind = self.behind
        return {"event": self.kind, **own, "behind": None if behind is None else round(behind, 6)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RegionReport:
    """One region on one tracked frame: its SAM2 object id, tight box (max inclusive; None unseen), score."""

    obj_id: int
    box: tuple[int, int, int, int] | None
    score: float
    visible: bool


@dataclass(frozen=True, kw_only=True)
class Started(LiveEvent):
    """The source is open: what it is, the regions marked so far and the session's settings."""

    kind: ClassVar[str] = "started"
    source: Mapping[str, Any]
    regions: tuple[str, ...]
    settings: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class FrameReport(LiveEvent):
    """A tracked frame (at most ``report_every`` per second): every region on it, and the frames the session
    did not track so far: ``dropped`` (it was behind), ``skipped`` (``track_fps``)."""

    kind: ClassVar[str] = "frame"
    index: int
    regions: Mapping[str, RegionReport]
    dropped: int
    skipped: int


@dataclass(frozen=True, kw_only=True)
class WindowDescribed(LiveEvent):
    """GAR's description of ``region`` over ``[start, end)`` (None where it was not seen: ``visible`` False).

    ``windows``: the window numbers it covers (several when GAR fell behind and merged them); ``skipped``: the
    windows before it that were never described because GAR was too far behind. ``frames``/``times``: what GAR saw.
    """

    kind: ClassVar[str] = "window"
    region: str
    start: float
    end: float
    visible: bool
    text: str | None
    frames: tuple[int, ...]
    times: tuple[float, ...]
    windows: tuple[int, ...]
    skipped: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TextSoFar(LiveEvent):
    """GAR's text so far, while it writes a description (``region``, ``windows``) or an answer (both None); only
    when the session was asked for them (``stream_text``). The finished text is the ``window``/``answer`` event's."""

    kind: ClassVar[str] = "text"
    region: str | None
    windows: tuple[int, ...] | None
    text: str


@dataclass(frozen=True, kw_only=True)
class Answered(LiveEvent):
    """The answer to ``question`` about the stream's last ``last`` seconds (``[start, end]``); ``error`` says why
    there is none (the regions asked about were not seen then)."""

    kind: ClassVar[str] = "answer"
    question: str
    last: float
    options: tuple[str, ...] | None
    regions: tuple[str, ...]
    text: str | None
    letter: str | None
    start: float
    end: float
    frames: tuple[int, ...]
    times: tuple[float, ...]
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Appeared(LiveEvent):
    """A region joined: marked by the user (``how="marked"``) or a new instance of a phrase (``"detected"``)."""

    kind: ClassVar[str] = "appeared"
    region: str
    obj_id: int
    how: str
    box: tuple[float, float, float, float] | None = None
    phrase: str | None = None
    score: float | None = None


@dataclass(frozen=True, kw_only=True)
class Lost(LiveEvent):
    """``region`` has not been seen for ``lost_after`` seconds; ``last_seen`` is when it last was, at ``last_box``."""

    kind: ClassVar[str] = "lost"
    region: str
    obj_id: int
    last_seen: float
    last_box: tuple[int, int, int, int] | None


@dataclass(frozen=True, kw_only=True)
class Found(LiveEvent):
    """``region``, lost, is seen again after ``after`` seconds, by the tracker itself or by the detector (a
    detection matched to its last box; it keeps its id)."""

    kind: ClassVar[str] = "found"
    region: str
    obj_id: int
    after: float
    by: str
    box: tuple[int, int, int, int] | None


@dataclass(frozen=True, kw_only=True)
class Removed(LiveEvent):
    kind: ClassVar[str] = "removed"
    region: str


@dataclass(frozen=True, kw_only=True)
class Gap(LiveEvent):
    """The source stopped delivering (``resumed`` False: ``reason``), or delivers again after ``seconds``."""

    kind: ClassVar[str] = "gap"
    resumed: bool
    reason: str | None = None
    seconds: float | None = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class Behind(LiveEvent):
    """Tracking runs ``seconds`` behind capture, or dropped ``dropped`` frames since the last report (the newest
    frame always wins): at most one such report per second."""

    kind: ClassVar[str] = "behind"
    seconds: float
    dropped: int
    dropped_total: int


@dataclass(frozen=True, kw_only=True)
class SegmentWritten(LiveEvent):
    """A recorded overlay segment is complete at ``path`` (written atomically): ``[start, end)``, ``frames``."""

    kind: ClassVar[str] = "segment"
    path: str
    start: float
    end: float
    frames: int


@dataclass(frozen=True, kw_only=True)
class Problem(LiveEvent):
    """Something the session refused or could not do (a bad control line, a failed description); it goes on."""

    kind: ClassVar[str] = "error"
    message: str


@dataclass(frozen=True, kw_only=True)
class Stopped(LiveEvent):
    """The session ended: ``reason`` (closed, the end of the input, the source gone too long) and its counts."""

    kind: ClassVar[str] = "stopped"
    reason: str
    frames_decoded: int
    frames_tracked: int
    frames_dropped: int
    frames_skipped: int
    windows_described: int
    windows_merged: int
    windows_skipped: int
    seconds: float


EVENT_KINDS = {
    cls.kind: cls
    for cls in (
        Started,
        FrameReport,
        WindowDescribed,
        TextSoFar,
        Answered,
        Appeared,
        Lost,
        Found,
        Removed,
        Gap,
        Behind,
        SegmentWritten,
        Problem,
        Stopped,
    )
}
