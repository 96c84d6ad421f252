"""Live sources for the tests: FFmpeg (and VLC's RTSP server) serving generated clips on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from garvideo.errors import VideoError
from garvideo.testing.clips import constant_rate_clip, moving_object_clip
from garvideo.testing.waiting import wait_until
from garvideo.video.live_source import LiveReader


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Streams:
    """Stream servers started by a test and stopped after it (each bound to 127.0.0.1 only)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self._public: Path | None = None

    def _start(self, command: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.processes.append(process)
        return process

    @staticmethod
    def _ffmpeg(clip: Path, loop: bool) -> list[str]:
        return [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            *(["-stream_loop", "-1"] if loop else []),
            "-i",
            str(clip),
            "-c",
            "copy",
        ]

    def udp(self, clip: Path, port: int | None = None, loop: bool = False) -> tuple[str, subprocess.Popen]:
        """MPEG-TS over UDP at the clip's own pace (``ffmpeg -re``)."""
        port = port or free_port(socket.SOCK_DGRAM)
        url = f"udp://127.0.0.1:{port}"
        return url, self._start([*self._ffmpeg(clip, loop), "-f", "mpegts", f"{url}?pkt_size=1316"])

    def http(self, clip: Path, port: int | None = None, loop: bool = False) -> tuple[str, subprocess.Popen]:
        """MPEG-TS over HTTP (``ffmpeg -listen 1``: one client, then it exits)."""
        port = port or free_port()
        url = f"http://127.0.0.1:{port}/live.ts"
        return url, self._start([*self._ffmpeg(clip, loop), "-f", "mpegts", "-listen", "1", url])

    def rtsp(self, clip: Path, port: int | None = None) -> tuple[str, subprocess.Popen]:
        """A real RTSP server: VLC (RTP over UDP), looping the clip; VLC refuses to run as root, so it runs as nobody."""
        if shutil.which("cvlc") is None:
            pytest.skip("VLC (cvlc) is not installed: .ci/run installs vlc-bin and vlc-plugin-base")
        if self._public is None:
            self._public = Path(tempfile.mkdtemp(prefix="garvideo-rtsp-"))
            self._public.chmod(0o755)
        served = self._public / clip.name
        shutil.copyfile(clip, served)
        served.chmod(0o644)
        port = port or free_port()
        url = f"rtsp://127.0.0.1:{port}/live"
        as_nobody = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        sout = f"#rtp{{sdp={url}}}"
        return url, self._start([*as_nobody, "cvlc", "-q", str(served), "--sout", sout, "--sout-keep", "--loop"])

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        for process in self.processes:
            self.stop(process)
        if self._public is not None:
            shutil.rmtree(self._public, ignore_errors=True)


@pytest.fixture
def streams():
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary is not installed (.ci/run installs it)")
    servers = Streams()
    yield servers
    servers.close()


def open_when_ready(url: str, timeout: float = 20.0, **options) -> LiveReader:
    """Open ``url`` once its server accepts (a server just started may not listen yet)."""
    errors: list[Exception] = []

    def attempt():
        try:
            return LiveReader(url, **{"open_timeout_s": 5.0, **options})
        except VideoError as exc:
            errors.append(exc)
            return None

    reader = wait_until(attempt, timeout, every=0.2)
    assert reader is not None, f"could not open {url}: {errors[-1:]}"
    return reader


def _finished(clip):
    """A clip written a minute ago: a live source takes a file changed within seconds for one still being written."""
    old = time.time() - 60
    os.utime(clip.path, (old, old))
    return clip


@pytest.fixture(scope="session")
def indexed_clip(tmp_path_factory):
    """Two seconds at 12 fps, each frame painted with its index (``read_index``), a keyframe every 6 frames."""
    folder = tmp_path_factory.mktemp("live-clips")
    return _finished(constant_rate_clip(folder / "indexed.mp4", 24, fps=12, size=(96, 64), gop=6))


@pytest.fixture(scope="session")
def object_clip(tmp_path_factory):
    """Four seconds at 12 fps: a textured ellipse crossing, a striped square the other way (exact masks)."""
    folder = tmp_path_factory.mktemp("live-clips")
    return _finished(moving_object_clip(folder / "objects.mp4", 48, fps=12, second_object=True))
