"""A live session end to end on a file read as a live source (every frame kept, so runs are repeatable).

Masks are held against transformers' own streaming session on the frames the session took; window descriptions
and answers against ``Pipeline.describe`` / ``Pipeline.ask`` given the session's own tracks (the same planning,
prompts and greedy decoding must give the same texts).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from garvideo.errors import InvalidInputError
from garvideo.live import (
    Answered,
    Appeared,
    FrameReport,
    LiveOutput,
    Removed,
    Started,
    Stopped,
    WindowDescribed,
)
from garvideo.pipeline import Pipeline, RegionPrompt
from garvideo.testing.sam2 import build_tiny_sam2_checkpoint, streaming_sam2_reference
from garvideo.testing.waiting import wait_until
from garvideo.tracking import Sam2Tracker, Track


class Collect(LiveOutput):
    """Every tracked frame with its regions, and every event, as the session hands them over."""

    def __init__(self) -> None:
        self.frames, self.entries, self.events = [], [], []
        self.finished = self.closed = False

    def on_frame(self, frame, regions):
        self.frames.append(frame)
        self.entries.append(dict(regions))

    def on_event(self, event):
        self.events.append(event)

    def finish(self):
        self.finished = True

    def close(self):
        self.closed = True

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def tracks(self, obj_ids):
        names = dict.fromkeys(name for entries in self.entries for name in entries)
        return [Track(name, obj_ids[name], tuple(e[name] for e in self.entries if name in e)) for name in names]


@pytest.fixture(scope="module")
def sam2_64(tmp_path_factory):
    """A tiny SAM2 whose masks cover part of the frame (64 px input, 3 mask memories, 4 object pointers)."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    path = build_tiny_sam2_checkpoint(
        tmp_path_factory.mktemp("sam2") / "tiny-64", seed=1, image_size=64, num_maskmem=3, max_object_pointers=4
    )
    pipe = Pipeline(None, Sam2Tracker.from_pretrained(path, device="cpu"), progress=False)
    return pipe, Sam2VideoModel.from_pretrained(path).eval(), Sam2VideoProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def gar_pipe(tiny_models, selftest_material):
    return Pipeline.from_pretrained(
        tiny_models / "gar", tiny_models / "sam2", device="cpu", progress=False, detector=selftest_material.detector
    )


def _box(clip, obj, frame, name):
    x1, y1, x2, y2 = clip.objects[obj].boxes[frame]
    return RegionPrompt.from_box(name, (x1, y1, x2 + 1, y2 + 1), 0)


def test_masks_equal_transformers_streaming_session_with_regions_added_and_removed(sam2_64, object_clip):
    pipe, model, processor = sam2_64
    collect = Collect()
    square = _box(object_clip, 1, 11, "square")

    def drive(event):  # from the tracking thread: each change acts on the next frame, as a user's would
        if isinstance(event, FrameReport) and event.index == 10:
            session.add(square)
        if isinstance(event, FrameReport) and event.index == 30:
            session.remove("ellipse")

    prompts = [_box(object_clip, 0, 0, "ellipse")]
    session = pipe.live(
        str(object_clip.path),
        prompts,
        describe=False,
        keep_all=True,
        report_every=1000,
        outputs=[collect],
        on_event=drive,
    )
    assert session.wait(60)
    session.close()
    assert collect.finished and collect.closed
    assert [f.index for f in collect.frames] == list(range(48))
    frames = np.stack([f.image for f in collect.frames])
    marks = [prompts[0], square.at_frame(11)]
    reference = streaming_sam2_reference(model, processor, frames, marks)
    for name, first, last in (("ellipse", 0, 30), ("square", 11, 47)):
        tracked = {p: e[name] for p, e in enumerate(collect.entries) if name in e}
        assert sorted(tracked) == list(range(first, last + 1))
        for position, entry in tracked.items():
            assert np.array_equal(entry.mask(), reference[name][position].mask), (name, position)
            assert entry.score == pytest.approx(reference[name][position].score, abs=1e-5)
    appeared = {e.region: (e.time, e.obj_id, e.how) for e in collect.of(Appeared)}
    assert appeared == {"ellipse": (0.0, 1, "marked"), "square": (object_clip.times[11], 2, "marked")}
    assert [e.box for e in collect.of(Appeared)] == [prompts[0].box, square.box]
    assert [e.region for e in collect.of(Removed)] == ["ellipse"]
    assert isinstance(collect.events[0], Started) and isinstance(collect.events[-1], Stopped)
    assert collect.events[-1].frames_tracked == 48 and collect.events[-1].reason == "the end of the input"


