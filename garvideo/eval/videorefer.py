"""VideoRefer-Bench: the published formats and the -Q scorer's answer parsing.

VideoRefer-Bench-Q items (``VideoRefer-Bench-Q.json``) look like::

    {"id": 0, "video": "DAVIS/JPEGImages/480p/aerobatics",
     "Question": "What is <object3><region> not wearing?", "type": "Basic Questions",
     "options": ["(A) A helmet", "(B) A hat", ...], "Answer": "(A) A helmet",
     "frame_idx": "57",
     "annotation": [{"0": {"segmentation": RLE}, "3": {"segmentation": RLE}, ...}, ...]}

``video`` is a folder of frames (sorted file names give frame indices) or a
video file; ``annotation`` holds one dict per object, in the order of the
``<region>`` markers of the question, mapping frame index to an RLE mask (or
``null``). VideoRefer-Bench-D items have ``caption`` instead of a question;
its judge reads JSON lines ``{"video", "caption", "pred"}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .items import find_data as _find_data
from .items import read_item_list
from .scoring import ScoreReport

Q_ANNOTATION_FILE = "VideoRefer-Bench-Q.json"
D_ANNOTATION_FILE = "VideoRefer-Bench-D.json"


@dataclass(frozen=True)
class VideoReferBenchmark:
    """What tells VideoRefer-Bench-Q and -D apart for a run.

    ``describe``: each item is one object to describe (-D, judged by an LLM) rather than a
    multiple-choice question (-Q, scored here). ``video_folders``: where the items' videos are
    looked up, relative to the data folder, in order.
    """

    name: str
    annotation_file: str
    describe: bool
    video_folders: tuple[str, ...] = (".",)


BENCHMARK_Q = VideoReferBenchmark("VideoRefer-Bench-Q", Q_ANNOTATION_FILE, describe=False)
#: -D's videos ship in ``Panda-70M-part/`` when they are not beside the annotation file.
BENCHMARK_D = VideoReferBenchmark(
    "VideoRefer-Bench-D", D_ANNOTATION_FILE, describe=True, video_folders=(".", "Panda-70M-part")
)

QUESTION_TYPES = (
    "Basic Questions",
    "Sequential Questions",
    "Relationship Questions",
    "Reasoning Questions",
    "Future Predictions",
)

_PAREN_LETTER = re.compile(r"\(([A-Z])\)")
_MARKER = re.compile(r"(?:<object(\d+)>)?<region>")
_OPTION_LABEL = re.compile(r"^\s*\(([A-Z])\)\s*")
_LETTER_PAREN = re.compile(r"([A-Z])\)")


def parse_answer_letter(text: str) -> str | None:
    """The answer letter as VideoRefer-Bench-Q's own scorer reads it.

    In order: ``(B)`` anywhere; else ``B)`` anywhere; else the first character
    once periods are removed (``"B. a dog"`` gives ``B``, ``"b"`` gives
    ``b``). The official script crashes on an empty answer; here that gives
    None, which scores as wrong.
    """
    match = _PAREN_LETTER.search(text) or _LETTER_PAREN.search(text)
    if match:
        return match.group(1)
    stripped = text.replace(".", "")
    return stripped[0] if stripped else None


def answer_letter(answer: str) -> str:
    """Ground-truth letter: ``"(A) A helmet"`` gives ``A``; a bare ``"A"`` stays."""
    match = _PAREN_LETTER.search(answer)
    return match.group(1) if match else answer


def is_correct(prediction: dict[str, Any]) -> bool:
    letter = parse_answer_letter(str(prediction.get("pred") or ""))
    return letter is not None and letter.lower() == answer_letter(str(prediction["Answer"])).lower()


def score(predictions: Sequence[dict[str, Any]]) -> ScoreReport:
    """Per-type and overall accuracy over prediction records ``{"Answer", "pred", "type"}``."""
    return ScoreReport.from_outcomes((str(p.get("type", "unknown")), is_correct(p)) for p in predictions)


def format_report(report: ScoreReport) -> str:
    """The benchmark script's printout (counts and accuracy per type, then the average)."""
    lines: list[str] = []
    for kind, tally in report.per_type.items():
        lines += [
            f"####### {kind} #######",
            f"all num: {tally.total}",
            f"right num: {tally.correct}",
            f"accuracy: {tally.accuracy}",
        ]
    o = report.overall
    lines += ["####### average #######", f"all num: {o.total}", f"right num: {o.correct}", f"accuracy: {o.accuracy}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------- reading the benchmark


def load_items(path: str | Path, annotation_file: str = Q_ANNOTATION_FILE) -> list[dict[str, Any]]:
    """A VideoRefer-Bench annotation file (a JSON list), or ``annotation_file`` inside a folder."""
    return read_item_list(path, annotation_file, "VideoRefer-Bench")


def find_data(data: str | Path, annotation_file: str) -> tuple[Path, Path]:
    """``(folder, annotation file)`` for a VideoRefer-Bench folder (or its annotation file)."""
    return _find_data(data, annotation_file, "VideoRefer-Bench")


def convert_question(text: str) -> tuple[str, list[str]]:
    """A VideoRefer question with ``<objectN><region>`` markers as a garvideo question about named regions.

    Returns the text with each marker replaced by ``<objectN>`` and the region names in marker
    order (one per marker, as the ``annotation`` list is ordered; a bare ``<region>`` is named
    ``regionK`` after its position, 1-based). ``"What is <object3><region> doing?"`` gives
    ``("What is <object3> doing?", ["object3"])``.
    """
    names: list[str] = []

    def rename(match: re.Match) -> str:
        name = f"object{match.group(1)}" if match.group(1) is not None else f"region{len(names) + 1}"
        names.append(name)
        return f"<{name}>"

    return _MARKER.sub(rename, text), names


def option_texts(options: Sequence[str]) -> list[str]:
    """``["(A) A helmet", "(B) A hat"]`` -> ``["A helmet", "A hat"]``: garvideo letters options itself.

    The labels must run A, B, C, ... in order (so that garvideo's letter is the benchmark's);
    options without a label are kept as they are.
    """
    texts = []
    for position, option in enumerate(options):
        if not isinstance(option, str):
            raise InvalidInputError(f"option {position + 1} is not a text: {option!r}")
        match = _OPTION_LABEL.match(option)
        if match is None:
            texts.append(option.strip())
            continue
        expected = chr(ord("A") + position)
        if match.group(1) != expected:
            raise InvalidInputError(
                f"option {option!r} is labelled ({match.group(1)}) where ({expected}) was expected: "
                "options must be labelled (A), (B), ... in order"
            )
        texts.append(option[match.end() :].strip())
    return texts
