"""Benchmark of the whole pipeline for one region: time per stage of ``Pipeline.describe`` and ``Pipeline.ask``.

A generated clip (``garvideo.testing.clips.moving_object_clip``: a textured
object crossing a textured background) with one region marked by a box on
its first frame: ``Pipeline.track`` tracks it with SAM2 over every frame;
``Pipeline.describe`` describes it overall and window by window with GAR and
``Pipeline.ask`` questions it, both over the clip's exact masks passed as
``tracks=`` (random SAM2 weights lose the object on most frames, which would
leave GAR only a handful of frames: not what a real run costs). The stage
times are the pipeline's own (``provenance.timings``: decode, track, encode,
generate); "wall" is the whole call, which also holds mask decoding and
prompt preparation. Every GAR prompt generates exactly ``--new-tokens``
tokens (EOS suppressed), so runs compare.

Models have RANDOM weights (nothing is downloaded): speed depends on the
architecture, not on the weights, and the text is noise.

- default: the tiny test checkpoints of ``garvideo.testing`` (GAR with a
  64-wide, 2-layer language model and 448-pixel tiles, so prompts have the
  real 256 tokens per frame; SAM2 at 128 px), written to a temporary folder
  and loaded with ``Pipeline.from_pretrained`` as users load released ones.
  Shows the pipeline's own overhead.
- ``--full-size``: the real architectures, built in memory with random
  weights (a GAR-1B checkpoint would be 6 GB of float32 to write and read
  back, which is not what is measured): GAR-1B = Perception-LM-1B shapes
  (Llama-3.2-1B language model: 2048 wide, 16 layers, 32 heads, 8 KV
  heads, 128,256-token vocabulary; PE-Core-L/14 vision tower at 448 px:
  1024 wide, 23 layers; 2x2 pooling: 256 tokens per frame) and
  sam2.1-hiera-tiny (transformers' default ``Sam2VideoConfig``, 1024 px).
  The tokenizer is the tiny one: ids it lacks decode to nothing, which
  changes no timing.

    python bench/pipeline.py                      # tiny models, print the table
    python bench/pipeline.py --full-size --write  # real architectures; update bench/RESULTS.md
    python bench/pipeline.py --full-size --device cuda --write   # on a GPU (bfloat16)

``--write`` replaces this configuration's block (size, device, dtype) in the
``## Pipeline`` section of bench/RESULTS.md and leaves the other blocks and
sections alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: never reach for the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTION = "## Pipeline"
QUESTION = "What is <object> doing?"

#: GAR-1B's shapes (Perception-LM-1B): the language model, then the vision tower.
GAR_1B_TEXT = {
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
}
GAR_1B_VISION = {"embed_dim": 1024, "depth": 23, "num_heads": 16}


@dataclass(frozen=True)
class Plan:
    """What one configuration runs: the clip, the sampling and the generation length."""

    frames: int  # clip length
    fps: int
    size: tuple[int, int]
    describe_frames: int  # frames for the overall description
    frames_per_window: int
    window: float | None  # seconds; None = the pipeline's adaptive length
    ask_frames: int
    new_tokens: int
    warmup: int
    repeats: int


PLANS = {
    # 3 s at 12 fps: 36 frames tracked, an overall description and three 1 s windows.
    "tiny": Plan(36, 12, (320, 240), 8, 4, None, 8, 32, warmup=1, repeats=3),
    # 2 s at 4 fps: 8 frames tracked, one overall description and one window, a question over 4 frames.
    "full": Plan(8, 4, (320, 240), 4, 2, 2.0, 4, 8, warmup=0, repeats=1),
}


# ---------------------------------------------------------------------- models


def tiny_pipeline(folder: Path, device: str, dtype: str):
    from garvideo.pipeline import Pipeline
    from garvideo.testing.gar import build_tiny_gar_checkpoint
    from garvideo.testing.sam2 import build_tiny_sam2_checkpoint

    gar = build_tiny_gar_checkpoint(folder / "gar-tiny", seed=0)
    sam2 = build_tiny_sam2_checkpoint(folder / "sam2-tiny", seed=0)
    return Pipeline.from_pretrained(gar, sam2, device=device, dtype=dtype, progress=False)


def full_size_pipeline(folder: Path, device: str, dtype: str):
    """GAR-1B-sized and sam2.1-hiera-tiny-sized models with random weights, built in memory."""
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from garvideo.devices import resolve_device, resolve_dtype
    from garvideo.pipeline import Pipeline
    from garvideo.testing.gar import random_gar
    from garvideo.testing.sam2 import sam2_processor
    from garvideo.tracking import Sam2Tracker

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    gar = random_gar(text=GAR_1B_TEXT, vision=GAR_1B_VISION, device=torch_device, dtype=torch_dtype)
    gar.model_id = "GAR-1B-sized, random weights"
    sam2_model = Sam2VideoModel(Sam2VideoConfig()).eval().to(torch_device, torch_dtype)
    tracker = Sam2Tracker(sam2_model, sam2_processor(1024), model_id="sam2.1-hiera-tiny-sized, random weights")
    return Pipeline(gar, tracker, progress=False)


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------- measuring


class TokenCounter:
    """Counts the prompt and new tokens of every GAR generate call of one pipeline (this instance only)."""

    def __init__(self, gar) -> None:
        self.prompts: list[int] = []
        self.new: list[int] = []
        original = gar.generate

        def generate(*args, **kwargs):
            results = original(*args, **kwargs)
            self.prompts.extend(r.prompt_tokens for r in results)
            self.new.extend(len(r.token_ids) for r in results)
            return results

        gar.generate = generate  # an attribute of this object: the GAR class is untouched

    def take_with(self, frames: int) -> tuple[int, int, int, int]:
        """(prompts, ``frames``, prompt tokens, new tokens) since the last take."""
        out = (len(self.prompts), frames, sum(self.prompts), sum(self.new))
        self.prompts.clear()
        self.new.clear()
        return out


def truth_tracks(clip):
    from garvideo.tracking import Track

    obj = clip.objects[0]
    return [Track.from_masks("object", {i: obj.masks[i] for i in range(clip.num_frames)}, times=clip.times)]


def run_once(pipe, counter: TokenCounter, clip, plan: Plan) -> list[dict]:
    """Track the boxed region, then describe and question it over the clip's exact masks."""
    from garvideo.model import GenerationSettings
    from garvideo.pipeline import StageTimings
    from garvideo.tracking import RegionPrompt

    x1, y1, x2, y2 = clip.boxes[0]
    region = RegionPrompt.from_box("object", (x1, y1, x2 + 1, y2 + 1), 0)
    fixed = GenerationSettings(min_new_tokens=plan.new_tokens)  # every text this long
    # Random SAM2 weights lose the object on most frames, which would leave GAR only a few frames to look at;
    # GAR gets the exact masks instead (as a working tracker would give), through the same public API.
    tracks = truth_tracks(clip)

    began = time.perf_counter()
    tracked = pipe.track(clip.path, [region])
    rows = [row("track", tracked.provenance.timings, time.perf_counter() - began, len(tracked.tracks[0]), 0, 0, 0, 0)]

    began = time.perf_counter()
    described = pipe.describe(
        clip.path,
        tracks=tracks,
        frames=plan.describe_frames,
        frames_per_window=plan.frames_per_window,
        window=plan.window,
        max_new_tokens=plan.new_tokens,
        generation=fixed,
    )
    wall = time.perf_counter() - began
    timeline = described.region("object")
    gar_frames = len(timeline.frames) + sum(len(w.frames) for w in timeline.windows)
    rows.append(row("describe", described.provenance.timings, wall, 0, *counter.take_with(gar_frames)))

    began = time.perf_counter()
    answer = pipe.ask(
        clip.path,
        QUESTION,
        tracks=tracks,
        frames=plan.ask_frames,
        max_new_tokens=plan.new_tokens,
        generation=fixed,
    )
    wall = time.perf_counter() - began
    rows.append(row("ask", answer.provenance.timings, wall, 0, *counter.take_with(len(answer.provenance.frames))))

    total = StageTimings(*(sum(r[k] for r in rows) for k in ("decode", "track", "encode", "generate")))
    rows.append(
        row(
            "all three",
            total,
            sum(r["wall"] for r in rows),
            rows[0]["tracked"],
            sum(r["prompts"] for r in rows),
            sum(r["gar_frames"] for r in rows),
            sum(r["prompt_tokens"] for r in rows),
            sum(r["new_tokens"] for r in rows),
        )
    )
    return rows


