"""Streaming holds a bounded number of frames, however long the video is."""

from __future__ import annotations

import tracemalloc
import weakref

import pytest

from garvideo.testing import clips
from garvideo.video import open_video


@pytest.fixture(scope="module")
def short_and_long(tmp_path_factory):
    folder = tmp_path_factory.mktemp("memory")
    short = clips.constant_rate_clip(folder / "short.mp4", num_frames=30, size=(160, 120), gop=15, bframes=2)
    long = clips.constant_rate_clip(folder / "long.mp4", num_frames=300, size=(160, 120), gop=15, bframes=2)
    return short, long


def _stream(path, backward: bool, max_buffered_frames: int = 4) -> tuple[int, int, int]:
    """(frames seen, most frames alive at once, peak traced Python/numpy bytes while streaming)."""
    alive: weakref.WeakSet = weakref.WeakSet()
    most_alive = seen = 0
    with open_video(path, backend="pyav", max_buffered_frames=max_buffered_frames) as video:
        start = video.num_frames - 1 if backward else 0
        tracemalloc.start()
        try:
            for frame in video.iter_frames(start=start, step=-1 if backward else 1):
                alive.add(frame)
                seen += 1
                most_alive = max(most_alive, len(alive))
                del frame
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return seen, most_alive, peak


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_streaming_memory_does_not_grow_with_length(short_and_long, backward):
    short, long = short_and_long
    short_seen, short_alive, short_peak = _stream(short.path, backward)
    long_seen, long_alive, long_peak = _stream(long.path, backward)
    assert (short_seen, long_seen) == (30, 300)
    # Forward hands out one frame at a time; backward holds one chunk (max_buffered_frames).
    assert long_alive == short_alive <= (1 if not backward else 4)
    # Ten times the frames, the same peak (a little slack for allocator noise),
    # where keeping the frames would add 300 Frame objects and their bookkeeping.
    assert long_peak < short_peak + 32_000


def test_holding_frames_is_visible_to_the_measure(short_and_long):
    # The measure above can fail: keeping every frame shows up in both numbers.
    _, long = short_and_long
    kept = []
    alive: weakref.WeakSet = weakref.WeakSet()
    with open_video(long.path, backend="pyav") as video:
        tracemalloc.start()
        try:
            for frame in video.iter_frames():
                kept.append(frame)
                alive.add(frame)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(alive) == 300
    assert peak > 32_000
