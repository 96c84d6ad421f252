"""The command line over tiny models and generated clips (offline)."""

from __future__ import annotations

import json

import av
import pytest

from garvideo.outputs.document import validate_result_document
from garvideo.tracking import load_tracks


def test_help_lists_every_command(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("describe", "ask", "track", "batch", "info", "selftest"):
        assert command in result.output
    assert "garvideo" in run("--version").output


def test_describe_writes_json_srt_vtt_and_tracks(run, models, material, tmp_path):
    out = tmp_path / "r.json"
    result = run(
        "describe",
        material.clip,
        "--box",
        material.box,
        "--window",
        "0.5",
        "--frames",
        "3",
        "--frames-per-window",
        "1",
        "--out",
        out,
        "--srt",
        tmp_path / "r.srt",
        "--vtt",
        tmp_path / "r.vtt",
        "--save-tracks",
        tmp_path / "t.json",
        *models,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    validate_result_document(doc)
    assert doc["command"] == "describe" and doc["video"]["width"] == 160
    (region,) = doc["regions"]
    assert region["name"] == "thing" and region["prompts"][0]["box"]
    assert [w["start"] for w in region["timeline"]] == [0.0, 0.5, 1.0, 1.5]
    assert doc["provenance"]["gar"]["model"] == str(material.gar)
    assert set(doc["provenance"]["timings"]) == {"decode", "track", "encode", "generate", "total"}
    srt = (tmp_path / "r.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,500\n")
    assert (tmp_path / "r.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.500\n")
    assert load_tracks(tmp_path / "t.json")[0].name == "thing"
    # the text summary names the region and one line per window
    assert result.stdout.startswith("thing (seen ") and result.stdout.count("\n  [") == 4


def test_describe_json_to_stdout(run, models, material):
    result = run(
        "describe",
        material.clip,
        "--box",
        material.box,
        "--window",
        "1",
        "--frames",
        "2",
        "--frames-per-window",
        "1",
        "--json",
        *models,
    )
    assert result.exit_code == 0
    validate_result_document(json.loads(result.stdout))


def test_overlay_video_has_the_input_frame_size(run, models, material, tmp_path):
    overlay = tmp_path / "overlay.mp4"
    result = run(
        "describe",
        material.clip,
        "--box",
        material.box,
        "--window",
        "1",
        "--frames",
        "2",
        "--frames-per-window",
        "1",
        "--overlay",
        overlay,
        *models,
    )
    assert result.exit_code == 0, result.output
    with av.open(str(overlay)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 24 and frames[0].shape == (120, 160, 3)


@pytest.mark.slow
def test_ask_prints_the_answer(run, models, material):
    result = run("ask", material.clip, "What is <thing> doing?", "--box", material.box, "--frames", "3", *models)
    assert result.exit_code == 0
    assert result.stdout.strip()  # the model's (random) words, one answer
    mc = run(
        "ask",
        material.clip,
        "Is <thing> red?",
        "--box",
        material.box,
        "--option",
        "yes",
        "--option",
        "no",
        "--frames",
        "2",
        "--json",
        *models,
    )
    doc = json.loads(mc.stdout)
    validate_result_document(doc)
    (answer,) = doc["answers"]
    assert answer["options"] == ["yes", "no"] and answer["regions"] == ["thing"]
    assert answer["letter"] in (None, "A", "B")


def test_track_writes_tracks_with_rle_masks(run, material, tmp_path):
    out = tmp_path / "tracks.json"
    result = run(
        "track", material.clip, "--box", material.box, "--sam2", material.sam2, "--stride", "4", "--out", out, "-q"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["format"] == "garvideo.tracks" and doc["meta"]["video"]["num_frames"] == 24
    (track,) = load_tracks(out)
    assert track.indices == (0, 3, 4, 8, 12, 16, 20)  # the stride grid plus the prompted frame
    assert "thing: 7 frames tracked" in result.output


def test_threads_option_reaches_the_pipeline(run, material, tmp_path, monkeypatch):
    from garvideo.pipeline import Pipeline

    asked = []
    original = Pipeline.from_pretrained.__func__

    def from_pretrained(cls, *args, **kwargs):
        asked.append(kwargs.get("threads"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(from_pretrained))
    for extra, expected in (([], None), (["--threads", "3"], 3)):
        out = tmp_path / "tracks.json"
        result = run(
            "track",
            material.clip,
            "--box",
            material.box,
            "--sam2",
            material.sam2,
            "--end",
            "0.5",
            "--out",
            out,
            "-q",
            *extra,
        )
        assert result.exit_code == 0, result.output
        assert asked[-1] == expected


MISTAKES = [
    (["describe", "{clip}", "--box", "1,2,3@4"], "expected 4 comma-separated numbers"),
    (["describe", "missing.mp4", "--box", "1,2,3,4@0"], "does not exist"),
    (["describe", "{clip}", "--box", "1,2,30,40@0", "--model", "nobody/no-such-model"], "nobody/no-such-model"),
    (["describe", "{clip}", "--box", "500,500,600,600@0"], "outside the 160x120 frame"),
    (["describe", "{clip}", "--box", "1,2,30,40@30s"], "beyond the end"),
    (["describe", "{clip}", "--box", "1,2,30,40@0", "--start", "9"], "beyond the end"),
    (["ask", "{clip}", "What is <dog> doing?", "--box", "cat=1,2,30,40@0"], "<dog>"),
    (["ask", "{clip}", "Is it?", "--box", "1,2,30,40@0", "--option", "only"], "at least two"),
    (["track", "{clip}", "--box", "1,2,30,40@0", "--sam2", "nobody/none", "--out", "x.json"], "nobody/none"),
    (["info", "{notvideo}"], "is not a video file"),
    (["track", "{clip}", "--box", "1,2,30,40@0", "--threads", "0", "--out", "x.json"], "--threads"),
    # output paths are checked before the (here unloadable) model is loaded
    (["describe", "{clip}", "--box", "1,2,30,40@0", "--model", "nobody/none", "--overlay", "x.avi"], ".avi"),
    (
        ["describe", "{clip}", "--box", "1,2,30,40@0", "--model", "nobody/none", "--out", "notes.txt/r.json"],
        "is a file, not a folder",
    ),
    (["ask", "{clip}", "Hi <a>?", "--box", "a=1,2,30,40@0", "--model", "nobody/none", "--out", "."], "is a folder"),
    (
        ["track", "{clip}", "--box", "1,2,30,40@0", "--sam2", "nobody/none", "--out", "notes.txt/t.json"],
        "is a file, not a folder",
    ),
    (
        ["batch", "{folder}", "--regions", "{manifest}", "--out", "notes.txt/o", "--model", "nobody/none"],
        "is a file, not a folder",
    ),
    (["batch", "{folder}", "--regions", "missing.jsonl", "--out", "o"], "no regions file"),
]


@pytest.mark.parametrize("args, message", MISTAKES, ids=[" ".join(a[:2]) + " " + m for a, m in MISTAKES])
def test_user_mistakes_print_one_line_and_exit_non_zero(args, message, material, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from garvideo_cli.main import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a video")
    filled = [
        a.format(
            clip=material.clip, notvideo=tmp_path / "notes.txt", folder=material.folder, manifest=material.manifest
        )
        for a in args
    ]
    if filled[0] in ("describe", "ask") and "--model" not in filled:
        filled += ["--model", str(material.gar), "--sam2", str(material.sam2)]
    result = CliRunner().invoke(app, filled + ["-q"] if filled[0] not in ("info", "batch") else filled)
    assert result.exit_code == 2, result.output
    # click ends with SystemExit; any other exception would have been a traceback for the user
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    assert message in result.output
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output


@pytest.mark.slow
def test_compile_option_reaches_gar_and_batch_says_it_runs_long(run, models, material, monkeypatch, tmp_path):
    from garvideo.pipeline import Pipeline

    real = Pipeline.from_pretrained.__func__
    asked = []

    def loading(cls, *args, compile=None, long_running=None, **kwargs):
        asked.append((compile, long_running))
        return real(cls, *args, compile=False, **kwargs)  # the tiny model stays eager: compiling takes minutes here

    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(loading))
    for flag in ("--compile", "--no-compile", None):
        args = ["ask", material.clip, "What?", "--box", material.box, "--frames", "1", *models]
        result = run(*args, *([flag] if flag else []))
        assert result.exit_code == 0, result.output
    result = run("batch", material.folder, "--regions", material.manifest, "--out", tmp_path / "out", *models)
    assert "2 done now" in result.output, result.output
    # neither flag: auto, which a one-shot command and a long-running batch weigh differently
    assert asked == [("on", False), ("off", False), ("auto", False), ("auto", True)]


def test_compile_sam2_option_reaches_the_tracker(run, models, material, monkeypatch):
    from garvideo.pipeline import Pipeline

    real = Pipeline.from_pretrained.__func__
    asked = []

    def loading(cls, *args, compile_sam2=None, **kwargs):
        asked.append(compile_sam2)
        return real(cls, *args, compile_sam2=False, **kwargs)  # compiling the tiny SAM2 takes over a minute here

    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(loading))
    for flag in ("--compile-sam2", "--no-compile-sam2", None):
        args = ["ask", material.clip, "What?", "--box", material.box, "--frames", "1", *models]
        result = run(*args, *([flag] if flag else []))
        assert result.exit_code == 0, result.output
    assert asked == [True, False, None]  # None: the tracker's default (off)
