"""What every benchmark shares: naming the machine it ran on, and writing its section of bench/RESULTS.md.

The machine is the GPU's name, or the CPU model, cores and torch threads.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

#: Where every benchmark writes its numbers, one ``## section`` each.
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


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


def write_section(section: str, text: str, *, block: str | None = None, results: Path = RESULTS) -> None:
    """Replace (or append) ``section`` (a ``## `` heading line) of ``results`` with ``text``.

    With ``block`` (a ``### `` heading line) only that block inside the section
    is replaced (or appended), the section's other blocks stay. Every other
    section stays as it is.
    """
    current = results.read_text() if results.exists() else "# Benchmark results\n"
    body = text.strip()
    if block is not None:
        found = _heading_pattern(section).search(current)
        inside = found.group(0)[len(section) + 1 :] if found else ""
        body = _replaced(inside, block, body).strip()
    results.write_text(_replaced(current, section, body).rstrip() + "\n")


def _heading_pattern(heading: str) -> re.Pattern[str]:
    """A heading line and everything up to the next heading of its level or above (or the end)."""
    level = len(heading) - len(heading.lstrip("#"))
    return re.compile(rf"^{re.escape(heading)}\n.*?(?=^#{{1,{level}}} |\Z)", re.DOTALL | re.MULTILINE)


def _replaced(document: str, heading: str, body: str) -> str:
    new = f"{heading}\n\n{body}\n\n"
    pattern = _heading_pattern(heading)
    if pattern.search(document):
        return pattern.sub(lambda _: new, document, count=1)
    return (document.rstrip() + "\n\n" if document.strip() else "") + new
