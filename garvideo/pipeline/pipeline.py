"""The pipeline: decode a video, track regions with SAM2, describe and question them with GAR.

>>> pipe = Pipeline.from_pretrained()                      # GAR-1B + SAM2.1-tiny, loaded once
>>> dog = RegionPrompt.from_box("dog", (120, 80, 260, 240), "4.5s")
>>> result = pipe.describe("clip.mp4", [dog])
>>> result.region("dog").description, result.region("dog").windows
>>> pipe.ask("clip.mp4", "What is <dog> doing with <ball>?", [dog, ball]).text

Regions are named prompts (a box, clicks or a mask on a frame index or a
time), or tracks the caller already has (``tracks=``, for example ground-truth
masks from a benchmark), in which case nothing is tracked. A region may also
be named in words (``RegionPrompt.from_text("car", "a red car")``): the
open-vocabulary detector (Grounding DINO, loaded on first use) finds it and
SAM2 tracks the box it found (see :mod:`garvideo.pipeline.grounding`).

GAR runs in video mode (see :meth:`garvideo.model.GAR.ask_video`): every
sampled frame is its own tile with its own mask embedding and its own RoI
replay of each region, all frames in one prompt and one generate call. Frames
are sampled among the tracked frames where the region is visible.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import __version__
from ..devices import stage_threads, torch_threads
from ..errors import GarvideoError, InvalidInputError
from ..grounding import DEFAULT_BOX_THRESHOLD, DEFAULT_DETECTOR, DEFAULT_TEXT_THRESHOLD, GroundingDetector
from ..model import (
    CAPTION_INSTRUCTION,
    DEFAULT_MODEL_ID,
    GAR,
    GARResult,
    GenerationSettings,
    NamedPrompt,
    VideoPromptTemplate,
)
from ..model.errors import TooManyRegionsError
from ..names import resolve_references
from ..tracking import DEFAULT_SAM2_MODEL, RegionPrompt, Sam2Tracker, Track
from ..video import (
    DEFAULT_AHEAD,
    Frame,
    Span,
    VideoReader,
    decode_ahead,
    reading,
    spread,
    time_span,
    window_bounds,
    window_length,
)
from .grounding import TextSearch, find_text_regions, has_text
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

VideoLike = "str | os.PathLike[str] | VideoReader"
TimeLike = "float | str | None"

#: The longest description or answer, in tokens, unless a call says (``garvideo describe|ask --max-new-tokens``).
DEFAULT_MAX_NEW_TOKENS = 512


class PipelineError(GarvideoError):
    """A request the pipeline cannot serve as asked (a model it was built without, a region never seen)."""


class _TimedSource:
    """A video reader seen by the tracker, its frames decoded ``ahead`` frames ahead in a background thread.

    ``seconds`` is the time the tracker waited for decoded frames: with decode-ahead that is the
    decoding *not* hidden behind tracking (all of it when tracking is faster than decoding, almost
    none when it is slower), so the pipeline's ``decode`` + ``track`` stage times still add up to the
    wall time of the tracking call. ``work_seconds`` is what the decode thread spent, overlapped or
    not. ``ahead=0`` decodes in the tracker's thread, as before. ``prepare`` (the tracker's
    :meth:`~garvideo.tracking.Sam2Tracker.prepare`) runs in the decode thread too, so the frames'
    resizing, normalising and upload to the device also overlap tracking (and count in
    ``work_seconds``, not in tracking).

    Backward, the reader decodes a GOP chunk (up to ``max_buffered_frames`` frames) before it
    hands out the chunk's first frame, so a backward stream is decoded a whole chunk ahead: the
    next chunk is decoded while this one is tracked. That holds no more frames than the reader
    alone: it keeps a chunk until the next one is decoded.
    """

    def __init__(
        self, reader: VideoReader, ahead: int = DEFAULT_AHEAD, prepare: Callable[[Frame], Any] | None = None
    ) -> None:
        self._reader = reader
        self.ahead = ahead
        self._prepare = prepare
        self.seconds = 0.0
        self.work_seconds = 0.0

    num_frames = property(lambda self: self._reader.num_frames)
    width = property(lambda self: self._reader.width)
    height = property(lambda self: self._reader.height)

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        frames = self._reader.iter_frames(start, stop, step)
        if self.ahead > 0:
            ahead = self.ahead if step > 0 else max(self.ahead, self._reader.max_buffered_frames)
            frames = decode_ahead(frames, ahead, transform=self._prepare)
        try:
            while True:
                began = time.perf_counter()
                frame = next(frames, None)
                elapsed = time.perf_counter() - began
                self.seconds += elapsed
                if self.ahead == 0:
                    self.work_seconds += elapsed
                if frame is None:
                    return
                yield frame
        finally:
            frames.close()  # with decode-ahead: stops and joins its thread before the next stream starts
            if self.ahead > 0:
                self.work_seconds += frames.work_seconds


class Pipeline:
    """Video + SAM2 tracking + GAR, each model loaded once and reused for every video.

    Build it with :meth:`from_pretrained`; either model may be left out
    (``model=None`` to only track, ``sam2=None`` when tracks are always given).
    ``detector`` finds text regions: a loaded :class:`GroundingDetector`, or
    the id or folder of one, loaded the first time a text region is given
    (on the tracker's device); None for none. ``threads``: torch CPU threads
    for every stage; None chooses per stage (:func:`garvideo.devices.stage_threads`:
    one for tracking, every core for GAR). ``progress``: whether calls show
    progress bars unless a call says otherwise (each method's ``progress=``).

    The keywords of :meth:`from_pretrained`, :meth:`track`, :meth:`describe`
    and :meth:`ask` are the options of ``garvideo track|describe|ask`` with
    dashes as underscores, with the same defaults (``--max-new-tokens 64`` is
    ``max_new_tokens=64``).
    """

    def __init__(
        self,
        gar: GAR | None,
        tracker: Sam2Tracker | None,
        progress: bool = True,
        detector: GroundingDetector | str | os.PathLike[str] | None = DEFAULT_DETECTOR,
        detector_revision: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.gar = gar
        self.tracker = tracker
        self._progress = bool(progress)
        self.threads = threads
        stage_threads("track", "cpu", threads)  # an unusable count is refused now, not after decoding
        self._detector = detector
        self._detector_revision = detector_revision

    @property
    def progress(self) -> bool:
        """Whether a call shows progress bars when it does not say (``progress=None``); fixed at construction,
        since the pipeline may be shared: a caller that wants no bars passes ``progress=False``."""
        return self._progress

    def _shows_progress(self, progress: bool | None) -> bool:
        return self._progress if progress is None else bool(progress)

    @property
    def detector(self) -> GroundingDetector:
        """The open-vocabulary detector, loaded on first use."""
        if self._detector is None:
            raise PipelineError(
                "this pipeline was built without a detector (detector=None): text regions need one, e.g. "
                f"Pipeline.from_pretrained(detector={DEFAULT_DETECTOR!r})"
            )
        if not isinstance(self._detector, GroundingDetector):
            device = self.tracker.device if self.tracker is not None else None
            self._detector = GroundingDetector.from_pretrained(
                self._detector, device=device, revision=self._detector_revision
            )
        return self._detector

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = DEFAULT_MODEL_ID,
        sam2: str | os.PathLike[str] | None = DEFAULT_SAM2_MODEL,
        *,
        compile: bool | None = None,
        compile_sam2: bool | None = None,
        device: Any = "auto",
        dtype: Any = "auto",
        threads: int | None = None,
        detector: str | os.PathLike[str] | None = DEFAULT_DETECTOR,
        model_revision: str | None = None,
        sam2_revision: str | None = None,
        detector_revision: str | None = None,
        box_mode: str = "reference",
        progress: bool = True,
        adapter: str | os.PathLike[str] | None = None,
    ) -> Pipeline:
        """Load GAR (``model``, ``HaochenWang/GAR-1B`` by default) and SAM2 (``facebook/sam2.1-hiera-tiny``).

        Each may be a hub id (downloaded once, then read from the local cache)
        or a local folder; None leaves it out. The ``detector`` (Grounding DINO,
        ``IDEA-Research/grounding-dino-tiny`` by default) loads only when a
        text region is given. ``device``/``dtype``: ``auto`` is CUDA with bfloat16
        where present, else CPU with float32. ``compile``: GAR's decode steps compiled (CUDA graphs; default on
        for CUDA, off on a CPU), warmed by the first description and reused for every later one.
        ``compile_sam2``: SAM2's image encoder and memory attention compiled (default off; see
        ``Sam2Tracker.from_pretrained``). ``threads``: torch CPU threads (default: chosen per stage). These are
        the CLI's ``--model``, ``--sam2``, ``--compile``, ``--compile-sam2``, ``--device``, ``--dtype``, ``--threads`` and ``--detector``.
        ``*_revision``: the hub revision of each model. ``box_mode`` is GAR's RoI box: ``reference`` (what
        the released weights were trained with) or ``aligned``. ``progress``: the default of every call's
        ``progress=``. ``adapter``: a LoRA adapter folder from ``garvideo train`` (``--adapter``), attached to GAR.
        """
        stage_threads("track", "cpu", threads)  # refused before the models load
        gar = (
            GAR.from_pretrained(
                model,
                device=device,
                dtype=dtype,
                revision=model_revision,
                box_mode=box_mode,
                compile=compile,
                adapter=adapter,
            )
            if model is not None
            else None
        )
        tracker = (
            Sam2Tracker.from_pretrained(sam2, device=device, dtype=dtype, revision=sam2_revision, compile=compile_sam2)
            if sam2 is not None
            else None
        )
        return cls(
            gar, tracker, progress=progress, detector=detector, detector_revision=detector_revision, threads=threads
        )

    # ------------------------------------------------------------------ text regions

    def find(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt],
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
        max_instances: int = 1,
        search_every: float = 1.0,
        progress: bool | None = None,
    ) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...]]:
        """Turn the text regions among ``regions`` into box prompts, without tracking anything.

        Returns the prompts (text regions replaced by what the detector found,
        the others unchanged) and the found regions (frame, box, score, and the
        ``--box`` that reproduces each). Regions without a moment are searched
        for in ``[start, end)`` (default: the whole video), on one frame every
        ``search_every`` seconds until found; a box counts when its score is above ``box_threshold`` and
        some word of the phrase scores above ``text_threshold``; the ``max_instances`` most confident
        distinct boxes become regions ``car``, ``car#2``, ...
        """
        search = TextSearch(box_threshold, text_threshold, max_instances, search_every)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            prompts, found, _ = self._find(reader, regions, search, span, self._shows_progress(progress))
            return prompts, found

    def _find(
        self,
        reader: VideoReader,
        regions: Sequence[RegionPrompt] | None,
        search: TextSearch,
        span: Span,
        progress: bool,
    ) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...], StageTimings]:
        regions = list(regions or ())
        for prompt in regions:
            if not isinstance(prompt, RegionPrompt):
                raise InvalidInputError(f"regions must be RegionPrompt objects, got {type(prompt).__name__}")
        if not has_text(regions):
            return regions, (), StageTimings()
        prompts, found, decode_s, detect_s = find_text_regions(
            reader, regions, self.detector, search, (span.start, span.end), progress
        )
        return prompts, tuple(found), StageTimings(decode=decode_s, detect=detect_s)

    # ------------------------------------------------------------------ tracking

    def track(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt],
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        stride: int = 1,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
        max_instances: int = 1,
        search_every: float = 1.0,
        progress: bool | None = None,
    ) -> TrackingResult:
        """Track the regions through ``[start, end)`` (default: the whole video), both ways from each prompt,
        on every ``stride``-th frame.

        Text regions are found first (``box_threshold`` ... ``search_every``: see :meth:`find`).
        """
        search = TextSearch(box_threshold, text_threshold, max_instances, search_every)
        progress = self._shows_progress(progress)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            prompts, found, find_timings = self._find(reader, regions, search, span, progress)
            tracks, timings = self._track(reader, prompts, span, stride, progress)
            frames = sorted({f.index for t in tracks for f in t.frames})
            settings = {
                "start": span.start,
                "end": span.end,
                "stride": stride,
                "regions": [p.to_dict() for p in regions],
            }
            provenance = self._provenance(
                _with_grounding(settings, search, found), frames, reader, timings + find_timings, uses_gar=False
            )
            return TrackingResult(video=reader.info, tracks=tuple(tracks), provenance=provenance, found=found)

    def _track(
        self, reader: VideoReader, regions: Sequence[RegionPrompt], span: Span, stride: int, progress: bool
    ) -> tuple[list[Track], StageTimings]:
        if self.tracker is None:
            raise PipelineError(
                "this pipeline was built without a SAM2 tracker (sam2=None): pass tracks= or load one with "
                "Pipeline.from_pretrained(sam2=...)"
            )
        if not regions:
            raise InvalidInputError("no regions were given: mark at least one with a box, clicks, a mask or a text")
        # The tracker checks the regions against the frames; times become frame indices here.
        prompts = [_on_frame(reader, p) for p in regions]
        # Prompts outside the range still anchor the track: track from them into the range.
        first = min([span.first, *(p.frame for p in prompts)])
        stop = max([span.stop, *(p.frame + 1 for p in prompts)])
        # On a GPU the frames' preprocessing (and their upload) joins decoding in the decode thread; on the CPU
        # it stays in the tracking thread: there its Python-heavy work contended with tracking's for the GIL
        # and cores, 0.82x the speed (bench/RESULTS.md, "Decode-ahead").
        on_cpu = self.tracker.device.type == "cpu"
        source = _TimedSource(reader, prepare=None if on_cpu else self.tracker.prepare)
        began = time.perf_counter()
        with torch_threads(stage_threads("track", self.tracker.device, self.threads)):
            tracks = self.tracker.track(source, prompts, start=first, stop=stop, stride=stride, progress=progress)
        elapsed = time.perf_counter() - began
        return tracks, StageTimings(decode=source.seconds, track=max(0.0, elapsed - source.seconds))

    def _tracks_for(
        self,
        reader: VideoReader,
        regions: Sequence[RegionPrompt] | None,
        tracks: Sequence[Track] | None,
        span: Span,
        stride: int,
        progress: bool,
        names: Sequence[str] | None = None,
    ) -> tuple[list[Track], StageTimings]:
        """The caller's tracks (checked), or tracks made from the prompts (text regions already found);
        only ``names`` if given."""
        if (regions is None) == (tracks is None):
            raise InvalidInputError("give either regions (prompts to track) or tracks (already tracked), not both")
        if tracks is not None:
            tracks = list(tracks)
            _check_tracks(tracks, reader)
            if names is not None:
                tracks = [t for t in tracks if t.name in names]
            return tracks, StageTimings()
        regions = list(regions or ())
        if names is not None:
            regions = [p for p in regions if p.name in names]
        return self._track(reader, regions, span, stride, progress)

    # ------------------------------------------------------------------ describe

    def describe(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt] | None = None,
        *,
        tracks: Sequence[Track] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        stride: int = 1,
        window: float | None = None,
        frames_per_window: int = 4,
        frames: int = 8,
        tiling: str = "vanilla",
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
        max_instances: int = 1,
        search_every: float = 1.0,
        instruction: str = CAPTION_INSTRUCTION,
        template: VideoPromptTemplate | None = None,
        generation: GenerationSettings | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> DescribeResult:
        """Describe each region over ``[start, end)``: once overall and window by window.

        ``frames`` frames (spread over the region's visible span) give the
        overall description; the range is cut into consecutive ``window``-second
        windows (default: adaptive, at most 8) and ``frames_per_window`` of the
        region's visible frames in each give that window's description. Windows
        where the region is not seen are marked ``visible=False`` and not
        described; a window no tracked frame falls in (sparse tracks, a
        ``stride``) has ``visible=None``. A ``window`` shorter than the
        interval between tracked frames, or one that would make more than
        :data:`garvideo.video.sampling.MAX_WINDOWS` windows, is refused. Text regions are found first
        (``box_threshold`` ... ``search_every``: see :meth:`find`). Each description is at most
        ``max_new_tokens`` tokens.

        Beyond the CLI's options: ``instruction`` is what GAR is asked for every prompt; ``template`` the
        video prompt wording; ``generation`` the rest of the decoding settings (sampling, seed, decoder),
        whose own ``max_new_tokens`` is refused unless left at its default or equal to ``max_new_tokens``
        (the length has one name); at most ``batch_size`` prompts of similar length share one
        generate call (default: chosen per device).
        """
        gar = self._require_gar()
        settings = _generation_settings(max_new_tokens, generation)
        search = TextSearch(box_threshold, text_threshold, max_instances, search_every)
        progress = self._shows_progress(progress)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            length = window_length(reader.timeline, span, window, stride)
            bounds = window_bounds(span.start, span.end, length)
            track_list, found, timings = self._regions_to_tracks(
                reader, regions, tracks, search, span, stride, progress
            )
            plan = _plan_descriptions(track_list, span, bounds, frames, frames_per_window)
            decoded, decode_s = _decode(reader, plan.frame_indices())
            texts, gar_timings = self._describe_prompts(
                gar, plan, track_list, decoded, instruction, tiling, template, settings, batch_size, progress
            )
            timings += StageTimings(decode=decode_s) + gar_timings
            timelines = _timelines(track_list, bounds, plan, texts, decoded)
            settings_used = {
                "start": span.start,
                "end": span.end,
                "window": length,
                "frames": frames,
                "frames_per_window": frames_per_window,
                "stride": stride,
                "tiling": tiling,
                "instruction": instruction,
                "template": _template_dict(template),
                "batch_size": batch_size,
                "generation": dataclasses.asdict(settings),
                "tracks_given": tracks is not None,
            }
            provenance = self._provenance(
                _with_grounding(settings_used, search, found),
                plan.frame_indices(),
                reader,
                timings,
                uses_gar=True,
                uses_sam2=tracks is None,
            )
            return DescribeResult(
                video=reader.info,
                regions=tuple(timelines),
                tracks=tuple(track_list),
                provenance=provenance,
                found=found,
            )

    def _regions_to_tracks(
        self,
        reader: VideoReader,
        regions: Sequence[RegionPrompt] | None,
        tracks: Sequence[Track] | None,
        search: TextSearch,
        span: Span,
        stride: int,
        progress: bool,
    ) -> tuple[list[Track], tuple[FoundRegion, ...], StageTimings]:
        """The caller's tracks, or the regions' (text regions found first), with what was found and the time spent."""
        found: tuple[FoundRegion, ...] = ()
        find_timings = StageTimings()
        if tracks is None and regions is not None:
            regions, found, find_timings = self._find(reader, regions, search, span, progress)
        track_list, timings = self._tracks_for(reader, regions, tracks, span, stride, progress)
        return track_list, found, timings + find_timings

    def _describe_prompts(
        self,
        gar: GAR,
        plan: _DescriptionPlan,
        track_list: Sequence[Track],
        decoded: Mapping[int, Frame],
        instruction: str,
        tiling: str,
        template: VideoPromptTemplate | None,
        settings: GenerationSettings,
        batch_size: int | None,
        progress: bool,
    ) -> tuple[dict[tuple[str, int | None], str], StageTimings]:
        """GAR's text for every planned prompt that has frames (a window where the region is unseen has none)."""
        by_name = {t.name: t for t in track_list}
        work = [(key, idx) for key, idx in plan.frames.items() if idx]
        inputs = [
            _region_prompt(gar, decoded, by_name[name], idx, instruction, tiling, template) for (name, _), idx in work
        ]
        outputs, timings = self._generate(inputs, settings, batch_size, progress)
        return {key: out.text.strip() for (key, _), out in zip(work, outputs)}, timings

    # ------------------------------------------------------------------ ask

    def ask(
        self,
        video: VideoLike,
        question: str,
        regions: Sequence[RegionPrompt] | None = None,
        *,
        tracks: Sequence[Track] | None = None,
        options: Sequence[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        stride: int = 1,
        frames: int = 8,
        tiling: str = "vanilla",
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
        max_instances: int = 1,
        search_every: float = 1.0,
        template: VideoPromptTemplate | None = None,
        generation: GenerationSettings | None = None,
        progress: bool | None = None,
    ) -> Answer:
        """Answer a question about named regions; the question names them as ``<name>``.

        Free-form, or multiple choice with ``options`` (the answer's ``letter``
        is parsed, the raw text kept). ``start``/``end`` restrict the frames
        to that span. Up to five regions per question (GAR's limit):
        the regions the question names, or every given region if it names none.
        ``frames`` frames are spread over the frames where any of them is seen.
        Text regions are found first (``box_threshold`` ... ``search_every``: see
        :meth:`find`): a phrase found ``K`` times gives regions ``<car>``,
        ``<car#2>``, ... the question may name. ``template``, ``generation``: as
        for :meth:`describe`.
        """
        gar = self._require_gar()
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError(
                "the question is empty: ask something about the regions, e.g. 'What is <dog> doing?'"
            )
        settings = _generation_settings(max_new_tokens, generation)
        search = TextSearch(box_threshold, text_threshold, max_instances, search_every)
        progress = self._shows_progress(progress)
        asked = " ".join([question, *(str(o) for o in options or ())])
        finding = tracks is None and has_text(regions)
        if not finding:  # checked before any work; text regions get their names once found
            given = [t.name for t in tracks] if tracks is not None else _prompt_names(regions or ())
            names = _question_regions(asked, given, gar.max_regions)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            found: tuple[FoundRegion, ...] = ()
            find_timings = StageTimings()
            if finding:
                regions, found, find_timings = self._find(reader, regions, search, span, progress)
                names = _question_regions(asked, _prompt_names(regions), gar.max_regions)
            track_list, timings = self._tracks_for(reader, regions, tracks, span, stride, progress, names)
            timings += find_timings
            by_name = {t.name: t for t in track_list}
            ordered = [by_name[name] for name in names]
            chosen = spread(_frames_seen(ordered, span), frames)
            decoded, decode_s = _decode(reader, chosen)
            timings += StageTimings(decode=decode_s)
            prompt = _question_prompt(gar, decoded, ordered, chosen, question, options, tiling, template)
            with self._gar_threads():
                (result,) = gar.answer(prompt, settings)
            timings += StageTimings(encode=result.timings.encode_s, generate=result.timings.generate_s)
            settings_used = {
                "start": span.start,
                "end": span.end,
                "frames": frames,
                "stride": stride,
                "tiling": tiling,
                "template": _template_dict(template),
                "generation": dataclasses.asdict(settings),
                "tracks_given": tracks is not None,
                "prompt_tokens": result.prompt_tokens,
            }
            provenance = self._provenance(
                _with_grounding(settings_used, search, found),
                chosen,
                reader,
                timings,
                uses_gar=True,
                uses_sam2=tracks is None,
            )
            return Answer(
                question=question.strip(),
                regions=tuple(names),
                text=result.text.strip(),
                options=tuple(str(o) for o in options) if options is not None else None,
                letter=result.choice,
                time_range=(span.start, span.end) if start is not None or end is not None else None,
                tracks=tuple(track_list),
                video=reader.info,
                provenance=provenance,
                found=found,
            )

    # ------------------------------------------------------------------ prompts

    def video_prompt(
        self,
        video: VideoLike,
        tracks: Sequence[Track],
        question: str | None = None,
        *,
        options: Sequence[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        frames: int = 8,
        tiling: str = "vanilla",
        instruction: str = CAPTION_INSTRUCTION,
        template: VideoPromptTemplate | None = None,
    ) -> VideoPrompt:
        """The GAR prompt :meth:`describe` (``question`` None: the overall description of the one track) or
        :meth:`ask` (a question about the tracks, with ``options``) sends for these tracks, without generating.

        The frames are planned, read and prompted by the very code those calls run (fine-tuning builds its
        training inputs here, so they equal the inference prompts).
        """
        gar = self._require_gar()
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            track_list, _ = self._tracks_for(reader, None, tracks, span, 1, False)
            if question is None:
                if len(track_list) != 1:
                    raise InvalidInputError(f"a description is of one region, {len(track_list)} tracks were given")
                chosen = _plan_descriptions(track_list, span, (), frames, 1).frames[track_list[0].name, None]
                decoded, _ = _decode(reader, chosen)
                prompt = _region_prompt(gar, decoded, track_list[0], chosen, instruction, tiling, template)
            else:
                asked = " ".join([question, *(str(o) for o in options or ())])
                names = _question_regions(asked, [t.name for t in track_list], gar.max_regions)
                ordered = [next(t for t in track_list if t.name == name) for name in names]
                chosen = spread(_frames_seen(ordered, span), frames)
                decoded, _ = _decode(reader, chosen)
                prompt = _question_prompt(gar, decoded, ordered, chosen, question, options, tiling, template)
            return VideoPrompt(prompt, tuple(chosen), tuple(decoded[i].time for i in chosen))

    # ------------------------------------------------------------------ helpers

    def _require_gar(self) -> GAR:
        if self.gar is None:
            raise PipelineError(
                "this pipeline was built without a GAR model (model=None): load one with "
                "Pipeline.from_pretrained(model=...)"
            )
        return self.gar

    def _gar_threads(self) -> contextlib.AbstractContextManager[None]:
        assert self.gar is not None
        return torch_threads(stage_threads("gar", self.gar.model.device, self.threads))

    def _generate(
        self, inputs: list, settings: GenerationSettings, batch_size: int | None, progress: bool
    ) -> tuple[list[GARResult], StageTimings]:
        assert self.gar is not None
        with self._gar_threads():
            results = self.gar.answer(inputs, settings, batch_size=batch_size, progress=progress)
        # Each result carries its share of its batch's time: the shares add up to the run's.
        encode = sum(r.timings.encode_s for r in results)
        generate = sum(r.timings.generate_s for r in results)
        return results, StageTimings(encode=encode, generate=generate)

    def _provenance(
        self,
        settings: Mapping[str, Any],
        frames: Sequence[int],
        reader: VideoReader,
        timings: StageTimings,
        uses_gar: bool,
        uses_sam2: bool = True,
    ) -> Provenance:
        gar_ref = None
        if uses_gar and self.gar is not None:
            info = self.gar.info
            adapter = info.adapter.to_dict() if info.adapter is not None else None
            gar_ref = ModelRef(info.model_id, info.revision, info.device, info.dtype, adapter)
            settings = {**settings, "box_mode": info.box_mode, "double_bos": info.double_bos, "compiled": info.compiled}
        sam2_ref = None
        if uses_sam2 and self.tracker is not None:
            t = self.tracker
            sam2_ref = ModelRef(t.model_id, t.revision, str(t.device), t.precision)  # e.g. float32+autocast:bfloat16
        frames = sorted(set(int(i) for i in frames))
        return Provenance(
            gar=gar_ref,
            sam2=sam2_ref,
            settings=dict(settings),
            frames=tuple(frames),
            times=tuple(reader.index_to_time(i) for i in frames),
            timings=timings,
            garvideo_version=__version__,
        )


# ---------------------------------------------------------------------- module helpers


def _generation_settings(max_new_tokens: int, generation: GenerationSettings | None) -> GenerationSettings:
    """The decoding settings: ``generation`` (or the defaults) with ``max_new_tokens`` as the length.

    The length has one name: a ``generation`` that sets another ``max_new_tokens`` is refused, not silently
    overridden.
    """
    if generation is None:
        return GenerationSettings(max_new_tokens=max_new_tokens)
    if not isinstance(generation, GenerationSettings):
        raise InvalidInputError(f"generation must be a GenerationSettings, got {type(generation).__name__}")
    default = GenerationSettings().max_new_tokens
    if generation.max_new_tokens not in (default, max_new_tokens):
        raise InvalidInputError(
            f"generation sets max_new_tokens={generation.max_new_tokens} but the call's max_new_tokens is "
            f"{max_new_tokens}: give the length once, as max_new_tokens={generation.max_new_tokens}"
        )
    return dataclasses.replace(generation, max_new_tokens=max_new_tokens)


@dataclass(frozen=True)
class _DescriptionPlan:
    """Which frames every prompt of a description shows, planned before anything is decoded.

    ``frames[(region, window number)]``: the frames of that prompt (window None: the overall description;
    empty: the region is not seen in that window). ``visible_spans``: per region, its first and last visible
    time. ``untracked``: the (region, window number) pairs no tracked frame falls in, which say nothing about
    visibility.
    """

    frames: dict[tuple[str, int | None], list[int]]
    visible_spans: dict[str, tuple[float, float]]
    untracked: frozenset[tuple[str, int]]

    def frame_indices(self) -> list[int]:
        """Every planned frame once, in order (each is decoded once however many prompts show it)."""
        return sorted({i for idx in self.frames.values() for i in idx})


def _plan_descriptions(
    track_list: Sequence[Track],
    span: Span,
    bounds: Sequence[tuple[float, float]],
    frames: int,
    frames_per_window: int,
) -> _DescriptionPlan:
    """``frames`` of each region's visible frames for its overall description, ``frames_per_window`` for each
    window's; a region never visible in the range is refused."""
    plans: dict[tuple[str, int | None], list[int]] = {}
    spans: dict[str, tuple[float, float]] = {}
    untracked: set[tuple[str, int]] = set()
    for track in track_list:
        tracked_times = np.array([f.time for f in track.frames])
        for number, (a, b) in enumerate(bounds):
            if not np.any((tracked_times >= a) & (tracked_times < b)):
                untracked.add((track.name, number))
        seen = [f for f in track.frames if f.visible and span.holds_time(f.time)]
        if not seen:
            raise PipelineError(
                f"region {track.name!r} is never visible between {span.start:.3f} s and {span.end:.3f} s: "
                f"check its prompt, or widen the range"
            )
        spans[track.name] = (seen[0].time, seen[-1].time)
        plans[track.name, None] = [f.index for f in spread(seen, frames)]
        for number, (a, b) in enumerate(bounds):
            inside = [f.index for f in seen if a <= f.time < b]
            plans[track.name, number] = spread(inside, frames_per_window) if inside else []
    return _DescriptionPlan(frames=plans, visible_spans=spans, untracked=frozenset(untracked))


def _timelines(
    track_list: Sequence[Track],
    bounds: Sequence[tuple[float, float]],
    plan: _DescriptionPlan,
    texts: Mapping[tuple[str, int | None], str],
    decoded: Mapping[int, Frame],
) -> list[RegionTimeline]:
    """Each region's overall description and its windows, with the frames and times each was made from."""

    def times_of(idx: Sequence[int]) -> tuple[float, ...]:
        return tuple(decoded[i].time for i in idx)

    timelines = []
    for track in track_list:
        windows = []
        for number, (a, b) in enumerate(bounds):
            idx = plan.frames[track.name, number]
            windows.append(
                TimelineWindow(
                    start=a,
                    end=b,
                    visible=None if (track.name, number) in plan.untracked else bool(idx),
                    description=texts.get((track.name, number)),
                    frames=tuple(idx),
                    times=times_of(idx),
                )
            )
        overall = plan.frames[track.name, None]
        timelines.append(
            RegionTimeline(
                name=track.name,
                description=texts[track.name, None],
                windows=tuple(windows),
                visible_span=plan.visible_spans[track.name],
                frames=tuple(overall),
                times=times_of(overall),
            )
        )
    return timelines


@dataclass(frozen=True)
class VideoPrompt:
    """A prompt as :meth:`Pipeline.describe` or :meth:`Pipeline.ask` sends it: the prepared prompt, and the frames
    (indices and times) it shows."""

    prompt: NamedPrompt
    frames: tuple[int, ...]
    times: tuple[float, ...]


def _region_prompt(
    gar: GAR,
    decoded: Mapping[int, Frame],
    track: Track,
    idx: Sequence[int],
    instruction: str,
    tiling: str,
    template: VideoPromptTemplate | None,
) -> NamedPrompt:
    """One region's description prompt over the frames ``idx`` (describe's overall and window prompts)."""
    return gar.prepare_video(
        [decoded[i].image for i in idx],
        {track.name: [track.mask_at(i) for i in idx]},
        instruction,
        times=[decoded[i].time for i in idx],
        tiling=tiling,
        template=template,
    )


def _question_prompt(
    gar: GAR,
    decoded: Mapping[int, Frame],
    ordered: Sequence[Track],
    chosen: Sequence[int],
    question: str,
    options: Sequence[str] | None,
    tiling: str,
    template: VideoPromptTemplate | None,
) -> NamedPrompt:
    """ask's prompt: the question about the ordered tracks over the frames ``chosen`` (None where one is unseen)."""
    return gar.prepare_video(
        [decoded[i].image for i in chosen],
        {track.name: [_visible_mask(track, i) for i in chosen] for track in ordered},
        question,
        options=options,
        times=[decoded[i].time for i in chosen],
        tiling=tiling,
        template=template,
    )


def _frames_seen(tracks: Sequence[Track], span: Span) -> list[int]:
    """The frames in the range where any of the tracks is visible; a track never visible there is refused."""
    seen: set[int] = set()
    for track in tracks:
        visible = {f.index for f in track.frames if f.visible and span.holds_time(f.time)}
        if not visible:
            raise PipelineError(
                f"region {track.name!r} is never visible between {span.start:.3f} s and {span.end:.3f} s: "
                f"ask about another time range or check its prompt"
            )
        seen |= visible
    return sorted(seen)


def _decode(reader: VideoReader, indices: Sequence[int]) -> tuple[dict[int, Frame], float]:
    began = time.perf_counter()
    frames = reader.read(sorted(set(indices)))
    decoded = {f.index: f for f in frames}
    missing = sorted(set(indices) - set(decoded))
    if missing:
        raise PipelineError(f"frames {missing[:5]} of {reader.path} could not be decoded (is the file damaged?)")
    return decoded, time.perf_counter() - began


def _check_tracks(tracks: Sequence[Track], reader: VideoReader) -> None:
    if not tracks:
        raise InvalidInputError("no tracks were given")
    names = [t.name for t in tracks]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"track names must be distinct, got {names}")
    for track in tracks:
        if not isinstance(track, Track):
            raise InvalidInputError(f"tracks must be Track objects, got {type(track).__name__}")
        if not track.frames:
            raise InvalidInputError(f"track {track.name!r} has no frames")
        if track.frames[0].size != (reader.height, reader.width):
            h, w = track.frames[0].size
            raise InvalidInputError(
                f"track {track.name!r} has {w}x{h} masks but the video is {reader.width}x{reader.height}"
            )
        if track.frames[-1].index >= reader.num_frames:
            raise InvalidInputError(
                f"track {track.name!r} has a mask on frame {track.frames[-1].index}, beyond the video's "
                f"{reader.num_frames} frames"
            )


def _prompt_names(regions: Sequence[RegionPrompt]) -> list[str]:
    names: list[str] = []
    for prompt in regions:
        if not isinstance(prompt, RegionPrompt):
            raise InvalidInputError(f"regions must be RegionPrompt objects, got {type(prompt).__name__}")
        if prompt.name not in names:
            names.append(prompt.name)
    return names


def _question_regions(question: str, given: Sequence[str], limit: int) -> list[str]:
    """The regions a question (with its options) is about, in the order given; checked before any work is done."""
    if not given:
        raise InvalidInputError("no regions were given: a question is about one to five named regions")
    _, named = resolve_references(question, given)
    names = [n for n in given if n in named] or list(given)
    if len(names) > limit:
        raise TooManyRegionsError(
            f"the question is about {len(names)} regions ({', '.join(names)}) but GAR takes at most {limit} in one "
            f"prompt: ask about at most {limit} at a time"
        )
    return names


def _on_frame(reader: VideoReader, prompt: RegionPrompt) -> RegionPrompt:
    if not isinstance(prompt, RegionPrompt):
        raise InvalidInputError(f"regions must be RegionPrompt objects, got {type(prompt).__name__}")
    return prompt.resolve(reader.time_to_index)


def _visible_mask(track: Track, index: int) -> np.ndarray | None:
    try:
        entry = track.frame(index)
    except InvalidInputError:
        return None  # not tracked on this frame: not seen there
    return entry.mask() if entry.visible else None


def _with_grounding(settings: dict[str, Any], search: TextSearch, found: Sequence[FoundRegion]) -> dict[str, Any]:
    """The settings, with how the text regions were found (detector, revision, frame, score, box) when there were any."""
    if not found:
        return settings
    grounding = {
        "detector": found[0].detector.to_dict(),
        **search.to_dict(),
        "found": [f.to_dict() for f in found],
    }
    return {**settings, "grounding": grounding}


def _template_dict(template: VideoPromptTemplate | None) -> dict[str, str] | None:
    return dataclasses.asdict(template) if template is not None else None
