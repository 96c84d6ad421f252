"""The Live tab's pieces that need no server and no model: what it may open, its settings, the queue it holds,
the feed of a running session and what the page shows of it (escaped), and when a live session ends."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from garvideo import defaults
from garvideo.app import AppConfig, Backend, Models, fields, jobs, live_view
from garvideo.app.live import NETWORK_PROTOCOLS, LiveBusy, LiveOptions, LiveSource
from garvideo.app.live_feed import KEPT_LOG, LiveFeed
from garvideo.errors import InvalidInputError
from garvideo.live import Answered, Appeared, Behind, Gap, Lost, Problem, Removed, Started, TextSoFar, WindowDescribed
from garvideo.pipeline import TextSearch
from garvideo.tracking import TrackFrame
from garvideo.video.live_source import LiveFrame

MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "root"
    (folder / "cams").mkdir(parents=True)
    (folder / "cams" / "feed.ts").write_bytes(b"\0" * 188)
    outside = tmp_path / "outside.ts"
    outside.write_bytes(b"\0" * 188)
    (folder / "link_out.ts").symlink_to(outside)
    return folder.resolve()


def source(value, root=None, devices=()):
    return fields.live_source(value, root, "clips" if root is not None else None, devices)


@pytest.mark.parametrize(
    "value, message",
    [
        ("file:///etc/passwd", "file:// URLs are not opened by the app: type the file's path under --root instead"),
        ("ftp://host/x.ts", "the app opens streams over udp://, http://, https://, rtsp://"),
        ("concat:a.ts|b.ts://x", "the app opens streams over"),
        ("http:///live.ts", "http:///live.ts names no host"),
        ("-", "standard input is not a source the app can read"),
        ("/dev/video0", "'/dev/video0' is an absolute path: give a path relative to the app's --root folder"),
        ("../outside.ts", "leaves the app's --root folder"),
        ("link_out.ts", "leads outside the app's --root folder"),
        ("cams", "'cams' is a folder"),
        ("cams/missing.ts", "there is no 'cams/missing.ts'"),
        (["udp://x"], "the live source must be text, got a list"),
        ("udp://x\0", "the live source holds a control character"),
        ("   ", "type a stream URL"),
    ],
)
def test_the_live_tab_opens_only_what_the_app_allows_and_says_so_in_one_line(root, value, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        source(value, root)
    assert "\n" not in str(refused.value)


def test_urls_devices_and_files_under_root_open_as_they_should(root):
    url = source("rtsp://admin:s3cret@cam.local:554/stream?tcp", root)
    assert (url.target, url.kind) == ("rtsp://admin:s3cret@cam.local:554/stream?tcp", "url")
    assert url.shown == "rtsp://admin:***@cam.local:554/stream?tcp"  # the page never shows the password
    assert url.options == {"protocol_whitelist": NETWORK_PROTOCOLS} and "file" not in NETWORK_PROTOCOLS.split(",")
    assert source("UDP://:1234").kind == "url"  # a local port to listen on: no host needed for udp
    assert source("https://example.com/live/index.m3u8").shown == "https://example.com/live/index.m3u8"
    assert source("/dev/video0", devices=("/dev/video0",)) == LiveSource("/dev/video0", "/dev/video0", "device")
    feed = source("cams/feed.ts", root)
    assert feed == LiveSource(
        str(root / "cams" / "feed.ts"), "clips/cams/feed.ts", "file", {"protocol_whitelist": "file"}
    )
    with pytest.raises(
        InvalidInputError,
        match=r"nor a device this app was started with \(--live-device: /dev/video0\), and this app was started without --root",
    ):
        source("/dev/video1", devices=("/dev/video0",))


def test_live_settings_are_checked_and_start_from_the_table():
    assert fields.live_options(None, None, None, None, None, None) == LiveOptions()
    assert LiveOptions() == LiveOptions(
        defaults.LIVE_WINDOW, defaults.FRAMES_PER_WINDOW, defaults.MAX_NEW_TOKENS, defaults.LIVE_MAX_INSTANCES,
        defaults.LIVE_SEARCH_EVERY, False,
    )  # fmt: skip
    for args, message in [
        ((0, 4, 8, 4, 2, False), "the window must be a number from 0.1 to 3600, got 0"),
        (
            (1, 4, 10**9, 4, 2, False),
            f"max new tokens must be a whole number from 1 to {defaults.MAX_NEW_TOKENS_LIMIT}",
        ),
        ((1, 4, 8, 10**6, 2, False), f"max instances must be a whole number from 1 to {defaults.MAX_INSTANCES_LIMIT}"),
        ((1, 4, 8, 4, 2, "yes"), "never drop a frame must be true or false"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            fields.live_options(*args)
    search = TextSearch(box_threshold=0.3, text_threshold=0.2)  # the app's (`garvideo app`'s text options)
    assert fields.live_options(2.5, 3, 16, 2, 1, True).session_options(search) == {
        "window": 2.5, "frames_per_window": 3, "max_new_tokens": 16, "max_instances": 2, "search_every": 1.0,
        "keep_all": True, "box_threshold": 0.3, "text_threshold": 0.2, "match_iou": search.match_iou,
    }  # fmt: skip


def test_the_queue_says_when_the_live_session_holds_the_models():
    line = jobs.ModelQueue()
    job, live, later = line.join(), line.join("live"), line.join()
    assert line.waiting(live) == "waiting for 1 job to finish (one model job runs at a time)"
    line.leave(job)
    assert line.wait(live, 0) == 0 and line.wait(later, 0) == 1
    assert line.waiting(later) == (
        "waiting for the live session to stop (the Live tab's Stop): it holds the models while it runs"
    )
    last = line.join()
    assert line.waiting(last).endswith("then for 1 job: it holds the models while it runs")
    woken = threading.Thread(target=lambda: line.leave(live))
    woken.start()
    assert line.wait(later, 5) == 0
    woken.join()


def _frame(index: int, regions: dict[str, np.ndarray], time: float | None = None):
    image = np.full((8, 12, 3), index, np.uint8)
    entries = {
        name: TrackFrame.from_mask(index, time if time is not None else index / 10, mask, 0.9)
        for name, mask in regions.items()
    }
    return LiveFrame(index, time if time is not None else index / 10, 1000.0 + index, image), entries


def test_the_feed_keeps_the_newest_frame_with_the_sessions_own_masks_and_every_text_as_it_comes():
    closed = []
    feed = LiveFeed(on_closed=lambda: closed.append(True))
    mask = np.zeros((8, 12), bool)
    mask[2:5, 3:7] = True
    feed.marked("cup", "box", "3,2,6,4")
    for index in range(3):
        frame, entries = _frame(index, {"cup": mask} if index else {})
        feed.on_frame(frame, entries)
    latest = feed.snapshot().frame
    assert (latest.seq, latest.index) == (2, 2)  # only the newest frame is kept: a slow page never gets a backlog
    assert latest.regions["cup"].rle == TrackFrame.from_mask(2, 0.2, mask, 0.9).rle
    (row,) = feed.snapshot().regions
    assert (row.name, row.first_frame, row.since) == ("cup", 1, 0.1)
    feed.on_event(Appeared(time=0.1, arrival=None, region="cup", obj_id=1, how="marked", box=(3, 2, 6, 4)))
    feed.on_event(TextSoFar(time=1.0, arrival=None, region="cup", windows=(0,), text="a red"))
    assert [w.text for w in feed.snapshot().writing] == ["a red"]
    described = WindowDescribed(time=1.0, arrival=None, region="cup", start=0.0, end=1.0, visible=True,
                                text="a red cup", frames=(1, 2), times=(0.1, 0.2), windows=(0,))  # fmt: skip
    feed.on_event(described)
    snapshot = feed.snapshot()
    assert snapshot.writing == () and snapshot.windows == (described,) and snapshot.regions[0].obj_id == 1
    turn = feed.asking("What is <cup>?", 5.0, ())
    feed.on_event(TextSoFar(time=2.0, arrival=None, region=None, windows=None, text="It is"))
    assert feed.snapshot().turns[0].text == "It is"
    answered: Future = Future()
    answered.set_result(Answered(time=2.0, arrival=None, question="What is <cup>?", last=5.0, options=None,
                                 regions=("cup",), text="It is a cup.", letter=None, start=0.0, end=2.0,
                                 frames=(1, 2), times=(0.1, 0.2)))  # fmt: skip
    feed.answered(turn, answered)
    assert feed.wait_turn(turn.number, 0).text == "It is a cup."
    for k in range(KEPT_LOG + 5):
        feed.on_event(Behind(time=2.0, arrival=None, seconds=1.5, dropped=k, dropped_total=k))
    assert len(feed.snapshot().log) == KEPT_LOG  # the log keeps its newest lines
    feed.on_event(Removed(time=None, arrival=None, region="cup"))
    assert feed.snapshot().regions == ()
    feed.close()
    assert closed == [True] and feed.wait_newer(latest.seq, 30).frame.seq == 2  # closed: no waiting


def test_a_page_waiting_for_the_next_frame_gets_it_as_soon_as_it_is_tracked():
    feed = LiveFeed()
    feed.on_frame(*_frame(0, {}))
    got = []
    waiter = threading.Thread(target=lambda: got.append(feed.wait_newer(0, 30)))
    waiter.start()
    feed.on_frame(*_frame(1, {}))
    waiter.join(30)
    assert got[0].frame.seq == 1


def test_what_the_live_tab_shows_is_text_never_markup():
    feed = LiveFeed()
    mask = np.zeros((8, 12), bool)
    mask[1:3, 1:3] = True
    feed.marked(MARKUP, "box", "1,1,2,2")
    feed.on_frame(*_frame(0, {MARKUP: mask}))
    feed.on_event(Started(time=0.0, arrival=None, regions=(), settings={}, source={
        "source": "rtsp://u:pw@cam/x", "url": "rtsp://u:pw@cam/x", "format": MARKUP, "codec": "h264", "width": 12,
        "height": 8, "fps": None, "kind": "network"}))  # fmt: skip
    feed.on_event(WindowDescribed(time=1.0, arrival=None, region=MARKUP, start=0.0, end=1.0, visible=True,
                                  text=MARKUP, frames=(0,), times=(0.0,), windows=(0,)))  # fmt: skip
    feed.on_event(Lost(time=1.0, arrival=None, region=MARKUP, obj_id=1, last_seen=0.5, last_box=None))
    feed.on_event(Gap(time=1.0, arrival=None, resumed=False, reason=f"{MARKUP} from rtsp://u:pw@cam/x"))
    feed.on_event(Problem(time=None, arrival=None, message=MARKUP))
    turn = feed.asking(f"What is <{MARKUP}>?", 5.0, (MARKUP, "b"))
    feed.answered(turn, error=MARKUP)

    class Stream:  # what the views read of a live stream
        source = LiveSource("rtsp://u:pw@cam/x", "rtsp://u:***@cam/x", "url")
        state, failure = "running", None

    snapshot = feed.snapshot()
    html = "".join([
        live_view.regions(snapshot), live_view.texts(snapshot), live_view.conversation(snapshot),
        live_view.log(snapshot, Stream()),
    ])  # fmt: skip
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "pw" not in html and "rtsp://u:***@cam/x" in html
    summary = live_view.summary(Stream(), snapshot)
    assert "pw@" not in repr(summary) and summary["source"]["opened_as"] == "rtsp://u:***@cam/x"
    assert summary["frame"]["regions"][MARKUP]["rle"] == feed.snapshot().frame.regions[MARKUP].to_dict()["rle"]
    picture = live_view.picture(Stream(), snapshot, "data:image/jpeg;base64,AAAA", tick=7)
    assert "data-w='12' data-h='8' data-seq='0' data-state='running' data-tick='7'" in picture


def test_a_live_session_ends_with_its_tab_when_idle_and_when_the_app_stops(tmp_path):
    """Its place in the model queue goes with it (a live session that has not opened yet holds it too)."""
    config = AppConfig(models=Models("gar", "sam2"), temp_root=tmp_path, session_ttl_s=60)
    backend = Backend(config, pipeline=None)
    url = fields.live_source("udp://127.0.0.1:9", None, None, ())
    for end in ("tab", "idle", "app"):
        backend.session("a")
        stream = backend.live.reserve("a", url, LiveOptions())
        with pytest.raises(LiveBusy, match="a live session is running in another tab"):
            backend.live.reserve("b", url, LiveOptions())
        with pytest.raises(InvalidInputError, match="this tab's live session is running: stop it"):
            backend.live.reserve("a", url, LiveOptions())
        job = backend.model_queue.join()
        assert "waiting for the live session to stop" in backend.model_queue.waiting(job)
        if end == "tab":
            assert backend.end_session("a")
        elif end == "idle":
            assert backend.end_idle_sessions(now=backend.session("a").last_used + 61) == ["a"]
        else:
            backend.close()
        assert stream.state == "stopped" and backend.model_queue.wait(job, 0) == 0
        assert backend.live.stream("a") is None
        backend.model_queue.leave(job)
