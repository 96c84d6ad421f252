"""The processor: tiling, prompt maps, boxes, input coercion, prompt assembly and its errors."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode

from garvideo.errors import InvalidInputError
from garvideo.model import TooManyRegionsError, VideoPromptTemplate, choose_grid, load_mask, load_rgb, region_box
from garvideo.model.image_processing_gar import prompt_map, tile_image


@pytest.mark.parametrize("max_tiles", [1, 4, 6, 16, 36])
def test_grid_choice_matches_transformers_perception_lm(max_tiles):
    # An independent implementation of the same rule: transformers' own Perception-LM image processor.
    module = pytest.importorskip("transformers.models.perception_lm.image_processing_perception_lm")
    theirs = module.PerceptionLMImageProcessor(max_num_tiles=max_tiles)
    if not hasattr(theirs, "_fit_image_to_canvas"):
        pytest.skip("this transformers version has no Perception-LM grid helpers")
    sizes = [(500, 300), (300, 500), (448, 448), (1000, 100), (100, 1000), (1920, 1080), (37, 2000), (900, 901)]
    for width, height in sizes:
        expected = theirs._fit_image_to_canvas(img_width=width, img_height=height, tile_size=448)
        if expected is None:
            expected = theirs._find_closest_aspect_ratio(img_width=width, img_height=height, tile_size=448)
        expected = (1, 1) if max_tiles == 1 else tuple(expected)
        assert choose_grid(width, height, 448, max_tiles) == expected, (width, height)


def test_tiles_are_thumbnail_then_grid_row_by_row():
    # A 2x3 grid of flat colours: with NEAREST every tile is one colour, in row-major order.
    colours = torch.arange(6, dtype=torch.uint8).reshape(2, 3) * 40
    image = colours.repeat_interleave(10, 0).repeat_interleave(10, 1).unsqueeze(0)  # (1, 20, 30)
    tiles = tile_image(image, (3, 2), 8, InterpolationMode.NEAREST, thumbnail=True)
    assert tiles.shape == (7, 1, 8, 8)
    assert torch.equal(tiles[0], torch.nn.functional.interpolate(image[None].float(), size=(8, 8)).to(torch.uint8)[0])
    for i, colour in enumerate(colours.flatten()):
        assert torch.all(tiles[1 + i] == colour)


def test_prompt_map_first_region_wins_on_overlap():
    a = np.zeros((4, 5), bool)
    a[0:2, 0:3] = True
    b = np.zeros((4, 5), bool)
    b[1:3, 2:5] = True
    values = prompt_map([a, b], [2, 0], no_prompt_id=5)
    assert values.dtype == np.uint8
    assert values.tolist() == [[2, 2, 2, 5, 5], [2, 2, 2, 0, 0], [5, 5, 0, 0, 0], [5, 5, 5, 5, 5]]


def test_region_box_is_normalised_with_inclusive_maxima():
    mask = np.zeros((10, 20), bool)
    mask[2:5, 4:9] = True
    assert region_box(mask) == (4 / 20, 2 / 10, 8 / 20, 4 / 10)


def test_images_of_any_mode_become_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert np.array_equal(load_rgb(grey), np.repeat(grey[:, :, None], 3, 2))
    assert np.array_equal(load_rgb(Image.fromarray(grey)), np.repeat(grey[:, :, None], 3, 2))
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3] = 255  # one opaque red pixel, the rest transparent -> white
    rgb = load_rgb(rgba)
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[1, 1].tolist() == [255, 255, 255]
    palette = Image.fromarray(grey).convert("P")
    assert load_rgb(palette).shape == (3, 4, 3)
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    assert np.array_equal(load_rgb(path), load_rgb(grey))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(levels).save(path)
    assert Image.open(path).mode == "I;16"
    assert load_rgb(path)[0, :, 0].tolist() == [0, 1, 128, 255]
    assert load_rgb(path).shape == (1, 4, 3)
    with pytest.raises(InvalidInputError, match="32-bit integer pixels"):
        load_rgb(Image.fromarray(levels.astype(np.int32)))
    with pytest.raises(InvalidInputError, match="floating-point pixels"):
        load_rgb(Image.fromarray(levels.astype(np.float32)))


def test_rgb_arrays_are_shared_when_writable_and_copied_when_read_only():
    # Tiling hands the array to torch.from_numpy, which warns on read-only memory (np.asarray of a PIL image).
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert load_rgb(frame) is frame
    read_only = np.asarray(Image.fromarray(frame))
    assert not read_only.flags.writeable
    loaded = load_rgb(read_only)
    assert loaded.flags.writeable and np.array_equal(loaded, frame)
    assert load_rgb(Image.fromarray(frame)).flags.writeable


def test_unreadable_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        load_rgb(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(InvalidInputError, match="not a readable image"):
        load_rgb(junk)
    with pytest.raises(InvalidInputError, match="uint8"):
        load_rgb(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InvalidInputError, match="2-D"):
        load_mask(np.zeros((4, 4, 3), bool))


def test_masks_from_arrays_and_pngs(tmp_path):
    m = np.zeros((6, 7), np.uint8)
    m[1:3, 2:4] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    expected = m > 0
    for given in (m, m > 0, (m > 0).astype(np.int64), tmp_path / "m.png", str(tmp_path / "m.png")):
        assert np.array_equal(load_mask(given), expected)


def test_caption_prompt_structure(gar, scene):
    image, masks = scene
    processor = gar.processor
    inputs = processor.prepare_caption(image, masks["red"])
    assert inputs.input_ids[0] == inputs.input_ids[1] == processor.bos_token_id  # quirk Q6, on by default
    assert len(inputs.runs) == 1
    run = inputs.runs[0]
    assert run.prompt_index == 1 and run.token_id == processor.crop_tokens_ids[1]
    assert torch.all(inputs.input_ids[run.start : run.start + run.length] == run.token_id)
    assert run.length == processor.tokens_per_tile == (224 // 14 // 2) ** 2
    image_tokens = int((inputs.input_ids == processor.image_token_id).sum())
    assert image_tokens == inputs.images[0].num_tiles * processor.tokens_per_tile
    single = processor.assemble("hello", [], [], [], double_bos=False)
    assert single.input_ids[0] == processor.bos_token_id and single.input_ids[1] != processor.bos_token_id


def test_question_prompt_order_boxes_and_map(gar, scene):
    image, masks = scene
    processor = gar.processor
    inputs = processor.prepare_question(
        image, [masks["green"], masks["red"]], "Is <Prompt0> on <Prompt1>?", names=["green", "red"]
    )
    assert [r.prompt_index for r in inputs.runs] == [0, 1]
    assert [r.box for r in inputs.runs] == [region_box(masks["green"]), region_box(masks["red"])]
    overlap = masks["green"] & masks["red"]
    assert np.all(inputs.images[0].prompt_map[overlap] == 0)  # the first given region wins
    assert np.all(inputs.images[0].prompt_map[~(masks["green"] | masks["red"])] == processor.prompt_numbers)
    assert "There are some objects I am curious about: <Prompt0>; <Prompt1>; \n<Prompt0>: " in inputs.text


def test_region_errors(gar, scene):
    image, masks = scene
    processor = gar.processor
    empty = np.zeros_like(masks["red"])
    with pytest.raises(InvalidInputError, match="empty"):
        processor.prepare_caption(image, empty)
    with pytest.raises(InvalidInputError, match="image's size"):
        processor.prepare_caption(image, masks["red"][:-1])
    with pytest.raises(TooManyRegionsError, match="at most 5"):
        processor.prepare_question(image, [masks["red"]] * 6, "What?")
    with pytest.raises(InvalidInputError, match="<Prompt3>"):
        processor.prepare_question(image, [masks["red"]], "Is <Prompt3> red?")
    with pytest.raises(InvalidInputError, match="empty"):
        processor.prepare_question(image, [masks["red"]], "   ")
    with pytest.raises(InvalidInputError, match="special token"):
        processor.prepare_question(image, [masks["red"]], "<|reserved_special_token_3|>?")


def test_reference_question_with_more_regions_than_prompts(gar, scene):
    image, masks = scene
    processor = gar.processor
    # The sixth region covers pixels no other region does (the bottom-right corner), so drawing it would show.
    sixth = np.zeros_like(masks["red"])
    sixth[125:145, 175:195] = True
    five = [masks["red"], masks["green"], masks["blue"], masks["red"], masks["green"]]
    assert not np.any(sixth & np.logical_or.reduce(five))
    six = five + [sixth]
    question = "Which of " + ", ".join(f"<Prompt{k}>" for k in range(6)) + " is red?"
    with pytest.raises(TooManyRegionsError):
        processor.prepare_reference_question(image, six, question)
    inputs = processor.prepare_reference_question(image, six, question, extra_regions="reference")
    # As the reference: the sixth region is listed with a placeholder run but neither drawn nor replayed.
    assert [r.prompt_index for r in inputs.runs] == [0, 1, 2, 3, 4]
    assert "<Prompt5>: <|reserved_special_token_7|>" in inputs.text
    drawn = inputs.images[0].prompt_map
    assert np.all(drawn[sixth] == processor.prompt_numbers)
    question_of_five = "Which of " + ", ".join(f"<Prompt{k}>" for k in range(5)) + " is red?"
    of_five = processor.prepare_reference_question(image, five, question_of_five)
    np.testing.assert_array_equal(drawn, of_five.images[0].prompt_map)
    with pytest.raises(InvalidInputError, match="masks"):
        processor.prepare_reference_question(image, six[:2], "Is <Prompt0> near <Prompt2>?")


def _frames(scene, count):
    image, masks = scene
    return [np.roll(image, 5 * f, axis=1) for f in range(count)], [
        np.roll(masks["red"], 5 * f, axis=1) for f in range(count)
    ]


def test_video_prompt_runs_per_region_and_frame(gar, scene):
    processor = gar.processor
    frames, red = _frames(scene, 3)
    green = [np.roll(scene[1]["green"], 5 * f, axis=1) for f in range(3)]
    green[1] = np.zeros_like(green[1])  # not visible on frame 1
    inputs = processor.prepare_video(frames, [red, green], "How do <Prompt0> and <Prompt1> move?")
    assert [(r.image_index, r.prompt_index) for r in inputs.runs] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    assert [r.token_id for r in inputs.runs] == [processor.placeholder_token_id(f) for f in (0, 0, 1, 2, 2)]
    assert "Frame 2: <Prompt0>: <|reserved_special_token_3|>" in inputs.text
    assert "<Prompt1>: not visible\nFrame 3" in inputs.text
    assert len(inputs.images) == 3 and all(im.num_tiles == 1 and not im.has_thumbnail for im in inputs.images)
    assert not np.any(inputs.images[1].prompt_map == 1)
    assert inputs.runs[3].box == region_box(red[2])


def test_video_tiling_options_and_template(gar, scene):
    processor = gar.processor
    frames, red = _frames(scene, 2)
    tiled = processor.prepare_video(frames, [red], "What?", tiling="thumb+tile")
    assert all(im.has_thumbnail and im.num_tiles == 1 + im.grid[0] * im.grid[1] for im in tiled.images)
    custom = VideoPromptTemplate(prompt="Watch {objects}.\n{frames}{question}", frame="t={time}: {regions}\n")
    inputs = processor.prepare_video(frames, [red], "What?", template=custom, times=[0.0, 0.25])
    assert "Watch <Prompt0>.\nt=0.00s: <|reserved_special_token_2|>" in inputs.text
    with pytest.raises(InvalidInputError, match="exactly once"):
        processor.prepare_video(frames, [red], "What?", template=VideoPromptTemplate(only_region="{crop}{crop}"))


def test_video_errors(gar, scene):
    processor = gar.processor
    frames, red = _frames(scene, 3)
    empty = [np.zeros_like(m) for m in red]
    with pytest.raises(InvalidInputError, match="not visible on any"):
        processor.prepare_video(frames, [empty], "What?", names=["ghost"])
    with pytest.raises(InvalidInputError, match="one per frame"):
        processor.prepare_video(frames, [red[:2]], "What?")
    with pytest.raises(TooManyRegionsError):
        processor.prepare_video(frames, [red] * 6, "What?")
    with pytest.raises(InvalidInputError, match="image's size"):
        processor.prepare_video(frames, [[m[:, :-1] for m in red]], "What?")
    # The tiny tokenizer has placeholder tokens up to <|reserved_special_token_64|>: 63 frames at most.
    assert processor.placeholder_token_id(62) == processor.tokenizer.convert_tokens_to_ids(
        "<|reserved_special_token_64|>"
    )
    with pytest.raises(InvalidInputError, match="fewer frames"):
        processor.placeholder_token_id(63)


def test_decoding_plain_and_as_gar_bench(gar):
    processor = gar.processor
    ids = processor.tokenizer("B\n", add_special_tokens=False)["input_ids"] + [processor.eos_token_id]
    assert processor.decode(ids) == "B"
    assert processor.decode_reference(ids) == "B\n"  # the reference keeps what precedes <|eot_id|>
    assert processor.decode(ids + [processor.pad_token_id]) == "B"
    assert processor.decode_reference(processor.tokenizer(" A ", add_special_tokens=False)["input_ids"]) == "A"


def test_texts_drop_special_tokens_as_the_reference_inference_does(gar):
    processor = gar.processor
    tokenizer = processor.tokenizer
    words = tokenizer("a red box", add_special_tokens=False)["input_ids"]
    reserved = tokenizer.convert_tokens_to_ids("<|reserved_special_token_26|>")
    region = tokenizer.convert_tokens_to_ids("<Prompt0>")
    ids = [reserved, *words[:1], region, *words[1:], processor.image_token_id, processor.eos_token_id, *words]
    text = processor.decode(ids)
    # transformers' own skip_special_tokens=True decoding is the reference's (its demos and caption benchmarks)
    assert text == tokenizer.decode(ids[: ids.index(processor.eos_token_id)], skip_special_tokens=True).strip()
    assert "<|" not in text and "<Prompt0>" not in text and text.replace(" ", "") == "aredbox"
    assert processor.decode(ids, keep_regions=[0]).count("<Prompt0>") == 1
    assert "<Prompt0>" not in processor.decode(ids, keep_regions=[1])
    assert "<|reserved_special_token_26|>" in processor.decode_reference(ids)  # GAR-Bench scores them kept


def test_image_processor_reads_and_writes_the_preprocessor_config(tmp_path, ref_checkpoint):
    from garvideo.model import GARImageProcessor

    assert GARImageProcessor.from_pretrained(ref_checkpoint) == GARImageProcessor(max_num_tiles=4)
    custom = GARImageProcessor(
        tile_size=224, max_num_tiles=6, mode="vanilla", resample=2, image_mean=(0.1, 0.2, 0.3), image_std=(1, 2, 3)
    )
    custom.save_pretrained(tmp_path / "saved")
    assert GARImageProcessor.from_pretrained(tmp_path / "saved") == custom
    assert GARImageProcessor.from_pretrained(tmp_path) == GARImageProcessor()  # no file: the defaults
