"""Jobs through the shared server: results equal the CLI's, events, files, uploads, URLs, retries, cancels, limits."""

from __future__ import annotations

import base64
import contextlib
import json
import threading

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app as cli_app

from garvideo.outputs import validate_result_document
from garvideo.serve.local import LocalExecutor

from .conftest import QUICK_ASK, QUICK_DESCRIBE, running_server, serve_config, wait_done

pytestmark = pytest.mark.slow  # model work on the tiny models: a few seconds a test


def normalized(document: bytes | str) -> dict:
    """A result without what differs between two runs of the same input: when it was made, how long it took."""
    doc = json.loads(document)
    doc.pop("created", None)
    provenance = doc.get("provenance") or doc.get("meta", {}).get("provenance")
    provenance.pop("timings", None)
    return doc


def cli(material, monkeypatch, tmp_path, *args: str) -> None:
    """The CLI run from --root with the same relative video path as the request (so the documents' paths agree)."""
    monkeypatch.chdir(material.root)
    models = ["--sam2", str(material.sam2), "-q"] + (["--model", str(material.gar)] if args[0] != "track" else [])
    result = CliRunner().invoke(cli_app, [*args, *models], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_describe_gives_the_clis_document_and_files_byte_for_byte(server, material, monkeypatch, tmp_path):
    alice = server.client("alice")
    created = alice.post("/v1/jobs", json=material.describe(files=["srt", "vtt", "tracks", "overlay"]))
    assert created.status_code == 202 and created.headers["location"] == f"/v1/jobs/{created.json()['id']}"
    job = wait_done(alice, created.json()["id"])
    assert job["state"] == "done" and job["error"] is None and job["attempts"] == 1
    raw = alice.get(job["result_url"])
    assert raw.headers["content-type"] == "application/json" and json.loads(raw.content) == job["result"]
    validate_result_document(job["result"])
    box = ",".join(map(str, material.box))
    cli(material, monkeypatch, tmp_path, "describe", "clips/moving.mp4", "--box", f"thing={box}@3", "--frames", "2",
        "--frames-per-window", "1", "--max-new-tokens", "3", "--out", str(tmp_path / "r.json"), "--srt",
        str(tmp_path / "r.srt"), "--vtt", str(tmp_path / "r.vtt"), "--save-tracks", str(tmp_path / "t.json"))  # fmt: skip
    written = (tmp_path / "r.json").read_bytes()
    # Byte for byte but the two fields that differ between any two runs (the same for two CLI runs).
    assert normalized(raw.content) == normalized(written)
    assert raw.content.decode().count("\n") == written.decode().count("\n")  # the same layout (indent 2)
    for name, path in (("srt", "r.srt"), ("vtt", "r.vtt")):
        assert alice.get(job["files"][name]).content == (tmp_path / path).read_bytes(), name
    assert normalized(alice.get(job["files"]["tracks"]).content) == normalized((tmp_path / "t.json").read_bytes())
    overlay = alice.get(job["files"]["overlay"])
    assert overlay.headers["content-type"] == "video/mp4" and overlay.content[4:8] == b"ftyp"


def test_ask_and_track_give_the_clis_documents(server, material, monkeypatch, tmp_path):
    alice = server.client("alice")
    ask = alice.post("/v1/ask", params={"wait": 120}, json={k: v for k, v in material.ask().items() if k != "kind"})
    assert ask.status_code == 200 and ask.json()["state"] == "done"
    track = wait_done(
        alice, alice.post("/v1/jobs", json={**material.describe(), "kind": "track", "options": {}}).json()["id"]
    )
    box = ",".join(map(str, material.box))
    cli(material, monkeypatch, tmp_path, "ask", "clips/moving.mp4", "What is <thing> doing?", "--box", f"thing={box}@3",
        "--frames", "2", "--max-new-tokens", "3", "--out", str(tmp_path / "a.json"))  # fmt: skip
    cli(
        material,
        monkeypatch,
        tmp_path,
        "track",
        "clips/moving.mp4",
        "--box",
        f"thing={box}@3",
        "--out",
        str(tmp_path / "t.json"),
    )
    assert normalized(alice.get(ask.json()["result_url"]).content) == normalized((tmp_path / "a.json").read_bytes())
    assert normalized(alice.get(track["result_url"]).content) == normalized((tmp_path / "t.json").read_bytes())


def test_events_stream_progress_frames_text_and_each_window(server, material):
    alice = server.client("alice")
    job_id = alice.post("/v1/jobs", json=material.describe()).json()["id"]
    events = []
    with alice.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1]["state"] == "done"
    assert "progress" in names and "frame" in names and "text" in names
    stages = {data["stage"] for name, data in events if name == "progress"}
    assert {"track", "describe"} <= stages
    result = alice.get(f"/v1/jobs/{job_id}").json()["result"]
    timeline = result["regions"][0]["timeline"]
    windows = [data for name, data in events if name == "window"]
    assert sorted((w["window"], w["text"]) for w in windows) == [
        (n, w["description"]) for n, w in enumerate(timeline) if w["visible"]
    ]
    # A watcher who comes after the end still hears every window and the end.
    late = alice.get(f"/v1/jobs/{job_id}/events").text
    assert late.count("event: window") == len(windows) and "event: end" in late


