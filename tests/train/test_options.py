"""Training options beyond the defaults (--train-vision, bfloat16 compute), and --adapter on batch, eval and the app."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from garvideo_cli.main import app
from safetensors import safe_open

from garvideo.model import GAR, GenerationSettings
from garvideo.train import TrainConfig, train
from garvideo.train.steps import trainable_parameters

from .conftest import write_lines

pytestmark = pytest.mark.slow

QUICK = dict(rank=4, alpha=8, lora_dropout=0.0, lr=1e-3, batch_size=4, epochs=1, frames=2, log_every=1)


@pytest.fixture(scope="module")
def vision_run(material, models, tmp_path_factory):
    """Two steps with --train-vision on the images and the tracked clip."""
    data = write_lines(material.folder / "vision.jsonl", material.lines[:6])
    config = TrainConfig(model=str(models / "gar"), train_vision=True, **QUICK)
    return train(data, tmp_path_factory.mktemp("runs") / "vision", config, progress=False)


def test_train_vision_puts_lora_on_the_vision_blocks_and_trains_the_projector(vision_run, material, models, tmp_path):
    with safe_open(str(vision_run.out / "adapter_model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert any(".vision_tower." in k and ".blocks.0.attn.qkv.lora_A" in k for k in keys)
    assert not any("patch_embed.proj.lora" in k for k in keys)  # the patch embedding stays as it is
    assert any(k.endswith("multi_modal_projector.linear_1.weight") for k in keys)
    assert any(k.endswith("mask_patch_embedding.weight") for k in keys)
    with_adapter = GAR.from_pretrained(models / "gar", adapter=vision_run.out)
    base = GAR.from_pretrained(models / "gar")
    line = material.lines[0]
    inputs = with_adapter.processor.prepare_caption(
        material.folder / line["image"], material.folder / line["regions"][0]["mask"]
    )
    settings = GenerationSettings(max_new_tokens=4)
    adapted = with_adapter.generate(inputs, settings, output_logits=True)[0].step_logits
    plain = base.generate(inputs, settings, output_logits=True)[0].step_logits
    assert not torch.allclose(torch.from_numpy(adapted), torch.from_numpy(plain))  # it changed what GAR computes
    merged = tmp_path / "merged"
    assert CliRunner().invoke(app, ["train", "merge", str(vision_run.out), "--out", str(merged), "-q"]).exit_code == 0
    standalone = GAR.from_pretrained(merged).generate(inputs, settings, output_logits=True)[0].step_logits
    assert torch.allclose(torch.from_numpy(standalone), torch.from_numpy(adapted), atol=1e-4)


def test_bfloat16_computes_under_autocast_with_float32_trained_weights(material, models, tmp_path):
    """The GPU recipe (bfloat16 model, float32 trained weights, autocast), here on the CPU."""
    from garvideo.pipeline import Pipeline
    from garvideo.train.checkpoints import RunFolder
    from garvideo.train.distributed import Ranks
    from garvideo.train.examples import ExampleBuilder
    from garvideo.train.formats import read_dataset
    from garvideo.train.trainer import Trainer

    pipe = Pipeline.from_pretrained(models / "gar", None, dtype="bfloat16", progress=False, detector=None)
    config = TrainConfig(model=str(models / "gar"), **QUICK)
    trainer = Trainer(pipe, config, RunFolder(tmp_path), Ranks(), progress=False)
    trainer.setup()
    assert pipe.gar.model.mllm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert {p.dtype for p in trainable_parameters(pipe.gar.model).values()} == {torch.float32}
    examples = read_dataset(material.train).examples[:4]
    items = [ExampleBuilder(pipe, 2, "vanilla").training_input(e) for e in examples]
    trainer.lengths = [(item.prompt_tokens, item.answer_tokens) for item in items]
    before = {k: v.detach().clone() for k, v in trainer.trained.items()}
    first = trainer.step([items], [[0, 1, 2, 3]], 0, 2)
    second = trainer.step([items], [[0, 1, 2, 3]], 1, 2)
    assert 0 < second.loss < first.loss and first.answer_tokens == sum(i.answer_tokens for i in items)
    changed = [k for k, v in trainer.trained.items() if not torch.equal(v, before[k])]
    assert any("mask_patch_embedding" in k for k in changed) and any("lora_B" in k for k in changed)


def test_batch_and_eval_record_the_adapter(vision_run, material, models, tmp_path):
    from garvideo.eval.work import model_settings

    clip = material.clips[1]
    x1, y1, x2, y2 = clip.boxes[1]
    region = {"name": "object", "when": {"frame": 1}, "box": [x1, y1, x2 + 1, y2 + 1]}
    manifest = write_lines(material.folder / "batch.jsonl", [{"video": "clip1.mp4", "regions": [region]}])
    out = tmp_path / "results"
    args = ["batch", str(material.folder), "--regions", str(manifest), "--out", str(out), "--frames", "2"]
    args += ["--model", str(models / "gar"), "--sam2", str(models / "sam2"), "--max-new-tokens", "3", "-q"]
    result = CliRunner().invoke(app, [*args, "--adapter", str(vision_run.out)])
    assert result.exit_code == 0, result.output
    (document,) = [json.loads(p.read_text()) for p in out.glob("clip1-*.json")]
    assert document["provenance"]["gar"]["adapter"]["path"] == str(vision_run.out.resolve())
    plain = CliRunner().invoke(app, args)  # the same folder without the adapter: its results would be mixed
    assert plain.exit_code == 2 and "holds results made with other settings" in plain.output, plain.output
    settings = model_settings(GAR.from_pretrained(models / "gar", adapter=vision_run.out).info)
    assert settings["adapter"]["path"] == str(vision_run.out.resolve())  # an eval run with another adapter differs
    assert "adapter" not in model_settings(GAR.from_pretrained(models / "gar").info)


def test_the_apps_commands_carry_the_adapter():
    from garvideo.app import Models

    models = Models("gar-dir", "sam2-dir", adapter="runs/shop-v1")
    assert models.args(gar=True, sam2=False)[:4] == ["--model", "gar-dir", "--adapter", "runs/shop-v1"]
    assert "--adapter" not in models.args(gar=False, sam2=True)
