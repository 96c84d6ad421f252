"""Running the pipeline on VideoRefer-Bench: -Q (multiple choice, scored here) and -D (descriptions for a judge).

>>> pipe = Pipeline.from_pretrained(gar="HaochenWang/GAR-8B", sam2=None)
>>> summary = run_videorefer_q("VideoRefer-Bench-Q", pipe, "gar_8b_q.jsonl")
>>> print(videorefer.format_report(summary.report))

Each item's ``video`` (a frame folder such as ``DAVIS/JPEGImages/480p/aerobatics``
or a video file, relative to the data folder) is opened with
:func:`garvideo.video.open_video`; every object's masks (``annotation``: frame
index -> RLE or null) become a :class:`~garvideo.tracking.Track` and the
question goes through :meth:`Pipeline.ask`: ``<objectN><region>`` markers
become the named region ``<objectN>``, options ``"(A) text"`` become the
pipeline's options (GAR letters them ``A.``, ``B.``, ... itself, in the same
order), and ``frames`` frames are spread over the annotated frames where the
objects are visible (GAR's video mode, one tile per frame). That is the
setting the paper reports (the benchmark's masks, no tracking).
``track=True`` instead tracks each object with SAM2 through the whole video
from its mask on the item's ``frame_idx`` (the nearest annotated frame where
the mask is not empty, if it is empty there). ``single_frame=True`` keeps only
that one mask per object (without ``track``, GAR then sees only that frame).

Predictions are the benchmark's JSON lines (``video``, ``Answer``, ``pred``,
``type`` for -Q; ``video``, ``caption``, ``pred`` for -D) plus ``id``, the
parsed ``letter`` and the ``frames`` used. A failed item (missing video,
malformed RLE, a question whose regions do not match its masks) has an empty
``pred`` and an ``error``, and counts as wrong; the run goes on. Runs resume
like GAR-Bench runs (see :mod:`garvideo.eval.work`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..files import atomic_write_text
from ..masks import decode_rle
from ..model import CAPTION_INSTRUCTION, GenerationSettings
from ..pipeline import Pipeline, RegionPrompt, Track
from ..video import DEFAULT_FOLDER_FPS, VideoReader, open_video
from . import videorefer
from .work import EvalItem, EvalSummary, item_key, run_items, work_folder, write_summary

#: Frames GAR sees per question by default: VideoRefer's own scripts sample 16 (the GAR paper does not say).
DEFAULT_FRAMES = 16
#: Where VideoRefer-Bench-D's videos are when they are not beside the annotation file.
D_VIDEO_FOLDER = "Panda-70M-part"


@dataclasses.dataclass(frozen=True)
class VideoReferSettings:
    """How items are answered (recorded with the results; a resumed run must use the same)."""

    track: bool = False
    frames: int = DEFAULT_FRAMES
    single_frame: bool = False
    fps: float | None = None  # frame rate of frame folders (default 30)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise InvalidInputError(f"frames must be at least 1, got {self.frames}")


def _video_path(roots: Sequence[Path], name: Any) -> Path:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("malformed item: it has no 'video'")
    for root in roots:
        candidate = root / name
        if candidate.exists():
            return candidate
    raise InvalidInputError(f"missing video: {name} is not in {' or '.join(str(r) for r in roots)}")


def _frame_key(key: Any, name: str) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"malformed annotation: {name} has a mask on frame {key!r}, not a frame index"
        ) from None


def _object_masks(annotation: Any, name: str, reader: VideoReader) -> dict[int, np.ndarray]:
    """``{frame: mask}`` of one object (null segmentations are empty masks), checked against the video."""
    if not isinstance(annotation, Mapping) or not annotation:
        raise InvalidInputError(f"malformed annotation: {name} has no masks")
    masks = {}
    for key, entry in annotation.items():
        frame = _frame_key(key, name)
        if not 0 <= frame < reader.num_frames:
            raise InvalidInputError(
                f"{name} has a mask on frame {frame} but {reader.path} has {reader.num_frames} frames"
            )
        segmentation = entry.get("segmentation") if isinstance(entry, Mapping) else None
        if segmentation is None:
            masks[frame] = np.zeros((reader.height, reader.width), dtype=bool)
            continue
        try:
            mask = decode_rle(segmentation)
        except InvalidInputError as exc:
            raise InvalidInputError(f"malformed RLE: the mask of {name} on frame {frame}: {_detail(exc)}") from None
        if mask.shape != (reader.height, reader.width):
            raise InvalidInputError(
                f"the mask of {name} on frame {frame} is {mask.shape[1]}x{mask.shape[0]} but the video is "
                f"{reader.width}x{reader.height}"
            )
        masks[frame] = mask
    return masks


def _detail(exc: Exception) -> str:
    return str(exc).removeprefix("malformed RLE: ")


def _anchor(masks: Mapping[int, np.ndarray], frame_idx: Any, name: str) -> int:
    """The item's ``frame_idx`` if the object is seen there, else the nearest annotated frame where it is."""
    seen = sorted(f for f, m in masks.items() if m.any())
    if not seen:
        raise InvalidInputError(f"{name} is empty on every annotated frame: there is nothing to ask about")
    try:
        wanted = int(frame_idx)
    except (TypeError, ValueError):
        wanted = seen[0]
    return min(seen, key=lambda f: (abs(f - wanted), f))


