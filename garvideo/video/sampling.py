"""Time spans, windows and choosing frames: the one vocabulary the pipeline, the reader and the CLI share.

- :func:`time_span` checks a user's ``[start, end)`` against a video (seconds or
  ``m:ss``; both default to the video's ends) and gives a :class:`Span`.
- :func:`windows` cuts a span into consecutive windows (:func:`window_bounds`:
  a last window shorter than a quarter of the length joins the one before it;
  no length = :func:`adaptive_window_length`, at most 8 round windows) and
  picks each window's frames. ``Pipeline.describe`` cuts its timeline the
  same way, so ``windows(...)`` shows the windows and frames it will use.
- :func:`spread` picks ``count`` of a list evenly, first and last included;
  :func:`uniform` is that spread over the frames that start in a range, which
  is how the pipeline picks the frames GAR sees among those a region is
  visible in.
- :func:`at_rate`, :func:`at_times` take the frame on screen at given moments;
  :func:`every` and :func:`at_indices` go by frame index.

Every function maps times to frames through the :class:`Timeline`, so the
choice is exact on variable-frame-rate clips, and frame choices come back as a
:class:`FrameSelection` (indices with their presentation times). Times are
seconds since the first frame. Nothing here imports torch: the command line
checks ``--window`` (:func:`check_window_length`) before any model is loaded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..errors import InvalidInputError
from ..timecode import parse_seconds
from .facts import FrameSelection, Window
from .timeline import Timeline

#: Window lengths (seconds) the adaptive timeline chooses from.
NICE_WINDOW_LENGTHS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
#: The adaptive timeline has at most this many windows.
MAX_ADAPTIVE_WINDOWS = 8
#: A timeline has at most this many windows (one a minute over 16 hours): each costs a GAR call per region.
MAX_WINDOWS = 1000

_Item = TypeVar("_Item")


# ---------------------------------------------------------------------- spans


@dataclass(frozen=True)
class Span:
    """A checked range of a video: times ``[start, end)`` and the frames ``[first, stop)`` to read for it.

    ``first`` is the frame on screen at ``start`` (it may have started a little
    before); the frames a span *holds* are those whose time is in
    ``[start, end)`` (:meth:`holds_time`).
    """

    first: int
    stop: int
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def holds_time(self, seconds: float) -> bool:
        return self.start <= seconds < self.end


def _seconds(value: float | str | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_seconds(value)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the {what} time must be seconds or m:ss, got {value!r}") from None
    if not math.isfinite(seconds):
        raise InvalidInputError(f"the {what} time must be a finite number of seconds, got {value!r}")
    return seconds


def time_span(timeline: Timeline, start: float | str | None = None, end: float | str | None = None) -> Span:
    """``[start, end)`` (seconds, or text such as ``"1:02.5"``) checked against the video; both default to its ends."""
    duration = timeline.duration
    t0 = _seconds(start, "start")
    t1 = _seconds(end, "end")
    t0 = 0.0 if t0 is None else t0
    if t0 >= duration:
        raise InvalidInputError(
            f"the start time {t0:.3f} s is beyond the end of {timeline.name}, which lasts {duration:.3f} s"
        )
    t1 = duration if t1 is None else t1
    if t0 < 0 or t1 <= t0:
        raise InvalidInputError(f"the time range {t0:.3f} s to {t1:.3f} s is empty: the end must come after the start")
    if t1 > duration + 1e-6:
        raise InvalidInputError(
            f"the time range {t0:.3f} s to {t1:.3f} s is outside {timeline.name}, which lasts {duration:.3f} s"
        )
    first, stop = timeline.index_range(t0, t1)
    return Span(first=first, stop=stop, start=t0, end=min(t1, duration))


# ---------------------------------------------------------------------- windows


def adaptive_window_length(span: float) -> float:
    """The shortest nice length that cuts ``span`` seconds into at most :data:`MAX_ADAPTIVE_WINDOWS` windows."""
    for length in NICE_WINDOW_LENGTHS:
        if span / length <= MAX_ADAPTIVE_WINDOWS + 1e-9:
            return length
    return math.ceil(span / MAX_ADAPTIVE_WINDOWS)


def check_window_length(
    window: object,
    frame_interval: float,
    *,
    span: float | None = None,
    stride: int = 1,
    source: str = "the video",
) -> float:
    """``window`` as seconds, or :class:`InvalidInputError` saying the shortest length that works.

    A window shorter than the interval between tracked frames (``stride``
    frames of ``frame_interval`` seconds) could hold no frame; one cutting
    ``span`` seconds (when given) into more than :data:`MAX_WINDOWS` windows
    would plan a GAR call per window and region.
    """
    try:
        length = float(window)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"the window length must be a number of seconds, got {window!r}") from None
    if not math.isfinite(length) or length <= 0:
        raise InvalidInputError(f"the window length must be a positive, finite number of seconds, got {window!r}")
    stride = max(1, int(stride))
    shortest = frame_interval * stride
    if length < shortest * (1 - 1e-6):
        if stride > 1:
            what = f"the {stride} frames between tracked frames (stride {stride}) of {source} ({shortest:.4g} s)"
        else:
            what = f"one frame interval of {source} ({frame_interval:.4g} s)"
        raise InvalidInputError(
            f"a {length:g} s window is shorter than {what}: it could hold no frame; give a window of at least "
            f"{shortest:.4g} s"
        )
    if span is not None:
        count = math.ceil(span / length - 1e-9)
        if count > MAX_WINDOWS:
            raise InvalidInputError(
                f"a {length:g} s window cuts the {span:.3f} s range into {count} windows, at most {MAX_WINDOWS} are "
                f"allowed: give a window of at least {span / MAX_WINDOWS:.3g} s, or a shorter range with start/end"
            )
    return length


def window_length(timeline: Timeline, span: Span, window: float | None, stride: int = 1) -> float:
    """The timeline's window length over ``span``: ``window`` checked (:func:`check_window_length`), or adaptive."""
    if window is None:
        return adaptive_window_length(span.seconds)
    interval = timeline.duration / max(1, len(timeline))
    return check_window_length(window, interval, span=span.seconds, stride=stride, source=timeline.name)


