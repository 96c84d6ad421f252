"""Text regions through the pipeline: where they are found, how they are tracked, and every user mistake."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo import InvalidInputError, ModelNotFoundError
from garvideo.grounding import DUPLICATE_IOU, box_iou
from garvideo.pipeline import FoundRegion, Pipeline, RegionPrompt, TextSearch
from garvideo.tracking import Sam2Tracker
from garvideo.tracking.marks import parse_box_prompt, parse_region_prompts, parse_text_prompt

PHRASE = "a red car"
SEARCHED = [0, 4, 8, 12, 16]  # one frame per second of the 4 fps clip


@pytest.fixture(scope="session")
def pipeline(grounding_models) -> Pipeline:
    tracker = Sam2Tracker.from_pretrained(grounding_models / "sam2")
    return Pipeline(None, tracker, progress=False, detector=grounding_models / "gdino")


def _masks(result):
    return {t.name: {f.index: f.mask() for f in t.frames} for t in result.tracks}


@pytest.mark.slow
def test_a_text_at_a_moment_is_found_there_and_tracked_exactly_as_if_boxed(pipeline, detector, clip, frames):
    search = TextSearch(box_threshold=0.5)
    result = pipeline.track(
        clip.path, [RegionPrompt.from_text("car", PHRASE, "2s")], search=TextSearch(box_threshold=0.5)
    )
    (found,) = result.found
    reference = detector.detect(frames[8].image, PHRASE, search.box_threshold, search.text_threshold)
    best = reference.detections[0]
    assert (found.name, found.frame, found.time, found.searched) == ("car", 8, 2.0, (8,))
    assert found.box == tuple(round(v, 2) for v in best.box)
    assert (found.score, found.label, found.text) == (best.score, best.label, PHRASE)

    # The --box the CLI prints gives the same prompt, and the same track.
    assert parse_box_prompt(found.box_option) == found.prompt
    boxed = pipeline.track(clip.path, [parse_box_prompt(found.box_option)])
    assert [t.name for t in result.tracks] == ["car"]
    masks, boxed_masks = _masks(result), _masks(boxed)
    assert masks.keys() == boxed_masks.keys() and masks["car"].keys() == boxed_masks["car"].keys()
    assert all(np.array_equal(masks["car"][i], boxed_masks["car"][i]) for i in masks["car"])

    grounding = result.provenance.settings["grounding"]
    assert grounding["detector"]["model"] == detector.model_id and grounding["box_threshold"] == 0.5
    (record,) = grounding["found"]
    assert (record["frame"], record["box"], record["score"]) == (8, list(found.box), round(found.score, 4))
    assert grounding["detector"]["revision"] is None
    assert not {"detector", "revision"} & set(record)  # the run's one detector is recorded once, above
    assert result.provenance.timings.detect > 0
    assert result.provenance.settings["regions"] == [{"name": "car", "when": {"time": 2.0}, "text": PHRASE}]


def _first_found(scores: list[float]) -> tuple[int, int]:
    """(i, k): searching from frame i, k is the first frame whose best score beats every frame searched
    before it (i as small as there is one; the tiny detector's random scores decide which)."""
    for i in range(len(scores)):
        for k in range(i + 1, len(scores)):
            if scores[k] > max(scores[i:k]):
                return i, k
    raise AssertionError(f"the scores fall from frame to frame, no frame beats the ones before it: {scores}")


def test_without_a_moment_the_search_stops_at_the_first_frame_where_the_phrase_is_found(
    pipeline, detector, clip, frames
):
    # The best score of a labelled box on each searched frame, from the detector alone.
    scores = [detector.detect(frames[i].image, PHRASE, 0.0, 0.25).detections[0].score for i in SEARCHED]
    i, k = _first_found(scores)
    threshold = (max(scores[i:k]) + scores[k]) / 2
    prompts, found = pipeline.find(
        clip.path,
        [RegionPrompt.from_text("car", PHRASE)],
        search=TextSearch(box_threshold=threshold),
        start=frames[SEARCHED[i]].time,
    )
    (region,) = found
    assert region.frame == SEARCHED[k] and region.searched == tuple(SEARCHED[i : k + 1])
    assert region.score == pytest.approx(scores[k])
    assert prompts == [region.prompt] and prompts[0].kind == "box" and prompts[0].frame == SEARCHED[k]

    # Restricted to a range, the search starts at its start.
    _, (late,) = pipeline.find(
        clip.path, [RegionPrompt.from_text("car", PHRASE)], search=TextSearch(box_threshold=0.0), start=2.0, end=4.0
    )
    assert late.frame == 8 and late.searched == (8,)


def test_nothing_found_is_one_line_naming_the_phrase_the_frames_and_the_best_score(pipeline, detector, clip, frames):
    best = max(detector.detect(frames[i].image, PHRASE, 1.0).best_score for i in SEARCHED)
    with pytest.raises(InvalidInputError) as error:
        pipeline.track(clip.path, [RegionPrompt.from_text("car", PHRASE)], search=TextSearch(box_threshold=1.0))
    message = str(error.value)
    assert "\n" not in message
    assert f"{PHRASE!r} (region 'car') was not found" in message
    assert "searched 5 frames (0, 4, 8, 12, ... 16: one every 1 s from 0.00 s to 5.00 s)" in message
    assert f"best score {best:.3f}" in message and "--box-threshold" in message
    with pytest.raises(InvalidInputError, match=r"searched frame 8 \(2.00 s\)"):
        pipeline.find(clip.path, [RegionPrompt.from_text("car", PHRASE, 8)], search=TextSearch(box_threshold=1.0))


def test_max_instances_gives_the_most_confident_distinct_boxes_their_own_tracks(pipeline, detector, clip, frames):
    result = pipeline.track(
        clip.path, [RegionPrompt.from_text("car", PHRASE, 4)], search=TextSearch(box_threshold=0.0, max_instances=3)
    )
    names = [f.name for f in result.found]
    assert names == ["car", "car#2", "car#3"] == [t.name for t in result.tracks]
    assert len({t.obj_id for t in result.tracks}) == 3
    scores = [f.score for f in result.found]
    assert scores == sorted(scores, reverse=True)
    reference = detector.detect(frames[4].image, PHRASE, 0.0, 0.25).detections
    assert result.found[0].score == reference[0].score
    for region in result.found:
        assert any(region.score == d.score and region.box == tuple(round(v, 2) for v in d.box) for d in reference)
    for a in result.found:
        for b in result.found:
            if a is not b:
                assert box_iou(a.box, b.box) <= DUPLICATE_IOU
    # every box more confident than the last one chosen was either chosen or a duplicate of one that was
    for d in reference:
        if d.score > scores[-1]:
            assert any(box_iou(d.box, f.box) > DUPLICATE_IOU or d.score == f.score for f in result.found)


def test_text_region_mistakes(pipeline, clip):
    with pytest.raises(InvalidInputError, match="is empty"):
        RegionPrompt.from_text("car", "  ")
    with pytest.raises(InvalidInputError, match="max instances must be at least 1"):
        TextSearch(max_instances=0)
    with pytest.raises(InvalidInputError, match="max instances must be at most 100"):
        TextSearch(max_instances=10**9)  # would otherwise make a billion region names
    with pytest.raises(InvalidInputError, match="box threshold"):
        TextSearch(box_threshold=1.2)
    with pytest.raises(InvalidInputError, match="search must be a TextSearch"):  # not loose numbers
        pipeline.find(clip.path, [RegionPrompt.from_text("car", PHRASE)], search={"box_threshold": 0.5})
    with pytest.raises(InvalidInputError, match="is 3[3-9] tokens long"):
        pipeline.find(clip.path, [RegionPrompt.from_text("car", " ".join(["red"] * 35))])
    with pytest.raises(InvalidInputError, match="would make a region 'car#2', but another region has that name"):
        pipeline.find(
            clip.path,
            [RegionPrompt.from_text("car", PHRASE), RegionPrompt.from_box("car#2", (1, 1, 9, 9), 0)],
            search=TextSearch(max_instances=2),
        )
    with pytest.raises(InvalidInputError, match="has 20 frames"):
        pipeline.find(clip.path, [RegionPrompt.from_text("car", PHRASE, 25)])
    # SAM2 alone takes no text: it must become a box first
    with pytest.raises(InvalidInputError, match="a detector must turn it into a box first"):
        RegionPrompt.from_text("car", PHRASE, 3).fit_to_frame(160, 120)


def test_the_detector_loads_only_when_a_text_region_is_given(grounding_models, clip):
    tracker = Sam2Tracker.from_pretrained(grounding_models / "sam2")
    pipeline = Pipeline(None, tracker, progress=False, detector=grounding_models / "no-such-detector")
    result = pipeline.track(clip.path, [RegionPrompt.from_box("thing", (10, 10, 40, 40), 0)])
    assert result.found == () and "grounding" not in result.provenance.settings
    assert "detect" not in result.provenance.timings.to_dict()
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        pipeline.track(clip.path, [RegionPrompt.from_text("car", PHRASE)])
    without = Pipeline(None, tracker, progress=False, detector=None)
    with pytest.raises(Exception, match="built without a detector"):
        without.track(clip.path, [RegionPrompt.from_text("car", PHRASE)])


def test_the_command_line_syntax_of_text_regions():
    assert parse_text_prompt("car=a red car@4.5s") == RegionPrompt.from_text("car", PHRASE, "4.5s")
    assert parse_text_prompt("car='a red car'@12") == RegionPrompt.from_text("car", PHRASE, 12)
    assert parse_text_prompt("a red car") == RegionPrompt.from_text("region1", PHRASE)
    assert parse_text_prompt("a red car").when is None
    assert parse_text_prompt("car = a  red\tcar ").to_dict() == {"name": "car", "when": None, "text": PHRASE}
    for bad, message in (("car=", "phrase is empty"), ("car=@3", "phrase is empty"), ("car=a car@3x", "@WHEN")):
        with pytest.raises(InvalidInputError, match=message):
            parse_text_prompt(bad)
    # instances are named car#2, ...: '#' is part of a name, so their --box can be given back
    assert parse_box_prompt("car#2=1,2,30,40@3").name == "car#2"
    prompts = parse_region_prompts(boxes=["1,2,3,4@0"], texts=["a dog", "cat=a cat@1s"])
    assert [(p.name, p.kind) for p in prompts] == [("region1", "box"), ("region2", "text"), ("cat", "text")]


def test_the_search_interval_and_the_reproducing_box(pipeline, clip):
    with pytest.raises(InvalidInputError, match=r"searched 3 frames \(0, 8, 16: one every 2 s"):
        pipeline.find(
            clip.path, [RegionPrompt.from_text("car", PHRASE)], search=TextSearch(box_threshold=1.0, every=2.0)
        )
    with pytest.raises(InvalidInputError, match="search interval must be positive"):
        TextSearch(every=0)
    # an object id chosen for a text region goes to its first instance
    prompts, _ = pipeline.find(
        clip.path,
        [RegionPrompt.from_text("car", PHRASE, 0, obj_id=7)],
        search=TextSearch(box_threshold=0.0, max_instances=2),
    )
    assert [p.obj_id for p in prompts] == [7, None]
    # the --box of a found region keeps every digit of its (rounded) box, however wide the frame
    region = FoundRegion("car#2", PHRASE, 4, 1.0, (12345.67, 1.5, 20000.0, 3.25), 0.5, "car", (0, 4), None)
    assert region.box_option == "car#2=12345.67,1.5,20000,3.25@4"
    assert parse_box_prompt(region.box_option) == region.prompt


def test_several_phrases_decode_each_searched_frame_once(pipeline, clip, monkeypatch):
    from garvideo.video import VideoReader

    reads = []
    real_read = VideoReader.read

    def counting_read(self, indices, *args, **kwargs):
        reads.extend(indices)
        return real_read(self, indices, *args, **kwargs)

    monkeypatch.setattr(VideoReader, "read", counting_read)
    # Every box passes a zero threshold: both phrases are found on the first frame searched.
    _, found = pipeline.find(
        clip.path,
        [RegionPrompt.from_text("car", PHRASE), RegionPrompt.from_text("cup", "a cup")],
        search=TextSearch(box_threshold=0.0),
    )
    assert [(f.name, f.frame) for f in found] == [("car", SEARCHED[0]), ("cup", SEARCHED[0])]
    assert reads == [SEARCHED[0]]
