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
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import defaults
from ..devices import stage_threads, torch_threads
from ..errors import InvalidInputError
from ..grounding import GroundingDetector
from ..model import CAPTION_INSTRUCTION, GAR, GARResult, GenerationSettings, VideoPromptTemplate
from ..tracking import FrameLike, RegionPrompt, Sam2Tracker, Track
from ..video import Span, VideoReader, reading, time_span, window_bounds, window_length
from .errors import PipelineError
from .events import EventListener, answer_text, description_texts
from .grounding import TextSearch, check_search, find_in_span
from .instances import new_instances
from .planning import DescriptionPlan, PromptKey, plan_answer, plan_description, timelines
from .prompting import (
    Prompting,
    Question,
    VideoPrompt,
    generation_settings,
    question_arguments,
    read_frames,
    region_prompt,
    video_prompt,
)
from .provenance import make_provenance, models_used
from .regions import RegionInput, RegionTracks, only
from .results import Answer, DescribeResult, FoundRegion, StageTimings, TrackingResult
from .timed_source import track_with_sam2

VideoLike = "str | os.PathLike[str] | VideoReader"
TimeLike = "float | str | None"

#: Text regions are found with these settings unless a call passes its own ``search=``.
DEFAULT_SEARCH = TextSearch()


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
    ``max_new_tokens=64``), except the text-search options, which one
    ``search=TextSearch(...)`` carries (``--box-threshold 0.3`` is
    ``search=TextSearch(box_threshold=0.3)``). Every call starts from
    :meth:`tracks_for` (regions or tracks in, tracks out).
    """

    def __init__(
        self,
        gar: GAR | None,
        tracker: Sam2Tracker | None,
        progress: bool = True,
        detector: GroundingDetector | str | os.PathLike[str] | None = defaults.DETECTOR,
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
                f"Pipeline.from_pretrained(detector={defaults.DETECTOR!r})"
            )
        if not isinstance(self._detector, GroundingDetector):
            device = self.tracker.device if self.tracker is not None else None
            self._detector = GroundingDetector.from_pretrained(
                self._detector, device=device, revision=self._detector_revision
            )
        return self._detector

    @property
    def models(self) -> dict[str, str | None]:
        """Which GAR (and its fine-tuned adapter, if any), SAM2 and detector this pipeline uses (ids or folders, as
        provenance names them), without loading the detector."""
        return models_used(self.gar, self.tracker, self._detector)

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = defaults.MODEL,
        sam2: str | os.PathLike[str] | None = defaults.SAM2,
        *,
        compile: bool | str = defaults.COMPILE,
        compile_sam2: bool | None = None,
        device: Any = defaults.DEVICE,
        dtype: Any = defaults.DTYPE,
        threads: int | None = None,
        detector: str | os.PathLike[str] | None = defaults.DETECTOR,
        model_revision: str | None = None,
        sam2_revision: str | None = None,
        detector_revision: str | None = None,
        box_mode: str = "reference",
        progress: bool = True,
        adapter: str | os.PathLike[str] | None = None,
        long_running: bool = False,
    ) -> Pipeline:
        """Load GAR (``model``, ``HaochenWang/GAR-1B`` by default) and SAM2 (``facebook/sam2.1-hiera-tiny``).

        Each may be a hub id (downloaded once, then read from the local cache)
        or a local folder; None leaves it out. The ``detector`` (Grounding DINO,
        ``IDEA-Research/grounding-dino-tiny`` by default) loads only when a
        text region is given. ``device``/``dtype``: ``auto`` is CUDA with bfloat16
        where present, else CPU with float32. ``compile``: GAR's decode steps compiled: ``auto`` (default) only
        where the warm-up pays back (see :attr:`garvideo.model.GAR.compile`), ``on``/``off`` (True/False), or a kind
        (``inductor``, ``cuda-graphs``); what ran and the warm-up spent are in each result's provenance.
        ``compile_sam2``: SAM2's image encoder and memory attention compiled (default off; see
        ``Sam2Tracker.from_pretrained``). ``threads``: torch CPU threads (default: chosen per stage). These are
        the CLI's ``--model``, ``--sam2``, ``--compile``, ``--compile-sam2``, ``--device``, ``--dtype``, ``--threads`` and ``--detector``.
        ``*_revision``: the hub revision of each model. ``box_mode`` is GAR's RoI box: ``reference`` (what
        the released weights were trained with) or ``aligned``. ``progress``: the default of every call's
        ``progress=``. ``adapter``: a LoRA adapter folder from ``garvideo train`` (``--adapter``), attached to GAR.
        ``long_running=True`` says the process will make many calls (a batch, the web app, a
        service, live sessions, a benchmark run): ``compile="auto"`` then compiles from the first call on CUDA
        (and, on a CPU, once its decoding has earned the warm-up). Front-ends that serve many videos pass it;
        a one-shot command does not.
        """
        stage_threads("track", "cpu", threads)  # refused before the models load
        gar = None
        if model is not None:
            options = dict(box_mode=box_mode, compile=compile, adapter=adapter, long_running=long_running)
            gar = GAR.from_pretrained(model, device=device, dtype=dtype, revision=model_revision, **options)
        tracker = (
            Sam2Tracker.from_pretrained(sam2, device=device, dtype=dtype, revision=sam2_revision, compile=compile_sam2)
            if sam2 is not None
            else None
        )
        return cls(
            gar, tracker, progress=progress, detector=detector, detector_revision=detector_revision, threads=threads
        )

    # ------------------------------------------------------------------ regions to tracks

    def find(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt],
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        search: TextSearch = DEFAULT_SEARCH,
        progress: bool | None = None,
        on_event: EventListener | None = None,
    ) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...]]:
        """Turn the text regions among ``regions`` into box prompts, without tracking anything.

        Returns the prompts (text regions replaced by what the detector found, the others unchanged) and the
        found regions (frame, box, score, and the ``--box`` that reproduces each). Regions without a moment
        are searched for in ``[start, end)`` (default: the whole video), on one frame every ``search.every``
        seconds until found; a box counts when its score is above ``search.box_threshold`` and some word of
        the phrase scores above ``search.text_threshold``; the ``search.max_instances`` most confident
        distinct boxes become regions ``car``, ``car#2``, ... (:class:`TextSearch`). ``on_event`` hears the
        search's progress (:mod:`garvideo.pipeline.events`).
        """
        inputs, search = RegionInput.of(regions), check_search(search)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            prompts, found, _ = self._find(reader, inputs, search, span, self._shows_progress(progress), on_event)
            return prompts, found

    def tracks_for(
        self,
        reader: VideoReader,
        regions: Sequence[RegionPrompt] | None = None,
        *,
        tracks: Sequence[Track] | None = None,
        span: Span | None = None,
        stride: int = defaults.STRIDE,
        search: TextSearch = DEFAULT_SEARCH,
        select: Callable[[list[str]], Sequence[str]] | None = None,
        progress: bool | None = None,
        on_event: EventListener | None = None,
    ) -> RegionTracks:
        """Regions or tracks in, tracks out: the one way :meth:`track`, :meth:`describe` and :meth:`ask` (and a
        live session, a training data loader) get the tracks they work on, from an open ``reader``.

        Given ``tracks`` are checked against the video and used as they are. Otherwise the text regions among
        ``regions`` are found first (``search``, in ``span``: default the whole video), then SAM2 tracks the
        prompts through ``span`` on every ``stride``-th frame, both ways from each (a prompt outside the span
        still anchors its track). ``select(names)``, when given, keeps the regions it returns, once their names
        are known (a text region's once found), before anything is tracked: :meth:`ask` keeps the regions its
        question names. ``on_event`` hears the search's and the tracking's progress and every tracked frame.
        """
        span = span if span is not None else time_span(reader.timeline)
        inputs, search = RegionInput.of(regions, tracks), check_search(search)
        return self._tracks(reader, inputs, span, stride, search, self._shows_progress(progress), on_event, select)

    def _tracks(
        self,
        reader: VideoReader,
        inputs: RegionInput,
        span: Span,
        stride: int,
        search: TextSearch,
        progress: bool,
        on_event: EventListener | None,
        select: Callable[[list[str]], Sequence[str]] | None = None,
    ) -> RegionTracks:
        """:meth:`tracks_for` with its arguments checked."""
        if inputs.tracks is not None:
            inputs.check_against(reader)
            kept = only(inputs.tracks, select(inputs.names)) if select is not None else inputs.tracks
            return RegionTracks(tuple(kept))
        prompts, found, find_timings = self._find(reader, inputs, search, span, progress, on_event)
        if select is not None:
            prompts = only(prompts, select(RegionInput.of(prompts).names))
        made, timings = self._track(reader, prompts, span, stride, progress, on_event)
        if search.new_instances and inputs.has_text:

            def retrack(marks: list[RegionPrompt]) -> tuple[list[Track], StageTimings]:
                return self._track(reader, marks, span, stride, False, None)

            regions = inputs.prompts or ()
            made, found, more = new_instances(
                reader, self.detector, search, span, regions, prompts, found, made, retrack
            )
            made = only(made, select([t.name for t in made])) if select is not None else made
            timings += more
        return RegionTracks(tuple(made), found, timings + find_timings, tracked=True)

    def _find(
        self,
        reader: VideoReader,
        inputs: RegionInput,
        search: TextSearch,
        span: Span,
        progress: bool,
        on_event: EventListener | None,
    ) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...], StageTimings]:
        """The prompts with their text regions found (unchanged without any), what was found and the time spent."""
        prompts = list(inputs.prompts or ())
        if not inputs.has_text:
            return prompts, (), StageTimings()
        return find_in_span(reader, prompts, self.detector, search, span, progress, on_event, self.threads)

    def _track(
        self,
        reader: VideoReader,
        regions: Sequence[RegionPrompt],
        span: Span,
        stride: int,
        progress: bool,
        on_event: EventListener | None,
    ) -> tuple[list[Track], StageTimings]:
        if self.tracker is None:
            raise PipelineError(
                "this pipeline was built without a SAM2 tracker (sam2=None): pass tracks= or load one with "
                "Pipeline.from_pretrained(sam2=...)"
            )
        if not regions:
            raise InvalidInputError("no regions were given: mark at least one with a box, clicks, a mask or a text")
        return track_with_sam2(self.tracker, reader, regions, span, stride, progress, on_event, self.threads)

    # ------------------------------------------------------------------ track

    def track(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt],
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        stride: int = defaults.STRIDE,
        search: TextSearch = DEFAULT_SEARCH,
        progress: bool | None = None,
        on_event: EventListener | None = None,
    ) -> TrackingResult:
        """Track the regions through ``[start, end)`` (default: the whole video), both ways from each prompt,
        on every ``stride``-th frame.

        Text regions are found first (``search``: see :meth:`find`). ``on_event`` hears the progress and every
        tracked frame's masks as they come (:mod:`garvideo.pipeline.events`).
        """
        inputs, search = RegionInput.of(regions if regions is not None else ()), check_search(search)
        progress = self._shows_progress(progress)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            got = self._tracks(reader, inputs, span, stride, search, progress, on_event)
            frames = sorted({f.index for t in got.tracks for f in t.frames})
            settings = {"stride": stride, "regions": [p.to_dict() for p in inputs.prompts or ()]}
            provenance = make_provenance(
                None, self.tracker, reader, span, got, search, settings, frames, StageTimings()
            )
            return TrackingResult(video=reader.info, tracks=got.tracks, provenance=provenance, found=got.found)

    # ------------------------------------------------------------------ describe

    def describe(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt] | None = None,
        *,
        tracks: Sequence[Track] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        stride: int = defaults.STRIDE,
        window: float | None = defaults.WINDOW,
        frames_per_window: int = defaults.FRAMES_PER_WINDOW,
        frames: int = defaults.FRAMES,
        tiling: str = defaults.TILING,
        max_new_tokens: int = defaults.MAX_NEW_TOKENS,
        search: TextSearch = DEFAULT_SEARCH,
        instruction: str = CAPTION_INSTRUCTION,
        template: VideoPromptTemplate | None = None,
        generation: GenerationSettings | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        on_event: EventListener | None = None,
    ) -> DescribeResult:
        """Describe each region over ``[start, end)``: once overall (``frames`` frames spread over its visible
        span) and window by window (``frames_per_window`` frames of each ``window``-second window; default:
        adaptive, at most 8). A window where the region is not seen is ``visible=False`` and not described;
        one no tracked frame falls in (sparse tracks, a ``stride``) has ``visible=None``. A ``window`` shorter
        than the interval between tracked frames, or making more than :data:`garvideo.video.sampling.MAX_WINDOWS`
        windows, is refused. Text regions are found first (``search``: see :meth:`find`). Each description is at
        most ``max_new_tokens`` tokens. Which frames each prompt shows: :mod:`garvideo.pipeline.planning`.

        Beyond the CLI: ``instruction`` (what GAR is asked in every prompt), ``template`` (the video prompt's
        wording), ``generation`` (sampling, seed, decoder; its own ``max_new_tokens`` is refused unless left at
        its default or equal to ``max_new_tokens``), ``batch_size`` (prompts of similar length sharing one
        generate call; default: chosen per device). ``on_event`` hears the progress, every tracked frame's masks
        and each text as GAR writes it (:mod:`garvideo.pipeline.events`); raising in it stops the call.
        """
        gar = self._require_gar()
        generation = generation_settings(max_new_tokens, generation)
        prompting = Prompting(tiling, template, generation, instruction, batch_size)
        inputs, search = RegionInput.of(regions, tracks), check_search(search)
        progress = self._shows_progress(progress)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            length = window_length(reader.timeline, span, window, stride)
            got = self._tracks(reader, inputs, span, stride, search, progress, on_event)
            bounds = window_bounds(span.start, span.end, length)
            plan = plan_description(got.tracks, span, bounds, frames, frames_per_window)
            texts, times, timings = self._describe_prompts(gar, reader, plan, got.tracks, prompting, progress, on_event)
            settings = dict(window=length, frames=frames, frames_per_window=frames_per_window, stride=stride)
            settings.update(**prompting.settings(), tracks_given=not got.tracked)
            used = plan.frame_indices()
            provenance = make_provenance(gar, self.tracker, reader, span, got, search, settings, used, timings)
            described = tuple(timelines(got.tracks, plan, texts, times))
            return DescribeResult(reader.info, described, got.tracks, provenance, found=got.found)

    def _describe_prompts(
        self,
        gar: GAR,
        reader: VideoReader,
        plan: DescriptionPlan,
        tracks: Sequence[Track],
        prompting: Prompting,
        progress: bool,
        on_event: EventListener | None,
    ) -> tuple[dict[PromptKey, str], dict[int, float], StageTimings]:
        """GAR's text for every planned prompt that has frames (streamed to ``on_event`` as it comes), the time
        of every frame shown, and the time spent decoding and in GAR."""
        decoded, decode_s = read_frames(reader, plan.frame_indices())
        texts, timings = self.describe_frames(decoded, plan, tracks, prompting, progress=progress, on_event=on_event)
        return texts, {i: frame.time for i, frame in decoded.items()}, StageTimings(decode=decode_s) + timings

    def describe_frames(
        self,
        frames: Mapping[int, FrameLike],
        plan: DescriptionPlan,
        tracks: Sequence[Track],
        prompting: Prompting,
        *,
        progress: bool = False,
        on_event: EventListener | None = None,
    ) -> tuple[dict[PromptKey, str], StageTimings]:
        """GAR's text for every prompt of ``plan`` that has frames, as :meth:`describe` asks for it, from frames the
        caller already holds (``frames[i]``: frame ``i``, with its ``image`` and ``time``; a live session's).
        ``on_event`` hears the texts as they are generated. Returns the texts by prompt and the time in GAR."""
        gar = self._require_gar()
        by_name = {t.name: t for t in tracks}
        work = plan.prompts()
        inputs = [region_prompt(gar, frames, by_name[name], chosen, prompting) for (name, _), chosen in work]
        on_text = description_texts(on_event, [key for key, _ in work], plan.bounds)
        with self._gar_threads():
            outputs = gar.answer(
                inputs, prompting.generation, batch_size=prompting.batch_size, progress=progress, on_text=on_text
            )
        timings = StageTimings(  # each result carries its share of its batch's time: the shares add up to the run's
            encode=sum(r.timings.encode_s for r in outputs), generate=sum(r.timings.generate_s for r in outputs)
        )
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
        stride: int = defaults.STRIDE,
        frames: int = defaults.FRAMES,
        tiling: str = defaults.TILING,
        max_new_tokens: int = defaults.MAX_NEW_TOKENS,
        search: TextSearch = DEFAULT_SEARCH,
        template: VideoPromptTemplate | None = None,
        generation: GenerationSettings | None = None,
        progress: bool | None = None,
        on_event: EventListener | None = None,
    ) -> Answer:
        """Answer a question about named regions; the question names them as ``<name>``.

        Free-form, or multiple choice with ``options`` (the answer's ``letter`` is parsed, the raw text kept).
        ``start``/``end`` restrict the frames to that span. Up to five regions per question (GAR's limit): the
        regions the question names, or every given region if it names none. ``frames`` frames are spread over
        the frames where any of them is seen. Text regions are found first (``search``: see :meth:`find`): a
        phrase found ``K`` times gives regions ``<car>``, ``<car#2>``, ... the question may name.
        ``template``, ``generation``, ``on_event``: as for :meth:`describe`.
        """
        gar = self._require_gar()
        asked = Question.of(question, options, gar.max_regions)
        prompting = Prompting(tiling, template, generation_settings(max_new_tokens, generation))
        inputs, search = RegionInput.of(regions, tracks), check_search(search)
        if not inputs.has_text:  # checked before any work; text regions get their names once found
            asked.regions_among(inputs.names)
        progress = self._shows_progress(progress)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            got = self._tracks(reader, inputs, span, stride, search, progress, on_event, asked.regions_among)
            chosen = plan_answer(got.tracks, span, frames)
            result, timings = self._answer(gar, reader, got.tracks, chosen, asked, prompting, on_event)
            settings = {
                "frames": frames,
                "stride": stride,
                **prompting.settings(),
                "tracks_given": not got.tracked,
                "prompt_tokens": result.prompt_tokens,
            }
            provenance = make_provenance(gar, self.tracker, reader, span, got, search, settings, chosen, timings)
            within = (span.start, span.end) if start is not None or end is not None else None
            return asked.answer(result, got, reader.info, provenance, within)

    def _answer(
        self,
        gar: GAR,
        reader: VideoReader,
        tracks: Sequence[Track],
        chosen: Sequence[int],
        asked: Question,
        prompting: Prompting,
        on_event: EventListener | None,
    ) -> tuple[GARResult, StageTimings]:
        """GAR's answer from the ``chosen`` frames, each with the mask of every region seen on it."""
        decoded, decode_s = read_frames(reader, chosen)
        result, timings = self.answer_frames(decoded, tracks, chosen, asked, prompting, on_event=on_event)
        return result, StageTimings(decode=decode_s) + timings

    def answer_frames(
        self,
        frames: Mapping[int, FrameLike],
        tracks: Sequence[Track],
        chosen: Sequence[int],
        asked: Question,
        prompting: Prompting,
        *,
        on_event: EventListener | None = None,
    ) -> tuple[GARResult, StageTimings]:
        """GAR's answer to ``asked`` from the ``chosen`` frames (each with the mask of every region seen on it), as
        :meth:`ask` asks it, from frames the caller already holds (``frames[i]``: frame ``i``, with its ``image``
        and ``time``; a live session's). ``on_event`` hears the text as it is generated."""
        gar = self._require_gar()
        images, masks, asking = question_arguments(frames, tracks, chosen, asked, prompting)
        with self._gar_threads():
            result = gar.ask_video(
                images, masks, **asking, generation=prompting.generation, on_text=answer_text(on_event)
            )
        return result, StageTimings(encode=result.timings.encode_s, generate=result.timings.generate_s)

    # ------------------------------------------------------------------ live

    def live(self, source: str | os.PathLike[str], regions: Sequence[RegionPrompt] = (), **options: Any) -> Any:
        """A running live session on ``source`` (a URL, a device, ``-`` for standard input, a file being written)
        with these models: ``with pipe.live(source, regions, window=10) as session: for event in session: ...``.

        ``options`` are ``garvideo live``'s, as keywords (see :func:`garvideo.live.open_session`).
        """
        from ..live import open_session  # the live package builds on this one: imported when used

        return open_session(self, source, regions, **options)

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
        frames: int = defaults.FRAMES,
        tiling: str = defaults.TILING,
        instruction: str = CAPTION_INSTRUCTION,
        template: VideoPromptTemplate | None = None,
    ) -> VideoPrompt:
        """The GAR prompt :meth:`describe` (``question`` None: the overall description of the one track) or
        :meth:`ask` (a question about the tracks, with ``options``) sends for these tracks, without generating.

        The frames are planned (:mod:`garvideo.pipeline.planning`), read and prompted by the very code those
        calls run; fine-tuning builds its training inputs here, so they equal the inference prompts.
        """
        prompting = Prompting(tiling, template, GenerationSettings(), instruction)
        with reading(video) as reader:
            span = time_span(reader.timeline, start, end)
            got = self.tracks_for(reader, tracks=tracks, span=span, progress=False)
            return video_prompt(self._require_gar(), reader, span, got.tracks, question, options, frames, prompting)

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
