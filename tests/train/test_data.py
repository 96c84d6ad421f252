"""Reading training data: garvideo's JSON lines, COCO region captions, VideoRefer-700K; every bad line one error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app
from PIL import Image

from garvideo.errors import InvalidInputError
from garvideo.masks import decode_rle, encode_rle
from garvideo.train import DatasetError, read_dataset
from garvideo.train.config import TrainConfig
from garvideo.train.examples import ExampleBuilder
from garvideo.train.schedule import epoch_batches, learning_rate, steps_per_epoch

from .conftest import write_lines

IMAGE = {"image": "image0.png", "regions": [{"name": "thing", "mask": "image0_mask.png"}]}
# Each bad line, and what its one error must say.
BAD_LINES = [
    ("not json", "not valid JSON"),
    ('["a list"]', "expected a JSON object"),
    ({**IMAGE, "caption": "x", "colour": "red"}, "unknown keys ['colour']"),
    ({"regions": IMAGE["regions"], "caption": "x"}, 'exactly one of "image"'),
    ({**IMAGE, "video": "clip0.mp4", "caption": "x"}, 'exactly one of "image"'),
    ({**IMAGE, "image": "missing.png", "caption": "x"}, "image 'missing.png' not found"),
    ({"image": "image0.png", "regions": [], "caption": "x"}, '"regions" must be a non-empty list'),
    (
        {"image": "image0.png", "regions": [{"name": "t", "box": [1, 2, 30, 20]}], "caption": "x"},
        "image regions are masks",
    ),
    (
        {"image": "image0.png", "regions": [{"name": "t", "mask": "nope.png"}], "caption": "x"},
        "mask 'nope.png' not found",
    ),
    ({**IMAGE}, 'give a "caption"'),
    ({**IMAGE, "caption": "x", "question": "What is <thing>?"}, 'give a "caption"'),
    ({**IMAGE, "caption": "  "}, '"caption" must be non-empty text'),
    ({**IMAGE, "caption": "a <|image|> token"}, "special token '<|image|>'"),
    ({**IMAGE, "question": "What is <thing>?"}, 'needs its "answer"'),
    ({**IMAGE, "question": "What is <dog>?", "answer": "x"}, "names <dog>, which is not among the given regions"),
    ({**IMAGE, "question": "What is <thing>?", "answer": "<dog> is"}, "the answer names <dog>"),
    ({**IMAGE, "question": "Q <thing>?", "answer": "c", "options": ["a", "b"]}, "neither one of the options"),
    ({**IMAGE, "question": "Q <thing>?", "answer": "a", "options": ["a"]}, "at least two texts"),
    ({**IMAGE, "caption": "x", "options": ["a", "b"]}, '"answer" and "options" go with a "question"'),
    ({"video": "clip0.mp4", "tracks": "nope.json", "caption": "x"}, "tracks file 'nope.json' not found"),
    ({**IMAGE, "tracks": "clip0_object.json", "caption": "x", "regions": None}, '"tracks" are for videos'),
    (
        {"video": "clip0.mp4", "regions": [{"name": "a", "when": {"frame": 0}, "box": [1, 1, 9, 9]}], "tracks": "t"},
        'give "regions" (to track) or "tracks"',
    ),
    (
        {"video": "clip0.mp4", "regions": [{"name": "a", "box": [1, 1, 9, 9]}], "caption": "x"},
        "region 1: region 'a' needs \"when\"",
    ),
    (
        {
            "video": "clip0.mp4",
            "regions": [
                {"name": "a", "when": {"frame": 0}, "box": [1, 1, 9, 9]},
                {"name": "b", "when": {"frame": 0}, "box": [1, 1, 9, 9]},
            ],
            "caption": "x",
        },
        "a caption is of one region, 2 are given",
    ),
    ({"video": "clip0.mp4", "tracks": "clip0_object.json", "caption": "x", "fps": 5}, '"fps" is for frame folders'),
]


def test_every_bad_line_is_one_error_naming_it(material, tmp_path):
    good = {**IMAGE, "caption": "A thing."}
    lines = [good, *(line for line, _ in BAD_LINES), good]
    path = material.folder / "bad.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    problems = caught.value.problems
    assert len(problems) == len(BAD_LINES)
    for number, (problem, (_, expected)) in enumerate(zip(problems, BAD_LINES), 2):
        assert problem.startswith(f"bad.jsonl line {number}: "), problem
        assert expected in problem, (problem, expected)
    assert str(caught.value).startswith(f"{len(BAD_LINES)} of {len(lines)} examples in ")


def test_good_lines_read_as_examples(material):
    dataset = read_dataset(material.train)
    assert dataset.format == "garvideo" and len(dataset) == 8
    kinds = [(e.kind, e.task, e.needs_tracking) for e in dataset.examples]
    assert (
        kinds
        == [("image", "caption", False)] * 4 + [("video", "caption", False)] * 2 + [("video", "caption", True)] * 2
    )
    assert [e.target for e in dataset.examples] == [line["caption"] for line in material.lines]
    assert dataset.examples[4].names == ("object",) and dataset.examples[5].names == ("square",)
    assert read_dataset(material.train).fingerprint() == dataset.fingerprint()
    choice = material.folder / "choice.jsonl"
    write_lines(choice, [{**IMAGE, "question": "Which <thing>?", "options": ["a dog", "a ball"], "answer": "a ball"}])
    (example,) = read_dataset(choice).examples
    assert (example.task, example.target, example.options) == ("choice", "B", ("a dog", "a ball"))
    write_lines(choice, [{**IMAGE, "question": "Which <thing>?", "options": ["a dog", "a ball"], "answer": "(a)"}])
    assert read_dataset(choice).examples[0].target == "A"


def _coco(folder, segmentation, caption="A red ball.") -> dict:
    return {
        "images": [{"id": 7, "file_name": "image0.png", "height": 48, "width": 64}],
        "annotations": [
            {"id": 1, "image_id": 7, "segmentation": segmentation, "caption": caption},
            {"id": 2, "image_id": 7, "segmentation": segmentation},  # no caption: not a region caption, skipped
        ],
    }


def test_coco_region_captions_with_rle_and_polygons(material, pipeline):
    mask = np.zeros((48, 64), bool)
    mask[10:30, 5:40] = True
    path = material.folder / "coco.json"
    path.write_text(json.dumps(_coco(material.folder, encode_rle(mask))))
    (example,) = read_dataset(path).examples
    assert (example.kind, example.target, example.names) == ("image", "A red ball.", ("region",))
    assert np.array_equal(example.prompts()[0].mask, mask)
    path.write_text(json.dumps(_coco(material.folder, [[5, 10, 40, 10, 40, 30, 5, 30]])))
    (polygon,) = read_dataset(path, "coco").examples
    drawn = polygon.prompts()[0].mask
    assert drawn.shape == (48, 64) and drawn[12:28, 7:38].all() and not drawn[:8].any()
    item = ExampleBuilder(pipeline, 3, "vanilla").training_input(example)
    assert item.answer_tokens == len(pipeline.gar.processor.tokenizer("A red ball.")["input_ids"])  # + EOS - BOS
    bad = _coco(material.folder, {"counts": "x"})
    bad["annotations"].append({"id": 3, "image_id": 99, "segmentation": encode_rle(mask), "caption": "x"})
    path.write_text(json.dumps(bad))
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    assert [p.split(":")[0] for p in caught.value.problems] == ["coco.json annotation 1", "coco.json annotation 3"]
    assert 'needs "size" and "counts"' in caught.value.problems[0] and "image_id 99" in caught.value.problems[1]


def _videorefer_item(clip, conversations) -> dict:
    annotation = [
        {str(f): {"segmentation": encode_rle(obj.masks[f]) if obj.masks[f].any() else None} for f in (0, 2, 4, 5)}
        for obj in clip.objects
    ]
    return {"video": "clip0.mp4", "conversations": conversations, "annotation": annotation}


def test_videorefer_items_become_questions_about_their_masks(material, pipeline):
    clip = material.clips[0]
    turns = [
        {"from": "human", "value": "<video>\nWhat is <region> doing next to <region>?"},
        {"from": "gpt", "value": "It moves to the right."},
        {"from": "human", "value": "And <region>?"},
        {"from": "gpt", "value": "It moves to the left."},
    ]
    path = material.folder / "videorefer.json"
    path.write_text(json.dumps([_videorefer_item(clip, turns)]))
    dataset = read_dataset(path)
    assert dataset.format == "videorefer" and len(dataset) == 2
    first, second = dataset.examples
    assert first.question == "What is <region1> doing next to <region2>?" and first.names == ("region1", "region2")
    assert (second.question, second.target) == ("And <region1>?", "It moves to the left.")
    builder = ExampleBuilder(pipeline, 3, "vanilla")
    tracks = builder.tracks(first, _reader(first))
    assert [t.name for t in tracks] == ["region1", "region2"] and [f.index for f in tracks[0].frames] == [0, 2, 4, 5]
    assert np.array_equal(decode_rle(tracks[0].frame(2).rle), clip.objects[0].masks[2])
    item = builder.training_input(first)
    assert item.prompt.names == ("region1", "region2")
    odd = _videorefer_item(clip, turns[:1])
    wrong = _videorefer_item(clip, [{"from": "human", "value": "What is <region>?"}, turns[1]])
    path.write_text(json.dumps([odd, wrong, {"image": "a.png"}]))
    with pytest.raises(DatasetError) as caught:
        read_dataset(path, "videorefer")
    problems = caught.value.problems
    assert (
        "end with the gpt turn" in problems[0]
        and "marks 1 regions (region1) but the annotation has masks for 2" in problems[1]
    )
    assert "VideoRefer image items are not read" in problems[2]


def _reader(example):
    from garvideo.video import open_video

    return open_video(example.media)


def test_check_reports_counts_and_tokens_and_lists_bad_lines(material, models):
    run = CliRunner().invoke(
        app, ["train", str(material.train), "--check", "--model", str(models / "gar"), "--frames", "3", "--json", "-q"]
    )
    assert run.exit_code == 0, run.output
    (report,) = json.loads(run.stdout)
    assert report["examples"] == 8 and report["kinds"] == {"image": 4, "video": 4} and report["tasks"] == {"caption": 8}
    assert report["prompts_after_tracking"] == 2 and report["prompt_tokens"]["count"] == 6
    tokenizer_counts = [len(_tokens(models, line["caption"])) + 1 for line in material.lines]
    assert report["answer_tokens"]["total"] == sum(tokenizer_counts) and report["answer_tokens"]["max"] == max(
        tokenizer_counts
    )
    bad = write_lines(material.folder / "two-bad.jsonl", [{**IMAGE, "caption": "x"}, {**IMAGE}, {"image": "x.png"}])
    run = CliRunner().invoke(app, ["train", str(bad), "--check", "--model", str(models / "gar"), "-q"])
    assert run.exit_code == 2
    lines = run.output.splitlines()
    assert len(lines) == 2 and all(line.startswith("garvideo: error: two-bad.jsonl line ") for line in lines)
    assert "line 2:" in lines[0] and "line 3:" in lines[1]


def _tokens(models, text):
    from garvideo.model import GARProcessor

    return GARProcessor.from_pretrained(models / "gar").tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--lr", "0"], "--lr must be a number above 0"),
        (["--warmup", "1"], "--warmup must be a number at least 0 and below 1"),
        (["--target-modules", "q proj"], "--target-modules must be layer names"),
        ([], "give the run folder with --out DIR"),
        (["--format", "csv"], "Invalid value for '--format'"),
    ],
)
def test_command_line_mistakes_are_one_line(material, options, message):
    run = CliRunner().invoke(app, ["train", str(material.train), *options])
    assert run.exit_code == 2 and run.output.count("\n") == 1 and message in run.output, run.output


def test_an_existing_run_is_resumed_only_when_asked(material, models, tmp_path):
    from garvideo.train.checkpoints import RunFolder

    run = RunFolder(tmp_path / "run")
    record = {"base": {}, "config": TrainConfig().to_dict(), "data": {"fingerprint": "a"}, "eval": None}
    run.claim(record, TrainConfig(), resume=False)
    with pytest.raises(InvalidInputError, match="already holds a run: add --resume"):
        run.claim(record, TrainConfig(), resume=False)
    run.claim(record, TrainConfig(keep=9), resume=True)  # how many checkpoints to keep changes nothing computed
    with pytest.raises(InvalidInputError, match=r"--lr 0.5 \(was 0.0001\), the training data"):
        run.claim({**record, "data": {"fingerprint": "b"}}, TrainConfig(lr=0.5), resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="holds no garvideo run"):
        RunFolder(tmp_path / "other").claim(record, TrainConfig(), resume=True)
    with pytest.raises(InvalidInputError, match="is not empty: give a new folder"):
        RunFolder(tmp_path / "other").claim(record, TrainConfig(), resume=False)  # nothing of the user's mixed in


def test_the_data_order_and_schedule_are_functions_of_the_settings():
    lengths = [5, 50, 7, 48, 6, 49, 8, 47]
    first = epoch_batches(lengths, 2, seed=0, epoch=0, group=5)
    assert first == epoch_batches(lengths, 2, seed=0, epoch=0, group=5)  # the same on resume
    assert first != epoch_batches(lengths, 2, seed=0, epoch=1, group=5)  # another order each epoch
    assert sorted(i for batch in first for i in batch) == list(range(8))
    assert max(lengths[i] for i in first[0]) == 50  # the longest batch first: a too-large one fails at once
    assert all(abs(lengths[a] - lengths[b]) <= 3 for a, b in first)  # similar lengths share a batch
    assert steps_per_epoch(10, 2, 2) == 3
    rates = [learning_rate(step, 100, 0.1) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == 1.0 and rates[10] == 1.0
    assert all(a >= b for a, b in zip(rates[10:], rates[11:])) and rates[-1] < 0.001


def test_image_masks_of_another_size_are_refused_when_built(material, pipeline):
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(material.folder / "small_mask.png")
    path = write_lines(
        material.folder / "sizes.jsonl",
        [{**IMAGE, "regions": [{"name": "a", "mask": "small_mask.png"}], "caption": "x"}],
    )
    (example,) = read_dataset(path).examples
    with pytest.raises(InvalidInputError, match="10x10"):
        ExampleBuilder(pipeline, 3, "vanilla").training_input(example)


def test_the_command_line_and_the_api_train_with_the_same_defaults():
    """``garvideo train``'s options default to TrainConfig's fields (both read garvideo/defaults.py)."""
    import dataclasses

    from garvideo_cli.train import train_command

    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    given = train_command.make_context("train", ["data.jsonl"], resilient_parsing=True).params  # nothing given
    options = {name: value for name, value in given.items() if name in fields}
    assert set(options) == set(fields)  # every setting is an option
    options["target_modules"] = tuple(options["target_modules"].split(","))
    assert options == fields
