"""Fixtures for the tracking tests: a tiny random SAM2 checkpoint, built once per session."""

from __future__ import annotations

import pytest

from garvideo.testing.sam2 import build_tiny_sam2_checkpoint
from garvideo.tracking import Sam2Tracker


@pytest.fixture(scope="session")
def tiny_sam2_path(tmp_path_factory):
    return build_tiny_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "tiny-sam2", seed=0)


@pytest.fixture(scope="session")
def tracker(tiny_sam2_path) -> Sam2Tracker:
    return Sam2Tracker.from_pretrained(tiny_sam2_path, device="cpu")
