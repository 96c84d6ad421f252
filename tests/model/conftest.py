"""Shared material for the GAR model tests: one tiny random checkpoint per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from garvideo.testing.gar import build_tiny_gar_checkpoint

# The reference implementation's outputs on its tiny checkpoint, vendored under tests/fixtures so the
# parity tests run on every clone; $GAR_REF_FIXTURES points them at another set of the same format.
# A missing fixture folder is a failure, never a skip.
REF_FIXTURES_ENV = os.environ.get("GAR_REF_FIXTURES") or None
REF_FIXTURES = (
    Path(REF_FIXTURES_ENV) if REF_FIXTURES_ENV else Path(__file__).resolve().parents[1] / "fixtures" / "gar-tiny-ref"
)
REF_CHECKPOINT = REF_FIXTURES / "checkpoint"

# A non-default geometry (224-pixel tiles: 16x16 patches pooled to 8x8 tokens, up to 6 tiles)
# keeps the tests fast and checks that nothing assumes 448-pixel tiles.
TINY_SIZES = dict(tile_size=224, max_num_tiles=6)


@pytest.fixture(scope="session")
def ref_checkpoint() -> Path:
    """The reference fixtures' checkpoint folder."""
    if not REF_CHECKPOINT.is_dir():
        pytest.fail(f"no checkpoint folder in the reference fixtures at {REF_FIXTURES} (GAR_REF_FIXTURES)")
    return REF_CHECKPOINT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return build_tiny_gar_checkpoint(tmp_path_factory.mktemp("gar") / "tiny", seed=3, **TINY_SIZES)


@pytest.fixture(scope="session")
def gar(tiny_checkpoint):
    from garvideo.model import GAR

    return GAR.from_pretrained(tiny_checkpoint, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def scene():
    """A 200x150 picture with two overlapping rectangles and a disc, and their masks."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(150, 200, 3), dtype=np.uint8)
    a = np.zeros((150, 200), bool)
    a[20:80, 30:110] = True
    b = np.zeros((150, 200), bool)
    b[60:120, 90:170] = True
    yy, xx = np.mgrid[:150, :200]
    c = (yy - 110) ** 2 + (xx - 40) ** 2 < 20**2
    image[a] = (200, 40, 40)
    image[b] = (40, 200, 40)
    image[c] = (40, 40, 200)
    return image, {"red": a, "green": b, "blue": c}
