import json

import numpy as np
import pytest
from PIL import Image

from garvideo import InvalidInputError
from garvideo.batch import read_manifest
from garvideo.timecode import When


def _write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_lines_parse_with_paths_relative_to_the_folder_or_the_manifest(tmp_path):
    folder = tmp_path / "videos"
    (folder / "clips").mkdir(parents=True)
    (folder / "clips" / "a.mp4").write_bytes(b"")
    lists = tmp_path / "lists"
    lists.mkdir()
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(lists / "m.png")
    manifest = _write(
        lists / "r.jsonl",
        [
            {"video": "clips/a.mp4", "regions": [{"name": "dog", "box": [1, 2, 30, 40], "frame": 12}]},
            "",
            "# a comment",
            {
                "video": "clips/a.mp4",
                "regions": [
                    {"points": [[5, 6], [7, 8]], "labels": [1, 0], "time": 4.5},
                    {"name": "m", "mask": "m.png", "frame": 0},
                ],
                "question": "Is <region1> near <m>?",
                "options": ["yes", "no"],
            },
        ],
    )
    first, second = read_manifest(manifest)
    assert (first.number, second.number) == (1, 4)
    request = first.parse(folder, lists)
    assert request.video == folder / "clips" / "a.mp4"
    (dog,) = request.regions
    assert dog.name == "dog" and dog.box == (1, 2, 30, 40) and dog.when == When(frame=12)
    request = second.parse(folder, lists)
    clicks, mask = request.regions
    assert clicks.name == "region1" and clicks.labels == (1, 0) and clicks.when == When(time=4.5)
    assert mask.mask.shape == (8, 8) and mask.mask.sum() == 8
    assert request.question.startswith("Is") and request.options == ("yes", "no")
    # keys are stable, readable and distinct
    assert first.key.startswith("a-") and first.key != second.key
    assert [line.key for line in read_manifest(manifest)] == [first.key, second.key]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ({"regions": []}, "'video' must be a path"),
        ({"video": "missing.mp4", "regions": [{"box": [1, 2, 3, 4], "frame": 0}]}, "not found"),
        ({"video": "a.mp4", "regions": []}, "non-empty list"),
        ({"video": "a.mp4", "regions": [{"box": [1, 2, 3, 4]}]}, "exactly one of 'frame'"),
        ({"video": "a.mp4", "regions": [{"box": [1, 2, 3, 4], "frame": 0, "time": 1}]}, "exactly one of 'frame'"),
        ({"video": "a.mp4", "regions": [{"box": [4, 2, 3, 4], "frame": 0}]}, "x1 < x2"),
        ({"video": "a.mp4", "regions": [{"box": [1, 2, 3, 4], "frame": 0, "colour": "red"}]}, "unknown keys"),
        (
            {"video": "a.mp4", "regions": [{"box": [1, 2, 3, 4], "frame": 0}], "options": ["a", "b"]},
            "need a 'question'",
        ),
        ({"video": "a.mp4", "regions": [{"mask": "nope.png", "frame": 0}]}, "mask 'nope.png' not found"),
        (
            {
                "video": "a.mp4",
                "regions": [{"name": "dog", "box": [1, 2, 3, 4], "frame": 0}],
                "question": "Is <cat> ok?",
            },
            r"line 1: the question names <cat>, which is not among the given regions \(dog\)",
        ),
        (
            {
                "video": "a.mp4",
                "regions": [{"name": "dog", "box": [1, 2, 3, 4], "frame": 0}],
                "question": "Which is <dog>?",
                "options": ["<dog>", "<cow>"],
            },
            "the question names <cow>",
        ),
    ],
)
def test_a_bad_line_fails_alone_with_a_clear_reason(tmp_path, line, message):
    (tmp_path / "a.mp4").write_bytes(b"")
    manifest = _write(tmp_path / "r.jsonl", [line])
    (item,) = read_manifest(manifest)
    with pytest.raises(InvalidInputError, match=message):
        item.parse(tmp_path, tmp_path)


def test_whole_file_problems(tmp_path):
    with pytest.raises(InvalidInputError, match="no regions file"):
        read_manifest(tmp_path / "none.jsonl")
    with pytest.raises(InvalidInputError, match="holds no items"):
        read_manifest(_write(tmp_path / "empty.jsonl", ["", "# nothing"]))
    same = {"video": "a.mp4", "regions": [{"box": [1, 2, 3, 4], "frame": 0}]}
    with pytest.raises(InvalidInputError, match="line 2 repeats line 1"):
        read_manifest(_write(tmp_path / "twice.jsonl", [same, same]))


def test_a_question_about_text_regions_is_checked_once_they_are_found(tmp_path):
    # car#2 is the second match of the phrase, a name the line cannot know before the detector runs
    (tmp_path / "a.mp4").write_bytes(b"")
    line = {"video": "a.mp4", "regions": [{"name": "car", "text": "a red car"}], "question": "Is <car#2> red?"}
    (item,) = read_manifest(_write(tmp_path / "r.jsonl", [line]))
    assert item.parse(tmp_path, tmp_path).question == "Is <car#2> red?"
