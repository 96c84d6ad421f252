"""``garvideo batch``: describe or question every video of a manifest, resumably.

The models are loaded once (the caller's :class:`~garvideo.pipeline.Pipeline`);
each manifest line gives one result document ``OUT/<key>.json`` (see
:mod:`garvideo.outputs.document`), written atomically, plus ``<key>.srt`` when
subtitles are asked for. A line with a ``question`` is answered; a line
without one is described (``describe="always"`` describes both kinds).
Failures go to ``OUT/failures.jsonl``, a summary to ``OUT/summary.json``;
``OUT/run.json`` and every result record the options and models (:func:`batch_settings`), and a
run with others on a folder holding results is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import defaults
from ..outputs.document import result_document, timeline_cues
from ..outputs.subtitles import to_srt
from ..outputs.tracks import result_prompts
from ..pipeline import GenerationSettings, Pipeline, TextSearch
from ..pipeline.grounding import check_search
from ..video import open_video
from .jobs import BatchJob, BatchSummary, ItemOutput, check_inputs_outside
from .manifest import ManifestLine, check_lines, read_manifest


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


def batch_settings(options: BatchOptions, models: Mapping[str, str | None]) -> dict[str, Any]:
    """What a batch's results depend on, as ``OUT/run.json`` records it: every option of
    :class:`BatchOptions` and the models (:attr:`Pipeline.models`). ``--device`` and ``--dtype`` are left out:
    shards of one batch may run on different machines."""
    return {"options": dataclasses.asdict(options), "models": dict(models)}


def process_line(
    pipeline: Pipeline,
    line: ManifestLine,
    folder: Path,
    manifest_dir: Path,
    options: BatchOptions,
    progress: bool | None = None,
) -> ItemOutput:
    """Describe or answer one manifest line (raises for a bad line or video; the job records why).

    The video is opened once for the line (its masks are compared with its frame before they are decoded).
    ``progress``: the pipeline's own bars for this line (None: the pipeline's default).
    """
    with open_video(line.video(folder, manifest_dir)) as reader:
        request = line.parse(folder, manifest_dir, frame_size=(reader.height, reader.width))
        description = None
        answers = []
        shared = options.pipeline_options()
        if request.question is None or options.describe == "always":
            description = pipeline.describe(
                reader,
                list(request.regions),
                window=options.window,
                frames_per_window=options.frames_per_window,
                progress=progress,
                **shared,
            )
        if request.question is not None:
            answers.append(
                pipeline.ask(
                    reader,
                    request.question,
                    None if description else list(request.regions),
                    tracks=description.tracks if description else None,
                    options=request.options,
                    progress=progress,
                    **shared,
                )
            )
    first = description or answers[0]
    prompts = result_prompts(request.regions, first.found)
    document = result_document("batch", first.video, first.tracks, prompts, description, answers)
    document["item"] = {"line": line.number, "key": line.key, "video": str(request.video)}
    srt = to_srt(timeline_cues(description)) if options.srt and description is not None else None
    return ItemOutput(document, ((".srt", srt),) if srt is not None else ())


#: The files a batch writes beside each result (``OUT/<key>.srt``).
SIDE_SUFFIXES = (".srt",)


def read_and_check_manifest(folder: Path, regions_file: Path, out_dir: Path | None = None) -> list[ManifestLine]:
    """The manifest's lines, every one read as the batch will (none that can run: one error), before any work;
    a manifest that is one of the files the batch writes in ``out_dir`` is refused."""
    if out_dir is not None:
        check_inputs_outside(out_dir, {"the regions file": regions_file}, SIDE_SUFFIXES)
    lines = read_manifest(regions_file)
    check_lines(lines, folder, regions_file.parent, regions_file)
    return lines


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
    lines = read_and_check_manifest(folder, regions_file, out_dir)
    settings = batch_settings(options, pipeline.models)

    def process(line: ManifestLine) -> ItemOutput:
        # One bar for the batch, not one per stage of every line.
        return process_line(pipeline, line, folder, regions_file.parent, options, progress=False)

    return BatchJob(lines, out_dir, process, shard=shard, progress=progress, settings=settings).run()