def test_uploads_data_urls_and_allowed_urls(server, material, web):
    alice = server.client("alice")
    request = {k: v for k, v in material.describe().items() if k != "video"}
    clip = (material.root / "clips" / "moving.mp4").read_bytes()
    uploaded = alice.post("/v1/jobs", files={"request": (None, json.dumps(request)), "video": ("my clip.mp4", clip)})
    data_url = alice.post(
        "/v1/jobs", json={**request, "video": "data:video/mp4;base64," + base64.b64encode(clip).decode()}
    )
    fetched = alice.post("/v1/jobs", json={**request, "video": f"{web}/allowed/moving.mp4"})
    redirected = alice.post("/v1/jobs", json={**request, "video": f"{web}/allowed/jump"})
    jobs = [wait_done(alice, r.json()["id"]) for r in (uploaded, data_url, fetched, redirected)]
    assert [j["state"] for j in jobs[:3]] == ["done"] * 3
    assert jobs[0]["video"] == "my clip.mp4" and jobs[0]["result"]["video"]["path"] == "my clip.mp4"
    assert jobs[2]["result"]["video"]["path"] == f"{web}/allowed/moving.mp4"
    assert jobs[3]["state"] == "failed" and "this server fetches only URLs under" in jobs[3]["error"]
    stored = server.engine.store.get(jobs[1]["id"]).request["video"]
    assert stored == "data: URL, saved as video.mp4"  # the bytes live in the upload folder, not in the store
    texts = {json.dumps(normalized(json.dumps(j["result"]))["regions"]) for j in jobs[:3]}
    assert len(texts) == 1  # the same video, however it came


def test_an_idempotent_retry_returns_the_same_job(server, material):
    alice, bob = server.client("alice"), server.client("bob")
    first = alice.post("/v1/jobs", json=material.describe(), headers={"Idempotency-Key": "retry-1"})
    again = alice.post("/v1/jobs", json=material.describe(), headers={"Idempotency-Key": "retry-1"})
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = alice.post("/v1/jobs", json=material.ask(), headers={"Idempotency-Key": "retry-1"})
    assert other.status_code == 422 and "was used for another request" in other.json()["error"]["message"]
    bobs = bob.post("/v1/jobs", json=material.describe(), headers={"Idempotency-Key": "retry-1"})
    assert bobs.json()["id"] != first.json()["id"]  # keys are per client
    uploads = sorted(server.engine.store.uploads_root.iterdir())
    request = json.dumps({k: v for k, v in material.describe().items() if k != "video"})
    clip = (material.root / "clips" / "moving.mp4").read_bytes()
    sent = [
        alice.post(
            "/v1/jobs", files={"request": (None, request), "video": ("a.mp4", clip)}, headers={"Idempotency-Key": "up"}
        )
        for _ in range(2)
    ]
    assert sent[0].json()["id"] == sent[1].json()["id"]
    assert len(sorted(server.engine.store.uploads_root.iterdir())) == len(uploads) + 1  # one copy kept
    for response in (first, bobs, sent[0]):
        wait_done(server.client("alice" if response is not bobs else "bob"), response.json()["id"])


def test_mistakes_found_with_the_video_are_refused_and_a_failing_job_says_why(server, material, web):
    alice = server.client("alice")
    outside = {**material.region(), "box": [500, 500, 600, 600]}  # beyond the 160x120 frame
    refused = alice.post("/v1/describe", json={"video": "clips/moving.mp4", "regions": [outside]})
    assert refused.status_code == 400 and refused.json()["error"]["message"] == (
        "the box of 'thing' 500,500,600,600 lies outside the 160x120 frame (zero area once clipped): boxes are "
        "x1,y1,x2,y2 in pixels of the displayed frame"
    )  # the CLI's line, before any job exists
    late = {**material.region(), "when": {"frame": 400}}
    assert "beyond the video's last frame 23" in alice.post("/v1/jobs", json=material.describe(regions=[late])).text
    failed = alice.post("/v1/describe", json={**material.describe(), "video": f"{web}/allowed/jump"})
    assert failed.status_code == 400
    message = failed.json()["error"]["message"]  # the URL is fetched when the job runs: the job fails
    assert message.startswith("job ") and "failed: this server fetches only URLs under" in message


def test_delete_removes_a_finished_job_and_expiry_removes_old_ones(server, material):
    alice = server.client("alice")
    job = wait_done(alice, alice.post("/v1/jobs", json=material.describe()).json()["id"])
    folder = server.engine.store.job_folder(job["id"])
    assert folder.is_dir()
    assert alice.delete(f"/v1/jobs/{job['id']}").json() == {"id": job["id"], "deleted": True}
    assert alice.get(f"/v1/jobs/{job['id']}").status_code == 404 and not folder.exists()
    old = wait_done(alice, alice.post("/v1/jobs", json=material.describe()).json()["id"])
    engine = server.engine
    settings = engine.settings
    engine.settings = type(settings)(**{**settings.__dict__, "keep_hours": 1e-9})
    try:
        assert old["id"] in engine.expire_now()
    finally:
        engine.settings = settings
    assert alice.get(f"/v1/jobs/{old['id']}").status_code == 404


