"""``garvideo selftest``: check an installation offline with tiny random models."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click


def _run(args: list[str]):
    from click.testing import CliRunner

    from .main import app

    return CliRunner().invoke(app, args, catch_exceptions=True)


@click.command("selftest")
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Build everything in DIR and keep it (default: a temporary folder, removed afterwards).",
)
def selftest_command(keep: Path | None) -> None:
    """Check this installation offline: no weights are downloaded.

    Builds tiny randomly initialised GAR, SAM2 and Grounding DINO checkpoints
    and short generated clips, then runs info, track, a text region, describe,
    ask and batch on them and checks what each writes. Random models say nothing meaningful; this
    checks that every stage works. Exit code 0 when all checks pass.
    """
    if keep is not None:
        _selftest(keep)
        return
    with tempfile.TemporaryDirectory(prefix="garvideo-selftest-") as folder:
        _selftest(Path(folder))


@dataclass(frozen=True)
class _Step:
    """One command the selftest runs, the exit code it must end with, and what it must have written."""

    name: str
    args: list[str]
    check: Callable[[Path, Any], None]  # (the output folder, click's result)
    exit_code: int = 0


def _selftest(folder: Path) -> None:
    from transformers.utils import logging as transformers_logging

    from garvideo.testing.selftest import prepare_selftest

    transformers_logging.disable_progress_bar()
    began = time.perf_counter()
    files = prepare_selftest(folder)
    click.echo(f"built tiny models and clips in {folder} ({time.perf_counter() - began:.1f} s)")
    out = folder / "out"
    out.mkdir(exist_ok=True)
    steps = _steps(files, out)
    failed = 0
    for step in steps:
        began = time.perf_counter()
        result = _run(step.args)
        try:
            if result.exit_code != step.exit_code:
                raise AssertionError(
                    f"exit code {result.exit_code}: {result.output.strip()[-500:]}"
                    + (f" {result.exception!r}" if result.exception else "")
                )
            step.check(out, result)
        except (AssertionError, KeyError, ValueError, OSError) as exc:
            failed += 1
            click.echo(f"FAIL {step.name}: {exc}")
        else:
            click.echo(f"ok   {step.name} ({time.perf_counter() - began:.1f} s)")
    if failed:
        click.echo(f"{failed} of {len(steps)} checks failed")
        raise SystemExit(1)
    click.echo(f"all {len(steps)} checks passed")


def _steps(files, out: Path) -> list[_Step]:
    """info, track, a text region, describe, ask and batch over the selftest's tiny models and clips."""
    clip, sam2 = str(files.clip), ["--sam2", str(files.sam2)]
    models = ["--model", str(files.gar), *sam2, "--max-new-tokens", "4", "-q"]
    text = ["--text", "thing=a moving thing@3", "--detector", str(files.detector), "--box-threshold", "0"]
    options = ["--option", "yes", "--option", "no"]
    batch = ["--regions", str(files.manifest), "--out", str(out / "batch"), "--frames", "2", "--frames-per-window", "1"]
    return [
        _Step("info", ["info", clip, "--json"], _check_info),
        _Step(
            "track", ["track", clip, "--box", files.box, *sam2, "--out", str(out / "tracks.json"), "-q"], _check_track
        ),
        _Step("text region", ["track", clip, *text, *sam2, "--out", str(out / "text-tracks.json"), "-q"], _check_text),
        _Step(
            "describe",
            [
                "describe",
                clip,
                "--box",
                files.box,
                "--window",
                "0.5",
                "--frames",
                "4",
                "--out",
                str(out / "describe.json"),
            ]
            + ["--srt", str(out / "describe.srt"), *models],
            _check_describe,
        ),
        _Step(
            "ask",
            ["ask", clip, "What is <thing> doing?", "--tracks", str(out / "tracks.json"), *options]
            + ["--out", str(out / "ask.json"), *models],
            _check_ask,
        ),
        _Step("batch", ["batch", str(files.folder), *batch, *models], _check_batch, exit_code=1),
    ]


def _check_info(out: Path, result) -> None:
    facts = json.loads(result.output)
    assert (facts["width"], facts["height"], facts["num_frames"]) == (160, 120, 24), facts


def _check_track(out: Path, result) -> None:
    from garvideo.tracking import load_tracks

    (track,) = load_tracks(out / "tracks.json")
    assert track.name == "thing" and track.indices == tuple(range(24)), track


def _check_text(out: Path, result) -> None:
    from garvideo.tracking import load_tracks

    # The random detector finds "something" (box threshold 0); the box it found is what SAM2 tracked.
    doc = json.loads((out / "text-tracks.json").read_text())["meta"]
    (found,) = doc["provenance"]["settings"]["grounding"]["found"]
    assert (found["name"], found["frame"], found["text"]) == ("thing", 3, "a moving thing"), found
    kinds = [p.get("text") or p.get("box") for p in doc["prompts"]]
    assert kinds == ["a moving thing", found["box"]], doc["prompts"]
    (track,) = load_tracks(out / "text-tracks.json")
    assert track.name == "thing" and track.indices == tuple(range(24)), track


def _check_describe(out: Path, result) -> None:
    from garvideo.outputs.document import validate_result_document

    doc = json.loads((out / "describe.json").read_text())
    validate_result_document(doc)
    windows = doc["regions"][0]["timeline"]
    assert windows and windows[0]["start"] == 0, windows
    assert (out / "describe.srt").read_text().startswith("1\n"), "empty subtitles"


def _check_ask(out: Path, result) -> None:
    from garvideo.outputs.document import validate_result_document

    doc = json.loads((out / "ask.json").read_text())
    validate_result_document(doc)
    assert doc["answers"][0]["options"] == ["yes", "no"], doc["answers"]


def _check_batch(out: Path, result) -> None:
    from garvideo.outputs.document import validate_result_document

    results = sorted((out / "batch").glob("*.json"))
    docs = [json.loads(p.read_text()) for p in results if p.name not in ("summary.json", "run.json")]
    assert len(docs) == 2, [p.name for p in results]
    for doc in docs:
        validate_result_document(doc)
    failures = (out / "batch" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 1 and "corrupt" in failures[0], failures
