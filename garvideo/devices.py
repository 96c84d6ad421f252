"""Choice of torch device and dtype: CUDA with bfloat16 where present, else CPU float32."""

from __future__ import annotations

import os
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
