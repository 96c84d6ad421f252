"""What the tracker needs from a video: numbered RGB frames, streamed in either direction.

The tracker never imports the video module. It reads frames through the two
small protocols below, which :class:`garvideo.video.VideoReader` and its
``Frame`` satisfy as they are; tests use the in-memory sources of
:mod:`garvideo.testing.sam2`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FrameLike(Protocol):
    """One decoded frame: its index in the video, its time in seconds, its RGB pixels."""

    @property
    def index(self) -> int: ...

    @property
    def time(self) -> float: ...

    @property
    def image(self) -> np.ndarray:
        """``(height, width, 3)`` uint8 RGB, in the displayed orientation."""
        ...


@runtime_checkable
class FrameSource(Protocol):
    """A video the tracker can stream frames from, forward or backward.

    ``iter_frames`` has ``range()`` semantics over frame indices: ``stop`` is
    exclusive (``None`` = the end); a negative ``step`` walks backward from
    ``start`` down to ``stop`` (exclusive; ``None`` = down to frame 0).
    """

    @property
    def num_frames(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[FrameLike]: ...


def arithmetic_runs(indices: Sequence[int]) -> list[tuple[int, int, int]]:
    """Cut a monotonic list of indices into ``(first, last, step)`` runs of constant step.

    ``[0, 4, 8, 10, 12]`` gives ``[(0, 8, 4), (10, 12, 2)]``: a strided scan with
    a few off-grid prompt frames becomes a handful of ``iter_frames`` calls,
    instead of one call per frame (which would make a real reader seek often).
    """
    runs: list[tuple[int, int, int]] = []
    pos = 0
    while pos < len(indices):
        first = indices[pos]
        if pos + 1 == len(indices):
            runs.append((first, first, 1))
            break
        step = indices[pos + 1] - first
        if step == 0:
            raise ValueError(f"repeated frame index {first} in a scan")
        end = pos + 1
        while end + 1 < len(indices) and indices[end + 1] - indices[end] == step:
            end += 1
        runs.append((first, indices[end], step))
        pos = end + 1
    return runs


def stream_frames(source: FrameSource, indices: Sequence[int]) -> Iterator[FrameLike]:
    """Yield the frames at ``indices`` (all ascending or all descending), in that order.

    A frame the source cannot decode is missing from the stream: a reader skips
    it (and warns, as :class:`garvideo.video.VideoReader` does for damaged
    data, a broken image in a frame folder or a video that ends before its
    header says), so the stream goes on with the next frame it yields. A
    source that yields a frame that was not asked for, or goes back in the
    order, is a bug in that source and raises :class:`RuntimeError`.
    """
    for first, last, step in arithmetic_runs(indices):
        if step > 0:
            stop: int | None = last + 1
        else:
            stop = last - 1 if last > 0 else None
        expected = range(first, last + (1 if step > 0 else -1), step)
        frames = source.iter_frames(first, stop, step)
        try:
            next_position = 0  # position in ``expected`` of the first frame not yet yielded
            for frame in frames:
                position = expected.index(frame.index) if frame.index in expected else -1
                if position < next_position:
                    raise RuntimeError(
                        f"the frame source yielded frame {frame.index} where frame {expected[next_position]} or a "
                        f"later one of {_describe(expected)} was asked for (iter_frames({first}, {stop}, {step}))"
                    )
                next_position = position + 1
                yield frame
                if next_position == len(expected):
                    break
        finally:
            # Let a real reader release its decoder now rather than at garbage collection.
            close = getattr(frames, "close", None)
            if close is not None:
                close()


def _describe(frames: range) -> str:
    return f"{frames.start}..{frames[-1]} (step {frames.step})" if len(frames) > 1 else str(frames.start)
