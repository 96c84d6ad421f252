from __future__ import annotations

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app


@pytest.fixture(scope="session")
def material(selftest_material):
    """Tiny models, clips and a manifest (two good lines, one corrupt video)."""
    return selftest_material


@pytest.fixture
def run():
    def invoke(*args: str):
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def models(material):
    return ["--model", material.gar, "--sam2", material.sam2, "--max-new-tokens", "3", "-q"]
