"""``garvideo eval``: the released GAR-1B score from the command line, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from .test_scoring import PUBLISHED_GAR_1B


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


@pytest.mark.slow  # a fresh interpreter
def test_eval_help_is_fast_to_import():
    """The CLI starts without torch: heavy imports happen inside the commands."""
    code = "import sys; import garvideo_cli.main; import garvideo.eval; print('torch' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


def _small_gar_bench(folder: Path) -> Path:
    """A GAR-Bench-VQA folder whose items are never run: enough for the checks made before a model loads."""
    folder.mkdir()
    items = [
        {
            "image": f"images/{name}.png",
            "question": "Which?",
            "choices": ["A. <Prompt0>"],
            "answer": "A",
            "type": "color",
            "mask_rles": [{"size": [4, 4], "counts": "04L4"}],
        }
        for name in ("a", "b")
    ]
    (folder / "GAR-Bench-VQA.json").write_text(json.dumps(items), encoding="utf-8")
    return folder


NO_MODEL = ["--model", "{tmp}/no-model"]  # loading it fails with "does not exist": the mistakes below must come first

MISTAKES = [
    (["gar-bench-vqa", "--data", "{tmp}/nowhere", "--out", "p.json"], "no GAR-Bench-VQA data at"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "p.json", *NO_MODEL], "does not exist"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "p.json", "--mode", "sloppy"], "'sloppy' is not one of"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "p.json", "--limit", "0"], "0 is not in the range"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "p.json", "--subset", "{tmp}/none.txt"], "subset file"),
    (["gar-bench-vqa", "--data", "{notjson}", "--out", "p.json"], "is not valid JSON"),
    (["gar-bench-vqa", "--data", "{small}"], "Missing option '--out'"),
    # user mistakes found without loading the (here missing) model
    (
        ["gar-bench-vqa", "--data", "{small}", "--out", "p.json", "--subset", "{subset}", *NO_MODEL],
        "neither an item's image nor an item index",
    ),
    (["gar-bench-vqa", "--data", "{small}", "--out", "p.json", "--subset", "{binary}", *NO_MODEL], "not a text file"),
    (["gar-bench-vqa", "--data", "{binary}", "--out", "p.json", *NO_MODEL], "not a text file"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "{tmp}", *NO_MODEL], "is a folder"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "notes.json/p.json", *NO_MODEL], "is a file, not a folder"),
    (["gar-bench-vqa", "--data", "{small}", "--out", "blocked.json", *NO_MODEL], "cannot create the work folder"),
    (["videorefer-q", "--data", "{tmp}", "--out", "q.jsonl"], "no VideoRefer-Bench file at"),
    (["videorefer-q", "--data", "{videorefer}", "--out", "q.jsonl", "--frames", "0"], "0 is not in the range"),
    (["videorefer-q", "--data", "{videorefer}", "--out", "q.jsonl", *NO_MODEL], "does not exist"),
    (
        ["videorefer-q", "--data", "{videorefer}", "--out", "q.jsonl", "--video-root", "{tmp}/videos", *NO_MODEL],
        "the video folder",
    ),
    (["videorefer-q", "--data", "{videorefer}", "--out", ".", *NO_MODEL], "is a folder"),
    (
        ["videorefer-q", "--data", "{videorefer}", "--out", "notes.json/q.jsonl", "--track", *NO_MODEL],
        "is a file, not a folder",
    ),
    (["videorefer-d", "--data", "{tmp}/nowhere", "--out", "d.jsonl"], "no VideoRefer-Bench data at"),
    # an object where the benchmark has a list would run as one malformed item and score 0.0 with exit 0
    (["videorefer-q", "--data", "{object}", "--out", "q.jsonl", *NO_MODEL], "must hold a JSON list of items"),
    (["gar-bench-vqa", "--data", "{object}", "--out", "p.json", *NO_MODEL], "must hold a JSON list of items"),
    # an empty list loaded the model, scored "accuracy: 0.0" and exited 0
    (["videorefer-q", "--data", "{empty}", "--out", "q.jsonl", *NO_MODEL], "holds no items (an empty list)"),
    (["gar-bench-vqa", "--data", "{empty}", "--out", "p.json", *NO_MODEL], "holds no items (an empty list)"),
    # the predictions must not replace the benchmark they are made from
    (["videorefer-q", "--data", "{videorefer}", "--out", "{videorefer}/VideoRefer-Bench-Q.json"], "itself"),
    (["videorefer-q", "--data", "{videorefer}", "--out", "q.jsonl", "--max-new-tokens", "99999"], "99999"),
    (["videorefer-d", "--data", "{videorefer}", "--out", "blocked.json", *NO_MODEL], "cannot create the work folder"),
    (["score", "{tmp}/missing.json"], "no predictions file"),
    (["score", "{notjson}"], "neither a JSON list nor JSON lines"),
    (["score", "{binary}"], "not a text file"),
    (["score", "{bench}/GAR-Bench-VQA.json"], "cannot tell which benchmark"),
    (["score", "{bench}/GAR-Bench-VQA.json", "--benchmark", "gar-bench-vqa"], "is it the annotation file"),
    (["score", "{released}", "--benchmark", "videorefer-q"], "has no 'Answer'"),
]


@pytest.mark.parametrize("args, message", MISTAKES, ids=[f"{a[0]} {m}" for a, m in MISTAKES])
def test_user_mistakes_print_one_line_and_exit_non_zero(args, message, videorefer_set, tmp_path, monkeypatch, request):
    bench = None
    if any("{bench}" in a or "{released}" in a for a in args):
        bench = request.getfixturevalue("shared_dir") / "data/gar-bench-vqa"  # skips, saying why, without it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_text("not json {")
    (tmp_path / "random.bin").write_bytes(bytes(range(256)) * 4)  # not UTF-8
    (tmp_path / "subset.txt").write_text("images/a.png\nimages/elsewhere.png\n")
    (tmp_path / "blocked.json.work").write_text("a file where the run's work folder would go")
    (tmp_path / "object.json").write_text(json.dumps({"0": {"video": "a", "Question": "<region>?"}}))
    (tmp_path / "empty.json").write_text("[]\n")
    filled = [
        a.format(
            tmp=tmp_path,
            small=_small_gar_bench(tmp_path / "small") if "{small}" in a else "",
            bench=bench,
            notjson=tmp_path / "notes.json",
            binary=tmp_path / "random.bin",
            subset=tmp_path / "subset.txt",
            videorefer=videorefer_set.folder,
            object=tmp_path / "object.json",
            empty=tmp_path / "empty.json",
            released=bench / "gar_1b_vqa_predictions.json" if bench else "",
        )
        for a in args
    ]
    result = CliRunner().invoke(app, ["eval", *filled])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if "error" in line.lower()]) == 1, result.output
    if "{tmp}/no-model" in args and message != "does not exist":
        assert "no-model" not in result.output, result.output  # the mistake came before the model was loaded
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "q.jsonl").exists()
