"""Sam2Tracker against transformers' own offline SAM2 video session: the same masks, frame for frame.

The reference (:func:`garvideo.testing.sam2.offline_sam2_reference`) is what
SAM2's predictor and demo do when the prompts are given first: one offline
session per object holding the whole clip, every prompt added and its frame
run, then ``propagate_in_video_iterator`` forward from the earliest prompt to
the last frame and backward from it to frame 0, in that same session. The
tracker streams frames and drops state instead, and must still give equal
masks and object scores within 1e-5 on every frame.

The tiny random model (64 px input, 64x64 frames) is seeded so that its
masks cover part of the frame and change from frame to frame; a check below
keeps that so, or equal masks would prove nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.testing.sam2 import MovingSquareSource, build_tiny_sam2_checkpoint, offline_sam2_reference
from garvideo.tracking import RegionPrompt, Sam2Tracker


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tracker and, loaded separately from the same folder, the reference's model and processor."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    path = build_tiny_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "tiny-64", seed=1, image_size=64)
    tracker = Sam2Tracker.from_pretrained(path, device="cpu")
    reference_model = Sam2VideoModel.from_pretrained(path).eval()
    return tracker, reference_model, Sam2VideoProcessor.from_pretrained(path)


def _frames(source, indices):
    return np.stack([frame.image for frame in source.iter_frames()])[indices]


def _compare(models, source, prompts, *, start=0, stop=None, stride=1):
    """Track with garvideo and with the reference; assert they agree on every frame of every object.

    The reference's clip is the frames garvideo tracks: every ``stride``-th frame of ``[start, stop)``
    and the prompted frames off that grid.
    """
    tracker, reference_model, processor = models
    stop = source.num_frames if stop is None else stop
    indices = sorted(set(range(start, stop, stride)) | {p.frame for p in prompts})
    position = {index: pos for pos, index in enumerate(indices)}

    tracks = tracker.track(source, prompts, start=start, stop=stop, stride=stride, progress=False)
    on_positions = [p.at_frame(position[p.frame]) for p in prompts]
    reference = offline_sam2_reference(reference_model, processor, _frames(source, indices), on_positions)

    assert [t.name for t in tracks] == list(reference)
    for track in tracks:
        expected = reference[track.name]
        assert track.indices == tuple(indices[pos] for pos in expected) == tuple(indices)
        for pos, ref in expected.items():
            frame = track.frame(indices[pos])
            assert np.array_equal(frame.mask(), ref.mask), (track.name, indices[pos])
            assert frame.score == pytest.approx(ref.score, abs=1e-5), (track.name, indices[pos])
    return reference


def _box(name, frame, box=(10, 10, 40, 40)):
    return RegionPrompt.from_box(name, box, frame)


def _clicks(name, frame):
    return RegionPrompt.from_points(name, [(20, 20), (50, 45)], frame, labels=[1, 0])


def _mask(name, source, frame):
    return RegionPrompt.from_mask(name, source.square_mask(frame), frame)


def test_the_tiny_model_gives_masks_worth_comparing(models):
    source = MovingSquareSource(10, height=64, width=64)
    reference = _compare(models, source, [_box("a", 3)])["a"]
    coverage = [ref.mask.mean() for pos, ref in reference.items() if pos != 3]
    # neither empty nor full, and not the same on every frame
    assert 0.1 < min(coverage) and max(coverage) < 0.9
    assert len({ref.mask.tobytes() for ref in reference.values()}) == len(reference)


@pytest.mark.parametrize(
    "kind, length",
    # SAM2 reads up to 16 object pointers: clips shorter than, as long as and longer than that window
    [("box", 3), ("box", 10), ("box", 15), ("box", 16), ("box", 17)]
    + [("clicks", 3), ("clicks", 17), ("mask", 10), ("mask", 16)],
)
def test_one_prompt_in_clips_of_any_length(models, kind, length):
    source = MovingSquareSource(length, height=64, width=64)
    middle = length // 2
    prompt = {"box": _box("a", middle), "clicks": _clicks("a", middle), "mask": _mask("a", source, middle)}[kind]
    _compare(models, source, [prompt])


@pytest.mark.parametrize("order", ["in frame order", "latest first"])
def test_corrections_are_memory_for_every_frame(models, order):
    source = MovingSquareSource(17, height=64, width=64)
    prompts = [_box("a", 4), _mask("a", source, 9), _clicks("a", 13)]
    _compare(models, source, prompts if order == "in frame order" else prompts[::-1])


@pytest.mark.slow
def test_several_objects_each_as_its_own_session(models):
    source = MovingSquareSource(16, height=64, width=64)
    prompts = [
        _mask("square", source, 6),
        _box("corner", 2, (0, 0, 30, 25)),
        _clicks("clicked", 11),
        _box("square", 12, (20, 20, 60, 60)),
    ]
    _compare(models, source, prompts)


def test_prompts_on_the_first_and_last_frames(models):
    source = MovingSquareSource(12, height=64, width=64)
    _compare(models, source, [_box("first", 0), _clicks("last", 11)])
    _compare(models, source, [_box("both", 0), _mask("both", source, 11)])


@pytest.mark.parametrize("stride, start, stop", [(2, 0, None), (3, 1, 29)])
def test_strides_track_the_clip_the_reference_sees(models, stride, start, stop):
    """The reference runs on every stride-th frame of the range."""
    source = MovingSquareSource(30, height=64, width=64)
    prompts = [_box("a", start + 4 * stride), _mask("a", source, start + 7 * stride)]
    _compare(models, source, prompts, start=start, stop=stop, stride=stride)


def test_a_prompt_off_the_stride_grid_joins_the_clip(models):
    source = MovingSquareSource(30, height=64, width=64)
    _compare(models, source, [_box("a", 9), _clicks("a", 20), _mask("b", source, 13)], start=2, stride=4)


def test_frames_of_another_size_are_resized_as_the_reference_does(models):
    source = MovingSquareSource(10, height=48, width=80)
    _compare(models, source, [_box("a", 5, (30, 10, 70, 40)), _clicks("b", 2)])


@pytest.mark.slow
def test_a_200_frame_clip(models):
    source = MovingSquareSource(200, height=64, width=64)
    _compare(models, source, [_box("a", 40), _mask("a", source, 150), _clicks("b", 199)])


@pytest.mark.slow
def test_memory_windows_shorter_than_the_clip_are_read_as_the_reference_reads_them(tmp_path):
    """3 mask memories and 4 object pointers: every window the tracker prunes to is full on a 20-frame clip."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    path = build_tiny_sam2_checkpoint(tmp_path / "small", seed=1, image_size=64, num_maskmem=3, max_object_pointers=4)
    models = (
        Sam2Tracker.from_pretrained(path, device="cpu"),
        Sam2VideoModel.from_pretrained(path).eval(),
        Sam2VideoProcessor.from_pretrained(path),
    )
    source = MovingSquareSource(20, height=64, width=64)
    _compare(models, source, [_box("a", 8), _mask("a", source, 11), _clicks("b", 1), _box("c", 19)])