@dataclasses.dataclass(frozen=True)
class _Regions:
    names: list[str]  # distinct, in marker order
    masks: dict[str, dict[int, np.ndarray]]
    anchors: dict[str, int]


def _regions(
    names: Sequence[str], annotations: Any, item: Mapping[str, Any], reader: VideoReader, options: VideoReferSettings
) -> _Regions:
    if not isinstance(annotations, list):
        raise InvalidInputError("malformed item: 'annotation' must be a list with one entry per object")
    if len(annotations) != len(names):
        raise InvalidInputError(
            f"a region without a mask: the question marks {len(names)} regions ({', '.join(names) or 'none'}) "
            f"but the annotation has masks for {len(annotations)}"
        )
    distinct: list[str] = []
    masks: dict[str, dict[int, np.ndarray]] = {}
    anchors: dict[str, int] = {}
    for name, annotation in zip(names, annotations):
        if name in masks:
            continue  # the same object marked twice: its first annotation stands
        object_masks = _object_masks(annotation, name, reader)
        anchors[name] = _anchor(object_masks, item.get("frame_idx"), name)
        if options.single_frame:
            object_masks = {anchors[name]: object_masks[anchors[name]]}
        distinct.append(name)
        masks[name] = object_masks
    return _Regions(distinct, masks, anchors)


class _Runner:
    def __init__(
        self,
        pipeline: Pipeline,
        roots: Sequence[Path],
        options: VideoReferSettings,
        settings: GenerationSettings,
        describe: bool,
    ) -> None:
        self.pipeline, self.roots, self.options, self.settings = pipeline, roots, options, settings
        self.describe = describe

    def __call__(self, entry: EvalItem) -> dict[str, Any]:
        item = entry.data
        path = _video_path(self.roots, item.get("video"))
        if self.describe:
            count = len(item.get("annotation") or [])
            if count != 1:
                raise InvalidInputError(f"malformed item: a VideoRefer-Bench-D item describes one object, not {count}")
            question, options, names = CAPTION_INSTRUCTION, None, ["object"]
        else:
            if not isinstance(item.get("Question"), str) or not isinstance(item.get("options"), list):
                raise InvalidInputError("malformed item: it needs a 'Question' text and an 'options' list")
            question, names = videorefer.convert_question(item["Question"])
            options = []
            for text in videorefer.option_texts(item["options"]):
                converted, option_names = videorefer.convert_question(text)
                options.append(converted)
                names += option_names  # markers in options come after the question's, as the benchmark counts them
        with open_video(path, fps=self.options.fps if path.is_dir() else None) as reader:
            regions = _regions(names, item.get("annotation"), item, reader, self.options)
            common = {
                "question": question,
                "options": options,
                "frames": self.options.frames,
                "settings": self.settings,
            }
            if self.options.track:
                prompts = [
                    RegionPrompt.from_mask(n, regions.masks[n][regions.anchors[n]], regions.anchors[n])
                    for n in regions.names
                ]
                answer = self.pipeline.ask(reader, prompts, **common)
            else:
                times = reader.timeline.times
                tracks = [
                    Track.from_masks(n, regions.masks[n], times=times, obj_id=k + 1)
                    for k, n in enumerate(regions.names)
                ]
                answer = self.pipeline.ask(reader, tracks=tracks, **common)
        provenance = answer.provenance
        return {
            "pred": answer.text,
            "letter": answer.letter,
            "regions": list(answer.regions),
            "frames": list(provenance.frames) if provenance is not None else [],
            "anchor_frames": regions.anchors,
            "timings": provenance.timings.to_dict() if provenance is not None else {},
        }