def row(call, timings, wall, tracked, prompts, gar_frames, prompt_tokens, new_tokens) -> dict:
    return {
        "call": call,
        "tracked": tracked,
        "prompts": prompts,
        "gar_frames": gar_frames,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "decode": timings.decode,
        "track": timings.track,
        "encode": timings.encode,
        "generate": timings.generate,
        "stages": timings.total,
        "wall": wall,
    }


def median_rows(runs: list[list[dict]]) -> list[dict]:
    """Per call, the median of each time over the measured runs (counts are the same in every run)."""
    out = []
    for position, first in enumerate(runs[0]):
        merged = dict(first)
        for key in ("decode", "track", "encode", "generate", "stages", "wall"):
            merged[key] = statistics.median(run[position][key] for run in runs)
        out.append(merged)
    return out


# ---------------------------------------------------------------------- reporting


def table(rows: list[dict]) -> str:
    lines = [
        (
            "| call | frames tracked | GAR prompts | frames to GAR | prompt tokens | new tokens | decode s | track s | "
            "encode s | generate s | stages s | wall s | tracking frames/s | new tokens/s |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tracking = f"{r['tracked'] / r['track']:.2f}" if r["tracked"] and r["track"] > 0 else "-"
        tokens = f"{r['new_tokens'] / r['generate']:.1f}" if r["generate"] > 0 else "-"
        lines.append(
            f"| {r['call']} | {r['tracked'] or '-'} | {r['prompts'] or '-'} | {r['gar_frames'] or '-'} | "
            f"{r['prompt_tokens'] or '-'} | {r['new_tokens'] or '-'} | {r['decode']:.3f} | {r['track']:.3f} | {r['encode']:.3f} | {r['generate']:.3f} | "
            f"{r['stages']:.3f} | {r['wall']:.3f} | {tracking} | {tokens} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="real architectures (random weights) instead of tiny")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (CUDA when present)")
    parser.add_argument(
        "--dtype", default="auto", help="float32, bfloat16, float16 or auto (bf16 on CUDA, fp32 on CPU)"
    )
    parser.add_argument("--frames", type=int, help="clip length in frames (default: 36 tiny, 8 full-size)")
    parser.add_argument("--gar-frames", type=int, help="frames for the overall description and the question")
    parser.add_argument("--new-tokens", type=int, help="tokens generated per GAR prompt (default: 32 tiny, 8 full)")
    parser.add_argument("--repeats", type=int, help="measured runs, medians reported (default: 3 tiny, 1 full)")
    parser.add_argument("--warmup", type=int, help="unreported runs first (default: 1 tiny, 0 full-size)")
    parser.add_argument("--write", action="store_true", help="update this configuration's block in bench/RESULTS.md")
    args = parser.parse_args()

    from garvideo.devices import resolve_device
    from garvideo.testing.clips import moving_object_clip

    kind = "full" if args.full_size else "tiny"
    plan = PLANS[kind]
    overrides = {
        "frames": args.frames,
        "describe_frames": args.gar_frames,
        "ask_frames": args.gar_frames,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "warmup": args.warmup,
    }
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory(prefix="garvideo-bench-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        build = full_size_pipeline if args.full_size else tiny_pipeline
        pipe = build(folder, args.device, args.dtype)
        built = time.perf_counter() - began
        counter = TokenCounter(pipe.gar)
        clip = moving_object_clip(folder / "clip.mp4", num_frames=plan.frames, fps=plan.fps, size=plan.size)
        gar_params, sam2_params = parameters(pipe.gar.model), parameters(pipe.tracker.model)
        print(
            f"{kind}: GAR {gar_params / 1e6:.1f} M parameters, SAM2 {sam2_params / 1e6:.1f} M, "
            f"{pipe.gar.info.dtype} on {pipe.gar.info.device}; built in {built:.1f} s",
            file=sys.stderr,
        )
        for number in range(plan.warmup):
            run_once(pipe, counter, clip, plan)
            print(f"warm-up run {number + 1} done", file=sys.stderr)
        runs = []
        for number in range(plan.repeats):
            runs.append(run_once(pipe, counter, clip, plan))
            print(f"run {number + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
        rows = median_rows(runs)

    models = (
        f"GAR-1B architecture ({gar_params / 1e9:.2f} B parameters) and sam2.1-hiera-tiny architecture "
        f"({sam2_params / 1e6:.0f} M), RANDOM weights built in memory"
        if args.full_size
        else f"tiny random test checkpoints (GAR {gar_params / 1e6:.1f} M parameters with 448 px tiles, "
        f"SAM2 {sam2_params / 1e6:.1f} M at 128 px), loaded from a temporary folder"
    )
    window = f"{plan.window:g} s windows" if plan.window else "adaptive windows"
    measured = (
        f"median of {plan.repeats} runs after {plan.warmup} warm-up run(s)"
        if plan.repeats > 1
        else f"one run after {plan.warmup} warm-up run(s)"
    )
    dtype = pipe.gar.info.dtype
    heading = (
        f"{'full-size architectures, random weights' if args.full_size else 'tiny models'}, {device.type}, {dtype}"
    )
    command = "python " + " ".join(["bench/pipeline.py", *(a for a in sys.argv[1:] if a != "--write")])
    peak = ""
    if device.type == "cuda":
        import torch

        peak = f" Peak GPU memory allocated: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB."
    report = (
        f"`{command}` ({datetime.date.today().isoformat()}). Machine: {describe_machine(device)}.{peak} "
        f"Models: {models}, {dtype}. "
        f"Clip: {plan.size[0]}x{plan.size[1]}, {plan.frames} frames at {plan.fps} fps, one region boxed on frame 0. "
        f"track: SAM2 over every frame; describe (over the clip's exact masks): {plan.describe_frames} frames for "
        f"the overall description, {window} with {plan.frames_per_window} frames each; ask: {plan.ask_frames} "
        f"frames; every prompt generates {plan.new_tokens} tokens; {measured}.\n\n{table(rows)}"
    )
    print(report)
    if args.write:
        write_section(SECTION, report, block=f"### {heading}")


if __name__ == "__main__":
    main()
