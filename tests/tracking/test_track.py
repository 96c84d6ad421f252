"""Track and TrackFrame: masks as COCO RLE, boxes, visibility and the JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from garvideo.errors import InvalidInputError
from garvideo.tracking import (
    TRACKS_VERSION,
    Track,
    TrackFrame,
    load_tracks,
    save_tracks,
    tracks_from_json,
    tracks_to_json,
)


def _random_masks(count, height=37, width=53, seed=0):
    rng = np.random.default_rng(seed)
    masks = {}
    for index in range(count):
        mask = np.zeros((height, width), dtype=bool)
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        mask[y : y + rng.integers(1, 8), x : x + rng.integers(1, 8)] = True
        mask ^= rng.random((height, width)) < 0.05  # speckle: many runs
        masks[index] = mask
    masks[count] = np.zeros((height, width), dtype=bool)  # the object has left
    return masks


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools under numpy 2
def test_track_frame_rle_is_cocos_and_round_trips_exactly():
    for mask in _random_masks(6).values():
        frame = TrackFrame.from_mask(3, 0.12, mask, score=0.7)
        coco = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert frame.rle["counts"] == coco["counts"].decode("ascii")
        assert frame.rle["size"] == list(coco["size"])
        assert np.array_equal(frame.mask(), mask)
        assert np.array_equal(
            coco_mask.decode({"size": frame.rle["size"], "counts": frame.rle["counts"].encode()}), mask
        )


def test_track_frame_box_and_visibility():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    frame = TrackFrame.from_mask(0, 0.0, mask)
    assert frame.box == (3, 2, 8, 4) and frame.visible
    gone = TrackFrame.from_mask(1, 0.04, np.zeros((10, 12), dtype=bool), score=0.01)
    assert gone.box is None and not gone.visible and gone.size == (10, 12)


def test_track_from_masks_sorts_and_answers_queries():
    masks = _random_masks(5)
    shuffled = {index: masks[index] for index in (3, 0, 5, 1, 4, 2)}
    track = Track.from_masks("dog", shuffled, fps=25.0, obj_id=4)
    assert track.indices == (0, 1, 2, 3, 4, 5)
    assert track.frame(2).time == pytest.approx(2 / 25)
    assert np.array_equal(track.mask_at(3), masks[3])
    assert track.visible_span() == (0, 4)
    assert not track.frame(5).visible and track.frame(5).score == 0.0 and track.frame(0).score == 1.0
    with pytest.raises(InvalidInputError, match="no entry for frame 9"):
        track.mask_at(9)


def test_track_from_masks_uses_given_times_and_needs_some():
    masks = _random_masks(2)
    track = Track.from_masks("dog", masks, times={0: 0.0, 1: 0.5, 2: 1.25})
    assert [f.time for f in track.frames] == [0.0, 0.5, 1.25]
    with pytest.raises(InvalidInputError, match="times"):
        Track.from_masks("dog", masks)


def test_nearest_frame_for_strided_tracks():
    masks = {index: np.ones((4, 4), bool) for index in (0, 3, 6)}
    track = Track.from_masks("a", masks, fps=10)
    assert [track.nearest_frame(i).index for i in range(8)] == [0, 0, 3, 3, 3, 6, 6, 6]


def test_track_rejects_duplicate_frames_and_mixed_sizes():
    a = TrackFrame.from_mask(1, 0.0, np.ones((4, 4), bool))
    with pytest.raises(InvalidInputError, match="two entries"):
        Track("a", 1, (a, a))
    b = TrackFrame.from_mask(2, 0.0, np.ones((5, 4), bool))
    with pytest.raises(InvalidInputError, match="mixes mask sizes"):
        Track("a", 1, (a, b))


def test_tracks_json_round_trip_is_exact(tmp_path):
    tracks = [
        Track.from_masks("dog", _random_masks(4, seed=1), fps=29.97, obj_id=1, scores={0: 0.123456789}),
        Track.from_masks("cat", _random_masks(3, seed=2), fps=29.97, obj_id=2),
    ]
    doc = tracks_to_json(tracks, meta={"sam2": "facebook/sam2.1-hiera-tiny"})
    assert doc["version"] == TRACKS_VERSION and doc["meta"]["sam2"] == "facebook/sam2.1-hiera-tiny"
    text = json.dumps(doc)
    assert tracks_from_json(text) == tracks
    assert tracks_from_json(json.loads(text)) == tracks

    path = tmp_path / "out" / "tracks.json"
    save_tracks(path, tracks)
    assert load_tracks(path) == tracks


def test_saved_tracks_file_is_the_tracks_document(tmp_path):
    tracks = [
        Track.from_masks("dog \u00e9", _random_masks(5, seed=3), fps=25, obj_id=1),
        Track(name="never", obj_id=2, frames=()),
    ]
    meta = {"video": {"path": "clip.mp4", "fps": 25.0}, "note": 'caf\u00e9 "quoted"'}
    path = tmp_path / "tracks.json"
    save_tracks(path, tracks, meta)
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(tracks_to_json(tracks, meta)))
    assert load_tracks(path) == tracks
    save_tracks(path, [])
    assert load_tracks(path) == []


def test_saving_tracks_streams_and_stays_atomic(tmp_path):
    import tracemalloc

    masks = _random_masks(1, height=360, width=640)
    frame = TrackFrame.from_mask(0, 0.0, masks[0])
    many = Track("long", 1, tuple(TrackFrame(i, i / 30, frame.rle, frame.box, 0.5) for i in range(3000)))
    path = tmp_path / "tracks.json"
    tracemalloc.start()
    try:
        save_tracks(path, [many])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert size > 2_000_000
    assert peak < size / 4  # never the whole document (string or dicts) in memory at once
    assert load_tracks(path) == [many]

    def failing():
        yield many
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        save_tracks(path, failing())
    assert path.stat().st_size == size and load_tracks(path) == [many]  # the older file is kept whole
    assert [p.name for p in tmp_path.iterdir()] == ["tracks.json"]  # no temporary file left


def test_tracks_json_rejects_other_documents():
    with pytest.raises(InvalidInputError, match="not a garvideo tracks document"):
        tracks_from_json({"tracks": []})
    with pytest.raises(InvalidInputError, match="version 99"):
        tracks_from_json({"format": "garvideo.tracks", "version": 99, "tracks": []})
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        tracks_from_json("{nope")
    with pytest.raises(InvalidInputError, match="malformed"):
        tracks_from_json({"format": "garvideo.tracks", "version": TRACKS_VERSION, "tracks": [{"name": "a"}]})


def _doc(frame_changes=None, **track_changes):
    """A valid one-track document, with some of its track's or first frame's fields replaced."""
    frame = TrackFrame.from_mask(0, 0.0, np.pad(np.ones((2, 3), bool), 1)).to_dict()  # 4x5 mask, box (1,1,3,2)
    frame.update(frame_changes or {})
    track = {"name": "a", "obj_id": 1, "frames": [frame], **track_changes}
    return {"format": "garvideo.tracks", "version": TRACKS_VERSION, "tracks": [track]}


@pytest.mark.parametrize(
    "document, message",
    [
        ({"format": "garvideo.tracks", "version": TRACKS_VERSION}, 'needs a "tracks" list, got None'),
        ({"format": "garvideo.tracks", "version": TRACKS_VERSION, "tracks": 5}, 'needs a "tracks" list, got 5'),
        ({"format": "garvideo.tracks", "version": TRACKS_VERSION, "tracks": [5]}, "expected a JSON object, got 5"),
        (_doc(frames=5), "frames must be a list, got 5"),
        (_doc(frames=["x"]), "a track frame must be a JSON object, got 'x'"),
        (_doc(frames=[{}]), "no 'rle'"),
        (_doc({"box": [1, 2]}), r"a box must be 4 numbers .*got \[1, 2\]"),
        (_doc({"box": "1234"}), "a box must be 4 numbers"),
        (_doc({"box": [1, 1, 3, 2.5]}), "4 whole pixel numbers"),
        (_doc({"box": [1, 1, 5, 2]}), r"does not fit a 5x4 mask"),
        (_doc({"box": [3, 1, 1, 2]}), r"does not fit"),
        (_doc({"visible": False}), "says visible=False but its box is"),
        (_doc({"visible": "yes"}), "visible must be true or false"),
        (_doc({"box": None, "visible": True}), "says visible=True but its box is None"),
        (_doc({"rle": {"size": [4], "counts": "x"}}), r"RLE size must be \[height, width\]"),
        (_doc({"rle": "x"}), "rle must be an object"),
        (_doc({"time": "noon"}), "malformed track frame"),
    ],
)
def test_malformed_tracks_documents_are_invalid_input(document, message):
    with pytest.raises(InvalidInputError, match=message):
        tracks_from_json(document)


def test_visibility_follows_the_box_and_old_files_still_read():
    document = _doc()
    [track] = tracks_from_json(document)
    assert track.frames[0].visible and track.frames[0].to_dict()["visible"] is True
    del document["tracks"][0]["frames"][0]["visible"]  # 'visible' is written for readers but not needed
    assert tracks_from_json(document) == [track]
    gone = tracks_from_json(_doc({"box": None, "visible": False}))[0].frames[0]
    assert not gone.visible and gone.to_dict()["visible"] is False
    assert tracks_from_json(_doc({"box": None, "visible": None}))[0].frames[0] == gone
    with pytest.raises(InvalidInputError, match="says visible=True"):
        TrackFrame(0, 0.0, {"size": [4, 5], "counts": "T4"}, None, 0.0, True)


def test_load_tracks_reports_unreadable_files_in_one_line(tmp_path):
    binary = tmp_path / "tracks.bin"
    binary.write_bytes(bytes(range(256)))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(_doc({"box": [1, 2]})))
    cases = [
        (tmp_path, "is a folder"),
        (binary, "not UTF-8 text"),
        (tmp_path / "missing.json", "not found"),
        (wrong, r"wrong.json: malformed track frame .*a box must be 4 numbers"),
    ]
    for path, message in cases:
        with pytest.raises(InvalidInputError, match=message) as caught:
            load_tracks(path)
        assert "\n" not in str(caught.value)
