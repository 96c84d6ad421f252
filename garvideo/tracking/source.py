"""What the tracker needs from a video: numbered RGB frames, streamed in either direction.

The tracker never imports the video module. It reads frames through the two
small protocols below, which :class:`garvideo.video.VideoReader` and its
``Frame`` satisfy as they are; tests use the in-memory sources of
:mod:`garvideo.testing.sam2`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)


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

    A source that ends early (a video whose container promised more frames than
    it holds) ends the stream with a warning; a source that yields another
    frame than asked for is a bug in that source and raises.
    """
    for first, last, step in arithmetic_runs(indices):
        if step > 0:
            stop: int | None = last + 1
        else:
            stop = last - 1 if last > 0 else None
        expected = range(first, (last + 1) if step > 0 else (last - 1), step)
        frames = source.iter_frames(first, stop, step)
        try:
            for want in expected:
                frame = next(frames, None)
                if frame is None:
                    logger.warning("the video ended before frame %d although it claims more frames", want)
                    return
                if frame.index != want:
                    raise RuntimeError(
                        f"the frame source yielded frame {frame.index} where frame {want} was asked for "
                        f"(iter_frames({first}, {stop}, {step}))"
                    )
                yield frame
        finally:
            # Let a real reader release its decoder now rather than at garbage collection.
            close = getattr(frames, "close", None)
            if close is not None:
                close()
