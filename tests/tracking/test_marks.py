"""The one text grammar for marks (garvideo/tracking/marks.py): the CLI's --box, --points, --mask and --text values,
and the bodies the web app reads with it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from garvideo.errors import GarvideoError, InvalidInputError
from garvideo.masks import read_mask_image
from garvideo.timecode import When
from garvideo.tracking.marks import (
    free_names,
    mark_prompt,
    parse_box_prompt,
    parse_mask_prompt,
    parse_points_prompt,
    parse_region_prompts,
    parse_text_prompt,
)


def _blob(height=40, width=60):
    mask = np.zeros((height, width), dtype=bool)
    mask[10:20, 15:35] = True
    return mask


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
        assert np.array_equal(read_mask_image(path), mask), path
    prompt = parse_mask_prompt(f"dog={grey}@3")
    assert prompt.name == "dog" and prompt.when == When(frame=3) and np.array_equal(prompt.mask, mask)


def test_parse_mask_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="missing.png: no such file"):
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


def test_default_names_skip_the_names_taken():
    names = free_names({"region1", "region3"})
    assert [next(names) for _ in range(3)] == ["region2", "region4", "region5"]


@pytest.mark.parametrize(
    "kind, body",
    [("box", " 27, 91,137,175 "), ("box", "1.5,2,30,40.25"), ("points", "80,120;!300,40"), ("points", "~ 5,6; 7,8 ;")],
)
def test_a_body_on_a_frame_is_the_option_naming_it_there(kind, body):
    parse = {"box": parse_box_prompt, "points": parse_points_prompt}[kind]
    assert mark_prompt(kind, "cat", body, 7) == parse(f"cat={body}@7")


@pytest.mark.parametrize(
    "kind, body", [("box", "1,2,3"), ("box", "1,2,x,40"), ("box", "1,2,nan,40"), ("points", "1,2,3"), ("points", ";;")]
)
def test_a_bad_body_gets_the_options_message(kind, body):
    parse = {"box": parse_box_prompt, "points": parse_points_prompt}[kind]
    with pytest.raises(InvalidInputError) as from_option:
        parse(f"cat={body}@0")
    with pytest.raises(InvalidInputError) as from_body:
        mark_prompt(kind, "cat", body, 0)
    assert str(from_body.value) == str(from_option.value)
    assert str(from_body.value).startswith(f"--{kind} 'cat={body}@0': ")


def test_text_marks_and_unknown_kinds():
    assert mark_prompt("text", "car", "a red car", None) == parse_text_prompt("car=a red car")
    assert mark_prompt("text", "car", "a red car", 12) == parse_text_prompt("car=a red car@12")
    with pytest.raises(InvalidInputError, match="the phrase is empty"):
        mark_prompt("text", "car", "  ", None)
    with pytest.raises(InvalidInputError, match="holds '.'; on the command line"):
        mark_prompt("box", "car.2", "1,2,3,4", 0)
    with pytest.raises(InvalidInputError, match="unknown region kind 'blob'"):
        mark_prompt("blob", "car", "1,2,3,4", 0)
