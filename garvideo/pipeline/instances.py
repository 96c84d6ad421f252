"""Objects that come into view later: a text region searched for again through the whole range, offline.

With ``TextSearch(new_instances=True)`` (``--new-instances``) a text region without a moment is not only found
once: after its first hit it is looked for again every ``search.every`` seconds, and on each frame searched the
detector's boxes are matched to the phrase's instances as a live session matches them
(:func:`garvideo.grounding.match_detections`): a box on an instance seen there is that instance; one on a lost
instance's last box finds it again, a correction of its track (it keeps its name and id); any other becomes the
next instance, ``car#2``, ``car#3``, ... up to ``max_instances`` in all. Each frame that changed something has
the objects it changed tracked again (each object is SAM2's own session: the others' tracks do not move), so
the later searches see the tracks as they now are.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..grounding import GroundingDetector, distinct, match_detections
from ..tracking import RegionPrompt, Track
from ..video import Span, VideoReader
from .grounding import TextSearch, _frames_to_search, found_region, instance_names
from .results import FoundRegion, ModelRef, StageTimings

Box = tuple[int, int, int, int]


@dataclass
class _Phrase:
    """One text region searched again: its instances' names so far and the frames it looks at."""

    prompt: RegionPrompt
    instances: list[str]
    candidates: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class NewInstances:
    """What searching again gave: every prompt (the found ones added), the tracks (new instances last), every
    found region, and the seconds spent decoding and detecting."""

    prompts: list[RegionPrompt]
    tracks: list[Track]
    found: list[FoundRegion]
    decode_s: float
    detect_s: float


def search_again(
    reader: VideoReader,
    detector: GroundingDetector,
    search: TextSearch,
    span: tuple[float, float],
    regions: Sequence[RegionPrompt],
    prompts: Sequence[RegionPrompt],
    found: Sequence[FoundRegion],
    tracks: Sequence[Track],
    retrack: Callable[[list[RegionPrompt]], list[Track]],
) -> NewInstances:
    """Search the text regions of ``regions`` without a moment again (see the module's doc).

    ``prompts``, ``found`` and ``tracks`` are what the first search and tracking gave; ``retrack(prompts)``
    tracks the objects those prompts mark (all of an object's prompts) and returns their tracks.
    """
    phrases = _phrases(reader, search, span, regions, found)
    prompts_of: dict[str, list[RegionPrompt]] = {}
    for prompt in prompts:
        prompts_of.setdefault(prompt.name, []).append(prompt)
    tracked = {t.name: t for t in tracks}
    found = list(found)
    ref = ModelRef(
        detector.model_id, detector.revision, str(detector.device), str(detector.dtype).removeprefix("torch.")
    )
    decode_s = detect_s = 0.0
    for index in sorted({i for phrase in phrases for i in phrase.candidates}):
        began = time.perf_counter()
        decoded = reader.read([index])
        decode_s += time.perf_counter() - began
        if not decoded:  # undecodable (the reader warned)
            continue
        frame, changed = decoded[0], []
        for phrase in [p for p in phrases if index in p.candidates]:
            began = time.perf_counter()
            result = detector.detect(frame.image, phrase.prompt.text, search.box_threshold, search.text_threshold)
            detect_s += time.perf_counter() - began
            for region in _matched(phrase, result.detections, tracked, index, search, frame.time, reader, ref):
                found.append(region)
                # an object keeps its id when tracked again; a new instance takes the next one
                known = tracked.get(region.name)
                obj_id = known.obj_id if known is not None else max([0, *(t.obj_id for t in tracked.values())]) + 1
                prompts_of.setdefault(region.name, []).append(dataclasses.replace(region.prompt, obj_id=obj_id))
                changed.append(region.name)
                tracked.setdefault(region.name, Track(region.name, obj_id, ()))  # its id is taken from now on
        if changed:
            for track in retrack([p for name in dict.fromkeys(changed) for p in prompts_of[name]]):
                tracked[track.name] = track
    order = list(dict.fromkeys([*(t.name for t in tracks), *tracked]))
    every_prompt = [p for name in order for p in prompts_of.get(name, ())]
    return NewInstances(every_prompt, [tracked[name] for name in order], found, decode_s, detect_s)


def _phrases(
    reader: VideoReader, search: TextSearch, span: tuple[float, float], regions: Sequence[RegionPrompt], found
) -> list[_Phrase]:
    """The text regions to search again, each with its instances and the frames after its first hit."""
    out = []
    for prompt in regions:
        if prompt.kind != "text" or prompt.when is not None:
            continue
        names = instance_names(prompt.name, search.max_instances)
        mine = [f for f in found if f.name in names and f.text == prompt.text]
        first = min(f.frame for f in mine)
        later = [i for i in _frames_to_search(reader, prompt, span, search.every) if i > first]
        out.append(_Phrase(prompt, list(dict.fromkeys(f.name for f in mine)), later))
    return out


def _matched(
    phrase: _Phrase,
    detections,
    tracked: dict[str, Track],
    index: int,
    search: TextSearch,
    seconds: float,
    reader: VideoReader,
    ref: ModelRef,
) -> list[FoundRegion]:
    """The found regions one frame's detections make for ``phrase``: new instances and instances found again."""
    current, lost = {}, {}
    for name in phrase.instances:
        now, last = _boxes_at(tracked[name], index)
        if now is not None:
            current[name] = now
        else:
            lost[name] = last
    free = instance_names(phrase.prompt.name, search.max_instances)[len(phrase.instances) :]
    out = []
    for match in match_detections(distinct(detections, search.max_instances), current, lost, free, search.match_iou):
        if match.how == "new":
            phrase.instances.append(match.region)
        size = (reader.width, reader.height)
        out.append(found_region(phrase.prompt, match.region, index, seconds, match.detection, (index,), size, ref))
    return out


def _boxes_at(track: Track, index: int) -> tuple[Box | None, Box | None]:
    """``(its box on the tracked frame at or before index if seen there, its last box seen up to index)``."""
    position = bisect.bisect_right(track.indices, index) - 1
    if position < 0:
        return None, None
    now = track.frames[position].box
    last = next((f.box for f in reversed(track.frames[: position + 1]) if f.visible), None)
    return now, last


def new_instances(
    reader: VideoReader,
    detector: GroundingDetector,
    search: TextSearch,
    span: Span,
    regions: Sequence[RegionPrompt],
    prompts: Sequence[RegionPrompt],
    found: Sequence[FoundRegion],
    tracks: Sequence[Track],
    retrack: Callable[[list[RegionPrompt]], tuple[list[Track], StageTimings]],
) -> tuple[list[Track], tuple[FoundRegion, ...], StageTimings]:
    """:func:`search_again` as a pipeline call runs it over ``span``: ``retrack`` also returns the time it spent;
    returns the tracks, every found region and the time spent searching and tracking again."""
    spent = StageTimings()

    def timed(marks: list[RegionPrompt]) -> list[Track]:
        nonlocal spent
        made, timings = retrack(marks)
        spent += timings
        return made

    again = search_again(reader, detector, search, (span.start, span.end), regions, prompts, found, tracks, timed)
    return again.tracks, tuple(again.found), spent + StageTimings(decode=again.decode_s, detect=again.detect_s)
