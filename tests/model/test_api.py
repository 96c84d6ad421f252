"""The user-facing GAR API on the tiny checkpoint: images, named regions, videos, results and errors."""

import copy
import importlib.util
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from garvideo.errors import GarvideoError, InvalidInputError
from garvideo.model import GenerationSettings, TooManyRegionsError, VideoPromptTemplate

SHORT = GenerationSettings(max_new_tokens=6)


def test_describe_is_greedy_and_repeatable(gar, scene):
    image, masks = scene
    first = gar.describe(image, masks["red"], SHORT)
    second = gar.describe(image, masks["red"], SHORT)
    assert first.token_ids == second.token_ids and first.text == second.text
    assert len(first.token_ids) <= 6 and first.prompt_tokens > 0
    assert first.finished == (first.token_ids[-1] == gar.processor.eos_token_id)
    assert first.timings.encode_s > 0 and first.timings.generate_s > 0
    assert first.text == gar.processor.decode(first.token_ids)
    other = gar.describe(image, masks["blue"], SHORT)
    assert other.token_ids != first.token_ids or other.prompt_tokens != first.prompt_tokens


def test_image_inputs_in_any_form_give_the_same_answer(gar, scene, tmp_path):
    image, masks = scene
    path = tmp_path / "scene.png"
    Image.fromarray(image).save(path)
    Image.fromarray(masks["red"].astype(np.uint8) * 255).save(tmp_path / "red.png")
    reference = gar.describe(image, masks["red"], SHORT).token_ids
    assert gar.describe(path, tmp_path / "red.png", SHORT).token_ids == reference
    assert gar.describe(Image.open(path), masks["red"].astype(np.uint8) * 255, SHORT).token_ids == reference
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert gar.describe(rgba, masks["red"], SHORT).token_ids == reference


def test_ask_maps_names_to_prompts_in_the_given_order(gar, scene):
    image, masks = scene
    prompt = gar.prepare_ask(image, {"green": masks["green"], "red": masks["red"]}, "Is <red> left of <green>?")
    inputs = prompt.inputs
    assert prompt.names == ("green", "red")
    assert inputs.text.count("Is <Prompt1> left of <Prompt0>?") == 1
    assert [r.prompt_index for r in inputs.runs] == [0, 1]
    result = gar.ask(
        image, [("green", masks["green"]), ("red", masks["red"])], "Is <red> left of <green>?", generation=SHORT
    )
    assert result.token_ids == gar.generate(inputs, SHORT)[0].token_ids
    # Region tokens in an answer are written back with the user's names.
    from garvideo.model.prompts import restore_region_names

    assert restore_region_names("<Prompt1> is left of <Prompt0>; <Prompt2>?", prompt.names, [0, 1]) == (
        "<red> is left of <green>; <Prompt2>?"
    )
    # One pass: a region named like a prompt token is not renamed twice.
    assert (
        restore_region_names("Is <Prompt0> left of <Prompt1>?", ["Prompt1", "x"], [0, 1]) == "Is <Prompt1> left of <x>?"
    )


def test_multiple_choice_builds_the_reference_prompt(gar, scene):
    image, masks = scene
    inputs = gar.prepare_ask(image, {"red": masks["red"]}, "What colour is <red>?", options=["red", "green"]).inputs
    assert (
        "Question: What colour is <Prompt0>?\nOptions:\nA. red\nB. green\nAnswer with the correct option's"
        in inputs.text
    )


def _answers_b(gar):
    """A copy of the tiny model wired to answer "B" and stop, through its real forward pass and generate.

    Every layer's output projections are zeroed, so the last position's hidden state is its own
    token embedding; column 0 of every embedding is 1 (the "B" logit), column 1 is 1 only for "B"
    (the EOS logit, ten times larger, once "B" has been generated).
    """
    tokenizer = gar.processor.tokenizer
    letter, eos = tokenizer.convert_tokens_to_ids("B"), gar.processor.eos_token_id
    constrained = copy.copy(gar)
    constrained.model = copy.deepcopy(gar.model)
    language = constrained.model.mllm
    with torch.no_grad():
        for layer in language.model.language_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = language.get_input_embeddings().weight
        embeddings[:, :2] = 0
        embeddings[:, 0] = 1.0
        embeddings[letter, 1] = 1.0
        norm = language.model.language_model.norm.weight
        norm.zero_()
        norm[:2] = 1.0
        head = language.lm_head.weight
        head.zero_()
        head[letter, 0] = 10.0
        head[eos, 1] = 100.0
    return constrained


def test_multiple_choice_answer_gives_its_letter(gar, scene):
    image, masks = scene
    result = _answers_b(gar).ask(
        image, {"red": masks["red"]}, "What colour is <red>?", options=["red", "green", "blue"], generation=SHORT
    )
    assert result.text == "B" and result.finished and result.choice == "B"
    free = _answers_b(gar).ask(image, {"red": masks["red"]}, "What colour is <red>?", generation=SHORT)
    assert free.text == "B" and free.choice is None  # no options, no choice


