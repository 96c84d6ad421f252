"""Frame sampling: uniform, at a rate, every k-th, explicit indices/times, windows; decoded exactly."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.errors import InvalidInputError
from garvideo.testing.clips import read_index
from garvideo.video import FrameSelection, open_video


def _consistent(video, selection: FrameSelection) -> None:
    assert len(selection.indices) == len(selection.times)
    for index, time in zip(selection.indices, selection.times):
        assert time == video.index_to_time(index)


def test_uniform_over_the_whole_video(cfr_clip):
    with open_video(cfr_clip.path) as video:
        chosen = video.sample_uniform(5)
        _consistent(video, chosen)
    # 2 s in 5 spans of 0.4 s; the middles 0.2, 0.6, 1.0, 1.4, 1.8 s fall on frames 3, 9, 15, 21, 27.
    assert chosen.indices == (3, 9, 15, 21, 27)


def test_uniform_over_a_time_range(cfr_clip):
    with open_video(cfr_clip.path) as video:
        chosen = video.sample_uniform(2, start=1.0, end=1.8)
    assert chosen.indices == (18, 24)  # middles 1.2 s and 1.6 s, at 15 fps


def test_uniform_gives_each_frame_once_when_asking_for_more_than_there_are(cfr_clip):
    with open_video(cfr_clip.path) as video:
        assert video.sample_uniform(100).indices == tuple(range(30))
        assert video.sample_uniform(10, start=0.5, end=0.8).indices == (7, 8, 9, 10, 11)


def test_uniform_follows_time_on_variable_rate_clips(vfr_mp4_clip):
    with open_video(vfr_mp4_clip.path) as video:
        chosen = video.sample_uniform(4)
        _consistent(video, chosen)
        duration = video.duration
        for k, index in enumerate(chosen.indices):
            middle = duration * (k + 0.5) / 4
            # The chosen frame is the one on screen at the middle of its span.
            assert video.index_to_time(index) <= middle
            assert index == video.num_frames - 1 or video.index_to_time(index + 1) > middle


def test_rate_sampling(cfr_clip):
    with open_video(cfr_clip.path) as video:
        assert video.sample_rate(5).indices == tuple(range(0, 30, 3))
        assert video.sample_rate(2, start=0.5, end=1.5).indices == (7, 15)
        # Asking for more than the video's own rate never repeats a frame.
        assert video.sample_rate(60).indices == tuple(range(30))


def test_rate_sampling_on_variable_rate(vfr_mkv_clip):
    with open_video(vfr_mkv_clip.path) as video:
        chosen = video.sample_rate(4)
        _consistent(video, chosen)
        expected = tuple(dict.fromkeys(video.time_to_index(k / 4) for k in range(12) if k / 4 < video.duration))
    assert chosen.indices == expected


def test_every_kth(cfr_clip):
    with open_video(cfr_clip.path) as video:
        assert video.sample_every(4).indices == tuple(range(0, 30, 4))
        assert video.sample_every(10, start=5, stop=26).indices == (5, 15, 25)


def test_explicit_indices_and_times_keep_their_order(vfr_mp4_clip):
    with open_video(vfr_mp4_clip.path) as video:
        by_index = video.select_indices([9, 2, 2])
        by_time = video.select_times([vfr_mp4_clip.times[9], 0.0, vfr_mp4_clip.times[2] + 0.01])
        assert by_index.indices == (9, 2, 2)
        assert by_time.indices == (9, 0, 2)
        _consistent(video, by_time)
        with pytest.raises(InvalidInputError, match="it has 30 frames"):
            video.select_indices([3, 30])
        with pytest.raises(InvalidInputError, match="beyond the end"):
            video.select_times([100.0])


def test_windows_cover_the_video(cfr_clip):
    with open_video(cfr_clip.path) as video:
        windows = video.sample_windows(0.8, frames_per_window=2)
    assert [(w.number, w.start, w.end) for w in windows] == [
        (0, 0.0, 0.8),
        (1, 0.8, 1.6),
        (2, pytest.approx(1.6), 2.0),
    ]
    for window in windows:
        assert 1 <= len(window.selection) <= 2
        for time in window.selection.times:
            assert window.start - 1e-9 <= time < window.end
    assert windows[0].selection.indices == (3, 9)
    assert windows[2].selection.indices == (25, 28)  # middles 1.7 s, 1.9 s


def test_windows_at_a_rate_and_within_a_range(long_gop_clip):
    with open_video(long_gop_clip.path) as video:
        windows = video.sample_windows(1.0, fps=2, start=0.5, end=3.0)
    assert [(w.start, w.end) for w in windows] == [(0.5, 1.5), (1.5, 2.5), (2.5, 3.0)]
    assert [w.selection.indices for w in windows] == [(15, 30), (45, 60), (75,)]
    assert windows[1].to_dict()["indices"] == [45, 60]


def test_read_a_selection(long_gop_clip):
    with open_video(long_gop_clip.path, backend="pyav") as video:
        windows = video.sample_windows(1.0, frames_per_window=3)
        frames = [video.read(w.selection) for w in windows]
    for window, window_frames in zip(windows, frames):
        assert [f.index for f in window_frames] == list(window.selection.indices)
        assert [read_index(f.image) for f in window_frames] == list(window.selection.indices)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda v: v.sample_uniform(0), "positive integer"),
        (lambda v: v.sample_uniform(3, start=1.5, end=1.0), "must end after it starts"),
        (lambda v: v.sample_uniform(3, end=9.0), "beyond the end"),
        (lambda v: v.sample_rate(0), "positive number"),
        (lambda v: v.sample_every(0), "positive integer"),
        (lambda v: v.sample_windows(0, frames_per_window=2), "window length"),
        (lambda v: v.sample_windows(1.0), "either a count per window or a rate"),
        (lambda v: v.sample_windows(1.0, frames_per_window=2, fps=3), "either a count per window or a rate"),
        (lambda v: v.sample_uniform(True), "positive integer"),
        (lambda v: v.sample_uniform(2.0), "positive integer"),
        (lambda v: v.sample_rate(True), "positive number"),
        (lambda v: v.sample_every(1, stop=4.5), "integer index or None"),
        (lambda v: list(v.iter_frames(0, 4.5)), "integer index or None"),
        (lambda v: list(v.iter_frames(0, 4, 1.0)), "non-zero integer"),
    ],
)
def test_sampling_mistakes_are_clear_errors(cfr_clip, call, message):
    with open_video(cfr_clip.path) as video:
        with pytest.raises(InvalidInputError, match=message):
            call(video)


def test_numpy_numbers_are_accepted_like_python_ones(cfr_clip):
    """Counts and indices computed with numpy (np.int64, np.float32) work wherever an int or float does."""
    with open_video(cfr_clip.path, max_buffered_frames=np.int64(4)) as video:
        assert video.sample_uniform(np.int64(3)) == video.sample_uniform(3)
        assert video.sample_every(np.int32(5), stop=np.int64(20)) == video.sample_every(5, stop=20)
        assert video.sample_rate(np.float32(2.0)) == video.sample_rate(2.0)
        assert video.sample_windows(np.float32(1.0), frames_per_window=np.int64(2)) == video.sample_windows(
            1.0, frames_per_window=2
        )
        assert [f.index for f in video.iter_frames(np.int64(9), np.int64(2), np.int64(-3))] == [9, 6, 3]
        assert video.max_buffered_frames == 4 and type(video.max_buffered_frames) is int
