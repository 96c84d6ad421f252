"""Frame index <-> presentation time, both ways, exact for variable frame rates."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.errors import InvalidInputError
from garvideo.video import open_video


@pytest.mark.parametrize("fixture", ["cfr_clip", "ntsc_clip", "vfr_mp4_clip", "vfr_mkv_clip", "long_gop_clip"])
def test_index_and_time_map_both_ways(fixture, request):
    truth = request.getfixturevalue(fixture)
    with open_video(truth.path) as video:
        for index, written in enumerate(truth.times):
            assert video.index_to_time(index) == pytest.approx(written, abs=1e-9)
            assert video.time_to_index(written) == index
            # Anywhere while a frame is on screen names that frame.
            end = truth.times[index + 1] if index + 1 < truth.num_frames else truth.duration
            assert video.time_to_index((written + end) / 2) == index
            assert video.time_to_index(end - 1e-4) == index


def test_variable_rate_times_are_not_uniform(vfr_mp4_clip):
    with open_video(vfr_mp4_clip.path) as video:
        gaps = {round(video.index_to_time(i + 1) - video.index_to_time(i), 6) for i in range(5)}
    assert gaps == {0.04, 0.08, 0.12, 0.033, 0.2}


def test_time_a_hair_before_a_frame_still_names_it(cfr_clip):
    with open_video(cfr_clip.path) as video:
        # 0.4 s written as a float is not exactly 6/15; typed times must still land on frame 6.
        assert video.time_to_index(0.4) == 6
        assert video.time_to_index(6 / 15 - 1e-7) == 6
        assert video.time_to_index(6 / 15 - 1e-3) == 5


def test_end_of_video_is_the_last_frame(cfr_clip):
    with open_video(cfr_clip.path) as video:
        assert video.time_to_index(video.duration) == cfr_clip.num_frames - 1


@pytest.mark.parametrize("bad", [30, 31, -1, 10**9])
def test_frame_beyond_the_video_is_a_clear_error(cfr_clip, bad):
    with open_video(cfr_clip.path) as video:
        with pytest.raises(InvalidInputError, match="it has 30 frames"):
            video.index_to_time(bad)


@pytest.mark.parametrize("bad", [2.5, 1e9])
def test_time_beyond_the_video_is_a_clear_error(cfr_clip, bad):
    with open_video(cfr_clip.path) as video:
        with pytest.raises(InvalidInputError, match=r"beyond the end .* lasts 2\.000 s \(30 frames\)"):
            video.time_to_index(bad)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), "soon", None])
def test_malformed_times_are_rejected(cfr_clip, bad):
    with open_video(cfr_clip.path) as video:
        with pytest.raises(InvalidInputError):
            video.time_to_index(bad)


@pytest.mark.parametrize("bad", [1.5, "3", True])
def test_malformed_indices_are_rejected(cfr_clip, bad):
    with open_video(cfr_clip.path) as video:
        with pytest.raises(InvalidInputError, match="integer"):
            video.index_to_time(bad)


def test_lookups_by_time_survive_timestamps_that_go_back():
    # FFmpeg stamps the last frames of an MP4 whose pts are decode-order ones out of order
    # (best-effort timestamps 2.36, 2.36, 2.28): times keep FFmpeg's values, lookups use the clock.
    from garvideo.video.timeline import Timeline

    times = np.array([0.0, 0.12, 0.16, 0.2, 0.2, 0.12])
    timeline = Timeline(name="t", times=times, duration=0.24, exact=True)
    assert list(timeline.clock) == [0.0, 0.12, 0.16, 0.2, 0.2, 0.2]
    assert timeline.index_to_time(5) == 0.12
    assert timeline.time_to_index(0.13) == 1
    assert timeline.time_to_index(0.2) == 5
    assert timeline.time_to_index(0.239) == 5
