"""`garvideo batch --ray`: the one-machine batch's output from Ray workers, and recovery when processes die.

One local Ray runtime (2 CPUs, so 2 workers) serves the module; it is shut down at the end and
no Ray process of this test may outlive it. Runs wait on result files (progress), never on sleeps.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.batch.jobs import failures_path
from garvideo.batch.manifest import read_manifest
from garvideo.batch.ray_runner import PipelineSpec, RayOptions, run_batch_on_ray, worker_resources
from garvideo.batch.runner import BatchOptions
from garvideo.outputs.document import validate_result_document
from garvideo.testing.processes import descendants as _descendants
from garvideo.testing.waiting import wait_until

TINY = BatchOptions(frames=2, frames_per_window=1, max_new_tokens=3, srt=True)


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray runtime for the module: no dashboard, no usage reports, a small object store."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=100 * 1024 * 1024,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()
    assert wait_until(lambda: not _ray_processes(), 30), "Ray processes outlived ray.shutdown()"


def _ray_processes() -> dict[int, str]:
    return {pid: command for pid, command in _descendants(os.getpid()).items() if "ray" in command}


@pytest.fixture(scope="module")
def material(selftest_material):
    return selftest_material


@pytest.fixture(scope="module")
def long_manifest(tmp_path_factory):
    """Eight lines over clips of 24 and 12 frames, distinct boxes so every line is its own item."""
    lines = [
        {
            "video": "clips/moving.mp4" if k % 2 else "clips/second.mp4",
            "regions": [{"name": "thing", "box": [10 + k, 10, 60 + k, 50], "when": {"frame": k}}],
        }
        for k in range(8)
    ]
    path = tmp_path_factory.mktemp("ray") / "eight.jsonl"  # its videos are found in the batch folder
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _models(material) -> PipelineSpec:
    return PipelineSpec(str(material.gar), str(material.sam2))


def _results(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.glob("*.json")
        if p.name not in ("summary.json", "run.json") and not p.name.startswith(".")
    )


def _outputs(folder: Path) -> dict[str, object]:
    """Every file of a batch's output folder, minus what differs between two runs (times, tracebacks)."""
    out: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".json":
            document = json.loads(path.read_text())
            if path.name == "summary.json":
                document.pop("seconds")
                for failure in document["failures"]:
                    failure.pop("traceback", None)
            elif path.name != "run.json":  # the settings: the same for both
                document.pop("created")
                document["provenance"].pop("timings")
                for run in document["provenance"]["settings"].values():
                    # why --compile auto decided as it did counts the decode steps its process ran before: a Ray
                    # worker's are not the one-machine batch's (the decision, "decoding", is compared)
                    run.get("compile", {}).pop("reason", None)
            out[path.name] = document
        elif path.suffix == ".jsonl":
            out[path.name] = [json.loads(line) for line in path.read_text().splitlines()]
            for failure in out[path.name]:
                failure.pop("traceback", None)
        else:
            out[path.name] = path.read_text()
    return out


def _batch_args(material, out: Path) -> list[str]:
    return [
        "batch",
        str(material.folder),
        "--regions",
        str(material.manifest),
        "--out",
        str(out),
        "--model",
        str(material.gar),
        "--sam2",
        str(material.sam2),
        "--max-new-tokens",
        "3",
        "--frames",
        "2",
        "--frames-per-window",
        "1",
        "--srt",
        "-q",
    ]


@pytest.mark.slow
def test_ray_batch_writes_what_the_one_machine_batch_writes(ray_address, material, tmp_path):
    # the selftest manifest: a described line, a question with options, and a corrupt video
    local = CliRunner().invoke(app, _batch_args(material, tmp_path / "local"), catch_exceptions=False)
    on_ray = CliRunner().invoke(app, _batch_args(material, tmp_path / "ray") + ["--ray"], catch_exceptions=False)
    assert local.exit_code == on_ray.exit_code == 1  # one line failed
    assert local.stdout.split("(")[0] == on_ray.stdout.split("(")[0] == "3 items: 2 done now, 0 already done, 1 failed "
    assert on_ray.stderr.splitlines()[-1] == f"see {tmp_path / 'ray'}/failures.jsonl"
    assert local.stderr.splitlines()[-1] == f"see {tmp_path / 'local'}/failures.jsonl"
    expected, got = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert sorted(got) == sorted(expected)
    assert sum(name.endswith(".srt") for name in got) == 1 and "failures.jsonl" in got
    assert got == expected


