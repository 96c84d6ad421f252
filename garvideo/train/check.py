"""``garvideo train --check``: a dataset validated without training, with its counts, lengths and token statistics.

Every example is read and checked as training reads it; every example whose masks are known (images,
videos with tracks or per-frame masks) is also built into its training input through the inference
prompt, exactly as training's first pass builds it, so its prompt and answer are counted in tokens. A
video example whose regions SAM2 would track is checked against its video (it opens, its marks fall on
its frames), not tracked: its prompt is counted once training has tracked it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from ..video import open_video
from .data import Dataset, DatasetError, TrainExample
from .examples import ExampleBuilder, answer_ids


@dataclass(frozen=True)
class Stats:
    """Summary of a list of numbers."""

    count: int
    min: int
    median: float
    mean: float
    max: int
    total: int

    @classmethod
    def of(cls, values: Sequence[int]) -> Stats | None:
        if not values:
            return None
        return cls(
            len(values), min(values), statistics.median(values), statistics.fmean(values), max(values), sum(values)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min,
            "median": self.median,
            "mean": round(self.mean, 1),
            "max": self.max,
            "total": self.total,
        }


@dataclass(frozen=True)
class DatasetReport:
    """What ``--check`` found."""

    source: str
    format: str
    examples: int
    kinds: dict[str, int]  # image, video
    tasks: dict[str, int]  # caption, question, choice
    regions: Stats | None  # regions per example
    answer_words: Stats | None
    answer_tokens: Stats | None  # the answer's tokens, EOS included: what carries the loss
    prompt_tokens: Stats | None  # for the examples whose prompts were built
    untracked: int  # video examples whose prompts need SAM2's tracks first

    def to_dict(self) -> dict[str, Any]:
        def stats(value: Stats | None) -> dict[str, Any] | None:
            return value.to_dict() if value is not None else None

        return {
            "source": self.source,
            "format": self.format,
            "examples": self.examples,
            "kinds": self.kinds,
            "tasks": self.tasks,
            "regions_per_example": stats(self.regions),
            "answer_words": stats(self.answer_words),
            "answer_tokens": stats(self.answer_tokens),
            "prompt_tokens": stats(self.prompt_tokens),
            "prompts_after_tracking": self.untracked,
        }

    def describe(self) -> str:
        """The report as lines of text."""
        lines = [
            f"{self.source} ({self.format}): {self.examples} examples, all usable",
            "  "
            + ", ".join(f"{n} {k}" for k, n in self.kinds.items())
            + "; "
            + ", ".join(f"{n} {k}" for k, n in self.tasks.items()),
        ]
        for label, value in (
            ("regions per example", self.regions),
            ("answer words", self.answer_words),
            ("answer tokens", self.answer_tokens),
            ("prompt tokens", self.prompt_tokens),
        ):
            if value is not None:
                lines.append(
                    f"  {label}: min {value.min}, median {value.median:g}, mean {value.mean:.1f}, max {value.max}"
                    f" (total {value.total}, over {value.count})"
                )
        if self.untracked:
            lines.append(f"  {self.untracked} video examples are tracked by SAM2 when training starts (not counted)")
        return "\n".join(lines)


def check_dataset(dataset: Dataset, builder: ExampleBuilder, progress: bool = False) -> DatasetReport:
    """Check every example of ``dataset`` (see the module's description); a :class:`DatasetError` lists every
    example that cannot be used, one problem each."""
    from tqdm.auto import tqdm

    prompts, answers, problems = [], [], []
    for example in tqdm(dataset.examples, desc="checking", unit="example", disable=not progress):
        try:
            if example.needs_tracking:
                _check_marks(example)
                answers.append(len(answer_ids(builder.processor, example.target)))
            else:
                item = builder.training_input(example)
                prompts.append(item.prompt_tokens)
                answers.append(item.answer_tokens)
        except InvalidInputError as exc:
            problems.append(f"{example.where}: {exc}")
    if problems:
        raise DatasetError(str(dataset.source), problems, len(dataset))
    examples = dataset.examples
    return DatasetReport(
        source=str(dataset.source),
        format=dataset.format,
        examples=len(examples),
        kinds=dict(Counter(e.kind for e in examples)),
        tasks=dict(Counter(e.task for e in examples)),
        regions=Stats.of([len(e.names) for e in examples]),
        answer_words=Stats.of([len(e.target.split()) for e in examples]),
        answer_tokens=Stats.of(answers),
        prompt_tokens=Stats.of(prompts),
        untracked=sum(e.needs_tracking for e in examples),
    )


def _check_marks(example: TrainExample) -> None:
    """A video example's marks fall on its video's frames and inside them (what SAM2 will be given)."""
    import warnings

    with open_video(example.media, fps=example.fps if example.media.is_dir() else None) as reader:
        for prompt in example.prompts():
            if prompt.kind == "text":
                continue  # the detector finds it, as describe's does
            frame = prompt.resolve(reader.time_to_index).frame
            if frame is None or not 0 <= frame < reader.num_frames:
                raise InvalidInputError(
                    f"region {prompt.name!r} is marked on frame {frame}, but the video has {reader.num_frames}"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a box reaching outside is clipped when tracked, as describe does
                prompt.fit_to_frame(reader.width, reader.height)
