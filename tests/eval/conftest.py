"""Tiny models and tiny benchmark sets for the evaluation tests (built once per session)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from garvideo.masks import encode_rle
from garvideo.testing.clips import moving_object_clip
from garvideo.video import open_video


@pytest.fixture(scope="session")
def models(tiny_models) -> Path:
    return tiny_models


@pytest.fixture(scope="session")
def gar(models):
    from garvideo.model import GAR

    return GAR.from_pretrained(models / "gar")


# ---------------------------------------------------------------------- a tiny VideoRefer-Bench-Q set


def rle(mask: np.ndarray) -> dict | None:
    """The benchmark's segmentation: COCO RLE, or null where the object is not in the frame."""
    return encode_rle(mask) if mask.any() else None


def annotation(masks: np.ndarray, frames) -> dict:
    return {str(f): {"segmentation": rle(masks[f])} for f in frames}


@dataclass(frozen=True)
class VideoReferSet:
    folder: Path
    items: list
    annotated: dict  # item id -> frames with a non-empty mask of some object
    good: tuple  # ids of the items that must run
    bad: dict  # id -> what its error must say


QUESTION_OPTIONS = ["(A) It moves to the right", "(B) It stays still", "(C) It moves to the left", "(D) It jumps"]


@pytest.fixture(scope="session")
def videorefer_set(tmp_path_factory) -> VideoReferSet:
    """Two short clips, one as a DAVIS-style frame folder and one as an mp4, with -Q items in the published format."""
    root = tmp_path_factory.mktemp("videorefer")
    (root / "Panda").mkdir()
    leaving = moving_object_clip(
        root / "Panda" / "leaving.mp4", num_frames=12, fps=12, size=(96, 64), leaves=True, second_object=True, seed=1
    )
    staying = moving_object_clip(root / "staying.mp4", num_frames=10, fps=10, size=(80, 48), second_object=True, seed=2)
    frames_dir = root / "DAVIS" / "JPEGImages" / "480p" / "staying"
    frames_dir.mkdir(parents=True)
    with open_video(staying.path) as video:
        for frame in video.iter_frames():
            Image.fromarray(frame.image).save(frames_dir / f"{frame.index:05d}.jpg", quality=95)

    ellipse, square = leaving.objects
    leaving_frames = list(range(0, 12, 2))  # masks on every other frame; the ellipse leaves half-way (null masks)
    s_ellipse, s_square = staying.objects
    staying_frames = [0, 3, 6, 9]
    items = [
        {
            "id": 0,
            "video": "DAVIS/JPEGImages/480p/staying",
            "Question": "What does <object1><region> do?",
            "type": "Basic Questions",
            "options": QUESTION_OPTIONS,
            "Answer": "(A) It moves to the right",
            "frame_idx": "3",
            "annotation": [annotation(s_ellipse.masks, staying_frames)],
        },
        {
            "id": 1,
            "video": "Panda/leaving.mp4",
            "Question": "Where is <object0><region> when <object2><region> reaches the left edge?",
            "type": "Relationship Questions",
            "options": QUESTION_OPTIONS[:3],
            "Answer": "(C) It moves to the left",
            "frame_idx": "2",
            "annotation": [annotation(ellipse.masks, leaving_frames), annotation(square.masks, leaving_frames)],
        },
        {
            "id": 2,
            "video": "DAVIS/JPEGImages/480p/staying",
            "Question": "Which way does <object4><region> go after <object1><region> passes?",
            "type": "Sequential Questions",
            "options": QUESTION_OPTIONS,
            "Answer": "(C) It moves to the left",
            "frame_idx": "6",
            "annotation": [annotation(s_square.masks, staying_frames), annotation(s_ellipse.masks, staying_frames)],
        },
        {
            "id": 3,
            "video": "Panda/leaving.mp4",
            "Question": "What will <object0><region> do next?",
            "type": "Future Predictions",
            "options": QUESTION_OPTIONS,
            "Answer": "(B) It stays still",
            # frame_idx where the object has already left: tracking starts from the nearest frame it is seen
            "frame_idx": "10",
            "annotation": [annotation(ellipse.masks, leaving_frames)],
        },
        {
            "id": 4,
            "video": "DAVIS/JPEGImages/480p/staying",
            "Question": "Why does <object1><region> move?",
            "type": "Reasoning Questions",
            "options": QUESTION_OPTIONS[:2],
            "Answer": "(A) It moves to the right",
            "frame_idx": "0",
            "annotation": [annotation(s_ellipse.masks, [0, 9])],
        },
        # failures that must be recorded and scored as wrong, without stopping the run
        {
            "id": 5,
            "video": "DAVIS/JPEGImages/480p/missing",
            "Question": "What is <object1><region>?",
            "type": "Basic Questions",
            "options": QUESTION_OPTIONS,
            "Answer": "(A) It moves to the right",
            "frame_idx": "0",
            "annotation": [annotation(s_ellipse.masks, [0])],
        },
        {
            "id": 6,
            "video": "DAVIS/JPEGImages/480p/staying",
            "Question": "What is <object1><region>?",
            "type": "Basic Questions",
            "options": QUESTION_OPTIONS,
            "Answer": "(A) It moves to the right",
            "frame_idx": "0",
            "annotation": [{"0": {"segmentation": {"size": [48, 80], "counts": "not an rle!!"}}}],
        },
        {
            "id": 7,
            "video": "DAVIS/JPEGImages/480p/staying",
            "Question": "Is <object1><region> bigger than <object2><region>?",
            "type": "Relationship Questions",
            "options": QUESTION_OPTIONS,
            "Answer": "(B) It stays still",
            "frame_idx": "0",
            "annotation": [annotation(s_ellipse.masks, [0])],
        },
    ]
    (root / "VideoRefer-Bench-Q.json").write_text(json.dumps(items), encoding="utf-8")
    annotated = {}
    for item in items[:5]:
        annotated[item["id"]] = sorted(
            {int(f) for obj in item["annotation"] for f, entry in obj.items() if entry["segmentation"] is not None}
        )
    bad = {5: "missing video", 6: "malformed RLE", 7: "a region without a mask"}

    d_items = [
        {
            "id": 0,
            "video": "leaving.mp4",
            "caption": "A red ellipse crosses to the right and leaves.",
            "frame_idx": "2",
            "annotation": [annotation(ellipse.masks, leaving_frames)],
        },
        {
            "id": 1,
            "video": "gone.mp4",
            "caption": "Nothing.",
            "frame_idx": "0",
            "annotation": [annotation(ellipse.masks, [0])],
        },
    ]
    (root / "VideoRefer-Bench-D.json").write_text(json.dumps(d_items), encoding="utf-8")
    (root / "Panda-70M-part").mkdir()
    (root / "Panda-70M-part" / "leaving.mp4").write_bytes(leaving.path.read_bytes())
    return VideoReferSet(folder=root, items=items, annotated=annotated, good=(0, 1, 2, 3, 4), bad=bad)
