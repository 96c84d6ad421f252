"""Time GAR's stages (encode = vision tower + projector + replay, generate = prefill + decode).

Builds a random GAR checkpoint with ``garvideo.testing.gar`` (tiny by default,
any shape with ``--size key=value``), then times one image description and
one video question (F frames, one tile each, R regions) with a fixed number
of new tokens. Random weights: the timings are real for the shapes, the text
is not.

    python bench/model.py                       # tiny shapes, CPU
    python bench/model.py --device cuda --dtype bf16 --frames 16 \
        --size hidden_size=2048 --size num_hidden_layers=16 ...   # larger shapes where a GPU is
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)

import numpy as np

from garvideo.model import GAR, GenerationSettings
from garvideo.testing.gar import build_tiny_gar_checkpoint


def _scene(width: int, height: int, frames: int, regions: int):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    images, masks = [], [[] for _ in range(regions)]
    for f in range(frames):
        images.append(np.roll(base, 4 * f, axis=1))
        for r in range(regions):
            mask = np.zeros((height, width), bool)
            top, left = 10 + 30 * r, 10 + 4 * f + 20 * r
            mask[top : top + height // 4, left : left + width // 4] = True
            masks[r].append(mask)
    return images, masks


def _time(call, repeats: int):
    results = [call() for _ in range(repeats + 1)][1:]  # the first run warms up
    encode = statistics.median(r.timings.encode_s for r in results)
    generate = statistics.median(r.timings.generate_s for r in results)
    return encode, generate, results[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--regions", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vision-batch", type=int, default=16)
    parser.add_argument("--size", action="append", default=[], help="checkpoint size override key=value")
    args = parser.parse_args()
    sizes = {k: int(v) for k, v in (item.split("=", 1) for item in args.size)}

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_gar_checkpoint(Path(tmp) / "gar", seed=0, **sizes)
        gar = GAR.from_pretrained(folder, device=args.device, dtype=args.dtype, vision_batch_size=args.vision_batch)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    images, masks = _scene(640, 400, args.frames, args.regions)
    device = gar.model.device
    print(f"device: {describe_machine(device)}; dtype {gar.info.dtype}; sizes {sizes or 'tiny defaults'}")
    one_token = GenerationSettings(max_new_tokens=1)
    print(
        f"{'case':<34}{'prompt':>8}{'tiles':>7}{'encode ms':>11}{'generate ms':>13}{'prefill ms':>12}"
        f"{'decode ms/token':>17}"
    )

    def measure(name, inputs, tiles):
        encode, generate, result = _time(lambda: gar.generate(inputs, settings)[0], args.repeats)
        _, prefill, _ = _time(lambda: gar.generate(inputs, one_token)[0], args.repeats)
        steps = len(result.token_ids)
        decode = (generate - prefill) / max(1, steps - 1)
        print(
            f"{name:<34}{result.prompt_tokens:>8}{tiles:>7}{1000 * encode:>11.1f}{1000 * generate:>13.1f}"
            f"{1000 * prefill:>12.1f}{1000 * decode:>17.2f}"
        )

    inputs = gar.processor.prepare_caption(images[0], masks[0][0])
    measure("image, describe (thumb+tile)", inputs, inputs.images[0].num_tiles)
    regions = {f"r{r}": masks[r] for r in range(args.regions)}
    question = "How do " + " and ".join(f"<r{r}>" for r in range(args.regions)) + " move?"
    video = gar.prepare_video(images, regions, question).inputs
    measure(f"video, {args.frames} frames x {args.regions} region(s)", video, len(video.images))
    print(f"({args.new_tokens} new tokens; medians of {args.repeats} runs after one warm-up)")


if __name__ == "__main__":
    main()
