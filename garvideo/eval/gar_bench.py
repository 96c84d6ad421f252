"""GAR-Bench-VQA: the reference's question format, its prediction files and its scorer.

Items (``GAR-Bench-VQA.json``) hold an image path, one COCO RLE mask per
``<PromptK>``, a question, lettered choices (``"A. ..."``), the answer letter
and a question type. Predictions are the same items with a ``model_output``
field, as the reference's ``inference.py`` writes them. Scoring is the
reference's: exact, case-insensitive match of ``model_output`` and ``answer``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .items import find_data as _find_data
from .items import limit_items, read_item_list
from .scoring import ScoreReport

ANNOTATION_FILE = "GAR-Bench-VQA.json"


def load_items(path: str | Path) -> list[dict[str, Any]]:
    """Read a GAR-Bench-VQA annotation or prediction file (a JSON list of items), or the folder holding it."""
    return read_item_list(path, ANNOTATION_FILE, "GAR-Bench-VQA")


def vqa_question(item: dict[str, Any]) -> str:
    """The reference's multiple-choice text: question, ``Options:``, one choice per line, instruction."""
    lines = [f"Question: {item['question']}", "Options:", *item["choices"]]
    return "\n".join(lines) + "\nAnswer with the correct option's letter directly."


def is_correct(item: dict[str, Any]) -> bool:
    output = item.get("model_output")
    return isinstance(output, str) and output.lower() == str(item.get("answer", "")).lower()


def score(items: Sequence[dict[str, Any]]) -> ScoreReport:
    """Per-type and overall accuracy; an item without ``model_output`` counts as wrong."""
    return ScoreReport.from_outcomes((str(item.get("type", "unknown")), is_correct(item)) for item in items)


def format_report(report: ScoreReport) -> str:
    """The reference's printout: ``type: [correct/total]=acc`` lines, then the overall line."""
    lines = [f"{kind}: [{t.correct}/{t.total}]={t.accuracy}" for kind, t in report.per_type.items()]
    o = report.overall
    lines.append(f"=> overall: [{o.correct}/{o.total}]={o.accuracy}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- choosing what to run


def find_data(data: str | Path) -> tuple[Path, Path]:
    """``(folder, annotation file)`` for a GAR-Bench folder (or its annotation file); images are relative to the folder."""
    return _find_data(data, ANNOTATION_FILE, "GAR-Bench-VQA")


def read_subset(subset: str | Path | Sequence[str]) -> list[str]:
    """Entries of a subset: image paths as the items name them (``images/vqa_2.png``) or item indices.

    A path names a text file with one entry per line (blank lines and ``#`` comments ignored),
    such as ``subset_with_images.txt``; a sequence gives the entries directly.
    """
    if isinstance(subset, (str, Path)):
        path = Path(subset)
        if not path.is_file():
            raise InvalidInputError(f"subset file {path} does not exist")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"subset file {path} is not a text file (not UTF-8): give one image path or item index per line"
            ) from None
    else:
        lines = [str(entry) for entry in subset]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def select_items(
    items: Sequence[Mapping[str, Any]], subset: Sequence[str] | None = None, limit: int | None = None
) -> list[int]:
    """Indices of the items to run: those the subset names (image path or index), then the first ``limit``."""
    chosen = list(range(len(items)))
    if subset is not None:
        by_image: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            by_image.setdefault(str(item.get("image", "")), []).append(index)
        wanted: set[int] = set()
        unknown = []
        for entry in subset:
            if entry in by_image:
                wanted.update(by_image[entry])
            elif entry.isdigit() and int(entry) < len(items):
                wanted.add(int(entry))
            else:
                unknown.append(entry)
        if unknown:
            raise InvalidInputError(
                f"the subset names {len(unknown)} entries that are neither an item's image nor an item index "
                f"(0 to {len(items) - 1}), e.g. {unknown[0]!r}"
            )
        chosen = [i for i in chosen if i in wanted]
    return limit_items(chosen, limit)
