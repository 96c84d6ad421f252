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
from typing import Any, Sequence

from .scoring import ScoreReport

QUESTION_TYPES = (
    "Basic Questions",
    "Sequential Questions",
    "Relationship Questions",
    "Reasoning Questions",
    "Future Predictions",
)

_PAREN_LETTER = re.compile(r"\(([A-Z])\)")
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
        lines += [f"####### {kind} #######", f"all num: {tally.total}", f"right num: {tally.correct}",
                  f"accuracy: {tally.accuracy}"]
    o = report.overall
    lines += ["####### average #######", f"all num: {o.total}", f"right num: {o.correct}", f"accuracy: {o.accuracy}"]
    return "\n".join(lines)