def test_windows_and_answers_are_describe_and_ask_on_the_same_tracks(gar_pipe, object_clip):
    collect, asked = Collect(), {}

    def drive(event):
        if isinstance(event, FrameReport) and event.index == 30:
            asked["future"] = session.ask("What is <thing> doing?", last=1.0)

    session = gar_pipe.live(
        str(object_clip.path),
        [_box(object_clip, 0, 0, "thing")],
        window=1.0,
        max_new_tokens=4,
        batch_size=1,
        keep_all=True,
        report_every=1000,
        outputs=[collect],
        on_event=drive,
    )
    assert session.wait(120)
    tracks = collect.tracks({"thing": 1})
    offline = gar_pipe.describe(
        object_clip.path, tracks=tracks, window=1.0, frames_per_window=4, max_new_tokens=4, batch_size=1
    )
    windows = [w for w in offline.region("thing").windows]
    live = collect.of(WindowDescribed)
    assert [(w.start, w.end) for w in live] == [(w.start, w.end) for w in windows] == [(k, k + 1.0) for k in range(4)]
    for event, window in zip(live, windows):
        assert (event.visible, event.frames, event.text) == (window.visible, window.frames, window.description)
        assert event.windows == (int(event.start),) and event.skipped == ()

    answer = asked["future"].result(timeout=60)
    assert isinstance(answer, Answered) and collect.of(Answered) == [answer]
    start, end = object_clip.times[30] - 1.0, object_clip.times[30]
    offline_answer = gar_pipe.ask(
        object_clip.path, "What is <thing> doing?", tracks=tracks, start=start, end=end + 1e-6, max_new_tokens=4
    )
    assert (answer.start, answer.end) == pytest.approx((start, end))
    assert answer.frames == offline_answer.provenance.frames and answer.text == offline_answer.text
    assert answer.error is None and answer.regions == ("thing",)


@pytest.fixture
def held_gar(monkeypatch):
    """GAR's window descriptions held back until the test lets them go (the texts stay GAR's own): ``(started,
    gate)``, set when the first description is asked for, and to be set to let it (and the next ones) run."""
    started, gate = threading.Event(), threading.Event()
    describe_frames = Pipeline.describe_frames

    def slow_gar(self, *args, **kwargs):
        started.set()
        assert gate.wait(60)
        return describe_frames(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "describe_frames", slow_gar)
    return started, gate


def test_gar_falling_behind_merges_windows_then_skips_them(gar_pipe, object_clip, held_gar):
    started, gate = held_gar

    def drive(event):
        if isinstance(event, FrameReport) and event.index == 7:  # window 0 went to GAR with frame 6
            assert started.wait(30)

    collect = Collect()
    session = gar_pipe.live(
        str(object_clip.path),
        [_box(object_clip, 0, 0, "thing")],
        window=0.5,
        max_new_tokens=2,
        keep_all=True,
        report_every=1000,
        outputs=[collect],
        on_event=drive,
    )
    # The input ends while GAR is held: the last window (7) comes too, and the session waits for GAR to describe it.
    assert wait_until(lambda: session.stats.windows_skipped >= 6, 60)
    gate.set()
    assert session.wait(60)
    described = [(e.windows, e.skipped) for e in collect.of(WindowDescribed)]
    assert described == [((0,), ()), ((7,), (1, 2, 3, 4, 5, 6))]
    stopped = collect.events[-1]
    assert (stopped.windows_described, stopped.windows_skipped, stopped.windows_merged) == (2, 6, 0)


