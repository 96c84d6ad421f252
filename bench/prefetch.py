"""Benchmark of decode-ahead: SAM2 tracking a 720p clip with frames decoded in the tracker's thread or ahead.

The same clip, prompt and model are tracked in turns, in one process: with
``ahead=0`` (decoding in the tracker's thread, as before decode-ahead) and with
frames decoded ``ahead`` frames ahead in a background thread (what the pipeline
does). The object is boxed mid-clip, so half the frames are tracked forward
and half backward (the backward pass decodes a GOP chunk at a time, and
decode-ahead decodes the next chunk while one is tracked). Both give
the same tracks (checked). Models have random weights: speed depends on the
architecture only.

- ``tiny``: the 128 px test model (the tracker's own per-frame work: resizing
  720p frames, post-processing masks to 720p, RLE) -- on a CPU;
- ``--full-size``: the sam2.1-hiera-tiny architecture (1024 px), for a GPU.

Reported per mode: wall seconds, frames per second, the seconds the tracker
waited for frames (the pipeline's ``decode`` stage) and the seconds spent
decoding (in whichever thread).

    python bench/prefetch.py                    # print a table
    python bench/prefetch.py --write            # also update its device's block of "## Decode-ahead" in RESULTS.md
    python bench/prefetch.py --frames 60 --repeats 1 --device cuda --full-size
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from decode import make_clip  # bench/decode.py (scripts run from bench/)
from machine import describe as describe_machine  # bench/machine.py
from machine import write_section

SECTION = "## Decode-ahead"


def build_tracker(full_size: bool, device: str, folder: Path):
    import torch

    from garvideo.tracking import Sam2Tracker

    if not full_size:
        from garvideo.testing.sam2 import build_tiny_sam2_checkpoint

        return Sam2Tracker.from_pretrained(build_tiny_sam2_checkpoint(folder / "sam2"), device=device), "tiny (128 px)"
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from garvideo.devices import resolve_device
    from garvideo.testing.sam2 import sam2_processor
    from garvideo.tracking.sam2 import sam2_precision

    torch.manual_seed(0)
    torch_device = resolve_device(device)
    weights, autocast = sam2_precision(None, torch_device)
    model = Sam2VideoModel(Sam2VideoConfig()).eval().to(torch_device, weights)
    tracker = Sam2Tracker(model, sam2_processor(1024), model_id="hiera-tiny", autocast_dtype=autocast)
    return tracker, "sam2.1-hiera-tiny architecture (1024 px)"


def track_once(tracker, path: Path, ahead: int, prepare: bool) -> dict:
    from garvideo.devices import stage_threads, torch_threads
    from garvideo.pipeline.timed_source import TimedSource  # what Pipeline.track streams the tracker through
    from garvideo.tracking import RegionPrompt
    from garvideo.video import open_video

    with open_video(path) as video:
        middle = video.num_frames // 2
        width, height = video.width, video.height
        prompt = RegionPrompt.from_box("scenery", (width // 3, height // 3, 2 * width // 3, 2 * height // 3), middle)
        source = TimedSource(video, ahead=ahead, prepare=tracker.prepare if prepare else None)
        with torch_threads(stage_threads("track", tracker.device, None)):
            began = time.perf_counter()
            (track,) = tracker.track(source, [prompt], progress=False)
            wall = time.perf_counter() - began
    return {
        "wall": wall,
        "wait": source.seconds,
        "decode": source.work_seconds,
        "frames": len(track.frames),
        "rles": [f.rle["counts"] for f in track.frames],
    }


def run(args: argparse.Namespace) -> list[str]:
    import torch

    width, height = (int(v) for v in args.size.split("x"))
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    minutes = args.frames / args.fps / 60
    path = cache / f"prefetch_{width}x{height}_{args.fps}fps_{args.frames}f_gop{args.gop}.mp4"
    if not path.exists():
        make_clip(path, minutes, args.fps, width, height, gop=args.gop)
    with tempfile.TemporaryDirectory() as folder:
        tracker, model_name = build_tracker(args.full_size, args.device, Path(folder))
        track_once(tracker, path, 0, False)  # warm-up: first-call costs out of the comparison
        modes = {
            "in the tracker's thread": (0, False),
            f"{args.ahead} frames ahead (backward: a chunk), background thread": (args.ahead, False),
            "the same, and the frames' preprocessing in that thread (the pipeline's choice on a GPU)": (
                args.ahead,
                True,
            ),
        }
        runs: dict[str, list[dict]] = {mode: [] for mode in modes}
        for _ in range(args.repeats):
            for mode, (ahead, prepare) in modes.items():
                runs[mode].append(track_once(tracker, path, ahead, prepare))
                print(f"{mode}: {runs[mode][-1]['wall']:.2f} s", flush=True)
    first = next(iter(runs.values()))[0]
    same = all(r["rles"] == first["rles"] for rs in runs.values() for r in rs)
    frames = first["frames"]

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    rows = [
        "| decoding | wall s (median) | frames/s | waited for frames s | decode thread s | wall - waited s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in runs:
        wall, wait = median(mode, "wall"), median(mode, "wait")
        rows.append(
            f"| {mode} | {wall:.2f} | {frames / wall:.1f} | {wait:.2f} | {median(mode, 'decode'):.2f} | "
            f"{wall - wait:.2f} |"
        )
    baseline, *others = runs
    gains = ", ".join(f"{median(baseline, 'wall') / median(mode, 'wall'):.2f}x" for mode in others)
    threads = stage_thread_count(tracker.device)
    machine = describe_machine(tracker.device, threads)
    return [
        f"`python bench/prefetch.py{' --full-size' if args.full_size else ''}` ({time.strftime('%Y-%m-%d')}). "
        f"Machine: {machine}{'; the machine was shared with other jobs' if args.shared else ''}. "
        f"Model: {model_name}, random weights, {'float32' if tracker.dtype == torch.float32 else tracker.dtype}. "
        f"Clip: {width}x{height}, {args.fps} fps, {frames} frames, H.264 (GOP {args.gop}, B-frames); one box on frame "
        f"{frames // 2}, tracked forward to the end and backward to frame 0. Median of {args.repeats} runs of "
        "each, in turns, after one warm-up.",
        "",
        *rows,
        "",
        f"Speed against decoding in the tracker's thread: {gains}; tracks identical in every run: {same}. "
        "'decode thread s': decoding (and preprocessing where it runs there), overlapped or not; 'waited': the "
        "pipeline's decode stage.",
    ]


def stage_thread_count(device) -> int:
    from garvideo.devices import stage_threads

    return stage_threads("track", device, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--gop", type=int, default=30, help="keyframe interval (backward chunks end at keyframes)")
    parser.add_argument("--ahead", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-size", action="store_true", help="the sam2.1-hiera-tiny architecture")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "garvideo-bench"))
    parser.add_argument("--shared", action="store_true", help="say that other jobs shared the machine")
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in bench/RESULTS.md")
    args = parser.parse_args()
    text = "\n".join(run(args))
    print(text)
    if args.write:  # one block per kind of device, so a GPU run keeps the CPU figures and notes beside it
        import torch

        cuda = args.device.startswith("cuda") and torch.cuda.is_available()
        write_section(SECTION, text, block=f"### {torch.cuda.get_device_name() if cuda else 'CPU'}")


if __name__ == "__main__":
    main()
