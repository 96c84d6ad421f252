"""What the pipeline returns: timelines, answers and tracking results, each with its provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..tracking import RegionPrompt, Track
from ..video import VideoInfo


@dataclass(frozen=True)
class StageTimings:
    """Seconds spent in each stage of one pipeline call.

    ``decode``: reading frames from the video (for tracking and for the model; tracking's
    frames are decoded ahead in a background thread, so its share is the time SAM2 waited for
    them, the decoding not hidden behind tracking); ``track``: SAM2, without that wait; ``encode``: GAR's
    vision tower, projector and RoI replay; ``generate``: GAR's language model;
    ``detect``: the open-vocabulary detector finding text regions.
    """

    decode: float = 0.0
    track: float = 0.0
    encode: float = 0.0
    generate: float = 0.0
    detect: float = 0.0

    @property
    def total(self) -> float:
        return self.decode + self.track + self.encode + self.generate + self.detect

    def __add__(self, other: StageTimings) -> StageTimings:
        return StageTimings(
            self.decode + other.decode,
            self.track + other.track,
            self.encode + other.encode,
            self.generate + other.generate,
            self.detect + other.detect,
        )

    def to_dict(self) -> dict[str, float]:
        out = {
            "decode": round(self.decode, 4),
            "track": round(self.track, 4),
            "encode": round(self.encode, 4),
            "generate": round(self.generate, 4),
        }
        if self.detect:  # only runs with text regions have a detector stage
            out["detect"] = round(self.detect, 4)
        out["total"] = round(self.total, 4)
        return out


@dataclass(frozen=True)
class ModelRef:
    """Which weights ran: the id or folder as given, the resolved revision, where and in what precision."""

    model_id: str
    revision: str | None
    device: str
    dtype: str
    adapter: dict[str, Any] | None = None  # GAR's fine-tuned adapter: its path and base, and whether merged

    def to_dict(self) -> dict[str, Any]:
        out = {"model": self.model_id, "revision": self.revision, "device": self.device, "dtype": self.dtype}
        if self.adapter is not None:
            out["adapter"] = self.adapter
        return out


@dataclass(frozen=True)
class FoundRegion:
    """A region named in words, as the detector found it: the box SAM2 was given, and how to give it again.

    ``box`` is ``x1, y1, x2, y2`` in pixels of the displayed frame ``frame``
    (rounded to 0.01 px, and tracked exactly so: ``--box`` with
    :attr:`box_option` reproduces the track); ``searched`` lists the frames
    the detector looked at, in order, the last one being ``frame``.
    :meth:`to_dict` leaves ``detector`` out: one run has one detector, which its
    provenance records once (``settings["grounding"]["detector"]``).
    """

    name: str  # the region's name; further instances are name#2, name#3, ...
    text: str
    frame: int
    time: float
    box: tuple[float, float, float, float]
    score: float
    label: str  # the words of the phrase the box matched
    searched: tuple[int, ...]
    detector: ModelRef

    @property
    def prompt(self) -> RegionPrompt:
        """The box prompt this region is tracked from."""
        return RegionPrompt.from_box(self.name, self.box, self.frame)

    @property
    def box_option(self) -> str:
        """``NAME=x1,y1,x2,y2@FRAME``: the ``--box`` value that marks this region without the detector."""
        # two decimals at most (the box is rounded so), never an exponent or a lost digit on wide frames
        numbers = (f"{v:.2f}".rstrip("0").rstrip(".") for v in self.box)
        return f"{self.name}=" + ",".join(numbers) + f"@{self.frame}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "text": self.text,
            "frame": self.frame,
            "time": round(self.time, 6),
            "box": list(self.box),
            "score": round(self.score, 4),
            "label": self.label,
            "frames_searched": list(self.searched),
            "box_option": self.box_option,
        }


@dataclass(frozen=True)
class Provenance:
    """What produced a result: models, settings, the frames used and the time per stage."""

    gar: ModelRef | None
    sam2: ModelRef | None
    settings: dict[str, Any]
    frames: tuple[int, ...]
    times: tuple[float, ...]
    timings: StageTimings
    garvideo_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "garvideo": self.garvideo_version,
            "gar": self.gar.to_dict() if self.gar else None,
            "sam2": self.sam2.to_dict() if self.sam2 else None,
            "settings": dict(self.settings),
            "frames": list(self.frames),
            "times": [round(t, 6) for t in self.times],
            "timings": self.timings.to_dict(),
        }


@dataclass(frozen=True)
class TimelineWindow:
    """A span ``[start, end)`` of the video (seconds) and what the region does in it.

    ``visible`` is False when the region is not seen in any tracked frame of
    the span, and None when no tracked frame falls in the span at all (sparse
    tracks, a stride): then nothing is known of it. Either way ``description``
    is None and no frames were used.
    """

    start: float
    end: float
    visible: bool | None
    description: str | None
    frames: tuple[int, ...] = ()
    times: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "visible": self.visible,
            "description": self.description,
            "frames": list(self.frames),
            "times": [round(t, 6) for t in self.times],
        }


@dataclass(frozen=True)
class RegionTimeline:
    """One region described over the whole range and window by window."""

    name: str
    description: str  # over the region's whole visible span
    windows: tuple[TimelineWindow, ...]
    visible_span: tuple[float, float]  # first and last time the region is seen (seconds)
    frames: tuple[int, ...]  # frames used for the overall description
    times: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "visible_span": [round(t, 6) for t in self.visible_span],
            "frames": list(self.frames),
            "times": [round(t, 6) for t in self.times],
            "timeline": [w.to_dict() for w in self.windows],
        }


@dataclass(frozen=True)
class TrackingResult:
    video: VideoInfo
    tracks: tuple[Track, ...]
    provenance: Provenance
    found: tuple[FoundRegion, ...] = ()  # the text regions, as found by the detector

    def __iter__(self):
        return iter(self.tracks)

    def __len__(self) -> int:
        return len(self.tracks)


@dataclass(frozen=True)
class DescribeResult:
    video: VideoInfo
    regions: tuple[RegionTimeline, ...]
    tracks: tuple[Track, ...]
    provenance: Provenance
    found: tuple[FoundRegion, ...] = ()  # the text regions, as found by the detector

    def region(self, name: str) -> RegionTimeline:
        for timeline in self.regions:
            if timeline.name == name:
                return timeline
        raise KeyError(name)


@dataclass(frozen=True)
class Answer:
    """An answer to a question about named regions; ``letter`` for multiple choice (None if unparsed)."""

    question: str
    regions: tuple[str, ...]
    text: str
    options: tuple[str, ...] | None = None
    letter: str | None = None
    time_range: tuple[float, float] | None = None
    tracks: tuple[Track, ...] = field(default=(), repr=False)
    video: VideoInfo | None = field(default=None, repr=False)
    provenance: Provenance | None = None
    found: tuple[FoundRegion, ...] = field(default=(), repr=False)  # the text regions, as found by the detector

    @property
    def choice(self) -> str | None:
        """The chosen option's text, when the letter was parsed."""
        if self.letter is None or self.options is None:
            return None
        return self.options[ord(self.letter) - ord("A")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "regions": list(self.regions),
            "options": list(self.options) if self.options is not None else None,
            "answer": self.text,
            "letter": self.letter,
            "choice": self.choice,
            "time_range": [round(t, 6) for t in self.time_range] if self.time_range else None,
        }
