"""Sam2Tracker with a tiny random SAM2: the mechanics of tracking, not its accuracy.

Random weights segment nothing meaningful, so these tests check what the
tracker must guarantee whatever the weights: which frames get a mask, which
prompt each frame depends on, that objects do not disturb one another, that
frames are read sparingly, and that bad input gets a clear error.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from garvideo.errors import InvalidInputError, ModelNotFoundError
from garvideo.testing.sam2 import MovingSquareSource
from garvideo.timecode import When
from garvideo.tracking import FrameSource, RegionPrompt, Sam2Tracker, tracks_from_json, tracks_to_json


class RecordingSource:
    """Wraps a source and logs every frame it hands out, in order."""

    def __init__(self, inner):
        self.inner = inner
        self.num_frames, self.width, self.height = inner.num_frames, inner.width, inner.height
        self.read: list[int] = []

    def iter_frames(self, start=0, stop=None, step=1):
        for frame in self.inner.iter_frames(start, stop, step):
            self.read.append(frame.index)
            yield frame


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def _same(frame_a, frame_b):
    return frame_a.rle == frame_b.rle and frame_a.score == frame_b.score


def test_the_test_sources_are_frame_sources():
    assert isinstance(MovingSquareSource(3), FrameSource)


def test_prompt_in_the_middle_tracks_both_ways(tracker):
    source = RecordingSource(MovingSquareSource(16))
    prompt = RegionPrompt.from_mask("square", source.inner.square_mask(8), 8)
    [track] = tracker.track(source, [prompt], progress=False)

    assert (track.name, track.obj_id) == ("square", 1)
    assert track.indices == tuple(range(16))
    assert all(f.size == (64, 80) for f in track.frames)
    assert [f.time for f in track.frames] == pytest.approx([i / 25 for i in range(16)])
    assert _iou(track.mask_at(8), prompt.mask) > 0.9
    # the prompted frame first, then forward from it to the end, then backward from it to 0
    assert source.read == [8, *range(9, 16), *range(7, -1, -1)]

    # every frame on both sides was computed from this prompt: another prompt changes each of them
    shifted = RegionPrompt.from_mask("square", np.roll(prompt.mask, (10, 20), axis=(0, 1)), 8)
    [other] = tracker.track(source.inner, [shifted], progress=False)
    assert all(not _same(track.frame(i), other.frame(i)) for i in range(16))


def test_a_correction_is_memory_for_every_frame(tracker):
    source = MovingSquareSource(16)
    first = RegionPrompt.from_mask("square", source.square_mask(4), 4)
    correction_mask = np.zeros((64, 80), dtype=bool)
    correction_mask[30:60, 5:45] = True
    correction = RegionPrompt.from_mask("square", correction_mask, 10)

    [plain] = tracker.track(source, [first], progress=False)
    [corrected] = tracker.track(source, [correction, first], progress=False)  # order of prompts does not matter

    assert corrected.indices == plain.indices == tuple(range(16))
    assert _iou(corrected.mask_at(10), correction_mask) > 0.9
    assert _iou(plain.mask_at(10), correction_mask) < 0.9
    # as in SAM2, a prompted frame conditions every frame tracked, before and after it, in both directions;
    # only the first prompt's own frame is its prompt's result alone
    assert _same(plain.frame(4), corrected.frame(4))
    assert all(not _same(plain.frame(i), corrected.frame(i)) for i in range(16) if i != 4)


def test_two_objects_in_one_pass_match_each_tracked_alone(tracker):
    source = MovingSquareSource(14)
    square = RegionPrompt.from_mask("square", source.square_mask(3), 3)
    corner = RegionPrompt.from_box("corner", (0, 0, 30, 25), 9)

    calls = []
    hook = tracker.model.vision_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        joint = tracker.track(source, [square, corner], progress=False)
    finally:
        hook.remove()
    stats = tracker.last_stats

    assert [(t.name, t.obj_id) for t in joint] == [("square", 1), ("corner", 2)]
    [square_alone] = tracker.track(source, [square], progress=False)
    [corner_alone] = tracker.track(source, [corner], progress=False)
    assert joint[0].frames == square_alone.frames
    assert joint[1].frames == corner_alone.frames
    # each object once on every frame ...
    assert stats.object_steps == 2 * 14
    # ... but the image encoder once per frame read, not once per object: the prompted frames 3 and 9,
    # forward frames 4..13 (on 9 only "square" is tracked), backward frames 8..0 (on 3..0 both are)
    assert stats.frames_read == 2 + 10 + 9
    assert len(calls) == 2 + 10 + 9


def test_stride_and_range_read_only_the_frames_they_track(tracker):
    source = RecordingSource(MovingSquareSource(30))
    clicks = RegionPrompt.from_points("square", [(30, 20), (5, 60)], 10, labels=[1, 0])
    [track] = tracker.track(source, [clicks], start=2, stop=20, stride=3, progress=False)

    assert track.indices == (2, 5, 8, 10, 11, 14, 17)  # the grid, plus the off-grid prompted frame
    assert source.read == [10, 11, 14, 17, 8, 5, 2]
    assert tracker.last_stats.frames_read == len(source.read)


def test_numpy_integers_set_the_range_like_python_ones(tracker):
    source = MovingSquareSource(12)
    prompt = RegionPrompt.from_points("square", [(30, 20)], np.int64(4))
    [plain] = tracker.track(source, [prompt], start=1, stop=10, stride=3, progress=False)
    [numpy] = tracker.track(source, [prompt], start=np.int64(1), stop=np.int32(10), stride=np.int64(3), progress=False)
    assert numpy.indices == plain.indices == (1, 4, 7) and numpy.frames == plain.frames


def test_an_object_the_model_does_not_see_is_not_visible(tiny_sam2_path):
    tracker = Sam2Tracker.from_pretrained(tiny_sam2_path, device="cpu")
    # a private copy whose object-score head always answers "no object"
    tracker.model.mask_decoder.pred_obj_score_head.proj_out.bias.data.fill_(-30.0)
    source = MovingSquareSource(8)
    prompt = RegionPrompt.from_mask("square", source.square_mask(2), 2)
    [track] = tracker.track(source, [prompt], progress=False)

    assert track.frame(2).visible  # the prompted mask itself
    hidden = [f for f in track.frames if f.index != 2]
    assert len(hidden) == 7
    assert all(not f.visible and f.box is None and f.score < 0.01 and f.size == (64, 80) for f in hidden)
    assert track.visible_span() == (2, 2)


class DroppingSource(MovingSquareSource):
    """A source that cannot decode some frames and leaves them out, as a reader does with damaged data."""

    def __init__(self, num_frames, lost):
        super().__init__(num_frames)
        self.lost = set(lost)

    def iter_frames(self, start=0, stop=None, step=1):
        return (f for f in super().iter_frames(start, stop, step) if f.index not in self.lost)


def test_frames_the_source_cannot_decode_have_no_entry(tracker):
    source = DroppingSource(12, lost={2, 9})
    first = RegionPrompt.from_mask("square", source.square_mask(5), 5)
    correction = RegionPrompt.from_box("square", (0, 0, 30, 30), 9)
    with pytest.warns(UserWarning, match="correction of 'square' on frame 9 was not used"):
        [track] = tracker.track(source, [first, correction], progress=False)
    assert track.indices == (0, 1, 3, 4, 5, 6, 7, 8, 10, 11)

    # forward up to the first lost frame, the frames are those of an undamaged video (backward ones
    # differ: the backward pass reads forward memories as far as frame 11, past the lost frame 9)
    [clean] = tracker.track(MovingSquareSource(12), [first], progress=False)
    assert all(_same(track.frame(i), clean.frame(i)) for i in range(5, 9))

    with pytest.raises(InvalidInputError, match="frame 2, where 'square' is marked, could not be read"):
        tracker.track(source, [RegionPrompt.from_box("square", (0, 0, 30, 30), 2)], progress=False)
    with pytest.raises(InvalidInputError, match="frame 2, where 'b' is marked, could not be read"):  # an earlier anchor
        tracker.track(source, [first, RegionPrompt.from_box("b", (0, 0, 30, 30), 2)], progress=False)
    with pytest.raises(InvalidInputError, match="frame 0, where 'c' is marked, could not be read"):  # the last one
        tracker.track(DroppingSource(6, lost={0}), [RegionPrompt.from_box("c", (0, 0, 30, 30), 0)], progress=False)


def test_tracks_from_the_tracker_round_trip_through_json(tracker):
    source = MovingSquareSource(6)
    prompts = [RegionPrompt.from_box("a", (5, 5, 40, 40), 1), RegionPrompt.from_points("b", [(50, 30)], 4)]
    tracks = tracker.track(source, prompts, progress=False)
    assert tracks_from_json(json.dumps(tracks_to_json(tracks))) == tracks


def test_provenance_of_a_local_checkpoint(tracker, tiny_sam2_path, monkeypatch):
    assert (tracker.model_id, tracker.revision) == (str(tiny_sam2_path.resolve()), None)
    assert tracker.num_maskmem == 7 and tracker.max_object_pointers == 16
    monkeypatch.chdir(tiny_sam2_path.parent)
    typed = Sam2Tracker.from_pretrained(tiny_sam2_path.name, device="cpu")
    assert typed.model_id == str(tiny_sam2_path.resolve())  # the folder, not the relative name typed


def test_provenance_of_a_hub_snapshot_names_its_commit(tiny_sam2_path, tmp_path, monkeypatch):
    import huggingface_hub.constants

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "models--someone--sam2-tiny"
    shutil.copytree(tiny_sam2_path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    tracker = Sam2Tracker.from_pretrained("someone/sam2-tiny", device="cpu")
    assert (tracker.model_id, tracker.revision) == ("someone/sam2-tiny", commit)


# -- errors -------------------------------------------------------------------------------


def _square():
    mask = np.zeros((64, 80), dtype=bool)
    mask[10:20, 10:20] = True
    return mask


@pytest.mark.parametrize(
    "prompts, kwargs, message",
    [
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), When(time=0.2))], {}, "resolve it first"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 12)], {}, "beyond the video's last frame 11"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {"start": 4}, r"outside the tracked range \[4, 12\)"),
        ([RegionPrompt.from_box("a", (81, 1, 99, 9), 3)], {}, "outside the 80x64 frame"),
        ([RegionPrompt.from_box("a", (1, 64, 9, 70), 3)], {}, "zero area"),
        ([RegionPrompt.from_points("a", [(10, 65)], 3)], {}, "outside the 80x64 frame"),
        ([RegionPrompt.from_mask("a", np.ones((80, 64), bool), 3)], {}, "draw the mask at the video's displayed size"),
        ([RegionPrompt.from_mask("a", _square(), 3), RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {}, "twice"),
        (
            [
                RegionPrompt.from_box("a", (1, 1, 9, 9), 3, obj_id=1),
                RegionPrompt.from_box("a", (1, 1, 9, 9), 4, obj_id=2),
            ],
            {},
            "different object ids",
        ),
        (
            [
                RegionPrompt.from_box("a", (1, 1, 9, 9), 3, obj_id=5),
                RegionPrompt.from_box("b", (1, 1, 9, 9), 4, obj_id=5),
            ],
            {},
            "share an object id",
        ),
        ([], {}, "at least one region"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {"stride": 0}, "stride"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {"start": 8, "stop": 8}, "empty"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {"start": 1.5}, "integer indices"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {"stop": "9"}, "integer indices"),
        ([RegionPrompt.from_box("a", (1, 1, 9, 9), 3)], {"stride": True}, "stride"),
    ],
)
def test_bad_requests_get_clear_errors(tracker, prompts, kwargs, message):
    source = RecordingSource(MovingSquareSource(12))
    with pytest.raises(InvalidInputError, match=message):
        tracker.track(source, prompts, progress=False, **kwargs)
    assert source.read == []  # rejected before any frame is decoded


def test_given_object_ids_are_kept_and_others_numbered_around_them(tracker):
    source = MovingSquareSource(3)
    prompts = [RegionPrompt.from_box("a", (1, 1, 20, 20), 0), RegionPrompt.from_box("b", (1, 1, 20, 20), 0, obj_id=1)]
    assert [(t.name, t.obj_id) for t in tracker.track(source, prompts, progress=False)] == [("a", 2), ("b", 1)]


@pytest.mark.parametrize(
    "model, message",
    [
        ("facebook/sam2.1-hiera-nonexistent", "'facebook/sam2.1-hiera-nonexistent'.*local folder"),
        ("large", "'facebook/sam2.1-hiera-large'.*hf download facebook/sam2.1-hiera-large"),
        ("./no/such/folder", "model folder './no/such/folder' does not exist"),
        ("not a valid id!", "neither an existing folder nor a valid hub model id"),
    ],
)
def test_unknown_models_offline_get_clear_errors(model, message):
    with pytest.raises(ModelNotFoundError, match=message):
        Sam2Tracker.from_pretrained(model, device="cpu")


def test_a_folder_without_a_checkpoint_is_reported(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not hold a complete SAM2 checkpoint"):
        Sam2Tracker.from_pretrained(tmp_path, device="cpu")


# -- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, device, weights, autocast",
    [
        (None, "cuda", "float32", "bfloat16"),  # as Meta's predictor runs SAM2
        ("auto", "cuda:1", "float32", "bfloat16"),
        ("bfloat16", "cuda", "bfloat16", None),  # a dtype the user names is used as is
        ("fp16", "cuda", "float16", None),
        ("float32", "cuda", "float32", None),
        (None, "cpu", "float32", None),
        ("auto", "cpu", "float32", None),
        ("bf16", "cpu", "bfloat16", None),
    ],
)
def test_sam2_runs_as_meta_s_predictor_unless_the_dtype_says_otherwise(dtype, device, weights, autocast):
    import torch

    from garvideo.tracking.sam2 import sam2_precision

    chosen = sam2_precision(dtype, torch.device(device))  # a CUDA device object needs no GPU
    assert chosen == (getattr(torch, weights), None if autocast is None else getattr(torch, autocast))


def test_the_tracker_computes_under_the_autocast_it_records(tracker):
    import torch

    plain = Sam2Tracker(tracker.model, tracker.processor, model_id="tiny")
    autocast = Sam2Tracker(tracker.model, tracker.processor, model_id="tiny", autocast_dtype=torch.bfloat16)
    assert (plain.precision, autocast.precision) == ("float32", "float32+autocast:bfloat16")

    seen = []
    hook = tracker.model.vision_encoder.register_forward_hook(
        lambda *args: seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
    )
    source = MovingSquareSource(3)
    prompt = RegionPrompt.from_box("a", (5, 5, 40, 40), 1)
    try:
        [track] = autocast.track(source, [prompt], progress=False)  # CPU autocast: the same code path as CUDA's
        assert seen and all(entry == (True, torch.bfloat16) for entry in seen)
        seen.clear()
        plain.track(source, [prompt], progress=False)
        assert seen and not any(enabled for enabled, _ in seen)
    finally:
        hook.remove()
    assert track.indices == (0, 1, 2)


class PreparingSource(RecordingSource):
    """Hands out frames prepared by ``preparer`` (as the pipeline's decode thread does)."""

    def __init__(self, inner, preparer):
        super().__init__(inner)
        self.preparer = preparer

    def iter_frames(self, start=0, stop=None, step=1):
        for frame in super().iter_frames(start, stop, step):
            yield self.preparer.prepare(frame)


def test_prepared_frames_track_as_plain_ones_and_only_their_tracker_skips_preprocessing(
    tracker, tiny_sam2_path, monkeypatch
):
    inner = MovingSquareSource(12)
    prompt = RegionPrompt.from_mask("square", inner.square_mask(6), 6)
    [plain] = tracker.track(inner, [prompt], progress=False)

    other = Sam2Tracker.from_pretrained(tiny_sam2_path, device="cpu")
    source = PreparingSource(inner, tracker)
    frames = list(source.iter_frames(0, 2))
    assert [f.index for f in frames] == [0, 1] and frames[1].time == 1 / inner.fps
    assert frames[0].prepared_by is tracker and frames[0].image.shape == (64, 80, 3)

    preprocessed: list[int] = []
    pixels = Sam2Tracker._pixels

    def counting(self, frame, height, width):
        preprocessed.append(frame.index)
        return pixels(self, frame, height, width)

    monkeypatch.setattr(Sam2Tracker, "_pixels", counting)
    [prepared] = tracker.track(PreparingSource(inner, tracker), [prompt], progress=False)
    assert len(preprocessed) == 12  # each frame once, by prepare(), none again by track()
    assert all(_same(a, b) for a, b in zip(plain.frames, prepared.frames, strict=True))

    preprocessed.clear()
    [by_other] = other.track(PreparingSource(inner, tracker), [prompt], progress=False)
    assert len(preprocessed) == 24  # another tracker's input is not trusted: made again
    assert all(_same(a, b) for a, b in zip(plain.frames, by_other.frames, strict=True))


def test_compile_is_off_unless_asked_and_then_wraps_the_encoder_and_memory_attention(tiny_sam2_path, monkeypatch):
    """Only the decision and the wiring: compiling the tiny model and tracking with it takes over a minute on
    this machine's CPU (bench/gpu.sh runs it compiled on CUDA)."""
    import torch

    assert not Sam2Tracker.from_pretrained(tiny_sam2_path, device="cpu").compiled
    asked = []

    def compile(function, **options):
        asked.append((function.__self__, options))
        return function

    monkeypatch.setattr(torch, "compile", compile)
    tracker = Sam2Tracker.from_pretrained(tiny_sam2_path, device="cpu", compile=True)
    assert tracker.compiled
    model = tracker.model
    assert asked == [(model.vision_encoder, {"dynamic": False}), (model.memory_attention, {"dynamic": True})]
    asked.clear()
    Sam2Tracker(model, tracker.processor, model_id="tiny", compile=True, compile_options={"mode": "max-autotune"})
    assert [options for _, options in asked] == [{"dynamic": False, "mode": "max-autotune"}] + [
        {"dynamic": True, "mode": "max-autotune"}
    ]
    assert not Sam2Tracker(model, tracker.processor, model_id="tiny").compiled
