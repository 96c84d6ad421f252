"""``garvideo batch``: describe or question every video of a manifest, resumably.

The models are loaded once (the caller's :class:`~garvideo.pipeline.Pipeline`);
each manifest line gives one result document ``OUT/<key>.json`` (see
:mod:`garvideo.outputs.document`), written atomically, plus ``<key>.srt`` when
subtitles are asked for. A line with a ``question`` is answered; a line
without one is described (``describe="always"`` describes both kinds).
Failures go to ``OUT/failures.jsonl``, a summary to ``OUT/summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import defaults
from ..files import atomic_write_text
from ..outputs.document import result_document, timeline_cues
from ..outputs.subtitles import to_srt
from ..pipeline import GenerationSettings, Pipeline, TextSearch
from ..pipeline.grounding import check_search
from .jobs import BatchJob, BatchSummary
from .manifest import ManifestLine, read_manifest


@dataclass(frozen=True)
class BatchOptions:
    """The per-item settings of a batch: the options of ``garvideo describe`` / ``ask`` under the same names
    (the keywords of :meth:`Pipeline.describe` / :meth:`Pipeline.ask`: ``search`` carries the text options),
    plus what a batch writes."""

    frames: int = defaults.FRAMES
    frames_per_window: int = defaults.FRAMES_PER_WINDOW
    window: float | None = defaults.WINDOW
    start: float | None = None
    end: float | None = None
    stride: int = defaults.STRIDE
    tiling: str = defaults.TILING
    max_new_tokens: int = defaults.MAX_NEW_TOKENS
    search: TextSearch = TextSearch()
    describe: Literal["auto", "always"] = defaults.BATCH_DESCRIBE
    srt: bool = False

    def __post_init__(self) -> None:
        # A bad value is refused once, here, rather than failing every line of the batch.
        GenerationSettings(max_new_tokens=self.max_new_tokens)
        check_search(self.search)

    def pipeline_options(self) -> dict[str, Any]:
        """The keywords describe and ask share (both take ``start``/``end``, stride, frames, ...)."""
        return {
            "start": self.start,
            "end": self.end,
            "stride": self.stride,
            "frames": self.frames,
            "tiling": self.tiling,
            "max_new_tokens": self.max_new_tokens,
            "search": self.search,
        }


@dataclass(frozen=True)
class LineOutput:
    """What one manifest line gives: its result document and, when asked for, its subtitles."""

    document: dict[str, Any]
    srt: str | None = None


def process_line(
    pipeline: Pipeline,
    line: ManifestLine,
    folder: Path,
    manifest_dir: Path,
    options: BatchOptions,
    progress: bool | None = None,
) -> LineOutput:
    """Describe or answer one manifest line (raises for a bad line or video; the job records why).

    ``progress``: the pipeline's own bars for this line (None: the pipeline's default).
    """
    request = line.parse(folder, manifest_dir)
    description = None
    answers = []
    shared = options.pipeline_options()
    if request.question is None or options.describe == "always":
        description = pipeline.describe(
            request.video,
            list(request.regions),
            window=options.window,
            frames_per_window=options.frames_per_window,
            progress=progress,
            **shared,
        )
    if request.question is not None:
        answers.append(
            pipeline.ask(
                request.video,
                request.question,
                None if description else list(request.regions),
                tracks=description.tracks if description else None,
                options=request.options,
                progress=progress,
                **shared,
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
        # One bar for the batch, not one per stage of every line.
        output = process_line(pipeline, line, folder, regions_file.parent, options, progress=False)
        write_side_files(out_dir, line.key, output)
        return output.document

    return BatchJob(lines, out_dir, process, shard=shard, progress=progress).run()
