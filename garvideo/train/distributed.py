"""Several processes, one per GPU, as ``torchrun`` / ``accelerate launch`` (or Ray Train, :mod:`.on_ray`) start them.

Every process holds the whole model and trains on its share of each step's micro-batches; after the
backward passes the trained weights' gradients are summed over the processes (one all-reduce per step),
each already divided by the step's token count over all processes. So every process applies the same
update, and N processes compute what one process would with the same global batch. Only rank 0 writes
(checkpoints, metrics, the adapter). Without a launcher there is one process and nothing to reduce.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among those of the run."""

    rank: int = 0
    world: int = 1
    owned: bool = False  # this run set the process group up (a launcher's own, e.g. Ray Train's, is left to it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def start(device: torch.device) -> Ranks:
    """Join the launcher's process group (``WORLD_SIZE`` > 1 in the environment, or one set up already)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Ranks()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    return Ranks(dist.get_rank(), dist.get_world_size(), owned=True)


def stop(ranks: Ranks) -> None:
    if ranks.owned and dist.is_initialized():
        dist.destroy_process_group()


def total(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """``values`` summed over the processes (as they are with one)."""
    if ranks.world == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gathered_list(mine: list, ranks: Ranks) -> list:
    """Every process's list, concatenated in rank order."""
    if ranks.world == 1:
        return mine
    parts: list[list] = [[] for _ in range(ranks.world)]
    dist.all_gather_object(parts, mine)
    return [item for part in parts for item in part]


def gathered_dict(mine: dict, ranks: Ranks) -> dict:
    """The union of every process's dictionary."""
    if ranks.world == 1:
        return mine
    parts: list[dict] = [{} for _ in range(ranks.world)]
    dist.all_gather_object(parts, mine)
    return {k: v for part in parts for k, v in part.items()}


def sum_gradients(params: list[torch.nn.Parameter], ranks: Ranks) -> None:
    """Every trained weight's gradient summed over the processes, in one flat all-reduce."""
    if ranks.world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    at = 0
    for param, grad in zip(params, grads):
        size = grad.numel()
        param.grad = flat[at : at + size].view_as(grad).clone()
        at += size


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        dist.barrier()
