from __future__ import annotations

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.testing.selftest import prepare_selftest


@pytest.fixture(scope="session")
def material(tmp_path_factory):
    """Tiny models, clips and a manifest (two good lines, one corrupt video)."""
    return prepare_selftest(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def run():
    def invoke(*args: str):
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def models(material):
    return ["--model", material.gar, "--sam2", material.sam2, "--max-new-tokens", "3", "-q"]
