"""Accuracy tallies shared by the benchmark scorers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tally:
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        """Percentage, rounded to one decimal as the reference scripts print it."""
        return round(self.correct / self.total * 100, 1) if self.total else 0.0

    def to_dict(self) -> dict:
        return {"correct": self.correct, "total": self.total, "accuracy": self.accuracy}


@dataclass(frozen=True)
class ScoreReport:
    overall: Tally
    per_type: dict[str, Tally] = field(default_factory=dict)

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[tuple[str, bool]]) -> ScoreReport:
        """Build from ``(question type, is correct)`` pairs; types keep first-seen order."""
        counts: dict[str, list[int]] = {}
        for kind, correct in outcomes:
            tally = counts.setdefault(kind, [0, 0])
            tally[0] += int(bool(correct))
            tally[1] += 1
        per_type = {kind: Tally(c, t) for kind, (c, t) in counts.items()}
        overall = Tally(sum(t.correct for t in per_type.values()), sum(t.total for t in per_type.values()))
        return cls(overall=overall, per_type=per_type)

    def to_dict(self) -> dict:
        return {
            "overall": self.overall.to_dict(),
            "per_type": {kind: tally.to_dict() for kind, tally in self.per_type.items()},
        }
