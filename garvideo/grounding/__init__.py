"""garvideo.grounding: find the object a phrase names on one picture (open-vocabulary detection).

- :class:`GroundingDetector`: Grounding DINO through transformers (``GroundingDinoForObjectDetection``,
  ``IDEA-Research/grounding-dino-tiny`` by default); an RGB frame and a phrase in, scored boxes out
- :class:`Detection` / :class:`FrameDetections`: what it finds; :func:`distinct` picks the most
  confident boxes that are not duplicates of one another; :func:`match_detections` tells which of them
  are objects already known (seen now or lost) and which are new

A leaf package: it knows nothing of videos, tracking or GAR (the pipeline turns what it finds
into box prompts for SAM2). Importing it does not import torch; the detector module loads on use.
"""

from .. import defaults
from .._lazy import lazy_attributes
from .detections import (
    DEFAULT_BOX_THRESHOLD,
    DEFAULT_TEXT_THRESHOLD,
    DUPLICATE_IOU,
    Detection,
    FrameDetections,
    box_iou,
    distinct,
)
from .matching import Match, match_detections

#: The detector used when none is named.
DEFAULT_DETECTOR = defaults.DETECTOR

__getattr__ = lazy_attributes(__name__, {"GroundingDetector": ".grounding_dino"})

__all__ = [
    "DEFAULT_BOX_THRESHOLD",
    "DEFAULT_DETECTOR",
    "DEFAULT_TEXT_THRESHOLD",
    "Detection",
    "FrameDetections",
    "GroundingDetector",
    "Match",
    "box_iou",
    "distinct",
    "match_detections",
    "DUPLICATE_IOU",
]
