"""`kill -9` of a server with jobs queued and running: the restarted server runs every job, each exactly once.

The server runs in its own process through a launcher that holds its second job inside the pipeline call
(after touching a marker), so the kill lands while that job is running and the others wait, whatever the
machine's speed; the test also sees the job running through the API before it kills.
"""

from __future__ import annotations

import json
import signal

import httpx
import pytest

from garvideo.serve.local import LocalExecutor
from garvideo.serve.server import ServeConfig
from garvideo.serve.store import JobStore
from garvideo.testing.waiting import wait_until

from .conftest import address_of, launch, running_server, stop

pytestmark = pytest.mark.slow  # servers in subprocesses

# The server, its `count`-th job on held in the pipeline (its lock on the store row taken) until it is killed.
HELD_LAUNCHER = """
import sys, threading
from pathlib import Path
import garvideo.serve.local as local

count, marker = int(sys.argv[1]), Path(sys.argv[2])
started = 0
plain = local.run_job

def held(*args, **kwargs):
    global started
    started += 1
    if started > count:
        marker.touch()
        threading.Event().wait()
    return plain(*args, **kwargs)

local.run_job = held
from garvideo_cli.main import main
main(sys.argv[3:])
"""


def test_kill_9_with_jobs_queued_and_running_then_restart_runs_each_once(material, pipeline, tmp_path):
    state = tmp_path / "state"
    marker = tmp_path / "held"
    server = launch(material, state, "--jobs", "1", launcher=HELD_LAUNCHER, launcher_args=("1", str(marker)))
    try:
        url = address_of(server)
        client = httpx.Client(base_url=url, timeout=60)
        ids = [client.post("/v1/jobs", json=material.describe(options={**material.describe()["options"], "frames": n}))
               .json()["id"] for n in (1, 2, 3, 4)]  # fmt: skip
        assert wait_until(marker.exists, timeout=300, every=0.05), "the second job never started"
        states = [client.get(f"/v1/jobs/{i}").json()["state"] for i in ids]
        assert states == ["done", "running", "queued", "queued"]
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        client.close()
    finally:
        stop(server)
    # The restarted server: the same engine and store, in this process this time (its start is not under test).
    with running_server(ServeConfig(state=state, root=material.root.resolve()), LocalExecutor(pipeline)) as restarted:
        client = restarted.client(None)
        done = wait_until(lambda: all(client.get(f"/v1/jobs/{i}").json()["state"] == "done" for i in ids), 300, 0.1)
        assert done, [client.get(f"/v1/jobs/{i}").json() for i in ids]
        jobs = [client.get(f"/v1/jobs/{i}").json() for i in ids]
        assert [job["attempts"] for job in jobs] == [1, 2, 1, 1]
        assert [job["result"]["provenance"]["settings"]["describe"]["frames"] for job in jobs] == [1, 2, 3, 4]
        assert len(client.get("/v1/jobs").json()["jobs"]) == 4
    store = JobStore(state)  # the servers are gone: the store's audit trail can be read
    trail = {i: [s for _, s, _ in store.transitions(i)] for i in ids}
    assert trail[ids[0]] == ["queued", "running", "done"]
    assert trail[ids[1]] == ["queued", "running", "queued", "running", "done"]  # re-run from scratch, done once
    assert trail[ids[2]] == trail[ids[3]] == ["queued", "running", "done"]
    assert all(json.loads(store.result(i))["command"] == "describe" for i in ids)
    leftovers = [p for p in (state / "files").rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no temporary file of the killed run's outputs survives the re-run
    store.close()
