"""Training on the tiny GAR: overfitting, the adapter's round trip, merging, and --adapter everywhere.

One run (``overfit``, module scope) trains on the eight examples of the material until it has learnt them;
the tests then check the run folder, the adapter loaded for inference, and the merged checkpoint.
"""

from __future__ import annotations

import json

import pytest
import torch

from garvideo.model import GAR, GenerationSettings
from garvideo.pipeline import Pipeline, RegionPrompt
from garvideo.tracking import load_tracks
from garvideo.train import TrainConfig, train
from garvideo.train.data import parse_line
from garvideo.train.examples import ExampleBuilder
from garvideo.train.steps import batch_loss

from .conftest import HELD_OUT, write_lines

pytestmark = pytest.mark.slow

# Eight examples in one batch per step, no dropout, a high rate: a tiny model learns them by heart.
OVERFIT = dict(
    rank=16,
    alpha=32,
    lora_dropout=0.0,
    lr=5e-3,
    warmup=0.0,
    batch_size=8,
    epochs=60,
    frames=3,
    gradient_checkpointing=False,
    log_every=1,
    save_every=1000,
    max_grad_norm=0.0,
)


@pytest.fixture(scope="module")
def overfit(material, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "overfit"
    config = TrainConfig(model=str(models / "gar"), sam2=str(models / "sam2"), eval_every=30, **OVERFIT)
    held_out = write_lines(material.folder / "held_out.jsonl", HELD_OUT)
    return train(material.train, out, config, eval_data=held_out, progress=False)


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_overfitting_drives_the_loss_down_and_writes_the_run(overfit):
    lines = [line for line in metrics(overfit.out) if "loss" in line]
    assert [line["step"] for line in lines] == list(range(1, 61))
    assert {"step", "epoch", "loss", "lr"} <= set(lines[0])
    assert lines[-1]["loss"] <= 0.1 * lines[0]["loss"], (lines[0]["loss"], lines[-1]["loss"])
    assert overfit.steps == overfit.total_steps == 60
    for name in ("adapter_config.json", "adapter_model.safetensors", "garvideo_adapter.json", "run.json"):
        assert (overfit.out / name).is_file()
    # a checkpoint at every epoch's end (one step each here), the last three kept
    assert sorted(p.name for p in (overfit.out / "checkpoints").iterdir()) == [f"step-000000{s}" for s in (58, 59, 60)]
    assert list((overfit.out / "tensorboard").iterdir())
    assert len(list((overfit.out / "tracks").glob("*.json"))) == 2  # the two examples SAM2 tracked


def test_the_adapter_reproduces_the_training_captions(overfit, material, models):
    """Greedy descriptions through the inference entry points (GAR.describe, Pipeline.describe) with the adapter."""
    pipe = Pipeline.from_pretrained(models / "gar", models / "sam2", adapter=overfit.out, progress=False, detector=None)
    settings = GenerationSettings(max_new_tokens=40)
    for line in material.lines[:4]:
        image, mask = material.folder / line["image"], material.folder / line["regions"][0]["mask"]
        assert pipe.gar.describe(image, mask, settings).text == line["caption"]
    for line in material.lines[4:]:
        video = material.folder / line["video"]
        if "tracks" in line:
            given = {"tracks": load_tracks(material.folder / line["tracks"])}
        else:
            given = {"regions": [RegionPrompt.from_dict(line["regions"][0])]}
        result = pipe.describe(video, frames=3, max_new_tokens=40, **given)
        assert result.regions[0].description == line["caption"]
    info = pipe.gar.info.adapter
    assert info.path == str(overfit.out.resolve()) and info.base_model == str((models / "gar").resolve())
    assert result.provenance.to_dict()["gar"]["adapter"]["path"] == info.path
    base = GAR.from_pretrained(models / "gar")
    line = material.lines[0]
    plain = base.describe(material.folder / line["image"], material.folder / line["regions"][0]["mask"], settings)
    assert plain.text != line["caption"]  # the base alone does not know it


def test_merge_writes_a_checkpoint_that_computes_what_the_adapter_does(overfit, material, models, tmp_path):
    from click.testing import CliRunner
    from garvideo_cli.main import app

    merged = tmp_path / "merged"
    result = CliRunner().invoke(app, ["train", "merge", str(overfit.out), "--out", str(merged), "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in merged.iterdir()) == sorted(p.name for p in (models / "gar").iterdir())
    with_adapter = GAR.from_pretrained(models / "gar", adapter=overfit.out)
    standalone = GAR.from_pretrained(merged)  # the released layout: loaded as any GAR is
    assert standalone.info.adapter.merged and standalone.info.adapter.path == str(overfit.out.resolve())
    settings = GenerationSettings(max_new_tokens=40)
    for line in material.lines[:4]:
        image, mask = material.folder / line["image"], material.folder / line["regions"][0]["mask"]
        a = with_adapter.generate(with_adapter.processor.prepare_caption(image, mask), settings, output_logits=True)
        b = standalone.generate(standalone.processor.prepare_caption(image, mask), settings, output_logits=True)
        assert a[0].token_ids == b[0].token_ids
        assert torch.allclose(torch.from_numpy(a[0].step_logits), torch.from_numpy(b[0].step_logits), atol=1e-4)
    again = CliRunner().invoke(app, ["train", "merge", str(overfit.out), "--out", str(merged)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_describe_on_the_command_line_takes_the_adapter(overfit, material, models, tmp_path):
    from click.testing import CliRunner
    from garvideo_cli.main import app

    line = material.lines[4]
    out = tmp_path / "result.json"
    args = ["describe", str(material.folder / line["video"]), "--tracks", str(material.folder / line["tracks"])]
    args += ["--model", str(models / "gar"), "--frames", "3", "--max-new-tokens", "40", "-q"]
    result = CliRunner().invoke(app, [*args, "--adapter", str(overfit.out), "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["regions"][0]["description"] == line["caption"]
    assert document["provenance"]["gar"]["adapter"]["base"]["model"] == str((models / "gar").resolve())
    missing = CliRunner().invoke(app, [*args, "--adapter", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    not_one = CliRunner().invoke(app, [*args, "--adapter", str(tmp_path)])
    assert not_one.exit_code == 2 and not_one.output.count("\n") == 1 and "not an adapter folder" in not_one.output


def test_held_out_loss_and_accuracy_are_those_of_the_trained_adapter(overfit, material, models):
    """eval.json and the metrics' eval lines hold the loss and multiple-choice accuracy of the adapter as loaded
    for inference, recomputed here: the loss through the training loss, the answers through GAR.ask's prompt."""
    evaluated = [line for line in metrics(overfit.out) if "eval_loss" in line]
    assert [line["step"] for line in evaluated] == [30, 60]
    final = json.loads((overfit.out / "eval.json").read_text())
    assert final == {k: v for k, v in evaluated[-1].items() if k != "epoch"} == overfit.evaluation.to_dict()
    pipe = Pipeline.from_pretrained(models / "gar", None, adapter=overfit.out, progress=False, detector=None)
    builder = ExampleBuilder(pipe, frames=3, tiling="vanilla")
    examples = [parse_line(json.dumps(line), "held out", material.folder) for line in HELD_OUT]
    with torch.no_grad():
        loss, tokens = batch_loss(pipe.gar, [builder.training_input(e) for e in examples])
    assert final["eval_tokens"] == tokens
    assert final["eval_loss"] == pytest.approx(float(loss) / tokens, rel=1e-4)
    image = pipe.gar.ask(
        material.folder / "image0.png",
        {"thing": material.folder / "image0_mask.png"},
        "Which is <thing>?",
        options=["a dog", "a ball"],
        generation=GenerationSettings(max_new_tokens=16),
    )
    video = pipe.ask(
        material.folder / "clip0.mp4",
        "Where does <object> go?",
        tracks=load_tracks(material.folder / "clip0_object.json"),
        options=["left", "right"],
        frames=3,
        max_new_tokens=16,
    )
    right = {"image": image.choice == "A", "video": video.letter == "B"}
    score = final["eval_score"]
    assert {kind: score["per_type"][kind]["correct"] for kind in right} == {k: int(v) for k, v in right.items()}
    assert final["eval_accuracy"] == round(sum(right.values()) / 2 * 100, 1)


def test_readme_python_example_runs(material, models, tmp_path):
    """README's fine-tuning example, with the tiny GAR and the material's images and tracked clips."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("## Fine-tuning", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    data = write_lines(material.folder / "readme.jsonl", material.lines[:6])  # no SAM2 here: nothing to track
    for text, replacement in (
        ("data/train.jsonl", str(data)),
        ("data/val.jsonl", str(data)),
        ("runs/shop-v1", str(tmp_path / "run")),
        ('model="HaochenWang/GAR-1B"', f"model={str(models / 'gar')!r}, frames=3, batch_size=6"),
    ):
        assert text in code
        code = code.replace(text, replacement)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert summary.steps == 3 and summary.evaluation.step == 3
    held_out = [line["eval_loss"] for line in metrics(summary.out) if "eval_loss" in line]
    assert len(held_out) == 3 and held_out[0] > held_out[1] > held_out[2]  # once per epoch, learning
