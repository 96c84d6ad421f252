"""Benchmark of long videos: does the pipeline stay linear in time and flat in memory over an hour?

One generated clip per length (an ellipse sweeping back and forth over a
textured background, 10 fps, 320x240 by default; written once into
``--clips`` and reused), then, in a fresh Python process per length (so the
peak RSS is that run's own):

1. ``Pipeline.track``: SAM2 from a box on frame 0 over every frame;
2. the rest runs on the clip's exact masks: random SAM2 weights lose the
   object, which would leave GAR a handful of frames and the overlay nothing
   to draw; the exact masks are what a working tracker gives. The tracks JSON
   of the exact track is written (``garvideo.tracking.save_tracks``);
3. ``Pipeline.describe``: 8 frames overall, adaptive windows of 4 frames, 32
   tokens per prompt;
4. the overlay video of the exact masks with the window descriptions as
   captions (``garvideo.outputs.render_overlay``).

Reported per length: each stage's wall time, the pipeline's own stage split
(decode, track, encode, generate), the tracking cost per frame in the first
and the last sixth of the clip (the time between two frames handed to the
tracker: SAM2 step plus decoding; a growing state would show as a late
slowdown), and the process's peak RSS. Models are the tiny random test
checkpoints (``garvideo.testing``): the run measures garvideo's own scaling,
not a real model's speed.

    python bench/long.py --minutes 1 10                   # print the table
    nohup python bench/long.py --minutes 60 > long60.log &  # an hour: ~15 min on an idle 2-core CPU
    python bench/long.py --report --write                 # table of every finished length -> RESULTS.md

Each length's figures are kept as JSON in ``--results`` (default
bench/out/long), so lengths run at different times share one table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: never reach for the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTION = "## Long videos"
HERE = Path(__file__).resolve().parent
NEW_TOKENS = 32


# ---------------------------------------------------------------------- the clip


def clip_paths(folder: Path, minutes: float, fps: int, size: tuple[int, int]) -> tuple[Path, Path]:
    stem = f"long-{minutes:g}min-{fps}fps-{size[0]}x{size[1]}"
    return folder / f"{stem}.mp4", folder / f"{stem}.tracks.json"


def make_clip(folder: Path, minutes: float, fps: int, size: tuple[int, int]) -> tuple[Path, Path]:
    """The clip and its exact-mask track, generated frame by frame (memory stays flat at any length)."""
    import numpy as np

    from garvideo.testing.clips import write_frames
    from garvideo.tracking import Track, TrackFrame, save_tracks

    video, truth = clip_paths(folder, minutes, fps, size)
    if video.exists() and truth.exists():
        return video, truth
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    count = round(minutes * 60 * fps)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack(
        [
            100 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0),
            90 + 50 * np.sin((xx + yy) / 17.0),
            120 + 40 * np.cos(xx / 23.0 - yy / 7.0),
        ],
        axis=-1,
    ).astype(np.uint8)
    rx, ry = max(6, width // 9), max(5, height // 7)
    period = 20 * fps  # one sweep right and back every 20 s
    frames: list[TrackFrame] = []

    def images():
        for index in range(count):
            phase = (index % period) / period
            sweep = 2 * phase if phase < 0.5 else 2 - 2 * phase
            cx = rx + 1 + sweep * (width - 2 * rx - 3)
            cy = height * 0.4 + height * 0.1 * np.sin(2 * np.pi * index / (7 * fps))
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
            image = background.copy()
            image[inside] = (230, 70, 40)
            image[inside & ((xx.astype(int) // 4 + yy.astype(int) // 4) % 2 == 0)] = (250, 200, 60)
            frames.append(TrackFrame.from_mask(index, index / fps, inside))
            yield image

    write_frames(video, images(), [Fraction(i, fps) for i in range(count)], crf=20, gop=10 * fps)
    save_tracks(truth, [Track(name="object", obj_id=1, frames=tuple(frames))])
    return video, truth


# ---------------------------------------------------------------------- one run (child process)


def run_one(video: Path, truth: Path, threads: int | None) -> dict:
    """Every stage once on ``video``; returns the figures (runs in its own process)."""
    import numpy as np
    import torch

    from garvideo.model import GenerationSettings
    from garvideo.outputs import Cue, render_overlay
    from garvideo.pipeline import Pipeline
    from garvideo.testing.gar import build_tiny_gar_checkpoint
    from garvideo.testing.sam2 import build_tiny_sam2_checkpoint
    from garvideo.tracking import RegionPrompt, load_tracks, save_tracks
    from garvideo.video import open_video

    if threads:
        torch.set_num_threads(threads)
    out: dict = {"torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="garvideo-long-") as tmp:
        folder = Path(tmp)
        gar = build_tiny_gar_checkpoint(folder / "gar-tiny", seed=0)
        sam2 = build_tiny_sam2_checkpoint(folder / "sam2-tiny", seed=0)
        pipe = Pipeline.from_pretrained(gar, sam2, device="cpu", progress=False)
        exact = load_tracks(truth)
        with open_video(video) as reader:
            out.update(frames=reader.num_frames, seconds=reader.duration, width=reader.width, height=reader.height)
            # Time between frames handed to the tracker: one SAM2 step plus decoding the next frame.
            handed: list[float] = []
            original = reader.iter_frames

            def timed_frames(*args, **kwargs):
                for frame in original(*args, **kwargs):
                    handed.append(time.perf_counter())
                    yield frame

            reader.iter_frames = timed_frames  # this reader only
            box = exact[0].frames[0].box
            region = RegionPrompt.from_box("object", (box[0], box[1], box[2] + 1, box[3] + 1), 0)
            stages: dict[str, float] = {}
            began = time.perf_counter()
            tracked = pipe.track(reader, [region])
            stages["track"] = time.perf_counter() - began
            reader.iter_frames = original
            steps = np.diff(np.asarray(handed)) * 1000
            sixth = max(1, len(steps) // 6)
            out["track_ms_early"] = float(np.median(steps[:sixth]))
            out["track_ms_late"] = float(np.median(steps[-sixth:]))
            out["tracked_visible"] = sum(f.visible for f in tracked.tracks[0].frames)

            json_path = folder / "tracks.json"
            began = time.perf_counter()
            save_tracks(json_path, exact)
            stages["tracks JSON"] = time.perf_counter() - began
            out["tracks_json_mb"] = json_path.stat().st_size / 1e6

            settings = GenerationSettings(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
            began = time.perf_counter()
            described = pipe.describe(reader, tracks=exact, frames=8, frames_per_window=4, settings=settings)
            stages["describe"] = time.perf_counter() - began

            cues = [Cue(w.start, w.end, w.description or "") for w in described.region("object").windows]
            began = time.perf_counter()
            render_overlay(reader, folder / "overlay.mp4", exact, cues, progress=False)
            stages["overlay"] = time.perf_counter() - began

        timings = {}
        for result in (tracked, described):
            for key in ("decode", "track", "encode", "generate"):
                timings[key] = timings.get(key, 0.0) + getattr(result.provenance.timings, key)
        out["stages"] = stages
        out["pipeline_timings"] = timings
        out["total"] = sum(stages.values())
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


# ---------------------------------------------------------------------- reporting


def table(rows: list[dict]) -> str:
    lines = [
        "| clip | frames | total s | track s | tracks JSON s | describe s | overlay s | of which decode / SAM2 / "
        "GAR encode / generate s | tracking ms/frame, first sixth | last sixth | tracks JSON MB | peak RSS GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: r["minutes"]):
        s, t = r["stages"], r["pipeline_timings"]
        lines.append(
            f"| {r['minutes']:g} min, {r['width']}x{r['height']} | {r['frames']} | {r['total']:.1f} | {s['track']:.1f} | "
            f"{s['tracks JSON']:.2f} | {s['describe']:.1f} | {s['overlay']:.1f} | "
            f"{t['decode']:.1f} / {t['track']:.1f} / {t['encode']:.1f} / {t['generate']:.1f} | "
            f"{r['track_ms_early']:.1f} | {r['track_ms_late']:.1f} | {r['tracks_json_mb']:.1f} | {r['peak_rss_gib']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="*", default=[], help="clip lengths to run (e.g. 1 10 60)")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the generated clips")
    parser.add_argument("--threads", type=int, help="torch threads (default: what the pipeline chooses)")
    parser.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "garvideo-long-clips")
    parser.add_argument("--results", type=Path, default=HERE / "out" / "long", help="folder of per-length JSON")
    parser.add_argument("--report", action="store_true", help="print the table of every length in --results")
    parser.add_argument("--write", action="store_true", help="write that table to bench/RESULTS.md")
    parser.add_argument("--child", nargs=3, metavar=("VIDEO", "TRUTH", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        video, truth, target = args.child
        figures = run_one(Path(video), Path(truth), args.threads)
        Path(target).write_text(json.dumps(figures, indent=1))
        return

    size = tuple(int(v) for v in args.size.lower().split("x"))
    args.results.mkdir(parents=True, exist_ok=True)
    for minutes in args.minutes:
        began = time.perf_counter()
        video, truth = make_clip(args.clips, minutes, args.fps, size)
        print(f"{minutes:g} min clip ready in {time.perf_counter() - began:.0f} s: {video}", file=sys.stderr)
        target = args.results / f"{minutes:g}min.json"
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
        load_at_start = os.getloadavg()[0]
        command = [sys.executable, __file__, "--child", str(video), str(truth), str(target)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        began = time.perf_counter()
        subprocess.run(command, check=True)
        figures = json.loads(target.read_text())
        figures.update(
            minutes=minutes,
            date=datetime.date.today().isoformat(),
            load=(load_at_start, os.getloadavg()[2]),  # 1-minute average at the start, 15-minute at the end
            machine=describe_machine("cpu", figures["torch_threads"]),
            threads=args.threads or "per stage (tracking 1, GAR every core)",
            commit=commit.stdout.strip(),  # the code the run started with
        )
        target.write_text(json.dumps(figures, indent=1))
        print(f"{minutes:g} min: {json.dumps(figures)} ({time.perf_counter() - began:.0f} s)", file=sys.stderr)

    if args.report or args.write or args.minutes:
        rows = [json.loads(p.read_text()) for p in sorted(args.results.glob("*min.json"))]
        rows = [r for r in rows if "minutes" in r]
        if not rows:
            sys.exit("no finished lengths in " + str(args.results))
        machines = sorted({re.sub(r" on \d+ thread\(s\)", "", r["machine"]) for r in rows})
        threads = sorted({str(r.get("threads", r["torch_threads"])) for r in rows})
        commits = sorted({r["commit"] for r in rows})
        report = (
            f"`python bench/long.py` ({', '.join(sorted({r['date'] for r in rows}))}; commit(s) {', '.join(commits)}). "
            f"Machine: {'; '.join(machines)}; torch threads: {'; '.join(threads)}; the machine was shared with "
            f"other jobs. Models: tiny random test checkpoints (GAR 0.4 M parameters, SAM2 "
            f"1.4 M at 128 px), float32. Generated clips at {rows[0]['frames'] / rows[0]['seconds']:.0f} fps, one "
            f"region boxed on frame 0; describe over the exact masks, {NEW_TOKENS} tokens per prompt; each length in "
            f"its own process.\n\n{table(rows)}"
        )
        print(report)
        if args.write:
            write_section(SECTION, report, block="### tiny models, cpu")


if __name__ == "__main__":
    main()
