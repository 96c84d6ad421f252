"""LiveTracker against transformers' own streaming SAM2 session: the same masks, frame for frame.

The reference (:func:`garvideo.testing.sam2.streaming_sam2_reference`) is transformers' documented streaming
use: a session without a video, each frame preprocessed and run as it comes, marks added on their frame. The
live tracker prunes its sessions to what SAM2 reads next and must still give equal masks and scores (1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.errors import InvalidInputError, VideoError
from garvideo.testing.sam2 import MovingSquareSource, build_tiny_sam2_checkpoint, streaming_sam2_reference
from garvideo.tracking import RegionPrompt, Sam2Tracker
from garvideo.tracking.live import LiveTracker


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tracker and, loaded separately from the same folder, transformers' model and processor; 3 mask
    memories and 4 object pointers, so that every window the live tracker prunes to fills up."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    path = build_tiny_sam2_checkpoint(
        tmp_path_factory.mktemp("sam2") / "tiny-64", seed=1, image_size=64, num_maskmem=3, max_object_pointers=4
    )
    tracker = Sam2Tracker.from_pretrained(path, device="cpu")
    return tracker, Sam2VideoModel.from_pretrained(path).eval(), Sam2VideoProcessor.from_pretrained(path)


def _run(models, source, marks, removals=(), max_marks=8):
    """Feed every frame of ``source`` to a LiveTracker, marking ``marks`` (prompts whose frame is the position
    they are given on) just before their frame and removing ``removals`` ({position: name}) likewise."""
    live = LiveTracker(models[0], max_marks=max_marks)
    results: dict[str, dict[int, object]] = {}
    for position, frame in enumerate(source.iter_frames()):
        for prompt in marks:
            if prompt.frame == position:
                live.mark(prompt)
        for name in [n for p, n in removals if p == position]:
            live.remove(name)
        for name, entry in live.step(frame).items():
            assert entry.index == frame.index and entry.time == frame.time
            results.setdefault(name, {})[position] = entry
    return live, results


def _frames(source):
    return np.stack([frame.image for frame in source.iter_frames()])


def _assert_equal(results, reference, names=None):
    assert sorted(results) == sorted(names or reference)
    for name, track in results.items():
        expected = reference[name]
        assert sorted(track) == [p for p in sorted(expected) if p in track]
        for position, entry in track.items():
            assert np.array_equal(entry.mask(), expected[position].mask), (name, position)
            assert entry.score == pytest.approx(expected[position].score, abs=1e-5), (name, position)


def test_masks_equal_transformers_streaming_session(models):
    source = MovingSquareSource(14, height=64, width=64)
    marks = [RegionPrompt.from_box("a", (10, 10, 40, 40), 0)]
    _, results = _run(models, source, marks)
    reference = streaming_sam2_reference(models[1], models[2], _frames(source), marks)
    _assert_equal(results, reference)
    masks = [entry.mask() for entry in results["a"].values()]
    assert 0.05 < min(m.mean() for m in masks) and max(m.mean() for m in masks) < 0.95  # worth comparing
    assert len({m.tobytes() for m in masks}) > len(masks) // 2


def test_objects_marked_corrected_and_removed_while_it_runs(models):
    source = MovingSquareSource(16, height=48, width=80)
    marks = [
        RegionPrompt.from_box("a", (30, 10, 70, 40), 0),
        RegionPrompt.from_points("b", [(20, 20), (50, 40)], 3, labels=[1, 0]),
        RegionPrompt.from_mask("a", source.square_mask(6), 6),  # a correction of a
        RegionPrompt.from_box("c", (0, 0, 30, 25), 9),
    ]
    live, results = _run(models, source, marks, removals=[(12, "b")])
    reference = streaming_sam2_reference(models[1], models[2], _frames(source), marks)
    assert sorted(results["b"]) == list(range(3, 12))  # removed before frame 12
    _assert_equal(results, reference)
    assert [(o.name, o.obj_id, o.since) for o in live.objects] == [("a", 1, 0), ("c", 3, 9)]


def test_memory_stays_flat_however_long_it_runs(models):
    source = MovingSquareSource(60, height=64, width=64)
    live = LiveTracker(models[0], max_marks=2)
    held = []
    for position, frame in enumerate(source.iter_frames()):
        if position % 10 == 0:  # a correction every 10 frames: only the first and the latest stay
            live.mark(RegionPrompt.from_mask("a", source.square_mask(position), position))
        live.step(frame)
        held.append(live.held())
    assert max(h[0] for h in held) == 0  # never a frame's pixels
    assert held[-1] == held[29] and held[59] == max(held)  # outputs and bytes stop growing once windows fill


def test_marks_beyond_max_marks_forget_the_middle_ones(models):
    source = MovingSquareSource(12, height=64, width=64)
    marks = [RegionPrompt.from_box("a", (10, 10, 40, 40), p) for p in (0, 3, 6, 9)]
    live, results = _run(models, source, marks, max_marks=2)
    reference = streaming_sam2_reference(models[1], models[2], _frames(source), marks)
    for position in (0, 1, 2, 3, 4, 5, 6):  # up to the third mark, nothing was forgotten yet
        assert np.array_equal(results["a"][position].mask(), reference["a"][position].mask)


def test_bad_marks_are_refused_at_once(models):
    live = LiveTracker(models[0], size=(64, 64))
    with pytest.raises(InvalidInputError, match="named in words"):
        live.mark(RegionPrompt.from_text("car", "a red car"))
    with pytest.raises(InvalidInputError, match="outside"):
        live.mark(RegionPrompt.from_box("a", (70, 70, 90, 90), 0))
    with pytest.raises(InvalidInputError, match="no region named 'x'"):
        live.remove("x")
    live.mark(RegionPrompt.from_box("a", (0, 0, 10, 10), 0, obj_id=5))
    with pytest.raises(InvalidInputError, match="another region's"):
        live.mark(RegionPrompt.from_box("b", (0, 0, 10, 10), 0, obj_id=5))
    frame = next(MovingSquareSource(1, height=32, width=64).iter_frames())
    with pytest.raises(VideoError, match="64x32"):
        live.step(frame)
