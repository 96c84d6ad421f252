"""Time GAR's stages (encode = vision tower + projector + replay, generate = prefill + decode).

Times one image description and one video question (F frames, one tile each, R regions) with
a fixed number of new tokens, on a model with random weights: the timings are real for the
shapes, the text is not.

- default: a tiny checkpoint written by ``garvideo.testing.gar.build_tiny_gar_checkpoint`` and
  loaded with ``GAR.from_pretrained`` (64-wide, 2-layer language model and vision tower,
  448-pixel tiles, so prompts have the real 256 tokens per frame); ``--size key=value`` changes
  its sizes (keys: those of ``garvideo.testing.gar.DEFAULT_SIZES``).
- ``--full-size``: GAR-1B's architecture (the shapes ``bench/pipeline.py`` uses: Llama-3.2-1B
  language model with its 128,256-token vocabulary, PE-Core-L/14 vision tower at 448 px),
  built in memory on the device by ``garvideo.testing.gar.random_gar``: nothing is written
  (a checkpoint would be 6 GB of float32). Meant for a GPU.

    python bench/model.py                                        # tiny shapes, CPU
    python bench/model.py --full-size --device cuda --frames 16   # GAR-1B shapes on a GPU (bfloat16)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)

from garvideo.model import GAR, GenerationSettings
from garvideo.testing.gar import DEFAULT_SIZES, build_tiny_gar_checkpoint, random_gar


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


def _sizes(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, int]:
    sizes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULT_SIZES:
            parser.error(f"--size {item!r}: expected KEY=VALUE with KEY one of {', '.join(DEFAULT_SIZES)}")
        try:
            sizes[key] = int(value)
        except ValueError:
            parser.error(f"--size {item!r}: the value must be a whole number")
        if sizes[key] < 1:
            parser.error(f"--size {item!r}: the value must be positive")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--regions", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vision-batch", type=int, default=16)
    parser.add_argument(
        "--size", action="append", default=[], metavar="KEY=VALUE", help="tiny checkpoint size override (repeatable)"
    )
    parser.add_argument("--full-size", action="store_true", help="GAR-1B's architecture, built in memory")
    args = parser.parse_args()
    sizes = _sizes(parser, args.size)
    if args.full_size and sizes:
        parser.error("--size changes the tiny checkpoint; --full-size has GAR-1B's fixed shapes: pass one of them")

    if args.full_size:
        from pipeline import GAR_1B_TEXT, GAR_1B_VISION  # bench/pipeline.py: the one description of GAR-1B's shapes

        gar = random_gar(text=GAR_1B_TEXT, vision=GAR_1B_VISION, device=args.device, dtype=args.dtype)
        gar.vision_batch_size = args.vision_batch
        sizes = "GAR-1B shapes, random weights"
    else:
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
