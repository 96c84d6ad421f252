"""The Live tab through the app's HTTP API (gradio_client), on a real stream: FFmpeg serving the project's sample as
MPEG-TS over HTTP on 127.0.0.1, to a launched `garvideo app` on tiny random models.

The masks the app hands out are held against transformers' own streaming SAM2 session on the same frames with the
same mark (every frame is kept: "never drop a frame"), descriptions and answers against what the session said.
"""

from __future__ import annotations

import html

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app as cli_app
from gradio_client import Client
from gradio_client.exceptions import AppError

from garvideo.masks import decode_rle
from garvideo.pipeline import RegionPrompt
from garvideo.testing.sam2 import streaming_sam2_reference
from garvideo.testing.waiting import wait_until
from garvideo.timecode import format_clock
from garvideo.video import open_video

from .conftest import SAMPLES
from .test_api import error_of, open_cat, page

pytestmark = pytest.mark.slow  # the app server and FFmpeg run in processes of their own

CAT_BOX = (27, 91, 137, 175)
#: window, frames per window, max new tokens, instances per phrase, search every (s)
SETTINGS = (1.0, 4, 3, 4, 2.0)
#: Frames whose masks are held against the reference at most (it tracks every frame up to the last one).
COMPARED = 12


def live(result) -> dict:
    """A full live endpoint's fields by name (garvideo.app.live_page.LIVE_STATE is their order)."""
    from garvideo.app.live_page import LIVE_STATE

    assert len(result) == len(LIVE_STATE)
    return dict(zip(LIVE_STATE, result))


def open_live(client, url: str, keep_all: bool = True) -> dict:
    """``/live_open``, asked again until the server just started listens (its first attempts are refused)."""
    refused: list[str] = []

    def attempt():
        try:
            return live(client.predict(url, *SETTINGS, keep_all, api_name="/live_open"))
        except AppError as exc:
            refused.append(str(exc))
            return None

    opened = wait_until(attempt, 30, every=0.3)
    assert opened is not None, refused[-1:]
    return opened


def frames_until(client, done, limit: int = 400) -> tuple[dict, list[dict]]:
    """``/live_frame`` as a page asks it (the next frame after the one shown) until ``done(state, frames so far)``;
    the last state and the frames."""
    seq, frames = -1, []
    for _ in range(limit):  # each call waits at most a couple of seconds for a frame
        state = live(client.predict(seq, api_name="/live_frame"))
        frame = state["live_details"]["frame"]
        if frame is not None and frame["seq"] > seq:
            seq = frame["seq"]
            frames.append(frame)
        if done(state, frames):
            return state, frames
    raise AssertionError(f"not done after {limit} refreshes: {state['live_details']['state']}")


def test_a_stream_is_opened_marked_tracked_described_asked_and_stopped(client, launched_app, streams, tmp_path):
    url, _ = streams.http(SAMPLES / "cat.mp4", loop=True)
    opened = open_live(client, url)
    details = opened["live_details"]
    assert details["state"] == "running" and details["source"]["opened_as"] == url
    assert (details["source"]["format"], details["source"]["width"], details["source"]["height"]) == (
        "mpegts",
        384,
        256,
    )
    assert "data-w='384' data-h='256'" in opened["live_picture"] and "live: " in opened["live_status"]

    marked = live(client.predict("cat", "box", ",".join(map(str, CAT_BOX)), api_name="/live_mark"))
    assert "cat: marked on the next frame tracked" in marked["live_mark_status"]
    described, frames = frames_until(
        client, lambda s, frames: s["live_details"]["descriptions"] and sum("cat" in f["regions"] for f in frames) >= 5
    )
    (window, *_) = described["live_details"]["descriptions"]
    (row,) = described["live_details"]["regions"]
    # the first window is the one the cat was first tracked in (a window without regions is not described)
    assert (window["event"], window["region"], window["end"] - window["start"]) == ("window", "cat", 1.0)
    assert window["start"] <= row["since"] < window["end"] and window["visible"] and isinstance(window["text"], str)
    assert window["frames"][0] >= row["first_frame"]
    assert f"<b>cat</b> ({format_clock(window['start'])} – {format_clock(window['end'])})" in described["live_texts"]

    # Another tab's file work waits while the live session holds the models, its page saying so.
    other = Client(launched_app.url, verbose=False, download_files=str(tmp_path / "other"), analytics_enabled=False)
    try:
        open_cat(other)
        other.predict("cat", "box", ",".join(map(str, CAT_BOX)), 12, api_name="/add_region")
        job = other.submit("", "", 1, 12, api_name="/track")
        waits = "waiting for the live session to stop (the Live tab&#x27;s Stop)"  # escaped, as HTML
        assert wait_until(lambda: any(waits in str(out) for out in job.outputs()), 60), job.outputs()[-1:]

        answered = live(client.predict("What is <cat> doing?", 2, "", api_name="/live_ask"))
        turn = answered["live_details"]["answer"]
        assert turn["question"] == "What is <cat> doing?" and turn["error"] is None
        assert turn["answer"]["regions"] == ["cat"] and turn["answer"]["text"] == turn["text"]
        assert 0 < turn["answer"]["end"] - turn["answer"]["start"] <= 2
        assert "answered question 1" in answered["live_ask_status"]

        _a_phrase_is_searched_for_and_removed(client)
        stopped = live(client.predict(api_name="/live_stop"))
        assert stopped["live_details"]["state"] == "stopped"
        last = stopped["live_details"]["log"][-1]
        assert (last["event"], last["reason"]) == ("stopped", "closed") and "stopped (closed)" in stopped["live_status"]
        # the live session gone, the file job runs
        assert "tracked 1 region(s) over 72 frames" in page(job.result())["run_status"]
    finally:
        other.predict(api_name="/close_session")
        other.close()

    (row,) = stopped["live_details"]["regions"]
    assert (row["name"], row["how"], row["obj_id"]) == ("cat", "box", 1)
    _same_masks_as_transformers(launched_app, row["first_frame"], frames)


