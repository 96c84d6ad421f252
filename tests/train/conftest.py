"""Tiny training material: four images with masks and four short clips, as garvideo's JSON lines (built once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from garvideo.testing.clips import moving_object_clip
from garvideo.tracking import Track, save_tracks

# Captions in the tiny tokenizer's own words, so each is a few tokens; every example's is different.
CAPTIONS = (
    "The brown dog runs across the green field.",
    "A person holds a blue umbrella.",
    "The car moves to the right.",
    "A red ball near the white house.",
    "It stops near the white house.",
    "A striped square in the rain.",
    "The green field and the red ball.",
    "A person walking in the rain.",
)


# Held out: two multiple-choice questions (scored) and a caption (loss only).
HELD_OUT = (
    {
        "image": "image0.png",
        "regions": [{"name": "thing", "mask": "image0_mask.png"}],
        "question": "Which is <thing>?",
        "options": ["a dog", "a ball"],
        "answer": "A",
    },
    {
        "video": "clip0.mp4",
        "tracks": "clip0_object.json",
        "question": "Where does <object> go?",
        "options": ["left", "right"],
        "answer": "right",
    },
    {"image": "image2.png", "regions": [{"name": "thing", "mask": "image2_mask.png"}], "caption": "The car."},
)


@dataclass(frozen=True)
class Material:
    folder: Path
    train: Path  # 4 image captions + 4 video captions (2 with tracks files, 2 tracked by SAM2)
    lines: tuple[dict, ...]
    clips: tuple  # MovingObjectTruth of the two clips


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def material(tmp_path_factory) -> Material:
    return build_material(tmp_path_factory.mktemp("train-data"))


def build_material(folder: Path) -> Material:
    rng = np.random.default_rng(5)
    lines: list[dict] = []
    for k in range(4):
        image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
        mask = np.zeros((48, 64), dtype=np.uint8)
        mask[4 + 6 * k : 30 + 4 * k, 6 + 8 * k : 40 + 5 * k] = 255
        Image.fromarray(image).save(folder / f"image{k}.png")
        Image.fromarray(mask).save(folder / f"image{k}_mask.png")
        lines.append(
            {
                "image": f"image{k}.png",
                "regions": [{"name": "thing", "mask": f"image{k}_mask.png"}],
                "caption": CAPTIONS[k],
            }
        )
    clips = []
    for k in range(2):
        clip = moving_object_clip(
            folder / f"clip{k}.mp4", num_frames=6, fps=6, size=(64, 48), second_object=True, seed=k
        )
        clips.append(clip)
    first = clips[0]
    for j, obj in enumerate(first.objects):  # the first clip: ground-truth tracks files
        track = Track.from_masks(obj.name, {i: obj.masks[i] for i in range(first.num_frames)}, times=first.times)
        save_tracks(folder / f"clip0_{obj.name}.json", [track])
        lines.append({"video": "clip0.mp4", "tracks": f"clip0_{obj.name}.json", "caption": CAPTIONS[4 + j]})
    second = clips[1]
    for j, obj in enumerate(second.objects):  # the second: boxes that SAM2 tracks
        x1, y1, x2, y2 = obj.boxes[1]
        region = {"name": obj.name, "when": {"frame": 1}, "box": [x1, y1, x2 + 1, y2 + 1]}
        lines.append({"video": "clip1.mp4", "regions": [region], "caption": CAPTIONS[6 + j]})
    train = write_lines(folder / "train.jsonl", lines)
    return Material(folder, train, tuple(lines), tuple(clips))


@pytest.fixture(scope="session")
def models(tiny_models) -> Path:
    return tiny_models


@pytest.fixture(scope="session")
def pipeline(models):
    from garvideo.pipeline import Pipeline

    return Pipeline.from_pretrained(models / "gar", models / "sam2", progress=False, detector=None)
