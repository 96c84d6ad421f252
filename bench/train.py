"""Time fine-tuning steps: step time, tokens/s and peak memory, with and without gradient checkpointing.

Each step is ``garvideo.train``'s own optimizer step (``Trainer.step``: LoRA on the language model, the mask
embedding trained, the vision tower frozen, AdamW, the loss on the answer's tokens) over batches of video
examples: ``--frames`` frames each (one tile per frame, one region replayed on every frame, describe's
prompt) and a 24-token caption. Random weights: the timings are the shapes', the loss means nothing.

- default: the tiny GAR (``garvideo.testing.gar.random_gar``: 64-wide, 2-layer language model and vision
  tower, 448-pixel tiles, so a frame is the real 256 tokens + a 256-token replay) on the CPU.
- ``--full-size``: GAR-1B's shapes (``bench/pipeline.py``'s), built in memory on the device, bfloat16 with
  float32 trained weights. Meant for a GPU: ``bench/gpu.sh`` runs it with 16 frames, batches of 1, 4 and 8.

Peak memory: on CUDA the allocator's peak during the timed steps; on a CPU the process's peak resident
memory during them (Linux: ``VmHWM``, reset before each configuration), which includes the model.

    python bench/train.py                                               # tiny, CPU, 4 frames, batches 1 and 4
    python bench/train.py --full-size --device cuda --frames 16 --batch-sizes 1 4 8 --write
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

from garvideo.model import CAPTION_INSTRUCTION
from garvideo.pipeline import Pipeline
from garvideo.testing.gar import random_gar
from garvideo.train import TrainConfig
from garvideo.train.checkpoints import RunFolder
from garvideo.train.distributed import Ranks
from garvideo.train.examples import with_answer
from garvideo.train.trainer import Trainer

SECTION = "## Fine-tuning"
CAPTION = "The brown dog runs across the green field and catches a red ball near the white house"


def _examples(gar, count: int, frames: int):
    """``count`` video examples of ``frames`` frames (each its own picture and mask), describe's prompt + caption."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(count):
        images, masks = [], []
        for f in range(frames):
            images.append(rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8))
            mask = np.zeros((240, 320), bool)
            mask[20 + 4 * f : 140 + 2 * k, 30 + 5 * f : 200] = True
            masks.append(mask)
        prompt = gar.prepare_video(images, {"thing": masks}, CAPTION_INSTRUCTION)
        out.append(with_answer(gar.processor, prompt, CAPTION))
    return out


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
        except OSError:
            pass


def _peak_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure(gar, checkpointing: bool, batch_size: int, frames: int, repeats: int) -> dict:
    """Median step time, tokens/s and peak memory of ``repeats`` optimizer steps (after one warm-up step)."""
    device = gar.model.device
    config = TrainConfig(model="in memory", gradient_checkpointing=checkpointing, batch_size=batch_size, warmup=0.0)
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(Pipeline(gar, None, progress=False, detector=None), config, RunFolder(folder), Ranks(), False)
        trainer.setup()
        items = _examples(gar, batch_size, frames)
        trainer.lengths = [(item.prompt_tokens, item.answer_tokens) for item in items]
        indices = [list(range(batch_size))]
        tokens = sum(sum(pair) for pair in trainer.lengths)
        try:
            trainer.step([items], indices, 0, repeats + 1)  # warm-up
            _peak_reset(device)
            times = []
            for step in range(1, repeats + 1):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                began = time.perf_counter()
                trainer.step([items], indices, step, repeats + 1)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - began)
        except torch.OutOfMemoryError:
            return {"checkpointing": checkpointing, "batch": batch_size, "tokens": tokens, "oom": True}
        finally:
            trainer.optimizer.zero_grad(set_to_none=True)
            trainer.peft_model.unload()  # the base model again, for the next configuration
            if device.type == "cuda":
                torch.cuda.empty_cache()  # what an out-of-memory step held goes back before the next one
        seconds = statistics.median(times)
        return {
            "checkpointing": checkpointing,
            "batch": batch_size,
            "tokens": tokens,
            "step_s": seconds,
            "tokens_per_s": tokens / seconds,
            "peak_mib": _peak_mib(device),
            "trained": sum(p.numel() for p in trainer.trained.values()),
        }


def table(rows: list[dict]) -> str:
    lines = [
        "| gradient checkpointing | batch | tokens per step | step s | tokens/s | peak memory MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        what = "on" if row["checkpointing"] else "off"
        if row.get("oom"):
            lines.append(f"| {what} | {row['batch']} | {row['tokens']} | out of memory | | |")
            continue
        peak = f"{row['peak_mib']:.0f}" if row["peak_mib"] is not None else "n/a"
        lines.append(
            f"| {what} | {row['batch']} | {row['tokens']} | {row['step_s']:.3f} | {row['tokens_per_s']:.0f} | {peak} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on CUDA, float32 on a CPU")
    parser.add_argument("--full-size", action="store_true", help="GAR-1B's shapes (for a GPU)")
    parser.add_argument("--frames", type=int, default=4, help="frames per video example")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (after a warm-up)")
    parser.add_argument("--write", action="store_true", help=f"put the table in bench/RESULTS.md ({SECTION})")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.full_size:
        from pipeline import GAR_1B_TEXT, GAR_1B_VISION  # bench/pipeline.py: the one description of GAR-1B's shapes

        gar = random_gar(text=GAR_1B_TEXT, vision=GAR_1B_VISION, device=args.device, dtype=args.dtype)
    else:
        gar = random_gar(device=args.device, dtype=args.dtype)
    rows = []
    for batch_size in args.batch_sizes:
        for checkpointing in (False, True):
            rows.append(measure(gar, checkpointing, batch_size, args.frames, args.repeats))
            print(rows[-1], flush=True)
    shapes = "GAR-1B shapes" if args.full_size else "tiny GAR (64 wide, 2 layers; 448-pixel tiles)"
    machine = describe_machine(gar.model.device)
    trained = next((row["trained"] for row in rows if "trained" in row), 0)
    heading = f"### {shapes}, {gar.model.device.type}, {str(gar.model.dtype).removeprefix('torch.')}"
    body = (
        f"`python bench/train.py{' --full-size' if args.full_size else ''} --device {args.device} --frames {args.frames}"
        f" --batch-sizes {' '.join(map(str, args.batch_sizes))} --repeats {args.repeats}` on {machine}. One optimizer"
        f" step of `garvideo train` (LoRA rank 16 on every linear layer of the language model, the mask embedding"
        f" trained: {trained:,} trained weights) over a batch of video examples of {args.frames} frames each"
        f" (describe's prompt, a 24-token caption); medians of {args.repeats} steps after a warm-up.\n\n{table(rows)}"
    )
    print(f"{heading}\n\n{body}")
    if args.write:
        write_section(SECTION, body, block=heading)


if __name__ == "__main__":
    main()
