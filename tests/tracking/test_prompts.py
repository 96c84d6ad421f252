"""Region prompts: validation, fitting to a frame, and their JSON form (to_dict / from_dict)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from garvideo.errors import InvalidInputError
from garvideo.masks import decode_rle
from garvideo.timecode import When
from garvideo.tracking import RegionPrompt


def _blob(height=40, width=60):
    mask = np.zeros((height, width), dtype=bool)
    mask[10:20, 15:35] = True
    return mask


# -- RegionPrompt ---------------------------------------------------------------------


def test_prompt_needs_exactly_one_region_kind():
    with pytest.raises(InvalidInputError, match="exactly one"):
        RegionPrompt(name="a", when=When(frame=0))
    with pytest.raises(InvalidInputError, match="exactly one"):
        RegionPrompt(name="a", when=When(frame=0), box=(0, 0, 5, 5), mask=_blob())


def test_prompt_rejects_inverted_box_empty_mask_and_all_negative_clicks():
    with pytest.raises(InvalidInputError, match="x1 < x2"):
        RegionPrompt.from_box("a", (10, 0, 5, 5), 0)
    with pytest.raises(InvalidInputError, match="empty"):
        RegionPrompt.from_mask("a", np.zeros((4, 4), bool), 0)
    with pytest.raises(InvalidInputError, match="positive click"):
        RegionPrompt.from_points("a", [(1, 1)], 0, labels=[0])
    with pytest.raises(InvalidInputError, match="2 clicks but 1 labels"):
        RegionPrompt.from_points("a", [(1, 1), (2, 2)], 0, labels=[1])
    with pytest.raises(InvalidInputError, match="non-empty name"):
        RegionPrompt.from_box("  ", (0, 0, 5, 5), 0)


def test_prompt_normalises_values_and_defaults_labels_to_positive():
    prompt = RegionPrompt.from_points("dog", [(1, 2), (3.5, 4)], "2.5s")
    assert prompt.points == ((1.0, 2.0), (3.5, 4.0))
    assert prompt.labels == (1, 1)
    assert prompt.when == When(time=2.5)
    assert prompt.frame is None
    assert prompt.kind == "points"
    assert RegionPrompt.from_box("dog", [1, 2, 3, 4], 7).when == When(frame=7)


def test_prompt_mask_is_a_private_read_only_copy():
    source = _blob()
    prompt = RegionPrompt.from_mask("m", source, 0)
    source[:] = False
    assert prompt.mask.sum() == 200
    with pytest.raises(ValueError):
        prompt.mask[0, 0] = True


def test_time_prompts_resolve_to_frames():
    prompt = RegionPrompt.from_box("dog", (1, 2, 30, 40), When(time=2.0))
    resolved = prompt.resolve(lambda seconds: int(seconds * 25))
    assert resolved.when == When(frame=50) and resolved.box == prompt.box
    assert prompt.at_frame(3).frame == 3
    assert resolved.resolve(lambda seconds: 999) is resolved  # already on a frame


def test_fit_to_frame_clips_a_box_that_sticks_out():
    prompt = RegionPrompt.from_box("a", (-10, 5, 70, 30), 0)
    from garvideo.tracking import RegionClippedWarning

    with pytest.warns(RegionClippedWarning, match=r"'a' -10,5,70,30 reaches outside the 60x40 frame: using 0,5,60,30"):
        assert prompt.fit_to_frame(width=60, height=40).box == (0.0, 5.0, 60.0, 30.0)
    inside = RegionPrompt.from_box("a", (1, 1, 5, 5), 0)
    assert inside.fit_to_frame(60, 40) is inside


@pytest.mark.parametrize("box", [(61, 0, 90, 10), (-20, -20, -1, 10), (10, 40, 20, 60)])
def test_fit_to_frame_rejects_a_box_outside_the_frame(box):
    with pytest.raises(InvalidInputError, match="outside the 60x40 frame"):
        RegionPrompt.from_box("a", box, 0).fit_to_frame(60, 40)


def test_fit_to_frame_rejects_clicks_outside_and_masks_of_another_size():
    with pytest.raises(InvalidInputError, match=r"click \(61, 3\)"):
        RegionPrompt.from_points("a", [(5, 5), (61, 3)], 0).fit_to_frame(60, 40)
    with pytest.raises(InvalidInputError, match="60x40 but the video frames are 80x40"):
        RegionPrompt.from_mask("a", _blob(), 0).fit_to_frame(80, 40)
    assert RegionPrompt.from_points("a", [(60, 40)], 0).fit_to_frame(60, 40).points == ((60.0, 40.0),)


def test_prompt_dict_and_equality():
    box = RegionPrompt.from_box("a", (1, 2, 3, 4), 5, obj_id=3)
    clicks = RegionPrompt.from_points("b", [(1, 2), (3, 4)], "1:02.5", labels=[1, 0])
    mask = RegionPrompt.from_mask("c", _blob(), 9)
    assert box.to_dict() == {"name": "a", "obj_id": 3, "when": {"frame": 5}, "box": [1.0, 2.0, 3.0, 4.0]}
    assert clicks.to_dict() == {
        "name": "b",
        "when": {"time": 62.5},
        "points": [[1.0, 2.0], [3.0, 4.0]],
        "labels": [1, 0],
    }
    described = mask.to_dict()
    assert described["when"] == {"frame": 9} and np.array_equal(decode_rle(described["mask"]), _blob())
    assert mask == RegionPrompt.from_mask("c", _blob(), 9) and mask != RegionPrompt.from_mask("c", ~_blob(), 9)
    assert box != box.at_frame(6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RegionPrompt.from_points("a", [1, 2], 0), r"list of \(x, y\) pairs, got a click 1"),
        (lambda: RegionPrompt.from_points("a", 5, 0), r"list of \(x, y\) pairs, got 5"),
        (lambda: RegionPrompt.from_points("a", [(1, 2, 3)], 0), r"got a click \(1, 2, 3\)"),
        (lambda: RegionPrompt.from_points("a", [(1, "x")], 0), "must be numbers"),
        (lambda: RegionPrompt.from_points("a", [(1, 2)], 0, labels=1), "labels of 'a' must be 1s and 0s"),
        (lambda: RegionPrompt.from_box("a", 5, 0), "the box of 'a' must be numbers"),
        (lambda: RegionPrompt.from_box("a", "1234", 0), "must be numbers, got the text '1234'"),
        (lambda: RegionPrompt.from_box("a", (1, 2, 3), 0), "needs 4 numbers"),
        (lambda: RegionPrompt.from_box("a", (1, 2, 3, 4), 2.5), "a prompt's moment must be"),
    ],
)
def test_constructors_turn_malformed_regions_into_invalid_input(make, message):
    with pytest.raises(InvalidInputError, match=message):
        make()


# -- the JSON form: from_dict reads what to_dict writes ----------------------------------------------

_names = st.text(st.characters(blacklist_categories=("C",), blacklist_characters="<>"), min_size=1, max_size=12).filter(
    str.strip
)
_whens = st.one_of(
    st.integers(0, 10**6).map(lambda frame: When(frame=frame)),
    st.floats(0, 1e5, allow_nan=False, allow_infinity=False).map(lambda time: When(time=time)),
)
_coordinates = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
_sizes = st.floats(1e-3, 1e4, allow_nan=False, allow_infinity=False)
_obj_ids = st.none() | st.integers(0, 1000)


@st.composite
def _boxes(draw):
    x1, y1 = draw(_coordinates), draw(_coordinates)
    return RegionPrompt.from_box(
        draw(_names), (x1, y1, x1 + draw(_sizes), y1 + draw(_sizes)), draw(_whens), draw(_obj_ids)
    )


@st.composite
def _clicks(draw):
    points = draw(st.lists(st.tuples(_coordinates, _coordinates), min_size=1, max_size=5))
    labels = draw(
        st.lists(st.sampled_from([0, 1]), min_size=len(points), max_size=len(points)).filter(lambda ls: 1 in ls)
    )
    return RegionPrompt.from_points(draw(_names), points, draw(_whens), labels, draw(_obj_ids))


@st.composite
def _masks(draw):
    shape = draw(st.tuples(st.integers(1, 12), st.integers(1, 12)))
    mask = draw(arrays(bool, shape).filter(lambda m: m.any()))
    return RegionPrompt.from_mask(draw(_names), mask, draw(_whens), draw(_obj_ids))


@st.composite
def _texts(draw):
    phrase = draw(st.text(min_size=1, max_size=30).filter(str.strip))
    return RegionPrompt.from_text(draw(_names), phrase, draw(st.none() | _whens), draw(_obj_ids))


_prompts = st.one_of(_boxes(), _clicks(), _masks(), _texts())


@settings(max_examples=300, deadline=None)
@given(_prompts)
def test_from_dict_reads_back_what_to_dict_writes(prompt):
    written = prompt.to_dict()
    assert RegionPrompt.from_dict(written) == prompt
    # through a JSON file too: what a result document holds reads back to the same prompt and the same dict
    as_json = json.loads(json.dumps(written))
    assert RegionPrompt.from_dict(as_json) == prompt
    assert RegionPrompt.from_dict(as_json).to_dict() == written == as_json


def test_from_dict_fills_what_to_dict_leaves_to_defaults():
    # labels left out are all positive; a text without "when" is searched for, as from_text(name, text) is
    clicks = RegionPrompt.from_dict({"name": "b", "when": {"frame": 0}, "points": [[1, 2], [3, 4]]})
    assert clicks == RegionPrompt.from_points("b", [(1, 2), (3, 4)], 0)
    assert RegionPrompt.from_dict({"name": "car", "text": "a red car"}) == RegionPrompt.from_text("car", "a red car")
    time = RegionPrompt.from_dict({"name": "a", "when": {"time": 2}, "box": [1, 2, 3, 4]})
    assert time.when == When(time=2.0) and time.box == (1.0, 2.0, 3.0, 4.0)


def test_from_dict_reads_a_mask_path_only_when_told_how():
    read = []
    prompt = RegionPrompt.from_dict(
        {"name": "m", "when": {"frame": 1}, "mask": "m.png"}, read_mask=lambda path: read.append(path) or _blob()
    )
    assert read == ["m.png"] and np.array_equal(prompt.mask, _blob())
    with pytest.raises(InvalidInputError, match=r"mask of region 'm' must be COCO RLE .* as result files write it"):
        RegionPrompt.from_dict({"name": "m", "when": {"frame": 1}, "mask": "m.png"})


_BOX = [1, 2, 30, 40]
_EMPTY_RLE = RegionPrompt.from_mask("e", np.eye(3, dtype=bool), 0).to_dict()["mask"] | {"counts": "9"}


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "a region must be a JSON object such as"),
        ({"when": {"frame": 0}, "box": _BOX}, 'a region needs a "name"'),
        ({"name": "dog", "frame": 12, "box": _BOX}, r'the moment goes in "when": write "when": \{"frame": 12\}'),
        ({"name": "dog", "time": 4.5, "box": _BOX}, r'write "when": \{"time": 4.5\}'),
        ({"name": "dog", "when": {"frame": 0}, "box": _BOX, "colour": "red"}, r"unknown keys \['colour'\]"),
        ({"name": "dog", "box": _BOX}, r'region \'dog\' needs "when": \{"frame": INDEX\}'),
        ({"name": "dog", "when": None, "box": _BOX}, 'needs "when"'),
        ({"name": "dog", "when": 12, "box": _BOX}, r'"when" of region \'dog\' must be .* got 12'),
        ({"name": "dog", "when": "4.5s", "box": _BOX}, r'must be \{"frame": INDEX\} or \{"time": SECONDS\}'),
        ({"name": "dog", "when": {"frame": 1, "time": 2}, "box": _BOX}, r'must be \{"frame": INDEX\}'),
        ({"name": "dog", "when": {"frame": 1.5}, "box": _BOX}, "frame of region 'dog' must be a whole number"),
        ({"name": "dog", "when": {"frame": True}, "box": _BOX}, "must be a whole number, got true"),
        ({"name": "dog", "when": {"frame": -1}, "box": _BOX}, "frame index must be >= 0"),
        (
            {"name": "dog", "when": {"frame": None}, "box": _BOX},
            "frame of region 'dog' must be a whole number, got null",
        ),
        ({"name": "dog", "when": When(frame=3), "box": _BOX}, r'"when" of region \'dog\' must be .*got "When\(frame=3'),
        ({"name": "dog", "when": {"time": "4.5s"}, "box": _BOX}, "time of region 'dog' must be a number of seconds"),
        ({"name": "dog", "when": {"time": -1}, "box": _BOX}, "time must be a finite number of seconds >= 0"),
        ({"name": "dog", "when": {"frame": 0}, "box": ["1", "2", "3", "4"]}, r"box .* list of numbers \[x1, y1"),
        ({"name": "dog", "when": {"frame": 0}, "box": [1, 2, 3]}, "needs 4 numbers"),
        ({"name": "dog", "when": {"frame": 0}, "box": [5, 2, 3, 4]}, "x1 < x2"),
        ({"name": "dog", "when": {"frame": 0}, "points": [1, 2]}, r"each click of region 'dog' .* \[x, y\], got 1"),
        ({"name": "dog", "when": {"frame": 0}, "points": [[1, 2, 3]]}, r"got a click \(1, 2, 3\)"),
        ({"name": "dog", "when": {"frame": 0}, "points": "1,2"}, r"points of region 'dog' must be a list of \[x, y\]"),
        ({"name": "dog", "when": {"frame": 0}, "points": [[1, 2]], "labels": [2]}, r"1 \(object\) and 0"),
        ({"name": "dog", "when": {"frame": 0}, "points": [[1, 2]], "labels": [True]}, r"1 \(object\) and 0"),
        ({"name": "dog", "when": {"frame": 0}, "points": [[1, 2]], "labels": [0]}, "all negative"),
        ({"name": "dog", "when": {"frame": 0}, "points": [[1, 2]], "labels": [1, 0]}, "1 clicks but 2 labels"),
        ({"name": "dog", "when": {"frame": 0}, "box": _BOX, "labels": [1]}, "click labels but no clicks"),
        ({"name": "dog", "when": {"frame": 0}, "mask": [[1]]}, "mask of region 'dog' must be COCO RLE"),
        ({"name": "dog", "when": {"frame": 0}, "mask": {"size": [2, 2]}}, "must be COCO RLE"),
        ({"name": "dog", "when": {"frame": 0}, "mask": {"size": [2, 2], "counts": "zzz"}}, "mask of .*malformed RLE"),
        ({"name": "dog", "when": {"frame": 0}, "mask": _EMPTY_RLE}, "mask of 'dog' is empty"),
        ({"name": "dog", "when": {"frame": 0}, "text": 3}, "\"text\" of region 'dog' must be a phrase"),
        ({"name": "dog", "when": {"frame": 0}, "text": " "}, "text of region 'dog' is empty"),
        ({"name": "dog", "when": {"frame": 0}, "text": "a dog", "box": _BOX}, "exactly one of a box, points"),
        ({"name": "dog", "when": {"frame": 0}}, "exactly one of a box, points"),
        ({"name": "dog", "when": {"frame": 0}, "box": _BOX, "obj_id": "3"}, "obj_id\" of region 'dog' must be a whole"),
        ({"name": "a<b", "when": {"frame": 0}, "box": _BOX}, "'<'"),
        ({"name": 7, "when": {"frame": 0}, "box": _BOX}, "a region name must be text"),
    ],
)
def test_from_dict_says_what_to_write_for_a_malformed_region(data, message):
    with pytest.raises(InvalidInputError, match=message):
        RegionPrompt.from_dict(data)
