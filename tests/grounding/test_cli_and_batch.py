"""Text regions from the command line (describe, ask, track, batch) and in batch manifests."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.batch import read_manifest
from garvideo.outputs.document import validate_result_document
from garvideo.timecode import When
from garvideo.tracking import load_tracks


@pytest.fixture(scope="module")
def material(selftest_material):
    """Tiny GAR, SAM2 and Grounding DINO checkpoints and clips (garvideo selftest's material)."""
    return selftest_material


def run(*args):
    # stderr apart: the found-region lines go there, the command's output to stdout
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _text_args(material, *extra):
    return ["--detector", material.detector, "--sam2", material.sam2, *extra, "-q"]


def test_track_text_then_the_printed_box_reproduces_the_track(material, tmp_path):
    out = tmp_path / "text.json"
    result = run(
        "track", material.clip, "--text", "thing=a moving thing@3", "--out", out,
        *_text_args(material, "--box-threshold", "0"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if "found" in line]
    assert line.startswith("thing: found 'a moving thing' on frame 3 (")
    box_option = line.split("--box ")[1].strip("'")
    found = json.loads(out.read_text())["meta"]["provenance"]["settings"]["grounding"]["found"][0]
    assert box_option == found["box_option"]

    again = tmp_path / "box.json"
    assert (
        run("track", material.clip, "--box", box_option, "--out", again, "--sam2", material.sam2, "-q").exit_code == 0
    )
    (text_track,), (box_track,) = load_tracks(out), load_tracks(again)
    assert text_track.to_dict() == box_track.to_dict()


@pytest.mark.slow
def test_describe_and_ask_with_text_regions(material, tmp_path):
    models = ["--model", material.gar, "--max-new-tokens", "3"]
    out = tmp_path / "describe.json"
    result = run(
        "describe", material.clip, "--text", "thing=a moving thing", "--max-instances", "2", "--box-threshold", "0",
        "--window", "1", "--frames", "2", "--frames-per-window", "1", "--out", out,
        *models, *_text_args(material),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    validate_result_document(doc)
    assert [r["name"] for r in doc["regions"]] == ["thing", "thing#2"]
    first, second = doc["regions"]
    assert [p.get("text") for p in first["prompts"]] == ["a moving thing", None]  # the text, then its box
    assert len(second["prompts"]) == 1 and second["prompts"][0]["when"] == {"frame": 0}
    grounding = doc["provenance"]["settings"]["describe"]["grounding"]
    assert [f["name"] for f in grounding["found"]] == ["thing", "thing#2"]
    assert grounding["max_instances"] == 2 and grounding["detector"]["model"] == str(material.detector)
    assert all(not {"detector", "revision"} & set(found) for found in grounding["found"])  # recorded once, above

    answer = tmp_path / "ask.json"
    result = run(
        "ask", material.clip, "Is <thing#2> left of <thing>?", "--text", "thing=a moving thing@2",
        "--max-instances", "2", "--box-threshold", "0", "--frames", "2", "--out", answer,
        *models, *_text_args(material),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(answer.read_text())
    assert doc["answers"][0]["regions"] == ["thing", "thing#2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "thing=a moving thing", "--max-instances", "0"], "max instances must be at least 1, got 0"),
        (["--text", "thing=a moving thing", "--max-instances", "1000000000"], "max instances must be at most 100"),
        (["--text", "thing="], "the phrase is empty"),
        (["--text", "thing=" + " ".join(["red"] * 40)], "tokens long but the detector"),
        (["--text", "thing=a moving thing", "--box-threshold", "1"], "'a moving thing' (region 'thing') was not found"),
        (["--text", "thing=a moving thing", "--text-threshold", "-1"], "text threshold must be between 0 and 1"),
        (["--text", "thing=a moving thing", "--search-every", "0"], "search interval must be positive"),
    ],
)
def test_text_region_mistakes_are_one_error_line(material, tmp_path, args, message):
    result = run("track", material.clip, *args, "--out", tmp_path / "t.json", *_text_args(material))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("garvideo: error: ") and message in line


def test_manifest_text_regions(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    manifest = tmp_path / "r.jsonl"
    lines = [
        {"video": "a.mp4", "regions": [{"name": "car", "text": "a red car", "when": {"time": 4.5}}]},
        {
            "video": "a.mp4",
            "regions": [
                {"name": "car", "text": "a red car"},
                {"name": "sign", "box": [1, 2, 3, 4], "when": {"frame": 0}},
            ],
        },
        {"video": "a.mp4", "regions": [{"name": "car", "text": "", "when": {"frame": 2}}]},
        {"video": "a.mp4", "regions": [{"name": "car", "text": 3, "when": {"frame": 2}}]},
        {"video": "a.mp4", "regions": [{"name": "car", "text": "a car", "box": [1, 2, 3, 4], "when": {"frame": 2}}]},
    ]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    at_time, searched, empty, number, both = read_manifest(manifest)
    (car,) = at_time.parse(tmp_path, tmp_path).regions
    assert (car.kind, car.text, car.when) == ("text", "a red car", When(time=4.5))
    car, box = searched.parse(tmp_path, tmp_path).regions
    assert car.when is None and box.kind == "box" and box.name == "sign"
    for line, message in ((empty, "text of region 'car' is empty"), (number, "\"text\" of region 'car' must be a phrase"),
                          (both, "exactly one of a box, points, a mask or a text")):  # fmt: skip
        with pytest.raises(Exception, match=message):
            line.parse(tmp_path, tmp_path)


def test_batch_finds_text_regions(material, tmp_path):
    manifest = tmp_path / "r.jsonl"
    manifest.write_text(json.dumps({"video": str(material.clip), "regions": [{"name": "thing", "text": "a thing"}]}))
    out = tmp_path / "out"
    result = run(
        "batch", tmp_path, "--regions", manifest, "--out", out, "--frames", "1", "--frames-per-window", "1",
        "--window", "1", "--box-threshold", "0", "--model", material.gar, "--max-new-tokens", "2",
        *_text_args(material),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (doc,) = [json.loads(p.read_text()) for p in out.glob("*.json") if p.name not in ("summary.json", "run.json")]
    validate_result_document(doc)
    (region,) = doc["regions"]
    assert region["name"] == "thing" and [bool(p.get("text")) for p in region["prompts"]] == [True, False]
    assert doc["provenance"]["settings"]["describe"]["grounding"]["found"][0]["frame"] == 0


def test_fewer_matches_than_max_instances_are_reported(capsys):
    from garvideo_cli.common import report_found

    from garvideo.pipeline import FoundRegion, ModelRef, RegionPrompt

    ref = ModelRef("gdino", None, "cpu", "float32")
    found = [FoundRegion("car", "a red car", 12, 3.0, (1.0, 2.0, 30.5, 40.0), 0.8, "red car", (0, 4, 8, 12), ref)]
    report_found(found, [RegionPrompt.from_text("car", "a red car")], max_instances=3)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "car: found 'a red car' on frame 12 (00:00:03.000), after searching 4 frames, score 0.80; "
        "same region: --box 'car=1,2,30.5,40@12'",
        "car: 1 distinct match of 'a red car' passed the thresholds (--max-instances 3 allowed more)",
    ]
