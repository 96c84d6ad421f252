"""Objects tracked together (one batched memory attention per frame) give what they give one by one, bit for bit.

Sam2Tracker batches the memory attention of the objects that read memories of
the same shapes on a frame (``batch_objects=True``, the default); with it off,
each object goes through ``Sam2VideoModel.forward`` alone, as the reference
test's sessions do. The two runs below must agree exactly (masks and scores),
and the batched one must really have batched most steps, or the comparison
would prove nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.testing.sam2 import MovingSquareSource, build_tiny_sam2_checkpoint
from garvideo.tracking import RegionPrompt, Sam2Tracker


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    path = build_tiny_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "tiny-64", seed=1, image_size=64)
    return Sam2Tracker.from_pretrained(path, device="cpu")


def _track_both_ways(tracker, source, prompts, **kwargs):
    runs = {}
    for batch in (False, True):
        tracker.batch_objects = batch
        try:
            runs[batch] = tracker.track(source, prompts, progress=False, **kwargs), tracker.last_stats
        finally:
            tracker.batch_objects = True
    return runs[False], runs[True]


def _assert_same(alone, together):
    assert [t.name for t in alone] == [t.name for t in together]
    for one, other in zip(alone, together, strict=True):
        assert one.indices == other.indices
        for a, b in zip(one.frames, other.frames, strict=True):
            assert np.array_equal(a.mask(), b.mask()), (one.name, a.index)
            assert a.score == b.score, (one.name, a.index, a.score - b.score)


@pytest.mark.parametrize("objects", [2, 5])
def test_batched_objects_give_their_one_by_one_results(tracker, objects):
    source = MovingSquareSource(14, height=64, width=64)
    # all marked on one frame (as grounding marks them): their memories have the same shapes on every frame
    prompts = [RegionPrompt.from_box(f"o{n}", (3 * n, 2 * n, 30 + 3 * n, 28 + 4 * n), 4) for n in range(objects)]
    (alone, alone_stats), (together, stats) = _track_both_ways(tracker, source, prompts)
    _assert_same(alone, together)
    assert alone_stats.batched_object_steps == 0
    assert stats.object_steps == alone_stats.object_steps
    # every step but the prompts' runs batched
    assert stats.batched_object_steps == stats.object_steps - objects
    # the objects differ, so a mix-up between them in the batch would show
    assert len({t.frames[-1].mask().tobytes() for t in together}) == objects


def test_batched_objects_with_every_kind_of_prompt_and_a_stride(tracker):
    """Objects marked on different frames read different numbers of memories for a while: those steps run
    alone (through forward), the others batched, and the result is the same."""
    source = MovingSquareSource(30, height=48, width=80)
    prompts = [
        RegionPrompt.from_mask("square", source.square_mask(9), 9),
        RegionPrompt.from_box("corner", (0, 0, 30, 25), 3),
        RegionPrompt.from_points("clicked", [(20, 20), (50, 40)], 21, labels=[1, 0]),
        RegionPrompt.from_box("square", (20, 10, 70, 45), 15),
    ]
    (alone, _), (together, stats) = _track_both_ways(tracker, source, prompts, start=1, stride=2)
    _assert_same(alone, together)
    assert stats.batched_object_steps > 0


def test_one_object_is_never_batched(tracker):
    source = MovingSquareSource(6, height=64, width=64)
    tracker.track(source, [RegionPrompt.from_box("a", (10, 10, 40, 40), 2)], progress=False)
    assert tracker.last_stats.batched_object_steps == 0
