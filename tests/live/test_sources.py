"""Live sources through PyAV: UDP and HTTP MPEG-TS, a FIFO, a file being written, VLC's RTSP server.

Frames are painted with their index (``read_index``), so what arrived is known whatever was lost joining a
stream: each frame's pixels are held against the clip's own frame decoded from the file, its stream time against
the clip's timestamps.
"""

from __future__ import annotations

import os
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from garvideo.errors import InvalidInputError, VideoError
from garvideo.testing.clips import read_index
from garvideo.testing.waiting import wait_until
from garvideo.video import open_video
from garvideo.video.live_source import (
    KEEP_ALL_FRAMES,
    LiveFrame,
    LiveReader,
    SourceEnded,
    SourceGap,
    SourceResumed,
    _Clock,
)

from .conftest import free_port, open_when_ready

FPS = 12


@pytest.fixture(scope="module")
def reference(indexed_clip):
    with open_video(indexed_clip.path) as video:
        return [frame.image for frame in video.read(range(video.num_frames))]


def _take(reader: LiveReader, count: int | None = None, timeout: float = 30.0) -> tuple[list[LiveFrame], list]:
    """Frames and notices until ``count`` frames (or the end), within ``timeout`` seconds."""
    frames, notices = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (count is None or len(frames) < count):
        item = reader.get(timeout=0.5)
        if isinstance(item, LiveFrame):
            frames.append(item)
        elif item is not None:
            notices.append(item)
            if isinstance(item, SourceEnded):
                break
    return frames, notices


def _check_frames(frames: list[LiveFrame], reference: list[np.ndarray]) -> list[int]:
    """Each frame is the clip's frame it is painted with; consecutive frames are 1/12 s apart in stream time."""
    numbers = [read_index(frame.image) for frame in frames]
    for frame, number in zip(frames, numbers):
        assert np.array_equal(frame.image, reference[number % len(reference)]), number
    for (a, n), (b, m) in zip(zip(frames, numbers), zip(frames[1:], numbers[1:])):
        assert b.index > a.index and b.arrival >= a.arrival
        assert b.time - a.time == pytest.approx(((m - n) % len(reference)) / FPS, abs=1e-6)
    return numbers


def test_a_finished_file_gives_every_frame_then_ends(indexed_clip, reference):
    with LiveReader(str(indexed_clip.path), keep_all=True) as reader:
        assert (reader.info.kind, reader.info.width, reader.info.height) == ("file", 96, 64)
        frames, notices = _take(reader)
    assert [read_index(f.image) for f in frames] == list(range(24))
    assert [f.time for f in frames] == pytest.approx(list(indexed_clip.times), abs=1e-9)
    _check_frames(frames, reference)
    assert [type(n) for n in notices] == [SourceEnded]
    assert reader.stats.decoded == reader.stats.taken == 24


def test_the_newest_frame_wins_when_the_consumer_is_slower(indexed_clip):
    with LiveReader(str(indexed_clip.path)) as reader:
        frames, waiting = [], []
        while (item := reader.get(timeout=5)) is not None and not isinstance(item, SourceEnded):
            waiting.append(reader.pending())
            frames.append(item)
            time.sleep(0.02)  # a consumer slower than the reader
    stats = reader.stats
    assert stats.dropped > 0 and stats.taken + stats.dropped == stats.decoded == 24
    assert max(waiting) <= 1  # never a queue: one frame waits at most
    numbers = [read_index(f.image) for f in frames]
    assert numbers == sorted(numbers) and numbers[-1] == 23  # in order, and the last frame is never dropped


def test_keep_all_makes_the_reader_wait_instead(indexed_clip):
    with LiveReader(str(indexed_clip.path), keep_all=True) as reader:
        assert wait_until(lambda: reader.pending() == KEEP_ALL_FRAMES, 10)
        time.sleep(0.2)
        assert reader.pending() == KEEP_ALL_FRAMES  # it waits for room
        frames, _ = _take(reader)
    assert len(frames) == 24 and reader.stats.dropped == 0