class Gated(LocalExecutor):
    """The real executor whose jobs wait, once running in the pipeline, until the test opens the gate."""

    def __init__(self, pipeline) -> None:
        super().__init__(pipeline, slots=1)
        self.gate = threading.Event()
        self.held = threading.Event()

    def run(self, slot, request, video, shown, folder, on_event):
        def held(event):
            self.held.set()
            self.gate.wait(60)
            on_event(event)

        return super().run(slot, request, video, shown, folder, held)


@pytest.fixture
def gated(material, pipeline, tmp_path):
    executor = Gated(pipeline)
    config = serve_config(material, tmp_path / "state", max_running_per_key=1, max_queued_per_key=2)
    with running_server(config, executor) as running:
        yield running, executor
        executor.gate.set()


def test_per_key_limits_answer_429_with_retry_after(gated, material):
    server, executor = gated
    alice, bob = server.client("alice"), server.client("bob")
    running = alice.post("/v1/jobs", json=material.describe()).json()
    assert executor.held.wait(60)
    waiting = [alice.post("/v1/jobs", json=material.describe()) for _ in range(2)]
    refused = alice.post("/v1/jobs", json=material.describe())
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "you have 2 jobs waiting" in refused.json()["error"]["message"]
    assert bob.post("/v1/jobs", json=material.describe()).status_code == 202  # bob's own share
    states = [alice.get(f"/v1/jobs/{j}").json()["state"] for j in [running["id"], *(w.json()["id"] for w in waiting)]]
    assert states == ["running", "queued", "queued"]
    executor.gate.set()
    assert all(wait_done(alice, w.json()["id"])["state"] == "done" for w in waiting)


def test_cancel_a_queued_and_a_running_job(gated, material):
    server, executor = gated
    alice = server.client("alice")
    running = alice.post("/v1/jobs", json=material.describe()).json()["id"]
    assert executor.held.wait(60)
    queued = alice.post("/v1/jobs", json=material.describe()).json()["id"]
    cancelled = alice.delete(f"/v1/jobs/{queued}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    stopping = alice.delete(f"/v1/jobs/{running}")
    assert stopping.status_code == 202 and stopping.json()["cancel_requested"]
    executor.gate.set()
    assert wait_done(alice, running)["state"] == "cancelled"
    states = [state for _, state, _ in server.engine.store.transitions(running)]
    assert states == ["queued", "running", "cancelled"]
    with contextlib.suppress(Exception):
        alice.delete(f"/v1/jobs/{queued}")


def test_fifty_concurrent_clients_lose_nothing_and_duplicate_nothing(server, material, pipeline):
    """50 clients at once, each polling its own job a bounded number of times: 50 jobs, each done once, each
    with its own answer, and that answer the one the Python API gives alone (whatever runs it shared)."""
    alice = server.client("alice")
    tracks = wait_done(
        alice, alice.post("/v1/jobs", json={**material.describe(), "kind": "track", "options": {}}).json()["id"]
    )
    tracks_doc = json.loads(alice.get(tracks["result_url"]).content)
    results: dict[int, dict] = {}

    def client(number: int) -> None:
        question = f"Is <thing> number {10 + number} here?"
        body = {
            "kind": "ask",
            "video": "clips/moving.mp4",
            "question": question,
            "tracks": tracks_doc,
            "options": QUICK_ASK,
        }
        job_id = alice.post("/v1/jobs", json=body).json()["id"]
        results[number] = wait_done(alice, job_id, timeout=300)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=400)
    assert sorted(results) == list(range(50))
    assert len({job["id"] for job in results.values()}) == 50
    for number, job in results.items():
        assert job["state"] == "done", job
        assert job["result"]["answers"][0]["question"] == f"Is <thing> number {10 + number} here?"
        done = [s for _, s, _ in server.engine.store.transitions(job["id"]) if s == "done"]
        assert done == ["done"]
    from garvideo.tracking import tracks_from_json

    for number in (0, 17, 49):  # the answer alone, through the Python API
        alone = pipeline.ask(material.root / "clips" / "moving.mp4", f"Is <thing> number {10 + number} here?",
                             tracks=tracks_from_json(tracks_doc), progress=False, **QUICK_ASK)  # fmt: skip
        assert results[number]["result"]["answers"][0]["answer"] == alone.text


def test_metrics_and_readiness(server):
    alice = server.client("alice")
    ready = alice.get("/readyz").json()
    assert ready["ready"] and ready["models"]["gar"]["device"] == "cpu"
    text = alice.get("/metrics").text
    for name in (
        "garvideo_queue_depth",
        'garvideo_jobs{state="done"}',
        "garvideo_stage_seconds_sum",
        "garvideo_job_run_seconds_count",
    ):
        assert name in text
    assert QUICK_DESCRIBE  # the shared options stay as the other tests use them
