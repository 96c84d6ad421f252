"""Which frame is shown when: the exact mapping between frame indices and presentation times.

A :class:`Timeline` is built from the container's packets (no decoding), so it is
exact for variable-frame-rate clips too: frame ``i`` is the ``i``-th smallest
presentation timestamp of the video stream, and time 0 is the first frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np

from ..errors import InvalidInputError

# A time typed by a user (or printed with 6 decimals) may sit a hair before the
# frame it names; within this tolerance it still names that frame.
_TIME_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class Timeline:
    """Presentation times of every frame, in display order.

    ``pts`` are the stream's timestamps (``None`` when the container has none
    and times were estimated from the frame rate, see ``exact``, or when the
    frames were learnt by decoding, see :mod:`garvideo.video.decoded_index`);
    ``times`` are FFmpeg's best-effort timestamps in seconds since the first
    frame. They increase, except in rare files FFmpeg itself stamps out of order
    (e.g. the last frames of an MP4 whose pts are decode-order ones); lookups by
    time use :attr:`clock`. ``keyframes`` are the display indices where decoding
    can start after a seek.
    """

    name: str
    times: np.ndarray
    duration: float
    exact: bool
    pts: np.ndarray | None = None
    time_base: Fraction | None = None
    keyframes: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def num_frames(self) -> int:
        return len(self)

    def check_index(self, index: int) -> int:
        """``index`` as an int, or an :class:`InvalidInputError` naming the valid range."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidInputError(f"a frame index must be an integer, got {index!r}")
        index = int(index)
        if not 0 <= index < len(self):
            raise InvalidInputError(
                f"frame {index} is outside {self.name}: it has {len(self)} frames (0 to {len(self) - 1}), "
                f"{self.duration:.3f} s"
            )
        return index

    def index_to_time(self, index: int) -> float:
        """Presentation time in seconds (since the first frame) of frame ``index``."""
        return float(self.times[self.check_index(index)])

    @cached_property
    def clock(self) -> np.ndarray:
        """``times`` made non-decreasing (each frame no earlier than the one before): what lookups by time search."""
        return np.maximum.accumulate(self.times) if self.times.size else self.times

    def time_to_index(self, seconds: float) -> int:
        """Index of the frame on screen at ``seconds`` (the last frame starting at or before it)."""
        seconds = self.check_time(seconds)
        position = int(np.searchsorted(self.clock, seconds + _TIME_TOLERANCE, side="right")) - 1
        return max(0, min(position, len(self) - 1))

    def index_range(self, start: float, end: float) -> tuple[int, int]:
        """Index range ``[first, stop)`` of the frames that start within ``[start, end)``.

        The frame already on screen at ``start`` counts too, so a range never comes out empty.
        """
        first = self.time_to_index(start)
        stop = int(np.searchsorted(self.clock, end - 1e-9, side="left"))
        return first, min(max(stop, first + 1), len(self))

    def check_time(self, seconds: float) -> float:
        """``seconds`` as a float within ``[0, duration]``, or an :class:`InvalidInputError`."""
        try:
            value = float(seconds)
        except (TypeError, ValueError):
            raise InvalidInputError(f"a time must be a number of seconds, got {seconds!r}") from None
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError(f"a time must be a finite number of seconds >= 0, got {seconds!r}")
        if value > self.duration + _TIME_TOLERANCE:
            raise InvalidInputError(
                f"time {value:.3f} s is beyond the end of {self.name}: it lasts {self.duration:.3f} s "
                f"({len(self)} frames)"
            )
        return value

    def index_of_pts(self, pts: int | None) -> int | None:
        """Display index of the frame with timestamp ``pts``; None if no frame has it."""
        if pts is None or self.pts is None:
            return None
        position = int(np.searchsorted(self.pts, pts))
        if position < len(self) and int(self.pts[position]) == pts:
            return position
        return None

    def keyframe_at_or_before(self, index: int) -> int:
        """Position in ``keyframes`` of the last keyframe at or before frame ``index`` (0 if none)."""
        return max(0, int(np.searchsorted(self.keyframes, index, side="right")) - 1)

    def is_variable_rate(self) -> bool:
        """Whether frame durations differ by more than timestamp rounding."""
        if len(self) < 3:
            return False
        deltas = np.diff(self.times)
        median = float(np.median(deltas))
        tick = float(self.time_base) if self.time_base is not None else 0.0
        tolerance = max(1.5 * tick, 0.01 * median)
        return bool(np.max(np.abs(deltas - median)) > tolerance)


def build_timeline(
    name: str,
    pts: list[int],
    keyframe_pts: list[int],
    time_base: Fraction,
    last_duration: int | None,
) -> Timeline:
    """A timeline from the packets' presentation timestamps (any order).

    ``last_duration`` is the last frame's display duration in ``time_base``
    units (None or 0 when the container does not say: then it lasts as long as
    the frame before it).
    """
    ordered = np.unique(np.asarray(pts, dtype=np.int64))
    origin = int(ordered[0])
    # int64 offsets times the numerator stay exact; one float division rounds them correctly.
    times = ((ordered - origin) * time_base.numerator).astype(np.float64) / time_base.denominator
    if not last_duration or last_duration <= 0:
        last_duration = int(ordered[-1] - ordered[-2]) if len(ordered) > 1 else 0
    duration = float((int(ordered[-1]) - origin + last_duration) * time_base)
    key_pts = np.unique(np.asarray(keyframe_pts, dtype=np.int64))
    key_indices = np.searchsorted(ordered, key_pts)
    # A clip whose first frames are not flagged as keyframes still decodes from the start.
    if key_indices.size == 0 or key_indices[0] != 0:
        key_indices = np.concatenate([[0], key_indices])
    return Timeline(
        name=name,
        times=times,
        duration=duration,
        exact=True,
        pts=ordered,
        time_base=time_base,
        keyframes=key_indices.astype(np.int64),
    )


def estimated_timeline(name: str, num_frames: int, fps: float) -> Timeline:
    """Times ``i / fps`` for a stream whose packets carry no timestamps (``exact`` is False)."""
    times = np.arange(num_frames, dtype=np.float64) / fps
    return Timeline(name=name, times=times, duration=num_frames / fps, exact=False)
