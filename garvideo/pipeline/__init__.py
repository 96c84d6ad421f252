"""The pipeline: video + SAM2 tracking + GAR, and what it returns.

See :class:`Pipeline` for the API; results are :class:`DescribeResult`
(per region a :class:`RegionTimeline` of :class:`TimelineWindow`),
:class:`Answer` and :class:`TrackingResult`, each with its :class:`Provenance`.
Text regions (``RegionPrompt.from_text``) are found with :class:`TextSearch`'s
settings; each found one is a :class:`FoundRegion`. While a call works, its ``on_event``
hears :class:`StageProgress`, :class:`FrameTracked` and :class:`TextGenerated` events
(:mod:`garvideo.pipeline.events`). Checks that need no model, for front-ends to run before loading one:
:func:`check_inputs` (regions or tracks against the video), :func:`check_text_regions` (the names text regions
would take), :func:`region_names` (every name the regions may go by, e.g. for a question).

Every call starts from :meth:`Pipeline.tracks_for` (a :class:`RegionInput` of regions or tracks in,
:class:`RegionTracks` out); :mod:`garvideo.pipeline.planning` plans which frames each prompt shows.
"""

from ..model import CAPTION_INSTRUCTION, GenerationSettings, VideoPromptTemplate
from ..tracking import RegionPrompt, Track
from .errors import PipelineError
from .events import EventListener, FrameTracked, PipelineEvent, StageProgress, TextGenerated
from .grounding import TextSearch, check_text_regions, instance_names, region_names
from .pipeline import Pipeline
from .prompting import VideoPrompt
from .regions import RegionInput, RegionTracks, check_inputs
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
    "EventListener",
    "FrameTracked",
    "FoundRegion",
    "GenerationSettings",
    "ModelRef",
    "Pipeline",
    "PipelineError",
    "PipelineEvent",
    "Provenance",
    "RegionInput",
    "RegionPrompt",
    "RegionTimeline",
    "RegionTracks",
    "StageProgress",
    "StageTimings",
    "TextGenerated",
    "TextSearch",
    "TimelineWindow",
    "Track",
    "TrackingResult",
    "VideoPrompt",
    "VideoPromptTemplate",
    "check_inputs",
    "check_text_regions",
    "instance_names",
    "region_names",
]
