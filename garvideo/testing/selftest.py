"""Material for ``garvideo selftest``: tiny random models, a short clip and a batch manifest.

Everything is generated offline in a folder; nothing is downloaded. The
models are random, so their words mean nothing: the selftest checks that
every stage runs and writes what it should, not what the model says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .clips import moving_object_clip
from .gar import build_tiny_gar_checkpoint
from .grounding_dino import build_tiny_grounding_dino_checkpoint
from .sam2 import build_tiny_sam2_checkpoint


@dataclass(frozen=True)
class SelftestFiles:
    folder: Path
    gar: Path
    sam2: Path
    clip: Path
    box: str  # the moving object's box on frame 3, as --box NAME=x1,y1,x2,y2@3
    manifest: Path  # two good lines and one naming a corrupt video
    detector: Path  # a tiny random Grounding DINO (for text regions)


def prepare_selftest(folder: str | Path) -> SelftestFiles:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gar = build_tiny_gar_checkpoint(folder / "tiny-gar", seed=0, tile_size=112)
    sam2 = build_tiny_sam2_checkpoint(folder / "tiny-sam2", seed=0)
    detector = build_tiny_grounding_dino_checkpoint(folder / "tiny-grounding-dino", seed=0)
    clips = folder / "clips"
    clips.mkdir(exist_ok=True)
    truth = moving_object_clip(clips / "moving.mp4", num_frames=24, fps=12, leaves=True, second_object=True)
    second = moving_object_clip(clips / "second.mp4", num_frames=12, fps=12, seed=1)
    (clips / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    x1, y1, x2, y2 = truth.boxes[3]
    box = [x1, y1, x2 + 1, y2 + 1]
    sx1, sy1, sx2, sy2 = truth.objects[1].boxes[3]
    lines = [
        {"video": "clips/moving.mp4", "regions": [{"name": "thing", "box": box, "when": {"frame": 3}}]},
        {
            "video": "clips/second.mp4",
            "regions": [
                {"name": "thing", "box": list(second.boxes[2]), "when": {"time": 2 / 12}},
                {"name": "other", "box": [sx1, sy1, sx2 + 1, sy2 + 1], "when": {"frame": 0}},
            ],
            "question": "Is <thing> bigger than <other>?",
            "options": ["yes", "no"],
        },
        {"video": "clips/corrupt.mp4", "regions": [{"name": "thing", "box": box, "when": {"frame": 0}}]},
    ]
    manifest = folder / "regions.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return SelftestFiles(folder, gar, sam2, truth.path, "thing=" + ",".join(map(str, box)) + "@3", manifest, detector)
