"""The training loop: prepare every example once, then optimizer steps over length-grouped micro-batches.

>>> from garvideo.train import TrainConfig, train
>>> summary = train("data/train.jsonl", "runs/shop-v1", TrainConfig(epochs=3), eval_data="data/val.jsonl")
>>> summary.out  # the run folder: the final adapter (``--adapter runs/shop-v1``), checkpoints, metrics.jsonl

A run never loses its work: a checkpoint every ``save_every`` steps and at every epoch's end, and
``resume=True`` continues from the last one with the same data order, optimizer state, learning-rate
schedule and dropout noise (seeded per step), so a killed and resumed run ends with the weights of an
uninterrupted one. Under ``torchrun`` / ``accelerate launch`` every process trains on its share of each
step (:mod:`garvideo.train.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import resolve_checkpoint
from ..devices import resolve_device
from ..errors import InvalidInputError
from ..pipeline import Pipeline
from ..video import decode_ahead
from . import distributed
from .checkpoints import Position, RunFolder
from .config import TrainConfig
from .data import Dataset, DatasetError
from .evaluation import Evaluation, evaluate
from .examples import ExampleBuilder
from .formats import read_dataset
from .schedule import epoch_batches, learning_rate, steps_per_epoch
from .steps import add_lora, batch_loss, computing, enable_gradient_checkpointing, trainable_parameters


@dataclass(frozen=True)
class TrainSummary:
    """What a run did."""

    out: Path  # the run folder, holding the final adapter
    steps: int
    total_steps: int
    examples: int
    first_loss: float | None  # the first logged training loss of this process's run
    last_loss: float | None
    evaluation: Evaluation | None  # the held-out results at the end
    resumed_from: int | None  # the checkpoint's step a resumed run continued from
    rank: int = 0  # this process's rank among the run's (every process returns one; rank 0 reports it)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSummary:
        """The summary :meth:`to_dict` wrote (as Ray Train's workers send it back)."""
        evaluation = Evaluation.from_dict(data["evaluation"]) if data.get("evaluation") else None
        return cls(**{**data, "out": Path(data["out"]), "evaluation": evaluation})

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "steps": self.steps,
            "total_steps": self.total_steps,
            "examples": self.examples,
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
            "evaluation": self.evaluation.to_dict() if self.evaluation else None,
            "resumed_from": self.resumed_from,
            "rank": self.rank,
        }


def train(
    data: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    eval_data: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    data_format: str = "auto",
    root: str | Path | None = None,
) -> TrainSummary:
    """Fine-tune GAR on ``data`` into the run folder ``out`` (see the module's description and README's
    "Fine-tuning"); ``eval_data`` is evaluated during and after training."""
    config = config or TrainConfig()
    dataset = read_dataset(data, data_format, root)
    held_out = read_dataset(eval_data, data_format, root) if eval_data is not None else None
    base = resolve_checkpoint(config.model)
    run = RunFolder(out)
    record = {
        "base": {"model": base.model_id, "revision": base.revision},
        "config": config.to_dict(),
        "data": _data_record(dataset),
        "eval": _data_record(held_out) if held_out is not None else None,
    }
    device = resolve_device(config.device)
    ranks = distributed.start(device)
    if ranks.main:
        run.claim(record, config, resume)
        run.clean()
    distributed.barrier(ranks)
    if not ranks.main:
        run.claim(record, config, resume=True)  # rank 0 made the run: the others check theirs is it
    tracking = any(e.needs_tracking for e in dataset.examples + (held_out.examples if held_out else ()))
    pipeline = Pipeline.from_pretrained(
        config.model,
        config.sam2 if tracking else None,
        device=device,
        dtype=config.dtype,
        compile=False,
        progress=False,
    )
    trainer = Trainer(pipeline, config, run, ranks, progress)
    try:
        return trainer.run(dataset, held_out, resume)
    finally:
        distributed.stop(ranks)


def _data_record(dataset: Dataset) -> dict[str, Any]:
    return {
        "path": str(dataset.source),
        "format": dataset.format,
        "examples": len(dataset),
        "fingerprint": dataset.fingerprint(),
    }


