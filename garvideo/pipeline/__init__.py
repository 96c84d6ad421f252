"""The pipeline: video + SAM2 tracking + GAR, and what it returns.

See :class:`Pipeline` for the API; results are :class:`DescribeResult`
(per region a :class:`RegionTimeline` of :class:`TimelineWindow`),
:class:`Answer` and :class:`TrackingResult`, each with its :class:`Provenance`.
Text regions (``RegionPrompt.from_text``) are found with :class:`TextSearch`'s
settings; each found one is a :class:`FoundRegion`.
"""

from ..model import CAPTION_INSTRUCTION, GenerationSettings, VideoPromptTemplate
from ..tracking import RegionPrompt, Track
from .grounding import TextSearch
from .pipeline import Pipeline, PipelineError, VideoPrompt
from .results import (
    Answer,
    DescribeResult,
    FoundRegion,
    ModelRef,
    Provenance,
    RegionTimeline,
    StageTimings,
    TimelineWindow,
    TrackingResult,
)

__all__ = [
    "CAPTION_INSTRUCTION",
    "Answer",
    "DescribeResult",
    "FoundRegion",
    "GenerationSettings",
    "ModelRef",
    "Pipeline",
    "PipelineError",
    "Provenance",
    "RegionPrompt",
    "RegionTimeline",
    "StageTimings",
    "TextSearch",
    "TimelineWindow",
    "Track",
    "TrackingResult",
    "VideoPrompt",
    "VideoPromptTemplate",
]
