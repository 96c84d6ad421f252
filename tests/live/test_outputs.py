"""A live session's files (event log, rolling subtitles, recorded segments) and its control lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from garvideo.live import (
    EVENT_KINDS,
    Answered,
    Appeared,
    EventLog,
    LiveOutput,
    Problem,
    Removed,
    RollingSubtitles,
    SegmentRecorder,
    SegmentWritten,
    WindowDescribed,
)
from garvideo.live.control import ControlChannel
from garvideo.outputs.subtitles import Cue, to_srt, to_vtt
from garvideo.pipeline import Pipeline, RegionPrompt
from garvideo.testing.waiting import wait_until
from garvideo.video import open_video


class Events(LiveOutput):
    def __init__(self) -> None:
        self.events = []

    def on_event(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture(scope="module")
def gar_pipe(tiny_models):
    return Pipeline.from_pretrained(tiny_models / "gar", tiny_models / "sam2", device="cpu", progress=False)


def _thing(clip):
    x1, y1, x2, y2 = clip.objects[0].boxes[0]
    return RegionPrompt.from_box("thing", (x1, y1, x2 + 1, y2 + 1), 0)


@pytest.mark.slow
def test_event_log_subtitles_and_segments_are_complete_when_the_session_ends(gar_pipe, object_clip, tmp_path):
    events = Events()
    outputs = [
        EventLog(tmp_path / "events.jsonl"),
        RollingSubtitles(tmp_path / "live.srt"),
        RollingSubtitles(tmp_path / "live.vtt"),
        SegmentRecorder(tmp_path / "rec", segment_s=1.5, fps=12),
        events,
    ]
    second = RegionPrompt.from_box("other", (100, 80, 130, 110), 0)
    session = gar_pipe.live(
        str(object_clip.path),
        [_thing(object_clip), second],
        window=1.0,
        max_new_tokens=3,
        keep_all=True,
        outputs=outputs,
    )
    assert session.wait(120)

    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines] == [e.kind for e in events.events]
    assert lines[0]["event"] == "started" and lines[-1]["event"] == "stopped"
    assert {line["event"] for line in lines} <= set(EVENT_KINDS)

    windows = [e for e in events.of(WindowDescribed) if e.visible]
    cues = [Cue(e.start, e.end, f"{e.region}: {e.text}") for e in windows]  # two regions: names prefix the texts
    assert len(windows) == 8
    assert (tmp_path / "live.srt").read_text() == to_srt(cues)
    assert (tmp_path / "live.vtt").read_text() == to_vtt(cues)

    segments = events.of(SegmentWritten)
    assert [(s.start, s.end) for s in segments] == [(0.0, 1.5), (1.5, 3.0), (3.0, 4.5)]
    assert sorted(os.listdir(tmp_path / "rec")) == [f"segment-{k:06d}.mp4" for k in range(3)]  # no temporary left
    for segment in segments:
        with open_video(segment.path) as video:
            assert video.num_frames == segment.frames and (video.width, video.height) == (160, 120)
            assert video.read([video.num_frames - 1])  # every frame decodes
    assert sum(s.frames for s in segments) == 48 == [s.frames for s in segments][0] + 30
    assert lines[-1]["event"] == "stopped" and lines[-2]["event"] == "segment"  # finished before the end


@pytest.fixture
def endless_fifo(tmp_path, object_clip):
    """A FIFO that FFmpeg keeps feeding the clip into, looped, at its own pace."""
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(object_clip.path)]
    feeder = subprocess.Popen([*command, "-c", "copy", "-f", "mpegts", "-y", str(fifo)])
    yield fifo
    feeder.kill()
    feeder.wait()


def _until(events, kind, count=1, timeout=30):
    return wait_until(lambda: len(events.of(kind)) >= count, timeout)


@pytest.mark.slow
def test_control_lines_from_a_file_add_remove_ask_and_stop(gar_pipe, object_clip, endless_fifo, tmp_path):
    events = Events()
    session = gar_pipe.live(str(endless_fifo), [_thing(object_clip)], window=1.0, max_new_tokens=3, outputs=[events])
    control = tmp_path / "control.jsonl"
    ControlChannel(session, str(control))

    def send(line):
        with open(control, "a") as out:
            out.write(line + "\n")

    send('{"name": "square", "box": [20, 80, 40, 100]}')
    assert _until(events, Appeared, 2) and events.of(Appeared)[1].region == "square"
    send('{"name": "square"')
    send('{"frobnicate": 1}')
    assert _until(events, Problem, 2)
    assert "JSON" in events.of(Problem)[0].message and "unknown control line" in events.of(Problem)[1].message
    send('{"ask": "What is <square> doing?", "last": 1}')
    assert _until(events, Answered) and events.of(Answered)[0].regions == ("square",)
    send('{"remove": "thing"}')
    assert _until(events, Removed) and events.of(Removed)[0].region == "thing"
    send('{"stop": true}')
    assert session.wait(30) and events.events[-1].kind == "stopped" and events.events[-1].reason == "closed"


@pytest.mark.slow
def test_control_lines_on_a_unix_socket_get_replies(gar_pipe, object_clip, endless_fifo, tmp_path):
    session = gar_pipe.live(str(endless_fifo), [_thing(object_clip)], describe=False)
    path = tmp_path / "control.sock"
    channel = ControlChannel(session, f"unix:{path}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(path))
        replies = client.makefile("rwb", buffering=0)
        replies.write(b'{"remove": "nobody"}\n{"name": "b", "box": [1, 1, 20, 20]}\n{"stop": true}\n')
        answers = [json.loads(replies.readline()) for _ in range(3)]
    assert "no region named 'nobody'" in answers[0]["error"] and answers[1:] == [{"ok": True}, {"ok": True}]
    assert session.wait(30)
    channel.close()
    assert not path.exists()
