"""Tiny models and generated clips shared by the pipeline tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from garvideo.pipeline import Pipeline, Track
from garvideo.testing.clips import moving_object_clip


@pytest.fixture(scope="session")
def models_dir(tiny_models) -> Path:
    return tiny_models


@pytest.fixture(scope="session")
def pipeline(models_dir) -> Pipeline:
    return Pipeline.from_pretrained(models_dir / "gar", models_dir / "sam2", progress=False)


@pytest.fixture(scope="session")
def leaving_clip(tmp_path_factory):
    """A textured object crossing the frame and leaving it half-way; a second object stays."""
    return moving_object_clip(
        tmp_path_factory.mktemp("clips") / "leaving.mp4", num_frames=24, fps=12, leaves=True, second_object=True
    )


def truth_tracks(clip) -> list[Track]:
    """Ground-truth tracks of a generated clip, as a benchmark would provide them."""
    return [
        Track.from_masks(obj.name, {i: obj.masks[i] for i in range(clip.num_frames)}, times=clip.times, obj_id=k + 1)
        for k, obj in enumerate(clip.objects)
    ]


def box_prompt_values(box) -> tuple[float, float, float, float]:
    """A clip's inclusive box as a prompt box (x2, y2 exclusive)."""
    x1, y1, x2, y2 = box
    return (x1, y1, x2 + 1, y2 + 1)


@pytest.fixture(scope="session")
def truth(leaving_clip):
    return truth_tracks(leaving_clip)


def first_visible(obj) -> int:
    return int(np.flatnonzero(obj.visible)[0])
