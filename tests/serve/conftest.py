"""Real `garvideo serve` servers on 127.0.0.1 for the service's tests, on the tiny random models.

Most tests share one server in this process (uvicorn in a thread, the real engine, store and pipeline: the
same code `garvideo serve` runs); the kill and restart tests start the CLI in a subprocess. Two clients,
alice and bob, hold keys; videos come from a --root folder (with symbolic links out of it, which must never
be read), uploads and a local HTTP server whose /allowed/ folder is the one allowed URL prefix.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from garvideo.serve.auth import Keys
from garvideo.serve.engine import EngineSettings
from garvideo.serve.server import ServeConfig, bind, running_engine
from garvideo.testing.waiting import wait_until

KEYS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef00"}
MAX_UPLOAD_MB = 0.05  # 51 kB: the 25 kB test clip passes, the 73 kB cat does not
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
#: Options that keep a job short on the tiny random models (they ramble: a few tokens per text).
QUICK_DESCRIBE = {"frames": 2, "frames_per_window": 1, "max_new_tokens": 3}
QUICK_ASK = {"frames": 2, "max_new_tokens": 3}


@dataclass
class Material:
    root: Path  # --root
    outside: Path  # a folder beside it, never to be read
    box: list[int]  # the moving object's box on frame 3 of clips/moving.mp4
    second: dict  # a two-region question about clips/second.mp4 (the selftest manifest's second line)
    gar: Path
    sam2: Path
    web: str = ""  # the local web server's address

    def region(self, name: str = "thing") -> dict:
        return {"name": name, "when": {"frame": 3}, "box": self.box}

    def describe(self, **extra) -> dict:
        body = {"kind": "describe", "video": "clips/moving.mp4", "regions": [self.region()], "options": QUICK_DESCRIBE}
        return {**body, **extra}

    def ask(self, question: str = "What is <thing> doing?", **extra) -> dict:
        body = {"kind": "ask", "video": "clips/moving.mp4", "question": question, "regions": [self.region()]}
        return {**body, "options": QUICK_ASK, **extra}


@pytest.fixture(scope="session")
def material(selftest_material, tmp_path_factory) -> Material:
    base = tmp_path_factory.mktemp("serve-files")
    root, outside = base / "root", base / "outside"
    (root / "clips").mkdir(parents=True)
    outside.mkdir()
    for name in ("moving.mp4", "second.mp4", "corrupt.mp4"):
        shutil.copy(selftest_material.folder / "clips" / name, root / "clips" / name)
    shutil.copy(SAMPLES / "cat.mp4", root / "cat.mp4")
    (root / "notes.txt").write_text("not a video\n")
    shutil.copy(SAMPLES / "cat.mp4", outside / "secret.mp4")
    (root / "link_out.mp4").symlink_to(outside / "secret.mp4")
    (root / "link_dir").symlink_to(outside, target_is_directory=True)
    (root / "link_in.mp4").symlink_to(root / "clips" / "moving.mp4")
    box = [int(v) for v in selftest_material.box.split("=")[1].split("@")[0].split(",")]
    second = json.loads(selftest_material.manifest.read_text().splitlines()[1])
    return Material(root, outside, box, second, selftest_material.gar, selftest_material.sam2)


@pytest.fixture(scope="session")
def web(material, tmp_path_factory) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1: /allowed/ (the allowed prefix) and /other/ hold the test clip."""
    folder = tmp_path_factory.mktemp("web")
    for sub in ("allowed", "other"):
        (folder / sub).mkdir()
        shutil.copy(material.root / "clips" / "moving.mp4", folder / sub / "moving.mp4")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/allowed/jump"):  # a redirect out of the allowed prefix
            self.send_response(302)
            self.send_header("Location", "/other/moving.mp4")
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture(scope="session")
def pipeline(material):
    from garvideo.pipeline import Pipeline

    return Pipeline.from_pretrained(material.gar, material.sam2, progress=False, detector=None)


@dataclass
class Running:
    """A server running in this process."""

    url: str
    engine: object
    config: ServeConfig
    thread: threading.Thread
    server: object
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, name: str | None = None) -> httpx.Client:
        """An httpx client of ``name`` (its key sent), or with no key for None."""
        if name not in self.clients:
            headers = {"Authorization": f"Bearer {KEYS[name]}"} if name else {}
            self.clients[name] = httpx.Client(base_url=self.url, headers=headers, timeout=120)
        return self.clients[name]


@contextlib.contextmanager
def running_server(config: ServeConfig, executor) -> Iterator[Running]:
    """``garvideo serve``'s engine and API on a free port of 127.0.0.1, in a thread of this process."""
    import uvicorn

    from garvideo.serve.http import create_app

    sock = bind("127.0.0.1", 0)
    with running_engine(config, executor) as engine:
        app = create_app(engine, config.keys)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        assert wait_until(lambda: server.started, timeout=30, every=0.02), "the server did not start"
        running = Running(f"http://127.0.0.1:{sock.getsockname()[1]}", engine, config, thread, server)
        try:
            yield running
        finally:
            for client in running.clients.values():
                client.close()
            server.should_exit = True
            thread.join(timeout=30)


def keys_file(folder: Path) -> Path:
    path = folder / "keys.txt"
    lines = ["# the test's clients", f"alice {KEYS['alice']}", "", f"bob sha256:{_sha(KEYS['bob'])}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def serve_config(material: Material, state: Path, web: str = "", **settings) -> ServeConfig:
    return ServeConfig(
        state=state,
        root=material.root.resolve(),
        keys=Keys.from_file(keys_file(state.parent)),
        allowed_urls=(f"{web}/allowed/",) if web else (),
        max_upload_mb=MAX_UPLOAD_MB,
        settings=EngineSettings(**settings),
    )


@pytest.fixture(scope="session")
def server(material, pipeline, web, tmp_path_factory) -> Iterator[Running]:
    """The shared server: alice's and bob's keys, --root, one allowed URL prefix, a 51 kB upload limit."""
    from garvideo.serve.local import LocalExecutor

    state = tmp_path_factory.mktemp("serve-state") / "state"
    with running_server(serve_config(material, state, web), LocalExecutor(pipeline, slots=2)) as running:
        yield running


def wait_done(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    """The job once it has finished (polled a bounded number of times)."""

    def finished():
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["state"] in ("done", "failed", "cancelled") else None

    job = wait_until(finished, timeout=timeout, every=0.05)
    assert job, f"job {job_id} did not finish in {timeout} s"
    return job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    material: Material, state: Path, *extra: str, launcher: str | None = None, launcher_args: tuple[str, ...] = ()
) -> subprocess.Popen:
    """`garvideo serve` in its own process (through ``launcher``, a Python program given ``launcher_args``
    before the command's own)."""
    if launcher:
        command = [sys.executable, "-c", launcher, *launcher_args]
    else:
        command = [sys.executable, "-m", "garvideo_cli.main"]
    command += ["serve", "--model", str(material.gar), "--sam2", str(material.sam2), "--port", "0", "-q"]
    command += ["--root", str(material.root), "--state", str(state), *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def address_of(process: subprocess.Popen, timeout: float = 180) -> str:
    """The address a launched server prints once it listens (its output is read on in a thread)."""
    found: list[str] = []
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if "listening on " in line:
                found.append(line.split("listening on ")[1].split()[0].rstrip("/"))

    threading.Thread(target=read, daemon=True).start()
    if not wait_until(lambda: found or process.poll() is not None, timeout=timeout, every=0.05) or not found:
        raise AssertionError("the server did not start:\n" + "".join(lines))
    return found[0]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
