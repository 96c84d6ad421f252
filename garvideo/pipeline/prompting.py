"""What GAR is asked in one pipeline call: how its prompts are worded and decoded, and a question's regions.

:class:`Prompting` holds the settings every prompt of a call shares (tiling, wording, decoding, and for a
description its instruction and batch size) and records them in the provenance; :class:`Question` is a
question with its options, checked once, that knows which regions it is about and makes the
:class:`~garvideo.pipeline.Answer`. :func:`region_prompt` and :func:`question_arguments` build the prompts
``describe`` and ``ask`` send from frames and tracks (a live session's and training's too), and
:class:`VideoPrompt` is such a prompt with the frames it shows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..model import GAR, GARResult, GenerationSettings, NamedPrompt, VideoPromptTemplate
from ..model.errors import TooManyRegionsError
from ..names import check_question, resolve_references
from ..tracking import FrameLike, Track
from ..video import Frame, Span, VideoInfo, VideoReader
from .errors import PipelineError
from .planning import plan_answer, plan_description
from .regions import RegionTracks, only
from .results import Answer, Provenance


@dataclass(frozen=True)
class Prompting:
    """How GAR is prompted in one call. ``instruction`` and ``batch_size`` are a description's (None: an answer)."""

    tiling: str
    template: VideoPromptTemplate | None
    generation: GenerationSettings
    instruction: str | None = None
    batch_size: int | None = None

    def settings(self) -> dict[str, Any]:
        """As provenance records them."""
        settings = {
            "tiling": self.tiling,
            "instruction": self.instruction,
            "template": dataclasses.asdict(self.template) if self.template is not None else None,
            "batch_size": self.batch_size,
            "generation": dataclasses.asdict(self.generation),
        }
        if self.instruction is None:  # an answer: one prompt, the question its own instruction
            del settings["instruction"], settings["batch_size"]
        return settings


def generation_settings(max_new_tokens: int, generation: GenerationSettings | None) -> GenerationSettings:
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
class Question:
    """A question about named regions (``<name>``), with its multiple-choice ``options`` if any; ``limit``: the
    most regions one GAR prompt holds."""

    text: str
    options: tuple[str, ...] | None
    limit: int

    @classmethod
    def of(cls, question: str, options: Sequence[str] | None, limit: int) -> Question:
        check_question(question, options)  # empty, or more options than letters: before any work
        return cls(question, tuple(str(o) for o in options) if options is not None else None, limit)

    def regions_among(self, given: Sequence[str]) -> list[str]:
        """The regions it is about among ``given``, in their order: those it (or an option) names, or all of them.

        Naming a region not given, or more than ``limit``, is refused."""
        if not given:
            raise InvalidInputError("no regions were given: a question is about one to five named regions")
        _, named = resolve_references(" ".join([self.text, *(self.options or ())]), given)
        names = [n for n in given if n in named] or list(given)
        if len(names) > self.limit:
            raise TooManyRegionsError(
                f"the question is about {len(names)} regions ({', '.join(names)}) but GAR takes at most {self.limit} "
                f"in one prompt: ask about at most {self.limit} at a time"
            )
        return names

    def answer(
        self,
        result: GARResult,
        got: RegionTracks,
        video: VideoInfo,
        provenance: Provenance,
        time_range: tuple[float, float] | None,
    ) -> Answer:
        """GAR's answer to it about the tracks ``got`` (every one of them a region it is about)."""
        return Answer(
            question=self.text.strip(),
            regions=tuple(t.name for t in got.tracks),
            text=result.text.strip(),
            options=self.options,
            letter=result.choice,
            time_range=time_range,
            tracks=got.tracks,
            video=video,
            provenance=provenance,
            found=got.found,
        )


def visible_masks(tracks: Sequence[Track], frames: Sequence[int]) -> dict[str, list[np.ndarray | None]]:
    """Each region's mask on each frame, None where it is not seen (or not tracked)."""

    def mask(track: Track, index: int) -> np.ndarray | None:
        try:
            entry = track.frame(index)
        except InvalidInputError:
            return None  # not tracked on this frame: not seen there
        return entry.mask() if entry.visible else None

    return {track.name: [mask(track, i) for i in frames] for track in tracks}


@dataclass(frozen=True)
class VideoPrompt:
    """A prompt as :meth:`Pipeline.describe` or :meth:`Pipeline.ask` sends it: the prepared prompt, and the frames
    (indices and times) it shows."""

    prompt: NamedPrompt
    frames: tuple[int, ...]
    times: tuple[float, ...]


def region_prompt(
    gar: GAR, decoded: Mapping[int, FrameLike], track: Track, frames: Sequence[int], prompting: Prompting
) -> NamedPrompt:
    """One region's description prompt over ``frames`` (describe's overall and window prompts)."""
    return gar.prepare_video(
        [decoded[i].image for i in frames],
        {track.name: [track.mask_at(i) for i in frames]},
        prompting.instruction,
        times=[decoded[i].time for i in frames],
        tiling=prompting.tiling,
        template=prompting.template,
    )


def question_arguments(
    decoded: Mapping[int, FrameLike],
    tracks: Sequence[Track],
    chosen: Sequence[int],
    asked: Question,
    prompting: Prompting,
) -> tuple[list, dict[str, list], dict[str, Any]]:
    """ask's prompt for GAR (``ask_video``, ``prepare_video``): the ``chosen`` frames, each region's mask where it
    is seen, and the question with its options, times and wording."""
    asking = {
        "question": asked.text,
        "options": asked.options,
        "times": [decoded[i].time for i in chosen],
        "tiling": prompting.tiling,
        "template": prompting.template,
    }
    return [decoded[i].image for i in chosen], visible_masks(tracks, chosen), asking


def read_frames(reader: VideoReader, indices: Sequence[int]) -> tuple[dict[int, Frame], float]:
    """The frames ``indices`` of the video (each once), and the seconds spent decoding; one that cannot be decoded
    is an error, never replaced by another."""
    began = time.perf_counter()
    frames = reader.read(sorted(set(indices)))
    decoded = {f.index: f for f in frames}
    missing = sorted(set(indices) - set(decoded))
    if missing:
        raise PipelineError(f"frames {missing[:5]} of {reader.path} could not be decoded (is the file damaged?)")
    return decoded, time.perf_counter() - began


def video_prompt(
    gar: GAR,
    reader: VideoReader,
    span: Span,
    tracks: Sequence[Track],
    question: str | None,
    options: Sequence[str] | None,
    frames: int,
    prompting: Prompting,
) -> VideoPrompt:
    """The prompt ``describe`` (``question`` None: the overall description of the one track) or ``ask`` sends for
    these (checked) tracks over ``span``: frames planned, read and prompted by the code those calls run."""
    if question is None:
        if len(tracks) != 1:
            raise InvalidInputError(f"a description is of one region, {len(tracks)} tracks were given")
        (track,) = tracks
        chosen = list(plan_description(tracks, span, (), frames, 1).frames[track.name, None])
        decoded, _ = read_frames(reader, chosen)
        prompt = region_prompt(gar, decoded, track, chosen, prompting)
    else:
        asked = Question.of(question, options, gar.max_regions)
        kept = only(tracks, asked.regions_among([t.name for t in tracks]))
        chosen = plan_answer(kept, span, frames)
        decoded, _ = read_frames(reader, chosen)
        images, masks, asking = question_arguments(decoded, kept, chosen, asked, prompting)
        prompt = gar.prepare_video(images, masks, **asking)
    return VideoPrompt(prompt, tuple(chosen), tuple(decoded[i].time for i in chosen))
