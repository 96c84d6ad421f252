"""The static-cache decode loop against transformers' generate, and how prompts are batched (tiny model, float32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from garvideo.errors import InvalidInputError
from garvideo.model import GenerationSettings
from garvideo.model.batching import BatchPolicy, plan_batches
from garvideo.model.decoding import DecodeOptions, StaticDecoder


@pytest.fixture(scope="module")
def prompts(gar, scene):
    image, masks = scene
    short = gar.processor.prepare_caption(image, masks["blue"])
    long = gar.processor.prepare_question(image, [masks["red"], masks["green"]], "How are <Prompt0> and <Prompt1>?")
    assert short.num_tokens != long.num_tokens
    return short, long


def _both(gar, inputs, settings: GenerationSettings, **kwargs):
    new = gar.generate(inputs, settings, output_logits=True, **kwargs)
    old = gar.generate(
        inputs, GenerationSettings(**{**settings.__dict__, "decoder": "generate"}), output_logits=True, **kwargs
    )
    return new, old


@pytest.mark.parametrize(
    "settings",
    [
        GenerationSettings(max_new_tokens=12),
        GenerationSettings(max_new_tokens=12, min_new_tokens=12),
        GenerationSettings(max_new_tokens=12, do_sample=True, temperature=0.7, top_k=40, top_p=0.9, seed=5),
        GenerationSettings(max_new_tokens=12, do_sample=True, seed=11),
    ],
    ids=["greedy", "min-new-tokens", "sampling-warped", "sampling-plain"],
)
def test_static_loop_gives_generates_tokens(gar, prompts, settings):
    for inputs, padding in ((list(prompts), 0.0), (list(prompts), 1.0)):  # apart, then one left-padded batch
        new, old = _both(gar, inputs, settings, batch_size=2, max_padding=padding)
        for a, b in zip(new, old):
            assert a.token_ids == b.token_ids and a.text == b.text and a.finished == b.finished
            np.testing.assert_allclose(a.step_logits, b.step_logits, atol=1e-5, rtol=0)


def test_a_seed_changes_what_sampling_draws(gar, prompts):
    draws = {
        gar.generate(prompts[0], GenerationSettings(max_new_tokens=8, do_sample=True, seed=s))[0].token_ids
        for s in range(4)
    }
    assert len(draws) > 1


def test_settings_the_loop_does_not_reproduce_go_through_generate(gar, prompts, monkeypatch):
    calls = []
    real = gar.model.mllm.generate
    monkeypatch.setattr(gar.model.mllm, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    gar.generate(prompts[0], GenerationSettings(max_new_tokens=3))
    assert calls == []
    gar.generate(prompts[0], GenerationSettings(max_new_tokens=3, repetition_penalty=1.3))
    gar.generate(prompts[0], GenerationSettings(max_new_tokens=3, cache_implementation="static"))
    gar.generate(prompts[0], GenerationSettings(max_new_tokens=3, decoder="generate"))
    assert calls == [1, 1, 1]
    with pytest.raises(InvalidInputError, match="unknown decoder 'fast'"):
        GenerationSettings(decoder="fast")


def test_the_decoder_is_made_once_and_an_eager_one_keeps_no_cache(gar, prompts):
    decoder = gar.decoder
    assert gar.compile == "auto" and not gar.info.compiled  # a few steps on a CPU: eager
    for _ in range(2):
        gar.generate(prompts[0], GenerationSettings(max_new_tokens=4))
    # eager caches are sized to each call and dropped after it (only a compiled step needs its cache kept)
    assert gar.decoder is decoder and not decoder._caches


@pytest.mark.slow
def test_a_compiled_step_is_traced_once_whole_and_gives_the_eager_tokens(gar):
    """Dynamo traces the step as one graph (fullgraph: nothing falls back to Python), once for prompts of any length."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    mllm = gar.model.mllm
    compiled = StaticDecoder(mllm, compile=True, compile_options={"backend": counter, "fullgraph": True})
    eager = StaticDecoder(mllm, compile=False)
    generator = torch.Generator().manual_seed(0)
    options = DecodeOptions(max_new_tokens=6, eos_token_id=-1, pad_token_id=0, output_logits=True)
    for length in (40, 40, 75):  # the second call reuses the first's cache, the third fits in it too
        embeds = torch.randn(2, length, mllm.config.text_config.hidden_size, generator=generator)
        attention = torch.ones(2, length, dtype=torch.long)
        attention[0, :7] = 0
        expected, expected_logits = eager.decode(embeds, attention, options)
        tokens, logits = compiled.decode(embeds, attention, options)
        assert torch.equal(tokens, expected)
        torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=0)
    assert counter.frame_count == 1
    assert [kept.length for kept in compiled._caches.values()] == [1024]
    torch._dynamo.reset()


