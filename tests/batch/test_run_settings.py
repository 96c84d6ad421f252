"""What a batch folder's results were made with, and the files a batch writes there (issue 21's review).

Every result records the settings of its run, and ``run.json`` is created exclusively: neither a deleted, foreign
or replaced ``run.json`` nor two runs begun together let results of other settings mix. A manifest that is one of
the files a batch writes in ``--out`` is refused before any model loads, never overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo import InvalidInputError
from garvideo.batch import jobs
from garvideo.batch.jobs import RUN_FILE, SETTINGS_KEY, BatchJob, check_inputs_outside, check_run_settings

EIGHT = {"options": {"frames": 8, "srt": False}, "models": {"gar": "tiny"}}
TWO = {"options": {"frames": 2, "srt": False}, "models": {"gar": "tiny"}}


@dataclass(frozen=True)
class Item:
    key: str


def _run(folder, settings, keys=("a", "b")):
    return BatchJob([Item(k) for k in keys], folder, lambda item: {"key": item.key}, progress=False, settings=settings)


def test_every_result_records_its_settings_and_the_folder_its_first(tmp_path):
    summary = _run(tmp_path, EIGHT).run()
    assert summary.succeeded == 2
    assert json.loads((tmp_path / "a.json").read_text()) == {"key": "a", SETTINGS_KEY: EIGHT}
    assert json.loads((tmp_path / RUN_FILE).read_text()) == EIGHT
    assert _run(tmp_path, EIGHT).run().done_before == 2


def test_a_deleted_run_file_lets_no_other_settings_in(tmp_path):
    # The review's case: delete run.json, re-run with --frames 2: "2 already done", and run.json said frames 2.
    _run(tmp_path, EIGHT).run()
    (tmp_path / RUN_FILE).unlink()
    with pytest.raises(InvalidInputError, match=r"other settings \(frames: 8 before, 2 now\) according to the result"):
        _run(tmp_path, TWO).run()
    assert not (tmp_path / RUN_FILE).exists()
    # the same settings go on, and the record is made again from them
    assert _run(tmp_path, EIGHT, keys=("a", "b", "c")).run().done_before == 2
    assert json.loads((tmp_path / RUN_FILE).read_text()) == EIGHT


@pytest.mark.parametrize("content", ["not json {", "[1, 2]", ""])
def test_a_run_file_that_is_no_record_is_refused_and_left_alone(tmp_path, content):
    (tmp_path / RUN_FILE).write_text(content)
    with pytest.raises(InvalidInputError, match=rf"{RUN_FILE} is not the record of settings a garvideo run writes"):
        check_run_settings(tmp_path, EIGHT)
    assert (tmp_path / RUN_FILE).read_text() == content


def test_a_replaced_run_file_is_checked_against_the_results(tmp_path):
    _run(tmp_path, EIGHT).run()
    (tmp_path / RUN_FILE).write_text(json.dumps(TWO))  # an older version's, or someone's edit
    with pytest.raises(InvalidInputError, match=r"\(frames: 8 before, 2 now\) according to the result a.json"):
        check_run_settings(tmp_path, TWO)


def test_other_settings_are_refused_before_the_first_result(tmp_path):
    # Two runs begun together: the first recorded its settings, neither has a result yet. The second used to
    # replace run.json and both went on, mixing their results.
    check_run_settings(tmp_path, EIGHT)
    with pytest.raises(InvalidInputError, match=r"was begun with other settings \(frames: 8 before, 2 now\)"):
        check_run_settings(tmp_path, TWO)
    assert json.loads((tmp_path / RUN_FILE).read_text()) == EIGHT
    check_run_settings(tmp_path, EIGHT)  # the same settings: the same run, or its resumption


def test_of_two_runs_recording_at_once_the_second_is_refused(tmp_path, monkeypatch):
    # The other run records its settings between this run's look at run.json and its own record: run.json is
    # created exclusively, so this run finds it there and compares, instead of writing over it.
    read = jobs._read_run_file

    def other_run_records_meanwhile(path):
        found = read(path)
        if not path.exists():
            path.write_text(json.dumps(EIGHT))
        return found

    monkeypatch.setattr(jobs, "_read_run_file", other_run_records_meanwhile)
    with pytest.raises(InvalidInputError, match=r"was begun with other settings \(frames: 8 before, 2 now\)"):
        check_run_settings(tmp_path, TWO)
    assert json.loads((tmp_path / RUN_FILE).read_text()) == EIGHT


def test_results_that_record_no_settings_need_the_run_file(tmp_path):
    # Results of a version that did not record settings in them: run.json vouches for them, or nothing does.
    BatchJob([Item("a")], tmp_path, lambda item: {"key": item.key}, progress=False).run()
    (tmp_path / RUN_FILE).write_text(json.dumps(EIGHT))
    check_run_settings(tmp_path, EIGHT)
    with pytest.raises(InvalidInputError, match="other settings"):
        check_run_settings(tmp_path, TWO)
    (tmp_path / RUN_FILE).unlink()
    with pytest.raises(InvalidInputError, match=r"holds results \(a.json\) that record no settings, and no run.json"):
        check_run_settings(tmp_path, EIGHT)


def test_an_input_is_refused_where_a_job_writes_and_allowed_under_another_name(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "regions.jsonl"
    outside.write_text("{}\n")
    for name in ("failures.jsonl", "run.json", "summary.shard-0-of-2.json", "a-0123456789.json", "x.lock"):
        (out / name).write_text("{}\n")
        with pytest.raises(InvalidInputError, match=f"the regions file {out / name} is one of the files this run"):
            check_inputs_outside(out, {"the regions file": out / name})
    (out / "a-0123456789.srt").symlink_to(outside)  # a write through the link would replace the manifest
    with pytest.raises(InvalidInputError, match=r"regions.jsonl is the same file as .*a-0123456789.srt, one of the"):
        check_inputs_outside(out, {"the regions file": outside}, (".srt",))
    check_inputs_outside(out, {"the regions file": outside})  # (.srt: the batch's side files, not every job's)
    (out / "regions.jsonl").write_text("{}\n")
    check_inputs_outside(out, {"the regions file": out / "regions.jsonl"}, (".srt",))


@pytest.mark.parametrize("name", ["failures.jsonl", "run.json", "summary.json"])
def test_a_batch_whose_manifest_is_one_of_its_outputs_is_refused_before_the_models_load(tmp_path, name):
    # The review's case: `cp regions.jsonl OUT/failures.jsonl`, then `garvideo batch . --regions
    # OUT/failures.jsonl --out OUT` exited 1 with the manifest replaced by failure records (run.json: by the
    # settings). The models named do not exist: the manifest's error comes first.
    (tmp_path / "a.mp4").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    manifest = out / name
    text = json.dumps({"video": "a.mp4", "regions": [{"name": "a", "when": {"frame": 0}, "box": [1, 1, 9, 9]}]})
    manifest.write_text(text + "\n")
    arguments = ["batch", str(tmp_path), "--regions", str(manifest), "--out", str(out), "-q"]
    result = CliRunner().invoke(app, [*arguments, "--model", str(tmp_path / "no-gar"), "--sam2", "tiny"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"garvideo: error: the regions file {manifest} is one of the files this run")
    assert result.output.count("\n") == 1
    assert manifest.read_text() == text + "\n" and sorted(p.name for p in out.iterdir()) == [name]
