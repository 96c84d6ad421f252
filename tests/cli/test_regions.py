"""The command line's help points at the region schema (the grammar itself: tests/tracking/test_marks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app


@pytest.mark.parametrize("command", ["track", "describe", "ask", "batch"])
def test_help_says_where_the_region_schema_is_documented(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and '"Regions as JSON" in README.md' in " ".join(result.output.split())
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "\n### Regions as JSON\n" in readme
