"""What a detector finds on one picture: boxes in pixels, each with its score and the words it matched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import defaults
from ..errors import InvalidInputError

#: Grounding DINO's usual thresholds (its demo's defaults): a box counts when its best token
#: score is above ``box_threshold``; words of the phrase scoring above ``text_threshold`` label it.
DEFAULT_BOX_THRESHOLD = defaults.BOX_THRESHOLD
DEFAULT_TEXT_THRESHOLD = defaults.TEXT_THRESHOLD

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """One box the phrase matched: ``x1, y1, x2, y2`` in pixels of the picture given, its score in [0, 1]
    and ``label``, the words of the phrase whose scores passed the text threshold."""

    box: Box
    score: float
    label: str

    def to_dict(self) -> dict:
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 4), "label": self.label}


@dataclass(frozen=True)
class FrameDetections:
    """Everything one picture gave for one phrase.

    ``detections`` are the boxes that passed both thresholds, most confident
    first; ``best_score`` is the highest score of any box, kept or not (what
    a user needs to hear when nothing passed).
    """

    phrase: str
    detections: tuple[Detection, ...]
    best_score: float
    box_threshold: float
    text_threshold: float

    @property
    def found(self) -> bool:
        return bool(self.detections)


def check_threshold(value: float, what: str) -> float:
    """A threshold as a float in [0, 1], or an :class:`InvalidInputError` naming it."""
    if isinstance(value, bool):
        raise InvalidInputError(f"the {what} must be a number between 0 and 1, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the {what} must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise InvalidInputError(f"the {what} must be between 0 and 1 (a detector score), got {value!r}")
    return number


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes (0 when either has no area)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


#: Boxes overlapping a more confident one by more than this IoU are the same object found twice.
DUPLICATE_IOU = 0.7


def distinct(detections: Sequence[Detection], count: int, max_overlap: float = DUPLICATE_IOU) -> list[Detection]:
    """The ``count`` most confident detections, skipping any that overlaps a more confident one chosen
    before it by more than ``max_overlap`` IoU (a detector often boxes one object twice)."""
    chosen: list[Detection] = []
    for detection in sorted(detections, key=lambda d: -d.score):
        if len(chosen) == count:
            break
        if all(box_iou(detection.box, c.box) <= max_overlap for c in chosen):
            chosen.append(detection)
    return chosen
