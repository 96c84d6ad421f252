"""The pipeline: decode a video, track regions with SAM2, describe and question them with GAR.

>>> pipe = Pipeline.from_pretrained()                      # GAR-1B + SAM2.1-tiny, loaded once
>>> dog = RegionPrompt.from_box("dog", (120, 80, 260, 240), "4.5s")
>>> result = pipe.describe("clip.mp4", [dog])
>>> result.region("dog").description, result.region("dog").windows
>>> pipe.ask("clip.mp4", [dog, ball], "What is <dog> doing with <ball>?").text

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
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import __version__
from ..devices import stage_threads, torch_threads
from ..errors import GarvideoError, InvalidInputError
from ..grounding import DEFAULT_DETECTOR, GroundingDetector
from ..model import CAPTION_INSTRUCTION, DEFAULT_MODEL_ID, GAR, GARResult, GenerationSettings, VideoPromptTemplate
from ..model.errors import TooManyRegionsError
from ..names import resolve_references
from ..timecode import parse_seconds
from ..tracking import DEFAULT_SAM2_MODEL, RegionPrompt, Sam2Tracker, Track
from ..video import Frame, VideoReader, reading
from ..windows import check_window_length
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

#: Window lengths (seconds) the adaptive timeline chooses from.
NICE_WINDOW_LENGTHS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
#: The adaptive timeline has at most this many windows.
MAX_ADAPTIVE_WINDOWS = 8


class PipelineError(GarvideoError):
    """A request the pipeline cannot serve as asked (a model it was built without, a region never seen)."""


def adaptive_window_length(span: float) -> float:
    """The shortest nice length that cuts ``span`` seconds into at most :data:`MAX_ADAPTIVE_WINDOWS` windows."""
    for length in NICE_WINDOW_LENGTHS:
        if span / length <= MAX_ADAPTIVE_WINDOWS + 1e-9:
            return length
    return math.ceil(span / MAX_ADAPTIVE_WINDOWS)


def window_bounds(start: float, end: float, length: float) -> list[tuple[float, float]]:
    """Consecutive ``[a, b)`` spans of ``length`` seconds covering ``[start, end)``.

    A last span shorter than a quarter of ``length`` is merged into the one
    before it, so no window holds just a frame or two.
    """
    if length <= 0:
        raise InvalidInputError(f"the window length must be positive, got {length} s")
    count = max(1, math.ceil((end - start) / length - 1e-9))
    bounds = [(start + k * length, min(start + (k + 1) * length, end)) for k in range(count)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < length / 4:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items evenly spread over ``items`` (first and last included); all of them if fewer."""
    if count < 1:
        raise InvalidInputError(f"the number of frames must be at least 1, got {count}")
    if len(items) <= count:
        return list(items)
    positions = np.round(np.linspace(0, len(items) - 1, count)).astype(int)
    return [items[p] for p in positions]


@dataclass(frozen=True)
class _Range:
    """A span of the video: frames ``[first, stop)`` and times ``[start, end)``."""

    first: int
    stop: int
    start: float
    end: float

    def holds_time(self, seconds: float) -> bool:
        return self.start <= seconds < self.end


class _TimedSource:
    """A video reader seen by the tracker, timing how long it waits for decoded frames."""

    def __init__(self, reader: VideoReader) -> None:
        self._reader = reader
        self.seconds = 0.0

    num_frames = property(lambda self: self._reader.num_frames)
    width = property(lambda self: self._reader.width)
    height = property(lambda self: self._reader.height)

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        frames = self._reader.iter_frames(start, stop, step)
        try:
            while True:
                began = time.perf_counter()
                frame = next(frames, None)
                self.seconds += time.perf_counter() - began
                if frame is None:
                    return
                yield frame
        finally:
            frames.close()


