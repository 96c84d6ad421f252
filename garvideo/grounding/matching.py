"""Which of a phrase's detections are objects already known, found again, or new (live and offline searches).

A detection overlapping a region seen now is that region; one on a lost region's last box finds it again;
any other is a new instance, named from the names still free. The most confident detection decides first,
and each region takes at most one detection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .detections import Detection, box_iou

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Match:
    """What one search decided for one detection: ``region`` is ``found`` again, or is a ``new`` instance."""

    region: str
    how: str  # "found" or "new"
    detection: Detection


def match_detections(
    detections: Sequence[Detection],
    current: Mapping[str, Box | None],
    lost: Mapping[str, Box | None],
    free_names: Sequence[str],
    min_iou: float,
) -> list[Match]:
    """Decide, most confident detection first, what each of a phrase's detections is.

    ``current``: the phrase's instances seen on the frame (their boxes now); ``lost``: those not seen, with their
    last box. A detection overlapping a region seen now by ``min_iou`` is that region (nothing to do); else one
    overlapping a lost region's last box by ``min_iou`` finds it again (the best overlap wins; one detection per
    region); else it becomes the next of ``free_names`` (none left: ignored).
    """
    claimed: set[str] = set()
    names = list(free_names)
    out: list[Match] = []
    for detection in sorted(detections, key=lambda d: -d.score):
        mine = _best(detection.box, current, claimed, min_iou)
        if mine is not None:
            claimed.add(mine)
            continue
        again = _best(detection.box, lost, claimed, min_iou)
        if again is not None:
            claimed.add(again)
            out.append(Match(again, "found", detection))
        elif names:
            out.append(Match(names.pop(0), "new", detection))
    return out


def _best(box: Box, regions: Mapping[str, Box | None], claimed: set[str], min_iou: float) -> str | None:
    scored = [
        (box_iou(box, other), name) for name, other in regions.items() if other is not None and name not in claimed
    ]
    scored = [(iou, name) for iou, name in scored if iou >= min_iou]
    return max(scored)[1] if scored else None
