"""Region prompts: validation, fitting to a frame, and their JSON form."""

from __future__ import annotations

import numpy as np
import pytest

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
