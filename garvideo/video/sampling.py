"""Choosing frames: uniformly, at a rate, every k-th, at given indices or times, per window.

Every function maps times to frames through the :class:`Timeline`, so the
choice is exact on variable-frame-rate clips, and returns a
:class:`FrameSelection` (indices with their presentation times). Times are
seconds since the first frame; a range ``[start, end)`` defaults to the whole
video.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from ..errors import InvalidInputError
from .facts import FrameSelection, Window
from .timeline import Timeline


def _selection(timeline: Timeline, indices: Iterable[int]) -> FrameSelection:
    chosen = tuple(int(i) for i in indices)
    return FrameSelection(indices=chosen, times=tuple(float(timeline.times[i]) for i in chosen))


def _time_range(timeline: Timeline, start: float | None, end: float | None) -> tuple[float, float]:
    start = 0.0 if start is None else timeline.check_time(start)
    end = timeline.duration if end is None else timeline.check_time(end)
    if end <= start:
        raise InvalidInputError(f"the time range must end after it starts, got {start:.3f} s to {end:.3f} s")
    return start, end


def _is_whole(value: object) -> bool:
    """An integer of any kind (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_positive_number(value: object) -> bool:
    """A finite number > 0 of any kind (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _unique_in_order(indices: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in indices))


def uniform(timeline: Timeline, count: int, start: float | None = None, end: float | None = None) -> FrameSelection:
    """``count`` frames spread evenly over ``[start, end)``: the frames on screen at the middles of
    ``count`` equal spans. Fewer come back when the range holds fewer frames (no frame twice)."""
    if not _is_whole(count) or count < 1:
        raise InvalidInputError(f"the number of frames to sample must be a positive integer, got {count!r}")
    count = int(count)
    start, end = _time_range(timeline, start, end)
    first, stop = timeline.index_range(start, end)
    if count >= stop - first:
        return _selection(timeline, range(first, stop))
    span = (end - start) / count
    middles = start + span * (np.arange(count) + 0.5)
    return _selection(timeline, _unique_in_order(timeline.time_to_index(t) for t in middles))


def at_rate(timeline: Timeline, fps: float, start: float | None = None, end: float | None = None) -> FrameSelection:
    """The frames on screen every ``1 / fps`` seconds from ``start``.

    No frame comes twice when ``fps`` exceeds the video's own rate."""
    if not _is_positive_number(fps):
        raise InvalidInputError(f"the sampling rate must be a positive number of frames per second, got {fps!r}")
    fps = float(fps)
    start, end = _time_range(timeline, start, end)
    steps = max(1, math.ceil((end - start) * fps - 1e-9))
    moments = start + np.arange(steps) / fps
    return _selection(timeline, _unique_in_order(timeline.time_to_index(t) for t in moments if t < end))


def every(timeline: Timeline, step: int, start: int = 0, stop: int | None = None) -> FrameSelection:
    """Every ``step``-th frame from index ``start`` up to ``stop`` (exclusive, None = the end)."""
    if not _is_whole(step) or step < 1:
        raise InvalidInputError(f"the frame step must be a positive integer, got {step!r}")
    if stop is not None and not _is_whole(stop):
        raise InvalidInputError(f"the frame to stop before must be an integer index or None, got {stop!r}")
    start = timeline.check_index(start)
    stop = len(timeline) if stop is None else min(int(stop), len(timeline))
    return _selection(timeline, range(start, stop, int(step)))


def at_indices(timeline: Timeline, indices: Iterable[int]) -> FrameSelection:
    """Exactly these frame indices, in the given order (each checked against the video's length)."""
    return _selection(timeline, [timeline.check_index(i) for i in indices])


def at_times(timeline: Timeline, seconds: Iterable[float]) -> FrameSelection:
    """The frame on screen at each of these times, in the given order (one entry per time)."""
    return _selection(timeline, [timeline.time_to_index(t) for t in seconds])


def windows(
    timeline: Timeline,
    length: float,
    frames_per_window: int | None = None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> list[Window]:
    """Consecutive windows of ``length`` seconds over ``[start, end)`` (the last one may be shorter),
    each with ``frames_per_window`` uniform frames or frames at ``fps`` (exactly one of the two)."""
    if not _is_positive_number(length):
        raise InvalidInputError(f"the window length must be a positive number of seconds, got {length!r}")
    length = float(length)
    if (frames_per_window is None) == (fps is None):
        raise InvalidInputError("give the frames of each window as either a count per window or a rate (fps)")
    start, end = _time_range(timeline, start, end)
    result: list[Window] = []
    count = max(1, math.ceil((end - start) / length - 1e-9))
    for number in range(count):
        window_start = start + number * length
        window_end = min(end, start + (number + 1) * length)
        if window_end - window_start <= 1e-9:
            break
        if frames_per_window is not None:
            chosen = uniform(timeline, frames_per_window, window_start, window_end)
        else:
            assert fps is not None
            chosen = at_rate(timeline, fps, window_start, window_end)
        result.append(Window(number=number, start=window_start, end=window_end, selection=chosen))
    return result
