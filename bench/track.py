"""Benchmark of the SAM2 tracker: frames per second and peak memory at two video lengths.

Each measurement runs in its own Python process so its peak RSS (the
``ru_maxrss`` high-water mark) is its own. Models have random weights (no
download): speed and memory depend on the architecture, not on the weights.

- ``tiny``: the tiny test model of :mod:`garvideo.testing.sam2` (128 px input);
  shows the tracker's own overhead (resizing frames, post-processing masks,
  RLE), as the frames come from an in-memory source: no video is decoded.
- ``hiera-tiny``: the real ``facebook/sam2.1-hiera-tiny`` architecture
  (1024 px input, 39 M parameters): realistic per-frame cost.

One object is marked with a mask in the middle of a 640x360 clip and tracked
both ways over every frame.

    python bench/track.py                 # print a table
    python bench/track.py --write         # also update "## Tracking" in bench/RESULTS.md
    python bench/track.py --models tiny --lengths 50 500
    python bench/track.py --shared --write  # say so when other jobs shared the machine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

SECTION = "## Tracking"

DEFAULT_LENGTHS = {"tiny": (100, 1000), "hiera-tiny": (4, 20)}

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch

    model_kind, length, threads, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(threads)
    from transformers import Sam2VideoConfig, Sam2VideoModel
    from garvideo.testing.sam2 import MovingSquareSource, sam2_processor, tiny_sam2_config
    from garvideo.tracking import RegionPrompt, Sam2Tracker

    torch.manual_seed(0)
    if model_kind == "tiny":
        config, image_size = tiny_sam2_config(), 128
    else:
        config, image_size = Sam2VideoConfig(), 1024
    from garvideo.devices import resolve_device
    from garvideo.tracking.sam2 import sam2_precision

    torch_device = resolve_device(device)
    weights, autocast = sam2_precision(None, torch_device)  # as Sam2Tracker.from_pretrained chooses
    model = Sam2VideoModel(config).eval().to(torch_device, weights)
    tracker = Sam2Tracker(model, sam2_processor(image_size), model_id=model_kind, autocast_dtype=autocast)
    source = MovingSquareSource(length, height=360, width=640, side=80)
    prompt = RegionPrompt.from_mask("square", source.square_mask(length // 2), length // 2)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    on_gpu = torch_device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    [track] = tracker.track(source, [prompt], progress=False)
    seconds = time.perf_counter() - began
    assert len(track) == length
    stats = tracker.last_stats
    print(json.dumps({
        "model": model_kind, "frames": length, "seconds": seconds,
        "fps": length / seconds,
        "rss_before": rss_before,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cuda_peak": torch.cuda.max_memory_allocated() if on_gpu else None,
        "state_peak": stats.peak_state_bytes, "outputs_peak": stats.peak_outputs_held,
        "frames_read": stats.frames_read, "precision": tracker.precision,
    }))
    """
)


def run_one(model: str, length: int, threads: int, device: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, model, str(length), str(threads), device],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark run {model} x {length} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def table(rows: list[dict]) -> str:
    gpu = any(r["cuda_peak"] is not None for r in rows)
    lines = [
        "| model | precision | frames | seconds | frames/s | peak RSS MiB | RSS growth while tracking MiB | "
        "SAM2 session state peak MiB |" + (" peak GPU memory MiB |" if gpu else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if gpu else ""),
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['frames']} | {r['seconds']:.1f} | {r['fps']:.2f} | {_mib(r['rss_peak'])} | "
            f"{_mib(r['rss_peak'] - r['rss_before'])} | {r['state_peak'] / 2**20:.1f} |"
            + (f" {_mib(r['cuda_peak'])} |" if gpu else "")
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "hiera-tiny"], choices=["tiny", "hiera-tiny"])
    parser.add_argument("--lengths", nargs=2, type=int, help="the two clip lengths (default per model)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda or auto (on CUDA float32 under bfloat16 autocast, as the tracker)"
    )
    parser.add_argument("--shared", action="store_true", help="say that other jobs ran on the machine meanwhile")
    parser.add_argument("--write", action="store_true", help="update the Tracking section of bench/RESULTS.md")
    args = parser.parse_args()

    rows = []
    for model in args.models:
        for length in args.lengths or DEFAULT_LENGTHS[model]:
            row = run_one(model, length, args.threads, args.device)
            print(json.dumps(row), flush=True)
            rows.append(row)
    from garvideo.devices import resolve_device

    device = resolve_device(args.device)
    machine = describe_machine(device, args.threads)
    if args.shared:
        machine += "; the machine was shared with other jobs"
    report = (
        f"Machine: {machine}. `python bench/track.py` — one object marked with a mask mid-clip on a 640x360 "
        f"clip, tracked both ways over every frame; random weights (speed and memory depend on the architecture "
        f"only). `tiny` is the 128 px test model; `hiera-tiny` the real sam2.1-hiera-tiny architecture at 1024 px. "
        f"Peak RSS is each run's own process high-water mark; the session state is what the SAM2 inference "
        f"session holds at its fullest (memories, object pointers, frames).\n\n{table(rows)}"
    )
    print(report)
    if args.write:
        # a block per device, so a GPU run adds its table beside the CPU one instead of replacing it
        import torch

        card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        write_section(SECTION, report, block=f"### {card}")


if __name__ == "__main__":
    main()
