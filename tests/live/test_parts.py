"""The live session's small parts on their own: lost and found, matching detections to instances, the frame
history's memory bound, merging windows, and events as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from garvideo.grounding import Detection, match_detections
from garvideo.live import EVENT_KINDS, Found, FrameReport, Lost, RegionReport, Stopped
from garvideo.live.describer import WindowJob, merge_windows
from garvideo.live.history import FrameHistory, HistoryEntry
from garvideo.live.regions import Phrase, Visibility
from garvideo.pipeline import RegionPrompt
from garvideo.tracking import TrackFrame
from garvideo.video.live_source import LiveFrame


def _entry(index, seconds, box=None, size=(20, 30)):
    mask = np.zeros(size, dtype=bool)
    if box is not None:
        x1, y1, x2, y2 = box
        mask[y1 : y2 + 1, x1 : x2 + 1] = True
    return TrackFrame.from_mask(index, seconds, mask, 0.9 if box else 0.1)


def test_a_region_unseen_for_lost_after_seconds_is_lost_then_found():
    seen = Visibility(lost_after=1.0)
    events = []
    for index, (seconds, box) in enumerate([(0.0, (1, 1, 5, 5)), (0.5, None), (0.99, None), (1.0, None), (1.5, None)]):
        events += seen.update({"a": _entry(index, seconds, box)}, {"a": 3}, arrival=100.0 + seconds)
    assert [(type(e), e.time, e.last_seen, e.last_box) for e in events] == [(Lost, 1.0, 0.0, (1, 1, 5, 5))]
    assert seen.is_lost("a") and seen.last_box("a") == (1, 1, 5, 5)
    found = seen.update({"a": _entry(5, 2.0, (2, 2, 6, 6))}, {"a": 3}, arrival=102.0, redetected=["a"])
    assert [(type(e), e.after, e.by, e.box, e.obj_id) for e in found] == [(Found, 2.0, "detector", (2, 2, 6, 6), 3)]
    assert not seen.is_lost("a")
    assert seen.update({"a": _entry(6, 2.5)}, {"a": 3}, arrival=102.5) == []  # unseen again: not lost yet


def _detection(box, score):
    return Detection(box=box, score=score, label="a person")


def test_detections_match_regions_seen_find_lost_ones_or_become_new_instances():
    current = {"person": (0, 0, 10, 10)}
    lost = {"person#2": (50, 50, 60, 60), "person#3": (100, 0, 110, 10)}
    detections = [
        _detection((1, 1, 10, 10), 0.9),  # on person, seen now: nothing to do
        _detection((52, 52, 61, 61), 0.8),  # on person#2's last box: found again
        _detection((200, 200, 220, 220), 0.7),  # nowhere known: a new instance
        _detection((201, 201, 221, 221), 0.6),  # a second new one: no name left
    ]
    matches = match_detections(detections, current, lost, ["person#4"], min_iou=0.3)
    assert [(m.region, m.how, m.detection.score) for m in matches] == [
        ("person#2", "found", 0.8),
        ("person#4", "new", 0.7),
    ]
    # one detection per region, the most confident first
    twice = match_detections([_detection((50, 50, 60, 60), 0.5), _detection((51, 51, 60, 60), 0.9)], {}, lost, [], 0.3)
    assert [(m.region, m.detection.score) for m in twice] == [("person#2", 0.9)]


def test_instance_names_are_never_reused():
    phrase = Phrase(RegionPrompt.from_text("car", "a red car"))
    assert phrase.free_names(3) == ["car", "car#2", "car#3"]
    phrase.instances += ["car", "car#2"]
    phrase.issued = 2
    phrase.instances.remove("car")  # removed: its name does not come back
    assert phrase.free_names(3) == ["car#3", "car#4"]


def _frame(index, seconds, nbytes=1000):
    return LiveFrame(index, seconds, 1000.0 + seconds, np.zeros((10, nbytes // 30, 3), dtype=np.uint8))


def test_the_history_keeps_recent_frames_within_its_byte_budget():
    history = FrameHistory(keep_s=2.0, max_bytes=15 * 990)  # 15 frames; a window (1 s) holds 10
    for index in range(60):
        history.add(_frame(index, index * 0.1), {}, protect_from=(index // 10) * 1.0)
        assert history.nbytes <= 15 * 990
    times = [e.time for e in history.between(0, 100)]
    assert times[-1] == pytest.approx(5.9) and times[0] >= 5.9 - 2.0 - 1e-9
    assert times[-10:] == pytest.approx(
        [5.0 + k / 10 for k in range(10)]
    )  # the window being filled is kept whole while older frames thin out
    assert history.thinned > 0


def _job(windows, frames, start, end):
    chosen = {"a": tuple(HistoryEntry(_frame(i, i / 10), {}) for i in frames)}
    return WindowJob(windows, start, end, chosen, ("b",), {"a": 1, "b": 2}, 0.0, skipped=(0,))


def test_merged_windows_spread_their_planned_frames_again():
    merged = merge_windows(_job((1,), [10, 13, 16, 19], 1.0, 2.0), _job((2,), [20, 23, 26, 29], 2.0, 3.0), 4)
    assert merged.windows == (1, 2) and (merged.start, merged.end) == (1.0, 3.0)
    assert [e.frame.index for e in merged.chosen["a"]] == [10, 16, 23, 29]
    assert merged.unseen == ("b",) and merged.skipped == (0, 0)


def test_events_are_json_lines_naming_their_kind():
    report = FrameReport(
        time=1.5, arrival=100.0, emitted=100.25, index=18, regions={"a": RegionReport(1, (1, 2, 3, 4), 0.5, True)},
        dropped=2, skipped=0,
    )  # fmt: skip
    line = json.loads(json.dumps(report.to_dict()))
    assert line == {
        "event": "frame", "time": 1.5, "arrival": 100.0, "emitted": 100.25, "index": 18,
        "regions": {"a": {"obj_id": 1, "box": [1, 2, 3, 4], "score": 0.5, "visible": True}},
        "dropped": 2, "skipped": 0, "behind": 0.25,
    }  # fmt: skip
    stopped = Stopped(
        time=None, arrival=None, reason="closed", frames_decoded=1, frames_tracked=1, frames_dropped=0,
        frames_skipped=0, windows_described=0, windows_merged=0, windows_skipped=0, seconds=1.0,
    )  # fmt: skip
    assert stopped.to_dict()["behind"] is None and EVENT_KINDS["stopped"] is Stopped
    assert set(EVENT_KINDS) >= {"started", "frame", "window", "answer", "appeared", "lost", "found", "gap", "behind"}
