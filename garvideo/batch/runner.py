"""``garvideo batch``: describe or question every video of a manifest, resumably.

The models are loaded once (the caller's :class:`~garvideo.pipeline.Pipeline`);
each manifest line gives one result document ``OUT/<key>.json`` (see
:mod:`garvideo.outputs.document`), written atomically, plus ``<key>.srt`` when
subtitles are asked for. A line with a ``question`` is answered; a line
without one is described (``describe="always"`` describes both kinds).
Failures go to ``OUT/failures.jsonl``, a summary to ``OUT/summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..files import atomic_write_text
from ..outputs.document import result_document, timeline_cues
from ..outputs.subtitles import to_srt
from ..pipeline import GenerationSettings, Pipeline, TextSearch
from .jobs import BatchJob, BatchSummary
from .manifest import ManifestLine, read_manifest


@dataclass(frozen=True)
class BatchOptions:
    """The per-item settings of a batch (those of ``garvideo describe`` / ``ask``)."""

    frames: int = 8
    frames_per_window: int = 4
    window: float | None = None
    start: float | None = None
    end: float | None = None
    stride: int = 1
    tiling: str = "vanilla"
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    describe: Literal["auto", "always"] = "auto"
    srt: bool = False
    search: TextSearch = field(default_factory=TextSearch)  # how text regions are found


@dataclass(frozen=True)
class LineOutput:
    """What one manifest line gives: its result document and, when asked for, its subtitles."""

    document: dict[str, Any]
    srt: str | None = None


def process_line(
    pipeline: Pipeline, line: ManifestLine, folder: Path, manifest_dir: Path, options: BatchOptions
) -> LineOutput:
    """Describe or answer one manifest line (raises for a bad line or video; the job records why)."""
    request = line.parse(folder, manifest_dir)
    description = None
    answers = []
    span = {"start": options.start, "end": options.end}
    if request.question is None or options.describe == "always":
        description = pipeline.describe(
            request.video,
            list(request.regions),
            frames=options.frames,
            frames_per_window=options.frames_per_window,
            window=options.window,
            stride=options.stride,
            tiling=options.tiling,
            settings=options.settings,
            search=options.search,
            **span,
        )
    if request.question is not None:
        answers.append(
            pipeline.ask(
                request.video,
                None if description else list(request.regions),
                request.question,
                options=request.options,
                time_range=(options.start, options.end)
                if options.start is not None or options.end is not None
                else None,
                tracks=description.tracks if description else None,
                frames=options.frames,
                stride=options.stride,
                tiling=options.tiling,
                settings=options.settings,
                search=options.search,
            )
        )
    first = description or answers[0]
    # Text regions are listed with the boxes they became.
    prompts = [*request.regions, *(region.prompt for region in first.found)]
    document = result_document("batch", first.video, first.tracks, prompts, description, answers)
    document["item"] = {"line": line.number, "key": line.key, "video": str(request.video)}
    srt = to_srt(timeline_cues(description)) if options.srt and description is not None else None
    return LineOutput(document, srt)


def write_side_files(out_dir: Path, key: str, output: LineOutput) -> None:
    """Files beside the result document; written first, so a result on disk means its line is complete."""
    if output.srt is not None:
        atomic_write_text(out_dir / f"{key}.srt", output.srt)


def run_batch(
    pipeline: Pipeline,
    folder: str | Path,
    regions_file: str | Path,
    out_dir: str | Path,
    options: BatchOptions = BatchOptions(),
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
) -> BatchSummary:
    folder, regions_file, out_dir = Path(folder), Path(regions_file), Path(out_dir)
    lines = read_manifest(regions_file)

    def process(line: ManifestLine) -> dict[str, Any]:
        output = process_line(pipeline, line, folder, regions_file.parent, options)
        write_side_files(out_dir, line.key, output)
        return output.document

    was_progress = pipeline.progress
    pipeline.progress = False  # one bar for the batch, not one per stage
    try:
        return BatchJob(lines, out_dir, process, shard=shard, progress=progress).run()
    finally:
        pipeline.progress = was_progress
