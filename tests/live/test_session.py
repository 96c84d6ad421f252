"""A live session end to end on a file read as a live source (every frame kept, so runs are repeatable).

Masks are held against transformers' own streaming session on the frames the session took; window descriptions
and answers against ``Pipeline.describe`` / ``Pipeline.ask`` given the session's own tracks (the same planning,
prompts and greedy decoding must give the same texts).
"""

from __future__ import annotations

import threading

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


def test_gar_falling_behind_merges_windows_then_skips_them(gar_pipe, object_clip, monkeypatch):
    started, gate = threading.Event(), threading.Event()
    describe_prompts = Pipeline._describe_prompts

    def slow_gar(self, *args, **kwargs):  # GAR held back until the test lets it go (the texts stay GAR's own)
        started.set()
        assert gate.wait(60)
        return describe_prompts(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_describe_prompts", slow_gar)

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


def test_gar_a_little_behind_merges_windows(gar_pipe, object_clip, monkeypatch):
    started, gate = threading.Event(), threading.Event()
    describe_prompts = Pipeline._describe_prompts

    def slow_gar(self, *args, **kwargs):
        started.set()
        assert gate.wait(60)
        return describe_prompts(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_describe_prompts", slow_gar)

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
