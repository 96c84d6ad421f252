"""Training builds exactly the prompts inference sends, and the loss is on the answer's tokens only.

The inference side is the real code path, spied on: what ``GAR.describe``, ``GAR.ask``, ``Pipeline.describe``
and ``Pipeline.ask`` hand to generation is captured and compared with the training input's prompt part.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from garvideo.model import GAR, GenerationSettings
from garvideo.tracking import load_tracks
from garvideo.train.data import parse_line
from garvideo.train.examples import IGNORE, ExampleBuilder
from garvideo.train.steps import batch_loss

SHORT = GenerationSettings(max_new_tokens=2)


@pytest.fixture
def sent(monkeypatch):
    """Every GARInputs handed to generation, in order (the real generation still runs)."""
    captured = []
    original = GAR._generate

    def spy(self, items, *args, **kwargs):
        captured.extend(items)
        return original(self, items, *args, **kwargs)

    monkeypatch.setattr(GAR, "_generate", spy)
    return captured


@pytest.fixture(scope="module")
def builder(pipeline):
    return ExampleBuilder(pipeline, frames=3, tiling="vanilla")


def example(material, line: dict, number: int = 1):
    return parse_line(json.dumps(line), f"test line {number}", material.folder)


def same_inputs(a, b) -> bool:
    """The same token ids, images (pixels and prompt maps) and replay runs."""
    return (
        torch.equal(a.input_ids, b.input_ids)
        and len(a.images) == len(b.images)
        and all(
            torch.equal(x.pixel_tiles, y.pixel_tiles) and torch.equal(x.prompt_tiles, y.prompt_tiles)
            for x, y in zip(a.images, b.images)
        )
        and a.runs == b.runs
    )


def hand_labels(processor, prompt_length: int, answer: str) -> torch.Tensor:
    answer_ids = processor.tokenizer(answer, add_special_tokens=False)["input_ids"] + [processor.eos_token_id]
    return torch.tensor([IGNORE] * prompt_length + answer_ids)


def test_image_caption_is_describes_prompt_then_the_caption(material, pipeline, builder, sent):
    line = material.lines[0]
    item = builder.training_input(example(material, line))
    pipeline.gar.describe(material.folder / line["image"], material.folder / line["regions"][0]["mask"], SHORT)
    prompt_part = item.inputs.input_ids[: item.prompt_tokens]
    assert same_inputs(sent[0], item.prompt.inputs)
    assert torch.equal(prompt_part, sent[0].input_ids)
    processor = pipeline.gar.processor
    # the quirks of the released prompts are kept: the doubled <|begin_of_text|> (Q6), <Prompt1> (Q9)
    assert prompt_part[:2].tolist() == [processor.bos_token_id] * 2
    assert "<Prompt1>" in item.prompt.inputs.text
    assert torch.equal(item.labels, hand_labels(processor, item.prompt_tokens, line["caption"]))
    # the answer is the assistant turn as the chat template writes it: the caption, then <|eot_id|>
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]},
        {"role": "assistant", "content": line["caption"]},
    ]
    rendered = processor.tokenizer.apply_chat_template(
        conversation, chat_template=processor.chat_template, tokenize=False
    )
    assert rendered.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n" + line["caption"] + "<|eot_id|>")
    joint = processor.tokenizer(item.prompt.inputs.text + line["caption"] + "<|eot_id|>", add_special_tokens=False)
    alone = processor.tokenizer(item.prompt.inputs.text, add_special_tokens=False)
    assert joint["input_ids"][len(alone["input_ids"]) :] == item.labels[item.prompt_tokens :].tolist()


def test_image_multiple_choice_is_asks_prompt_and_learns_the_letter(material, pipeline, builder, sent):
    line = {
        "image": "image1.png",
        "regions": [{"name": "thing", "mask": "image1_mask.png"}],
        "question": "What is <thing>?",
        "options": ["a dog", "a red ball"],
        "answer": "a red ball",
    }
    item = builder.training_input(example(material, line))
    answer = pipeline.gar.ask(
        material.folder / "image1.png",
        {"thing": material.folder / "image1_mask.png"},
        line["question"],
        options=line["options"],
        generation=SHORT,
    )
    assert answer.prompt_tokens == item.prompt_tokens
    assert same_inputs(sent[0], item.prompt.inputs)
    assert torch.equal(item.labels, hand_labels(pipeline.gar.processor, item.prompt_tokens, "B"))


def test_video_caption_is_describes_overall_prompt(material, pipeline, builder, sent):
    line = material.lines[4]  # tracks given
    item = builder.training_input(example(material, line))
    tracks = load_tracks(material.folder / line["tracks"])
    pipeline.describe(material.folder / line["video"], tracks=tracks, frames=3, max_new_tokens=2)
    assert same_inputs(sent[0], item.prompt.inputs)  # the overall description comes first
    assert torch.equal(item.labels, hand_labels(pipeline.gar.processor, item.prompt_tokens, line["caption"]))


def test_video_caption_tracks_as_describe_does(material, pipeline, builder, sent, tmp_path):
    line = material.lines[6]  # a box on frame 1, tracked by SAM2
    tracked = ExampleBuilder(pipeline, frames=3, tiling="vanilla", tracks_dir=tmp_path)
    item = tracked.training_input(example(material, line))
    assert len(list(tmp_path.glob("*.json"))) == 1  # its tracks are kept for the next epochs
    from garvideo.pipeline import RegionPrompt

    region = RegionPrompt.from_dict(line["regions"][0])
    pipeline.describe(material.folder / line["video"], [region], frames=3, max_new_tokens=2, progress=False)
    assert same_inputs(sent[0], item.prompt.inputs)
    again = tracked.training_input(example(material, line))  # from the kept tracks
    assert same_inputs(again.prompt.inputs, item.prompt.inputs)


def test_video_question_is_asks_prompt_and_names_become_region_tokens(material, pipeline, builder, sent):
    line = {
        "video": "clip0.mp4",
        "tracks": "clip0_object.json",
        "question": "Where does <object> go?",
        "answer": "<object> moves to the right.",
    }
    item = builder.training_input(example(material, line))
    tracks = load_tracks(material.folder / line["tracks"])
    pipeline.ask(material.folder / "clip0.mp4", line["question"], tracks=tracks, frames=3, max_new_tokens=2)
    assert same_inputs(sent[0], item.prompt.inputs)
    # inference writes <Prompt0> back as <object>: training writes <object> as <Prompt0>
    expected = hand_labels(pipeline.gar.processor, item.prompt_tokens, "<Prompt0> moves to the right.")
    assert torch.equal(item.labels, expected)


def test_the_loss_is_the_cross_entropy_of_the_answer_tokens_only(material, pipeline, builder):
    gar = pipeline.gar
    items = [builder.training_input(example(material, material.lines[k], k)) for k in (0, 4)]
    assert items[0].inputs.num_tokens != items[1].inputs.num_tokens  # the batch is padded
    with torch.no_grad():
        loss, count = batch_loss(gar, items)
        expected, tokens = 0.0, 0
        for item, line in zip(items, (material.lines[0], material.lines[4])):
            (features,) = gar.model.image_features([item.inputs])
            embeds = gar.model.embed_prompt(item.inputs, features, gar.box_mode).inputs_embeds
            logits = gar.model.mllm(inputs_embeds=embeds[None]).logits[0]
            labels = hand_labels(gar.processor, item.prompt_tokens, line["caption"])
            expected += float(F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE, reduction="sum"))
            tokens += int((labels != IGNORE).sum())
    assert count == tokens == sum(item.answer_tokens for item in items)
    assert float(loss) == pytest.approx(expected, rel=1e-4)
