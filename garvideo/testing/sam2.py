"""Offline SAM2 material: a tiny random SAM2 video checkpoint and in-memory frame sources.

The checkpoint has transformers' real ``Sam2VideoModel`` architecture shrunk
to about 1.4 M parameters and a 128-pixel input, so a tracking step takes
milliseconds on a CPU. Its weights are random: it exercises every code path
of the tracker (prompts, memories, object pointers, both directions) but
tracks nothing meaningful.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Sizes that transformers' SAM2 accepts: the mask decoder / memory attention width
# must be a multiple of the 64 memory channels and above 64 (object pointers are
# split into 64-channel tokens), and windowed Hiera blocks must not be global at a
# stage change.
_TINY_HIDDEN = 128
_TINY_MEMORY_CHANNELS = 64


def tiny_sam2_config(
    image_size: int = 128, num_maskmem: int = 7, max_object_pointers: int = 16, initializer_range: float = 0.1
):
    """A ``Sam2VideoConfig`` for a tiny random model (``image_size`` a multiple of 64).

    ``initializer_range`` is larger than transformers' 0.02: with 0.02 the
    random memory attention is so weak that a frame's output hardly depends on
    the memories (the prompt), and tests could not tell which prompt a
    frame was tracked from.
    """
    from transformers import (
        Sam2HieraDetConfig,
        Sam2VideoConfig,
        Sam2VideoMaskDecoderConfig,
        Sam2VideoPromptEncoderConfig,
        Sam2VisionConfig,
    )

    if image_size % 64 or image_size < 64:
        raise ValueError(f"image_size must be a multiple of 64, got {image_size}")
    stride4 = image_size // 4  # Hiera's patch embedding has stride 4
    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        image_size=[image_size, image_size],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        blocks_per_stage=[1, 1, 2, 1],
        global_attention_blocks=[3],
        window_size_per_stage=[4, 4, 4, 2],
        window_positional_embedding_background_size=[4, 4],
        initializer_range=initializer_range,
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[stride4, stride4], [stride4 // 2, stride4 // 2], [stride4 // 4, stride4 // 4]],
        fpn_hidden_size=_TINY_HIDDEN,
        initializer_range=initializer_range,
    )
    # Sub-configs are passed as objects, not dicts: transformers 5.17 builds a dict
    # mask_decoder_config with the wrong class.
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=Sam2VideoPromptEncoderConfig(
            hidden_size=_TINY_HIDDEN, image_size=image_size, patch_size=16
        ),
        mask_decoder_config=Sam2VideoMaskDecoderConfig(
            hidden_size=_TINY_HIDDEN, mlp_dim=128, num_attention_heads=2, iou_head_hidden_dim=_TINY_HIDDEN
        ),
        image_size=image_size,
        num_maskmem=num_maskmem,
        max_object_pointers_in_encoder=max_object_pointers,
        memory_attention_hidden_size=_TINY_HIDDEN,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=128,
        memory_attention_rope_feat_sizes=[stride4 // 4, stride4 // 4],
        memory_encoder_hidden_size=_TINY_HIDDEN,
        memory_encoder_output_channels=_TINY_MEMORY_CHANNELS,
        mask_downsampler_embed_dim=_TINY_HIDDEN,
        memory_fuser_embed_dim=_TINY_HIDDEN,
        memory_fuser_intermediate_dim=128,
        memory_fuser_num_layers=1,
        initializer_range=initializer_range,
    )


def sam2_processor(image_size: int):
    """A ``Sam2VideoProcessor`` that resizes frames to ``image_size`` squares."""
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    size = {"height": image_size, "width": image_size}
    low_res = {"height": image_size // 4, "width": image_size // 4}
    return Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=size, mask_size=low_res),
        video_processor=Sam2VideoVideoProcessor(size=size),
        target_size=image_size,
    )


def build_tiny_sam2_checkpoint(
    path: str | os.PathLike[str],
    seed: int = 0,
    image_size: int = 128,
    num_maskmem: int = 7,
    max_object_pointers: int = 16,
    initializer_range: float = 0.1,
) -> Path:
    """Save a tiny randomly initialised SAM2 video model and its processor to ``path``.

    Loadable with ``Sam2Tracker.from_pretrained(path)``; nothing is downloaded.
    The same ``seed`` gives the same weights.
    """
    import torch
    from transformers import Sam2VideoModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = tiny_sam2_config(image_size, num_maskmem, max_object_pointers, initializer_range)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Sam2VideoModel(config).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(path)
    sam2_processor(image_size).save_pretrained(path)
    return path


# -- in-memory frame sources (they satisfy garvideo.tracking.FrameSource) --------------------


@dataclass(frozen=True)
class SimpleFrame:
    index: int
    time: float
    image: np.ndarray


class _IndexedSource:
    """``iter_frames`` with range() semantics over a frame renderer."""

    num_frames: int
    width: int
    height: int
    fps: float
    #: How many frames iter_frames has produced (to check that a reader is not over-used).
    frames_rendered: int = 0

    def _render(self, index: int) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[SimpleFrame]:
        if step == 0:
            raise ValueError("step must not be 0")
        if stop is None:
            stop = self.num_frames if step > 0 else -1
        for index in range(start, stop, step):
            if not 0 <= index < self.num_frames:
                return
            self.frames_rendered += 1
            yield SimpleFrame(index=index, time=index / self.fps, image=self._render(index))


class ArrayFrameSource(_IndexedSource):
    """Frames from a ``(num_frames, height, width, 3)`` uint8 array."""

    def __init__(self, frames: np.ndarray, fps: float = 25.0) -> None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (n, h, w, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        self.frames = frames
        self.num_frames, self.height, self.width = (int(v) for v in frames.shape[:3])
        self.fps = float(fps)
        self.frames_rendered = 0

    def _render(self, index: int) -> np.ndarray:
        return self.frames[index]


class MovingSquareSource(_IndexedSource):
    """A textured square bouncing inside a noisy background, rendered on demand (nothing stored).

    ``square_mask(index)`` is the ground truth. Long clips cost no memory, which
    makes it the source for memory measurements.
    """

    def __init__(
        self, num_frames: int, height: int = 64, width: int = 80, side: int = 20, fps: float = 25.0, seed: int = 0
    ) -> None:
        if not 0 < side <= min(height, width):
            raise ValueError(f"the square's side must be between 1 and the frame's {width}x{height}, got {side}")
        self.num_frames, self.height, self.width, self.side, self.fps = num_frames, height, width, side, float(fps)
        rng = np.random.default_rng(seed)
        self._background = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
        self._texture = rng.integers(150, 256, size=(side, side, 3), dtype=np.uint8)
        self.frames_rendered = 0

    def square_box(self, index: int) -> tuple[int, int, int, int]:
        """``(x1, y1, x2, y2)`` of the square on frame ``index`` (x2, y2 exclusive); always inside the frame."""
        span_x, span_y = self.width - self.side, self.height - self.side
        x = index % (2 * span_x) if span_x else 0
        y = (index // 2) % (2 * span_y) if span_y else 0
        x, y = (x if x <= span_x else 2 * span_x - x), (y if y <= span_y else 2 * span_y - y)
        return x, y, x + self.side, y + self.side

    def square_mask(self, index: int) -> np.ndarray:
        """Ground truth on frame ``index``."""
        x1, y1, x2, y2 = self.square_box(index)
        mask = np.zeros((self.height, self.width), dtype=bool)
        mask[y1:y2, x1:x2] = True
        return mask

    def _render(self, index: int) -> np.ndarray:
        image = self._background.copy()
        x1, y1, x2, y2 = self.square_box(index)
        image[y1:y2, x1:x2] = self._texture
        return image


# -- the reference: transformers' own offline video session ------------------------------


@dataclass(frozen=True)
class ReferenceFrame:
    """What transformers' offline session gives for one object on one frame."""

    mask: np.ndarray  # (height, width) bool, post-processed as transformers' processor does
    score: float  # sigmoid of the object score logit


