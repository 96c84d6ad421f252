"""Choice of torch device and dtype: CUDA with bfloat16 where present, else CPU float32."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import InvalidInputError

if TYPE_CHECKING:
    import torch

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when available (the local rank's GPU under torchrun/SLURM), else CPU.

    Anything else is checked: asking for CUDA where there is none is an error, not a silent CPU run.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # One worker per GPU under torchrun or a SLURM job step: each takes its local GPU.
        local = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID")
        if local is not None and local.isdigit() and int(local) < torch.cuda.device_count():
            return torch.device(f"cuda:{int(local)}")
        return torch.device("cuda")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for, but CUDA is not available here: use --device cpu")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` or ``"auto"`` gives bfloat16 on CUDA and float32 elsewhere."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise InvalidInputError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return getattr(torch, name)


#: The pipeline's stages that run torch on the CPU side, for :func:`stage_threads`.
STAGES = ("track", "gar", "detect")


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


#: ``threads`` allowed per core: enough to try oversubscription, far below what exhausts the system's threads.
THREADS_PER_CORE = 8


def max_threads() -> int:
    """The most torch CPU threads a caller may ask for here."""
    return THREADS_PER_CORE * cpu_cores()


def stage_threads(stage: str, device: torch.device | str, threads: int | None = None) -> int | None:
    """Torch CPU threads for one pipeline stage, or None to leave torch's setting alone.

    ``threads`` (``--threads``) wins. Otherwise, on the CPU: SAM2 tracking
    runs on one thread, since its steps are many small operations whose
    OpenMP threads spin while they wait: with one other busy process tracking
    took 2.4x as long on two threads as on one, 33-61x when other work held
    both cores (bench/RESULTS.md, "Threads"). GAR (its prefill is a few large matrix products) and the
    text-region detector (Grounding DINO: large matrix products over every image token; bench/RESULTS.md,
    "Text regions") get every core. An
    ``OMP_NUM_THREADS`` set in the environment is the user's choice and is
    kept. Off the CPU the torch threads only feed the GPU: left alone.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {STAGES}")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidInputError(f"threads must be a whole number of at least 1, got {threads!r}")
        if threads > max_threads():
            raise InvalidInputError(
                f"threads must be at most {max_threads()} ({THREADS_PER_CORE} per CPU core this process may use; "
                f"more only contend, and the system may refuse to start them), got {threads}"
            )
        return threads
    if str(getattr(device, "type", device)).split(":")[0] != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    return 1 if stage == "track" else cpu_cores()


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (None: unchanged), then restore the previous count."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != before:
            torch.set_num_threads(before)