def test_gar_a_little_behind_merges_windows(gar_pipe, object_clip, held_gar):
    started, gate = held_gar

    def drive(event):
        if isinstance(event, FrameReport) and event.index == 13:
            assert started.wait(30)  # window 0 went to GAR with frame 12
        if isinstance(event, FrameReport) and event.index == 37:
            gate.set()  # windows 1 and 2 waited meanwhile

    collect = Collect()
    session = gar_pipe.live(
        str(object_clip.path),
        [_box(object_clip, 0, 0, "thing")],
        window=1.0,
        max_new_tokens=2,
        keep_all=True,
        report_every=1000,
        outputs=[collect],
        on_event=drive,
    )
    assert session.wait(120)
    merged = [e for e in collect.of(WindowDescribed) if len(e.windows) > 1]
    assert [(e.windows, e.start, e.end) for e in merged] == [((1, 2), 1.0, 3.0)]
    frames = merged[0].frames
    assert len(frames) == 4 and frames == tuple(sorted(frames)) and 12 <= frames[0] and frames[-1] < 36


def test_bad_requests_are_refused_at_once(sam2_64, object_clip):
    pipe = sam2_64[0]
    with pytest.raises(InvalidInputError, match="outside"):
        pipe.live(str(object_clip.path), [RegionPrompt.from_box("a", (500, 500, 600, 600), 0)], describe=False)
    with pytest.raises(InvalidInputError, match="window"):
        pipe.live(str(object_clip.path), window=0, describe=False)
    with pipe.live(str(object_clip.path), [_box(object_clip, 0, 0, "a")], describe=False, keep_all=True) as session:
        with pytest.raises(InvalidInputError, match="no region named 'b'"):
            session.remove("b")
        with pytest.raises(InvalidInputError, match="no GAR"):
            session.ask("What is <a>?")
        with pytest.raises(InvalidInputError, match="RegionPrompt"):
            session.add({"name": "b"})
        with pytest.raises(InvalidInputError, match="outside"):
            session.add(RegionPrompt.from_box("b", (500, 500, 600, 600), 0))


@pytest.fixture(scope="module")
def text_pipe(tiny_models, selftest_material):
    tracker = Sam2Tracker.from_pretrained(tiny_models / "sam2", device="cpu")
    return Pipeline(None, tracker, progress=False, detector=selftest_material.detector)


def _top_scores(detector, images, phrase):
    """Per frame, the scores of the two most confident distinct boxes the detector finds (0 where none)."""
    from garvideo.grounding import distinct

    out = []
    for image in images:
        found = distinct(detector.detect(image, phrase, 0.0, 0.25).detections, 2)
        out.append([d.score for d in found] + [0.0] * (2 - len(found)))
    return out


def test_a_second_instance_found_later_gets_a_name_of_its_own(text_pipe, object_clip):
    """Searched every 0.25 s (every 3rd frame); a threshold from the detector's own scores lets exactly one box
    through on frame 0 and one through on a later searched frame: that one is ``person#2`` (with ``match_iou=1``
    no detection is taken for ``person`` itself, whatever SAM2's random masks are)."""
    from garvideo.video import open_video

    with open_video(object_clip.path) as video:
        images = [f.image for f in video.read(range(0, 48, 3))]
    scores = _top_scores(text_pipe.detector, images, "a person")
    first, second = scores[0]
    later = [top for top, _ in scores[1:]]
    assert max(later) > second, f"the tiny detector never scores a later frame above frame 0's second box: {scores}"
    threshold = (second + min(first, max(later))) / 2
    found_on = 3 * (1 + next(k for k, top in enumerate(later) if top > threshold))

    collect = Collect()
    session = text_pipe.live(
        str(object_clip.path),
        [RegionPrompt.from_text("person", "a person")],
        describe=False,
        keep_all=True,
        search_every=0.25,
        box_threshold=threshold,
        max_instances=2,
        match_iou=1.0,
        outputs=[collect],
    )
    assert session.wait(60)
    appeared = [(e.region, e.time, e.how, e.phrase) for e in collect.of(Appeared)]
    assert appeared == [
        ("person", 0.0, "detected", "a person"),
        ("person#2", object_clip.times[found_on], "detected", "a person"),
    ]
    seen = {name for entries in collect.entries for name in entries}
    assert seen == {"person", "person#2"}  # never a third: at most two at once
    assert [p for p, e in enumerate(collect.entries) if "person#2" in e][0] == found_on


