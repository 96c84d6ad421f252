"""Streaming frames from a FrameSource in either direction."""

from __future__ import annotations

import logging

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


def test_a_video_shorter_than_announced_ends_the_stream_with_a_warning(caplog):
    class Truncated(MovingSquareSource):  # announces 12 frames, decodes 10
        def iter_frames(self, start=0, stop=None, step=1):
            for frame in super().iter_frames(start, stop, step):
                if frame.index >= 10:
                    return
                yield frame

    source = Truncated(12)
    with caplog.at_level(logging.WARNING):
        got = [f.index for f in stream_frames(source, list(range(6, 12)))]
    assert got == [6, 7, 8, 9]
    assert "ended before frame 10" in caplog.text


def test_a_source_that_returns_other_frames_is_a_bug():
    class Skipping(MovingSquareSource):
        def iter_frames(self, start=0, stop=None, step=1):
            for frame in super().iter_frames(start, stop, step):
                yield SimpleFrame(frame.index + 1, frame.time, frame.image)

    with pytest.raises(RuntimeError, match="yielded frame 3 where frame 2"):
        list(stream_frames(Skipping(10), [2, 3]))
