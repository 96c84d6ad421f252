"""The tracker reads a real encoded video through garvideo.video's reader, unchanged.

The library's tracking package never imports garvideo.video; this test checks
that the video module's reader satisfies the tracker's FrameSource protocol
in both directions, on a generated clip with exact per-frame truth.
"""

from __future__ import annotations

import pytest

from garvideo import video
from garvideo.testing import clips
from garvideo.timecode import When
from garvideo.tracking import FrameSource, RegionPrompt


def test_tracking_a_real_clip_backward_and_forward(tracker, tmp_path):
    truth = clips.moving_object_clip(tmp_path / "clip.mp4", num_frames=14, fps=12, size=(160, 120), second_object=True)
    ellipse, square = truth.objects
    with video.open_video(truth.path, backend="pyav") as reader:
        assert isinstance(reader, FrameSource)
        # the ellipse by time (resolved with the reader's own timeline), the square by frame
        by_time = RegionPrompt.from_mask("ellipse", ellipse.masks[6], When(time=truth.times[6])).resolve(
            reader.time_to_index
        )
        prompts = [by_time, RegionPrompt.from_box("square", square.boxes[10], 10)]
        tracks = tracker.track(reader, prompts, stride=2, progress=False)

    assert by_time.frame == 6
    assert [t.name for t in tracks] == ["ellipse", "square"]
    assert tracks[0].indices == tuple(range(0, 14, 2))  # 6 is on the grid
    assert tracks[1].indices == (0, 2, 4, 6, 8, 10, 12)
    for track in tracks:
        assert all(f.size == (120, 160) for f in track.frames)
        assert [f.time for f in track.frames] == pytest.approx([truth.times[i] for i in track.indices])
    mask = tracks[0].mask_at(6)
    overlap = (mask & ellipse.masks[6]).sum() / (mask | ellipse.masks[6]).sum()
    assert overlap > 0.8  # the prompted mask comes back on its own frame