def _run_and_kill_a_busy_worker(material, manifest: Path, out: Path, ray_options: RayOptions):
    """Run the batch in a thread; once the first result is written, SIGKILL a worker that is running a line."""
    statuses: list[tuple[str, str]] = []
    outcome: dict[str, object] = {}

    def run():
        try:
            outcome["summary"] = run_batch_on_ray(
                _models(material),
                material.folder,
                manifest,
                out,
                TINY,
                ray_options,
                progress=False,
                on_item=lambda line, status: statuses.append((line.key, status)),
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    driver = threading.Thread(target=run)
    driver.start()
    wait_until(lambda: (out.exists() and _results(out)) or not driver.is_alive(), 180, every=0.05)

    busy: list[int] = []  # the workers running a line

    def busy_or_ended() -> bool:
        busy[:] = [pid for pid, command in _ray_processes().items() if command.startswith("ray::LineWorker.process")]
        return bool(busy) or not driver.is_alive()

    wait_until(busy_or_ended, 180, every=0.05)
    assert busy, "no worker was running a line after the first result"
    os.kill(busy[0], signal.SIGKILL)  # a worker dies mid-line
    driver.join(timeout=300)
    assert not driver.is_alive() and "error" not in outcome, outcome.get("error")
    return outcome["summary"], statuses


@pytest.mark.slow
def test_a_killed_worker_s_line_is_retried_and_nothing_is_lost_or_doubled(
    ray_address, material, long_manifest, tmp_path
):
    out = tmp_path / "out"
    summary, statuses = _run_and_kill_a_busy_worker(material, long_manifest, out, RayOptions())
    keys = [line.key for line in read_manifest(long_manifest)]
    assert (summary.total, summary.succeeded, summary.failed) == (8, 8, ())
    assert any(status == "retried" for _, status in statuses)
    assert sorted(key for key, status in statuses if status == "done") == sorted(keys)  # each line once
    assert _results(out) == sorted(f"{key}.json" for key in keys)
    srt = [f"{key}.srt" for key in keys]
    assert sorted(os.listdir(out)) == sorted(
        _results(out) + srt + ["summary.json", "run.json"]
    )  # no temporary file left
    assert not failures_path(out).exists()


@pytest.mark.slow
def test_a_line_whose_worker_died_on_its_last_try_is_recorded_as_failed(ray_address, material, long_manifest, tmp_path):
    out = tmp_path / "out"
    summary, statuses = _run_and_kill_a_busy_worker(material, long_manifest, out, RayOptions(max_attempts=1))
    (lost,) = [key for key, status in statuses if status == "failed"]
    assert not any(status == "retried" for _, status in statuses)
    assert (summary.total, summary.succeeded, [f.key for f in summary.failed]) == (8, 7, [lost])
    (record,) = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert record["key"] == lost
    assert record["reason"].startswith("its Ray worker died while running it, on try 1 of 1 (last: ")
    keys = [line.key for line in read_manifest(long_manifest)]
    assert _results(out) == sorted(f"{key}.json" for key in keys if key != lost)


@pytest.mark.slow
def test_the_driver_killed_midway_and_run_again_finishes_the_job(ray_address, material, long_manifest, tmp_path):
    out = tmp_path / "out"
    args = _batch_args(material, out)
    args[args.index(str(material.manifest))] = str(long_manifest)
    # a second driver on the module's Ray runtime, as `garvideo batch --ray ADDRESS` on a cluster's head
    command = [sys.executable, "-m", "garvideo_cli.main", *args, "--ray", ray_address]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: len(_results(out) if out.exists() else []) >= 2 or driver.poll() is not None, 180, every=0.05)
    driver.send_signal(signal.SIGKILL)
    _, errors = driver.communicate()
    before = set(_results(out))
    assert 2 <= len(before) < 8, errors.decode()[-2000:]

    statuses: list[tuple[str, str]] = []
    summary = run_batch_on_ray(
        _models(material),
        material.folder,
        long_manifest,
        out,
        TINY,
        progress=False,
        on_item=lambda line, status: statuses.append((line.key, status)),
    )
    assert (summary.total, summary.done_before, summary.succeeded, summary.failed) == (
        8,
        len(before),
        8 - len(before),
        (),
    )
    assert {f"{key}.json" for key, status in statuses if status == "skipped"} == before
    redone = [f"{key}.json" for key, status in statuses if status == "done"]
    assert len(redone) == len(set(redone)) == 8 - len(before) and not set(redone) & before
    after = _results(out)
    assert len(after) == 8 and sorted(os.listdir(out)) == sorted(
        after + [f"{n[:-5]}.srt" for n in after] + ["summary.json", "run.json"]
    )
    for name in after:
        validate_result_document(json.loads((out / name).read_text()))


def test_without_ray_installed_the_flag_says_how_to_install_it(material, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    result = CliRunner().invoke(app, _batch_args(material, tmp_path / "out") + ["--ray"])
    assert result.exit_code == 2
    assert (
        result.stderr == "garvideo: error: --ray needs Ray, which is not installed here: pip install 'garvideo[ray]'\n"
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "2"], "--workers only apply with --ray"),
        (["--ray", "--shard", "0/2"], "--shard and --ray do not mix"),
    ],
)
def test_ray_options_misused(material, tmp_path, extra, message):
    result = CliRunner().invoke(app, _batch_args(material, tmp_path / "out") + extra)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "cluster, options, expected",
    [
        ({"CPU": 16.0}, RayOptions(), (16, 0.0)),  # CPU cluster: one worker per CPU
        ({"CPU": 16.0}, RayOptions(cpus_per_worker=4), (4, 0.0)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(), (8, 1.0)),  # GPU cluster: one worker per GPU
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(gpus_per_worker=0.5), (16, 0.5)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(workers=3), (3, 1.0)),
        ({"CPU": 64.0, "GPU": 8.0}, RayOptions(workers=100), (20, 1.0)),  # never more workers than lines
    ],
)
def test_worker_count(cluster, options, expected):
    assert worker_resources(cluster, options, lines=20) == expected


def test_a_cluster_too_small_for_one_worker_is_a_usage_error():
    from garvideo import InvalidInputError

    with pytest.raises(InvalidInputError, match="not enough for one worker"):
        worker_resources({"CPU": 2.0}, RayOptions(gpus_per_worker=1), lines=3)