def test_track_fps_takes_frames_that_many_times_a_second(indexed_clip):
    with LiveReader(str(indexed_clip.path), keep_all=True, track_fps=4) as reader:
        frames, _ = _take(reader)
    assert [read_index(f.image) for f in frames] == list(range(0, 24, 3))
    assert reader.stats.skipped == 16


def test_a_fifo_is_read_to_its_end(tmp_path, indexed_clip, reference):
    fifo = tmp_path / "pipe.ts"
    os.mkfifo(fifo)
    writer = subprocess.Popen(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(indexed_clip.path),
            "-c",
            "copy",
            "-f",
            "mpegts",
            str(fifo),
        ]
    )
    try:
        with LiveReader(str(fifo), keep_all=True) as reader:
            assert reader.info.kind == "pipe"
            frames, notices = _take(reader)
    finally:
        writer.wait(30)
    assert _check_frames(frames, reference) == list(range(24))
    assert frames[0].time == 0.0 and isinstance(notices[-1], SourceEnded)


@pytest.mark.slow
def test_a_file_being_written_is_followed_until_it_stops_growing(tmp_path, indexed_clip, reference):
    target = tmp_path / "growing.ts"
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(indexed_clip.path), "-c", "copy"]
    writer = subprocess.Popen([*command, "-f", "mpegts", "-flush_packets", "1", str(target)])
    try:
        assert wait_until(lambda: target.exists() and target.stat().st_size > 4000, 20, every=0.05)
        with LiveReader(str(target), keep_all=True, growing_s=1.5) as reader:
            assert reader.info.kind == "growing file"
            frames, notices = _take(reader)
        assert writer.wait(30) == 0
    finally:
        writer.kill()
    assert _check_frames(frames, reference) == list(range(24))
    assert [type(n) for n in notices] == [SourceEnded]


@pytest.mark.slow
def test_udp_mpegts(streams, indexed_clip, reference):
    url, _ = streams.udp(indexed_clip.path, loop=True)
    with open_when_ready(url, keep_all=True) as reader:
        assert reader.info.format == "mpegts"
        frames, _ = _take(reader, 30)
    assert len(frames) == 30
    _check_frames(frames, reference)


def _until(reader: LiveReader, kind: type, timeout: float = 30.0) -> tuple[list[LiveFrame], list]:
    """Frames and notices until a notice of ``kind`` (included) comes, within ``timeout`` seconds."""
    frames, notices = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(isinstance(n, kind) for n in notices):
        item = reader.get(timeout=0.5)
        if isinstance(item, LiveFrame):
            frames.append(item)
        elif item is not None:
            notices.append(item)
    return frames, notices


