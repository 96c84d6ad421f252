"""How benchmarks name the machine they ran on: the GPU's name, or the CPU model, cores and torch threads."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device, threads: int | None = None) -> str:
    """``device``: a torch.device or its name; ``threads``: the torch threads the measured code used."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} on {threads or torch.get_num_threads()} thread(s), "
        f"no GPU"
    )