def test_batches_group_prompts_by_length():
    lengths = [30, 10, 30, 10, 20, 30]
    cpu = BatchPolicy.for_device(torch.device("cpu"))
    assert cpu.max_padding == 0.0
    assert plan_batches(lengths, cpu) == [[1, 3], [4], [0, 2, 5]]
    assert plan_batches(lengths, BatchPolicy(2, 0.0)) == [[1, 3], [4], [0, 2], [5]]
    assert plan_batches(lengths, BatchPolicy(8, 1.0)) == [[1, 3, 4, 0, 2, 5]]
    # a quarter of the slots may be padding: 20 joins the 30s (10 of 120 slots), the 10s stay apart
    assert plan_batches(lengths, BatchPolicy(8, 0.25)) == [[1, 3], [4, 0, 2, 5]]
    assert plan_batches(lengths, BatchPolicy(8, 1.0, max_tokens=60)) == [[1, 3, 4], [0, 2], [5]]
    gpu = BatchPolicy.for_device(torch.device("cuda"), batch_size=4)
    assert gpu.max_prompts == 4 and gpu.max_padding == 0.25
    with pytest.raises(InvalidInputError, match="at least 1"):
        BatchPolicy(0, 0.0)


def test_frames_several_prompts_show_alike_are_encoded_once(gar, scene):
    image, masks = scene
    frames = [image, np.roll(image, 9, axis=1), np.roll(image, 17, axis=0)]
    red = [masks["red"]] * 3
    overall = gar.prepare_video(frames, {"red": red}, "Describe <red>.").inputs
    window = gar.prepare_video(frames[1:], {"red": red[1:]}, "Describe <red>.").inputs
    other_region = gar.prepare_video(frames[1:], {"blue": [masks["blue"]] * 2}, "Describe <blue>.").inputs
    tiles = []
    handle = gar.model.mllm.model.vision_tower.register_forward_hook(
        lambda module, args, output: tiles.append(output.last_hidden_state.shape[0])
    )
    settings = GenerationSettings(max_new_tokens=3)
    try:
        together = gar.generate([overall, window, other_region], settings)
        shared = sum(tiles)
        apart = [gar.generate(p, settings)[0] for p in (overall, window, other_region)]
    finally:
        handle.remove()
    # 3 + 2 + 2 frames, of which the window's two equal two of the overall's (same pixels, same mask)
    assert shared == 5 and sum(tiles) - shared == 7
    assert [r.token_ids for r in together] == [r.token_ids for r in apart]


def test_the_feature_memo_finds_equal_images_and_stays_within_its_tiles(gar, scene):
    from garvideo.model.batching import ImageFeatureMemo

    image, masks = scene
    prepare = gar.processor.prepare_video
    a, b, c = (prepare([np.roll(image, k, axis=1)], [[masks["red"]]], "What?").images[0] for k in (0, 5, 9))
    again = prepare([image], [[masks["red"]]], "What?").images[0]  # made anew: equal content, another object
    other_mask = prepare([image], [[masks["blue"]]], "What?").images[0]
    memo = ImageFeatureMemo(max_tiles=2)
    memo.add(a, torch.zeros(1))
    assert memo.find(again) is not None and memo.find(other_mask) is None
    memo.add(b, torch.ones(1))
    memo.add(c, torch.ones(1))  # three one-tile images in a two-tile memo: the least recently used goes
    assert memo.find(a) is None and memo.find(b) is not None and memo.find(c) is not None
