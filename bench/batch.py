"""Benchmark of ``garvideo batch``: one machine, static shards and Ray workers on clips of unequal length.

Every configuration runs the real command (``python -m garvideo_cli.main batch``)
end to end on the same manifest, with the tiny random models of
:mod:`garvideo.testing` (no download), into a fresh output folder:

- ``one machine``: the one-machine batch, one process;
- ``2 static shards``: two processes at once, ``--shard 0/2`` and ``--shard 1/2``;
- ``ray, N workers``: ``--ray --workers N`` on a local Ray runtime it starts itself.

The manifest puts the long clips at even positions, as a folder listing can,
so static shards split the work unevenly while Ray's shared queue does not.
Two figures per configuration: the wall time of the whole command (loading
models and starting Ray included) and lines/s while processing, from the
first to the last result file written ((lines - 1) / span of their mtimes).
Torch uses one thread per process (OMP_NUM_THREADS=1).

    python bench/batch.py                  # print a table
    python bench/batch.py --write --shared # also update "## Batch" in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model, write_section  # bench/machine.py (scripts run from bench/)

SECTION = "## Batch"


def prepare(folder: Path, lengths: list[int]) -> tuple[Path, Path, Path]:
    from garvideo.testing.clips import moving_object_clip
    from garvideo.testing.gar import build_tiny_gar_checkpoint
    from garvideo.testing.sam2 import build_tiny_sam2_checkpoint

    gar = build_tiny_gar_checkpoint(folder / "tiny-gar", seed=0, tile_size=112)
    sam2 = build_tiny_sam2_checkpoint(folder / "tiny-sam2", seed=0)
    lines = []
    for position, frames in enumerate(lengths):
        truth = moving_object_clip(folder / f"clip{position}.mp4", num_frames=frames, fps=12, seed=position)
        x1, y1, x2, y2 = truth.boxes[0]
        lines.append(
            {
                "video": f"clip{position}.mp4",
                "regions": [{"name": "thing", "box": [x1, y1, x2 + 1, y2 + 1], "when": {"frame": 0}}],
            }
        )
    manifest = folder / "regions.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return gar, sam2, manifest


def measure(folder: Path, gar: Path, sam2: Path, manifest: Path, name: str, extra: list[list[str]]) -> dict:
    out = folder / "out" / name.replace(" ", "-").replace(",", "")
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "garvideo_cli.main", "batch", str(folder), "--regions", str(manifest)]
    command += ["--out", str(out), "--model", str(gar), "--sam2", str(sam2)]
    command += ["--max-new-tokens", "3", "--frames", "2", "--frames-per-window", "1", "-q"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.monotonic()
    processes = [subprocess.Popen(command + options, env=env, stdout=subprocess.DEVNULL) for options in extra]
    codes = [process.wait() for process in processes]
    wall = time.monotonic() - start
    if any(codes):
        raise SystemExit(f"{name}: exit codes {codes}")
    stamps = sorted(p.stat().st_mtime for p in out.glob("*.json") if not p.name.startswith(("summary", "run.json")))
    lines = len(stamps)
    return {
        "name": name,
        "lines": lines,
        "wall": wall,
        "lines_per_s": lines / wall,
        "processing_per_s": (lines - 1) / (stamps[-1] - stamps[0]) if lines > 1 and stamps[-1] > stamps[0] else None,
    }


def _span(values: list[float], digits: int) -> str:
    """One value, or the lowest and highest of the repeats."""
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if f"{low:.{digits}f}" == f"{high:.{digits}f}" else f"{low:.{digits}f}-{high:.{digits}f}"


def table(runs: dict[str, list[dict]], lengths: list[int], shared: bool, repeats: int) -> str:
    load = os.getloadavg()[0]
    text = [
        f"`python bench/batch.py` on {cpu_model()}, {os.cpu_count()} cores, no GPU, torch on 1 thread per process"
        + (f"; the machine was shared with other jobs (load average {load:.1f} at the end)" if shared else "")
        + ". Tiny random models (`garvideo.testing`), `--frames 2 --frames-per-window 1 --max-new-tokens 3`;"
        f" {len(lengths)} lines on clips of {', '.join(map(str, lengths))} frames at 12 fps (long ones at even positions)."
        + (f" {repeats} runs of each, interleaved; a range gives the lowest and highest." if repeats > 1 else ""),
        "",
        "| configuration | lines | wall s (with model loading, Ray start) | lines/s overall | lines/s while processing |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, rows in runs.items():
        rates = [row["processing_per_s"] for row in rows if row["processing_per_s"]]
        text.append(
            f"| {name} | {rows[0]['lines']} | {_span([r['wall'] for r in rows], 1)} "
            f"| {_span([r['lines_per_s'] for r in rows], 3)} | {_span(rates, 2) if rates else '-'} |"
        )
    return "\n".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[96, 12, 96, 12, 48, 12, 48, 12], help="frames per clip"
    )
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in bench/RESULTS.md")
    parser.add_argument("--shared", action="store_true", help="say that other jobs shared the machine")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="garvideo-bench-batch-") as tmp:
        folder = Path(tmp)
        gar, sam2, manifest = prepare(folder, args.lengths)
        configurations = [
            ("one machine", [[]]),
            ("2 static shards (2 processes)", [["--shard", "0/2"], ["--shard", "1/2"]]),
            ("ray, 1 worker", [["--ray", "--workers", "1"]]),
            ("ray, 2 workers", [["--ray", "--workers", "2"]]),
        ]
        runs: dict[str, list[dict]] = {name: [] for name, _ in configurations}
        for _ in range(args.repeats):
            for name, extra in configurations:
                runs[name].append(measure(folder, gar, sam2, manifest, name, extra))
                print(runs[name][-1], flush=True)
    text = table(runs, args.lengths, args.shared, args.repeats)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
