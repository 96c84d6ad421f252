"""Torch threads per stage, side by side: tracking and GAR's prefill on one and on every core, with and without a busy core.

Each configuration runs in its own Python process (OpenMP reads
``OMP_WAIT_POLICY`` once, at start), in turns, ``--repeats`` times; the
medians are reported. Models are the tiny random test checkpoints.

- tracking: ``Pipeline.track`` over a generated 100-frame 320x240 clip (SAM2
  at 128 px, from a box on frame 0);
- GAR: ``Pipeline.ask`` over 8 frames of that clip with their exact masks
  (448 px tiles: a ~4,300-token prompt), one new token, so "generate" is the
  prefill; then 32 tokens over one frame, mostly decoding steps.

"busy core": another process spins on one core meanwhile (``while True:
pass``), as any other job on the machine does. Threads are given explicitly
with ``Pipeline.from_pretrained(threads=N)``, except "per stage", the pipeline's own choice
(:func:`garvideo.devices.stage_threads`).

    python bench/threads.py            # print the table
    python bench/threads.py --write    # also update "## Threads" in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from machine import cpu_model, write_section

SECTION = "## Threads"

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    stage, threads, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    threads = None if threads == "stage" else int(threads)
    from garvideo.model import GenerationSettings
    from garvideo.pipeline import Pipeline
    from garvideo.tracking import RegionPrompt, load_tracks
    clip, truth = folder / "clip.mp4", load_tracks(folder / "truth.json")
    if stage == "track":
        pipe = Pipeline.from_pretrained(None, folder / "sam2", device="cpu", progress=False, threads=threads)
        box = truth[0].frames[0].box
        region = RegionPrompt.from_box("object", (box[0], box[1], box[2] + 1, box[3] + 1), 0)
        pipe.track(clip, [region], end=0.5)  # warm-up
        began = time.perf_counter()
        result = pipe.track(clip, [region])
        print(json.dumps({"seconds": time.perf_counter() - began, "track": result.provenance.timings.track}))
    else:
        pipe = Pipeline.from_pretrained(folder / "gar", None, device="cpu", progress=False, threads=threads)
        pipe.ask(clip, "What is <object>?", tracks=truth, frames=2, max_new_tokens=1)  # warm-up
        began = time.perf_counter()
        answer = pipe.ask(clip, "What is <object>?", tracks=truth, frames=8, max_new_tokens=1)
        t = answer.provenance.timings
        seconds = time.perf_counter() - began
        tokens = GenerationSettings(min_new_tokens=32)
        decoding = pipe.ask(clip, "What is <object>?", tracks=truth, frames=1, max_new_tokens=32, generation=tokens)
        print(json.dumps({"seconds": seconds, "encode": t.encode, "prefill": t.generate,
                          "decode32": decoding.provenance.timings.generate,
                          "prompt_tokens": answer.provenance.settings["prompt_tokens"]}))
    """
)

#: (label, stage, threads ("stage" = the pipeline's choice), OMP_WAIT_POLICY or None, busy core)
CONFIGS = [
    ("tracking, 2 threads (torch's default here)", "track", "2", None, False),
    ("tracking, 1 thread (per-stage choice)", "track", "stage", None, False),
    ("tracking, 2 threads, busy core", "track", "2", None, True),
    ("tracking, 2 threads, OMP_WAIT_POLICY=PASSIVE, busy core", "track", "2", "PASSIVE", True),
    ("tracking, 1 thread (per-stage choice), busy core", "track", "stage", None, True),
    ("GAR prefill, 1 thread", "gar", "1", None, False),
    ("GAR prefill, 2 threads (per-stage choice)", "gar", "stage", None, False),
    ("GAR prefill, 2 threads, OMP_WAIT_POLICY=PASSIVE", "gar", "2", "PASSIVE", False),
    ("GAR prefill, 1 thread, busy core", "gar", "1", None, True),
    ("GAR prefill, 2 threads (per-stage choice), busy core", "gar", "stage", None, True),
]


def prepare(folder: Path, frames: int) -> None:
    from garvideo.testing.clips import moving_object_clip
    from garvideo.testing.gar import build_tiny_gar_checkpoint
    from garvideo.testing.sam2 import build_tiny_sam2_checkpoint
    from garvideo.tracking import Track, save_tracks

    build_tiny_gar_checkpoint(folder / "gar", seed=0)
    build_tiny_sam2_checkpoint(folder / "sam2", seed=0)
    clip = moving_object_clip(folder / "clip.mp4", num_frames=frames, fps=10, size=(320, 240))
    obj = clip.objects[0]
    save_tracks(folder / "truth.json", [Track.from_masks("object", dict(enumerate(obj.masks)), times=clip.times)])


def run_one(folder: Path, stage: str, threads: str, policy: str | None, busy: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, stage, threads, str(folder)], capture_output=True, text=True, env=env
        )
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if done.returncode != 0:
        raise SystemExit(f"{stage} with {threads} thread(s) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="clip length (tracked frames)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["track", "gar"], help="one stage only")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    configs = [c for c in CONFIGS if args.only in (None, c[1])]
    runs: dict[str, list[dict]] = {c[0]: [] for c in configs}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="garvideo-threads-") as tmp:
        folder = Path(tmp)
        prepare(folder, args.frames)
        for repeat in range(args.repeats):
            for label, stage, threads, policy, busy in configs:  # in turns: a load change hits every row alike
                runs[label].append(run_one(folder, stage, threads, policy, busy))
                print(f"{repeat + 1}/{args.repeats} {label}: {json.dumps(runs[label][-1])}", file=sys.stderr)
            loads.append(os.getloadavg()[0])

    lines = [
        "| configuration | wall s (median) | runs s | stage s (median) | GAR: 32 tokens on 1 frame, s (median) |",
        "|---|---:|---|---:|---:|",
    ]
    for label, stage, *_ in configs:
        walls = [r["seconds"] for r in runs[label]]
        key = "track" if stage == "track" else "prefill"
        decode = f"{statistics.median(r['decode32'] for r in runs[label]):.2f}" if stage == "gar" else "-"
        lines.append(
            f"| {label} | {statistics.median(walls):.2f} | {', '.join(f'{w:.1f}' for w in walls)} | "
            f"{statistics.median(r[key] for r in runs[label]):.2f} | {decode} |"
        )
    tokens = next((r[0]["prompt_tokens"] for label, r in runs.items() if label.startswith("GAR")), None)
    import torch

    report = (
        f"`python bench/threads.py` ({cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, no GPU; "
        f"the machine was shared with other jobs: 1-minute load average {min(loads):.1f}-{max(loads):.1f} "
        f"between rounds). Tiny random models; tracking: {args.frames} frames of a 320x240 clip "
        f"(stage s = the pipeline's track time, decoding excluded); GAR: one ask over 8 frames "
        f"({tokens} prompt tokens), 1 new token (stage s = prefill), then 32 tokens over 1 frame (the generate "
        f"stage: prefill of ~600 tokens and 31 decoding steps). Each configuration in its own "
        f"process, {args.repeats} rounds in turns, medians.\n\n" + "\n".join(lines)
    )
    print(report)
    if args.write:
        write_section(SECTION, report)


if __name__ == "__main__":
    main()
