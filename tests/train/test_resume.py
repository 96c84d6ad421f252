"""A run killed with SIGKILL and resumed ends with the weights of an uninterrupted run.

The run is started in a subprocess through a launcher that holds it (touching a marker) when it is about to
take step ``HOLD``: by then checkpoints were written and a step was taken after the last one, so the resumed
run must redo it. Where the kill lands never depends on timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from garvideo.testing.waiting import wait_until
from garvideo.train import TrainConfig, train

from .conftest import HELD_OUT, write_lines

pytestmark = pytest.mark.slow

# Holds the training run of ``-m garvideo_cli.main train ...`` at the start of the given step (0-based).
_HOLD_LAUNCHER = """
import runpy, sys, threading
from pathlib import Path
from garvideo.train import trainer

hold, marker = int(sys.argv[1]), Path(sys.argv[2])
plain_step = trainer.Trainer.step

def step(self, micro_batches, indices, number, total):
    if number == hold:
        marker.touch()
        threading.Event().wait()
    return plain_step(self, micro_batches, indices, number, total)

trainer.Trainer.step = step
sys.argv = sys.argv[3:]
runpy.run_module("garvideo_cli.main", run_name="__main__", alter_sys=True)
"""

HOLD = 5  # steps 1..4 done and checkpointed (save every 2: at 2 and 4; epoch 1 ends at 3), step 5 done, not saved
SETTINGS = dict(rank=4, alpha=8, lora_dropout=0.1, lr=1e-3, batch_size=2, epochs=2, frames=2, save_every=2, log_every=1)


def options(settings: dict) -> list[str]:
    out = []
    for key, value in settings.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(material, models, tmp_path):
    # beside the material: its paths are relative to the data file
    data = write_lines(material.folder / "resume.jsonl", [*material.lines[:4], material.lines[4]])
    model = ["--model", str(models / "gar"), "--sam2", str(models / "sam2")]
    killed = tmp_path / "killed"
    marker = tmp_path / "held"
    command = [sys.executable, "-c", _HOLD_LAUNCHER, str(HOLD), str(marker), "garvideo", "train", str(data)]
    command += ["--out", str(killed), *model, *options(SETTINGS), "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: marker.exists() or process.poll() is not None, timeout=600)
        assert process.poll() is None, process.communicate()
        assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == [f"step-0000000{s}" for s in (2, 3, 4)]
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert not (killed / "adapter_model.safetensors").exists()  # the final adapter comes only at the end

    resumed = subprocess.run(
        [sys.executable, "-m", "garvideo_cli.main", "train", str(data), "--out", str(killed), *model]
        + [*options(SETTINGS), "--resume", "--json", "-q"],
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed_from"] == 4 and summary["steps"] == summary["total_steps"] == 6

    whole = train(data, tmp_path / "whole", TrainConfig(model=model[1], sam2=model[3], **SETTINGS), progress=False)
    a = load_file(str(killed / "adapter_model.safetensors"))
    b = load_file(str(whole.out / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        assert (a[key] - b[key]).abs().max() <= 1e-5, key
    assert any(float(b[key].abs().max()) > 0 for key in b if "lora_B" in key)  # trained: B starts at zero
    lines = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]  # step 5 logged once, not twice
    whole_lines = [json.loads(line) for line in (whole.out / "metrics.jsonl").read_text().splitlines()]
    assert [round(x["loss"], 4) for x in lines] == [round(x["loss"], 4) for x in whole_lines]


def test_two_processes_under_torchrun_or_ray_train_what_one_does_with_the_same_global_batch(material, models, tmp_path):
    """One process per device (here two CPU processes, gloo), started by torchrun or as Ray Train's workers: each
    takes its share of every step's micro-batches, and the summed gradients make the update one process makes
    accumulating the same micro-batches."""
    data = write_lines(material.folder / "two.jsonl", material.lines[:6])
    held_out = write_lines(material.folder / "two_held_out.jsonl", HELD_OUT)
    settings = dict(rank=4, alpha=8, lora_dropout=0.0, lr=1e-3, batch_size=2, epochs=2, frames=2, log_every=1)
    common = ["train", str(data), "--eval", str(held_out), "--model", str(models / "gar"), *options(settings)]
    common += ["--json", "-q"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    two = subprocess.run(
        [*launcher, "-m", "garvideo_cli.main", *common, "--out", str(tmp_path / "two")], capture_output=True, text=True
    )
    assert two.returncode == 0, two.stderr
    assert len(two.stdout.splitlines()) == 1  # the first process reports
    one = subprocess.run(
        [sys.executable, "-m", "garvideo_cli.main", *common, "--grad-accum", "2", "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    assert json.loads(two.stdout)["total_steps"] == json.loads(one.stdout)["total_steps"] == 4
    # the same two processes as Ray Train's workers (a local Ray runtime; its own records in ~/ray_results: here)
    on_ray = subprocess.run(
        [sys.executable, "-m", "garvideo_cli.main", *common, "--ray", "--workers", "2", "--out", str(tmp_path / "ray")],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path / "home")},
    )
    assert on_ray.returncode == 0, on_ray.stderr
    assert json.loads(on_ray.stdout)["steps"] == 4
    a = load_file(str(tmp_path / "one" / "adapter_model.safetensors"))
    for run in ("two", "ray"):
        b = load_file(str(tmp_path / run / "adapter_model.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert (a[key] - b[key]).abs().max() <= 1e-5, (run, key)
    runs = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").open()] for run in ("one", "two")]
    losses = [[line["loss"] for line in run if "loss" in line] for run in runs]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and len(losses[0]) == 4
    # the held-out set is split between the processes; the sums give one process's result
    held = [[line for line in run if "eval_loss" in line] for run in runs]
    assert [line["step"] for line in held[0]] == [line["step"] for line in held[1]] == [2, 4]
    for a, b in zip(*held):
        assert a["eval_tokens"] == b["eval_tokens"] and a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-5)
        assert a["eval_accuracy"] == b["eval_accuracy"] and a["eval_score"]["overall"]["total"] == 2
