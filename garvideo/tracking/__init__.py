"""garvideo.tracking: follow user-marked regions through a video with SAM2.

- :class:`RegionPrompt` and its JSON form (:meth:`RegionPrompt.to_dict` / :meth:`RegionPrompt.from_dict`)
- :class:`Sam2Tracker`: the masks of SAM2's own video session, streamed in bounded memory
- :class:`Track` / :class:`TrackFrame` and their JSON (:func:`tracks_to_json`, :func:`save_tracks`)
- :class:`FrameTracked`: what a running track reports on each frame it has tracked
- :class:`FrameSource` / :class:`FrameLike`: what the tracker reads (a video reader satisfies them)

This package imports neither ``garvideo.video`` nor ``garvideo.model``.
"""

from .prompts import RegionClippedWarning, RegionPrompt
from .sam2 import DEFAULT_SAM2_MODEL, SAM2_ALIASES, PreparedFrame, Sam2Tracker, TrackingStats
from .source import FrameLike, FrameSource
from .track import (
    TRACKS_FORMAT,
    TRACKS_VERSION,
    FrameTracked,
    Track,
    TrackFrame,
    load_tracks,
    load_tracks_document,
    save_tracks,
    tracks_from_json,
    tracks_to_json,
)

__all__ = [
    "PreparedFrame",
    "DEFAULT_SAM2_MODEL",
    "SAM2_ALIASES",
    "TRACKS_FORMAT",
    "TRACKS_VERSION",
    "FrameLike",
    "FrameTracked",
    "FrameSource",
    "RegionClippedWarning",
    "RegionPrompt",
    "Sam2Tracker",
    "Track",
    "TrackFrame",
    "TrackingStats",
    "load_tracks",
    "load_tracks_document",
    "save_tracks",
    "tracks_from_json",
    "tracks_to_json",
]
