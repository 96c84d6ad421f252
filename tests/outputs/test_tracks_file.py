"""One builder for a tracks file and for a result's prompts: a result made from a tracks file lists the marks the
tracks were made from, whichever front-end made either (issue 22)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo import InvalidInputError
from garvideo.outputs import read_tracks_file, track_sentence
from garvideo.tracking import RegionPrompt, Track, TrackFrame


@pytest.fixture(scope="module")
def material(selftest_material):
    return selftest_material


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_results_made_from_a_tracks_file_list_its_marks(material, tmp_path):
    models = ["--model", material.gar, "--sam2", material.sam2, "--max-new-tokens", "2", "--frames", "2", "-q"]
    tracks, result, answer, again = (tmp_path / name for name in ("t.json", "r.json", "a.json", "t2.json"))
    marks = ["--box", material.box, "--points", "thing=50,50;!5,5@10"]
    _run("track", material.clip, *marks, "--out", tracks, "--sam2", material.sam2, "-q")
    meta = json.loads(tracks.read_text())["meta"]
    assert [p["name"] for p in meta["prompts"]] == ["thing", "thing"] and meta["provenance"]["sam2"]
    recorded = read_tracks_file(tracks)
    assert [p.to_dict() for p in recorded.prompts] == meta["prompts"] and recorded.tracks[0].name == "thing"

    _run(
        "describe", material.clip, "--tracks", tracks, "--out", result, "--save-tracks", again, "--window", "1", *models
    )
    _run("ask", material.clip, "What is <thing>?", "--tracks", tracks, "--out", answer, *models)
    for document in (result, answer):
        (region,) = json.loads(document.read_text())["regions"]
        assert region["prompts"] == meta["prompts"]  # before: [] for a run from a tracks file
    # describe --save-tracks writes what track writes: the same marks, and the run's provenance
    written = json.loads(again.read_text())["meta"]
    assert written["prompts"] == meta["prompts"] and written["video"] == meta["video"] and written["provenance"]


def test_a_tracks_file_without_marks_and_one_with_broken_marks(tmp_path):
    frame = TrackFrame(0, 0.0, {"size": [2, 2], "counts": "04"}, None, 0.0)
    document = {"format": "garvideo.tracks", "version": 1, "tracks": [Track("a", 1, (frame,)).to_dict()]}
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(document))
    assert read_tracks_file(bare).prompts == ()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**document, "meta": {"prompts": [{"name": "a", "box": [1, 2, 3, 4]}]}}))
    with pytest.raises(InvalidInputError, match=r"broken.json: meta.prompts\[0\]: region 'a' needs \"when\""):
        read_tracks_file(broken)
    kept = RegionPrompt.from_box("a", (1, 2, 3, 4), 0)
    broken.write_text(json.dumps({**document, "meta": {"prompts": [kept.to_dict()]}}))
    assert read_tracks_file(broken).prompts == (kept,)


def test_the_track_sentence(tmp_path):
    empty = {"size": [2, 2], "counts": "04"}
    seen = {"size": [2, 2], "counts": "13"}
    frames = (TrackFrame(0, 0.0, empty, None, 0.1), TrackFrame(1, 0.5, seen, (0, 1, 0, 1), 0.9))
    assert track_sentence(Track("a", 1, frames)) == "2 frames tracked, 1 visible, visible 00:00:00.500 to 00:00:00.500"
    assert track_sentence(Track("a", 1, frames[:1])) == "1 frames tracked, 0 visible, never visible"
