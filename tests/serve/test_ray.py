"""`garvideo serve --ray`: the same API and store, the jobs on Ray actors; a job whose actor dies runs again.

The server is the CLI in its own process (it starts a local Ray runtime of 2 CPUs and one worker). The
actor is killed (SIGKILL) once its job is seen running on it (the job's progress has reached the API from
the actor), on a clip long enough that the job is still running then; after the server stops, no Ray
process it started may be left.
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from garvideo.files import process_alive
from garvideo.testing.clips import moving_object_clip
from garvideo.testing.processes import descendants
from garvideo.testing.waiting import wait_until

from .conftest import address_of, launch, stop, wait_done

pytestmark = pytest.mark.slow  # a server process, a Ray runtime and its workers

pytest.importorskip("ray")


def test_jobs_run_on_ray_and_a_dead_workers_job_runs_again(material, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    long_clip = moving_object_clip(material.root / "clips" / "long.mp4", num_frames=120, fps=12, seed=3)
    x1, y1, x2, y2 = long_clip.boxes[0]
    body = {"kind": "describe", "video": "clips/long.mp4", "options": {"frames": 2, "max_new_tokens": 3}}
    body["regions"] = [{"name": "thing", "when": {"frame": 0}, "box": [x1, y1, x2 + 1, y2 + 1]}]
    server = launch(material, tmp_path / "state", "--ray", "--workers", "1", "--jobs", "1")
    try:
        client = httpx.Client(base_url=address_of(server, timeout=300), timeout=60)
        assert client.get("/readyz").json()["models"]["gar"]["model"] == str(material.gar)
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        seen = wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["progress"], timeout=300, every=0.02)
        assert seen, "the job never reported progress"
        (actor,) = [pid for pid, line in descendants(server.pid).items() if "ServeWorker" in line]
        os.kill(actor, signal.SIGKILL)
        job = wait_done(client, job_id, timeout=600)
        assert job["state"] == "done" and job["attempts"] == 2, job
        again = wait_done(client, client.post("/v1/jobs", json=body).json()["id"], timeout=600)
        assert again["attempts"] == 1 and again["result"]["regions"] == job["result"]["regions"]
        client.close()
        started = descendants(server.pid)  # Ray's processes (they would outlive a careless server)
    finally:
        stop(server)
    assert server.returncode == 0
    assert wait_until(lambda: not [pid for pid in started if process_alive(pid)], timeout=60), [
        started[pid] for pid in started if process_alive(pid)
    ]
