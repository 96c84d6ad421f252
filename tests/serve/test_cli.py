"""`garvideo serve` on the command line: its help, and mistakes refused in one line before any model loads."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.serve.store import JobStore


def run(*args: str):
    return CliRunner().invoke(app, ["serve", *args], catch_exceptions=False)


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("garvideo: error:")]
    return line


def test_help_names_every_route_and_option():
    text = run("--help").output
    for word in ("/v1/jobs", "/v1/chat/completions", "/metrics", "--keys", "--root", "--allow-url", "--state",
                 "--keep-hours", "--max-queued-per-key", "--ray", "--model", "--sam2", "--compile", "--device"):  # fmt: skip
        assert word in text


def test_a_state_folder_in_use_is_refused_before_the_models_load(tmp_path):
    held = JobStore(tmp_path / "state")
    try:
        result = run("--state", str(tmp_path / "state"), "--port", "0", "--model", str(tmp_path / "no-such-model"))
        assert error_line(result) == (
            f"garvideo: error: another garvideo serve is using the state folder {tmp_path / 'state'}: stop it, or "
            "give another --state"
        )
    finally:
        held.close()


def test_opening_the_service_without_keys_warns(tmp_path):
    held = JobStore(tmp_path / "state")
    try:
        result = run("--host", "0.0.0.0", "--port", "0", "--state", str(tmp_path / "state"))
    finally:
        held.close()
    assert "garvideo: warning: --host 0.0.0.0 without --keys: anyone who can reach this machine" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--keys", "KEYS"), "write 'NAME KEY' or 'NAME sha256:HEX'"),
        (("--workers", "2"), "--workers only apply with --ray"),
        (("--port", "70000"), "70000 is not in the range"),
        (("--max-upload-mb", "0"), "--max-upload-mb"),
    ],
)
def test_mistakes_are_one_line(tmp_path, args, message):
    keys = tmp_path / "keys"
    keys.write_text("alice\n")
    args = tuple(str(keys) if a == "KEYS" else a for a in args)
    assert message in error_line(run("--state", str(tmp_path / "state"), "--port", "0", *args))


def test_the_service_options_default_to_the_table():
    from garvideo_cli.serve import serve_command

    from garvideo import defaults

    options = {p.name: p.default for p in serve_command.params}
    table = {
        "host": defaults.SERVE_HOST,
        "port": defaults.SERVE_PORT,
        "state": defaults.SERVE_STATE,
        "max_upload_mb": defaults.SERVE_MAX_UPLOAD_MB,
        "keep_hours": defaults.SERVE_KEEP_HOURS,
        "jobs": defaults.SERVE_JOBS,
        "max_running_per_key": defaults.SERVE_MAX_RUNNING_PER_KEY,
        "max_queued_per_key": defaults.SERVE_MAX_QUEUED_PER_KEY,
        "max_queued": defaults.SERVE_MAX_QUEUED,
        "model": defaults.MODEL,
        "detector": defaults.DETECTOR,
    }
    assert {name: options[name] for name in table} == table
