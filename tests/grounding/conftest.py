"""A tiny random Grounding DINO, a tiny SAM2 and a generated clip, shared by the grounding tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from garvideo.grounding import GroundingDetector
from garvideo.testing.clips import moving_object_clip
from garvideo.testing.grounding_dino import build_tiny_grounding_dino_checkpoint
from garvideo.testing.sam2 import build_tiny_sam2_checkpoint


@pytest.fixture(scope="session")
def grounding_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("grounding-models")
    build_tiny_grounding_dino_checkpoint(folder / "gdino", seed=0)
    build_tiny_sam2_checkpoint(folder / "sam2", seed=0)
    return folder


@pytest.fixture(scope="session")
def detector(grounding_models) -> GroundingDetector:
    return GroundingDetector.from_pretrained(grounding_models / "gdino")


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """Five seconds at 4 fps (frames 0, 4, 8, 12, 16 are the ones searched at one per second), 160x120."""
    return moving_object_clip(tmp_path_factory.mktemp("grounding-clips") / "five.mp4", num_frames=20, fps=4)


@pytest.fixture(scope="session")
def frames(clip):
    from garvideo.video import open_video

    with open_video(clip.path) as reader:
        return {frame.index: frame for frame in reader.read(range(clip.num_frames))}