class Pipeline:
    """Video + SAM2 tracking + GAR, each model loaded once and reused for every video.

    Build it with :meth:`from_pretrained`; either model may be left out
    (``gar=None`` to only track, ``sam2=None`` when tracks are always given).
    ``detector`` finds text regions: a loaded :class:`GroundingDetector`, or
    the id or folder of one, loaded the first time a text region is given
    (on the tracker's device); None for none. ``threads``: torch CPU threads
    for every stage; None chooses per stage (:func:`garvideo.devices.stage_threads`:
    one for tracking, every core for GAR).
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
        self.progress = progress
        self.threads = threads
        stage_threads("track", "cpu", threads)  # an unusable count is refused now, not after decoding
        self._detector = detector
        self._detector_revision = detector_revision

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
        gar: str | os.PathLike[str] | None = DEFAULT_MODEL_ID,
        sam2: str | os.PathLike[str] | None = DEFAULT_SAM2_MODEL,
        device: Any = None,
        dtype: Any = None,
        *,
        gar_revision: str | None = None,
        sam2_revision: str | None = None,
        box_mode: str = "reference",
        progress: bool = True,
        detector: str | os.PathLike[str] | None = DEFAULT_DETECTOR,
        detector_revision: str | None = None,
        compile: bool | None = None,
        sam2_compile: bool | None = None,
        threads: int | None = None,
    ) -> Pipeline:
        """Load GAR (``HaochenWang/GAR-1B`` by default) and SAM2 (``facebook/sam2.1-hiera-tiny``).

        Each may be a hub id (downloaded once, then read from the local cache)
        or a local folder. The ``detector`` (Grounding DINO,
        ``IDEA-Research/grounding-dino-tiny`` by default) loads only when a
        text region is given. ``device``/``dtype`` default to CUDA with bfloat16
        where present, else CPU with float32. ``box_mode`` is GAR's RoI box:
        ``reference`` (what the released weights were trained with) or
        ``aligned``. ``compile``: GAR's decode steps compiled (CUDA graphs; default on for CUDA, off
        on a CPU), warmed by the first description and reused for every later one. ``sam2_compile``:
        SAM2's image encoder and memory attention compiled (default off; see ``Sam2Tracker.from_pretrained``).
        ``threads``: torch CPU threads (default: chosen per stage).
        """
        stage_threads("track", "cpu", threads)  # refused before the models load
        model = (
            GAR.from_pretrained(
                gar, device=device, dtype=dtype, revision=gar_revision, box_mode=box_mode, compile=compile
            )
            if gar is not None
            else None
        )
        tracker = (
            Sam2Tracker.from_pretrained(sam2, device=device, dtype=dtype, revision=sam2_revision, compile=sam2_compile)
            if sam2 is not None
            else None
        )
        return cls(
            model, tracker, progress=progress, detector=detector, detector_revision=detector_revision, threads=threads
        )

    # ------------------------------------------------------------------ text regions

    def find(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt],
        *,
        search: TextSearch | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...]]:
        """Turn the text regions among ``regions`` into box prompts, without tracking anything.

        Returns the prompts (text regions replaced by what the detector found,
        the others unchanged) and the found regions (frame, box, score, and the
        ``--box`` that reproduces each). Regions without a moment are searched
        for in ``[start, end)`` (default: the whole video).
        """
        with reading(video) as reader:
            span = _time_range(reader, start, end)
            prompts, found, _ = self._find(reader, regions, search, span)
            return prompts, found

    def _find(
        self, reader: VideoReader, regions: Sequence[RegionPrompt] | None, search: TextSearch | None, span: _Range
    ) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...], StageTimings]:
        regions = list(regions or ())
        for prompt in regions:
            if not isinstance(prompt, RegionPrompt):
                raise InvalidInputError(f"regions must be RegionPrompt objects, got {type(prompt).__name__}")
        if not has_text(regions):
            return regions, (), StageTimings()
        if search is not None and not isinstance(search, TextSearch):
            raise InvalidInputError(f"search must be a TextSearch, got {type(search).__name__}")
        prompts, found, decode_s, detect_s = find_text_regions(
            reader, regions, self.detector, search or TextSearch(), (span.start, span.end), self.progress
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
        search: TextSearch | None = None,
    ) -> TrackingResult:
        """Track the regions through ``[start, end)`` (default: the whole video), both ways from each prompt.

        Text regions are found first (``search``: thresholds, instances; see :meth:`find`).
        """
        with reading(video) as reader:
            span = _time_range(reader, start, end)
            prompts, found, find_timings = self._find(reader, regions, search, span)
            tracks, timings = self._track(reader, prompts, span, stride)
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
        self, reader: VideoReader, regions: Sequence[RegionPrompt], span: _Range, stride: int
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
        source = _TimedSource(reader)
        began = time.perf_counter()
        with torch_threads(stage_threads("track", self.tracker.device, self.threads)):
            tracks = self.tracker.track(source, prompts, start=first, stop=stop, stride=stride, progress=self.progress)
        elapsed = time.perf_counter() - began
        return tracks, StageTimings(decode=source.seconds, track=max(0.0, elapsed - source.seconds))

    def _tracks_for(
        self,
        reader: VideoReader,
        regions: Sequence[RegionPrompt] | None,
        tracks: Sequence[Track] | None,
        span: _Range,
        stride: int,
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
        return self._track(reader, regions, span, stride)

    # ------------------------------------------------------------------ describe

    def describe(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt] | None = None,
        *,
        tracks: Sequence[Track] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        window: float | None = None,
        frames: int = 8,
        frames_per_window: int = 4,
        stride: int = 1,
        tiling: str = "vanilla",
        instruction: str = CAPTION_INSTRUCTION,
        template: VideoPromptTemplate | None = None,
        settings: GenerationSettings | None = None,
        batch_size: int | None = None,
        search: TextSearch | None = None,
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
        :data:`garvideo.windows.MAX_WINDOWS` windows, is refused. ``instruction`` is what GAR is asked for
        every prompt; ``template`` the video prompt wording; at most ``batch_size`` prompts of
        similar length share one generate call (default: chosen per device).
        Text regions are found first (``search``; see :meth:`find`).
        """
        gar = self._require_gar()
        with reading(video) as reader:
            span = _time_range(reader, start, end)
            length = _window_length(reader, span, window, stride)
            bounds = window_bounds(span.start, span.end, length)
            found: tuple[FoundRegion, ...] = ()
            find_timings = StageTimings()
            if tracks is None and regions is not None:
                regions, found, find_timings = self._find(reader, regions, search, span)
            track_list, timings = self._tracks_for(reader, regions, tracks, span, stride)
            timings += find_timings

            # Plan every prompt first so frames and masks are decoded once each.
            # plans[(region, window number)] are its frames; window None is the overall description.
            plans: dict[tuple[str, int | None], list[int]] = {}
            spans: dict[str, tuple[float, float]] = {}
            # A window no tracked frame falls in says nothing about visibility (visible=None), not "not seen".
            without_frames: set[tuple[str, int]] = set()
            for track in track_list:
                tracked_times = np.array([f.time for f in track.frames])
                for number, (a, b) in enumerate(bounds):
                    if not np.any((tracked_times >= a) & (tracked_times < b)):
                        without_frames.add((track.name, number))
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
            decoded, decode_s = _decode(reader, [i for idx in plans.values() for i in idx])
            timings += StageTimings(decode=decode_s)

            by_name = {t.name: t for t in track_list}
            masks = {(name, i): by_name[name].mask_at(i) for (name, _), idx in plans.items() for i in idx}
            work = [(key, idx) for key, idx in plans.items() if idx]
            inputs = [
                gar.prepare_video(
                    [decoded[i].image for i in idx],
                    {name: [masks[name, i] for i in idx]},
                    instruction,
                    times=[decoded[i].time for i in idx],
                    tiling=tiling,
                    template=template,
                )
                for (name, _), idx in work
            ]
            outputs, gar_timings = self._generate(inputs, settings, batch_size)
            timings += gar_timings
            texts = {key: out.text.strip() for (key, _), out in zip(work, outputs)}

            def times_of(idx: list[int]) -> tuple[float, ...]:
                return tuple(decoded[i].time for i in idx)

            timelines = []
            for track in track_list:
                windows = tuple(
                    TimelineWindow(
                        start=a,
                        end=b,
                        visible=None if (track.name, number) in without_frames else bool(plans[track.name, number]),
                        description=texts.get((track.name, number)),
                        frames=tuple(plans[track.name, number]),
                        times=times_of(plans[track.name, number]),
                    )
                    for number, (a, b) in enumerate(bounds)
                )
                overall = plans[track.name, None]
                timelines.append(
                    RegionTimeline(
                        name=track.name,
                        description=texts[track.name, None],
                        windows=windows,
                        visible_span=spans[track.name],
                        frames=tuple(overall),
                        times=times_of(overall),
                    )
                )
            used = sorted({i for idx in plans.values() for i in idx})
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
                "generation": dataclasses.asdict(settings or GenerationSettings()),
                "tracks_given": tracks is not None,
            }
            settings_used = _with_grounding(settings_used, search, found)
            provenance = self._provenance(settings_used, used, reader, timings, uses_gar=True, uses_sam2=tracks is None)
            return DescribeResult(
                video=reader.info,
                regions=tuple(timelines),
                tracks=tuple(track_list),
                provenance=provenance,
                found=found,
            )

    # ------------------------------------------------------------------ ask

    def ask(
        self,
        video: VideoLike,
        regions: Sequence[RegionPrompt] | None = None,
        question: str = "",
        options: Sequence[str] | None = None,
        time_range: tuple[TimeLike, TimeLike] | None = None,
        *,
        tracks: Sequence[Track] | None = None,
        frames: int = 8,
        stride: int = 1,
        tiling: str = "vanilla",
        template: VideoPromptTemplate | None = None,
        settings: GenerationSettings | None = None,
        search: TextSearch | None = None,
    ) -> Answer:
        """Answer a question about named regions; the question names them as ``<name>``.

        Free-form, or multiple choice with ``options`` (the answer's ``letter``
        is parsed, the raw text kept). ``time_range=(start, end)`` restricts
        the frames to that span. Up to five regions per question (GAR's limit):
        the regions the question names, or every given region if it names none.
        ``frames`` frames are spread over the frames where any of them is seen.
        Text regions are found first (``search``; see :meth:`find`): a phrase
        found ``K`` times gives regions ``<car>``, ``<car#2>``, ... the
        question may name.
        """
        gar = self._require_gar()
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError(
                "the question is empty: ask something about the regions, e.g. 'What is <dog> doing?'"
            )
        asked = " ".join([question, *(str(o) for o in options or ())])
        finding = tracks is None and has_text(regions)
        if not finding:  # checked before any work; text regions get their names once found
            given = [t.name for t in tracks] if tracks is not None else _prompt_names(regions or ())
            names = _question_regions(asked, given, gar.max_regions)
        with reading(video) as reader:
            start, end = time_range if time_range is not None else (None, None)
            span = _time_range(reader, start, end)
            found: tuple[FoundRegion, ...] = ()
            find_timings = StageTimings()
            if finding:
                regions, found, find_timings = self._find(reader, regions, search, span)
                names = _question_regions(asked, _prompt_names(regions), gar.max_regions)
            track_list, timings = self._tracks_for(reader, regions, tracks, span, stride, names)
            timings += find_timings
            by_name = {t.name: t for t in track_list}
            ordered = [by_name[name] for name in names]
            seen: set[int] = set()
            for track in ordered:
                visible = {f.index for f in track.frames if f.visible and span.holds_time(f.time)}
                if not visible:
                    raise PipelineError(
                        f"region {track.name!r} is never visible between {span.start:.3f} s and {span.end:.3f} s: "
                        f"ask about another time range or check its prompt"
                    )
                seen |= visible
            chosen = spread(sorted(seen), frames)
            decoded, decode_s = _decode(reader, chosen)
            timings += StageTimings(decode=decode_s)
            masks = {track.name: [_visible_mask(track, i) for i in chosen] for track in ordered}
            with self._gar_threads():
                result = gar.ask_video(
                    [decoded[i].image for i in chosen],
                    masks,
                    question,
                    options=options,
                    times=[decoded[i].time for i in chosen],
                    tiling=tiling,
                    template=template,
                    settings=settings,
                )
            timings += StageTimings(encode=result.timings.encode_s, generate=result.timings.generate_s)
            settings_used = {
                "start": span.start,
                "end": span.end,
                "frames": frames,
                "stride": stride,
                "tiling": tiling,
                "template": _template_dict(template),
                "generation": dataclasses.asdict(settings or GenerationSettings()),
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
                time_range=(span.start, span.end) if time_range is not None else None,
                tracks=tuple(track_list),
                video=reader.info,
                provenance=provenance,
                found=found,
            )

    # ------------------------------------------------------------------ helpers

    def _require_gar(self) -> GAR:
        if self.gar is None:
            raise PipelineError(
                "this pipeline was built without a GAR model (gar=None): load one with Pipeline.from_pretrained(gar=...)"
            )
        return self.gar

    def _gar_threads(self) -> contextlib.AbstractContextManager[None]:
        assert self.gar is not None
        return torch_threads(stage_threads("gar", self.gar.model.device, self.threads))

    def _generate(
        self, inputs: list, settings: GenerationSettings | None, batch_size: int | None
    ) -> tuple[list[GARResult], StageTimings]:
        assert self.gar is not None
        with self._gar_threads():
            results = self.gar.answer(inputs, settings, batch_size=batch_size, progress=self.progress)
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
            gar_ref = ModelRef(info.model_id, info.revision, info.device, info.dtype)
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


