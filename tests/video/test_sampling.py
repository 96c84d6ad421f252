"""Spans, windows and frame sampling (uniform = the pipeline's spread, at a rate, every k-th, indices/times)."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.errors import InvalidInputError
from garvideo.testing.clips import read_index
from garvideo.video import FrameSelection, Span, adaptive_window_length, open_video, spread, time_span, window_bounds


def _consistent(video, selection: FrameSelection) -> None:
    assert len(selection.indices) == len(selection.times)
    for index, time in zip(selection.indices, selection.times):
        assert time == video.index_to_time(index)


def test_uniform_over_the_whole_video(cfr_clip):
    with open_video(cfr_clip.path) as video:
        chosen = video.sample_uniform(5)
        _consistent(video, chosen)
    # The pipeline's spread over frames 0-29: positions 0, 7.25, 14.5, 21.75, 29, rounded (half to even).
    assert chosen.indices == (0, 7, 14, 22, 29)


def test_uniform_over_a_time_range(cfr_clip):
    with open_video(cfr_clip.path) as video:
        chosen = video.sample_uniform(2, start=1.0, end=1.8)
    assert chosen.indices == (15, 26)  # at 15 fps frames 15 (1.0 s) to 26 start in [1.0, 1.8): the first and last


def test_uniform_gives_each_frame_once_when_asking_for_more_than_there_are(cfr_clip):
    with open_video(cfr_clip.path) as video:
        assert video.sample_uniform(100).indices == tuple(range(30))
        # frame 7 (0.467 s) is still on screen at 0.5 s but starts before the range: as in the pipeline, not taken
        assert video.sample_uniform(10, start=0.5, end=0.8).indices == (8, 9, 10, 11)
        # no frame starts between 0.51 s and 0.52 s
        assert video.sample_uniform(3, start=0.51, end=0.52).indices == ()


def test_uniform_spreads_by_frame_on_variable_rate_clips(vfr_mp4_clip):
    with open_video(vfr_mp4_clip.path) as video:
        chosen = video.sample_uniform(4)
        _consistent(video, chosen)
        last = video.num_frames - 1
        middle = video.sample_uniform(3, start=video.index_to_time(5), end=video.index_to_time(12))
    # first and last frame included, and the frames in between evenly apart by index, whatever their durations
    assert chosen.indices[0] == 0 and chosen.indices[-1] == last and len(chosen) == 4
    gaps = np.diff(chosen.indices)
    assert gaps.max() - gaps.min() <= 1
    assert middle.indices == (5, 8, 11)  # positions 0, 3, 6 of frames 5-11


def test_uniform_is_one_window_over_the_same_range(long_gop_clip):
    with open_video(long_gop_clip.path) as video:
        assert (
            video.sample_uniform(5, start=0.25, end=1.75)
            == video.sample_windows(1.5, frames_per_window=5, start=0.25, end=1.75)[0].selection
        )


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
        (2, pytest.approx(1.6), 2.0),  # 0.4 s: at least a quarter of the length, so a window of its own
    ]
    for window in windows:
        for time in window.selection.times:
            assert window.start - 1e-9 <= time < window.end
    # 15 fps: the first and last frame starting in each window
    assert [w.selection.indices for w in windows] == [(0, 11), (12, 23), (24, 29)]


def test_a_short_last_window_joins_the_one_before(cfr_clip):
    with open_video(cfr_clip.path) as video:
        windows = video.sample_windows(0.9, frames_per_window=2)
    # 0.9 s windows over 2 s leave 0.2 s, under a quarter of 0.9 s: merged, as the pipeline's timeline does
    assert [(w.start, w.end) for w in windows] == [(0.0, 0.9), (0.9, 2.0)]
    assert [w.selection.indices for w in windows] == [(0, 13), (14, 29)]


def test_windows_without_a_length_are_the_adaptive_ones(cfr_clip):
    with open_video(cfr_clip.path) as video:
        windows = video.sample_windows(frames_per_window=1)
    assert adaptive_window_length(2.0) == 1.0
    assert [(w.start, w.end) for w in windows] == [(0.0, 1.0), (1.0, 2.0)]


def test_windows_at_a_rate_and_within_a_range(long_gop_clip):
    with open_video(long_gop_clip.path) as video:
        windows = video.sample_windows(1.0, fps=2, start=0.5, end=3.0)
        merged = video.sample_windows(1.0, fps=2, start="0:00.5", end=2.7)
    assert [(w.start, w.end) for w in windows] == [(0.5, 1.5), (1.5, 2.5), (2.5, 3.0)]
    assert [w.selection.indices for w in windows] == [(15, 30), (45, 60), (75,)]
    assert windows[1].to_dict()["indices"] == [45, 60]
    assert [(w.start, w.end) for w in merged] == [(0.5, 1.5), (1.5, 2.7)]
    assert [w.selection.indices for w in merged] == [(15, 30), (45, 60, 75)]


def test_window_helpers():
    assert adaptive_window_length(6.0) == 1.0
    assert adaptive_window_length(60.0) == 10.0
    assert adaptive_window_length(3600.0) == 600.0
    assert window_bounds(0.0, 2.0, 0.5) == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    # a sliver at the end joins the window before it
    assert window_bounds(0.0, 2.05, 0.5)[-1] == (1.5, 2.05)
    assert spread(list(range(10)), 3) == [0, 4, 9]
    assert spread([1, 2], 5) == [1, 2]


def test_time_spans(cfr_clip):
    with open_video(cfr_clip.path) as video:
        whole = time_span(video.timeline)
        part = time_span(video.timeline, "0:00.5", 0.8)
    assert whole == Span(first=0, stop=30, start=0.0, end=2.0)
    # frame 7 is on screen at 0.5 s, so it is read; the span holds the frames that start in it
    assert (part.first, part.stop, part.start, part.end) == (7, 12, 0.5, 0.8)
    assert part.holds_time(0.5) and not part.holds_time(0.8) and not part.holds_time(7 / 15)


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
        (lambda v: v.sample_uniform(3, start=1.5, end=1.0), "is empty: the end must come after the start"),
        (lambda v: v.sample_uniform(3, end=9.0), r"0\.000 s to 9\.000 s is outside .*cfr\.mp4, which lasts 2\.000 s"),
        (lambda v: v.sample_uniform(3, start="0:05"), r"start time 5\.000 s is beyond the end"),
        (lambda v: v.sample_rate(2, start="soon"), "cannot read 'soon' as a time"),
        (lambda v: v.sample_rate(0), "positive number"),
        (lambda v: v.sample_every(0), "positive integer"),
        (lambda v: v.sample_windows(0, frames_per_window=2), "window length"),
        (lambda v: v.sample_windows(0.01, frames_per_window=2), r"shorter than one frame interval .*0\.06667 s"),
        (lambda v: v.sample_windows(1.0, frames_per_window=0), "positive integer"),
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
