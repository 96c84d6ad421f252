"""VideoRefer-Bench-Q/-D runs on a tiny set in the published format (frame folders and a video file)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.errors import InvalidInputError
from garvideo.eval import videorefer
from garvideo.eval.run_videorefer import plan_videorefer, run_videorefer_d, run_videorefer_plan, run_videorefer_q
from garvideo.eval.work import work_folder
from garvideo.model import GenerationSettings
from garvideo.pipeline import Pipeline

SHORT = GenerationSettings(max_new_tokens=2)


@pytest.fixture(scope="module")
def pipeline(models) -> Pipeline:
    return Pipeline.from_pretrained(models / "gar", models / "sam2", progress=False)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_records(records, data, tracked: bool):
    items = {item["id"]: item for item in data.items}
    assert [r["id"] for r in records] == [item["id"] for item in data.items]
    for record in records:
        item = items[record["id"]]
        assert (record["video"], record["Answer"], record["type"]) == (item["video"], item["Answer"], item["type"])
        if record["id"] in data.bad:
            assert record["pred"] == "" and data.bad[record["id"]] in record["error"], record
            continue
        assert "error" not in record and isinstance(record["pred"], str) and record["pred"]
        assert record["letter"] is None or record["letter"] in "ABCD"
        assert record["frames"] and len(record["frames"]) <= 4
        if not tracked:  # the benchmark's masks: only annotated frames where an object is seen
            assert set(record["frames"]) <= set(data.annotated[record["id"]])


def test_questions_and_options_become_the_pipelines(gar):
    question, names = videorefer.convert_question("Where is <object0><region> when <object2><region> stops?")
    assert (question, names) == ("Where is <object0> when <object2> stops?", ["object0", "object2"])
    assert videorefer.convert_question("Is <region> red?") == ("Is <region1> red?", ["region1"])
    assert videorefer.option_texts(["(A) A helmet", "(B) A hat"]) == ["A helmet", "A hat"]
    with pytest.raises(Exception, match=r"labelled \(C\) where \(B\) was expected"):
        videorefer.option_texts(["(A) one", "(C) two"])
    # the prompt GAR receives: named regions as <PromptK>, the options lettered A., B., ... in order
    frame = np.zeros((48, 80, 3), np.uint8)
    mask = np.zeros((48, 80), bool)
    mask[10:20, 10:30] = True
    prompt = gar.prepare_video(
        [frame, frame],
        {"object0": [mask, mask], "object2": [mask, None]},
        question,
        options=videorefer.option_texts(["(A) Left", "(B) Right", "(C) Gone"]),
    )
    assert "There are some objects I am curious about: <Prompt0>; <Prompt1>;\n" in prompt.inputs.text
    assert (
        "\nQuestion: Where is <Prompt0> when <Prompt1> stops?\nOptions:\nA. Left\nB. Right\nC. Gone\n"
        "Answer with the correct option's letter directly.<|eot_id|>"
    ) in prompt.inputs.text


def test_benchmark_masks_end_to_end_resume_and_score(videorefer_set, models, tmp_path):
    out = tmp_path / "q.jsonl"
    args = [
        "eval",
        "videorefer-q",
        "--data",
        str(videorefer_set.folder),
        "--out",
        str(out),
        "--model",
        str(models / "gar"),
        "--frames",
        "4",
        "--max-new-tokens",
        "2",
        "--quiet",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    records = _records(out)
    _check_records(records, videorefer_set, tracked=False)
    assert (summary["total"], summary["computed"], summary["failed"]) == (8, 5, 3)
    assert summary["settings"]["track"] is False and summary["settings"]["sam2"] is None
    assert summary["score"] == videorefer.score(records).to_dict()
    assert set(summary["score"]["per_type"]) == set(videorefer.QUESTION_TYPES)
    assert summary["score"]["overall"]["total"] == 8
    failures = _records(work_folder(out) / "failures.jsonl")
    assert sorted(f["reason"].split(":")[0] for f in failures) == sorted(
        ["missing video", "malformed RLE", "a region without a mask"]
    )

    scored = CliRunner().invoke(app, ["eval", "score", str(out), "--json"])
    assert scored.exit_code == 0 and json.loads(scored.output) == summary["score"]
    printed = CliRunner().invoke(app, ["eval", "score", str(out)])
    assert "####### average #######\nall num: 8\n" in printed.output

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    resumed = json.loads(again.output)
    assert (resumed["computed"], resumed["reused"], resumed["failed"]) == (0, 5, 3)
    assert _records(out) == records

    frames_at = args.index("--frames") + 1
    other = CliRunner().invoke(app, [*args[:frames_at], "3", *args[frames_at + 1 :]])  # same --out, other settings
    assert other.exit_code == 2 and "holds results made with other settings (frames: 4 before, 3 now)" in other.output


def test_tracking_from_one_frame_end_to_end(videorefer_set, pipeline, tmp_path):
    out = tmp_path / "tracked.jsonl"
    summary = run_videorefer_q(
        videorefer_set.folder, pipeline, out, track=True, frames=4, generation=SHORT, progress=False
    )
    records = _records(out)
    _check_records(records, videorefer_set, tracked=True)
    assert summary.settings["sam2"] == pipeline.tracker.model_id and summary.settings["track"] is True
    assert any("tracked with SAM2" in note for note in summary.notes)
    by_id = {r["id"]: r for r in records}
    # tracked masks reach frames the benchmark never annotated
    assert set(by_id[1]["frames"]) - set(videorefer_set.annotated[1])
    result = json.loads((work_folder(out) / f"{_key(out, 3)}.json").read_text())
    assert result["anchor_frames"] == {"object0": 4}  # frame_idx 10 is after it left: nearest annotated sighting


def _key(out, item_id: int) -> str:
    return next(p.stem for p in work_folder(out).glob(f"{item_id:05d}-*.json"))


def test_single_frame_uses_one_mask_per_object(videorefer_set, pipeline, tmp_path):
    out = tmp_path / "single.jsonl"
    run_videorefer_q(videorefer_set.folder, pipeline, out, single_frame=True, generation=SHORT, limit=3, progress=False)
    records = _records(out)
    assert [r["frames"] for r in records] == [[3], [2], [6]]  # each item's frame_idx, where its objects are seen


def test_videorefer_d_writes_what_the_judge_reads(videorefer_set, pipeline, tmp_path):
    out = tmp_path / "d.jsonl"
    summary = run_videorefer_d(videorefer_set.folder, pipeline, out, frames=3, generation=SHORT, progress=False)
    first, missing = _records(out)
    assert {"video", "caption", "pred"} <= set(first) and first["pred"] and first["caption"].startswith("A red")
    assert missing["pred"] == "" and "missing video: gone.mp4" in missing["error"]
    assert summary.report is None and any("external LLM" in note for note in summary.notes)
    refused = CliRunner().invoke(app, ["eval", "score", str(out)])
    assert refused.exit_code == 2 and "judged by an external LLM" in refused.output


def test_a_plan_checks_the_inputs_and_knows_where_each_benchmark_keeps_its_videos(videorefer_set, pipeline, tmp_path):
    folder = videorefer_set.folder
    q = plan_videorefer(videorefer.BENCHMARK_Q, folder, tmp_path / "q.jsonl", frames=2, limit=1)
    assert (q.benchmark, q.chosen, len(q.items), q.video_roots) == ("VideoRefer-Bench-Q", (0,), 8, (folder,))
    assert q.work_dir.is_dir() and q.options.frames == 2
    d = plan_videorefer(videorefer.BENCHMARK_D, folder / videorefer.D_ANNOTATION_FILE, tmp_path / "d.jsonl")
    assert d.video_roots == (folder, folder / "Panda-70M-part") and d.chosen == (0, 1)
    elsewhere = plan_videorefer(videorefer.BENCHMARK_D, folder, tmp_path / "e.jsonl", video_root=folder / "Panda")
    assert elsewhere.video_roots == (folder / "Panda",)

    summary = run_videorefer_plan(q, pipeline, generation=SHORT, progress=False)
    assert summary.total == 1 and summary.settings["double_bos"] == pipeline.gar.info.double_bos
    assert any("1 of the 8 items were run" in note for note in summary.notes)

    for change, message in [
        ({"video_root": tmp_path / "nowhere"}, "the video folder .* does not exist"),
        ({"frames": 0}, "frames must be at least 1"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"out": tmp_path}, "is a folder"),
        ({"data": tmp_path / "nowhere"}, "no VideoRefer-Bench data at"),
    ]:
        arguments = {"data": folder, "out": tmp_path / "x.jsonl", **change}
        with pytest.raises(InvalidInputError, match=message):
            plan_videorefer(videorefer.BENCHMARK_Q, **arguments)
