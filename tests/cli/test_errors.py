"""Every user mistake on the command line is one line `garvideo: error: ...` with exit code 2 (issue 15)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app


def one_error_line(result) -> str:
    """The single stderr line of a refused command (and nothing else printed)."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("garvideo: error: "), result.output
    assert "Usage:" not in result.output and "Traceback" not in result.output
    return lines[0]


USAGE_MISTAKES = [
    (["ask", "{clip}", "Is <thing> red?", "--box", "{box}", "--option", "only"], "at least two options"),
    (["describe", "{clip}", "--box", "{box}", "--tracks", "t.json"], "not both"),
    (["describe", "{clip}", "--box", "{box}", "--window", "0"], "--window"),
    (["describe", "{clip}", "--box", "{box}", "--frames", "0"], "--frames"),
    (["describe", "{clip}"], "mark at least one region"),
    (["track", "{clip}", "--out", "t.json"], "mark at least one region"),
    (["describe"], "VIDEO"),
    (["describe", "{clip}", "--boxx", "{box}"], "--boxx"),
    (["describe", "{clip}", "--tiling", "huge"], "--tiling"),
    (["describe", "{clip}", "--box"], "--box"),
    (["no-such-command"], "no-such-command"),
    (["--no-such-option"], "--no-such-option"),
    (["batch", "{folder}", "--regions", "{manifest}", "--out", "o", "--stride", "x"], "--stride"),
]


