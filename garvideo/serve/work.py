"""One job's work on a pipeline: the same calls and the same documents as ``garvideo describe|ask|track``.

:func:`run_job` runs in the server's process or on a Ray worker alike. Its result is the document the CLI
writes with ``--out`` for the same input, to the byte (:func:`garvideo.files.json_text`; the video's
``path`` is the name the client gave, as the CLI's is the path typed); the files beside it (subtitles,
tracks, overlay) are written atomically into the job's folder, before the result exists, so a job that has a
result has all its files.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write_text, json_text
from .requests import JobRequest

#: The file name of each file a job can make, in its folder.
FILE_NAMES = {"srt": "timeline.srt", "vtt": "timeline.vtt", "tracks": "tracks.json", "overlay": "overlay.mp4"}
MEDIA_TYPES = {
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "tracks": "application/json",
    "overlay": "video/mp4",
}


@dataclass(frozen=True)
class JobOutput:
    """A finished job: its result document (the bytes ``--out`` writes) and the files made in its folder."""

    result: bytes
    files: tuple[str, ...]
    timings: dict[str, float]  # seconds per stage (decode, track, encode, generate, total)


def run_job(
    pipeline: Any,
    request: JobRequest,
    video: str | Path,
    shown_name: str,
    folder: Path,
    on_event: Callable[[Any], None] | None = None,
) -> JobOutput:
    """Run ``request`` on ``video`` with ``pipeline``; files go to ``folder`` (emptied first: a re-run starts over).

    ``on_event`` receives the pipeline's events (progress, tracked frames, text); raising from it stops the job.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    prompts = request.prompts()
    tracks = request.given_tracks()
    options = request.pipeline_options()
    if request.kind == "track":
        result = pipeline.track(str(video), prompts, progress=False, **options, on_event=on_event)
        return JobOutput(_tracks_document(result, prompts, shown_name), (), result.provenance.timings.to_dict())
    from ..outputs.document import result_document

    if request.kind == "describe":
        result = pipeline.describe(
            str(video), prompts or None, tracks=tracks, progress=False, **options, on_event=on_event
        )
        document = result_document("describe", result.video, result.tracks, _listed(prompts, result), result)
    else:
        result = pipeline.ask(
            str(video),
            request.question,
            prompts or None,
            tracks=tracks,
            options=list(request.choices) if request.choices is not None else None,
            progress=False,
            **options,
            on_event=on_event,
        )
        document = result_document("ask", result.video, result.tracks, _listed(prompts, result), None, [result])
    document["video"]["path"] = shown_name
    made = _write_files(request, result, video, shown_name, folder)
    return JobOutput(json_text(document).encode(), made, result.provenance.timings.to_dict())


def _listed(prompts: list, result: Any) -> list:
    """The prompts a result document lists: as given, plus the box each text region became (as the CLI)."""
    return [*prompts, *(region.prompt for region in result.found)]


def _tracks_document(result: Any, prompts: list, shown_name: str) -> bytes:
    """What ``garvideo track --out`` writes."""
    from ..tracking.track import write_tracks_json

    video = {**result.video.to_dict(), "path": shown_name}
    meta = {
        "video": video,
        "prompts": [p.to_dict() for p in _listed(prompts, result)],
        "provenance": result.provenance.to_dict(),
    }
    stream = io.StringIO()
    write_tracks_json(stream, result.tracks, meta)
    return stream.getvalue().encode()


def _write_files(request: JobRequest, result: Any, video: str | Path, shown_name: str, folder: Path) -> tuple[str, ...]:
    """The files the request asked for, each written atomically into ``folder``."""
    cues = None
    if request.kind == "describe":
        from ..outputs.document import timeline_cues

        cues = timeline_cues(result)
    made = []
    for name in request.files:
        target = folder / FILE_NAMES[name]
        if name in ("srt", "vtt"):
            from ..outputs.subtitles import to_srt, to_vtt

            atomic_write_text(target, (to_srt if name == "srt" else to_vtt)(cues))
        elif name == "tracks":
            from ..tracking import save_tracks

            save_tracks(target, result.tracks, {"video": {**result.video.to_dict(), "path": shown_name}})
        elif name == "overlay":
            from ..outputs.overlay import render_overlay

            render_overlay(str(video), target, result.tracks, cues or (), progress=False)  # written atomically
        made.append(name)
    return tuple(made)