@dataclasses.dataclass(frozen=True)
class _Done:
    """A finished pass over the items: every outcome, with what the summary needs."""

    outcomes: list
    total_items: int  # in the benchmark file
    settings: dict[str, Any]
    started: float
    computed: int
    reused: int
    out: Path

    def summary(self, benchmark: str, report, notes: Sequence[str]) -> EvalSummary:
        failures = tuple((o.item.key, o.error) for o in self.outcomes if o.error is not None)
        summary = EvalSummary(
            benchmark=benchmark,
            predictions=self.out,
            work_dir=work_folder(self.out),
            total=len(self.outcomes),
            computed=self.computed,
            reused=self.reused,
            failed=len(failures),
            failures=failures,
            seconds=time.monotonic() - self.started,
            report=report,
            settings=self.settings,
            notes=tuple(notes),
        )
        write_summary(summary)
        return summary


def _run(
    benchmark: str,
    annotation_file: str,
    data: str | Path,
    pipeline: Pipeline,
    out: str | Path,
    options: VideoReferSettings,
    settings: GenerationSettings | None,
    video_root: str | Path | None,
    limit: int | None,
    progress: bool,
) -> _Done:
    root, annotation = videorefer.find_data(data, annotation_file)
    items = videorefer.load_items(annotation, annotation_file)
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be at least 1, got {limit}")
    describe = annotation_file == videorefer.D_ANNOTATION_FILE
    if video_root is not None:
        roots = [Path(video_root)]
        if not roots[0].is_dir():
            raise InvalidInputError(f"the video folder {roots[0]} does not exist")
    else:
        roots = [root, root / D_VIDEO_FOLDER] if describe else [root]
    if pipeline.gar is None:
        raise InvalidInputError("the pipeline has no GAR model: load it with Pipeline.from_pretrained(gar=...)")
    if options.track and pipeline.tracker is None:
        raise InvalidInputError(
            "tracking (--track) needs a SAM2 model: load it with Pipeline.from_pretrained(sam2=...)"
        )
    settings = settings or GenerationSettings()
    out = Path(out)
    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a folder: give the predictions file's name (e.g. preds.jsonl)")
    info = pipeline.gar.info
    run_settings = {
        "benchmark": benchmark,
        "model": info.model_id,
        "revision": info.revision,
        "dtype": info.dtype,
        "box_mode": info.box_mode,
        "sam2": pipeline.tracker.model_id if options.track and pipeline.tracker is not None else None,
        "track": options.track,
        "frames": options.frames,
        "single_frame": options.single_frame,
        "fps": options.fps if options.fps is not None else DEFAULT_FOLDER_FPS,
        "generation": dataclasses.asdict(settings),
    }
    entries = [EvalItem(item_key(i, items[i]), i, items[i]) for i in range(len(items))[:limit]]
    started = time.monotonic()
    runner = _Runner(pipeline, roots, options, settings, describe)
    outcomes, computed, reused = run_items(entries, out, runner, run_settings, progress)
    return _Done(outcomes, len(items), run_settings, started, computed, reused, out)


