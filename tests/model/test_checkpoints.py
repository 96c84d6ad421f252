"""Checkpoints: the tiny builder's layout, save/load round trips, broken checkpoints, hub resolution."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from garvideo.errors import GarvideoError, ModelNotFoundError
from garvideo.model import GAR, CheckpointError, GenerationSettings, resolve_checkpoint
from garvideo.testing.gar import build_tiny_gar_checkpoint, random_gar

RELEASED_PREFIXES = (
    "mllm.model.vision_tower.timm_model.",
    "mllm.model.multi_modal_projector.",
    "mllm.model.language_model.",
    "mllm.lm_head.",
    "mask_patch_embedding.",
)


def test_tiny_checkpoint_has_the_released_layout(tiny_checkpoint):
    names = {p.name for p in tiny_checkpoint.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "chat_template.jinja",
    } <= names
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["model_type"] == "GAR" and config["mllm_config"]["model_type"] == "perception_lm"
    assert config["prompt_numbers"] == 5 and len(config["crop_tokens_ids"]) == 5
    weights = load_file(tiny_checkpoint / "model.safetensors")
    assert all(key.startswith(RELEASED_PREFIXES) for key in weights)
    assert {prefix for prefix in RELEASED_PREFIXES if any(k.startswith(prefix) for k in weights)} == set(
        RELEASED_PREFIXES
    )
    assert weights["mask_patch_embedding.weight"].abs().sum() > 0


def test_tiny_tokenizer_mirrors_perception_lm_ids(gar):
    tok = gar.processor.tokenizer
    ids = {
        name: tok.convert_tokens_to_ids(name)
        for name in (
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|image|>",
            "<|video|>",
            "<|reserved_special_token_2|>",
            "<|reserved_special_token_3|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|reserved_special_token_4|>",
            "<|eot_id|>",
            "<|reserved_special_token_5|>",
            "<Prompt0>",
            "<NO_Prompt>",
        )
    }
    base = ids["<|begin_of_text|>"]
    assert [ids[k] - base for k in list(ids)[:11]] == list(range(11))
    assert gar.processor.crop_tokens_ids == [base + 4, base + 5, base + 8, base + 10, base + 11]
    assert ids["<NO_Prompt>"] - ids["<Prompt0>"] == 5


def test_tiny_chat_template_renders_like_the_fixture(gar, ref_checkpoint):
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": " Hi? "}]}
    ]
    tok = gar.processor.tokenizer
    ours = tok.apply_chat_template(
        conversation, chat_template=gar.processor.chat_template, add_generation_prompt=True, tokenize=False
    )
    theirs = tok.apply_chat_template(
        conversation,
        chat_template=(ref_checkpoint / "chat_template.jinja").read_text(),
        add_generation_prompt=True,
        tokenize=False,
    )
    assert ours == theirs


def test_builder_is_deterministic_per_seed(tmp_path):
    a = load_file(build_tiny_gar_checkpoint(tmp_path / "a", seed=1, tile_size=112) / "model.safetensors")
    b = load_file(build_tiny_gar_checkpoint(tmp_path / "b", seed=1, tile_size=112) / "model.safetensors")
    c = load_file(build_tiny_gar_checkpoint(tmp_path / "c", seed=2, tile_size=112) / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(TypeError, match="unknown size"):
        build_tiny_gar_checkpoint(tmp_path / "d", hiden_size=8)


def test_random_gar_takes_shapes_the_tiny_sizes_do_not_cover(scene):
    # What bench/model.py --full-size builds (GAR-1B's shapes), here small: vocabulary and vision tower set directly.
    image, masks = scene
    gar = random_gar(text={"vocab_size": 1000}, vision={"embed_dim": 32, "num_heads": 2}, device="cpu", tile_size=112)
    assert tuple(gar.model.mllm.lm_head.weight.shape) == (1000, 64)
    assert gar.model.mask_patch_embedding.out_channels == 32 and gar.model.tile_size == 112
    result = gar.describe(image, masks["red"], GenerationSettings(max_new_tokens=2, min_new_tokens=2))
    assert len(result.token_ids) == 2 and all(0 <= t < 1000 for t in result.token_ids)
    with pytest.raises(TypeError, match="unknown size"):
        random_gar(vocab_size=1000)


def test_saved_checkpoint_loads_back_identically(gar, scene, tmp_path):
    saved = gar.save_pretrained(tmp_path / "copy")
    again = GAR.from_pretrained(saved, device="cpu", dtype="float32")
    ours, theirs = gar.model.state_dict(), again.model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert again.model.config.to_dict() == gar.model.config.to_dict()
    image, masks = scene
    settings = GenerationSettings(max_new_tokens=6)
    assert (
        again.describe(image, masks["red"], settings).token_ids == gar.describe(image, masks["red"], settings).token_ids
    )


def test_reference_checkpoint_round_trips(tmp_path, ref_checkpoint):
    gar = GAR.from_pretrained(ref_checkpoint, device="cpu", dtype="float32")
    gar.save_pretrained(tmp_path / "copy")
    original = load_file(ref_checkpoint / "model.safetensors")
    written = load_file(tmp_path / "copy" / "model.safetensors")
    assert original.keys() == written.keys()
    assert all(torch.equal(original[k], written[k]) for k in original)
    config_in = json.loads((ref_checkpoint / "config.json").read_text())
    config_out = json.loads((tmp_path / "copy" / "config.json").read_text())
    for key in (
        "model_type",
        "prompt_numbers",
        "crop_tokens_ids",
        "kernel_size",
        "mask_path_embedding_out_channels",
        "auto_map",
        "architectures",
    ):
        assert config_out[key] == config_in[key], key
    assert (
        config_out["mllm_config"]["text_config"]["hidden_size"]
        == config_in["mllm_config"]["text_config"]["hidden_size"]
    )
    reloaded = GAR.from_pretrained(tmp_path / "copy", device="cpu", dtype="float32")
    assert all(torch.equal(a, b) for a, b in zip(gar.model.state_dict().values(), reloaded.model.state_dict().values()))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_and_unexpected_weights_are_errors(tiny_checkpoint, tmp_path):
    weights = load_file(tiny_checkpoint / "model.safetensors")
    missing = _copy(tiny_checkpoint, tmp_path / "missing")
    save_file(
        {k: v for k, v in weights.items() if not k.endswith("language_model.norm.weight")},
        missing / "model.safetensors",
    )
    with pytest.raises(CheckpointError, match="missing: mllm.model.language_model.norm.weight"):
        GAR.from_pretrained(missing, device="cpu", dtype="float32")

    no_mask = _copy(tiny_checkpoint, tmp_path / "no_mask")
    save_file({k: v for k, v in weights.items() if not k.startswith("mask_patch")}, no_mask / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing: mask_patch_embedding.weight"):
        GAR.from_pretrained(no_mask, device="cpu", dtype="float32")

    extra = _copy(tiny_checkpoint, tmp_path / "extra")
    save_file({**weights, "mllm.model.surprise.weight": torch.zeros(2)}, extra / "model.safetensors")
    with pytest.raises(CheckpointError, match="unexpected: .*surprise"):
        GAR.from_pretrained(extra, device="cpu", dtype="float32")

    wrong = _copy(tiny_checkpoint, tmp_path / "wrong")
    config = json.loads((wrong / "config.json").read_text())
    config["model_type"] = "sam2_video"
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not a GAR checkpoint"):
        GAR.from_pretrained(wrong, device="cpu", dtype="float32")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GarvideoError, match="config.json"):
        GAR.from_pretrained(empty, device="cpu", dtype="float32")


def test_offline_hub_id_without_cache_names_the_model(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError) as info:
        GAR.from_pretrained("HaochenWang/GAR-1B", device="cpu")
    message = str(info.value)
    assert "HaochenWang/GAR-1B" in message and "local" in message and "folder" in message
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        GAR.from_pretrained(str(tmp_path / "nowhere" / "GAR-1B"))


def test_hub_cache_snapshot_resolves_with_its_commit(tiny_checkpoint, tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--gar-tiny"
    shutil.copytree(tiny_checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    resolved = resolve_checkpoint("someone/gar-tiny")
    assert resolved.model_id == "someone/gar-tiny" and resolved.revision == commit
    gar = GAR.from_pretrained("someone/gar-tiny", device="cpu", dtype="float32")
    assert gar.info.model_id == "someone/gar-tiny" and gar.info.revision == commit
    assert gar.info.box_mode == "reference" and gar.info.double_bos is True
    local = resolve_checkpoint(tiny_checkpoint)
    assert local.revision is None and local.model_id == str(tiny_checkpoint.resolve())


def test_chat_template_from_an_older_export(tiny_checkpoint, tmp_path):
    older = _copy(tiny_checkpoint, tmp_path / "older")
    template = (older / "chat_template.jinja").read_text()
    (older / "chat_template.jinja").unlink()
    (older / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    from garvideo.model import GARProcessor

    assert GARProcessor.from_pretrained(older).chat_template == template
