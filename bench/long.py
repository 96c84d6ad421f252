"""Benchmark of long videos: does the pipeline stay linear in time and flat in memory over an hour?

One generated clip per length and object count (ellipses sweeping back and
forth over a textured background, each in its own band; 10 fps, 320x240 by
default; written once into ``--clips`` and reused), then, in a fresh Python
process per run (so the peak RSS is that run's own):

1. ``Pipeline.track``: SAM2 from a box on frame 0 of every object, over every
   frame;
2. the rest runs on the clip's exact masks: random SAM2 weights lose the
   objects, which would leave GAR a handful of frames and the overlay nothing
   to draw; the exact masks are what a working tracker gives. Their tracks
   JSON is written (``garvideo.tracking.save_tracks``);
3. ``Pipeline.describe``: 8 frames overall, adaptive windows (at most 8) of 4
   frames, ``--new-tokens`` per prompt;
4. the overlay video of the exact masks with the window descriptions as
   captions (``garvideo.outputs.render_overlay``).

``--track-only`` stops after step 1 (tracking speed with several objects).
Reported per run: each stage's wall time, the pipeline's own stage split
(decode, track, encode, generate), the tracking cost per frame in the first
and the last sixth of the clip (the time between two frames handed to the
tracker: SAM2 step plus decoding; a growing state would show as a late
slowdown), and the process's peak RSS; the report adds the one-hour
projection from the longest full run (per-frame stages scaled to an hour,
GAR's stage kept: an hour has as many timeline windows as a minute). Models
are the tiny random test checkpoints (``garvideo.testing``), or with
``--full-size`` GAR-1B's and sam2.1-hiera-tiny's shapes with random weights
(for a GPU: ``--device cuda``, as bench/gpu.sh runs it).

    python bench/long.py --minutes 1 10                     # print the table
    nohup python bench/long.py --minutes 60 > long60.log &  # an hour: ~15 min on an idle 2-core CPU
    python bench/long.py --report --write                   # every finished run -> bench/RESULTS.md
    python bench/long.py --full-size --device cuda --minutes 1 --fps 30 --size 1280x720 --write

Each run's figures are kept as JSON in ``--results`` (default
bench/out/long), so runs made at different times share one table.
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
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: never reach for the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTION = "## Long videos"
HERE = Path(__file__).resolve().parent
NEW_TOKENS = 32
MODELS = {
    False: "tiny random test checkpoints (GAR 0.4 M parameters with 448 px tiles, SAM2 1.4 M at 128 px), float32",
    True: "GAR-1B's and sam2.1-hiera-tiny's shapes with random weights (bfloat16 on CUDA, float32 on a CPU)",
}


# ---------------------------------------------------------------------- the clip


def clip_paths(folder: Path, minutes: float, fps: int, size: tuple[int, int], objects: int) -> tuple[Path, Path]:
    stem = f"long-{minutes:g}min-{fps}fps-{size[0]}x{size[1]}-{objects}obj"
    return folder / f"{stem}.mp4", folder / f"{stem}.tracks.json"


def make_clip(folder: Path, minutes: float, fps: int, size: tuple[int, int], objects: int = 1) -> tuple[Path, Path]:
    """The clip and its exact-mask tracks, generated frame by frame (memory stays flat at any length).

    ``objects`` ellipses, each in its own horizontal band, sweep right and back
    (one sweep every 20 s, each a little out of step with the one above).
    """
    import numpy as np

    from garvideo.testing.clips import write_frames
    from garvideo.tracking import Track, TrackFrame, save_tracks

    video, truth = clip_paths(folder, minutes, fps, size, objects)
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
    checks = (xx.astype(int) // 4 + yy.astype(int) // 4) % 2 == 0
    band = height / objects
    rx, ry = max(6, width // 9), max(4, min(height // 7, int(band * 0.3)))
    period = 20 * fps
    frames: list[list[TrackFrame]] = [[] for _ in range(objects)]

    def images():
        for index in range(count):
            image = background.copy()
            for k in range(objects):
                phase = ((index + k * period // 7) % period) / period
                sweep = 2 * phase if phase < 0.5 else 2 - 2 * phase
                cx = rx + 1 + sweep * (width - 2 * rx - 3)
                cy = band * (k + 0.5) + band * 0.1 * np.sin(2 * np.pi * index / (7 * fps))
                inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
                image[inside] = (230, 70 + 40 * k, 40)
                image[inside & checks] = (250, 200, 60)
                frames[k].append(TrackFrame.from_mask(index, index / fps, inside))
            yield image

    write_frames(video, images(), [Fraction(i, fps) for i in range(count)], crf=20, gop=10 * fps)
    save_tracks(truth, [Track(name=f"object{k + 1}", obj_id=k + 1, frames=tuple(f)) for k, f in enumerate(frames)])
    return video, truth


# ---------------------------------------------------------------------- one run (child process)


@dataclass(frozen=True)
class Setup:
    """What one run loads and does (passed to the child process as JSON)."""

    full_size: bool = False
    device: str = "cpu"
    dtype: str = "auto"
    threads: int | None = None
    new_tokens: int = NEW_TOKENS
    track_only: bool = False


def build_pipeline(setup: Setup, folder: Path):
    from garvideo.pipeline import Pipeline

    if setup.full_size:
        from pipeline import full_size_pipeline  # bench/pipeline.py: GAR-1B and sam2.1-hiera-tiny shapes

        pipe = full_size_pipeline(folder, setup.device, setup.dtype)
        pipe.threads = setup.threads
        return pipe
    from garvideo.testing.gar import build_tiny_gar_checkpoint
    from garvideo.testing.sam2 import build_tiny_sam2_checkpoint

    gar = build_tiny_gar_checkpoint(folder / "gar-tiny", seed=0)
    sam2 = build_tiny_sam2_checkpoint(folder / "sam2-tiny", seed=0)
    return Pipeline.from_pretrained(
        gar, sam2, device=setup.device, dtype=setup.dtype, progress=False, threads=setup.threads
    )


def run_one(video: Path, truth: Path, setup: Setup) -> dict:
    """Every stage once on ``video``; returns the figures (runs in its own process)."""
    import numpy as np
    import torch

    from garvideo.model import GenerationSettings
    from garvideo.outputs import Cue, render_overlay
    from garvideo.tracking import RegionPrompt, load_tracks, save_tracks
    from garvideo.video import open_video

    out: dict = {"torch_threads": torch.get_num_threads(), "new_tokens": setup.new_tokens}
    cuda = setup.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory(prefix="garvideo-long-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        pipe = build_pipeline(setup, folder)
        out["build_s"] = time.perf_counter() - began
        out["device"] = str(pipe.tracker.device)
        exact = load_tracks(truth)
        out["objects"] = len(exact)
        with open_video(video) as reader:
            out.update(frames=reader.num_frames, seconds=reader.duration, width=reader.width, height=reader.height)
            regions = []
            for track in exact:
                x1, y1, x2, y2 = track.frames[0].box
                regions.append(RegionPrompt.from_box(track.name, (x1, y1, x2 + 1, y2 + 1), 0))
            # Time between frames handed to the tracker: one SAM2 step plus decoding the next frame.
            handed: list[float] = []
            original = reader.iter_frames

            def timed_frames(*args, **kwargs):
                for frame in original(*args, **kwargs):
                    sync()
                    handed.append(time.perf_counter())
                    yield frame

            reader.iter_frames = timed_frames  # this reader only
            stages: dict[str, float] = {}
            began = time.perf_counter()
            tracked = pipe.track(reader, regions)
            sync()
            stages["track"] = time.perf_counter() - began
            reader.iter_frames = original
            steps = np.diff(np.asarray(handed)) * 1000
            sixth = max(1, len(steps) // 6)
            out["track_ms_early"] = float(np.median(steps[:sixth]))
            out["track_ms_late"] = float(np.median(steps[-sixth:]))
            out["tracked_visible"] = sum(f.visible for f in tracked.tracks[0].frames)
            results = [tracked]

            if not setup.track_only:
                json_path = folder / "tracks.json"
                began = time.perf_counter()
                save_tracks(json_path, exact)
                stages["tracks JSON"] = time.perf_counter() - began
                out["tracks_json_mb"] = json_path.stat().st_size / 1e6

                fixed = GenerationSettings(min_new_tokens=setup.new_tokens)  # every description this long
                began = time.perf_counter()
                described = pipe.describe(
                    reader,
                    tracks=exact,
                    frames=8,
                    frames_per_window=4,
                    max_new_tokens=setup.new_tokens,
                    generation=fixed,
                )
                sync()
                stages["describe"] = time.perf_counter() - began
                results.append(described)
                out["gar_prompts"] = sum(1 + sum(w.visible for w in r.windows) for r in described.regions)

                cues = [
                    Cue(w.start, w.end, f"{r.name}: {w.description}")
                    for r in described.regions
                    for w in r.windows
                    if w.visible
                ]
                began = time.perf_counter()
                render_overlay(reader, folder / "overlay.mp4", exact, cues, progress=False)
                stages["overlay"] = time.perf_counter() - began

        timings: dict[str, float] = {}
        for result in results:
            for key in ("decode", "track", "encode", "generate"):
                timings[key] = timings.get(key, 0.0) + getattr(result.provenance.timings, key)
        out["stages"] = stages
        out["pipeline_timings"] = timings
        out["total"] = sum(stages.values())
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if cuda:
        out["gpu"] = torch.cuda.get_device_name()
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


# ---------------------------------------------------------------------- reporting


def _kind(row: dict) -> str:
    return f"{'full-size architectures, random weights' if row.get('full_size') else 'tiny models'}, {row.get('device_type', 'cpu')}"


def _seconds(stages: dict, name: str, digits: int = 1) -> str:
    return f"{stages[name]:.{digits}f}" if name in stages else "-"


def table(rows: list[dict]) -> str:
    lines = [
        "| clip | objects | frames | total s | track s | tracks JSON s | describe s | overlay s | of which decode / "
        "SAM2 / GAR encode / generate s | tracking ms/frame, first sixth | last sixth | tracking frames/s | "
        "tracks JSON MB | peak RSS GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["minutes"], r.get("objects", 1))):
        s, t = r["stages"], r["pipeline_timings"]
        json_mb = f"{r['tracks_json_mb']:.1f}" if "tracks_json_mb" in r else "-"
        lines.append(
            f"| {r['minutes']:g} min, {r['width']}x{r['height']}, {r['frames'] / r['seconds']:.0f} fps | "
            f"{r.get('objects', 1)} | {r['frames']} | {r['total']:.1f} | {_seconds(s, 'track')} | "
            f"{_seconds(s, 'tracks JSON', 2)} | {_seconds(s, 'describe')} | {_seconds(s, 'overlay')} | "
            f"{t['decode']:.1f} / {t['track']:.1f} / {t['encode']:.1f} / {t['generate']:.1f} | "
            f"{r['track_ms_early']:.1f} | {r['track_ms_late']:.1f} | {r['frames'] / s['track']:.1f} | "
            f"{json_mb} | {r['peak_rss_gib']:.2f} |"
        )
    return "\n".join(lines)


def projection(rows: list[dict]) -> str:
    """An hour from the longest full run of one object: per-frame stages scale with the frames, GAR's does not.

    The adaptive timeline has at most 8 windows however long the video, so an
    hour asks GAR as many prompts as a minute (frames of the same size).
    """
    full = [r for r in rows if "describe" in r["stages"] and r.get("objects", 1) == 1]
    if not full:
        return ""
    r = max(full, key=lambda r: r["seconds"])
    if r["seconds"] >= 3600:
        return ""  # an hour was measured, not projected
    scale = 3600 / r["seconds"]
    per_frame = r["stages"]["track"] + r["stages"]["tracks JSON"] + r["stages"]["overlay"]
    hour = scale * per_frame + r["stages"]["describe"]
    return (
        f"One-hour projection from the {r['minutes']:g}-minute run: (track + tracks JSON + overlay) x {scale:.0f} + "
        f"describe (the same number of GAR prompts for an hour: at most 8 windows) = {scale:.0f} x "
        f"{per_frame:.1f} s + {r['stages']['describe']:.1f} s = {hour:.0f} s ({hour / 60:.1f} min)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="*", default=[], help="clip lengths to run (e.g. 1 10 60)")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the generated clips")
    parser.add_argument("--objects", type=int, nargs="+", default=[1], help="objects to track (one run per count)")
    parser.add_argument("--full-size", action="store_true", help="GAR-1B and sam2.1-hiera-tiny shapes, random")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on CUDA, float32 on the CPU")
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS, help="tokens generated per GAR prompt")
    parser.add_argument("--track-only", action="store_true", help="only the tracking stage")
    parser.add_argument("--threads", type=int, help="torch threads (default: what the pipeline chooses per stage)")
    parser.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "garvideo-long-clips")
    parser.add_argument("--results", type=Path, default=HERE / "out" / "long", help="folder of per-run JSON")
    parser.add_argument("--report", action="store_true", help="print the table of every run in --results")
    parser.add_argument("--write", action="store_true", help="write that table to bench/RESULTS.md")
    parser.add_argument("--child", nargs=4, metavar=("VIDEO", "TRUTH", "JSON", "SETUP"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        video, truth, target, setup = args.child
        figures = run_one(Path(video), Path(truth), Setup(**json.loads(setup)))
        Path(target).write_text(json.dumps(figures, indent=1))
        return

    size = tuple(int(v) for v in args.size.lower().split("x"))
    setup = Setup(args.full_size, args.device, args.dtype, args.threads, args.new_tokens, args.track_only)
    tag = f"{'full' if args.full_size else 'tiny'}-{args.device.split(':')[0]}"
    args.results.mkdir(parents=True, exist_ok=True)
    for minutes in args.minutes:
        for objects in args.objects:
            began = time.perf_counter()
            video, truth = make_clip(args.clips, minutes, args.fps, size, objects)
            print(f"{minutes:g} min clip ready in {time.perf_counter() - began:.0f} s: {video}", file=sys.stderr)
            target = args.results / f"{tag}-{minutes:g}min-{objects}obj{'-track' if args.track_only else ''}.json"
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
            load_at_start = os.getloadavg()[0]
            command = [sys.executable, __file__, "--child", str(video), str(truth), str(target)]
            began = time.perf_counter()
            subprocess.run([*command, json.dumps(asdict(setup))], check=True)
            figures = json.loads(target.read_text())
            figures.update(
                minutes=minutes,
                full_size=args.full_size,
                device_type=args.device.split(":")[0],
                date=datetime.date.today().isoformat(),
                load=(load_at_start, os.getloadavg()[2]),  # 1-minute average at the start, 15-minute at the end
                machine=figures.get("gpu") or describe_machine("cpu", figures["torch_threads"]),
                threads=args.threads or "per stage (tracking 1, GAR every core)",
                commit=commit.stdout.strip(),  # the code the run started with
            )
            target.write_text(json.dumps(figures, indent=1))
            print(f"{target.name}: {json.dumps(figures)} ({time.perf_counter() - began:.0f} s)", file=sys.stderr)

    if not (args.report or args.write or args.minutes):
        return
    rows = [json.loads(p.read_text()) for p in sorted(args.results.glob("*.json"))]
    rows = [r for r in rows if "minutes" in r]
    if not rows:
        sys.exit(f"no finished runs in {args.results}")
    for kind in sorted({_kind(r) for r in rows}):
        mine = [r for r in rows if _kind(r) == kind]
        machines = sorted({re.sub(r" on \d+ thread\(s\)", "", r["machine"]) for r in mine})
        threads = sorted({str(r.get("threads", r["torch_threads"])) for r in mine})
        cpu = all(r.get("device_type", "cpu") == "cpu" for r in mine)
        report = (
            f"`python bench/long.py` ({', '.join(sorted({r['date'] for r in mine}))}; commit(s) "
            f"{', '.join(sorted({r['commit'] for r in mine}))}). Machine: {'; '.join(machines)}"
            + (f"; torch threads: {'; '.join(threads)}; the machine was shared with other jobs" if cpu else "")
            + f". Models: {MODELS[bool(mine[0].get('full_size'))]}. Generated clips, every object boxed on frame 0; describe over "
            f"the exact masks, {mine[0].get('new_tokens', NEW_TOKENS)} tokens per prompt; each run in its own "
            f"process.\n\n{table(mine)}\n\n{projection(mine)}"
        )
        print(report)
        if args.write:
            write_section(SECTION, report.strip(), block=f"### {kind}")


if __name__ == "__main__":
    main()
