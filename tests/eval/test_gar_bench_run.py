"""GAR-Bench-VQA runs: the real data with a tiny model, kill and resume, per-item failures, both modes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app
from PIL import Image

from garvideo.errors import InvalidInputError
from garvideo.eval import gar_bench
from garvideo.eval.run_gar_bench import (
    UNMARKED_FIELD,
    extra_region_count,
    item_masks,
    plan_gar_bench_vqa,
    run_gar_bench_plan,
    run_gar_bench_vqa,
)
from garvideo.eval.work import work_folder
from garvideo.masks import encode_rle
from garvideo.model import GenerationSettings

REPO = Path(__file__).resolve().parents[2]
SHORT = GenerationSettings(max_new_tokens=2)


def _results(work: Path) -> dict[str, Path]:
    """Per-item result files in a work folder (not the run's own records, not temporary files)."""
    own = {"run.json", "summary.json", "eval_summary.json"}
    return {p.stem: p for p in work.glob("*.json") if p.name not in own and not p.name.startswith(".")}


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_items(shared_dir, models, tmp_path, held_batch):
    data = shared_dir / "data/gar-bench-vqa"
    with_images = gar_bench.read_subset(data / "subset_with_images.txt")
    out = tmp_path / "preds.json"
    work = work_folder(out)
    args = [
        "eval",
        "gar-bench-vqa",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        str(models / "gar"),
        "--mode",
        "reference",
        "--max-new-tokens",
        "1",
        "--quiet",
        "--json",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    held = tmp_path / "held"  # appears once 5 items are done and the 6th is being computed
    first = subprocess.Popen(
        held_batch.command(5, held, "-m", "garvideo_cli.main", *args),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        held_batch.wait(held, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    done_before = _results(work)
    assert len(done_before) == 5 < len(with_images), "the kill was meant to land mid-run"
    assert not out.exists(), "a killed run must not leave a predictions file"
    for path in work.iterdir():  # whatever the kill left is complete JSON (temporary files aside)
        if path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
        elif not path.name.startswith("."):
            json.loads(path.read_text())
    stamps = {key: path.stat().st_mtime_ns for key, path in done_before.items()}

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.output)
    assert summary["total"] == 424
    assert summary["reused"] == len(done_before)
    assert summary["computed"] == len(with_images) - len(done_before)
    assert summary["failed"] == 424 - len(with_images)
    assert {key: done_before[key].stat().st_mtime_ns for key in done_before} == stamps  # not recomputed

    predictions = json.loads(out.read_text())
    items = gar_bench.load_items(data)
    released = gar_bench.load_items(data / "gar_1b_vqa_predictions.json")
    assert len(predictions) == 424
    for item, prediction, reference in zip(items, predictions, released):
        assert {k: prediction[k] for k in item} == item  # every item, once, in order, unchanged
        assert set(reference) <= set(prediction) <= set(reference) | {"error", UNMARKED_FIELD}
        assert isinstance(prediction["model_output"], str)
        if item["image"] in with_images:
            assert "error" not in prediction
        else:
            assert prediction["model_output"] == "" and prediction["error"].startswith("missing image: ")
    extra = [p for p in predictions if UNMARKED_FIELD in p]
    assert sorted(p["image"] for p in extra) == sorted(
        i["image"] for i in items if len(i["mask_rles"]) > 5 and i["image"] in with_images
    )
    assert all(p[UNMARKED_FIELD] == [f"<Prompt{k}>" for k in range(5, len(p["mask_rles"]))] for p in extra)
    assert summary["counts"] == {"more_than_max_regions": 10, "answered_reference_way": len(extra)}
    assert any("10 items name more than 5 regions" in note for note in summary["notes"])
    assert summary["score"] == gar_bench.score(predictions).to_dict()
    assert summary["score"]["overall"]["total"] == 424

    failures = [json.loads(line) for line in (work / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 424 - len(with_images) and all("missing image" in f["reason"] for f in failures)


# ---------------------------------------------------------------------- a small made-up set: every kind of failure


def _disk(height: int, width: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.fixture(scope="module")
def small_bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gar_bench_small")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(root / "images/a.png")
    masks = [encode_rle(_disk(60, 80, 10 + 8 * k, 10 + 10 * k, 6)) for k in range(7)]

    def item(question, choices, rles, answer="A", kind="color", image="images/a.png"):
        return {
            "image_path": "/elsewhere",
            "mask_rles": rles,
            "question": question,
            "choices": choices,
            "answer": answer,
            "type": kind,
            "image": image,
        }

    two = ["A. <Prompt0>", "B. <Prompt1>"]
    items = [
        item("Which is red, <Prompt0> or <Prompt1>?", two, masks[:2]),
        item("Which is on the left?", [f"{chr(65 + k)}. <Prompt{k}>" for k in range(7)], masks[:7], "B", "relation"),
        item("Which is round?", two, [masks[0], {"size": [60, 80], "counts": "broken!"}], "B", "shape"),
        item("Is <Prompt2> shiny?", ["A. yes", "B. no"], masks[:2], "A", "material"),
        item("Which is red?", two, masks[:2], "A", "color", image="images/missing.png"),
        item("Which is striped?", two, [encode_rle(np.ones((10, 10), bool))] * 2, "A", "texture/pattern"),
    ]
    (root / "GAR-Bench-VQA.json").write_text(json.dumps(items), encoding="utf-8")
    return root


EXPECTED_ERRORS = {
    1: "more than 5 regions: the question names <Prompt5>, <Prompt6> but one GAR prompt marks only <Prompt0> to "
    "<Prompt4>",
    2: "malformed RLE: the mask of <Prompt1>",
    3: "a prompt without a mask: the question names <Prompt2> but the item has only 2 masks",
    4: "missing image: images/missing.png",
    5: "is 10x10 (width x height) but the image is 80x60",
}


def test_failures_are_recorded_per_item_and_count_as_wrong(small_bench, gar, tmp_path):
    out = tmp_path / "small.json"
    summary = run_gar_bench_vqa(small_bench, gar, out, generation=SHORT, progress=False)
    predictions = json.loads(out.read_text())
    assert [p["question"] for p in predictions] == [i["question"] for i in gar_bench.load_items(small_bench)]
    assert "error" not in predictions[0] and predictions[0]["model_output"]
    for index, message in EXPECTED_ERRORS.items():
        assert message in predictions[index]["error"], predictions[index]["error"]
        assert predictions[index]["model_output"] == ""
    assert "cannot be split into groups" in predictions[1]["error"] and "--mode reference" in predictions[1]["error"]
    assert (summary.total, summary.computed, summary.failed) == (6, 1, 5)
    assert summary.counts["more_than_max_regions"] == 1 and summary.counts["answered_reference_way"] == 0
    assert any("refused in the default mode" in note for note in summary.notes)
    # failed items are wrong whatever their answer letter; the score covers all six
    report = summary.report
    assert report.overall.total == 6 and report.overall.correct <= 1
    assert report.to_dict() == gar_bench.score(predictions).to_dict()
    text = summary.describe()
    assert "1 answered now, 0 reused from an earlier run, 5 failed" in text and "1 x missing image" in text
    failures = [json.loads(line) for line in (work_folder(out) / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 5 and all("traceback" not in f for f in failures)  # user-facing reasons only


def test_reference_mode_answers_items_with_more_than_five_regions(small_bench, gar, tmp_path):
    out = tmp_path / "reference.json"
    summary = run_gar_bench_vqa(small_bench, gar, out, mode="reference", generation=SHORT, limit=2, progress=False)
    first, seven = json.loads(out.read_text())
    assert UNMARKED_FIELD not in first and "error" not in seven
    assert seven[UNMARKED_FIELD] == ["<Prompt5>", "<Prompt6>"]
    assert summary.counts == {"more_than_max_regions": 1, "answered_reference_way": 1}
    assert any("2 of the 6 items were run" in note for note in summary.notes)
    # the prompt lists all seven regions but marks and replays only five, as the reference's code does
    items = gar_bench.load_items(small_bench)
    inputs = gar.processor.prepare_reference_question(
        small_bench / items[1]["image"],
        item_masks(items[1]),
        gar_bench.vqa_question(items[1]),
        extra_regions="reference",
    )
    assert all(f"<Prompt{k}>: " in inputs.text for k in range(7))
    assert [run.prompt_index for run in inputs.runs] == [0, 1, 2, 3, 4]
    assert inputs.text.endswith(
        "Question: Which is on the left?\nOptions:\nA. <Prompt0>\nB. <Prompt1>\nC. <Prompt2>\nD. <Prompt3>\n"
        "E. <Prompt4>\nF. <Prompt5>\nG. <Prompt6>\nAnswer with the correct option's letter directly."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_a_finished_run_is_reassembled_without_computing_and_other_settings_are_refused(small_bench, gar, tmp_path):
    out = tmp_path / "again.json"
    first = run_gar_bench_vqa(small_bench, gar, out, generation=SHORT, progress=False)
    written = json.loads(out.read_text())
    out.unlink()
    again = run_gar_bench_vqa(small_bench, gar, out, generation=SHORT, progress=False)
    assert (again.computed, again.reused, again.failed) == (0, first.computed, first.failed)
    assert json.loads(out.read_text()) == written and again.report == first.report
    with pytest.raises(Exception, match="holds results made with other settings .*mode: 'default' before"):
        run_gar_bench_vqa(small_bench, gar, out, mode="reference", generation=SHORT, progress=False)


def test_subset_and_limit_choose_items():
    items = [{"image": f"images/vqa_{i}.png"} for i in range(6)]
    assert gar_bench.select_items(items, ["images/vqa_4.png", "1"]) == [1, 4]
    assert gar_bench.select_items(items, None, limit=2) == [0, 1]
    assert gar_bench.select_items(items, ["5", "images/vqa_0.png"], limit=1) == [0]
    with pytest.raises(Exception, match="neither an item's image nor an item index"):
        gar_bench.select_items(items, ["images/vqa_9.png"])
    assert gar_bench.read_subset(["# a comment", "", " images/vqa_1.png "]) == ["images/vqa_1.png"]


def test_a_prompt_beyond_the_fifth_counts_as_the_runner_treats_it(small_bench, gar, tmp_path):
    """Two regions, one of them <Prompt6>: GAR cannot mark it, so the summary counts it with the >5-region items."""
    folder = tmp_path / "bench"
    (folder / "images").mkdir(parents=True)
    (folder / "images/a.png").write_bytes((small_bench / "images/a.png").read_bytes())
    seven = gar_bench.load_items(small_bench)[1]
    item = {**seven, "question": "Is <Prompt6> left of <Prompt0>?", "choices": ["A. yes", "B. no"]}
    (folder / "GAR-Bench-VQA.json").write_text(json.dumps([item]), encoding="utf-8")
    assert extra_region_count(item, 5) == 1

    refused = run_gar_bench_vqa(folder, gar, tmp_path / "default.json", generation=SHORT, progress=False)
    assert refused.failed == 1 and "the question names <Prompt6> but" in refused.failures[0][1]
    assert refused.counts == {"more_than_max_regions": 1, "answered_reference_way": 0}

    # the reference's prompt needs every mask named: the item fails there too, and is counted so
    other = run_gar_bench_vqa(folder, gar, tmp_path / "ref.json", mode="reference", generation=SHORT, progress=False)
    assert other.failed == 1 and "names <Prompt0>, <Prompt6> but 7 masks were given" in other.failures[0][1]
    assert other.counts == {"more_than_max_regions": 1, "answered_reference_way": 0}


def test_a_plan_checks_everything_a_user_gives_before_a_model_is_needed(small_bench, gar, tmp_path):
    plan = plan_gar_bench_vqa(small_bench, tmp_path / "runs/p.json", subset=["images/a.png"], limit=2)
    assert (plan.benchmark, plan.root, plan.chosen, len(plan.items), plan.mode) == (
        "GAR-Bench-VQA",
        small_bench,
        (0, 1),
        6,
        "default",
    )
    assert plan.work_dir == work_folder(tmp_path / "runs/p.json") and plan.work_dir.is_dir()
    assert not plan.out.exists()
    summary = run_gar_bench_plan(plan, gar, generation=SHORT, progress=False)
    assert summary.total == 2 and any("2 of the 6 items were run" in note for note in summary.notes)

    (tmp_path / "afile").write_text("")
    (tmp_path / "blocked.json.work").write_text("")
    mistakes = [
        ({"out": tmp_path}, "is a folder"),
        ({"out": tmp_path / "afile/p.json"}, "afile is a file, not a folder"),
        ({"out": tmp_path / "blocked.json"}, "cannot create the work folder"),
        ({"subset": ["images/a.png", "7"]}, "neither an item's image nor an item index .0 to 5., e.g. '7'"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"mode": "sloppy"}, "unknown mode 'sloppy'"),
    ]
    for change, message in mistakes:
        arguments = {"data": small_bench, "out": tmp_path / "q.json", **change}
        with pytest.raises(InvalidInputError, match=message):
            plan_gar_bench_vqa(**arguments)
    assert not work_folder(tmp_path / "q.json").exists()  # refused plans leave nothing behind


def test_reference_mode_replays_every_region_from_the_last_masks_box(small_bench, gar, tmp_path, monkeypatch):
    """Quirk Q2 opt-in: --mode reference uses the last mask's box for every region, the default each its own."""
    from garvideo.model import region_box

    boxes_sent = []
    real_generate = gar.generate

    def spy(inputs, *args, **kwargs):
        boxes_sent.append([run.box for run in inputs.runs])
        return real_generate(inputs, *args, **kwargs)

    monkeypatch.setattr(gar, "generate", spy)
    item = gar_bench.load_items(small_bench)[0]
    masks = [m > 0 for m in item_masks(item)]
    own = [region_box(m) for m in masks]
    assert own[0] != own[1]

    default = run_gar_bench_vqa(small_bench, gar, tmp_path / "d.json", generation=SHORT, limit=1, progress=False)
    reference = run_gar_bench_vqa(
        small_bench, gar, tmp_path / "r.json", mode="reference", generation=SHORT, limit=1, progress=False
    )
    assert boxes_sent == [own, [own[-1], own[-1]]]
    assert not any("quirk Q2" in note for note in default.notes)
    assert any("quirk Q2" in note for note in reference.notes)
