"""Benchmark of ``garvideo serve``: N describe jobs through the service vs the same jobs through the Python API.

One pipeline, loaded once, serves every mode (tiny random models by default; ``--full-size`` GAR-1B's and
sam2.1-hiera-tiny's shapes with random weights, from bench/pipeline.py). The service is the real one
(engine, SQLite store, FastAPI on uvicorn, on 127.0.0.1 in this process); clients are httpx in threads,
each calling ``POST /v1/describe?wait=`` and timing its own request.

- ``Python API, one after another``: ``Pipeline.describe`` then ``result_document``, job by job;
- ``service, one client``: the same jobs sent one after another (each waits for its result): the difference
  per job to the row above is the server's overhead (HTTP, the store, queueing, writing the result);
- ``service, N clients``: every job sent at once by its own client (``--slots`` jobs run at a time: one
  tracks while another describes, GAR prompts of concurrent jobs share batches).

Throughput is jobs / wall time of the mode; latency is each job's time from its request to its result.

    python bench/serve.py                      # print a table (8 jobs on 24-frame clips, tiny models)
    python bench/serve.py --write --shared     # also update "## Service" in bench/RESULTS.md
    python bench/serve.py --full-size --device cuda --write   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from machine import describe, write_section  # bench/machine.py (scripts run from bench/)

SECTION = "## Service"


def prepare(folder: Path, jobs: int, frames: int, size: tuple[int, int]) -> list[dict]:
    """One clip per job (their own seeds) under ``folder``; the describe request of each."""
    from garvideo.testing.clips import moving_object_clip

    requests = []
    for number in range(jobs):
        truth = moving_object_clip(folder / f"clip{number}.mp4", num_frames=frames, fps=12, size=size, seed=number)
        x1, y1, x2, y2 = truth.boxes[0]
        region = {"name": "thing", "when": {"frame": 0}, "box": [x1, y1, x2 + 1, y2 + 1]}
        requests.append({"video": f"clip{number}.mp4", "regions": [region], "files": []})
    return requests


def through_api(pipe, folder: Path, requests: list[dict], options: dict) -> dict:
    from garvideo.outputs.document import result_document
    from garvideo.tracking import RegionPrompt

    latencies = []
    began = time.perf_counter()
    for request in requests:
        start = time.perf_counter()
        prompts = [RegionPrompt.from_dict(r) for r in request["regions"]]
        result = pipe.describe(folder / request["video"], prompts, progress=False, **options)
        json.dumps(result_document("describe", result.video, result.tracks, prompts, result))
        latencies.append(time.perf_counter() - start)
    return {"wall": time.perf_counter() - began, "latencies": latencies}


def through_service(url: str, requests: list[dict], options: dict, clients: int) -> dict:
    """Every request by one of ``clients`` threads (1: one after another), each timing its own."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    queue = list(requests)
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=3600) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    request = queue.pop(0)
                start = time.perf_counter()
                response = http.post("/v1/describe", params={"wait": 600}, json={**request, "options": options})
                while response.status_code == 202:  # not done within the wait: follow the job
                    response = http.get(response.headers["location"])
                    if response.json()["state"] == "done":
                        break
                    time.sleep(0.05)
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failures.append(response.text)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} jobs failed: {failures[:2]}")
    return {"wall": time.perf_counter() - began, "latencies": latencies}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(pipe, folder: Path, requests: list[dict], options: dict, slots: list[int], repeats: int) -> tuple[dict, int]:
    """Every mode ``repeats`` times, interleaved; and how many GAR calls of concurrent jobs were generated together.

    The Python API and the one client go job by job in turns (the API's job, then the same job through the
    service), so a change in the machine's load between them moves both alike.
    """
    through_api(pipe, folder, requests[:1], options)  # warm-up (a compiled decoder compiles here)
    api, one = "Python API, one after another", "service, one client"
    crowds = [(f"service, {len(requests)} clients at once, {n} job(s) at a time", n) for n in slots]
    rows: dict[str, list[dict]] = {name: [] for name in (api, one, *(name for name, _ in crowds))}
    merged = 0
    for round_number in range(repeats):
        with _server(_config(folder, round_number, "one", max(slots), len(requests)), pipe, max(slots)) as (url, _):
            paired = [
                (through_api(pipe, folder, [r], options), through_service(url, [r], options, 1)) for r in requests
            ]
        for name, side in ((api, 0), (one, 1)):
            runs = [pair[side] for pair in paired]
            rows[name].append({"wall": sum(r["wall"] for r in runs), "latencies": [r["latencies"][0] for r in runs]})
        for name, jobs_at_once in crowds:
            config = _config(folder, round_number, name, jobs_at_once, len(requests))
            with _server(config, pipe, jobs_at_once) as (url, executor):
                rows[name].append(through_service(url, requests, options, len(requests)))
                merged += executor.pipeline.gar.merged_calls
    return rows, merged


