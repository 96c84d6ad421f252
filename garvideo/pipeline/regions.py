"""Regions or tracks in, tracks out: what every pipeline call starts from.

A call names its regions either as prompts (a box, clicks, a mask or a phrase on a frame or at a
time: text regions are found, then SAM2 tracks them) or as tracks the caller already has (ground
truth, an earlier run's tracks file). :class:`RegionInput` holds exactly one of the two, checked
once; :meth:`Pipeline.tracks_for <garvideo.pipeline.Pipeline.tracks_for>` turns it into
:class:`RegionTracks`. ``track``, ``describe`` and ``ask`` go through it, and so can a live
session or a training data loader.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from .. import defaults
from ..errors import InvalidInputError
from ..tracking import RegionClippedWarning, RegionPrompt, Track
from ..video import VideoReader, time_span, window_length
from .results import FoundRegion, StageTimings


@dataclass(frozen=True)
class RegionInput:
    """Exactly one of ``prompts`` (to track) or ``tracks`` (already tracked), each element of its type.

    Build it with :meth:`of` from what a caller passed; a mistake is one :class:`InvalidInputError`.
    """

    prompts: tuple[RegionPrompt, ...] | None = None
    tracks: tuple[Track, ...] | None = None

    def __post_init__(self) -> None:
        if self.prompts is None and self.tracks is None:
            raise InvalidInputError("no regions were given: give either regions (prompts to track) or tracks")
        if self.prompts is not None and self.tracks is not None:
            raise InvalidInputError("give either regions (prompts to track) or tracks (already tracked), not both")
        for prompt in self.prompts or ():
            if not isinstance(prompt, RegionPrompt):
                raise InvalidInputError(f"regions must be RegionPrompt objects, got {type(prompt).__name__}")
        if self.tracks is not None:
            _check_tracks(self.tracks)

    @classmethod
    def of(cls, regions: Sequence[RegionPrompt] | None = None, tracks: Sequence[Track] | None = None) -> RegionInput:
        return cls(
            prompts=tuple(regions) if regions is not None else None,
            tracks=tuple(tracks) if tracks is not None else None,
        )

    @property
    def names(self) -> list[str]:
        """The region names, each once, in the order first given (text regions: the name given, before finding)."""
        if self.tracks is not None:
            return [t.name for t in self.tracks]
        return list(dict.fromkeys(p.name for p in self.prompts or ()))

    @property
    def has_text(self) -> bool:
        """Whether some prompt is a phrase the detector must find first."""
        return any(p.kind == "text" for p in self.prompts or ())

    def check_against(self, reader: VideoReader) -> None:
        """Given tracks must fit the video: its frame size and its frame count; prompts must be on one of its frames
        (a time beyond its end is refused) and fit its frame (a box or clicks outside it, a mask of another size;
        a box clipped to the frame is reported once, when it is tracked)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RegionClippedWarning)
            for prompt in self.prompts or ():
                if prompt.kind == "text" and prompt.when is None:
                    continue  # searched for over the span
                placed = prompt.resolve(reader.time_to_index)
                if placed.frame >= reader.num_frames:  # type: ignore[operator]
                    raise InvalidInputError(
                        f"the region {placed.name!r} is marked on frame {placed.frame}, beyond the video's last "
                        f"frame {reader.num_frames - 1}"
                    )
                if placed.kind != "text":
                    placed.fit_to_frame(reader.width, reader.height)
        for track in self.tracks or ():
            if track.frames[0].size != (reader.height, reader.width):
                h, w = track.frames[0].size
                raise InvalidInputError(
                    f"track {track.name!r} has {w}x{h} masks but the video is {reader.width}x{reader.height}"
                )
            if track.frames[-1].index >= reader.num_frames:
                raise InvalidInputError(
                    f"track {track.name!r} has a mask on frame {track.frames[-1].index}, beyond the video's "
                    f"{reader.num_frames} frames"
                )


@dataclass(frozen=True)
class RegionTracks:
    """The tracks a call works on, with the text regions found on the way and the time spent.

    ``tracked``: SAM2 made the tracks (False: the caller gave them, and provenance names no SAM2).
    """

    tracks: tuple[Track, ...]
    found: tuple[FoundRegion, ...] = ()
    timings: StageTimings = StageTimings()
    tracked: bool = False


def _check_tracks(tracks: Sequence[Track]) -> None:
    if not tracks:
        raise InvalidInputError("no tracks were given")
    for track in tracks:
        if not isinstance(track, Track):
            raise InvalidInputError(f"tracks must be Track objects, got {type(track).__name__}")
        if not track.frames:
            raise InvalidInputError(f"track {track.name!r} has no frames")
    names = [t.name for t in tracks]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"track names must be distinct, got {names}")


def only(items: Sequence, names: Sequence[str]) -> list:
    """The prompts or tracks of the regions ``names``, in their own order."""
    return [item for item in items if item.name in names]


TimeLike = "float | str | None"


def check_inputs(
    reader: VideoReader,
    regions: Sequence[RegionPrompt] | None = None,
    tracks: Sequence[Track] | None = None,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    stride: int = defaults.STRIDE,
    window: float | None = defaults.WINDOW,
    describing: bool = False,
) -> None:
    """Check a call's inputs against the video without a model, as :meth:`Pipeline.track`, ``describe`` and ``ask``
    will: the span, the window length (``describing``), the regions or tracks (:meth:`RegionInput.check_against`:
    a moment beyond the video's end, a box or clicks outside the frame, a mask or tracks of another size). Front-ends
    call it before loading the models."""
    span = time_span(reader.timeline, start, end)
    if describing:
        window_length(reader.timeline, span, window, stride)
    RegionInput.of(regions or None, tracks).check_against(reader)
