"""Fixtures for the tracking tests: a tiny random SAM2 checkpoint, built once per session."""

from __future__ import annotations

import pytest
import torch

from garvideo.testing.sam2 import build_tiny_sam2_checkpoint
from garvideo.tracking import Sam2Tracker


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The tiny model's matrices are small: with several threads on a busy 2-core
    # machine torch spends its time waiting on thread barriers (20-50x slower).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sam2_path(tmp_path_factory):
    return build_tiny_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "tiny-sam2", seed=0)


@pytest.fixture(scope="session")
def tracker(tiny_sam2_path) -> Sam2Tracker:
    return Sam2Tracker.from_pretrained(tiny_sam2_path, device="cpu")