def test_ask_errors(gar, scene, tmp_path):
    image, masks = scene
    with pytest.raises(InvalidInputError, match="<cat>, which is not among the given regions"):
        gar.ask(image, {"red": masks["red"]}, "Is <cat> red?")
    with pytest.raises(TooManyRegionsError, match="groups of 5"):
        gar.ask(image, {f"r{i}": masks["red"] for i in range(6)}, "Which is red?")
    with pytest.raises(InvalidInputError, match="empty"):
        gar.ask(image, {"red": np.zeros_like(masks["red"])}, "Is <red> red?")
    with pytest.raises(InvalidInputError, match="image's size"):
        gar.ask(image, {"red": masks["red"][:, :-2]}, "Is <red> red?")
    with pytest.raises(InvalidInputError, match="no such file"):
        gar.ask(tmp_path / "nope.jpg", {"red": masks["red"]}, "Is <red> red?")
    with pytest.raises(InvalidInputError, match="question is empty"):
        gar.ask(image, {"red": masks["red"]}, " ")
    with pytest.raises(InvalidInputError, match="question is empty"):  # not hidden by the options' wording
        gar.ask(image, {"red": masks["red"]}, " ", options=["red", "green"])
    with pytest.raises(InvalidInputError, match="distinct"):
        gar.ask(image, [("a", masks["red"]), ("a", masks["green"])], "Is <a> red?")
    with pytest.raises(GarvideoError, match="not usable"):
        gar.ask(image, {"bad<name>": masks["red"]}, "Hi?")
    assert gar.generate([], SHORT) == []


@pytest.mark.parametrize(
    "settings,message",
    [
        (dict(do_sample=True, top_k=-1), "top_k must be a positive"),
        (dict(top_k=2.5), "top_k must be a whole number"),
        (dict(repetition_penalty=0), "repetition_penalty must be positive"),
        (dict(cache_implementation="bogus"), "unknown cache_implementation 'bogus'"),
        (dict(max_new_tokens="5"), "max_new_tokens must be a whole number"),
        (dict(max_new_tokens=10**9), "max_new_tokens must be between 1 and 4096"),
        (dict(temperature=float("nan")), "temperature must be a number"),
        (dict(seed="7"), "seed must be a whole number"),
    ],
)
def test_generation_settings_refuse_mistakes(settings, message):
    with pytest.raises(InvalidInputError, match=message):
        GenerationSettings(**settings)


def test_generation_settings_accept_what_generate_accepts():
    GenerationSettings(do_sample=True, top_k=0, repetition_penalty=1.2, cache_implementation="static", seed=3)


def test_loading_with_an_unusable_attention_is_a_clear_error(tiny_checkpoint):
    from garvideo.model import GAR

    with pytest.raises(InvalidInputError, match="attn_implementation='bogus'"):
        GAR.from_pretrained(tiny_checkpoint, device="cpu", attn_implementation="bogus")
    if importlib.util.find_spec("flash_attn") is None:  # the usual case on a CPU machine
        with pytest.raises(InvalidInputError, match="attn_implementation='flash_attention_2' cannot be used here"):
            GAR.from_pretrained(tiny_checkpoint, device="cpu", attn_implementation="flash_attention_2")


def test_question_inputs_of_the_wrong_kind_are_clear_errors(gar, scene):
    image, masks = scene
    with pytest.raises(InvalidInputError, match="not the single string 'xy'"):
        gar.prepare_ask(image, {"red": masks["red"]}, "Which?", options="xy")
    with pytest.raises(InvalidInputError, match="every option needs a text"):
        gar.prepare_ask(image, {"red": masks["red"]}, "Which?", options=["red", " "])
    with pytest.raises(InvalidInputError, match="question must be text"):
        gar.prepare_ask(image, {"red": masks["red"]}, None)
    frames, red, _ = _video(scene, 2)
    with pytest.raises(InvalidInputError, match="the time of frame 0 is 'x'"):
        gar.ask_video(frames, {"red": red}, "What?", times=["x", 1.0])
    with pytest.raises(InvalidInputError, match="one frame time per frame"):
        gar.ask_video(frames, {"red": red}, "What?", times=[0.0])
    assert (
        "t=0.50s"
        in gar.prepare_video(
            frames, {"red": red}, "What?", times=[0, 0.5], template=VideoPromptTemplate(frame="t={time}: {regions}\n")
        ).inputs.text
    )


def test_describe_batch_matches_single_calls(gar, scene):
    image, masks = scene
    batch = gar.describe_batch(
        [(image, masks["red"]), (image, masks["blue"]), (image, masks["green"])], SHORT, batch_size=2
    )
    single = [gar.describe(image, masks[k], SHORT) for k in ("red", "blue", "green")]
    assert [r.token_ids for r in batch] == [r.token_ids for r in single]
    assert [r.timings.batch_size for r in batch] == [2, 2, 1]


def test_sampling_is_seeded_and_leaves_global_random_state_alone(gar, scene):
    image, masks = scene
    settings = GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.5, seed=11)
    state = torch.random.get_rng_state()
    a = gar.describe(image, masks["red"], settings)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = gar.describe(image, masks["red"], settings)
    assert a.token_ids == b.token_ids
    # The seed is what decides: another seed, or greedy decoding, gives other tokens.
    other_seed = gar.describe(image, masks["red"], replace(settings, seed=12))
    assert other_seed.token_ids != a.token_ids
    assert gar.describe(image, masks["red"], SHORT).token_ids != a.token_ids
    with pytest.raises(InvalidInputError):
        GenerationSettings(temperature=0)