def _write_jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _common_notes(done: _Done, options: VideoReferSettings) -> list[str]:
    notes = []
    if len(done.outcomes) != done.total_items:
        notes.append(
            f"{len(done.outcomes)} of the {done.total_items} items were run (limit): the score covers those only"
        )
    if options.track:
        notes.append("objects were tracked with SAM2 from one annotated frame each, not given the benchmark's masks")
    elif options.single_frame:
        notes.append("one mask per object (on frame_idx) was used, so GAR saw only the frames of those masks")
    return notes


def run_videorefer_q(
    data: str | Path,
    pipeline: Pipeline,
    out: str | Path,
    *,
    track: bool = False,
    frames: int = DEFAULT_FRAMES,
    single_frame: bool = False,
    fps: float | None = None,
    video_root: str | Path | None = None,
    settings: GenerationSettings | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Answer VideoRefer-Bench-Q with the pipeline; write JSON-lines predictions to ``out`` and score them.

    ``data``: the folder holding ``VideoRefer-Bench-Q.json`` and the videos or frame folders it
    names (or ``video_root`` for those). See the module docstring for ``track``, ``frames`` and
    ``single_frame``; ``fps`` is the frame rate given to frame folders (30 if None). Resumable.
    """
    options = VideoReferSettings(track=track, frames=frames, single_frame=single_frame, fps=fps)
    done = _run(
        "VideoRefer-Bench-Q",
        videorefer.Q_ANNOTATION_FILE,
        data,
        pipeline,
        out,
        options,
        settings,
        video_root,
        limit,
        progress,
    )
    records = []
    for outcome in done.outcomes:
        item, result = outcome.item.data, outcome.result
        record = {
            "id": item.get("id", outcome.item.index),
            "video": item.get("video"),
            "Answer": item.get("Answer"),
            "pred": result["pred"] if result else "",
            "type": item.get("type", "unknown"),
        }
        if result:
            record.update(letter=result["letter"], frames=result["frames"])
        else:
            record["error"] = outcome.error
        records.append(record)
    _write_jsonl(done.out, records)
    notes = _common_notes(done, options)
    if any(not r["pred"] for r in records):
        notes.append(
            "records with an empty pred failed (see 'error'); they count as wrong here, while the "
            "benchmark's own scorer stops on an empty pred"
        )
    return done.summary("VideoRefer-Bench-Q", videorefer.score(records), notes)


def run_videorefer_d(
    data: str | Path,
    pipeline: Pipeline,
    out: str | Path,
    *,
    track: bool = False,
    frames: int = DEFAULT_FRAMES,
    single_frame: bool = False,
    fps: float | None = None,
    video_root: str | Path | None = None,
    settings: GenerationSettings | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Describe every VideoRefer-Bench-D object; write ``{"video", "caption", "pred"}`` JSON lines to ``out``.

    Videos are looked up beside ``VideoRefer-Bench-D.json``, then in ``Panda-70M-part/`` (or in
    ``video_root``). The descriptions are scored by an external LLM judge (GPT-4o, VideoRefer's
    ``videorefer_bench_d`` scripts), which is out of garvideo's scope: the summary has no score.
    """
    options = VideoReferSettings(track=track, frames=frames, single_frame=single_frame, fps=fps)
    done = _run(
        "VideoRefer-Bench-D",
        videorefer.D_ANNOTATION_FILE,
        data,
        pipeline,
        out,
        options,
        settings,
        video_root,
        limit,
        progress,
    )
    records = []
    for outcome in done.outcomes:
        item, result = outcome.item.data, outcome.result
        record = {
            "id": item.get("id", outcome.item.index),
            "video": item.get("video"),
            "caption": item.get("caption"),
            "pred": result["pred"] if result else "",
        }
        if result:
            record["frames"] = result["frames"]
        else:
            record["error"] = outcome.error
        records.append(record)
    _write_jsonl(done.out, records)
    notes = _common_notes(done, options)
    notes.append(
        "VideoRefer-Bench-D is judged by an external LLM (GPT-4o) with VideoRefer's "
        "videorefer_bench_d scripts, which read this file; garvideo does not score it"
    )
    return done.summary("VideoRefer-Bench-D", None, notes)
