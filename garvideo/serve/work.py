"""One job's work on a pipeline: the same calls and the same documents as ``garvideo describe|ask|track``.

:func:`run_job` runs in the server's process or on a Ray worker alike. Its result is the document the CLI
writes with ``--out`` for the same input, to the byte (:func:`garvideo.files.json_text`; the video's
``path`` is the name the client gave, as the CLI's is the path typed); the files beside it (subtitles,
tracks, overlay) are written atomically into the job's folder, before the result exists, so a job that has a
result has all its files.
"""

from __future__ import annotations

import dataclasses
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
    elif request.kind == "describe":
        result = pipeline.describe(
            str(video), prompts or None, tracks=tracks, progress=False, **options, on_event=on_event
        )
    else:
        choices = list(request.choices) if request.choices is not None else None
        result = pipeline.ask(
            str(video), request.question, prompts or None, tracks=tracks, options=choices, progress=False, **options,
            on_event=on_event,
        )  # fmt: skip
    # The documents name the video as the client did, as the CLI's name the path typed.
    run = dataclasses.replace(result, video=dataclasses.replace(result.video, path=shown_name))
    marks = prompts or request.recorded_prompts()  # the regions given, or those the given tracks record
    timings = result.provenance.timings.to_dict()
    if request.kind == "track":
        return JobOutput(_tracks_file(folder, run, marks).read_bytes(), ("tracks",), timings)
    from ..outputs import result_document, result_prompts

    listed = result_prompts(marks, run.found)
    if request.kind == "describe":
        document = result_document("describe", run.video, run.tracks, listed, run)
    else:
        document = result_document("ask", run.video, run.tracks, listed, None, [run])
    made = _write_files(request, run, video, marks, folder)
    return JobOutput(json_text(document).encode(), made, timings)


def _tracks_file(folder: Path, run: Any, marks: list) -> Path:
    """The tracks file of a run, as ``garvideo track --out`` and ``--save-tracks`` write it."""
    from ..outputs import save_tracks_file

    target = folder / FILE_NAMES["tracks"]
    save_tracks_file(target, run, marks)
    return target


def _write_files(request: JobRequest, run: Any, video: str | Path, marks: list, folder: Path) -> tuple[str, ...]:
    """The files the request asked for, each written atomically into ``folder``."""
    cues = None
    if request.kind == "describe":
        from ..outputs import timeline_cues

        cues = timeline_cues(run)
    made = []
    for name in request.files:
        target = folder / FILE_NAMES[name]
        if name in ("srt", "vtt"):
            from ..outputs.subtitles import to_srt, to_vtt

            atomic_write_text(target, (to_srt if name == "srt" else to_vtt)(cues))
        elif name == "tracks":
            _tracks_file(folder, run, marks)
        elif name == "overlay":
            from ..outputs import render_overlay

            render_overlay(str(video), target, run.tracks, cues or (), progress=False)  # written atomically
        made.append(name)
    return tuple(made)
