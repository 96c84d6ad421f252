"""`garvideo serve --ray`: the same API and store, jobs on Ray actors; a job whose actor dies is run again.

One local Ray runtime (2 CPUs) serves the module. The actor is killed (SIGKILL) when its job's first event
reaches the ingress: the job is then certainly running on it.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from garvideo.batch.ray_runner import PipelineSpec, RayOptions

from .conftest import running_server, serve_config, wait_done

pytestmark = pytest.mark.slow  # a Ray runtime and its worker processes

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 << 20)
        try:
            yield
        finally:
            ray.shutdown()


def test_jobs_run_on_ray_and_a_dead_workers_job_runs_again(local_ray, material, tmp_path):
    from garvideo.serve.ray_workers import RayExecutor

    killed = threading.Event()

    class KillOnFirstEvent(RayExecutor):
        def run(self, slot, request, video, shown, folder, on_event):
            def first(event):
                if not killed.is_set():
                    killed.set()
                    os.kill(self.actor_pids()[0], signal.SIGKILL)
                on_event(event)

            return super().run(slot, request, video, shown, folder, first)

    spec = PipelineSpec(str(material.gar), str(material.sam2), "cpu", detector=None)
    executor = KillOnFirstEvent(spec, RayOptions(workers=1), jobs_per_worker=1)
    with running_server(serve_config(material, tmp_path / "state"), executor) as server:
        alice = server.client("alice")
        assert alice.get("/readyz").json()["models"]["gar"]["model"] == str(material.gar)
        job = wait_done(alice, alice.post("/v1/jobs", json=material.describe()).json()["id"], timeout=600)
        assert killed.is_set()
        assert job["state"] == "done" and job["attempts"] == 2
        states = [state for _, state, _ in server.engine.store.transitions(job["id"])]
        assert states == ["queued", "running", "queued", "running", "done"]
        second = wait_done(alice, alice.post("/v1/jobs", json=material.describe()).json()["id"], timeout=600)
        assert second["attempts"] == 1
        assert second["result"]["regions"] == job["result"]["regions"]  # the same work, on the new actor
