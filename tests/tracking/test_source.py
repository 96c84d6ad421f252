"""Streaming frames from a FrameSource in either direction."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.testing.sam2 import ArrayFrameSource, MovingSquareSource, SimpleFrame
from garvideo.tracking.source import arithmetic_runs, stream_frames


def test_arithmetic_runs_cut_scans_into_constant_steps():
    assert arithmetic_runs([]) == []
    assert arithmetic_runs([5]) == [(5, 5, 1)]
    assert arithmetic_runs([0, 4, 8, 10, 12]) == [(0, 8, 4), (10, 12, 2)]
    assert arithmetic_runs([9, 6, 3, 0]) == [(9, 0, -3)]
    assert arithmetic_runs([7, 3, 2, 1, 0]) == [(7, 3, -4), (2, 0, -1)]


@pytest.mark.parametrize("indices", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 5, 8, 10, 11, 14], [14, 11, 8, 7, 6], [6], [0]])
def test_stream_frames_yields_exactly_the_asked_frames(indices):
    frames = np.random.default_rng(0).integers(0, 255, (15, 4, 6, 3), dtype=np.uint8)
    source = ArrayFrameSource(frames, fps=10)
    got = list(stream_frames(source, indices))
    assert [f.index for f in got] == indices
    assert all(np.array_equal(f.image, frames[f.index]) and f.time == f.index / 10 for f in got)
    assert source.frames_rendered == len(indices)


class _Dropping(MovingSquareSource):
    """A source that cannot decode some frames: it leaves them out, as a reader does with damaged data."""

    def __init__(self, num_frames, lost):
        super().__init__(num_frames)
        self.lost = set(lost)

    def iter_frames(self, start=0, stop=None, step=1):
        return (f for f in super().iter_frames(start, stop, step) if f.index not in self.lost)


@pytest.mark.parametrize(
    "indices, lost, expected",
    [
        (list(range(6, 12)), {10, 11}, [6, 7, 8, 9]),  # a video shorter than announced
        (list(range(0, 8)), {0, 3, 4}, [1, 2, 5, 6, 7]),
        (list(range(9, -1, -1)), {9, 5}, [8, 7, 6, 4, 3, 2, 1, 0]),
        ([0, 4, 8, 10, 12], {4, 10}, [0, 8, 12]),  # two runs of different steps
        ([5], {5}, []),
    ],
)
def test_frames_the_source_cannot_decode_are_left_out(indices, lost, expected):
    assert [f.index for f in stream_frames(_Dropping(14, lost), indices)] == expected


def test_the_stream_stops_at_the_last_asked_frame():
    source = ArrayFrameSource(np.zeros((10, 4, 6, 3), np.uint8))
    assert [f.index for f in stream_frames(source, [2, 3])] == [2, 3]
    assert source.frames_rendered == 2


class _Shifted(MovingSquareSource):
    """A buggy source: every frame comes with another index than its own."""

    def __init__(self, num_frames, shift):
        super().__init__(num_frames)
        self.shift = shift

    def iter_frames(self, start=0, stop=None, step=1):
        for frame in super().iter_frames(start, stop, step):
            yield SimpleFrame(frame.index + self.shift, frame.time, frame.image)


@pytest.mark.parametrize(
    "shift, indices, message",
    [
        (-1, [2, 3], r"yielded frame 1 where frame 2 or a later one of 2\.\.3 \(step 1\) was asked for"),
        (1, [6, 5, 4], r"yielded frame 7 where frame 6 or a later one of 6\.\.4 \(step -1\)"),
        (1, [0, 2, 4], r"yielded frame 1 where frame 0 or a later one of 0\.\.4 \(step 2\)"),  # off the grid
        (5, [3], r"yielded frame 8 where frame 3 or a later one of 3 was asked for"),
    ],
)
def test_a_source_that_returns_frames_not_asked_for_is_a_bug(shift, indices, message):
    with pytest.raises(RuntimeError, match=message):
        list(stream_frames(_Shifted(10, shift), indices))
