"""The tracks file and a result's prompts: one builder each, for the command line, batch, the web app and the API.

A tracks file (``garvideo track --out``, ``describe --save-tracks``, the web app's ``tracks.json``) is the
``garvideo.tracks`` document of :mod:`garvideo.tracking` with this ``meta``::

    {"video": {...VideoInfo...}, "prompts": [{...RegionPrompt.to_dict()...}, ...], "provenance": {...}}

``prompts`` are the marks the tracks were made from, text regions listed with the box each became
(:func:`result_prompts`), so that a result made from the file later (``describe --tracks``) lists them too
(:func:`read_tracks_file`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InvalidInputError
from ..pipeline import FoundRegion, Provenance, RegionPrompt, Track
from ..tracking import load_tracks_document, save_tracks, tracks_to_json
from ..video import VideoInfo


class TrackedRun(Protocol):
    """What :meth:`Pipeline.track`, ``describe`` and ``ask`` return and the builders read."""

    video: VideoInfo
    tracks: Sequence[Track]
    provenance: Provenance | None
    found: Sequence[FoundRegion]


def result_prompts(prompts: Sequence[RegionPrompt], found: Sequence[FoundRegion] = ()) -> list[RegionPrompt]:
    """The prompts a result or tracks file lists: as given, then the box each text region was found as."""
    return [*prompts, *(region.prompt for region in found)]


def tracks_meta(run: TrackedRun, prompts: Sequence[RegionPrompt] = ()) -> dict[str, Any]:
    """The ``meta`` of the tracks file of ``run`` whose regions were marked by ``prompts``."""
    return {
        "video": run.video.to_dict(),
        "prompts": [p.to_dict() for p in result_prompts(prompts, run.found)],
        "provenance": run.provenance.to_dict() if run.provenance is not None else None,
    }


def tracks_document(run: TrackedRun, prompts: Sequence[RegionPrompt] = ()) -> dict[str, Any]:
    """The whole tracks file of ``run`` as one JSON-ready dict (for standard output or a web download)."""
    return tracks_to_json(run.tracks, tracks_meta(run, prompts))


def save_tracks_file(path: str | os.PathLike[str], run: TrackedRun, prompts: Sequence[RegionPrompt] = ()) -> None:
    """Write the tracks file of ``run`` to ``path``, atomically and streamed one frame at a time."""
    save_tracks(path, run.tracks, tracks_meta(run, prompts))


@dataclass(frozen=True)
class TracksFile:
    """A tracks file read back: its tracks and the marks they were made from (empty when it records none)."""

    tracks: tuple[Track, ...]
    prompts: tuple[RegionPrompt, ...] = ()


def read_tracks_file(path: str | os.PathLike[str]) -> TracksFile:
    """Read a tracks file; marks recorded in its ``meta`` come back as prompts (a malformed one is an error)."""
    tracks, meta = load_tracks_document(path)
    return TracksFile(tuple(tracks), tuple(recorded_prompts(meta, f"{os.fspath(path)}: meta")))


def recorded_prompts(meta: Any, where: str = "meta") -> list[RegionPrompt]:
    """The marks a tracks document's ``meta`` records (``where`` names it in the errors)."""
    recorded = (meta.get("prompts") if isinstance(meta, dict) else None) or []
    if not isinstance(recorded, list):
        raise InvalidInputError(f"{where}.prompts must be a list of regions, or left out")
    prompts = []
    for number, data in enumerate(recorded):
        try:
            prompts.append(RegionPrompt.from_dict(data))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}.prompts[{number}]: {exc}") from None
    return prompts
