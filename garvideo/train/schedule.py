"""The order of the data and the learning rate, as pure functions of the run's settings: a resumed run recomputes
exactly the order and rates of an uninterrupted one."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group: int) -> list[list[int]]:
    """Example indices in micro-batches of similar length, for one epoch.

    The examples are shuffled (by ``seed`` and ``epoch``), cut into windows of ``group`` batches, sorted by
    length within each window and cut into batches, so a batch wastes little on padding while the order
    still changes every epoch. The batches are shuffled too, except that the one with the longest example
    comes first: a batch too large for the memory fails at once, not hours in.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    window = batch_size * group
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    shuffled = [batches[k] for k in rng.permutation(len(batches)).tolist()]
    longest = max(range(len(shuffled)), key=lambda k: max(lengths[i] for i in shuffled[k]))
    return [shuffled[longest]] + shuffled[:longest] + shuffled[longest + 1 :]


def steps_per_epoch(examples: int, batch_size: int, micro_batches_per_step: int) -> int:
    """Optimizer steps in one epoch: every micro-batch once, ``micro_batches_per_step`` of them (over every
    process and accumulation) per step; the last step of an epoch may take fewer."""
    return math.ceil(math.ceil(examples / batch_size) / micro_batches_per_step)


def learning_rate(step: int, total: int, warmup: float) -> float:
    """The factor of the peak learning rate at optimizer step ``step`` (0-based) of ``total``: a linear warm-up over
    the first ``warmup`` share of the steps, then a cosine decay to zero."""
    warm = math.ceil(total * warmup)
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