def _a_phrase_is_searched_for_and_removed(client) -> None:
    """A region named in words joins (the app's detector loads for it) and leaves with its instances."""
    searched = live(client.predict("things", "text", "a cat", api_name="/live_mark"))
    said = html.unescape(searched["live_mark_status"])
    assert f"things: searched for 'a cat' from the next frame, then every {SETTINGS[4]:g} s" in said
    assert ("things", "text", "'a cat'") in [
        (r["name"], r["how"], r["mark"]) for r in searched["live_details"]["regions"]
    ]
    removed = live(client.predict("things", api_name="/live_remove"))
    assert "things: removed from the next frame" in removed["live_mark_status"]
    gone, _ = frames_until(client, lambda s, _: all(r["name"] == "cat" for r in s["live_details"]["regions"]))
    assert any(e["event"] == "removed" and e["region"] == "things" for e in gone["live_details"]["log"])


def _same_masks_as_transformers(app, first: int, frames: list[dict]) -> None:
    """Each mask handed out is the one transformers' streaming session gives on that frame, marked on ``first``."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    shown = [f for f in frames if "cat" in f["regions"]][:COMPARED]
    assert len(shown) >= 5 and shown[0]["index"] >= first, [f["index"] for f in frames]
    with open_video(SAMPLES / "cat.mp4") as video:  # HTTP from the start: the stream's frame i is the clip's i % 72
        clip = [frame.image for frame in video.read(range(video.num_frames))]
    last = max(f["index"] for f in shown)
    images = np.stack([clip[i % len(clip)] for i in range(last + 1)])
    model = Sam2VideoModel.from_pretrained(app.sam2).eval()
    reference = streaming_sam2_reference(
        model, Sam2VideoProcessor.from_pretrained(app.sam2), images, [RegionPrompt.from_box("cat", CAT_BOX, first)]
    )
    # the tiny random SAM2 covers nearly all of each frame: what it leaves out differs from frame to frame
    assert len({reference["cat"][f["index"]].mask.tobytes() for f in shown}) > 1
    for frame in shown:
        entry = frame["regions"]["cat"]
        assert entry["index"] == frame["index"] and entry["obj_id"] == 1
        assert np.array_equal(decode_rle(entry["rle"]), reference["cat"][frame["index"]].mask), frame["index"]
        assert entry["score"] == pytest.approx(reference["cat"][frame["index"]].score, abs=1e-5)


def test_a_file_under_root_is_followed_to_its_end_and_the_models_are_free_again(client):
    """A finished file under --root, read as a live source: the session ends by itself at its end, and gives its
    place in the model queue up (a file job of the same tab runs at once)."""
    opened = open_live(client, "sub/cat_and_cup.mp4")
    assert opened["live_details"]["source"]["kind"] == "file"
    assert opened["live_details"]["source"]["opened_as"].endswith("/sub/cat_and_cup.mp4")
    ended, frames = frames_until(client, lambda s, _: s["live_details"]["state"] == "stopped")
    last = ended["live_details"]["log"][-1]
    assert (last["event"], last["reason"], last["frames_tracked"]) == ("stopped", "the end of the input", 72)
    assert [f["index"] for f in frames] == sorted({f["index"] for f in frames}) and frames[-1]["index"] == 71
    open_cat(client)
    client.predict("cat", "box", ",".join(map(str, CAT_BOX)), 12, api_name="/add_region")
    assert "tracked 1 region(s) over 72 frames" in page(client.predict("", "", 1, 12, api_name="/track"))["run_status"]


def test_live_sources_the_app_refuses_are_one_line_and_a_dead_one_is_the_clis(client, launched_app):
    def opening(source: str) -> str:
        return error_of(lambda: client.predict(source, *SETTINGS, False, api_name="/live_open"))

    for source, says in [
        ("file:///etc/passwd", "file:// URLs are not opened by the app"),
        ("/etc/passwd", "'/etc/passwd' is an absolute path: give a path relative to the app's --root folder"),
        ("link_out.mp4", "leads outside the app's --root folder"),
        ("gopher://127.0.0.1/x", "the app opens streams over udp://"),
        ("-", "standard input is not a source the app can read"),
    ]:
        line = opening(source)
        assert line.startswith("garvideo: error: ") and says in line and "\n" not in line
    from ..live.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}/live.ts"
    result = CliRunner().invoke(cli_app, ["live", dead, "--no-describe", "--sam2", launched_app.sam2, "-q"])
    (cli_line,) = [line for line in result.output.splitlines() if line.startswith("garvideo: error:")]
    assert opening(dead) == cli_line
    # refused or failed, none of them runs
    assert live(client.predict(api_name="/live_stop"))["live_details"]["state"] == "stopped"
    marking = error_of(lambda: client.predict("a", "box", "1,1,9,9", api_name="/live_mark"))
    assert marking == "garvideo: error: no live session runs in this tab: open a stream first"
