"""Every user mistake on the command line is one line `garvideo: error: ...` with exit code 2 (issue 15)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app


def one_error_line(result) -> str:
    """The single stderr line of a refused command (and nothing else printed)."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("garvideo: error: "), result.output
    assert "Usage:" not in result.output and "Traceback" not in result.output
    return lines[0]


USAGE_MISTAKES = [
    (["ask", "{clip}", "Is <thing> red?", "--box", "{box}", "--option", "only"], "at least two --option"),
    (["describe", "{clip}", "--box", "{box}", "--tracks", "t.json"], "not both"),
    (["describe", "{clip}", "--box", "{box}", "--window", "0"], "--window"),
    (["describe", "{clip}", "--box", "{box}", "--frames", "0"], "--frames"),
    (["describe", "{clip}"], "mark at least one region"),
    (["track", "{clip}", "--out", "t.json"], "mark at least one region"),
    (["describe"], "VIDEO"),
    (["describe", "{clip}", "--boxx", "{box}"], "--boxx"),
    (["describe", "{clip}", "--tiling", "huge"], "--tiling"),
    (["describe", "{clip}", "--box"], "--box"),
    (["no-such-command"], "no-such-command"),
    (["--no-such-option"], "--no-such-option"),
    (["batch", "{folder}", "--regions", "{manifest}", "--out", "o", "--stride", "x"], "--stride"),
]


@pytest.mark.parametrize("args, needle", USAGE_MISTAKES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in USAGE_MISTAKES])
def test_usage_errors_are_one_line_with_exit_code_2(args, needle, material, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filled = [
        a.format(clip=material.clip, box=material.box, folder=material.folder, manifest=material.manifest) for a in args
    ]
    line = one_error_line(CliRunner().invoke(app, filled))
    assert needle in line


def test_help_is_unchanged():
    for args in (["--help"], ["describe", "--help"], ["batch", "-h"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: ")
        assert "garvideo: error" not in result.output
    bare = CliRunner().invoke(app, [])  # no command: the overview, as click shows it
    assert "Usage: " in bare.output and "Commands:" in bare.output
