"""Text regions searched again through a recorded video (``--new-instances``): what comes into view later becomes
``car#2``; an instance lost and found again keeps its name. The detector's boxes are held against the detector
alone, the tracks against SAM2 tracking the same boxes."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.grounding import distinct
from garvideo.pipeline import Pipeline, RegionPrompt, TextSearch, Track
from garvideo.pipeline.instances import search_again
from garvideo.tracking import Sam2Tracker
from garvideo.video import open_video

PHRASE = "a red car"
SEARCHED = [0, 4, 8, 12, 16]  # one frame per second of the 4 fps clip


@pytest.fixture(scope="module")
def pipeline(grounding_models) -> Pipeline:
    tracker = Sam2Tracker.from_pretrained(grounding_models / "sam2")
    return Pipeline(None, tracker, progress=False, detector=grounding_models / "gdino")


def _scores(detector, frames):
    """Per searched frame, the two most confident distinct boxes' scores (0 where there is none)."""
    out = []
    for index in SEARCHED:
        found = distinct(detector.detect(frames[index].image, PHRASE, 0.0, 0.25).detections, 2)
        out.append([d.score for d in found] + [0.0] * (2 - len(found)))
    return out


def _masks(track):
    return {f.index: f.mask() for f in track.frames}


def test_what_comes_into_view_later_becomes_a_new_instance(pipeline, detector, clip, frames):
    """A threshold from the detector's own scores lets exactly one box through on frame 0 and one through on a
    later searched frame: that one becomes ``car#2`` (with ``match_iou=1`` no box is taken for ``car`` itself,
    whatever SAM2's random masks are), tracked exactly as its box alone would be."""
    scores = _scores(detector, frames)
    (first, second), later = scores[0], [top for top, _ in scores[1:]]
    assert max(later) > second, f"no later frame scores above frame 0's second box: {scores}"
    threshold = (second + min(first, max(later))) / 2
    found_on = SEARCHED[1 + next(k for k, top in enumerate(later) if top > threshold)]
    search = TextSearch(box_threshold=threshold, max_instances=2, new_instances=True, match_iou=1.0)

    result = pipeline.track(clip.path, [RegionPrompt.from_text("car", PHRASE)], search=search)
    assert [(f.name, f.frame) for f in result.found] == [("car", 0), ("car#2", found_on)]
    assert [t.name for t in result.tracks] == ["car", "car#2"] and result.tracks[1].obj_id == 2
    reference = detector.detect(frames[found_on].image, PHRASE, threshold, 0.25).detections[0]
    assert result.found[1].box == tuple(round(v, 2) for v in reference.box)
    alone = pipeline.track(clip.path, [result.found[1].prompt]).tracks[0]
    assert _masks(alone).keys() == _masks(result.tracks[1]).keys()
    assert all(np.array_equal(_masks(alone)[i], _masks(result.tracks[1])[i]) for i in _masks(alone))
    grounding = result.provenance.settings["grounding"]
    assert grounding["new_instances"] is True and [f["name"] for f in grounding["found"]] == ["car", "car#2"]

    once = pipeline.track(
        clip.path, [RegionPrompt.from_text("car", PHRASE)], search=TextSearch(box_threshold=threshold)
    )
    assert [t.name for t in once.tracks] == ["car"]  # without new_instances the search stops at the first hit
    assert all(np.array_equal(_masks(once.tracks[0])[i], m) for i, m in _masks(result.tracks[0]).items())


def test_a_lost_instance_found_again_keeps_its_name(pipeline, detector, clip, frames):
    """``car`` is seen up to frame 7 where its box is the very box the detector finds on frame 8, then lost: on
    frame 8 that detection finds it again (a correction of ``car``), it does not become ``car#2``."""
    box = detector.detect(frames[8].image, PHRASE, 0.0, 0.25).detections[0].box
    x1, y1, x2, y2 = (round(v) for v in box)
    mask = np.zeros((clip.height, clip.width), dtype=bool)
    mask[y1:y2, x1:x2] = True
    empty = np.zeros_like(mask)
    car = Track.from_masks("car", {i: mask if i < 8 else empty for i in range(20)}, fps=4)
    first = RegionPrompt.from_box("car", (x1, y1, x2, y2), 0)
    retracked = []

    def retrack(marks):
        retracked.append(marks)
        return pipeline.track(clip.path, marks).tracks

    search = TextSearch(box_threshold=0.0, max_instances=1, new_instances=True)  # no room for a new one: only car
    with open_video(clip.path) as reader:
        text = RegionPrompt.from_text("car", PHRASE)
        found = pipeline.find(reader, [text], search=TextSearch(box_threshold=0.0, max_instances=1))[1]
        again = search_again(reader, pipeline.detector, search, (0.0, 5.0), [text], [first], found, [car], retrack)
    car_on_8 = [f for f in again.found if f.frame == 8]
    assert car_on_8[0].name == "car" and car_on_8[0].box == tuple(round(v, 2) for v in box)
    assert [p.frame for p in retracked[0] if p.name == "car"] == [0, 8]  # its mark and the correction
    assert [t.name for t in again.tracks] == ["car"] and again.tracks[0].obj_id == 1


@pytest.mark.slow
def test_the_command_line_flag(tmp_path, grounding_models, clip):
    from click.testing import CliRunner
    from garvideo_cli.main import app

    out = tmp_path / "tracks.json"
    args = ["track", clip.path, "--text", f"car={PHRASE}", "--box-threshold", "0", "--max-instances", "3"]
    models = ["--sam2", grounding_models / "sam2", "--detector", grounding_models / "gdino", "-q"]
    result = CliRunner().invoke(app, [*map(str, args + models), "--new-instances", "--out", str(out)])
    assert result.exit_code == 0, result.output
    import json

    meta = json.loads(out.read_text())["meta"]
    assert meta["provenance"]["settings"]["grounding"]["new_instances"] is True
    names = [t["name"] for t in json.loads(out.read_text())["tracks"]]
    assert names[0] == "car" and set(names) <= {"car", "car#2", "car#3"}
