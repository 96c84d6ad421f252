import pytest

from garvideo.eval import gar_bench, videorefer
from garvideo.model import find_prompt_indices

# Published per-type results of the released GAR-1B (shared/data/gar-bench-vqa/README.md).
PUBLISHED_GAR_1B = {
    "color": (34, 69),
    "texture/pattern": (17, 29),
    "mirror": (36, 61),
    "ordering": (13, 64),
    "material": (14, 36),
    "shape": (32, 64),
    "relation": (57, 101),
}


def test_released_gar_1b_predictions_score_as_published(shared_dir):
    items = gar_bench.load_items(shared_dir / "data/gar-bench-vqa/gar_1b_vqa_predictions.json")
    report = gar_bench.score(items)
    assert (report.overall.correct, report.overall.total) == (203, 424)
    assert report.overall.accuracy == 47.9
    assert {k: (t.correct, t.total) for k, t in report.per_type.items()} == PUBLISHED_GAR_1B
    text = gar_bench.format_report(report)
    assert text.splitlines()[-1] == "=> overall: [203/424]=47.9"
    assert "relation: [57/101]=56.4" in text


def test_missing_or_odd_outputs_count_as_wrong():
    items = [
        {"type": "color", "answer": "A", "model_output": "a"},
        {"type": "color", "answer": "A"},
        {"type": "color", "answer": "A", "model_output": "A."},
        {"type": "shape", "answer": "B", "model_output": None},
    ]
    report = gar_bench.score(items)
    assert report.to_dict() == {
        "overall": {"correct": 1, "total": 4, "accuracy": 25.0},
        "per_type": {
            "color": {"correct": 1, "total": 3, "accuracy": 33.3},
            "shape": {"correct": 0, "total": 1, "accuracy": 0.0},
        },
    }


def test_vqa_question_matches_reference_layout():
    item = {"question": "Which is red?", "choices": ["A. <Prompt0>", "B. <Prompt1>"]}
    assert gar_bench.vqa_question(item) == (
        "Question: Which is red?\nOptions:\nA. <Prompt0>\nB. <Prompt1>\n"
        "Answer with the correct option's letter directly."
    )
    assert find_prompt_indices(gar_bench.vqa_question(item) + " <Prompt1>") == [0, 1]


@pytest.mark.parametrize(
    "pred, letter",
    [
        ("(B)", "B"),
        ("The answer is (C) a dog", "C"),
        ("D) the cat", "D"),
        ("A", "A"),
        ("A.", "A"),
        ("B. A hat", "B"),
        ("c", "c"),
        ("", None),
        ("...", None),
    ],
)
def test_videorefer_letter_parsing_follows_benchmark_scorer(pred, letter):
    assert videorefer.parse_answer_letter(pred) == letter


def test_videorefer_scoring_per_type():
    preds = [
        {"Answer": "(A) A helmet", "pred": "A", "type": "Basic Questions"},
        {"Answer": "(B) Left", "pred": "(b) left", "type": "Basic Questions"},
        {"Answer": "(C) Runs", "pred": "c", "type": "Sequential Questions"},
        {"Answer": "(D) Jumps", "pred": "", "type": "Future Predictions"},
    ]
    report = videorefer.score(preds)
    # "(b)" does not match the scorer's upper-case patterns, so its first character "(" is taken.
    assert report.per_type["Basic Questions"].correct == 1
    assert report.per_type["Sequential Questions"].correct == 1
    assert report.per_type["Future Predictions"].correct == 0
    assert (report.overall.correct, report.overall.total) == (2, 4)
    assert "####### average #######" in videorefer.format_report(report)