def window_bounds(start: float, end: float, length: float) -> list[tuple[float, float]]:
    """Consecutive ``[a, b)`` spans of ``length`` seconds covering ``[start, end)``.

    A last span shorter than a quarter of ``length`` is merged into the one
    before it, so no window holds just a frame or two.
    """
    if length <= 0:
        raise InvalidInputError(f"the window length must be positive, got {length} s")
    count = max(1, math.ceil((end - start) / length - 1e-9))
    bounds = [(start + k * length, min(start + (k + 1) * length, end)) for k in range(count)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < length / 4:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


# ---------------------------------------------------------------------- choosing frames


def spread(items: Sequence[_Item], count: int) -> list[_Item]:
    """``count`` items evenly spread over ``items`` (first and last included); all of them if fewer."""
    if count < 1:
        raise InvalidInputError(f"the number of frames must be at least 1, got {count}")
    if len(items) <= count:
        return list(items)
    positions = np.round(np.linspace(0, len(items) - 1, count)).astype(int)
    return [items[p] for p in positions]


def _starting_within(timeline: Timeline, bounds: Sequence[tuple[float, float]]) -> list[list[int]]:
    """For each ``[a, b)``, the frames whose time ``t`` has ``a <= t < b``, in index order.

    The same exact comparison the pipeline makes on a track's frame times, so a
    window here holds the frames it holds there.
    """
    order = np.argsort(timeline.times, kind="stable")  # times may step back in rare files
    ordered_times = timeline.times[order]
    result = []
    for a, b in bounds:
        low, high = np.searchsorted(ordered_times, [a, b], side="left")
        result.append(sorted(int(i) for i in order[low:high]))
    return result


def _selection(timeline: Timeline, indices: Iterable[int]) -> FrameSelection:
    chosen = tuple(int(i) for i in indices)
    return FrameSelection(indices=chosen, times=tuple(float(timeline.times[i]) for i in chosen))


def _is_whole(value: object) -> bool:
    """An integer of any kind (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_positive_number(value: object) -> bool:
    """A finite number > 0 of any kind (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _unique_in_order(indices: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in indices))


def _check_count(count: Any) -> int:
    if not _is_whole(count) or count < 1:
        raise InvalidInputError(f"the number of frames to sample must be a positive integer, got {count!r}")
    return int(count)


def uniform(
    timeline: Timeline, count: int, start: float | str | None = None, end: float | str | None = None
) -> FrameSelection:
    """``count`` of the frames that start in ``[start, end)``, spread evenly by :func:`spread`: the first and
    the last of them included, as the pipeline spreads the frames GAR sees. All of them when there are no more
    than ``count``; none for a range that falls between two frames."""
    count = _check_count(count)
    span = time_span(timeline, start, end)
    (inside,) = _starting_within(timeline, [(span.start, span.end)])
    return _selection(timeline, spread(inside, count))


def at_rate(
    timeline: Timeline, fps: float, start: float | str | None = None, end: float | str | None = None
) -> FrameSelection:
    """The frames on screen every ``1 / fps`` seconds from ``start``.

    No frame comes twice when ``fps`` exceeds the video's own rate."""
    if not _is_positive_number(fps):
        raise InvalidInputError(f"the sampling rate must be a positive number of frames per second, got {fps!r}")
    fps = float(fps)
    span = time_span(timeline, start, end)
    steps = max(1, math.ceil(span.seconds * fps - 1e-9))
    moments = span.start + np.arange(steps) / fps
    return _selection(timeline, _unique_in_order(timeline.time_to_index(t) for t in moments if t < span.end))


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
    length: float | None = None,
    frames_per_window: int | None = None,
    fps: float | None = None,
    start: float | str | None = None,
    end: float | str | None = None,
) -> list[Window]:
    """The windows ``Pipeline.describe`` cuts ``[start, end)`` into, each with its frames.

    ``length`` seconds each (None: :func:`adaptive_window_length`; a length
    the pipeline refuses is refused here too), the last one merged into the
    one before when shorter than a quarter of ``length`` (:func:`window_bounds`).
    Each window holds ``frames_per_window`` of the frames that start in it,
    spread as :func:`uniform` does (the pipeline's choice for a region visible
    throughout; none where no frame starts), or the frames on screen at
    ``fps`` (:func:`at_rate`): exactly one of the two.
    """
    if (frames_per_window is None) == (fps is None):
        raise InvalidInputError("give the frames of each window as either a count per window or a rate (fps)")
    if frames_per_window is not None:
        frames_per_window = _check_count(frames_per_window)
    span = time_span(timeline, start, end)
    bounds = window_bounds(span.start, span.end, window_length(timeline, span, length))
    if frames_per_window is not None:
        chosen = [
            _selection(timeline, spread(inside, frames_per_window)) for inside in _starting_within(timeline, bounds)
        ]
    else:
        assert fps is not None
        chosen = [at_rate(timeline, fps, a, b) for a, b in bounds]
    return [
        Window(number=number, start=a, end=b, selection=selection)
        for number, ((a, b), selection) in enumerate(zip(bounds, chosen))
    ]
