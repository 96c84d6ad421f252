"""``garvideo selftest``: check an installation offline with tiny random models."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

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


def _selftest(folder: Path) -> None:
    from transformers.utils import logging as transformers_logging

    from garvideo.outputs.document import validate_result_document
    from garvideo.testing.selftest import prepare_selftest
    from garvideo.tracking import load_tracks

    transformers_logging.disable_progress_bar()
    began = time.perf_counter()
    files = prepare_selftest(folder)
    click.echo(f"built tiny models and clips in {folder} ({time.perf_counter() - began:.1f} s)")
    models = ["--model", str(files.gar), "--sam2", str(files.sam2), "--max-new-tokens", "4", "-q"]
    out = folder / "out"
    out.mkdir(exist_ok=True)

    def check_info(result):
        facts = json.loads(result.output)
        assert (facts["width"], facts["height"], facts["num_frames"]) == (160, 120, 24), facts

    def check_track(result):
        (track,) = load_tracks(out / "tracks.json")
        assert track.name == "thing" and track.indices == tuple(range(24)), track

    def check_text(result):
        # The random detector finds "something" (box threshold 0); the box it found is what SAM2 tracked.
        doc = json.loads((out / "text-tracks.json").read_text())["meta"]
        (found,) = doc["provenance"]["settings"]["grounding"]["found"]
        assert (found["name"], found["frame"], found["text"]) == ("thing", 3, "a moving thing"), found
        kinds = [p.get("text") or p.get("box") for p in doc["prompts"]]
        assert kinds == ["a moving thing", found["box"]], doc["prompts"]
        (track,) = load_tracks(out / "text-tracks.json")
        assert track.name == "thing" and track.indices == tuple(range(24)), track

    def check_describe(result):
        doc = json.loads((out / "describe.json").read_text())
        validate_result_document(doc)
        windows = doc["regions"][0]["timeline"]
        assert windows and windows[0]["start"] == 0, windows
        assert (out / "describe.srt").read_text().startswith("1\n"), "empty subtitles"

    def check_ask(result):
        doc = json.loads((out / "ask.json").read_text())
        validate_result_document(doc)
        assert doc["answers"][0]["options"] == ["yes", "no"], doc["answers"]

    def check_batch(result):
        assert result.exit_code == 1, f"expected exit code 1 (one corrupt video), got {result.exit_code}"
        results = sorted((out / "batch").glob("*.json"))
        docs = [json.loads(p.read_text()) for p in results if p.name not in ("summary.json", "run.json")]
        assert len(docs) == 2, [p.name for p in results]
        for doc in docs:
            validate_result_document(doc)
        failures = (out / "batch" / "failures.jsonl").read_text().splitlines()
        assert len(failures) == 1 and "corrupt" in failures[0], failures

    clip = str(files.clip)
    steps = [
        ("info", ["info", clip, "--json"], check_info, 0),
        (
            "track",
            ["track", clip, "--box", files.box, "--sam2", str(files.sam2), "--out", str(out / "tracks.json"), "-q"],
            check_track,
            0,
        ),
        (
            "text region",
            [
                "track",
                clip,
                "--text",
                "thing=a moving thing@3",
                "--detector",
                str(files.detector),
                "--box-threshold",
                "0",
                "--sam2",
                str(files.sam2),
                "--out",
                str(out / "text-tracks.json"),
                "-q",
            ],
            check_text,
            0,
        ),
        (
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
                "--srt",
                str(out / "describe.srt"),
                *models,
            ],
            check_describe,
            0,
        ),
        (
            "ask",
            [
                "ask",
                clip,
                "What is <thing> doing?",
                "--tracks",
                str(out / "tracks.json"),
                "--option",
                "yes",
                "--option",
                "no",
                "--out",
                str(out / "ask.json"),
                *models,
            ],
            check_ask,
            0,
        ),
        (
            "batch",
            [
                "batch",
                str(files.folder),
                "--regions",
                str(files.manifest),
                "--out",
                str(out / "batch"),
                "--frames",
                "2",
                "--frames-per-window",
                "1",
                *models,
            ],
            check_batch,
            1,
        ),
    ]
    failed = 0
    for name, args, check, expected_code in steps:
        began = time.perf_counter()
        result = _run(args)
        try:
            if result.exit_code != expected_code:
                raise AssertionError(
                    f"exit code {result.exit_code}: {result.output.strip()[-500:]}"
                    + (f" {result.exception!r}" if result.exception else "")
                )
            check(result)
        except (AssertionError, KeyError, ValueError, OSError) as exc:
            failed += 1
            click.echo(f"FAIL {name}: {exc}")
        else:
            click.echo(f"ok   {name} ({time.perf_counter() - began:.1f} s)")
    if failed:
        click.echo(f"{failed} of {len(steps)} checks failed")
        raise SystemExit(1)
    click.echo(f"all {len(steps)} checks passed")