def _live_when_ready(pipe, url, regions, **options):
    """``pipe.live`` once the server just started accepts."""
    from garvideo.errors import VideoError

    def attempt():
        try:
            return pipe.live(url, regions, **options)
        except VideoError:
            return None

    session = wait_until(attempt, 20, every=0.2)
    assert session is not None, f"{url} never opened"
    return session


@pytest.mark.slow
def test_a_slow_tracker_drops_old_frames_and_says_how_far_behind(streams, sam2_64, object_clip, monkeypatch):
    from garvideo.live import Behind
    from garvideo.tracking.live import LiveTracker

    step = LiveTracker.step

    def slow_step(self, frame):  # about 4 frames a second: a third of the stream's 12
        time.sleep(0.25)
        return step(self, frame)

    monkeypatch.setattr(LiveTracker, "step", slow_step)
    url, _ = streams.udp(object_clip.path, loop=True)
    collect, held = Collect(), []

    class Watch(LiveOutput):
        def on_frame(self, frame, regions):
            held.append((session.reader.pending(), session.tracker.held()[2], session.stats.history_bytes))

    session = _live_when_ready(
        sam2_64[0], url, [_box(object_clip, 0, 0, "a")], describe=False, report_every=1000, outputs=[collect, Watch()]
    )
    assert wait_until(lambda: len(collect.frames) >= 16, 60)
    session.close()
    stats = session.stats
    assert stats.frames_dropped > 0 and stats.frames_tracked + stats.frames_dropped <= stats.frames_decoded
    behind = collect.of(Behind)
    assert behind and sum(b.dropped for b in behind) > 0 and all(b.seconds >= 0 for b in behind)
    reports = collect.of(FrameReport)
    assert all(r.behind is not None for r in reports) and reports[-1].dropped > 0
    times = [f.time for f in collect.frames]
    assert times == sorted(times) and times[-1] - times[0] > (len(times) - 1) / 12  # frames were left out
    assert max(p for p, _, _ in held) <= 1  # never a queue: one frame waits at most
    assert len({state for _, state, _ in held[8:]}) == 1  # SAM2's memory: flat once its windows are full


@pytest.mark.slow
def test_the_session_reconnects_and_keeps_its_regions_and_ids(streams, sam2_64, object_clip):
    from garvideo.live import Gap

    url, server = streams.http(object_clip.path, loop=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    collect = Collect()
    regions = [_box(object_clip, 0, 0, "ellipse"), _box(object_clip, 1, 0, "square")]
    session = _live_when_ready(
        sam2_64[0], url, regions, describe=False, reconnect_s=0.2, report_every=1000, outputs=[collect]
    )
    assert wait_until(lambda: len(collect.frames) >= 6, 60)
    streams.stop(server)
    assert wait_until(lambda: any(not g.resumed for g in collect.of(Gap)), 30)
    before = len(collect.frames)
    streams.http(object_clip.path, port=port, loop=True)
    assert wait_until(lambda: any(g.resumed for g in collect.of(Gap)), 30)
    assert wait_until(lambda: len(collect.frames) >= before + 6, 30)
    session.close()
    after = [r for r in collect.of(FrameReport) if r.index >= collect.frames[before].index]
    assert after and all(
        {n: r.obj_id for n, r in report.regions.items()} == {"ellipse": 1, "square": 2} for report in after
    )
    assert [e.region for e in collect.of(Appeared)] == ["ellipse", "square"]  # no region was made again
    times = [f.time for f in collect.frames]
    assert times == sorted(times) and collect.frames[before].index > collect.frames[before - 1].index
