"""Held-out evaluation during and after training: the loss on the answers, and multiple-choice accuracy.

The loss is the training loss (token-weighted mean over the held-out answers, no dropout). Multiple-choice
examples are also answered as ``garvideo ask`` answers them (greedy, the inference prompt) and scored with
garvideo's benchmark tallies (:class:`~garvideo.eval.scoring.ScoreReport`), per kind (image, video).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..eval.scoring import ScoreReport, Tally
from ..model import GenerationSettings
from . import distributed
from .data import TrainExample
from .examples import ExampleBuilder
from .steps import batch_loss, computing

#: New tokens an answer to a multiple-choice question may take (a letter and EOS, with room to spare).
CHOICE_TOKENS = 16


@dataclass(frozen=True)
class Evaluation:
    """The held-out results at one step."""

    step: int
    loss: float
    tokens: int
    accuracy: ScoreReport | None  # over the multiple-choice examples, None when there are none

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """The evaluation :meth:`to_dict` wrote (the loss rounded as written)."""
        score = data.get("eval_score")
        accuracy = None
        if score is not None:
            per_type = {kind: Tally(t["correct"], t["total"]) for kind, t in score["per_type"].items()}
            accuracy = ScoreReport(Tally(score["overall"]["correct"], score["overall"]["total"]), per_type)
        return cls(data["step"], data["eval_loss"], data["eval_tokens"], accuracy)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "eval_loss": round(self.loss, 6), "eval_tokens": self.tokens}
        if self.accuracy is not None:
            out["eval_accuracy"] = self.accuracy.overall.accuracy
            out["eval_score"] = self.accuracy.to_dict()
        return out


def evaluate(
    builder: ExampleBuilder,
    examples: Sequence[TrainExample],
    step: int,
    batch_size: int,
    ranks: distributed.Ranks | None = None,
) -> Evaluation:
    """The held-out loss and multiple-choice accuracy of the model as it is now (dropout off while evaluating).

    With several processes each evaluates its share of the examples and the sums are combined, so every
    process returns the same result (and none waits idle on another's long evaluation)."""
    ranks = ranks or distributed.Ranks()
    gar = builder.pipeline.gar
    assert gar is not None
    mine = examples[ranks.rank :: ranks.world]
    was_training = gar.model.training
    gar.model.eval()
    try:
        loss_sum, tokens = 0.0, 0
        with torch.no_grad(), computing(gar):
            for start in range(0, len(mine), batch_size):
                items = [builder.training_input(e) for e in mine[start : start + batch_size]]
                loss, count = batch_loss(gar, items)
                loss_sum += float(loss)
                tokens += count
        outcomes = _outcomes(builder, [e for e in mine if e.task == "choice"])
    finally:
        gar.model.train(was_training)
    loss_sum, tokens = distributed.total([loss_sum, tokens], ranks, gar.model.device)
    outcomes = distributed.gathered_list(outcomes, ranks)
    accuracy = ScoreReport.from_outcomes(outcomes) if outcomes else None
    return Evaluation(step, loss_sum / max(1, tokens), int(tokens), accuracy)


def _outcomes(builder: ExampleBuilder, examples: Sequence[TrainExample]) -> list[tuple[str, bool]]:
    """(kind, answered right) of multiple-choice examples, answered as ``garvideo ask`` answers."""
    if not examples:
        return []
    gar = builder.pipeline.gar
    prompts = [builder.prompt(example) for example in examples]
    with computing(gar):
        results = gar.answer(prompts, GenerationSettings(max_new_tokens=CHOICE_TOKENS))
    return [(e.kind, r.choice == e.target) for e, r in zip(examples, results)]
