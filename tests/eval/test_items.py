"""Reading benchmark files (one reader for annotation and prediction files) and checking a run before a model loads."""

from __future__ import annotations

import json
import re

import pytest

from garvideo.errors import InvalidInputError
from garvideo.eval import gar_bench, score_predictions, videorefer
from garvideo.eval.items import limit_items, read_records

RECORDS = [{"id": 0, "pred": "A"}, {"id": 1, "pred": "(B) é"}]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(RECORDS),
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS),
        "\n" + json.dumps(RECORDS[0]) + "\n\n" + json.dumps(RECORDS[1], ensure_ascii=False) + "\n",
    ],
    ids=["JSON list", "JSON lines", "JSON lines with blank lines"],
)
def test_a_json_list_or_json_lines_of_objects_are_read(text, tmp_path):
    path = tmp_path / "records.json"
    path.write_text(text, encoding="utf-8")
    assert read_records(path, "predictions file") == RECORDS


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"[1, 2", "is not valid JSON, neither a JSON list nor JSON lines"),
        (b'{"a": 1}\nnot json\n', "is not valid JSON"),
        (b"[1, 2]", "must hold JSON objects"),
        (b'{"a": 1}\n[2]\n', "must hold JSON objects"),
        (bytes(range(256)), "is not a text file (not UTF-8)"),
        (b'["caf\xe9"]', "is not a text file (not UTF-8)"),
    ],
    ids=["empty", "blank", "broken list", "broken line", "list of numbers", "line not an object", "binary", "latin-1"],
)
def test_unreadable_files_are_user_errors(content, message, tmp_path):
    path = tmp_path / "file.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match="^" + re.escape(str(path)) + ".*" + re.escape(message)):
        read_records(path, "predictions file")
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        score_predictions(path)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        gar_bench.load_items(path)


def test_annotation_files_are_found_in_their_folder(tmp_path):
    (tmp_path / videorefer.Q_ANNOTATION_FILE).write_text(json.dumps([{"id": 3}]))
    assert videorefer.load_items(tmp_path) == [{"id": 3}]
    assert videorefer.find_data(tmp_path, videorefer.Q_ANNOTATION_FILE) == (
        tmp_path,
        tmp_path / videorefer.Q_ANNOTATION_FILE,
    )
    with pytest.raises(InvalidInputError, match="no VideoRefer-Bench file at .*VideoRefer-Bench-D.json"):
        videorefer.load_items(tmp_path, videorefer.D_ANNOTATION_FILE)
    with pytest.raises(InvalidInputError, match="no GAR-Bench-VQA data at .*nowhere: pass the folder holding"):
        gar_bench.find_data(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="no predictions file at"):
        score_predictions(tmp_path / "missing.jsonl")


def test_a_binary_subset_file_is_a_user_error(tmp_path):
    subset = tmp_path / "subset.txt"
    subset.write_bytes(b"images/a.png\n\xff\xfe\n")
    with pytest.raises(InvalidInputError, match="subset file .* is not a text file"):
        gar_bench.read_subset(subset)


def test_limit_takes_the_first_items():
    assert limit_items(range(5), None) == [0, 1, 2, 3, 4]
    assert limit_items([4, 7, 9], 2) == [4, 7]
    assert limit_items([4], 3) == [4]
    with pytest.raises(InvalidInputError, match="limit must be at least 1, got 0"):
        limit_items([1, 2], 0)
