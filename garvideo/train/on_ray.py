"""Training on a Ray cluster through Ray Train (``garvideo train ... --ray``; ``pip install 'garvideo[ray]'``).

Ray Train starts one worker per GPU (``TorchTrainer``) with the process group set up, and each worker runs
the very training ``torchrun`` would start (:func:`garvideo.train.train`, :mod:`.distributed`): each trains
on its share of every step, the gradients are summed, rank 0 writes the run folder. The run folder, the data
and the models must be at the same paths on every node (a shared file system); ``--resume`` works as
without Ray. The Ray runtime is joined or started as ``garvideo batch --ray`` does it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..batch.ray_runner import RayOptions, ray_runtime
from .config import TrainConfig
from .trainer import TrainSummary, train


def train_on_ray(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    options: RayOptions,
    *,
    eval_data: str | Path | None = None,
    resume: bool = False,
    data_format: str = "auto",
    root: str | Path | None = None,
) -> TrainSummary:
    """:func:`~garvideo.train.train` by Ray Train's workers: ``options.workers`` of them (default: one per GPU of
    the cluster, or one on a cluster without GPUs), ``options.gpus_per_worker`` and ``cpus_per_worker`` each."""
    arguments: dict[str, Any] = {
        "data": str(Path(data).resolve()),
        "out": str(Path(out).resolve()),
        "config": config,
        "eval_data": str(Path(eval_data).resolve()) if eval_data is not None else None,
        "resume": resume,
        "data_format": data_format,
        "root": str(Path(root).resolve()) if root is not None else None,
    }
    with ray_runtime(options.address, options.object_store_mib) as ray:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        gpus = ray.cluster_resources().get("GPU", 0)
        gpus_each = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus >= 1 else 0.0)
        workers = options.workers or (max(1, int(gpus // gpus_each)) if gpus_each else 1)
        resources = {"CPU": options.cpus_per_worker, **({"GPU": gpus_each} if gpus_each else {})}
        trainer = TorchTrainer(
            _worker,
            train_loop_config=arguments,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus_each > 0, resources_per_worker=resources),
            run_config=RunConfig(name=f"garvideo-train-{Path(arguments['out']).name}"),
        )
        trainer.fit()
    return TrainSummary.from_dict(json.loads((Path(arguments["out"]) / "summary.json").read_text(encoding="utf-8")))


def _worker(arguments: dict[str, Any]) -> None:
    """One Ray Train worker: the training of one process (rank 0 writes the run folder and its summary.json)."""
    train(progress=False, **arguments)
