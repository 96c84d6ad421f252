"""Benchmark of tracking several objects: 1, 4, 8 objects, batched vs one by one, plain vs compiled.

Every object is marked with a box on the clip's middle frame (as grounding marks them), so their memories
have the same shapes on every frame and the tracker batches their memory attention
(``Sam2Tracker.batch_objects``); ``one by one`` turns that off (one ``Sam2VideoModel.forward`` per object,
as transformers' own session runs them). ``compiled`` compiles the image encoder and memory attention
(``Sam2Tracker(compile=True)``). Each (objects, compiled) pair runs in its own process (its own
compilation): a warm-up track of the same clip per variant (where a compiled run compiles, for each length
its memories reach; reported apart), then
``--rounds`` timed tracks of the clip per variant, batched and one by one in turns so that a change in a
shared machine's load hits both; the table gives each one's median and every round. Models have random
weights (no download): speed depends on the architecture, not the weights.

    python bench/track_objects.py --models tiny --objects 1 4 8 --write       # CPU, batched vs one by one
    python bench/track_objects.py --device cuda --models hiera-tiny --size 1280x720 --objects 1 4 \\
        --variants batched --compile both --write                            # GPU: plain vs compiled
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

SECTION = "## Tracking several objects"

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import torch

    model_kind, length, threads, device, objects, variants, compiled, backend, size, rounds = sys.argv[1:11]
    length, objects, compiled, rounds = int(length), int(objects), compiled == "1", int(rounds)
    variants = variants.split(",")
    width, height = (int(v) for v in size.split("x"))
    torch.set_num_threads(int(threads))
    from transformers import Sam2VideoConfig, Sam2VideoModel
    from garvideo.devices import resolve_device
    from garvideo.testing.sam2 import MovingSquareSource, sam2_processor, tiny_sam2_config
    from garvideo.tracking import RegionPrompt, Sam2Tracker
    from garvideo.tracking.sam2 import sam2_precision

    torch.manual_seed(0)
    config, image_size = (tiny_sam2_config(), 128) if model_kind == "tiny" else (Sam2VideoConfig(), 1024)
    torch_device = resolve_device(device)
    weights, autocast = sam2_precision(None, torch_device)  # as Sam2Tracker.from_pretrained chooses
    model = Sam2VideoModel(config).eval().to(torch_device, weights)
    options = {} if backend == "default" else {"backend": backend}
    tracker = Sam2Tracker(
        model, sam2_processor(image_size), model_id=model_kind, autocast_dtype=autocast,
        compile=compiled, compile_options=options,
    )

    def prompts(length):
        side = min(width, height) // 4
        boxes = [
            ((k * side // 2) % (width - side), (k * side // 3) % (height - side)) for k in range(objects)
        ]
        return [RegionPrompt.from_box(f"o{k}", (x, y, x + side, y + side), length // 2) for k, (x, y) in enumerate(boxes)]

    def run(length):
        source = MovingSquareSource(length, height=height, width=width, side=min(width, height) // 4)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        tracks = tracker.track(source, prompts(length), progress=False)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        assert len(tracks) == objects and all(len(t) == length for t in tracks)
        return time.perf_counter() - began

    warmup = {}
    for variant in variants:  # warm-up over the same clip: a compiled run compiles here, for every memory length
        tracker.batch_objects = variant == "batched"
        warmup[variant] = run(length)
    seconds = {variant: [] for variant in variants}
    for _ in range(rounds):  # the variants in turns, so a change in the machine's load hits both
        for variant in variants:
            tracker.batch_objects = variant == "batched"
            seconds[variant].append(run(length))
            stats = tracker.last_stats
            assert (stats.batched_object_steps > 0) == (variant == "batched" and objects > 1)
    print(json.dumps({
        "model": model_kind, "frames": length, "objects": objects, "compiled": compiled,
        "seconds": seconds, "warmup_seconds": warmup, "precision": tracker.precision,
    }))
    """
)


def run_one(
    model: str,
    length: int,
    threads: int,
    device: str,
    objects: int,
    variants: list[str],
    compiled: bool,
    backend: str,
    size: str,
    rounds: int,
) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    argv = [model, str(length), str(threads), device, str(objects), ",".join(variants), str(int(compiled))]
    argv += [backend, size, str(rounds)]
    done = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run {argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = [
        "| model | precision | objects | compiled | memory attention | frames | seconds (median) | frames/s | "
        "object-frames/s | vs one by one | warm-up s | every round s |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        medians = {variant: statistics.median(times) for variant, times in row["seconds"].items()}
        for variant, times in row["seconds"].items():
            seconds, frames = medians[variant], row["frames"]
            ratio = f"{medians['one-by-one'] / seconds:.2f}x" if "one-by-one" in medians else "-"
            lines.append(
                f"| {row['model']} | {row['precision']} | {row['objects']} | {'yes' if row['compiled'] else 'no'} | "
                f"{variant} | {frames} | {seconds:.2f} | {frames / seconds:.2f} | "
                f"{frames * row['objects'] / seconds:.2f} | {ratio} | {row['warmup_seconds'][variant]:.1f} | "
                f"{', '.join(format(t, '.2f') for t in times)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny"], choices=["tiny", "hiera-tiny"])
    parser.add_argument("--objects", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--frames", type=int, default=30, help="clip length (default 30)")
    parser.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    parser.add_argument("--variants", nargs="+", default=["batched", "one-by-one"], choices=["batched", "one-by-one"])
    parser.add_argument("--compile", choices=["off", "on", "both"], default="off", help="plain, compiled or both")
    parser.add_argument("--compile-backend", default="default", help="torch.compile backend (default: inductor)")
    parser.add_argument("--rounds", type=int, default=3, help="timed tracks per variant, the variants in turns")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA: bfloat16 autocast, as the tracker)")
    parser.add_argument("--note", default="", help="added to the machine line (e.g. the load of a shared machine)")
    parser.add_argument("--write", action="store_true", help="update the section of bench/RESULTS.md")
    args = parser.parse_args()

    rows = []
    for model in args.models:
        for objects in args.objects:
            variants = ["batched"] if objects == 1 else args.variants  # one object: never batched
            for compiled in {"off": [False], "on": [True], "both": [False, True]}[args.compile]:
                row = run_one(
                    model,
                    args.frames,
                    args.threads,
                    args.device,
                    objects,
                    variants,
                    compiled,
                    args.compile_backend,
                    args.size,
                    args.rounds,
                )
                print(json.dumps(row), flush=True)
                rows.append(row)
    from garvideo.devices import resolve_device

    machine = describe_machine(resolve_device(args.device), args.threads) + (f"; {args.note}" if args.note else "")
    report = (
        f"Machine: {machine}. `python bench/track_objects.py` — objects boxed on the middle frame of a "
        f"{args.size} clip of {args.frames} frames, tracked both ways; random weights. `tiny` is the 128 px test "
        f"model, `hiera-tiny` the sam2.1-hiera-tiny architecture at 1024 px. Frames/s counts video frames, "
        f"object-frames/s frames times objects; the warm-up is a first track of the same clip (a compiled run "
        f"compiles there).\n\n{table(rows)}"
    )
    print(report)
    if args.write:
        block = f"### {', '.join(args.models)}, {resolve_device(args.device).type}, {args.size}"
        write_section(SECTION, report, block=block)


if __name__ == "__main__":
    main()
