"""Running the pipeline on VideoRefer-Bench: -Q (multiple choice, scored here) and -D (descriptions for a judge).

>>> pipe = Pipeline.from_pretrained(model="HaochenWang/GAR-8B", sam2=None)
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
The benchmark's RLE masks are used as given: each is decoded once (for its box),
and with ``track`` or ``single_frame`` only the anchor frame's mask is decoded.

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import defaults
from ..errors import InvalidInputError
from ..files import atomic_write_text
from ..masks import encode_rle, mask_bbox
from ..model import CAPTION_INSTRUCTION, GenerationSettings
from ..pipeline import Pipeline, RegionPrompt, Track
from ..tracking import TrackFrame
from ..video import DEFAULT_FOLDER_FPS, VideoReader, open_video
from . import videorefer
from .items import decode_item_mask, item_mask_area, limit_items
from .videorefer import BENCHMARK_D, BENCHMARK_Q, VideoReferBenchmark
from .work import EvalItem, EvalPlan, EvalSummary, ItemOutcome, finish, model_settings, prepare_out, run_items


@dataclasses.dataclass(frozen=True)
class VideoReferSettings:
    """How items are answered (recorded with the results; a resumed run must use the same)."""

    track: bool = False
    frames: int = defaults.VIDEOREFER_FRAMES
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


def _where(name: str, frame: int) -> str:
    return f"the mask of {name} on frame {frame}"


@dataclasses.dataclass(frozen=True)
class _Object:
    """One object's benchmark masks, as given: ``frame -> (RLE, foreground pixels)``, RLE None off-screen."""

    name: str
    masks: dict[int, tuple[Mapping[str, Any] | None, int]]
    anchor: int  # the annotated frame its prompt or single mask comes from

    def mask(self, frame: int) -> np.ndarray:
        rle, _ = self.masks[frame]
        return decode_item_mask(rle, _where(self.name, frame))

    def track_frame(self, frame: int, time: float, empty: Mapping[str, Any]) -> TrackFrame:
        """The frame of the object's track: the benchmark's RLE kept, decoded once for its box."""
        rle, _ = self.masks[frame]
        if rle is None:
            return TrackFrame(frame, time, empty, None, 0.0, False)
        mask = decode_item_mask(rle, _where(self.name, frame))  # also checks the runs cover the frame
        box = mask_bbox(mask)
        counts = rle["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        # a track holds compressed RLE: uncompressed (list) counts are the one case encoded again
        kept = {"size": list(mask.shape), "counts": counts} if isinstance(counts, str) else encode_rle(mask)
        return TrackFrame(frame, time, kept, box, 1.0 if box is not None else 0.0, box is not None)


def _object(annotation: Any, name: str, frame_idx: Any, reader: VideoReader) -> _Object:
    """One object's masks, checked against the video without decoding them, and its anchor frame.

    The anchor is the item's ``frame_idx`` if the object is seen there, else the nearest annotated
    frame where it is.
    """
    if not isinstance(annotation, Mapping) or not annotation:
        raise InvalidInputError(f"malformed annotation: {name} has no masks")
    masks: dict[int, tuple[Mapping[str, Any] | None, int]] = {}
    for key, entry in annotation.items():
        frame = _frame_key(key, name)
        if not 0 <= frame < reader.num_frames:
            raise InvalidInputError(
                f"{name} has a mask on frame {frame} but {reader.path} has {reader.num_frames} frames"
            )
        rle = entry.get("segmentation") if isinstance(entry, Mapping) else None
        if rle is None:
            masks[frame] = (None, 0)
            continue
        where = _where(name, frame)
        area = item_mask_area(rle, where)
        try:
            height, width = (int(v) for v in rle["size"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError(f"malformed RLE: {where} has no size [height, width]") from None
        if (height, width) != (reader.height, reader.width):
            raise InvalidInputError(f"{where} is {width}x{height} but the video is {reader.width}x{reader.height}")
        masks[frame] = (rle, area)
    seen = sorted(f for f, (_, area) in masks.items() if area > 0)
    if not seen:
        raise InvalidInputError(f"{name} is empty on every annotated frame: there is nothing to ask about")
    try:
        wanted = int(frame_idx)
    except (TypeError, ValueError):
        wanted = seen[0]
    return _Object(name, masks, min(seen, key=lambda f: (abs(f - wanted), f)))


def _objects(names: Sequence[str], annotations: Any, item: Mapping[str, Any], reader: VideoReader) -> list[_Object]:
    """The distinct objects the question marks, in marker order, with their masks."""
    if not isinstance(annotations, list):
        raise InvalidInputError("malformed item: 'annotation' must be a list with one entry per object")
    if len(annotations) != len(names):
        raise InvalidInputError(
            f"a region without a mask: the question marks {len(names)} regions ({', '.join(names) or 'none'}) "
            f"but the annotation has masks for {len(annotations)}"
        )
    objects: dict[str, _Object] = {}
    for name, annotation in zip(names, annotations):
        if name not in objects:  # the same object marked twice: its first annotation stands
            objects[name] = _object(annotation, name, item.get("frame_idx"), reader)
    return list(objects.values())


def _tracks(objects: Sequence[_Object], reader: VideoReader, single_frame: bool = False) -> list[Track]:
    """The objects' annotated masks as tracks (only the anchor frame's with ``single_frame``)."""
    times = reader.timeline.times
    empty = encode_rle(np.zeros((reader.height, reader.width), dtype=bool))
    tracks = []
    for k, obj in enumerate(objects):
        frames = [obj.anchor] if single_frame else sorted(obj.masks)
        track_frames = tuple(obj.track_frame(f, float(times[f]), empty) for f in frames)
        tracks.append(Track(name=obj.name, obj_id=k + 1, frames=track_frames))
    return tracks


def annotation_tracks(names: Sequence[str], annotations: Any, reader: VideoReader) -> list[Track]:
    """VideoRefer's per-object masks (``annotation``: one ``{frame: {"segmentation": RLE}}`` per region marker,
    in marker order) as one track per distinct name, checked against the video (VideoRefer-700K's training items
    hold their masks so too)."""
    return _tracks(_objects(names, annotations, {}, reader), reader)


def _question(spec: VideoReferBenchmark, item: Mapping[str, Any]) -> tuple[str, list[str] | None, list[str]]:
    """``(question, options, region names in marker order)`` for the pipeline."""
    if spec.describe:
        count = len(item.get("annotation") or [])
        if count != 1:
            raise InvalidInputError(f"malformed item: a {spec.name} item describes one object, not {count}")
        return CAPTION_INSTRUCTION, None, ["object"]
    if not isinstance(item.get("Question"), str) or not isinstance(item.get("options"), list):
        raise InvalidInputError("malformed item: it needs a 'Question' text and an 'options' list")
    question, names = videorefer.convert_question(item["Question"])
    options = []
    for text in videorefer.option_texts(item["options"]):
        converted, option_names = videorefer.convert_question(text)
        options.append(converted)
        names += option_names  # markers in options come after the question's, as the benchmark counts them
    return question, options, names


class _Runner:
    def __init__(self, pipeline: Pipeline, plan: VideoReferPlan, settings: GenerationSettings) -> None:
        self.pipeline, self.plan, self.settings = pipeline, plan, settings

    def __call__(self, entry: EvalItem) -> dict[str, Any]:
        item, options = entry.data, self.plan.options
        path = _video_path(self.plan.video_roots, item.get("video"))
        question, choices, names = _question(self.plan.spec, item)
        with open_video(path, fps=options.fps if path.is_dir() else None) as reader:
            objects = _objects(names, item.get("annotation"), item, reader)
            asked = {
                "options": choices,
                "frames": options.frames,
                "max_new_tokens": self.settings.max_new_tokens,
                "generation": self.settings,
                "progress": False,  # one bar over the items: the pipeline's own (tracking) would repeat per item
            }
            if options.track:
                prompts = [RegionPrompt.from_mask(o.name, o.mask(o.anchor), o.anchor) for o in objects]
                answer = self.pipeline.ask(reader, question, prompts, **asked)
            else:
                tracks = _tracks(objects, reader, options.single_frame)
                answer = self.pipeline.ask(reader, question, tracks=tracks, **asked)
        provenance = answer.provenance
        return {
            "pred": answer.text,
            "letter": answer.letter,
            "regions": list(answer.regions),
            "frames": list(provenance.frames) if provenance is not None else [],
            "anchor_frames": {o.name: o.anchor for o in objects},
            "timings": provenance.timings.to_dict() if provenance is not None else {},
        }


@dataclasses.dataclass(frozen=True)
class VideoReferPlan(EvalPlan):
    """A VideoRefer-Bench run, checked before any model is loaded (:func:`plan_videorefer`)."""

    spec: VideoReferBenchmark = BENCHMARK_Q
    options: VideoReferSettings = VideoReferSettings()
    video_roots: tuple[Path, ...] = ()  # where the items' videos are looked up, in order


def plan_videorefer(
    spec: VideoReferBenchmark,
    data: str | Path,
    out: str | Path,
    *,
    track: bool = False,
    frames: int = defaults.VIDEOREFER_FRAMES,
    single_frame: bool = False,
    fps: float | None = None,
    video_root: str | Path | None = None,
    limit: int | None = None,
) -> VideoReferPlan:
    """Check a VideoRefer-Bench run (``spec``: :data:`~garvideo.eval.videorefer.BENCHMARK_Q` or ``_D``) without a model.

    Every user mistake (no data, a missing ``video_root``, a bad ``limit`` or ``frames``, an
    unwritable ``out``) raises :class:`InvalidInputError` here, before minutes of model loading;
    ``out``'s work folder is created. Run the plan with :func:`run_videorefer_plan`.
    """
    options = VideoReferSettings(track=track, frames=frames, single_frame=single_frame, fps=fps)
    root, annotation = videorefer.find_data(data, spec.annotation_file)
    items = videorefer.load_items(annotation, spec.annotation_file)
    chosen = limit_items(range(len(items)), limit)
    if video_root is not None:
        roots: tuple[Path, ...] = (Path(video_root),)
        if not roots[0].is_dir():
            raise InvalidInputError(f"the video folder {roots[0]} does not exist")
    else:
        roots = tuple(root / folder for folder in spec.video_folders)
    out = prepare_out(out, {"the benchmark file": annotation})
    return VideoReferPlan(
        spec.name, root, tuple(items), tuple(chosen), out, spec=spec, options=options, video_roots=roots
    )


def _record(spec: VideoReferBenchmark, outcome: ItemOutcome) -> dict[str, Any]:
    """One line of the predictions file, in the format the benchmark's scorer (-Q) or judge (-D) reads."""
    item, result = outcome.item.data, outcome.result
    record = {"id": item.get("id", outcome.item.index), "video": item.get("video")}
    pred = result["pred"] if result else ""
    if spec.describe:
        record.update(caption=item.get("caption"), pred=pred)
    else:
        record.update(Answer=item.get("Answer"), pred=pred, type=item.get("type", "unknown"))
        if result:
            record["letter"] = result["letter"]
    if result:
        record["frames"] = result["frames"]
    else:
        record["error"] = outcome.error
    return record


def run_videorefer_plan(
    plan: VideoReferPlan, pipeline: Pipeline, *, generation: GenerationSettings | None = None, progress: bool = True
) -> EvalSummary:
    """Run the plan's items through the pipeline; write its JSON-lines predictions and score them (-Q)."""
    options = plan.options
    if pipeline.gar is None:
        raise InvalidInputError("the pipeline has no GAR model: load it with Pipeline.from_pretrained(model=...)")
    if options.track and pipeline.tracker is None:
        raise InvalidInputError(
            "tracking (--track) needs a SAM2 model: load it with Pipeline.from_pretrained(sam2=...)"
        )
    settings = generation or GenerationSettings()
    run_settings = {
        "benchmark": plan.benchmark,
        **model_settings(pipeline.gar.info),
        "sam2": pipeline.tracker.model_id if options.track and pipeline.tracker is not None else None,
        "track": options.track,
        "frames": options.frames,
        "single_frame": options.single_frame,
        "fps": options.fps if options.fps is not None else DEFAULT_FOLDER_FPS,
        "generation": dataclasses.asdict(settings),
    }
    run = run_items(plan.entries(), plan.out, _Runner(pipeline, plan, settings), run_settings, progress)
    records = [_record(plan.spec, outcome) for outcome in run.outcomes]
    atomic_write_text(plan.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    notes = []
    if options.track:
        notes.append("objects were tracked with SAM2 from one annotated frame each, not given the benchmark's masks")
    elif options.single_frame:
        notes.append("one mask per object (on frame_idx) was used, so GAR saw only the frames of those masks")
    if plan.spec.describe:
        report = None
        notes.append(
            f"{plan.benchmark} is judged by an external LLM (GPT-4o) with VideoRefer's "
            "videorefer_bench_d scripts, which read this file; garvideo does not score it"
        )
    else:
        report = videorefer.score(records)
        if any(not r["pred"] for r in records):
            notes.append(
                "records with an empty pred failed (see 'error'); they count as wrong here, while the "
                "benchmark's own scorer stops on an empty pred"
            )
    return finish(plan, run, report=report, settings=run_settings, notes=notes)


def run_videorefer(
    spec: VideoReferBenchmark,
    data: str | Path,
    pipeline: Pipeline,
    out: str | Path,
    *,
    track: bool = False,
    frames: int = defaults.VIDEOREFER_FRAMES,
    single_frame: bool = False,
    fps: float | None = None,
    video_root: str | Path | None = None,
    generation: GenerationSettings | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Run VideoRefer-Bench ``spec`` (:data:`~garvideo.eval.videorefer.BENCHMARK_Q` or ``_D``) with the pipeline;
    write its JSON-lines predictions to ``out`` and score them (-Q; -D is judged outside garvideo).

    ``data``: the folder holding the benchmark's annotation file and the videos or frame folders it names (or
    ``video_root`` for those; -D also looks in ``Panda-70M-part/``). See the module docstring for ``track``,
    ``frames`` and ``single_frame``; ``fps`` is the frame rate given to frame folders (30 if None). Resumable.
    """
    plan = plan_videorefer(
        spec,
        data,
        out,
        track=track,
        frames=frames,
        single_frame=single_frame,
        fps=fps,
        video_root=video_root,
        limit=limit,
    )
    return run_videorefer_plan(plan, pipeline, generation=generation, progress=progress)


def run_videorefer_q(data: str | Path, pipeline: Pipeline, out: str | Path, **options: Any) -> EvalSummary:
    """Answer VideoRefer-Bench-Q and score it: :func:`run_videorefer` with :data:`BENCHMARK_Q`."""
    return run_videorefer(BENCHMARK_Q, data, pipeline, out, **options)


def run_videorefer_d(data: str | Path, pipeline: Pipeline, out: str | Path, **options: Any) -> EvalSummary:
    """Describe every VideoRefer-Bench-D object (``{"video", "caption", "pred"}`` lines for its external judge,
    GPT-4o with VideoRefer's ``videorefer_bench_d`` scripts; no score): :func:`run_videorefer` with
    :data:`BENCHMARK_D`."""
    return run_videorefer(BENCHMARK_D, data, pipeline, out, **options)
