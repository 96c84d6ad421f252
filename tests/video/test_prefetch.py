"""Decode-ahead: the same frames as decoding in place, errors at their frame, bounded, no leaked threads."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from garvideo.testing.clips import read_index
from garvideo.testing.waiting import wait_until, when_filled
from garvideo.video import DecodeAhead, decode_ahead, open_video

from . import realworld


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "garvideo-decode-ahead"]


def _wait_for_no_decode_threads(seconds: float = 5.0) -> list[threading.Thread]:
    wait_until(lambda: not _decode_threads(), seconds, every=0.01)
    return _decode_threads()


@pytest.fixture(autouse=True)
def no_threads_left():
    yield
    assert _wait_for_no_decode_threads() == []


def _same_frames(plain, ahead) -> None:
    assert [(f.index, f.time) for f in ahead] == [(f.index, f.time) for f in plain]
    for a, b in zip(plain, ahead, strict=True):
        assert a.image.dtype == b.image.dtype and np.array_equal(a.image, b.image)


@pytest.mark.parametrize("ahead", [1, 3, 64])
def test_same_frames_forward_backward_and_strided(long_gop_clip, ahead):
    with open_video(long_gop_clip.path, backend="pyav") as video:
        for start, stop, step in [(0, None, 1), (119, None, -1), (5, 100, 7), (90, 10, -3)]:
            plain = list(video.iter_frames(start, stop, step))
            with decode_ahead(video.iter_frames(start, stop, step), ahead) as frames:
                prefetched = list(frames)
            _same_frames(plain, prefetched)
    assert [read_index(f.image) for f in prefetched] == [f.index for f in prefetched]


@pytest.mark.skipif(realworld.NO_FFMPEG is not None, reason=f"needs {realworld.NO_FFMPEG}")
def test_same_frames_on_a_packed_bframes_avi(tmp_path):
    path = realworld.packed_bframes_avi(tmp_path / "packed.avi")
    with open_video(path) as video:
        plain = list(video.iter_frames())
        _same_frames(plain, list(decode_ahead(video.iter_frames(), 4)))
        backward = list(video.iter_frames(video.num_frames - 1, None, -1))
        _same_frames(backward, list(decode_ahead(video.iter_frames(video.num_frames - 1, None, -1), 4)))
    assert [f.index for f in plain] == list(range(len(plain)))


def test_a_decoder_error_is_raised_at_its_frame_after_the_frames_before_it():
    def frames():
        yield from range(5)
        raise OSError("damaged packet at 5")

    taken = []
    stream = decode_ahead(frames(), 3)
    with pytest.raises(OSError, match="damaged packet at 5"):
        for item in stream:
            taken.append(item)
    assert taken == [0, 1, 2, 3, 4]
    assert next(stream, "ended") == "ended"  # stays ended


def test_a_transform_runs_in_the_thread_and_its_error_comes_at_its_item():
    consumer = threading.current_thread()
    seen_threads = set()

    def square(x):
        seen_threads.add(threading.current_thread())
        if x == 3:
            raise ValueError("bad frame 3")
        return x * x

    taken = []
    with pytest.raises(ValueError, match="bad frame 3"):
        for item in decode_ahead(iter(range(10)), 2, transform=square):
            taken.append(item)
    assert taken == [0, 1, 4]
    assert seen_threads and consumer not in seen_threads


def _counting(produced: list[int], count: int = 1000):
    for i in range(count):
        produced.append(i)
        yield i


@pytest.mark.parametrize("ahead", [1, 4])
def test_the_producer_runs_at_most_ahead_items_ahead(ahead):
    produced: list[int] = []
    with decode_ahead(_counting(produced), ahead) as stream:
        for taken in range(1, 6):
            next(stream)
            # it runs as far ahead as it may, and no further
            assert len(when_filled(produced, taken + ahead, linger=0.05)) == taken + ahead


def test_stopping_early_stops_the_thread_and_closes_the_source():
    closed = threading.Event()
    produced: list[int] = []

    def frames():
        try:
            yield from _counting(produced)
        finally:
            closed.set()

    stream = decode_ahead(frames(), 4)
    for item in stream:
        if item == 10:
            break
    stream.close()
    assert closed.is_set() and _decode_threads() == []
    assert len(produced) <= 11 + 4


def test_a_consumer_error_inside_with_stops_the_thread(long_gop_clip):
    with open_video(long_gop_clip.path) as video:
        with pytest.raises(RuntimeError, match="tracker failed"):
            with decode_ahead(video.iter_frames(), 4) as frames:
                for frame in frames:
                    if frame.index == 7:
                        raise RuntimeError("tracker failed")
        assert _decode_threads() == []
        # the decoder is free again: the reader goes on as if nothing had happened
        assert [f.index for f in video.iter_frames(3, 6)] == [3, 4, 5]


def test_a_stream_dropped_without_closing_ends_its_thread():
    stream = decode_ahead(_counting([]), 2)
    next(stream)
    del stream
    gc.collect()
    assert _wait_for_no_decode_threads() == []


def test_closing_before_the_first_item_starts_no_thread_and_closes_the_source():
    closed = []

    def frames():
        try:
            yield 1
        finally:
            closed.append(True)

    source = frames()
    next(source)  # started, so that close() runs its finally
    stream = DecodeAhead(source, 2)
    stream.close()
    assert closed == [True] and _decode_threads() == []


@pytest.mark.parametrize("ahead", [0, -1, True, 2.0])
def test_ahead_must_be_a_positive_whole_number(ahead):
    with pytest.raises(ValueError, match="ahead >= 1"):
        decode_ahead(iter(()), ahead)


def test_a_thread_that_cannot_start_raises_its_own_error(monkeypatch):
    # With threads exhausted, the real error must come out, not "cannot join thread before it is started" from close()
    def refused(_thread):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    closed = []

    def frames():
        try:
            yield from range(3)
        finally:
            closed.append(True)

    items = frames()
    next(items)  # started, so that closing it runs its finally
    ahead = decode_ahead(items)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        next(ahead)
    ahead.close()  # no error of its own
    assert closed == [True]
