"""Outputs never clobber an input, another output or a special file; mistakes found without a model are found
before one loads (issue 21, items 3, 6 and 8)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.defaults import MAX_NEW_TOKENS_LIMIT


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("garvideo: error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if a command gets as far as loading its models."""
    from garvideo.pipeline import Pipeline

    def loading(*_args, **_kwargs):
        raise AssertionError("the models were loaded")

    monkeypatch.setattr(Pipeline, "from_pretrained", loading)


@pytest.fixture
def clip(material, tmp_path):
    """A copy of the test clip, which a clobbering command would replace."""
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(material.clip.read_bytes())
    return copy


def _refused(args, needle):
    line = one_error_line(CliRunner().invoke(app, [str(a) for a in args]))
    assert needle in line, line
    return line


def test_an_output_on_an_input_is_refused_before_any_work(material, clip, tmp_path, no_loading, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = clip.read_bytes()
    box = ["--box", material.box]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.mp4").symlink_to(clip)
    for out in (clip, tmp_path / "sub" / ".." / "clip.mp4", tmp_path / "link.mp4", "clip.mp4"):
        _refused(["describe", clip, *box, "--out", out], "is the video itself")
        _refused(["track", clip, *box, "--out", out], "is the video itself")
    _refused(["describe", clip, *box, "--srt", clip], "--srt")
    _refused(["ask", clip, "What is <thing>?", *box, "--save-tracks", clip], "--save-tracks")
    assert clip.read_bytes() == before
    tracks = tmp_path / "t.json"
    tracks.write_text(text := json.dumps({"format": "garvideo.tracks", "version": 1, "tracks": []}))
    _refused(["describe", clip, "--tracks", tracks, "--save-tracks", tracks], "is the --tracks file itself")
    assert tracks.read_text() == text


def test_two_outputs_on_one_file_are_refused(material, clip, tmp_path, no_loading, monkeypatch):
    monkeypatch.chdir(tmp_path)
    box = ["--box", material.box]
    same = tmp_path / "same"
    line = _refused(["describe", clip, *box, "--out", same, "--srt", same], "--out and --srt both name")
    assert "give each output a file of its own" in line
    dotted = tmp_path / ".." / tmp_path.name / "x.json"
    _refused(["describe", clip, *box, "--out", "x.json", "--save-tracks", dotted], "--out and --save-tracks both")
    _refused(["ask", clip, "Is <thing> red?", *box, "--out", same, "--save-tracks", same], "both name")
    assert not same.exists()
    # only the result document goes to standard output; '-' elsewhere would be a file of that name
    _refused(["describe", clip, *box, "--out", "-", "--save-tracks", "-"], "--save-tracks - would write the tracks")
    assert not (tmp_path / "-").exists()


def test_outputs_are_regular_files_only(material, clip, tmp_path, no_loading):
    box = ["--box", material.box]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    for out in ("/dev/null", fifo, tmp_path / "to-fifo"):
        line = _refused(["describe", clip, *box, "--out", out], "not a regular file")
        assert "a device" in line or "a FIFO" in line
    _refused(["track", clip, *box, "--out", "/dev/null"], "/dev/null is a device, not a regular file")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_an_output_through_a_symbolic_link_replaces_its_target(material, clip, tmp_path):
    target = tmp_path / "real" / "tracks.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "tracks.json"
    link.symlink_to(target)
    result = CliRunner().invoke(
        app, ["track", str(clip), "--box", material.box, "--out", str(link), "--sam2", str(material.sam2), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and json.loads(target.read_text())["format"] == "garvideo.tracks"


def test_a_name_too_long_for_the_file_system_is_one_line(material, clip, tmp_path, no_loading):
    line = _refused(["describe", clip, "--box", material.box, "--out", tmp_path / ("r" * 300 + ".json")], "too long")
    assert len(line) < 400


def test_out_dash_with_json_prints_the_document_once(material, clip, models):
    args = ["ask", str(clip), "What is <thing>?", "--box", material.box, "--frames", "2", *models]
    result = CliRunner().invoke(app, [*args, "--out", "-", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # one document: two would not parse as one
    assert document["schema"] == "garvideo.result"


# Found before the models load: a model named here does not exist, so reaching it would say so instead.
EARLY = [
    (["track", "{clip}", "--box", "a=1,1,20,20@500", "--out", "t.json"], "beyond the video's last frame 23"),
    (["describe", "{clip}", "--box", "a=1,1,20,20@50s"], "beyond the end"),
    (["ask", "{clip}", "  ", "--box", "{box}"], "the question is empty"),
    (["ask", "{clip}", "Which?", "--box", "{box}", *[f"--option={k}" for k in range(27)]], "at most 26 options"),
    (["describe", "{clip}", "--box", "a=1,1,20,20@" + "9" * 5000], "too long for one"),
    (["describe", "{clip}", "--box", "{box}", "--start", "9" * 5000], "too long for one"),
    (["describe", "{clip}", "--box", "{box}", "--threads", "100000"], "threads must be at most"),
    (["describe", "{clip}", "--box", "{box}", "--max-new-tokens", str(MAX_NEW_TOKENS_LIMIT + 1)], "--max-new-tokens"),
    (["describe", "{clip}", "--box", "a=500,500,600,600@3"], "outside the 160x120 frame"),
    (["describe", "{clip}", "--text", "car=a car", "--box", "car#2=1,1,20,20@3", "--max-instances", "2"], "car#2"),
]


@pytest.mark.parametrize("args, needle", EARLY, ids=[f"{a[0]} {needle}" for a, needle in EARLY])
def test_mistakes_needing_no_model_are_found_before_one_loads(args, needle, material, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filled = [a.format(clip=material.clip, box=material.box) for a in args]
    models = ["--sam2", "nobody/none"] + (["--model", "nobody/none"] if args[0] != "track" else [])
    line = one_error_line(CliRunner().invoke(app, [*filled, *models, "-q"]))
    assert needle in line and "nobody/none" not in line


def test_the_answer_length_has_one_upper_bound_everywhere(material, tmp_path, no_loading):
    from garvideo import InvalidInputError
    from garvideo.batch import BatchOptions
    from garvideo.model import GenerationSettings

    too_long = str(MAX_NEW_TOKENS_LIMIT + 1)
    for args in (
        ["ask", material.clip, "What?", "--box", material.box],
        ["batch", material.folder, "--regions", material.manifest, "--out", tmp_path / "out"],
        ["eval", "gar-bench-vqa", "--data", tmp_path, "--out", tmp_path / "p.json"],
    ):
        _refused([*args, "--max-new-tokens", too_long], f"{too_long} is not in the range 1<=x<={MAX_NEW_TOKENS_LIMIT}")
    for build in (BatchOptions, GenerationSettings):
        with pytest.raises(InvalidInputError, match=f"between 1 and {MAX_NEW_TOKENS_LIMIT}"):
            build(max_new_tokens=int(too_long))
    assert GenerationSettings(max_new_tokens=MAX_NEW_TOKENS_LIMIT).max_new_tokens == MAX_NEW_TOKENS_LIMIT
