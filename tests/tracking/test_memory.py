"""Memory stays bounded whatever the video's length.

Two measurements: what the SAM2 inference sessions hold (counted exactly by
the tracker), and the process's peak RSS in a fresh interpreter tracking a
clip and then a clip ten times longer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from garvideo.testing.sam2 import MovingSquareSource, sam2_processor, tiny_sam2_config
from garvideo.tracking import RegionPrompt, Sam2Tracker


def _prompts(source, length):
    """Two objects, prompted mid-clip, one of them corrected later: every mechanism at work."""
    middle = length // 2
    corner = np.zeros((source.height, source.width), dtype=bool)
    corner[:20, :30] = True
    return [
        RegionPrompt.from_mask("square", source.square_mask(middle), middle),
        RegionPrompt.from_box("other", (40, 30, 75, 60), middle + 1),
        RegionPrompt.from_mask("square", corner, middle + 2),
    ]


@pytest.fixture(scope="module")
def small_window_tracker():
    """A tiny random tracker that remembers 3 frames' masks and 4 object pointers:
    its memory window fills within a few frames, so short clips show the steady state."""
    import torch
    from transformers import Sam2VideoModel

    torch.manual_seed(1)
    model = Sam2VideoModel(tiny_sam2_config(num_maskmem=3, max_object_pointers=4))
    return Sam2Tracker(model, sam2_processor(128), model_id="tiny-small-window")


@pytest.mark.slow
def test_session_state_does_not_grow_with_the_video(small_window_tracker):
    tracker = small_window_tracker
    peaks = {}
    for length in (16, 160):
        source = MovingSquareSource(length)
        tracks = tracker.track(source, _prompts(source, length), progress=False)
        assert [len(t) for t in tracks] == [length, length]
        stats = tracker.last_stats
        peaks[length] = (stats.peak_frames_held, stats.peak_outputs_held, stats.peak_state_bytes)

    assert peaks[160] == peaks[16]
    frames_held, outputs_held, _ = peaks[160]
    assert frames_held <= 2  # the frame being processed, in each object's session
    # per object: its prompted frames, the frame just tracked, the max_object_pointers - 1 tracked
    # frames the next step reads, and the max_object_pointers - 2 frames after its first prompt that
    # the backward pass reads (for "square" one of those two is its correction, a prompted frame)
    assert outputs_held == (2 + 1 + 3 + 1) + (1 + 1 + 3 + 2)


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    from garvideo.testing.sam2 import MovingSquareSource
    from garvideo.tracking import RegionPrompt, Sam2Tracker

    tracker = Sam2Tracker.from_pretrained(sys.argv[1], device="cpu")
    peaks = []
    for length in (20, 200):
        source = MovingSquareSource(length, height=96, width=128)
        prompt = RegionPrompt.from_mask("square", source.square_mask(length // 2), length // 2)
        [track] = tracker.track(source, [prompt], progress=False)
        assert len(track) == length
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # KiB on Linux
    print(json.dumps(peaks))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units differ off Linux")
def test_peak_rss_for_a_ten_times_longer_clip_stays_within_a_small_margin(tiny_sam2_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(tiny_sam2_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    short_peak, long_peak = json.loads(done.stdout.strip().splitlines()[-1])
    # Keeping each processed frame (3x128x128 float32) alone would add ~35 MB over 180 frames.
    assert long_peak - short_peak < 16 * 2**20, (short_peak, long_peak)
