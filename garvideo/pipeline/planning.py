"""Which frames each GAR prompt shows, planned from the tracks before a frame is decoded.

``describe`` gives every region one prompt for its overall description and one per timeline window;
``ask`` gives one prompt over the frames where any region it is about is seen. Frames are spread
(first and last included, :func:`garvideo.video.spread`) over the tracked frames where the region
is visible. A live session's describer and training's video examples plan with these same
functions, so "the frames a description saw" means one thing everywhere.

>>> plan = plan_description(tracks, span, window_bounds(span.start, span.end, 1.0), frames=8, frames_per_window=4)
>>> for (region, window), frames in plan.prompts():   # window None: the region's overall description
...     ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..tracking import Track, TrackFrame
from ..video import Span, spread
from .errors import PipelineError
from .results import RegionTimeline, TimelineWindow

#: A prompt of a description: (region name, window number from 0; None for the region's overall description).
PromptKey = tuple[str, "int | None"]


@dataclass(frozen=True)
class DescriptionPlan:
    """Which frames every prompt of a description shows.

    ``bounds``: the timeline's windows ``(start, end)`` in seconds. ``frames[(region, window)]``: the frames
    of that prompt (empty: the region is not seen in that window). ``visible_spans``: per region, its
    first and last visible time. ``untracked``: the (region, window) pairs no tracked frame falls in, which
    say nothing about visibility.
    """

    bounds: tuple[tuple[float, float], ...]
    frames: Mapping[PromptKey, tuple[int, ...]]
    visible_spans: Mapping[str, tuple[float, float]]
    untracked: frozenset[tuple[str, int]]

    def prompts(self) -> list[tuple[PromptKey, tuple[int, ...]]]:
        """The prompts GAR runs, in order: every one with frames (an unseen window has none)."""
        return [(key, frames) for key, frames in self.frames.items() if frames]

    def frame_indices(self) -> list[int]:
        """Every planned frame once, in order (each is decoded once however many prompts show it)."""
        return sorted({i for frames in self.frames.values() for i in frames})


def visible_frames(track: Track, span: Span) -> list[TrackFrame]:
    """The track's visible frames in the span; a region never visible there is refused (nothing to show GAR)."""
    seen = [f for f in track.frames if f.visible and span.holds_time(f.time)]
    if not seen:
        raise PipelineError(
            f"region {track.name!r} is never visible between {span.start:.3f} s and {span.end:.3f} s: "
            f"check its prompt, or widen the range"
        )
    return seen


def plan_description(
    tracks: Sequence[Track],
    span: Span,
    bounds: Sequence[tuple[float, float]],
    frames: int,
    frames_per_window: int,
) -> DescriptionPlan:
    """``frames`` of each region's visible frames for its overall description, ``frames_per_window`` of those
    in each window for the window's."""
    plans: dict[PromptKey, tuple[int, ...]] = {}
    spans: dict[str, tuple[float, float]] = {}
    untracked: set[tuple[str, int]] = set()
    for track in tracks:
        seen = visible_frames(track, span)
        tracked_times = np.array([f.time for f in track.frames])
        spans[track.name] = (seen[0].time, seen[-1].time)
        plans[track.name, None] = tuple(f.index for f in spread(seen, frames))
        for number, (a, b) in enumerate(bounds):
            if not np.any((tracked_times >= a) & (tracked_times < b)):
                untracked.add((track.name, number))
            inside = [f.index for f in seen if a <= f.time < b]
            plans[track.name, number] = tuple(spread(inside, frames_per_window)) if inside else ()
    return DescriptionPlan(tuple(bounds), plans, spans, frozenset(untracked))


def plan_answer(tracks: Sequence[Track], span: Span, frames: int) -> list[int]:
    """``frames`` frames spread over those in the span where any of the tracks is visible (each must be seen)."""
    seen: set[int] = set()
    for track in tracks:
        seen.update(f.index for f in visible_frames(track, span))
    return spread(sorted(seen), frames)


def timelines(
    tracks: Sequence[Track],
    plan: DescriptionPlan,
    texts: Mapping[PromptKey, str],
    times: Mapping[int, float],
) -> list[RegionTimeline]:
    """Each region's overall description and its windows, with the frames (and their ``times``) each was made from."""

    def times_of(frames: Sequence[int]) -> tuple[float, ...]:
        return tuple(times[i] for i in frames)

    out = []
    for track in tracks:
        windows = []
        for number, (a, b) in enumerate(plan.bounds):
            frames = plan.frames[track.name, number]
            visible = None if (track.name, number) in plan.untracked else bool(frames)
            description = texts.get((track.name, number))
            windows.append(TimelineWindow(a, b, visible, description, tuple(frames), times_of(frames)))
        overall = plan.frames[track.name, None]
        out.append(
            RegionTimeline(
                name=track.name,
                description=texts[track.name, None],
                windows=tuple(windows),
                visible_span=plan.visible_spans[track.name],
                frames=tuple(overall),
                times=times_of(overall),
            )
        )
    return out