def offline_sam2_reference(model, processor, frames: np.ndarray, prompts) -> dict[str, dict[int, ReferenceFrame]]:
    """Track ``prompts`` through ``frames`` the way SAM2's own predictor and demo do, with transformers' API.

    ``frames`` is the whole clip as a ``(n, height, width, 3)`` uint8 array (already strided: a
    prompt's frame is its position in ``frames``); ``prompts`` are ``RegionPrompt`` objects, those
    sharing a name being one object. Each object gets its own offline inference session holding every
    frame: each of its prompts is added and its frame run (in frame order; each is an initial
    conditioning frame, so the order does not matter), then ``propagate_in_video_iterator`` runs
    forward from its earliest prompt to the last frame and backward from that prompt to frame 0 in
    the same session. Returns ``{name: {frame: ReferenceFrame}}``.
    """
    import torch

    frames = np.asarray(frames)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    by_name: dict[str, list] = {}
    for prompt in prompts:
        by_name.setdefault(prompt.name, []).append(prompt)

    def result(output) -> ReferenceFrame:
        masks = processor.post_process_masks([output.pred_masks.float()], original_sizes=[[height, width]])[0]
        score = float(torch.sigmoid(output.object_score_logits.float().reshape(-1)[0]))
        return ReferenceFrame(mask=masks[0, 0].cpu().numpy(), score=score)

    results: dict[str, dict[int, ReferenceFrame]] = {}
    with torch.inference_mode():
        for name, group in by_name.items():
            session = processor.init_video_session(video=frames, inference_device="cpu", dtype=torch.float32)
            for prompt in sorted(group, key=lambda p: p.frame):
                if prompt.box is not None:
                    inputs = {"input_boxes": [[list(prompt.box)]]}
                elif prompt.points is not None:
                    inputs = {
                        "input_points": [[[list(p) for p in prompt.points]]],
                        "input_labels": [[list(prompt.labels)]],
                    }
                else:
                    inputs = {"input_masks": np.array(prompt.mask, dtype=bool)}
                processor.add_inputs_to_inference_session(
                    inference_session=session,
                    frame_idx=prompt.frame,
                    obj_ids=1,
                    original_size=(height, width),
                    **inputs,
                )
                model(inference_session=session, frame_idx=prompt.frame)
            earliest = min(p.frame for p in group)
            track: dict[int, ReferenceFrame] = {}
            for output in model.propagate_in_video_iterator(session, start_frame_idx=earliest):
                track[output.frame_idx] = result(output)
            for output in model.propagate_in_video_iterator(session, start_frame_idx=earliest, reverse=True):
                track[output.frame_idx] = result(output)
            results[name] = dict(sorted(track.items()))
    return results