def _seconds(value: TimeLike, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_seconds(value)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the {what} time must be seconds or m:ss, got {value!r}") from None
    if not math.isfinite(seconds):
        raise InvalidInputError(f"the {what} time must be a finite number of seconds, got {value!r}")
    return seconds


def _time_range(reader: VideoReader, start: TimeLike, end: TimeLike) -> _Range:
    """Check ``[start, end)`` against the video; both default to its ends."""
    duration = reader.duration
    t0 = _seconds(start, "start")
    t1 = _seconds(end, "end")
    t0 = 0.0 if t0 is None else t0
    if t0 >= duration:
        raise InvalidInputError(
            f"the start time {t0:.3f} s is beyond the end of {reader.path}, which lasts {duration:.3f} s"
        )
    t1 = duration if t1 is None else t1
    if t0 < 0 or t1 <= t0:
        raise InvalidInputError(f"the time range {t0:.3f} s to {t1:.3f} s is empty: the end must come after the start")
    if t0 >= duration or t1 > duration + 1e-6:
        raise InvalidInputError(
            f"the time range {t0:.3f} s to {t1:.3f} s is outside {reader.path}, which lasts {duration:.3f} s"
        )
    first, stop = reader.timeline.index_range(t0, t1)
    return _Range(first=first, stop=stop, start=t0, end=min(t1, duration))


def _window_length(reader: VideoReader, span: _Range, window: float | None, stride: int) -> float:
    """The timeline's window length: ``window`` checked against the video and range, or the adaptive one."""
    spanned = span.end - span.start
    if window is None:
        return adaptive_window_length(spanned)
    interval = reader.duration / max(1, reader.num_frames)
    return check_window_length(window, interval, span=spanned, stride=stride, source=reader.path)


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


def _with_grounding(
    settings: dict[str, Any], search: TextSearch | None, found: Sequence[FoundRegion]
) -> dict[str, Any]:
    """The settings, with how the text regions were found (detector, revision, frame, score, box) when there were any."""
    if not found:
        return settings
    grounding = {
        "detector": found[0].detector.to_dict(),
        **(search or TextSearch()).to_dict(),
        "found": [f.to_dict() for f in found],
    }
    return {**settings, "grounding": grounding}


def _template_dict(template: VideoPromptTemplate | None) -> dict[str, str] | None:
    return dataclasses.asdict(template) if template is not None else None
