"""The detector against transformers' own Grounding DINO post-processing, and boxes known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from garvideo import InvalidInputError, ModelNotFoundError
from garvideo.grounding import Detection, GroundingDetector, box_iou, distinct
from garvideo.testing.grounding_dino import TINY_MAX_TOKENS

PHRASE = "a red car"


def _reference(detector, image, caption, box_threshold, text_threshold):
    """transformers' processor + model + post_process_grounded_object_detection, with nothing of garvideo's."""
    processor, model = detector.processor, detector.model
    inputs = processor(images=image, text=caption, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    (result,) = processor.post_process_grounded_object_detection(
        outputs,
        input_ids=inputs["input_ids"],
        threshold=box_threshold,
        text_threshold=text_threshold,
        target_sizes=[image.shape[:2]],
    )
    return result, inputs


def _words(label: str) -> str:
    """transformers' label without the caption's closing '.' and [SEP] (a single phrase's own words)."""
    return " ".join(w for w in label.split() if w not in {".", "[SEP]", "[CLS]"}).replace(" .", "").strip(" .")


@pytest.mark.parametrize("index", [0, 9])
def test_scores_boxes_and_labels_match_transformers_post_processing(detector, frames, index):
    image = frames[index].image
    everything, _ = _reference(detector, image, "a red car.", 0.0, 0.25)
    # A box threshold in the middle of the scores: some boxes pass, some do not.
    box_threshold = float(np.median(everything["scores"].numpy()))
    reference, _ = _reference(detector, image, "a red car.", box_threshold, 0.25)
    ours = detector.detect(image, PHRASE, box_threshold=box_threshold, text_threshold=0.25)

    expected = [
        (tuple(box.tolist()), float(score), _words(label))
        for box, score, label in zip(reference["boxes"], reference["scores"], reference["text_labels"])
        if _words(label)  # a box none of whose phrase words passed the text threshold matched nothing written
    ]
    assert 0 < len(expected) < len(everything["scores"])
    expected.sort(key=lambda e: -e[1])
    assert len(ours.detections) == len(expected)
    for detection, (box, score, label) in zip(ours.detections, expected):
        assert detection.box == pytest.approx(box, abs=1e-3)
        assert detection.score == pytest.approx(score, abs=1e-6)
        assert detection.label == label
    assert ours.best_score == pytest.approx(float(everything["scores"].max()), abs=1e-6)
    assert ours.found and ours.phrase == PHRASE


def test_boxes_are_the_encoder_proposals_in_pixels_of_the_frame(detector, frames):
    """Known by construction: the tiny model's box heads output zero, so every box is an encoder proposal,
    a cell of one of the four feature maps, 0.05 * 2**level of the frame wide and high, centred on the cell."""
    image = frames[5].image
    height, width = image.shape[:2]
    _, inputs = _reference(detector, image, "a red car.", 0.0, 0.0)
    resized_h, resized_w = inputs["pixel_values"].shape[-2:]
    assert (resized_h, resized_w) != (height, width)  # the processor resizes: boxes must be scaled back
    grids = [(math.ceil(resized_h / s), math.ceil(resized_w / s)) for s in (8, 16, 32, 64)]
    result = detector.detect(image, PHRASE, box_threshold=0.0, text_threshold=0.0)
    assert len(result.detections) == detector.model.config.num_queries
    for detection in result.detections:
        x1, y1, x2, y2 = detection.box
        level = round(math.log2((x2 - x1) / width / 0.05))
        assert 0 <= level < 4
        assert (x2 - x1, y2 - y1) == pytest.approx((0.05 * 2**level * width, 0.05 * 2**level * height), abs=1e-3)
        rows, cols = grids[level]
        column = (x1 + x2) / 2 / width * cols - 0.5
        row = (y1 + y2) / 2 / height * rows - 0.5
        assert column == pytest.approx(round(column), abs=1e-4) and 0 <= round(column) < cols
        assert row == pytest.approx(round(row), abs=1e-4) and 0 <= round(row) < rows


def test_a_phrase_is_checked_before_anything_runs(detector, frames):
    image = frames[0].image
    for empty in ("", "   ", ".", " . "):
        with pytest.raises(InvalidInputError, match="is empty"):
            detector.detect(image, empty)
    with pytest.raises(InvalidInputError, match="end of a phrase"):
        detector.detect(image, "a car. a dog")
    # [CLS] + words + "." + [SEP]: the text encoder reads TINY_MAX_TOKENS positions.
    longest = " ".join(["red"] * (TINY_MAX_TOKENS - 3))
    assert len(detector.caption(longest)[1]) == TINY_MAX_TOKENS
    detector.detect(image, longest)
    with pytest.raises(InvalidInputError, match=rf"is {TINY_MAX_TOKENS + 1} tokens long .* at most {TINY_MAX_TOKENS}"):
        detector.detect(image, longest + " car")
    assert detector.caption("  A Red   CAR. ") == ("a red car.", detector.caption("a red car")[1])


def test_bad_thresholds_and_pictures(detector, frames):
    image = frames[0].image
    for bad in (-0.1, 1.5, "high", True, float("nan")):
        with pytest.raises(InvalidInputError, match="threshold"):
            detector.detect(image, PHRASE, box_threshold=bad)
    with pytest.raises(InvalidInputError, match="text threshold"):
        detector.detect(image, PHRASE, text_threshold=2)
    with pytest.raises(InvalidInputError, match="RGB picture"):
        detector.detect(image[..., 0], PHRASE)
    # a threshold of 1 can never be passed (scores are sigmoids), whatever the picture
    result = detector.detect(image, PHRASE, box_threshold=1.0)
    assert not result.found and 0 < result.best_score < 1


def test_checkpoints_fail_with_a_clear_message(grounding_models, tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        GroundingDetector.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        GroundingDetector.from_pretrained("IDEA-Research/no-such-grounding-dino")
    with pytest.raises(ModelNotFoundError, match="not an open-vocabulary detector"):
        GroundingDetector.from_pretrained(grounding_models / "sam2")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="cannot load the detector"):
        GroundingDetector.from_pretrained(empty)


def test_distinct_keeps_the_most_confident_of_overlapping_boxes():
    a = Detection((0, 0, 10, 10), 0.9, "car")
    a_again = Detection((1, 0, 11, 10), 0.8, "car")  # IoU 0.82 with a
    b = Detection((20, 20, 30, 30), 0.7, "car")
    c = Detection((5, 0, 15, 10), 0.6, "car")  # IoU 1/3 with a
    assert box_iou(a.box, a_again.box) == pytest.approx(90 / 110)
    assert box_iou(a.box, b.box) == 0.0
    assert distinct([c, b, a_again, a], 2) == [a, b]
    assert distinct([c, b, a_again, a], 5) == [a, b, c]
    assert distinct([c, b, a_again, a], 5, max_overlap=0.9) == [a, a_again, b, c]


def test_a_checkpoint_without_weights_is_named(grounding_models, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(grounding_models / "gdino", partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="cannot load the detector"):
        GroundingDetector.from_pretrained(partial)


def test_mm_grounding_dino_checkpoints_load_and_detect_the_same_way(tmp_path, frames):
    from transformers import MMGroundingDinoConfig, MMGroundingDinoForObjectDetection

    from garvideo.testing.grounding_dino import grounding_dino_processor, tiny_grounding_dino_config

    settings = tiny_grounding_dino_config().to_dict()
    for key in ("model_type", "transformers_version", "architectures"):
        settings.pop(key, None)
    torch.manual_seed(0)
    MMGroundingDinoForObjectDetection(MMGroundingDinoConfig(**settings)).save_pretrained(tmp_path / "mm")
    grounding_dino_processor().save_pretrained(tmp_path / "mm")
    detector = GroundingDetector.from_pretrained(tmp_path / "mm")
    assert type(detector.model).__name__ == "MMGroundingDinoForObjectDetection"
    result = detector.detect(frames[0].image, PHRASE, box_threshold=0.0, text_threshold=0.0)
    assert len(result.detections) == detector.model.config.num_queries and 0 < result.best_score < 1


def test_several_phrases_on_one_frame_preprocess_it_once_and_find_what_one_detect_each_finds(
    detector, frames, monkeypatch
):
    phrases = ["a red car", "a dog", "a small striped ball"]
    alone = [detector.detect(frames[4].image, phrase, 0.3, 0.2) for phrase in phrases]
    calls = []
    image_processor = detector.processor.image_processor
    monkeypatch.setattr(
        type(image_processor), "__call__", lambda self, *a, **k: calls.append(1) or type(self).preprocess(self, *a, **k)
    )
    together = detector.detect_many(frames[4].image, phrases, 0.3, 0.2)
    assert calls == [1]
    assert together == alone and all(result.found for result in together)


def test_the_search_runs_on_the_pipelines_threads(grounding_models, clip, monkeypatch):
    import torch

    from garvideo.grounding import GroundingDetector
    from garvideo.pipeline import Pipeline, RegionPrompt, TextSearch

    detector = GroundingDetector.from_pretrained(grounding_models / "gdino")
    seen = []
    real = detector.detect_many
    monkeypatch.setattr(detector, "detect_many", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    before = torch.get_num_threads()
    for threads in (1, 2):
        Pipeline(None, None, progress=False, detector=detector, threads=threads).find(
            clip.path, [RegionPrompt.from_text("car", "a red car", 0)], search=TextSearch(box_threshold=0.0)
        )
    assert seen == [1, 2] and torch.get_num_threads() == before