def streaming_sam2_reference(model, processor, frames: np.ndarray, prompts) -> dict[str, dict[int, ReferenceFrame]]:
    """Track ``prompts`` forward through ``frames`` the way transformers' own streaming session does.

    The live reference: ``frames`` are the frames a live tracker was given, in order, as a ``(n, height, width,
    3)`` uint8 array, and a prompt's frame is the position in ``frames`` where it was marked. Each object gets its
    own session made without a video (``init_video_session()``, streaming); from its first mark on, every frame
    is preprocessed as transformers' docs do (``processor(images=frame)``), the object's mark on that frame (if
    any) added, and the frame run with ``model(inference_session=session, frame=pixels, frame_idx=position)``.
    Returns ``{name: {position: ReferenceFrame}}`` for the positions each object is tracked on.
    """
    import torch

    frames = np.asarray(frames)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    by_name: dict[str, dict[int, Any]] = {}
    for prompt in prompts:
        by_name.setdefault(prompt.name, {})[prompt.frame] = prompt

    results: dict[str, dict[int, ReferenceFrame]] = {}
    with torch.inference_mode():
        for name, marks in by_name.items():
            session = processor.init_video_session(inference_device="cpu", dtype=torch.float32)
            track: dict[int, ReferenceFrame] = {}
            for position in range(min(marks), len(frames)):
                pixels = processor(images=frames[position], return_tensors="pt").pixel_values[0]
                if position in marks:
                    processor.add_inputs_to_inference_session(
                        inference_session=session,
                        frame_idx=position,
                        obj_ids=1,
                        original_size=(height, width),
                        **_reference_inputs(marks[position]),
                    )
                output = model(inference_session=session, frame=pixels, frame_idx=position)
                masks = processor.post_process_masks([output.pred_masks.float()], original_sizes=[[height, width]])[0]
                score = float(torch.sigmoid(output.object_score_logits.float().reshape(-1)[0]))
                track[position] = ReferenceFrame(mask=masks[0, 0].cpu().numpy(), score=score)
            results[name] = track
    return results


def _reference_inputs(prompt) -> dict[str, Any]:
    """A prompt as transformers' processor takes it."""
    if prompt.box is not None:
        return {"input_boxes": [[list(prompt.box)]]}
    if prompt.points is not None:
        return {"input_points": [[[list(p) for p in prompt.points]]], "input_labels": [[list(prompt.labels)]]}
    return {"input_masks": np.array(prompt.mask, dtype=bool)}
