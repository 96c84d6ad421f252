"""Regenerate the sample clips used by the README's examples.

Real photos shipped inside scikit-image (public-domain test images: the cat
"chelsea", the espresso cup "coffee", the grass and brick textures) are cut
out, moved over a lawn and occluded by a brick pillar, so the clips look like
camera footage while every object's mask is known exactly.

    pip install scikit-image   # only needed to regenerate
    python samples/make_samples.py

Writes ``cat.mp4`` (the cat crosses the lawn, passes behind a pillar and
leaves the frame), ``cat_and_cup.mp4`` (the cat and a cup move towards each
other), ``cat_mask.png`` (the cat's mask on frame 12 of cat.mp4) and
``regions.jsonl`` (a batch manifest over both clips).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS, SECONDS = 384, 256, 12, 6


def _ellipse(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2 <= 1.0


def _sprite(image: np.ndarray, box: tuple[int, int, int, int], width: int) -> tuple[np.ndarray, np.ndarray]:
    x1, y1, x2, y2 = box
    crop = Image.fromarray(image[y1:y2, x1:x2])
    height = round(width * (y2 - y1) / (x2 - x1))
    pixels = np.asarray(crop.resize((width, height), Image.LANCZOS))
    return pixels, _ellipse(height, width)


def _tinted(gray: np.ndarray, rgb: tuple[float, float, float], size: tuple[int, int]) -> np.ndarray:
    tile = np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
    return np.clip(tile[..., None] * np.array(rgb, np.float32) * 255 * 1.4, 0, 255).astype(np.uint8)


def _paste(frame: np.ndarray, truth: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Draw the sprite with its top-left corner at (x, y); clip at the borders; record its mask."""
    h, w = alpha.shape
    fx1, fy1, fx2, fy2 = max(x, 0), max(y, 0), min(x + w, WIDTH), min(y + h, HEIGHT)
    if fx1 >= fx2 or fy1 >= fy2:
        return
    sub = alpha[fy1 - y : fy2 - y, fx1 - x : fx2 - x]
    frame[fy1:fy2, fx1:fx2][sub] = sprite[fy1 - y : fy2 - y, fx1 - x : fx2 - x][sub]
    truth[fy1:fy2, fx1:fx2] |= sub


def _write(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "26", "preset": "slow"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def main() -> None:
    from skimage import data

    lawn = _tinted(data.grass(), (0.35, 0.6, 0.25), (WIDTH, HEIGHT))
    pillar = _tinted(data.brick(), (0.75, 0.35, 0.25), (40, HEIGHT))
    cat, cat_alpha = _sprite(data.chelsea(), (40, 10, 420, 300), 110)
    cup, cup_alpha = _sprite(data.coffee(), (70, 20, 490, 390), 90)
    n = FPS * SECONDS
    pillar_x = 200

    cat_frames, cat_truth = [], []
    both_frames, both_truth = [], []
    for i in range(n):
        t = i / (n - 1)
        # cat.mp4: left to right, behind the pillar mid-way, out of the frame at the end.
        frame, truth = lawn.copy(), np.zeros((HEIGHT, WIDTH), bool)
        _paste(frame, truth, cat, cat_alpha, int(-60 + t * 520), int(70 + 25 * np.sin(t * 6.0)))
        frame[:, pillar_x : pillar_x + 40] = pillar
        truth[:, pillar_x : pillar_x + 40] = False
        cat_frames.append(frame)
        cat_truth.append(truth)
        # cat_and_cup.mp4: the cat comes from the left, the cup slides in from the right.
        frame = lawn.copy()
        cat_mask, cup_mask = np.zeros((HEIGHT, WIDTH), bool), np.zeros((HEIGHT, WIDTH), bool)
        _paste(frame, cup_mask, cup, cup_alpha, int(300 - t * 150), 150)
        _paste(frame, cat_mask, cat, cat_alpha, int(-20 + t * 180), int(40 + 10 * np.sin(t * 9.0)))
        cup_mask &= ~cat_mask  # the cat is drawn last, in front
        both_frames.append(frame)
        both_truth.append((cat_mask, cup_mask))

    _write(HERE / "cat.mp4", cat_frames)
    _write(HERE / "cat_and_cup.mp4", both_frames)
    Image.fromarray((cat_truth[12] * 255).astype(np.uint8)).save(HERE / "cat_mask.png")

    items = [
        {"video": "cat.mp4", "regions": [{"name": "cat", "box": _box(cat_truth[12]), "when": {"frame": 12}}]},
        {
            "video": "cat_and_cup.mp4",
            "regions": [
                {"name": "cat", "box": _box(both_truth[24][0]), "when": {"time": 2.0}},
                {"name": "cup", "box": _box(both_truth[24][1]), "when": {"time": 2.0}},
            ],
            "question": "What is <cat> doing relative to <cup>?",
        },
        {
            "video": "cat_and_cup.mp4",
            "regions": [{"name": "cup", "box": _box(both_truth[24][1]), "when": {"frame": 24}}],
            "question": "What is <cup>?",
            "options": ["A cup of coffee", "A dog", "A car", "A tree"],
        },
    ]
    (HERE / "regions.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    for item in items:
        print(json.dumps(item))


if __name__ == "__main__":
    main()