def _video(scene, count=4):
    image, masks = scene
    frames = [np.roll(image, 6 * f, axis=1) for f in range(count)]
    red = [np.roll(masks["red"], 6 * f, axis=1) for f in range(count)]
    green = [np.roll(masks["green"], 6 * f, axis=1) for f in range(count)]
    return frames, red, green


def test_video_question_is_one_generate_call_with_batched_vision(gar, scene, monkeypatch):
    frames, red, green = _video(scene)
    green[2] = None  # not visible there
    generate_calls, tower_batches = [], []
    decoder = gar.decoder
    real_decode = decoder.decode

    def counting_decode(embeds, *args, **kwargs):
        generate_calls.append(embeds.shape)
        return real_decode(embeds, *args, **kwargs)

    monkeypatch.setattr(decoder, "decode", counting_decode)
    monkeypatch.setattr(gar, "vision_batch_size", 3)
    handle = gar.model.mllm.model.vision_tower.register_forward_hook(
        lambda module, args, output: tower_batches.append(output.last_hidden_state.shape[0])
    )
    try:
        result = gar.ask_video(frames, {"red": red, "green": green}, "How do <red> and <green> move?", generation=SHORT)
    finally:
        handle.remove()
    assert len(generate_calls) == 1 and tower_batches == [3, 1]
    inputs = gar.prepare_video(frames, {"red": red, "green": green}, "How do <red> and <green> move?").inputs
    assert len(inputs.runs) == 7 and generate_calls[0][1] == inputs.num_tokens
    assert "Frame 3: <Prompt0>: <|reserved_special_token_4|>" in inputs.text and "<Prompt1>: not visible" in inputs.text
    assert result.prompt_tokens == inputs.num_tokens


def test_video_single_region_and_modes(gar, scene):
    frames, red, _ = _video(scene, 3)
    described = gar.describe_video(frames, red, generation=SHORT)
    assert described.token_ids == gar.describe_video(frames, red, generation=SHORT).token_ids
    aligned = gar.generate(
        gar.prepare_video(frames, {"region": red}, "Describe <region>.").inputs,
        SHORT,
        box_mode="aligned",
        output_logits=True,
    )[0]
    reference = gar.generate(
        gar.prepare_video(frames, {"region": red}, "Describe <region>.").inputs, SHORT, output_logits=True
    )[0]
    assert not np.allclose(aligned.step_logits[0], reference.step_logits[0])  # the box mode matters
    tiled = gar.ask_video(frames, {"region": red}, "What is <region>?", tiling="thumb+tile", generation=SHORT)
    assert tiled.prompt_tokens > described.prompt_tokens


def test_video_errors(gar, scene):
    frames, red, _ = _video(scene, 3)
    with pytest.raises(InvalidInputError, match="not visible on any"):
        gar.ask_video(frames, {"ghost": [None, None, np.zeros_like(red[0])]}, "Where is <ghost>?")
    with pytest.raises(TooManyRegionsError):
        gar.ask_video(frames, {f"r{i}": red for i in range(6)}, "Which is red?")
    with pytest.raises(InvalidInputError, match="<cat>"):
        gar.ask_video(frames, {"red": red}, "Is <cat> here?")
    with pytest.raises(InvalidInputError, match="question is empty"):
        gar.ask_video(frames, {"red": red}, "")


def test_static_kv_cache_gives_the_same_greedy_tokens(gar, scene):
    # The generate path stays transformers' own, so its static cache (and compile) can be switched on.
    image, masks = scene
    dynamic = gar.describe(image, masks["green"], GenerationSettings(max_new_tokens=5, min_new_tokens=5))
    static = gar.describe(
        image, masks["green"], GenerationSettings(max_new_tokens=5, min_new_tokens=5, cache_implementation="static")
    )
    assert static.token_ids == dynamic.token_ids and len(static.token_ids) == 5


def test_answer_batches_video_windows_like_single_calls(gar, scene):
    frames, red, green = _video(scene, 4)
    windows = [
        gar.prepare_video(frames[:2], {"red": red[:2]}, "What does <red> do?", times=[0.0, 0.5]),
        gar.prepare_video(
            frames[2:], {"red": red[2:], "green": green[2:]}, "Is <red> near <green>?", options=["yes", "no"]
        ),
    ]
    batched = gar.answer(windows, SHORT, batch_size=2)
    single = [gar.answer(w, SHORT)[0] for w in windows]
    assert [r.token_ids for r in batched] == [r.token_ids for r in single]
    assert [r.text for r in batched] == [r.text for r in single]
    assert batched[0].choice is None and windows[1].options == ("yes", "no")
    assert [r.token_ids for r in gar.generate(windows, SHORT)] == [r.token_ids for r in single]
    assert "Options:\nA. yes\nB. no" in windows[1].inputs.text
