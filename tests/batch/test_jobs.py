import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from garvideo import InvalidInputError
from garvideo.batch.jobs import BatchJob, failures_path, parse_shard, shard_from_environment


@dataclass(frozen=True)
class Item:
    key: str
    value: int


def _items(n=5):
    return [Item(f"item-{i}", i) for i in range(n)]


def test_runs_skips_finished_and_records_failures(tmp_path):
    calls = []

    def process(item):
        calls.append(item.key)
        if item.value == 3:
            raise InvalidInputError("box outside the frame")
        if item.value == 4:
            raise RuntimeError("boom")
        return {"square": item.value**2}

    summary = BatchJob(_items(), tmp_path, process, progress=False).run()
    assert (summary.total, summary.succeeded, len(summary.failed)) == (5, 3, 2)
    assert not summary.ok
    assert json.loads((tmp_path / "item-2.json").read_text()) == {"square": 4}
    failures = [json.loads(line) for line in failures_path(tmp_path).read_text().splitlines()]
    assert [f["key"] for f in failures] == ["item-3", "item-4"]
    assert failures[0]["reason"] == "box outside the frame"
    assert failures[1]["reason"] == "RuntimeError: boom" and "Traceback" in failures[1]["traceback"]

    calls.clear()
    summary = BatchJob(_items(), tmp_path, process, progress=False).run()
    assert calls == ["item-3", "item-4"]  # finished items are not redone, failed ones are retried
    assert summary.done_before == 3
    summary_file = json.loads((tmp_path / "summary.json").read_text())
    assert summary_file["skipped_already_done"] == 3 and summary_file["failed"] == 2


def test_failures_file_disappears_once_everything_succeeds(tmp_path):
    fail = {"item-1"}

    def process(item):
        if item.key in fail:
            raise InvalidInputError("transient")
        return {}

    BatchJob(_items(3), tmp_path, process, progress=False).run()
    assert failures_path(tmp_path).exists()
    fail.clear()
    assert BatchJob(_items(3), tmp_path, process, progress=False).run().ok
    assert not failures_path(tmp_path).exists()


def test_shards_split_the_items_without_overlap(tmp_path):
    seen = []
    for k in range(3):
        BatchJob(_items(7), tmp_path, lambda item: seen.append(item.key) or {}, shard=(k, 3), progress=False).run()
    assert sorted(seen) == sorted(i.key for i in _items(7))
    assert (tmp_path / "summary.shard-2-of-3.json").exists()


def test_duplicate_keys_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="distinct"):
        BatchJob([Item("a", 1), Item("a", 2)], tmp_path, lambda i: {}, progress=False).run()


@pytest.mark.parametrize("text, expected", [(None, (0, 1)), ("0/1", (0, 1)), ("2/8", (2, 8))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["3/3", "x/2", "1", "-1/2"])
def test_parse_shard_rejects(text):
    with pytest.raises(InvalidInputError):
        parse_shard(text)


def test_shard_from_environment(monkeypatch):
    for name in (
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "RANK",
        "WORLD_SIZE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    assert shard_from_environment() is None
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert shard_from_environment() == (4, 8)
    # sbatch --array=0-6:2 numbers its four tasks 0, 2, 4, 6: task 6 is the last of four, not an empty shard
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "6")
    with pytest.raises(InvalidInputError, match=r"SLURM_ARRAY_TASK_ID=6 \(array of 4 tasks from 0, step 1\) is out"):
        shard_from_environment()
    monkeypatch.setenv("SLURM_ARRAY_TASK_STEP", "2")
    assert shard_from_environment() == (3, 4)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    with pytest.raises(InvalidInputError, match="is not one of the array's tasks"):
        shard_from_environment()
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "abc")
    with pytest.raises(InvalidInputError, match="SLURM_ARRAY_TASK_ID='abc' is not a whole number"):
        shard_from_environment()
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "0")
    with pytest.raises(InvalidInputError, match="RANK=0 with WORLD_SIZE=0 is out of range"):
        shard_from_environment()
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert shard_from_environment() == (0, 3)


_WORKER = textwrap.dedent(
    """
    import sys
    from dataclasses import dataclass
    from pathlib import Path
    from garvideo.batch.jobs import BatchJob

    @dataclass(frozen=True)
    class Item:
        key: str

    def process(item):
        return {"key": item.key, "payload": "x" * 200_000}

    items = [Item(f"k{i:02d}") for i in range(12)]
    BatchJob(items, Path(sys.argv[1]), process, progress=False).run()
    """
)


@pytest.mark.slow
def test_sigkill_midway_then_rerun_gives_every_result_once(tmp_path, held_batch):
    out = tmp_path / "out"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    held = tmp_path / "held"  # appears once 4 items are done and the 5th is being computed
    proc = subprocess.Popen(held_batch.command(4, held, script, out), env=env)
    held_batch.wait(held, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(out.glob("k04.lock")), "the kill lands while item 5 is locked"
    finished_early = {p.name for p in out.glob("k*.json")}
    assert finished_early == {f"k{i:02d}.json" for i in range(4)}
    subprocess.run([sys.executable, str(script), str(out)], env=env, check=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"k{i:02d}.json" for i in range(12)] + ["summary.json"])
    for i in range(12):
        assert json.loads((out / f"k{i:02d}.json").read_text())["key"] == f"k{i:02d}"
    assert json.loads((out / "summary.json").read_text())["skipped_already_done"] == len(finished_early)


def test_results_failures_and_summary_are_readable_by_others(tmp_path):
    import stat

    def process(item):
        if item.value == 1:
            raise InvalidInputError("bad item")
        return {"value": item.value}

    previous = os.umask(0o022)
    try:
        BatchJob(_items(3), tmp_path, process, progress=False).run()
    finally:
        os.umask(previous)
    for name in ("item-0.json", "item-2.json", "failures.jsonl", "summary.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
