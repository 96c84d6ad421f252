"""`garvideo batch` (failures, resume after SIGKILL) and `garvideo selftest`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from garvideo_cli.batch import batch_command
from garvideo_cli.describe import describe_command
from garvideo_cli.main import app

from garvideo.outputs.document import validate_result_document


def _results(folder):
    """Finished results: not the summary, not an atomic write's temporary file (".name.tmp.json")."""
    return sorted(
        p.name
        for p in folder.glob("*.json")
        if p.name not in ("summary.json", "run.json") and not p.name.startswith(".")
    )


def test_every_batch_option_has_help_and_the_defaults_of_describe():
    shown = CliRunner().invoke(app, ["batch", "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    context = click.Context(batch_command, info_name="batch")
    for option in batch_command.params:
        if not isinstance(option, click.Option):
            continue
        names, text = option.get_help_record(context)
        assert re.sub(r"\[(default|required)[^]]*\]", "", text).strip(), f"{names} has no help"
        assert all(name in shown.stdout for name in option.opts), f"{names} is not in batch --help"
    describe = {p.name: p for p in describe_command.params}
    shared = [p for p in batch_command.params if p.name in describe]
    assert {"frames", "frames_per_window", "start", "end", "stride", "tiling", "max_new_tokens"} <= {
        p.name for p in shared
    }
    for option in shared:
        assert option.default == describe[option.name].default, option.name


@pytest.mark.slow
def test_batch_over_three_clips_one_corrupt(run, models, material, tmp_path):
    out = tmp_path / "out"
    result = run(
        "batch",
        material.folder,
        "--regions",
        material.manifest,
        "--out",
        out,
        "--frames",
        "2",
        "--frames-per-window",
        "1",
        "--srt",
        *models,
    )
    assert result.exit_code == 1
    names = _results(out)
    assert len(names) == 2
    docs = [json.loads((out / n).read_text()) for n in names]
    for doc in docs:
        validate_result_document(doc)
    by_video = {doc["item"]["video"].rsplit("/", 1)[-1]: doc for doc in docs}
    assert set(by_video) == {"moving.mp4", "second.mp4"}
    assert by_video["moving.mp4"]["regions"][0]["timeline"]  # described: no question on that line
    (answer,) = by_video["second.mp4"]["answers"]  # answered: it has a question
    assert answer["question"] == "Is <thing> bigger than <other>?" and answer["options"] == ["yes", "no"]
    assert (out / (names[0].removesuffix(".json") + ".srt")).exists() or (
        out / (names[1].removesuffix(".json") + ".srt")
    ).exists()
    (failure,) = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["key"].startswith("corrupt-") and "corrupt.mp4" in failure["reason"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
    assert "3 items: 2 done now, 0 already done, 1 failed" in result.stdout

    same = ["--frames", "2", "--frames-per-window", "1", "--srt"]
    again = run("batch", material.folder, "--regions", material.manifest, "--out", out, *same, *models)
    assert again.exit_code == 1
    assert "1 failed" in again.stdout and "2 already done" in again.stdout

    # Results made with other options are not taken for done: a run with others on the folder is refused.
    for changed in (same[:-1], ["--frames", "3", *same[2:]], [*same, "--tiling", "thumb+tile"]):
        refused = run("batch", material.folder, "--regions", material.manifest, "--out", out, *changed, *models)
        assert refused.exit_code == 2 and "holds results made with other settings" in refused.stderr
    assert "srt: True before, False now" in refused.stderr or "tiling" in refused.stderr
    # ... also once run.json is gone: the results record their settings (issue 21's review)
    (out / "run.json").unlink()
    changed = ["--frames", "3", *same[2:]]
    refused = run("batch", material.folder, "--regions", material.manifest, "--out", out, *changed, *models)
    assert refused.exit_code == 2 and "(frames: 2 before, 3 now) according to the result" in refused.stderr
    assert not (out / "run.json").exists() and all(doc["run_settings"]["options"]["frames"] == 2 for doc in docs)


@pytest.mark.slow
def test_batch_killed_midway_resumes_without_duplicates(material, tmp_path, held_batch):
    # eight lines over the two good clips, with distinct boxes so every line is its own item
    lines = [
        {
            "video": "clips/moving.mp4" if k % 2 else "clips/second.mp4",
            "regions": [{"name": "thing", "box": [10 + k, 10, 60 + k, 50], "when": {"frame": k}}],
        }
        for k in range(8)
    ]
    manifest = tmp_path / "many.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    program = [
        "-m",
        "garvideo_cli.main",
        "batch",
        material.folder,
        "--regions",
        manifest,
        "--out",
        out,
        "--model",
        material.gar,
        "--sam2",
        material.sam2,
        "--max-new-tokens",
        "2",
        "--frames",
        "2",
        "--frames-per-window",
        "1",
        "-q",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    held = tmp_path / "held"  # appears once 2 items are done and the 3rd is being computed
    proc = subprocess.Popen(
        held_batch.command(2, held, *program), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    held_batch.wait(held, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    command = [sys.executable, *map(str, program)]
    before = set(_results(out))
    assert len(before) == 2 and len(list(out.glob("*.lock"))) == 1, before  # killed while computing the 3rd
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    after = _results(out)
    assert len(after) == 8 and set(before) <= set(after)
    assert sorted(os.listdir(out)) == sorted(after + ["summary.json", "run.json"])  # no temporary or partial file left
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_already_done"] == len(before) and summary["succeeded"] == 8 - len(before)
    for name in after:
        validate_result_document(json.loads((out / name).read_text()))


@pytest.mark.slow
def test_selftest_passes_offline(run):
    result = run("selftest")
    assert result.exit_code == 0, result.output
    assert "all 6 checks passed" in result.stdout and "ok   text region" in result.stdout


def test_a_line_whose_question_names_an_unknown_region_fails_before_any_work(
    run, models, material, tmp_path, monkeypatch
):
    from garvideo.pipeline import Pipeline

    worked_on = []

    def no_work(_pipeline, _video, regions=None, *_args, **_kwargs):
        worked_on.append([region.name for region in regions])
        raise AssertionError("the line was worked on")

    monkeypatch.setattr(Pipeline, "describe", no_work)
    monkeypatch.setattr(Pipeline, "ask", no_work)
    box = [int(v) for v in material.box.split("=")[1].split("@")[0].split(",")]
    line = {
        "video": "clips/moving.mp4",
        "regions": [{"name": "dog", "box": box, "when": {"frame": 3}}],
        "question": "<cat>?",
    }
    good = {"video": "clips/moving.mp4", "regions": [{"name": "fine", "box": box, "when": {"frame": 3}}]}
    manifest = tmp_path / "r.jsonl"
    manifest.write_text(json.dumps(line) + "\n" + json.dumps(good) + "\n")
    out = tmp_path / "out"
    result = run("batch", material.folder, "--regions", manifest, "--out", out, "--describe", "always", *models)
    assert result.exit_code == 1
    assert worked_on == [["fine"]]  # only the line that can run reached the pipeline
    bad, _ = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert bad["reason"] == "line 1: the question names <cat>, which is not among the given regions (dog)"

    # a manifest with no line that can run is one error before the models load, and nothing is written
    manifest.write_text(json.dumps(line) + "\n")
    result = run("batch", material.folder, "--regions", manifest, "--out", tmp_path / "none", "--sam2", "nobody/none")
    assert result.exit_code == 2 and not (tmp_path / "none").exists()
    (error,) = result.stderr.splitlines()
    assert error.startswith(f"garvideo: error: no line of {manifest} can be run (line 1: the question names <cat>")
