"""``garvideo live``: its errors, its JSON lines, and Ctrl-C on a stream piped into it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.testing.waiting import wait_until
from garvideo.video import open_video

from .conftest import free_port


def _run(*args):
    return CliRunner().invoke(app, ["live", *map(str, args)], catch_exceptions=False)


def test_mistakes_are_one_line_and_exit_2(tiny_models, tmp_path, object_clip):
    sam2 = ["--sam2", tiny_models / "sam2", "--no-describe", "-q"]
    missing = _run(tmp_path / "nothing.ts", "--box", "a=1,1,20,20", *sam2)
    assert missing.exit_code == 2 and missing.output.strip().splitlines() == [
        f"garvideo: error: no such live source: {tmp_path / 'nothing.ts'} (give a URL such as rtsp://HOST/PATH, a "
        "device such as /dev/video0, a file or '-' for standard input)"
    ]
    refused = _run(f"http://127.0.0.1:{free_port()}/live.ts", *sam2)
    assert refused.exit_code == 2 and refused.output.startswith("garvideo: error: cannot open the live source http")
    assert len(refused.output.strip().splitlines()) == 1
    bad_option = _run("-", "--input-option", "rtsp_transport", *sam2)
    assert bad_option.exit_code == 2 and "KEY=VALUE" in bad_option.output
    bad_box = _run("-", "--box", "a=1,1,20", *sam2)
    assert bad_box.exit_code == 2 and bad_box.output.startswith("garvideo: error: --box")
    clobber = _run(object_clip.path, "--events", object_clip.path, *sam2)  # never written over its own source
    assert clobber.exit_code == 2 and clobber.output.startswith("garvideo: error:")
    assert object_clip.path.stat().st_size > 1000


def test_json_lines_on_standard_output(tiny_models, object_clip):
    x1, y1, x2, y2 = object_clip.boxes[0]
    box = f"thing={x1},{y1},{x2 + 1},{y2 + 1}"
    result = _run(
        object_clip.path, "--box", box, "--sam2", tiny_models / "sam2", "--no-describe", "--keep-all", "--json", "-q"
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "started" and events[-1]["event"] == "stopped"
    assert events[-1]["frames_tracked"] == 48 and events[-1]["reason"] == "the end of the input"
    frames = [e for e in events if e["event"] == "frame"]
    assert frames and all(set(e["regions"]) == {"thing"} for e in frames)


@pytest.mark.slow
def test_ctrl_c_on_a_piped_stream_leaves_complete_files(tiny_models, object_clip, tmp_path):
    """``ffmpeg ... -f mpegts - | garvideo live - ...``, interrupted once a window was described."""
    feed = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(object_clip.path)]
    feeder = subprocess.Popen([*feed, "-c", "copy", "-f", "mpegts", "-"], stdout=subprocess.PIPE)
    x1, y1, x2, y2 = object_clip.boxes[0]
    events, srt, record = tmp_path / "events.jsonl", tmp_path / "live.srt", tmp_path / "rec"
    command = [sys.executable, "-m", "garvideo_cli.main", "live", "-", "--box", f"thing={x1},{y1},{x2 + 1},{y2 + 1}"]
    options = ["--window", "1", "--max-new-tokens", "3", "--events", events, "--srt", srt, "--record", record]
    models = ["--model", tiny_models / "gar", "--sam2", tiny_models / "sam2", "--segment-s", "1", "-q"]
    live = subprocess.Popen(
        [*command, *map(str, options + models)], stdin=feeder.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    feeder.stdout.close()
    try:
        described = wait_until(
            lambda: live.poll() is not None or (events.exists() and '"event": "window"' in events.read_text()), 120
        )
        assert described and live.poll() is None, live.communicate()
        live.send_signal(signal.SIGINT)
        out, err = live.communicate(timeout=60)
    finally:
        feeder.kill()
        feeder.wait()
        live.kill()
    assert live.returncode == 0, err
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[-1]["event"] == "stopped" and lines[-1]["reason"] == "closed"
    windows = [line for line in lines if line["event"] == "window"]
    assert len(windows) >= 2  # the last window too, described after Ctrl-C
    said = [line for line in windows if line["text"]]  # (the tiny random GAR may say nothing printable)
    cues = [block for block in srt.read_text().strip().split("\n\n") if block]
    assert len(cues) == len(said) and out.decode().count(" thing: ") == len(said)
    segments = [line for line in lines if line["event"] == "segment"]
    assert sorted(os.listdir(record)) == sorted(Path(s["path"]).name for s in segments)
    for segment in segments:
        with open_video(segment["path"]) as video:
            assert video.num_frames == segment["frames"]


README = Path(__file__).resolve().parents[2] / "README.md"


def _live_section() -> str:
    return README.read_text().split("## Live video", 1)[1].split("\n## ", 1)[0]


def test_the_readme_commands_are_what_the_command_takes():
    import shlex

    from garvideo_cli.live import live_command

    block = _live_section().split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("garvideo live", 1)[1] for line in block.splitlines() if "garvideo live" in line]
    parsed = [live_command.make_context("live", shlex.split(command)).params for command in commands]
    assert [(p["source"], p["window"]) for p in parsed] == [
        ("rtsp://cam.local/stream", 10.0),
        ("/dev/video0", 5.0),
        ("-", 5.0),
    ]
    assert parsed[0]["texts"] == ("person=a person",) and parsed[0]["events"] == "events.jsonl"
    assert parsed[1]["boxes"] == ("cup=120,80,260,240",) and parsed[2]["boxes"] == ("dog=10,20,200,220",)


@pytest.mark.slow
def test_the_readme_python_example_runs(tiny_models, selftest_material, object_clip, monkeypatch):
    """On a file read live (in place of the camera) with the tiny models; the question asked when the cup
    appears is answered."""
    from garvideo.live import start
    from garvideo.pipeline import Pipeline

    code = _live_section().split("```python", 1)[1].split("```", 1)[0]
    assert "rtsp://cam.local/stream" in code and "Pipeline.from_pretrained()" in code
    models = (
        f"{str(tiny_models / 'gar')!r}, {str(tiny_models / 'sam2')!r}, detector={str(selftest_material.detector)!r}"
    )
    code = code.replace("rtsp://cam.local/stream", str(object_clip.path)).replace(
        "Pipeline.from_pretrained()", f"Pipeline.from_pretrained({models}, progress=False)"
    )
    monkeypatch.setitem(start.open_session.__kwdefaults__, "max_new_tokens", 3)  # a random model rambles
    monkeypatch.setitem(start.open_session.__kwdefaults__, "keep_all", True)  # every frame of the file
    namespace: dict = {"Pipeline": Pipeline}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["session"].stopped.is_set()
    assert namespace["answer"].result(timeout=60).regions == ("cup",)