@pytest.mark.slow
def test_http_reconnects_after_the_server_is_gone_and_gives_up_later(streams, indexed_clip, reference):
    url, server = streams.http(indexed_clip.path, loop=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with open_when_ready(url, keep_all=True, reconnect_s=0.2, give_up_after_s=4, stall_s=1) as reader:
        before, _ = _take(reader, 6)
        streams.stop(server)
        tail, notices = _until(reader, SourceGap)
        gap = time.time()
        assert isinstance(notices[-1], SourceGap)
        streams.http(indexed_clip.path, port=port, loop=True)
        _, resumed = _until(reader, SourceResumed)
        after, _ = _take(reader, 6)
        streams.close()  # gone for good: the reader gives up give_up_after_s after the last frame
        _, last = _until(reader, SourceEnded)
    assert isinstance(last[-1], SourceEnded) and "gave up" in last[-1].reason
    assert isinstance(resumed[-1], SourceResumed) and resumed[-1].attempts >= 1
    _check_frames(before + tail, reference)
    _check_frames(after, reference)
    # stream times go on through the gap, which lasts in stream time as long as it did on the wall clock
    assert after[0].time - (before + tail)[-1].time >= after[0].arrival - gap - 0.5
    assert after[0].index > (before + tail)[-1].index and reader.stats.gaps >= 2


@pytest.mark.slow
def test_rtsp_from_vlc(streams, object_clip):
    url, server = streams.rtsp(object_clip.path)
    with open_when_ready(url, stall_s=2) as reader:
        assert reader.info.format == "rtsp" and (reader.info.width, reader.info.height) == (160, 120)
        frames, _ = _take(reader, 12)
    assert len(frames) == 12
    times = [f.time for f in frames]
    assert times == sorted(times) and times[-1] - times[0] > 0.5


def test_sources_that_cannot_be_read_are_one_clear_error(tmp_path):
    with pytest.raises(InvalidInputError, match="no such live source"):
        LiveReader(str(tmp_path / "missing.ts"))
    with pytest.raises(InvalidInputError, match="empty"):
        LiveReader("  ")
    (tmp_path / "text.ts").write_text("not a video at all\n" * 100)
    os.utime(tmp_path / "text.ts", (0, 0))  # finished long ago (a fresh file is followed while it may grow)
    with pytest.raises(VideoError, match="text.ts"):
        LiveReader(str(tmp_path / "text.ts"))
    with pytest.raises(VideoError, match=f"cannot open the live source http://127.0.0.1:{(port := free_port())}"):
        LiveReader(f"http://127.0.0.1:{port}/x.ts", open_timeout_s=3)
    with pytest.raises(InvalidInputError, match="give_up_after_s"):
        LiveReader("-", give_up_after_s=0)


def test_stream_times_run_on_through_new_connections_and_wrapped_clocks():
    clock, base = _Clock(), 1000.0
    tb = Fraction(1, 90000)
    assert clock.time_of(900000, tb, base) == 0.0  # the first frame is time 0, whatever its timestamp
    assert clock.time_of(903000, tb, base + 0.05) == pytest.approx(1 / 30)
    clock.restart()  # a new connection 2 s later, its timestamps from elsewhere
    assert clock.time_of(5, tb, base + 2.05) == pytest.approx(1 / 30 + 2.0)
    assert clock.time_of(3005, tb, base + 2.1) == pytest.approx(1 / 30 + 2.0 + 1 / 30)
    wrapped = clock.time_of(3005 - 20 * 90000, tb, base + 2.15)  # 20 s back, same connection: a new clock
    assert wrapped == pytest.approx(1 / 30 + 2.0 + 1 / 30 + 0.05)
    assert clock.time_of(3005 - 20 * 90000 - 3000, tb, base + 2.2) == pytest.approx(wrapped, abs=1e-5)  # never back
    assert clock.time_of(None, None, base + 3.0) == pytest.approx(3.0)  # no timestamps: arrival
    assert clock.time_of(None, None, base + 3.0) > 3.0  # never twice the same time


@pytest.mark.slow
def test_the_projects_sample_over_udp_gives_its_own_frames(streams):
    """``samples/cat.mp4`` served as UDP MPEG-TS: each frame taken is one of the file's frames, pixel for pixel, in
    order, at the file's own time steps."""
    sample = Path(__file__).resolve().parents[2] / "samples" / "cat.mp4"
    with open_video(sample) as video:
        frames = video.read(range(video.num_frames))
    by_bytes = {frame.image.tobytes(): frame for frame in frames}
    url, _ = streams.udp(sample, loop=True)
    with open_when_ready(url, keep_all=True) as reader:
        taken, _ = _take(reader, 20)
    assert len(taken) == 20
    matched = [by_bytes.get(frame.image.tobytes()) for frame in taken]
    assert all(m is not None for m in matched)
    for (a, ma), (b, mb) in zip(zip(taken, matched), zip(taken[1:], matched[1:])):
        steps = (mb.index - ma.index) % len(frames)
        assert steps >= 1 and b.time - a.time == pytest.approx(steps * frames[1].time, abs=1e-3)