def _config(folder: Path, round_number: int, name: str, slots: int, jobs: int):
    """A fresh state folder for each server (the clips are under ``folder``, its --root)."""
    from garvideo.serve.engine import EngineSettings
    from garvideo.serve.server import ServeConfig

    state = folder / "states" / f"{round_number}-{abs(hash(name))}"
    settings = EngineSettings(max_running_per_key=slots, max_queued_per_key=jobs + 1)
    return ServeConfig(state=state, root=folder, settings=settings)


class _server:
    """The service on a free port of 127.0.0.1, in a thread of this process."""

    def __init__(self, config, pipe, slots: int) -> None:
        from garvideo.serve.local import LocalExecutor

        self.config, self.executor = config, LocalExecutor(pipe, slots=slots)

    def __enter__(self):
        import uvicorn

        from garvideo.serve.http import create_app
        from garvideo.serve.server import bind, running_engine

        sock = bind("127.0.0.1", 0)
        self._engine = running_engine(self.config, self.executor)
        engine = self._engine.__enter__()
        self._server = uvicorn.Server(uvicorn.Config(create_app(engine, None), log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        for _ in range(6000):  # a minute at most
            if self._server.started:
                break
            time.sleep(0.01)
        else:
            raise SystemExit("the service did not start")
        return f"http://127.0.0.1:{sock.getsockname()[1]}", self.executor

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)
        self._engine.__exit__(None, None, None)


def table(rows: dict[str, list[dict]], args, machine: str, merged: int) -> str:
    def pooled(name: str) -> list[float]:
        return [value for run in rows[name] for value in run["latencies"]]

    api, one = pooled("Python API, one after another"), pooled("service, one client")
    overhead = statistics.median(b - a for a, b in zip(api, one))
    base = statistics.median(api)
    load = os.getloadavg()[0]
    lines = [
        f"`python bench/serve.py{' --full-size' if args.full_size else ''} --jobs {args.jobs} --frames {args.frames}"
        f" --repeats {args.repeats}` on {machine}"
        + (f"; the machine was shared with other jobs (load average {load:.1f} at the end)" if args.shared else "")
        + f". {args.jobs} describe jobs, each on its own {args.frames}-frame clip ({args.size}, 12 fps), options"
        f" {json.dumps(args.options)}, no files. Modes interleaved, {args.repeats} runs each: jobs/s and wall are"
        " medians of the runs, latencies (request to result) pooled over them.",
        "",
        "| mode | jobs/s | p50 latency s | p95 latency s | wall s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in rows.items():
        values = pooled(name)
        rate = statistics.median(len(run["latencies"]) / run["wall"] for run in runs)
        wall = statistics.median(run["wall"] for run in runs)
        lines.append(
            f"| {name} | {rate:.3f} | {percentile(values, 0.5):.2f} | {percentile(values, 0.95):.2f} | {wall:.1f} |"
        )
    lines += [
        "",
        f"Server overhead per job (the median, over the jobs, of a job's latency through the service, one client,"
        f" minus its time through the Python API just before): {overhead:+.3f} s ({overhead / base:+.0%} of the"
        f" API's median). GAR calls of one job generated together with another job's: {merged}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8, help="describe jobs (and clients at once)")
    parser.add_argument("--frames", type=int, default=24, help="frames per clip")
    parser.add_argument("--size", default="160x120", help="clip size WxH")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4], help="jobs the service runs at a time")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, interleaved")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--full-size", action="store_true", help="GAR-1B and sam2.1-hiera-tiny shapes, random")
    parser.add_argument("--new-tokens", type=int, default=8, help="max_new_tokens of every description")
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in bench/RESULTS.md")
    parser.add_argument("--shared", action="store_true", help="say that other jobs shared the machine")
    args = parser.parse_args()
    import importlib.util

    missing = [
        name for name in ("fastapi", "uvicorn", "python_multipart", "httpx") if not importlib.util.find_spec(name)
    ]
    if missing:
        raise SystemExit(f"bench/serve.py needs {', '.join(missing)}: pip install 'garvideo[serve]' httpx (on the GPU "
                         "machine, carry their wheels: see bench/gpu.sh's header)")  # fmt: skip
    args.options = {"frames": 4, "frames_per_window": 2, "max_new_tokens": args.new_tokens}
    from pipeline import full_size_pipeline, tiny_pipeline  # bench/pipeline.py

    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="garvideo-bench-serve-") as tmp:
        folder = Path(tmp)
        requests = prepare(folder, args.jobs, args.frames, (width, height))
        pipe = (full_size_pipeline if args.full_size else tiny_pipeline)(folder / "models", args.device, args.dtype)
        rows, merged = run(pipe, folder, requests, args.options, args.slots, args.repeats)
    text = table(rows, args, describe(pipe.gar.model.device), merged)
    print(text)
    if args.write:
        kind = "full-size architectures, random weights" if args.full_size else "tiny models"
        write_section(SECTION, text, block=f"### {kind}, {pipe.gar.model.device.type}")


if __name__ == "__main__":
    main()