@dataclass(frozen=True)
class StepResult:
    """One optimizer step, over every process."""

    loss: float  # the mean cross-entropy of the answers' tokens
    answer_tokens: int
    tokens: int  # prompt and answer tokens
    grad_norm: float  # before clipping
    lr: float


class Trainer:
    """One process's part of a run (every process of a run makes one)."""

    def __init__(
        self, pipeline: Pipeline, config: TrainConfig, run: RunFolder, ranks: distributed.Ranks, progress: bool
    ) -> None:
        if pipeline.gar is None:
            raise InvalidInputError("training needs GAR: load the pipeline with a model")
        self.pipeline, self.gar = pipeline, pipeline.gar
        self.config, self.run_folder, self.ranks = config, run, ranks
        self.progress = progress and ranks.main
        self.builder = ExampleBuilder(pipeline, config.frames, config.tiling, run.tracks)
        self.peft_model = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.trained: dict[str, torch.nn.Parameter] = {}
        self.lengths: list[tuple[int, int]] = []
        self._writer = None

    # ------------------------------------------------------------------ preparation

    def prepare(self, dataset: Dataset) -> list[tuple[int, int]]:
        """Every example built once (tracked first where needed): its (prompt, answer) token counts; every
        example that cannot be built is one problem of the :class:`DatasetError` raised (on every process)."""
        cache = self.run_folder.prepared
        key = dataset.fingerprint()
        known = _read_json(cache).get(key) if cache.is_file() else None
        if known is not None and len(known) == len(dataset):
            return [tuple(pair) for pair in known]
        mine = range(self.ranks.rank, len(dataset), self.ranks.world)
        found: dict[int, tuple[int, int]] = {}
        problems: dict[int, str] = {}
        for index in _bar(mine, self.progress, f"preparing {dataset.source.name}", "example"):
            example = dataset.examples[index]
            try:
                self.builder.track(example)
                item = self.builder.training_input(example)
                found[index] = (item.prompt_tokens, item.answer_tokens)
            except InvalidInputError as exc:
                problems[index] = f"{example.where}: {exc}"
        found, problems = distributed.gathered_dict(found, self.ranks), distributed.gathered_dict(problems, self.ranks)
        if problems:
            raise DatasetError(str(dataset.source), [problems[i] for i in sorted(problems)], len(dataset))
        lengths = [found[i] for i in range(len(dataset))]
        if self.ranks.main:
            from ..files import atomic_write_json

            atomic_write_json(cache, {**(_read_json(cache) if cache.is_file() else {}), key: lengths}, indent=None)
        distributed.barrier(self.ranks)  # every process then reads the same cache (a held-out set may be this set)
        return lengths

    def setup(self) -> None:
        """The adapter, gradient checkpointing and the optimizer."""
        config = self.config
        self.peft_model = add_lora(self.gar, config)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(self.gar)
        self.trained = trainable_parameters(self.gar.model)
        self.optimizer = torch.optim.AdamW(self.trained.values(), lr=config.lr, weight_decay=config.weight_decay)
        self.gar.model.train()

    # ------------------------------------------------------------------ the run

    def run(self, dataset: Dataset, held_out: Dataset | None, resume: bool) -> TrainSummary:
        self.lengths = self.prepare(dataset)
        if held_out is not None:
            self.prepare(held_out)
        self.pipeline.tracker = None  # every track is made: SAM2's memory goes back
        self.setup()
        position, resumed = Position(), None
        latest = self.run_folder.latest() if resume else None
        if latest is not None:
            position = self.run_folder.load(latest, self.trained, self.optimizer)
            resumed = position.step
        if self.ranks.main:
            self.run_folder.rewind_metrics(position.step)
        per_step = self.ranks.world * self.config.grad_accum
        per_epoch = steps_per_epoch(len(dataset), self.config.batch_size, per_step)
        total = per_epoch * self.config.epochs
        total = min(total, self.config.max_steps) if self.config.max_steps else total
        loop = _Loop(self, dataset, held_out, per_epoch, total, position)
        loop.train()
        evaluation = loop.evaluate()
        if self.ranks.main:
            self.run_folder.publish(self.peft_model)
            if evaluation is not None:
                from ..files import atomic_write_json

                atomic_write_json(self.run_folder.eval_file, evaluation.to_dict())
        distributed.barrier(self.ranks)
        if self._writer is not None:
            self._writer.close()
        summary = TrainSummary(
            out=self.run_folder.path,
            steps=loop.position.step,
            total_steps=total,
            examples=len(dataset),
            first_loss=loop.first_loss,
            last_loss=loop.last_loss,
            evaluation=evaluation,
            resumed_from=resumed,
            rank=self.ranks.rank,
        )
        if self.ranks.main:
            from ..files import atomic_write_json

            atomic_write_json(self.run_folder.summary_file, summary.to_dict())
        distributed.barrier(self.ranks)
        return summary

    def step(self, micro_batches: Sequence[Sequence], indices: Sequence[Sequence[int]], step: int, total: int):
        """One optimizer step over this process's micro-batches (their training inputs, and example indices).

        The loss is the mean over every answer token of the step's micro-batches on every process.
        """
        config, gar = self.config, self.gar
        # Dropout noise from the step's own seed: a resumed run draws what an uninterrupted one drew.
        torch.manual_seed(config.seed * 1_000_003 + step * 7919 + self.ranks.rank)
        answer = sum(self.lengths[i][1] for batch in indices for i in batch)
        seen = sum(sum(self.lengths[i]) for batch in indices for i in batch)
        answer_all, seen_all = distributed.total([answer, seen], self.ranks, gar.model.device)
        loss_sum = 0.0
        for items in micro_batches:
            with computing(gar):
                loss, count = batch_loss(gar, items)
            if count != sum(item.answer_tokens for item in items):
                raise RuntimeError("the answer tokens of a batch differ from those measured when preparing it")
            (loss / answer_all).backward()
            loss_sum += float(loss.detach())
        params = list(self.trained.values())
        distributed.sum_gradients(params, self.ranks)
        norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm or math.inf)
        rate = config.lr * learning_rate(step, total, config.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        (loss_all,) = distributed.total([loss_sum], self.ranks, gar.model.device)
        return StepResult(loss_all / answer_all, int(answer_all), int(seen_all), float(norm), rate)

    def save_checkpoint(self, position: Position) -> None:
        if self.ranks.main:
            self.run_folder.save(self.peft_model, self.trained, self.optimizer, position, self.config.keep)
        distributed.barrier(self.ranks)

    def log(self, entry: dict[str, Any]) -> None:
        """A line in metrics.jsonl and the same scalars in TensorBoard (rank 0 only)."""
        if not self.ranks.main:
            return
        self.run_folder.log(entry)
        writer = self._tensorboard(entry["step"])
        if writer is not None:
            prefix = "eval" if "eval_loss" in entry else "train"
            for name, value in entry.items():
                if name not in ("step", "epoch") and isinstance(value, (int, float)):
                    writer.add_scalar(f"{prefix}/{name.removeprefix('eval_')}", value, entry["step"])
            writer.flush()

    def _tensorboard(self, step: int):
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional: metrics.jsonl has everything
                return None
            # purge_step: a resumed run drops the events logged after its checkpoint.
            self._writer = SummaryWriter(str(self.run_folder.tensorboard), purge_step=step)
        return self._writer


class _Loop:
    """The epochs and steps of one run, from ``position`` on."""

    def __init__(
        self,
        trainer: Trainer,
        dataset: Dataset,
        held_out: Dataset | None,
        per_epoch: int,
        total: int,
        position: Position,
    ) -> None:
        self.trainer, self.dataset, self.held_out = trainer, dataset, held_out
        self.per_epoch, self.total, self.position = per_epoch, total, position
        self.first_loss: float | None = None
        self.last_loss: float | None = None
        self._saved_at: int | None = position.step if position.step else None  # resumed: that checkpoint exists
        self._evaluation: Evaluation | None = None
        self._pending = _Pending()
        self._bar = _bar(None, trainer.progress, "train", "step", total=total, initial=position.step)

    def train(self) -> None:
        config = self.trainer.config
        for epoch in range(self.position.epoch, config.epochs):
            if self.position.step >= self.total:
                break
            self._epoch(epoch)
        self._bar.close()
        self._save()

    def _epoch(self, epoch: int) -> None:
        trainer, config, ranks = self.trainer, self.trainer.config, self.trainer.ranks
        lengths = [sum(pair) for pair in trainer.lengths]
        batches = epoch_batches(lengths, config.batch_size, config.seed, epoch, config.length_group)
        per_step = ranks.world * config.grad_accum
        groups = [batches[k : k + per_step][ranks.rank :: ranks.world] for k in range(0, len(batches), per_step)]
        first = self.position.step_in_epoch if epoch == self.position.epoch else 0
        build = trainer.builder.training_input
        examples = self.dataset.examples
        steps = decode_ahead(
            range(first, len(groups)), 1, lambda s: (s, [[build(examples[i]) for i in batch] for batch in groups[s]])
        )
        try:
            for s, micro_batches in steps:
                if self.position.step >= self.total:
                    return
                self._step(epoch, s, micro_batches, groups[s])
        finally:
            steps.close()
        if self.position.step_in_epoch == len(groups):
            self._save()
            if config.eval_every is None:
                self.evaluate()

    def _step(self, epoch: int, s: int, micro_batches, indices) -> None:
        trainer, config = self.trainer, self.trainer.config
        step = self.position.step
        result = trainer.step(micro_batches, indices, step, self.total)
        self.position = Position(step + 1, epoch, s + 1, self.position.tokens + result.tokens)
        self._pending.add(result)
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{result.loss:.4f}", tok_s=f"{self._pending.rate():.0f}", refresh=False)
        if self.position.step % config.log_every == 0 or self.position.step == self.total:
            entry = self._pending.entry(self.position, self.per_epoch)
            self.first_loss = self.first_loss if self.first_loss is not None else entry["loss"]
            self.last_loss = entry["loss"]
            trainer.log(entry)
        if config.eval_every is not None and self.position.step % config.eval_every == 0:
            self.evaluate()
        if self.position.step % config.save_every == 0:
            self._save()

    def _save(self) -> None:
        if self._saved_at != self.position.step:
            self.trainer.save_checkpoint(self.position)
            self._saved_at = self.position.step

    def evaluate(self) -> Evaluation | None:
        """The held-out results at this step (evaluated once per step, by every process on its share)."""
        trainer = self.trainer
        if self.held_out is None:
            return None
        if self._evaluation is not None and self._evaluation.step == self.position.step:
            return self._evaluation
        examples, batch_size = self.held_out.examples, trainer.config.batch_size
        self._evaluation = evaluate(trainer.builder, examples, self.position.step, batch_size, trainer.ranks)
        trainer.log({**self._evaluation.to_dict(), "epoch": round(self.position.step / self.per_epoch, 4)})
        return self._evaluation


class _Pending:
    """Steps since the last metrics line: their token-weighted loss, speed and last rate."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.answer_tokens, self.tokens = 0.0, 0, 0
        self.last: StepResult | None = None
        self.started = time.perf_counter()

    def add(self, result: StepResult) -> None:
        self.loss_sum += result.loss * result.answer_tokens
        self.answer_tokens += result.answer_tokens
        self.tokens += result.tokens
        self.last = result

    def rate(self) -> float:
        return self.tokens / max(1e-9, time.perf_counter() - self.started)

    def entry(self, position: Position, per_epoch: int) -> dict[str, Any]:
        entry = {
            "step": position.step,
            "epoch": round(position.step / per_epoch, 4),
            "loss": round(self.loss_sum / max(1, self.answer_tokens), 6),
            "lr": self.last.lr if self.last else 0.0,
            "grad_norm": round(self.last.grad_norm, 6) if self.last else 0.0,
            "tokens": position.tokens,
            "tokens_per_s": round(self.rate(), 1),
        }
        self.reset()
        return entry


def _bar(items, show: bool, desc: str, unit: str, **options):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, disable=not show, dynamic_ncols=True, **options)


def _read_json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
