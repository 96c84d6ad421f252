"""A real `garvideo app` process on tiny random models, shared by the app's tests, and a --root folder to serve.

The server runs as a user would start it (the CLI, in its own process) with TMPDIR pointed at a folder of
the test's own, so the tests can see every temporary file it makes and check that it removes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from garvideo.testing.grounding_dino import build_tiny_grounding_dino_checkpoint

from ..live.conftest import streams  # noqa: F401 - the live tests' FFmpeg stream servers, for the Live tab's tests

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MAX_UPLOAD_MB = 1
#: A file name under --root that is markup: the page must show it as written and never run it.
MARKUP_NAME = "<img src=x onerror=window.gvPwned=1>.mp4"
#: What the app's working folder holds when it starts: a file in Gradio's default examples cache.
PLANTED_SECRET = Path(".gradio") / "cached_examples" / "secret.txt"


@dataclass
class LaunchedApp:
    url: str
    process: subprocess.Popen
    tmpdir: Path  # the server's TMPDIR: its temporary folder is made in here
    cwd: Path
    root: Path
    gar: str
    sam2: str
    detector: str
    output: list[str] = field(default_factory=list)

    @property
    def temp_root(self) -> Path:
        (folder,) = self.tmpdir.glob("garvideo-app-*")
        return folder

    def files_left(self) -> list[Path]:
        """Every file (not folder) in the app's temporary folder."""
        return sorted(p for p in self.temp_root.rglob("*") if not p.is_dir())

    def settle_upload_leftovers(self) -> None:
        """Date Gradio's empty upload leftovers back, so the app counts them as settled (unchanged for a
        second) without the test sleeping through that second."""
        for path in self.temp_root.iterdir():
            if path.is_file() and path.stat().st_size == 0:
                os.utime(path, (0, 0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_models(tiny_models) -> tuple[str, str]:
    return str(tiny_models / "gar"), str(tiny_models / "sam2")


@pytest.fixture(scope="session")
def app_detector(tmp_path_factory) -> str:
    """A tiny random Grounding DINO (``--detector``; the app loads it only when a text region is found)."""
    return str(build_tiny_grounding_dino_checkpoint(tmp_path_factory.mktemp("app-detector") / "gdino", seed=0))


@pytest.fixture(scope="session")
def app_root(tmp_path_factory) -> Path:
    """--root: two clips, a text file, and links that point out of it (which must never be served)."""
    base = tmp_path_factory.mktemp("app-files")
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(SAMPLES / "cat.mp4", root / "cat.mp4")
    shutil.copy(SAMPLES / "cat_and_cup.mp4", root / "sub" / "cat_and_cup.mp4")
    (root / "notes.txt").write_text("not a video\n")
    shutil.copy(SAMPLES / "cat.mp4", outside / "secret.mp4")
    (root / "link_out.mp4").symlink_to(outside / "secret.mp4")
    (root / "link_dir").symlink_to(outside, target_is_directory=True)
    (root / "link_in.mp4").symlink_to(root / "cat.mp4")  # stays inside: allowed
    # The clip turned to portrait (as a phone films) and cut square, for the page's mouse mapping.
    _ffmpeg(root / "cat.mp4", "transpose=1", root / "portrait.mp4")
    _ffmpeg(root / "cat.mp4", "crop=256:256:64:0", root / "square.mp4")
    shutil.copy(root / "square.mp4", root / MARKUP_NAME)
    return root


def _ffmpeg(source: Path, video_filter: str, target: Path) -> None:
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-vf", video_filter]
    subprocess.run([*command, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(target)], check=True)


@pytest.fixture(scope="session")
def launched_app(app_models, app_detector, app_root, tmp_path_factory):
    gar, sam2 = app_models
    tmpdir = tmp_path_factory.mktemp("app-tmpdir")
    cwd = tmp_path_factory.mktemp("app-cwd")
    (cwd / PLANTED_SECRET).parent.mkdir(parents=True)
    (cwd / PLANTED_SECRET).write_text("not for the app's visitors\n")
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmpdir), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "garvideo_cli.main", "app", "--model", gar, "--sam2", sam2, "--port", str(port)]
    command += ["--detector", app_detector]
    command += ["--root", str(app_root), "--max-upload-mb", str(MAX_UPLOAD_MB)]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    app = LaunchedApp("", process, tmpdir, cwd, app_root, gar, sam2, app_detector)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            app.output.append(line.rstrip("\n"))
            if line.startswith("garvideo app: open "):
                app.url = line.split()[3]
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(180):
            raise RuntimeError("garvideo app did not start:\n" + "\n".join(app.output))
        yield app
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
    # Stopping the app removes its temporary folder, whatever the sessions left; Gradio made none of its own
    # (torch's compile cache, made by any process that imports it, is not the app's).
    left = sorted(p.name for p in tmpdir.iterdir() if not p.name.startswith("torchinductor_"))
    assert left == [], f"the app left {left} in its TMPDIR"


@pytest.fixture
def client(launched_app, tmp_path):
    """A fresh API client (its own session), downloading into the test's folder."""
    from gradio_client import Client

    c = Client(launched_app.url, verbose=False, download_files=str(tmp_path / "downloads"), analytics_enabled=False)
    try:
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.predict(api_name="/close_session")
        c.close()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A headless Chromium (Debian's chromium and chromium-driver) that reaches nothing but this machine."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    folder = tmp_path_factory.mktemp("chromium")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=1400,1000",
        f"--user-data-dir={folder / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    downloads = folder / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # The driver given explicitly: Selenium Manager never downloads one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("GARVIDEO_APP_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder
