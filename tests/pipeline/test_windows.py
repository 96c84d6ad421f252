"""Timeline windows: no runaway plan from a tiny --window, and a window without frames says so (issue 15)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from garvideo import InvalidInputError
from garvideo.pipeline import Track
from garvideo.video import open_video

SHORT = 2  # tokens: enough to exercise generation, quick on a CPU


@pytest.mark.parametrize("window", [1e-6, 1e-4, 0.05])
def test_windows_shorter_than_a_frame_interval_are_refused(pipeline, leaving_clip, truth, window):
    # 12 fps: one frame every 0.083 s
    with pytest.raises(InvalidInputError, match=r"shorter than one frame interval .*0\.0833"):
        pipeline.describe(leaving_clip.path, tracks=truth, window=window, max_new_tokens=SHORT)


@pytest.mark.parametrize("window", [math.nan, math.inf, -1.0, 0.0])
def test_windows_that_are_not_a_positive_length_are_refused(pipeline, leaving_clip, truth, window):
    with pytest.raises(InvalidInputError, match="window"):
        pipeline.describe(leaving_clip.path, tracks=truth, window=window, max_new_tokens=SHORT)


def test_a_stride_widens_the_shortest_window(pipeline, leaving_clip, truth):
    with pytest.raises(InvalidInputError, match="stride"):
        pipeline.describe(leaving_clip.path, tracks=truth, window=0.1, stride=4, max_new_tokens=SHORT)


def test_the_number_of_windows_is_capped(pipeline, leaving_clip, truth, monkeypatch):
    import garvideo.video.sampling as module

    assert module.MAX_WINDOWS >= 100  # the real cap leaves room for a window a minute over hours of video
    monkeypatch.setattr(module, "MAX_WINDOWS", 10)
    with pytest.raises(InvalidInputError, match=r"24 windows.*at most 10.*0\.2"):
        pipeline.describe(leaving_clip.path, tracks=truth, window=1 / 12, max_new_tokens=SHORT)


def test_one_frame_windows_see_what_the_frames_show(pipeline, leaving_clip, truth):
    (obj, _) = truth
    result = pipeline.describe(leaving_clip.path, tracks=[obj], window=1 / 12, frames=2, max_new_tokens=SHORT)
    windows = result.region(obj.name).windows
    assert len(windows) == 24
    assert [w.visible for w in windows] == [f.visible for f in obj.frames]


def test_a_window_with_no_tracked_frame_is_not_called_invisible(pipeline, leaving_clip, truth):
    (obj, _) = truth
    # tracked on every fourth frame only, as with --stride 4: most 1-frame windows hold no tracked frame
    sparse = Track(obj.name, obj.obj_id, tuple(f for f in obj.frames if f.index % 4 == 0))
    result = pipeline.describe(leaving_clip.path, tracks=[sparse], window=1 / 12, frames=2, max_new_tokens=SHORT)
    windows = result.region(obj.name).windows
    for number, window in enumerate(windows):
        if number % 4:
            assert window.visible is None and window.description is None and window.frames == ()
            assert window.to_dict()["visible"] is None
        else:
            assert window.visible is sparse.frame(number).visible


@pytest.mark.parametrize(
    "window, start, end",
    [
        (None, None, None),  # adaptive: 1 s windows over the 2 s clip
        (0.9, None, None),  # the 0.2 s left at the end joins the last window
        (0.8, 0.25, 1.95),  # a range: the 0.1 s left joins the last window
        (0.5, 0.3, 1.7),
    ],
)
def test_the_reader_samples_the_windows_and_frames_describe_uses(pipeline, leaving_clip, window, start, end):
    """``sample_windows`` / ``sample_uniform`` give describe's windows and, for a region seen throughout, its frames."""
    with open_video(leaving_clip.path) as video:
        sampled = video.sample_windows(window, frames_per_window=3, start=start, end=end)
        overall = video.sample_uniform(5, start=start, end=end)
        times = [video.index_to_time(i) for i in range(video.num_frames)]
        full = np.ones((video.height, video.width), dtype=bool)
    everywhere = Track.from_masks("all", dict.fromkeys(range(len(times)), full), times=times)
    result = pipeline.describe(
        leaving_clip.path,
        tracks=[everywhere],
        window=window,
        start=start,
        end=end,
        frames=5,
        frames_per_window=3,
        max_new_tokens=SHORT,
    )
    described = result.region("all")
    assert [(w.start, w.end, w.frames) for w in described.windows] == [
        (w.start, w.end, w.selection.indices) for w in sampled
    ]
    assert described.frames == overall.indices
