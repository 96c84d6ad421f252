"""The model pieces: where the mask embedding is added, vision batching, replay geometry, generation."""

import numpy as np
import pytest
import torch

from garvideo.model import PlaceholderRun


def _tiles(gar, scene):
    image, masks = scene
    inputs = gar.processor.prepare_caption(image, masks["red"])
    return inputs, inputs.images[0]


def _pixels(gar, inputs, image):
    mean = torch.tensor(inputs.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(inputs.image_std).view(1, 3, 1, 1)
    return (image.pixel_tiles.float() - mean) / std


@torch.inference_mode()
def test_mask_embedding_is_added_after_patch_embed_and_before_position_embedding(gar, scene):
    inputs, image = _tiles(gar, scene)
    model = gar.model
    vit = model.mllm.model.vision_tower.timm_model
    pixels = _pixels(gar, inputs, image)
    ours = model.encode_tiles(image.pixel_tiles, image.prompt_tiles, inputs.image_mean, inputs.image_std)

    # The same computation spelled out with timm's pieces (what the reference's patched forward did).
    tokens = vit.patch_embed(pixels) + model.mask_embeddings(image.prompt_tiles).flatten(2).transpose(1, 2)
    tokens, rope = vit._pos_embed(tokens)
    tokens = vit.norm_pre(tokens)
    for block in vit.blocks:
        tokens = block(tokens, rope=rope)
    tokens = vit.norm(tokens)
    expected = model.mllm.model.multi_modal_projector(tokens[:, 1:])
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)

    # The mask embedding makes a real difference (the tiny checkpoint's embedding is non-zero)...
    def plain():
        hidden = model.mllm.model.vision_tower(pixel_values=pixels).last_hidden_state
        return model.mllm.model.multi_modal_projector(hidden[:, 1:])

    before = plain()
    assert (before - ours).abs().max() > 1e-3
    # ...and is zero where no region is (a bias-free conv of zeros), so a map without regions
    # gives the plain vision tower's features; the hook is inactive outside encode_tiles.
    no_region = torch.full_like(image.prompt_tiles, model.config.prompt_numbers)
    empty = model.encode_tiles(image.pixel_tiles, no_region, inputs.image_mean, inputs.image_std)
    torch.testing.assert_close(empty, before, atol=1e-6, rtol=0)
    torch.testing.assert_close(plain(), before, atol=0, rtol=0)


@torch.inference_mode()
def test_vision_batches_give_the_same_features(gar, scene):
    inputs, image = _tiles(gar, scene)
    calls = []
    tower = gar.model.mllm.model.vision_tower
    handle = tower.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0] if args else 0))
    try:
        one = gar.model.encode_tiles(
            image.pixel_tiles, image.prompt_tiles, inputs.image_mean, inputs.image_std, batch_size=1
        )
        calls_one = len(calls)
        calls.clear()
        three = gar.model.encode_tiles(
            image.pixel_tiles, image.prompt_tiles, inputs.image_mean, inputs.image_std, batch_size=3
        )
    finally:
        handle.remove()
    tiles = image.num_tiles
    assert calls_one == tiles and len(calls) == -(-tiles // 3)
    torch.testing.assert_close(one, three, atol=1e-5, rtol=0)


def test_replay_reference_box_samples_the_top_left_corner_and_aligned_the_region(gar):
    model = gar.model
    side = model.tokens_per_side
    # A 2x2-tile map whose features are their own (row, column) coordinates.
    rows, cols = 2 * side, 2 * side
    yy, xx = torch.meshgrid(
        torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32), indexing="ij"
    )
    feature_map = torch.stack([yy, xx]).unsqueeze(0)
    box = (0.5, 0.5, 0.9, 0.9)  # the lower-right quarter of the image
    run = PlaceholderRun(start=0, length=side * side, image_index=0, prompt_index=0, box=box, token_id=0)

    aligned, record = model.replay(feature_map, run, "aligned")
    assert record.spatial_scale == 1.0
    assert record.roi[1:] == pytest.approx((0.5 * cols, 0.5 * rows, 0.9 * cols, 0.9 * rows), rel=1e-6)
    y, x = aligned[:, 0], aligned[:, 1]
    assert y.min() >= 0.5 * rows - 1 and y.max() <= 0.9 * rows and x.min() >= 0.5 * cols - 1 and x.max() <= 0.9 * cols

    reference, record = model.replay(feature_map, run, "reference")
    assert record.spatial_scale == pytest.approx(1 / model.feature_stride)
    # Quirk Q1: the already-scaled box is scaled again, so only the top-left cell is sampled.
    assert reference[:, 0].max() < 1 and reference[:, 1].max() < 1
    with pytest.raises(Exception, match="box mode"):
        model.replay(feature_map, run, "exact")


def test_geometry_comes_from_the_loaded_modules(gar):
    model = gar.model
    assert (model.tile_size, model.patch_size, model.pooling_ratio) == (224, 14, 2)
    assert model.tokens_per_side == 8 and model.feature_stride == 28
    assert gar.processor.tokens_per_tile == model.tokens_per_tile == 64


@torch.inference_mode()
def test_left_padded_batch_matches_single_prompts(gar, scene):
    image, masks = scene
    short = gar.processor.prepare_caption(image, masks["blue"])
    long = gar.processor.prepare_question(
        image, [masks["red"], masks["green"]], "How are <Prompt0> and <Prompt1> related?"
    )
    assert short.num_tokens != long.num_tokens
    from garvideo.model import GenerationSettings

    settings = GenerationSettings(max_new_tokens=5)
    single = [gar.generate(x, settings, output_logits=True)[0] for x in (short, long)]
    # max_padding=1.0 forces the padded batch that the CPU default avoids (prompts of other lengths run apart).
    batched = gar.generate([short, long], settings, output_logits=True, batch_size=2, max_padding=1.0)
    for a, b in zip(single, batched):
        np.testing.assert_allclose(a.step_logits, b.step_logits, atol=1e-4, rtol=0)
        assert a.token_ids == b.token_ids
    assert batched[0].timings.batch_size == 2 and single[0].timings.batch_size == 1
    assert [r.timings.batch_size for r in gar.generate([short, long], settings, batch_size=2)] == [1, 1]
