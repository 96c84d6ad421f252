"""Region prompts: validation, fitting to a frame, and the CLI region syntax."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from garvideo.errors import GarvideoError, InvalidInputError
from garvideo.masks import decode_rle
from garvideo.timecode import When
from garvideo.tracking import (
    RegionPrompt,
    load_mask_image,
    parse_box_prompt,
    parse_mask_prompt,
    parse_points_prompt,
    parse_region_prompts,
)


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


# -- the CLI region syntax ------------------------------------------------------------------


def test_parse_box_named_and_unnamed():
    prompt = parse_box_prompt("dog=120,80,260.5,210@4.5s")
    assert (prompt.name, prompt.box, prompt.when) == ("dog", (120.0, 80.0, 260.5, 210.0), When(time=4.5))
    unnamed = parse_box_prompt(" 1, 2, 3, 4 @12", default_name="thing")
    assert (unnamed.name, unnamed.box, unnamed.when) == ("thing", (1.0, 2.0, 3.0, 4.0), When(frame=12))
    assert parse_box_prompt("cat=1,2,3,4@1:02.5").when == When(time=62.5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("dog=1,2,3,4", "@WHEN"),
        ("dog=1,2,3@4", "expected 4 comma-separated numbers"),
        ("dog=1,2,x,4@4", "expected 4 comma-separated numbers"),
        ("dog=1,2,3,4@soon", "cannot read 'soon'"),
        ("=1,2,3,4@0", "name before '=' is empty"),
        ("dog=@3", "nothing between"),
        ("dog=5,2,3,4@0", "x1 < x2"),
    ],
)
def test_parse_box_errors_say_what_is_wrong(text, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        parse_box_prompt(text)
    assert isinstance(caught.value, GarvideoError)


def test_parse_points_with_negative_clicks():
    prompt = parse_points_prompt("dog=120,80; 140,90;!60,40 ;~ 10,11@12")
    assert prompt.name == "dog" and prompt.when == When(frame=12)
    assert prompt.points == ((120, 80), (140, 90), (60, 40), (10, 11))
    assert prompt.labels == (1, 1, 0, 0)
    single = parse_points_prompt("5,6@0.5s", default_name="p")
    assert (single.name, single.points, single.labels) == ("p", ((5.0, 6.0),), (1,))


def test_parse_points_errors():
    with pytest.raises(InvalidInputError, match="all negative"):
        parse_points_prompt("dog=!1,2@0")
    with pytest.raises(InvalidInputError, match="expected 2 comma-separated numbers"):
        parse_points_prompt("dog=1,2,3@0")
    with pytest.raises(InvalidInputError, match="no clicks"):
        parse_points_prompt("dog=;;@0")


def test_parse_mask_reads_greyscale_palette_and_colour_pngs(tmp_path):
    mask = _blob()
    grey = tmp_path / "grey.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(grey)
    palette = tmp_path / "palette.png"
    paletted = Image.fromarray(mask.astype(np.uint8) * 2)  # object pixels: palette index 2, DAVIS-style
    paletted.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    assert paletted.mode == "P"
    paletted.save(palette)
    colour = tmp_path / "colour.png"
    rgb = np.zeros(mask.shape + (3,), np.uint8)
    rgb[mask] = (0, 0, 7)
    Image.fromarray(rgb).save(colour)
    for path in (grey, palette, colour):
        assert np.array_equal(load_mask_image(path), mask), path
    prompt = parse_mask_prompt(f"dog={grey}@3")
    assert prompt.name == "dog" and prompt.when == When(frame=3) and np.array_equal(prompt.mask, mask)


def test_parse_mask_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        parse_mask_prompt(f"dog={tmp_path / 'missing.png'}@3")
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(empty)
    with pytest.raises(InvalidInputError, match="no non-zero pixel"):
        parse_mask_prompt(f"{empty}@0")
    not_image = tmp_path / "note.png"
    not_image.write_text("hello")
    with pytest.raises(InvalidInputError, match="cannot read the mask image"):
        parse_mask_prompt(f"{not_image}@0")


def test_parse_region_prompts_names_unnamed_regions_and_keeps_corrections(tmp_path):
    mask_file = tmp_path / "m.png"
    Image.fromarray(_blob().astype(np.uint8)).save(mask_file)
    prompts = parse_region_prompts(
        boxes=["1,2,3,4@0", "region1=5,6,7,8@1", "dog=1,1,9,9@2", "dog=2,2,8,8@30"],
        points=["3,3;!1,1@4"],
        masks=[f"{mask_file}@5"],
    )
    assert [p.name for p in prompts] == ["region2", "region1", "dog", "dog", "region3", "region4"]
    assert [p.kind for p in prompts] == ["box", "box", "box", "box", "points", "mask"]
    assert [p.frame for p in prompts if p.name == "dog"] == [2, 30]
