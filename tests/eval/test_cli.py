"""``garvideo eval``: the released GAR-1B score from the command line, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from .test_scoring import PUBLISHED_GAR_1B

# as tests/conftest.py finds it
SHARED = Path(os.environ.get("GARVIDEO_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")


def test_score_reproduces_the_released_gar_1b_numbers(shared_dir):
    predictions = shared_dir / "data/gar-bench-vqa/gar_1b_vqa_predictions.json"
    result = CliRunner().invoke(app, ["eval", "score", str(predictions), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "overall": {"correct": 203, "total": 424, "accuracy": 47.9},
        "per_type": {
            kind: {"correct": c, "total": t, "accuracy": round(c / t * 100, 1)}
            for kind, (c, t) in PUBLISHED_GAR_1B.items()
        },
    }
    printed = CliRunner().invoke(app, ["eval", "score", str(predictions), "--benchmark", "gar-bench-vqa"])
    lines = printed.output.splitlines()
    assert lines[-1] == "=> overall: [203/424]=47.9"
    assert sorted(lines[:-1]) == sorted(
        f"{kind}: [{c}/{t}]={round(c / t * 100, 1)}" for kind, (c, t) in PUBLISHED_GAR_1B.items()
    )


def test_eval_help_is_fast_to_import():
    """The CLI starts without torch: heavy imports happen inside the commands."""
    code = "import sys; import garvideo_cli.main; import garvideo.eval; print('torch' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


MISTAKES = [
    (["gar-bench-vqa", "--data", "{tmp}/nowhere", "--out", "p.json"], "no GAR-Bench-VQA data at"),
    (["gar-bench-vqa", "--data", "{bench}", "--out", "p.json", "--model", "{tmp}/no-model"], "does not exist"),
    (["gar-bench-vqa", "--data", "{bench}", "--out", "p.json", "--mode", "sloppy"], "'sloppy' is not one of"),
    (["gar-bench-vqa", "--data", "{bench}", "--out", "p.json", "--limit", "0"], "0 is not in the range"),
    (["gar-bench-vqa", "--data", "{bench}", "--out", "p.json", "--subset", "{tmp}/none.txt"], "subset file"),
    (["gar-bench-vqa", "--data", "{notjson}", "--out", "p.json"], "is not valid JSON"),
    (["gar-bench-vqa", "--data", "{bench}"], "Missing option '--out'"),
    (["videorefer-q", "--data", "{tmp}", "--out", "q.jsonl"], "no VideoRefer-Bench file at"),
    (["videorefer-q", "--data", "{videorefer}", "--out", "q.jsonl", "--frames", "0"], "0 is not in the range"),
    (["videorefer-q", "--data", "{videorefer}", "--out", "q.jsonl", "--model", "{tmp}/no-model"], "does not exist"),
    (["videorefer-d", "--data", "{tmp}/nowhere", "--out", "d.jsonl"], "no VideoRefer-Bench data at"),
    (["score", "{tmp}/missing.json"], "no predictions file"),
    (["score", "{notjson}"], "neither a JSON list nor JSON lines"),
    (["score", "{bench}/GAR-Bench-VQA.json"], "cannot tell which benchmark"),
    (["score", "{bench}/GAR-Bench-VQA.json", "--benchmark", "gar-bench-vqa"], "is it the annotation file"),
    (["score", "{released}", "--benchmark", "videorefer-q"], "has no 'Answer'"),
]


@pytest.mark.parametrize("args, message", MISTAKES, ids=[f"{a[0]} {m}" for a, m in MISTAKES])
def test_user_mistakes_print_one_line_and_exit_non_zero(args, message, videorefer_set, tmp_path, monkeypatch):
    bench = SHARED / "data/gar-bench-vqa"
    if any("{bench}" in a or "{released}" in a for a in args) and not bench.is_dir():
        pytest.skip(f"no GAR-Bench-VQA data at {bench}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_text("not json {")
    filled = [
        a.format(
            tmp=tmp_path,
            bench=bench,
            notjson=tmp_path / "notes.json",
            videorefer=videorefer_set.folder,
            released=bench / "gar_1b_vqa_predictions.json",
        )
        for a in args
    ]
    result = CliRunner().invoke(app, ["eval", *filled])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if "error" in line.lower()]) == 1, result.output
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "q.jsonl").exists()
