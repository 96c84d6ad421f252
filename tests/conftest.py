"""Test-wide settings: everything runs offline, on the CPU, deterministically."""

import os

# Set before anything imports huggingface_hub: tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on small machines: extra torch/OpenMP threads only contend (tiny SAM2 on 25 frames took
# 13.4 s with the default threads, 0.48 s with one). Set before torch is imported; subprocesses inherit it.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Public benchmark data and reference fixtures live in the shared folder beside the checkout
# (override with GARVIDEO_SHARED); they are not part of the repository.
SHARED = Path(os.environ.get("GARVIDEO_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder (benchmark data); tests that need it skip, saying why, where it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"no shared data folder at {SHARED} (set GARVIDEO_SHARED to its path)")
    return SHARED
