"""Text regions to box prompts: the detector looks at frames of the video until the phrase is found.

A text region on a frame (or a time) is looked for on that frame only. One
without a moment is looked for on frames sampled every :attr:`TextSearch.every`
seconds (1 by default) through the requested range, in order, until some box
passes both thresholds. The ``max_instances`` most confident distinct boxes of
that frame become box prompts named ``car``, ``car#2``, ...; SAM2 then tracks
each exactly as if the user had drawn it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from .. import defaults
from ..devices import stage_threads, torch_threads
from ..errors import InvalidInputError
from ..grounding import Detection, FrameDetections, distinct
from ..grounding.detections import check_threshold
from ..tracking import RegionPrompt
from ..video import Span, VideoReader
from .events import EventListener, StageProgress
from .results import FoundRegion, ModelRef, StageTimings

if TYPE_CHECKING:
    from ..grounding import GroundingDetector


@dataclass(frozen=True)
class TextSearch:
    """How text regions are found.

    ``box_threshold`` / ``text_threshold``: Grounding DINO's usual meanings
    (a box counts when its score is above the first and some word of the
    phrase scores above the second). ``max_instances``: how many of the most
    confident distinct boxes become regions (``car``, ``car#2``, ...).
    ``every``: seconds between the frames searched when a region has no moment. ``new_instances``: once found,
    such a region is searched for on, every ``every`` seconds through the range, and what the detector finds
    there that is not an instance already (its box overlaps none of theirs by ``match_iou``) becomes the next
    instance, while a detection on a lost instance's last box finds it again (a correction of its track): see
    :mod:`garvideo.pipeline.instances`. These are the CLI's ``--box-threshold``, ``--text-threshold``,
    ``--max-instances``, ``--search-every`` and ``--new-instances``, with their defaults; one object carries
    them from the command line, a batch or the web app to the detector, checked once, here.
    """

    box_threshold: float = defaults.BOX_THRESHOLD
    text_threshold: float = defaults.TEXT_THRESHOLD
    max_instances: int = defaults.MAX_INSTANCES
    every: float = defaults.SEARCH_EVERY
    new_instances: bool = defaults.NEW_INSTANCES
    match_iou: float = defaults.MATCH_IOU

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "box_threshold", check_threshold(self.box_threshold, "box threshold"))
        set_(self, "text_threshold", check_threshold(self.text_threshold, "text threshold"))
        if isinstance(self.max_instances, bool) or not isinstance(self.max_instances, numbers.Integral):
            raise InvalidInputError(f"max instances must be a whole number >= 1, got {self.max_instances!r}")
        if self.max_instances < 1:
            raise InvalidInputError(
                f"max instances must be at least 1, got {self.max_instances}: it is how many matches of a phrase "
                f"become regions"
            )
        if self.max_instances > defaults.MAX_INSTANCES_LIMIT:
            raise InvalidInputError(
                f"max instances must be at most {defaults.MAX_INSTANCES_LIMIT}, got {self.max_instances}: it is how "
                f"many matches of a phrase become regions, each tracked on its own"
            )
        set_(self, "max_instances", int(self.max_instances))
        if isinstance(self.every, bool) or not isinstance(self.every, numbers.Real) or not math.isfinite(self.every):
            raise InvalidInputError(f"the search interval must be a number of seconds, got {self.every!r}")
        if self.every <= 0:
            raise InvalidInputError(f"the search interval must be positive, got {self.every} s")
        set_(self, "every", float(self.every))
        if not isinstance(self.new_instances, bool):
            raise InvalidInputError(f"new_instances must be True or False, got {self.new_instances!r}")
        set_(self, "match_iou", check_threshold(self.match_iou, "match IoU"))
        if self.match_iou == 0:
            raise InvalidInputError("the match IoU must be above 0: a detection must overlap a region to be it")

    def to_dict(self) -> dict[str, Any]:
        return {
            "box_threshold": self.box_threshold,
            "text_threshold": self.text_threshold,
            "max_instances": self.max_instances,
            "every": self.every,
            "new_instances": self.new_instances,
            "match_iou": self.match_iou,
        }


def instance_names(name: str, count: int) -> list[str]:
    """``name``, ``name#2``, ... ``name#count``: the regions one phrase may become."""
    return [name] + [f"{name}#{k}" for k in range(2, count + 1)]


def region_names(regions: Sequence[RegionPrompt], max_instances: int = 1) -> list[str]:
    """Every name the regions may go by once text regions are found (``car``, ``car#2``, ... ``car#K``), in order."""
    names: list[str] = []
    for prompt in regions:
        for name in instance_names(prompt.name, max_instances) if prompt.kind == "text" else [prompt.name]:
            if name not in names:
                names.append(name)
    return names


def check_search(search: TextSearch) -> TextSearch:
    """``search=`` as a pipeline call takes it: a :class:`TextSearch` (four loose numbers are the CLI's way)."""
    if not isinstance(search, TextSearch):
        raise InvalidInputError(
            f"search must be a TextSearch, got {type(search).__name__}: e.g. search=TextSearch(box_threshold=0.3)"
        )
    return search


def with_grounding(settings: dict[str, Any], search: TextSearch, found: Sequence[FoundRegion]) -> dict[str, Any]:
    """The settings, with how the text regions were found (detector, revision, frame, score, box) when there were any."""
    if not found:
        return settings
    grounding = {"detector": found[0].detector.to_dict(), **search.to_dict(), "found": [f.to_dict() for f in found]}
    return {**settings, "grounding": grounding}


def check_text_regions(regions: Sequence[RegionPrompt], search: TextSearch) -> None:
    """Refuse names that clash before anything is loaded: a text region's name (and its instances') is its own."""
    others = [p.name for p in regions if p.kind != "text"]
    texts = [p for p in regions if p.kind == "text"]
    seen: dict[str, str] = {}
    for prompt in texts:
        for name in instance_names(prompt.name, search.max_instances):
            owner = seen.get(name)
            if name in others or owner is not None:
                other = f"the text region {owner!r}" if owner is not None else "another region"
                raise InvalidInputError(
                    f"the text region {prompt.name!r} would make a region {name!r}, but {other} has that name: "
                    f"a text region's name must be its own (corrections with --box need their own name too)"
                )
            seen[name] = prompt.name


def find_in_span(
    reader: VideoReader,
    prompts: Sequence[RegionPrompt],
    detector: GroundingDetector,
    search: TextSearch,
    span: Span,
    progress: bool,
    on_event: EventListener | None,
    threads: int | None,
) -> tuple[list[RegionPrompt], tuple[FoundRegion, ...], StageTimings]:
    """:func:`find_text_regions` over ``span`` as a pipeline call runs it: on the detector's threads, its progress
    heard by ``on_event``; returns the prompts, what was found and the time spent decoding and detecting."""
    on_progress = None
    if on_event is not None:
        on_progress = lambda done, total: on_event(StageProgress("find", done, total))  # noqa: E731
    with torch_threads(stage_threads("detect", detector.device, threads)):
        found_prompts, found, decode_s, detect_s = find_text_regions(
            reader, prompts, detector, search, (span.start, span.end), progress, on_progress
        )
    return found_prompts, tuple(found), StageTimings(decode=decode_s, detect=detect_s)


def find_text_regions(
    reader: VideoReader,
    regions: Sequence[RegionPrompt],
    detector: GroundingDetector,
    search: TextSearch,
    span: tuple[float, float],
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[RegionPrompt], list[FoundRegion], float, float]:
    """``regions`` with every text region replaced by the box prompts of what the detector found.

    ``span`` is the ``(start, end)`` in seconds searched for regions without a moment. Returns the prompts,
    the found regions, and the seconds spent decoding and detecting. ``on_progress(done, total)`` hears each
    candidate frame passed. Raises :class:`InvalidInputError` (one line naming the phrase, the frames searched
    and the best score) when a phrase is not found.
    """
    check_text_regions(regions, search)
    texts = [p for p in regions if p.kind == "text"]
    for prompt in texts:
        detector.caption(prompt.text)  # an empty or too long phrase fails before any frame is decoded
    ref = ModelRef(
        detector.model_id, detector.revision, str(detector.device), str(detector.dtype).removeprefix("torch.")
    )
    searches = {id(p): _Search(p, _frames_to_search(reader, p, span, search.every)) for p in texts}
    decode_s, detect_s = _look(reader, detector, search, list(searches.values()), progress, on_progress)
    out: list[RegionPrompt] = []
    found: list[FoundRegion] = []
    for prompt in regions:
        if prompt.kind != "text":
            out.append(prompt)
            continue
        state = searches[id(prompt)]
        if state.hit is None:
            raise InvalidInputError(_not_found(prompt, state.searched, state.best, search, reader, span))
        regions_found = state.found(search.max_instances, (reader.width, reader.height), ref)
        instances = [region.prompt for region in regions_found]
        if prompt.obj_id is not None:  # a chosen object id goes to the first instance; the tracker numbers the others
            instances[0] = dataclasses.replace(instances[0], obj_id=prompt.obj_id)
        found += regions_found
        out += instances
    return out, found, decode_s, detect_s


def _look(
    reader: VideoReader,
    detector: GroundingDetector,
    search: TextSearch,
    searches: Sequence[_Search],
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> tuple[float, float]:
    """Run every phrase's search; the seconds spent decoding and detecting.

    Every phrase looks at its own frames in order and stops at its first hit; a frame several phrases look at
    is decoded once for all of them.
    """
    decode_s = detect_s = 0.0
    frames = sorted({index for state in searches for index in state.candidates})
    bar = tqdm(frames, desc="finding text regions", unit="frame", disable=not progress, leave=False)
    for done, index in enumerate(bar, start=1):
        if on_progress is not None:
            on_progress(done, len(frames))
        pending = [state for state in searches if state.wants(index)]
        if not pending:
            continue
        began = time.perf_counter()
        decoded = reader.read([index])
        decode_s += time.perf_counter() - began
        if not decoded:  # undecodable (the reader warned): look at the next one
            continue
        began = time.perf_counter()
        # the frame is preprocessed once for every phrase still looking for it
        results = detector.detect_many(
            decoded[0].image, [state.prompt.text for state in pending], search.box_threshold, search.text_threshold
        )
        detect_s += time.perf_counter() - began
        for state, result in zip(pending, results):
            state.saw(index, decoded[0].time, result)
        if all(state.hit is not None for state in searches):
            break
    bar.close()
    return decode_s, detect_s


@dataclass
class _Search:
    """One phrase's search: the frames it may look at, those it looked at, its best score and its hit."""

    prompt: RegionPrompt
    candidates: list[int]
    searched: list[int] = field(default_factory=list)
    best: tuple[float, int] | None = None
    hit: tuple[int, float, FrameDetections] | None = None

    def wants(self, index: int) -> bool:
        return self.hit is None and index in self.candidates

    def saw(self, index: int, seconds: float, result: FrameDetections) -> None:
        self.searched.append(index)
        if self.best is None or result.best_score > self.best[0]:
            self.best = (result.best_score, index)
        if result.found:
            self.hit = (index, seconds, result)

    def found(self, max_instances: int, size: tuple[int, int], detector: ModelRef) -> list[FoundRegion]:
        """The hit's ``max_instances`` most confident distinct boxes as regions ``name``, ``name#2``, ..."""
        assert self.hit is not None
        index, seconds, result = self.hit
        names = instance_names(self.prompt.name, max_instances)
        return [
            found_region(self.prompt, name, index, seconds, detection, tuple(self.searched), size, detector)
            for name, detection in zip(names, distinct(result.detections, max_instances))
        ]


def found_region(
    prompt: RegionPrompt,
    name: str,
    index: int,
    seconds: float,
    detection: Detection,
    searched: tuple[int, ...],
    size: tuple[int, int],
    detector: ModelRef,
) -> FoundRegion:
    """What the detector found for the text region ``prompt`` on frame ``index``, as region ``name``."""
    # in the frame (a box may stick out by a little), to 0.01 px: the box tracked is the box recorded
    box = tuple(round(min(max(v, 0.0), side), 2) for v, side in zip(detection.box, size * 2))
    return FoundRegion(
        name=name,
        text=prompt.text,
        frame=index,
        time=seconds,
        box=box,  # type: ignore[arg-type]  # four numbers
        score=detection.score,
        label=detection.label,
        searched=searched,
        detector=detector,
    )


def _frames_to_search(reader: VideoReader, prompt: RegionPrompt, span: tuple[float, float], every: float) -> list[int]:
    if prompt.when is not None:
        index = prompt.resolve(reader.time_to_index).frame
        try:
            return [reader.timeline.check_index(index)]
        except InvalidInputError as exc:
            raise InvalidInputError(f"the text region {prompt.name!r}: {exc}") from exc
    start, end = span
    count = max(1, math.ceil((end - start) / every - 1e-9))
    indices: list[int] = []
    for k in range(count):
        index = reader.time_to_index(start + k * every)
        if index not in indices:
            indices.append(index)
    return indices


def _not_found(
    prompt: RegionPrompt,
    searched: list[int],
    best: tuple[float, int] | None,
    search: TextSearch,
    reader: VideoReader,
    span: tuple[float, float],
) -> str:
    if not searched:
        return f"no frame could be decoded to look for {prompt.text!r} (region {prompt.name!r}) in {reader.path}"
    if len(searched) == 1:
        where = f"frame {searched[0]} ({reader.index_to_time(searched[0]):.2f} s)"
    else:
        shown = ", ".join(str(i) for i in searched[:4]) + (f", ... {searched[-1]}" if len(searched) > 4 else "")
        where = (
            f"{len(searched)} frames ({shown}: one every {search.every:g} s from {span[0]:.2f} s to {span[1]:.2f} s)"
        )
    assert best is not None
    return (
        f"{prompt.text!r} (region {prompt.name!r}) was not found: searched {where}; best score {best[0]:.3f} on frame "
        f"{best[1]}, needed above {search.box_threshold:g} (box threshold) with a word of the phrase above "
        f"{search.text_threshold:g} (text threshold). Lower --box-threshold, reword the phrase, or mark it with --box"
    )
