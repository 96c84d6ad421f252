"""Examples to model inputs, through exactly the prompts inference sends.

An image caption is :meth:`GAR.describe`'s prompt (the processor's reference caption), an image question
:meth:`GAR.ask`'s (:meth:`GAR.prepare_ask`), and a video example the prompt :meth:`Pipeline.describe` (its
overall description) or :meth:`Pipeline.ask` sends, from :meth:`Pipeline.video_prompt`: the same frames
planned from the same tracks, the same template, the reference's quirks included (the doubled BOS, the
RoI box mode). The answer follows the prompt as the chat template ends an assistant turn (the text, then
``<|eot_id|>``), and only its tokens carry a loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InvalidInputError
from ..model import GARInputs, NamedPrompt, prompt_token
from ..names import resolve_references
from ..pipeline import Pipeline, Track
from ..tracking import load_tracks, save_tracks
from ..video import open_video
from .data import TrainExample
from .formats import annotation_with_rle

#: The label of a position without a loss (the prompt, and padding): cross-entropy's ignore index.
IGNORE = -100


@dataclass(frozen=True)
class TrainingInput:
    """One example as the model trains on it: the inference prompt with the answer's tokens after it."""

    inputs: GARInputs  # the prompt's inputs, input_ids extended by the answer's ids
    labels: torch.Tensor  # int64 like input_ids: IGNORE over the prompt, the answer's ids (EOS included) after it
    prompt: NamedPrompt  # the prompt alone, as inference sends it (for generating on held-out data)

    @property
    def prompt_tokens(self) -> int:
        return self.prompt.inputs.num_tokens

    @property
    def answer_tokens(self) -> int:
        return self.inputs.num_tokens - self.prompt_tokens


def answer_ids(processor, text: str) -> list[int]:
    """The assistant turn's tokens after the prompt: the text (trimmed, as the chat template trims it), then EOS."""
    ids = processor.tokenizer(text.strip(), add_special_tokens=False)["input_ids"]
    return [int(t) for t in ids] + [int(processor.eos_token_id)]


def with_answer(processor, prompt: NamedPrompt, target: str, names_regions: bool = False) -> TrainingInput:
    """The prompt followed by ``target``. ``names_regions``: the target is a free answer, whose ``<name>`` become
    the regions' ``<Promptk>`` (inference writes them back as names); captions and option letters are as given."""
    if names_regions:
        indices = prompt.inputs.prompt_indices
        target, _ = resolve_references(target, list(prompt.names), lambda i: prompt_token(indices[i]))
    answer = torch.tensor(answer_ids(processor, target), dtype=torch.int64)
    ids = torch.cat([prompt.inputs.input_ids, answer])
    labels = torch.full_like(ids, IGNORE)
    labels[prompt.inputs.num_tokens :] = answer
    return TrainingInput(dataclasses.replace(prompt.inputs, input_ids=ids), labels, prompt)


class ExampleBuilder:
    """Builds every example's inference prompt and training input with one pipeline (GAR; SAM2 when tracking).

    ``tracks_dir``: where the tracks of examples that need tracking are kept once made (a run's
    ``tracks/``), so they are tracked once per run, not once per epoch.
    """

    def __init__(self, pipeline: Pipeline, frames: int, tiling: str, tracks_dir: Path | None = None) -> None:
        self.pipeline = pipeline
        self.frames = frames
        self.tiling = tiling
        self.tracks_dir = tracks_dir

    @property
    def processor(self):
        assert self.pipeline.gar is not None
        return self.pipeline.gar.processor

    def prompt(self, example: TrainExample) -> NamedPrompt:
        """The prompt inference sends for this example."""
        gar = self.pipeline.gar
        if gar is None:
            raise InvalidInputError("training needs GAR: the pipeline was built without it")
        if example.kind == "image":
            masks = {p.name: p.mask for p in example.prompts()}
            if example.question is None:
                (name,) = masks
                return NamedPrompt(gar.processor.prepare_caption(example.media, masks[name]), (name,))
            return gar.prepare_ask(example.media, masks, example.question, example.options)
        with self._open(example) as reader:
            made = self.pipeline.video_prompt(
                reader,
                self.tracks(example, reader),
                example.question,
                options=example.options,
                frames=self.frames,
                tiling=self.tiling,
            )
            return made.prompt

    def training_input(self, example: TrainExample) -> TrainingInput:
        return with_answer(self.processor, self.prompt(example), example.target, example.task == "question")

    def _open(self, example: TrainExample):
        return open_video(example.media, fps=example.fps if example.media.is_dir() else None)

    def tracks(self, example: TrainExample, reader) -> list[Track]:
        """The example's tracks: its file, its per-frame masks, or SAM2's (kept in ``tracks_dir``)."""
        if example.tracks_file is not None:
            return load_tracks(example.tracks_file)
        if example.annotation is not None:
            from ..eval.run_videorefer import annotation_tracks

            converted = [annotation_with_rle(a, reader.height, reader.width) for a in example.annotation]
            return annotation_tracks(example.names, converted, reader)
        cached = self.tracks_dir / f"{example.key()}.json" if self.tracks_dir is not None else None
        if cached is not None and cached.is_file():
            return load_tracks(cached)
        tracks = list(self.pipeline.tracks_for(reader, example.prompts(), progress=False).tracks)
        if cached is not None:
            save_tracks(cached, tracks, {"example": example.where})
        return tracks

    def track(self, example: TrainExample) -> None:
        """Track a video example now (once: its tracks are kept), so the epochs only read them."""
        if example.needs_tracking:
            with self._open(example) as reader:
                self.tracks(example, reader)
