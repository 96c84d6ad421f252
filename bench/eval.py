"""What a benchmark run costs outside the model: preparing GAR-Bench-VQA items, reading frame folders, resuming.

    python bench/eval.py            # prints the markdown rows for bench/RESULTS.md (## eval)

1. GAR-Bench-VQA: the items whose images ship in ``shared/data/gar-bench-vqa``
   (``subset_with_images.txt``; the shared folder is ``GARVIDEO_SHARED`` if set) prepared
   exactly as a run prepares them (PNG decode, RLE decode, prompt map, tiling
   at GAR-1B's released settings: 448 px tiles, at most 16 + a thumbnail, the
   reference prompt), with a random checkpoint of those tile settings. The
   prompt lengths are those the real model gets (256 tokens per tile and per
   region); the tokenizer is the tiny test one.
2. VideoRefer-Bench-Q: opening a DAVIS-like frame folder (80 JPEG frames,
   854x480) and reading the 16 frames a question uses.
3. Resuming a finished run over every GAR-Bench-VQA item (nothing computed, the
   predictions reassembled and scored).

No GPU is needed: model time is in bench/model.py (and docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from PIL import Image

from garvideo.eval import gar_bench
from garvideo.eval.run_gar_bench import item_masks, run_gar_bench_vqa
from garvideo.model import GAR, GARProcessor, GenerationSettings
from garvideo.testing.gar import build_tiny_gar_checkpoint
from garvideo.video import open_video

# the shared folder beside the checkout, as the tests find it (GARVIDEO_SHARED overrides)
SHARED = Path(os.environ.get("GARVIDEO_SHARED") or Path(__file__).resolve().parents[2] / "shared")
DATA = SHARED / "data" / "gar-bench-vqa"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def prepare_items(folder: Path) -> list[str]:
    build_tiny_gar_checkpoint(folder / "gar448", tile_size=448, max_num_tiles=16)
    processor = GARProcessor.from_pretrained(folder / "gar448")
    items = gar_bench.load_items(DATA)
    chosen = gar_bench.select_items(items, gar_bench.read_subset(DATA / "subset_with_images.txt"))
    load, prepare, tokens, tiles = [], [], [], []
    for index in chosen:
        item = items[index]
        started = time.perf_counter()
        masks = item_masks(item)
        image = np.array(Image.open(DATA / item["image"]).convert("RGB"))
        loaded = time.perf_counter()
        inputs = processor.prepare_reference_question(
            image, masks, gar_bench.vqa_question(item), extra_regions="reference"
        )
        done = time.perf_counter()
        load.append(loaded - started)
        prepare.append(done - loaded)
        tokens.append(inputs.num_tokens)
        tiles.append(inputs.images[0].num_tiles)
    total = [a + b for a, b in zip(load, prepare)]
    images = len({items[i]["image"] for i in chosen})
    return [
        (
            f"| GAR-Bench-VQA item, CPU side ({len(chosen)} items on {images} real images, 448 px tiles, "
            f"<= 16 + thumbnail) | "
            f"{_ms(statistics.median(total))} (max {_ms(max(total))}) | image + RLE {_ms(statistics.median(load))}, "
            f"prompt map + tiling + prompt {_ms(statistics.median(prepare))} | tiles {min(tiles)}-{max(tiles)}, "
            f"prompt tokens {min(tokens)}-{max(tokens)} (median {int(statistics.median(tokens))}) |"
        )
    ]


def read_frame_folder(folder: Path) -> list[str]:
    frames = folder / "DAVIS" / "bear"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(480, 854, 3), dtype=np.uint8)
    for i in range(80):
        Image.fromarray(np.roll(base, 5 * i, axis=1)).save(frames / f"{i:05d}.jpg", quality=90)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        with open_video(frames) as video:
            opened = time.perf_counter()
            video.read(video.sample_uniform(16))
        runs.append((opened - started, time.perf_counter() - opened))
    opening = statistics.median(r[0] for r in runs)
    reading = statistics.median(r[1] for r in runs)
    return [
        (
            f"| VideoRefer-Bench-Q item: a frame folder of 80 JPEG frames (854x480), 16 of them read | "
            f"{_ms(opening + reading)} | open {_ms(opening)}, read {_ms(reading)} | {reading / 16 * 1000:.1f} ms per frame |"
        )
    ]


def resume_finished_run(folder: Path) -> list[str]:
    build_tiny_gar_checkpoint(folder / "gar112", tile_size=112)
    gar = GAR.from_pretrained(folder / "gar112")
    out = folder / "preds.json"
    settings = GenerationSettings(max_new_tokens=1)
    run_gar_bench_vqa(DATA, gar, out, mode="reference", generation=settings, progress=False)
    started = time.perf_counter()
    summary = run_gar_bench_vqa(DATA, gar, out, mode="reference", generation=settings, progress=False)
    elapsed = time.perf_counter() - started
    assert summary.computed == 0
    why = Counter(reason.split(": ", 1)[0] for _, reason in summary.failures)
    failed = ", ".join(f"{count} x {kind}" for kind, count in why.most_common())
    return [
        (
            f"| GAR-Bench-VQA: re-running a finished {summary.total}-item run | {_ms(elapsed)} | | "
            f"{summary.reused} results reused, {summary.failed} failed items re-checked ({failed}), "
            f"predictions reassembled and scored |"
        )
    ]


def main() -> None:
    import torch

    torch.set_num_threads(1)
    if not DATA.is_dir():
        raise SystemExit(f"no GAR-Bench-VQA data at {DATA}: set GARVIDEO_SHARED to the shared folder")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows += prepare_items(folder)
        rows += read_frame_folder(folder)
        rows += resume_finished_run(folder)
    print(f"Machine: {describe_machine('cpu', 1)}; load average {os.getloadavg()[0]:.1f} (shared with other jobs).")
    print()
    print("| what | ms per item (median) | of which | notes |")
    print("| --- | ---: | --- | --- |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