@pytest.mark.parametrize("args, needle", USAGE_MISTAKES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in USAGE_MISTAKES])
def test_usage_errors_are_one_line_with_exit_code_2(args, needle, material, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filled = [
        a.format(clip=material.clip, box=material.box, folder=material.folder, manifest=material.manifest) for a in args
    ]
    line = one_error_line(CliRunner().invoke(app, filled))
    assert needle in line


def test_help_is_unchanged():
    for args in (["--help"], ["describe", "--help"], ["batch", "-h"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: ")
        assert "garvideo: error" not in result.output
    bare = CliRunner().invoke(app, [])  # no command: the overview, as click shows it
    assert "Usage: " in bare.output and "Commands:" in bare.output


# Mistakes found before any model is loaded: the model named here does not exist, so reaching it would say so.
EARLY_MISTAKES = [
    (["describe", "{clip}", "--box", "{box}", "--window", "nan"], "--window"),
    (["describe", "{clip}", "--box", "{box}", "--window", "inf"], "--window"),
    (["describe", "{clip}", "--box", "{box}", "--window", "0.000001"], "shorter than one frame interval"),
    (["describe", "{clip}", "--box", "{box}", "--window", "0.1", "--stride", "4"], "stride 4"),
    (["batch", "{folder}", "--regions", "{manifest}", "--out", "o", "--window", "nan"], "--window"),
    (["describe", "{clip}", "--box", "{box}", "--out", "/proc/garvideo/r.json"], "/proc/garvideo/r.json"),
    (["describe", "{clip}", "--box", "{box}", "--save-tracks", "/proc/t.json"], "/proc/t.json"),
    (["describe", "{clip}", "--box", "{box}", "--overlay", "/proc/o.mp4"], "/proc/o.mp4"),
    (["describe", "{clip}", "--box", "{box}", "--srt", "/proc/s.srt"], "/proc/s.srt"),
    (["ask", "{clip}", "Is <thing> red?", "--box", "{box}", "--out", "/proc/r.json"], "/proc/r.json"),
    (
        ["ask", "{clip}", "Is <thing> red?", "--box", "{box}", "--option", "", "--option", "no"],
        "option 1 of 2 is empty",
    ),
    (["track", "{clip}", "--box", "{box}", "--out", "/proc/t.json"], "/proc/t.json"),
    (["batch", "{folder}", "--regions", "{manifest}", "--out", "/proc/garvideo-out"], "/proc/garvideo-out"),
]


@pytest.mark.parametrize("args, needle", EARLY_MISTAKES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in EARLY_MISTAKES])
def test_bad_numbers_and_unwritable_paths_are_refused_before_loading(args, needle, material, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filled = [
        a.format(clip=material.clip, box=material.box, folder=material.folder, manifest=material.manifest) for a in args
    ]
    models = ["--sam2", "nobody/none"] + (["--model", "nobody/none"] if args[0] != "track" else [])
    line = one_error_line(CliRunner().invoke(app, [*filled, *models, "-q"]))
    assert needle in line and "nobody/none" not in line


def test_a_result_that_cannot_be_written_at_the_end_is_saved_elsewhere(material, tmp_path, monkeypatch, models):
    # The up-front check can be outrun (a disk filled, a folder removed); here it is switched off so the
    # final writes meet a real refusal from the file system.
    import json

    import garvideo.files
    from garvideo.outputs.document import validate_result_document

    monkeypatch.setattr(garvideo.files, "check_writable", lambda path, what="output": path)
    monkeypatch.chdir(tmp_path)
    args = ["describe", str(material.clip), "--box", material.box, "--frames", "2", "--frames-per-window", "1"]
    result = CliRunner().invoke(app, [*args, "--out", "/proc/r.json", "--srt", "/proc/r.srt", *models])
    line = one_error_line(result)
    assert "/proc/r.json" in line and "/proc/r.srt" in line and str(tmp_path / "r.json") in line
    validate_result_document(json.loads((tmp_path / "r.json").read_text()))
    assert (tmp_path / "r.srt").read_text().startswith("1\n")
    assert result.stdout.startswith("thing (seen ")  # the text result is printed as well


@pytest.mark.parametrize("window", ["0.000001", "0.0001"])
def test_a_window_shorter_than_a_frame_is_refused_before_the_models_load(
    window, material, models, tmp_path, monkeypatch
):
    from garvideo.pipeline import Pipeline

    def loading(*_args, **_kwargs):
        raise AssertionError("the models were loaded")

    monkeypatch.setattr(Pipeline, "from_pretrained", loading)
    result = CliRunner().invoke(
        app,
        [
            "describe",
            str(material.clip),
            "--box",
            material.box,
            "--window",
            window,
            "--out",
            tmp_path / "r.json",
            *models,
        ],
    )
    assert "shorter than one frame interval" in one_error_line(result)
    assert not (tmp_path / "r.json").exists()


def test_an_unknown_sam2_alias_lists_the_known_ones(material, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in (
        ["describe", str(material.clip), "--box", material.box, "--model", "nobody/none"],
        ["track", str(material.clip), "--box", material.box, "--out", "t.json"],
    ):
        line = one_error_line(CliRunner().invoke(app, [*command, "--sam2", "huge", "-q"]))
        assert "unknown SAM2 alias 'huge'" in line and "tiny, small, base-plus" in line
        assert "hf download" not in line and "nobody" not in line


def test_a_box_partly_outside_the_frame_is_clipped_with_one_warning(material, models, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "track",
            str(material.clip),
            "--box",
            "part=100,50,190,130@3",
            "--out",
            tmp_path / "t.json",
            "--sam2",
            material.sam2,
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("garvideo: warning:")]
    assert len(warnings) == 1, result.stderr
    assert "'part'" in warnings[0] and "100,50,190,130" in warnings[0] and "160x120" in warnings[0]
    assert "100,50,160,120" in warnings[0]  # what is used instead


def test_a_box_inside_the_frame_gives_no_warning():
    import warnings

    from garvideo.tracking import RegionPrompt

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RegionPrompt.from_box("a", (0, 0, 160, 120), 0).fit_to_frame(160, 120)


RAY_MODEL_MISTAKES = [
    (["--model", "/nope"], "model folder '/nope' does not exist"),
    (["--sam2", "/nope"], "model folder '/nope' does not exist"),
    (["--model", "not a/hub id"], "'not a/hub id' is neither an existing folder nor a valid hub model id"),
    (["--sam2", "huge"], "unknown SAM2 alias 'huge'"),
]


@pytest.mark.parametrize("args, needle", RAY_MODEL_MISTAKES, ids=[" ".join(a) for a, _ in RAY_MODEL_MISTAKES])
def test_batch_on_ray_refuses_a_model_that_cannot_load_before_starting_ray(
    args, needle, material, tmp_path, monkeypatch
):
    pytest.importorskip("ray")
    import garvideo.batch.ray_runner as ray_runner

    def no_ray(*_args, **_kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray_runner, "ray_runtime", no_ray)
    command = ["batch", str(material.folder), "--regions", str(material.manifest), "--out", str(tmp_path / "out")]
    models = ["--model", str(material.gar), "--sam2", str(material.sam2)]
    line = one_error_line(CliRunner().invoke(app, [*command, *models, *args, "--ray", "-q"]))
    assert needle in line


QUESTION_MISTAKES = [
    (
        ["What is <cat> doing?", "--box", "dog={box}"],
        "the question names <cat>, which is not among the given regions (dog)",
    ),
    (
        ["Is <dog> near <cat>?", "--box", "dog={box}", "--option", "<cow>", "--option", "no"],
        "names <cat>, <cow>, which",
    ),
    (
        ["Is <car#3> red?", "--text", "car=a red car", "--max-instances", "2"],
        "<car#3>, which is not among the given regions (car, car#2)",
    ),
]


@pytest.mark.parametrize("args, needle", QUESTION_MISTAKES, ids=["box", "options", "text instances"])
def test_ask_refuses_a_question_naming_an_unknown_region_before_loading(args, needle, material, monkeypatch):
    from garvideo.pipeline import Pipeline

    def no_loading(*_args, **_kwargs):
        raise AssertionError("the models were loaded")

    monkeypatch.setattr(Pipeline, "from_pretrained", no_loading)
    filled = [a.format(box=material.box.split("=", 1)[1]) for a in args]
    line = one_error_line(CliRunner().invoke(app, ["ask", str(material.clip), *filled, "-q"]))
    assert needle in line
