"""Every use garvideo makes of the private state of transformers' SAM2 video session, in one module.

transformers' ``Sam2VideoInferenceSession`` has no public API for what a
streaming tracker in bounded memory needs: telling the model a clip's length
while holding one frame, sharing a frame's image features between sessions,
and dropping the per-frame outputs SAM2 will never read again. This module
does those things, and nothing else in garvideo touches the session's
insides.

It relies on the layout of transformers' session (its attributes, the two
output dictionaries per object, the keys of a frame's outputs) and checks
that layout when it is imported: a transformers release that renames or
restructures any of it raises :class:`IncompatibleTransformersError` then,
instead of silently keeping everything (a pruning ``pop(key, None)`` on a
renamed key would do nothing) or reading the wrong memories.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

import torch
import transformers
from transformers import Sam2VideoInferenceSession, Sam2VideoModel

from ..errors import GarvideoError

#: What the model stores per object and frame (``store_output``), and what garvideo may drop.
OUTPUT_KINDS = ("cond_frame_outputs", "non_cond_frame_outputs")
ENTRY_KEYS = frozenset(
    {"pred_masks", "high_res_masks", "object_pointer", "object_score_logits", "maskmem_features", "maskmem_pos_enc"}
)
_MEMORY_KEYS = ("maskmem_features", "maskmem_pos_enc")
_OUTPUT_ONLY_KEYS = ("pred_masks", "high_res_masks")  # read by the caller of a step, never by a later step

#: Names the model's code must use for the session state this module edits.
_NAMES_THE_MODEL_READS = (
    "inference_session.num_frames",
    "output_dict_per_obj",
    "frames_tracked_per_obj",
    '"cond_frame_outputs"',
    '"non_cond_frame_outputs"',
    '"object_pointer"',
    '"maskmem_features"',
    '"maskmem_pos_enc"',
    "cache.get_vision_features",
)


_SUPPORTED = "garvideo knows the layout of transformers 5.24's SAM2 session (pip install 'transformers==5.24.*')"


class IncompatibleTransformersError(GarvideoError):
    """The installed transformers keeps SAM2's session state in a layout garvideo does not know."""


class ClipSession(Sam2VideoInferenceSession):
    """A session that is given its frames one at a time yet tells the model the clip's full length.

    SAM2 reads a session's ``num_frames`` when it tracks a frame: an offline
    session holding the whole clip scales object-pointer time offsets by
    ``min(num_frames, max_object_pointers_in_encoder) - 1`` and never looks
    past the clip's last frame. A streaming session holds one frame at a
    time, so this one answers with the clip's length instead.
    """

    def __init__(self, clip_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clip_length = int(clip_length)

    @property
    def num_frames(self) -> int:
        return self.clip_length


def new_session(clip_length: int, device: torch.device, dtype: torch.dtype) -> ClipSession:
    """An empty session on ``device`` (as ``Sam2VideoProcessor.init_video_session`` makes one, without a video)."""
    return ClipSession(
        clip_length,
        inference_device=device,
        inference_state_device=device,
        video_storage_device=device,
        dtype=dtype,
    )


def add_frame(session: Sam2VideoInferenceSession, position: int, pixels: torch.Tensor) -> None:
    """Give the session the preprocessed frame at ``position`` (dropped again by :func:`prune`)."""
    session.add_new_frame(pixels, frame_idx=position)


def share_image_features(source: Sam2VideoInferenceSession, target: Sam2VideoInferenceSession, position: int) -> None:
    """Let ``target`` reuse the image features ``source`` computed for ``position`` (the encoder runs once)."""
    features = source.cache.get_vision_features(position)
    if features is None:
        raise IncompatibleTransformersError(
            f"transformers {transformers.__version__}: the SAM2 session did not cache the image features of the "
            f"frame it just tracked; {_SUPPORTED}"
        )
    target.cache.cache_vision_features(position, features)


def prune(
    session: Sam2VideoInferenceSession, position: int, masks_kept: Collection[int], pointers_kept: Collection[int]
) -> None:
    """Drop what no later step reads, after the step on ``position``.

    Conditioning (prompted) frames keep their outputs. A tracked frame keeps
    its mask memory if it is in ``masks_kept`` and its object pointer if it is
    in ``pointers_kept``; otherwise it goes. Frame pixels, full-resolution
    masks, the prompt just used and the record of tracked frames (read only
    when a prompt is added, and every prompt is added before tracking) go
    always.
    """
    if session.processed_frames:
        session.processed_frames.clear()
    for obj_idx, outputs in session.output_dict_per_obj.items():
        for entry in outputs["cond_frame_outputs"].values():
            _check_entry(entry)
            entry.pop("high_res_masks", None)
        tracked = outputs["non_cond_frame_outputs"]
        for index in list(tracked):
            entry = tracked[index]
            _check_entry(entry)
            if index not in masks_kept and index not in pointers_kept:
                del tracked[index]
                continue
            for key in _OUTPUT_ONLY_KEYS:
                entry.pop(key, None)
            if index not in masks_kept:
                for key in _MEMORY_KEYS:
                    entry.pop(key, None)
        session.frames_tracked_per_obj[obj_idx].clear()
        session.point_inputs_per_obj[obj_idx].pop(position, None)
        session.mask_inputs_per_obj[obj_idx].pop(position, None)


def held(session: Sam2VideoInferenceSession) -> tuple[int, int, int]:
    """``(frames, per-frame outputs, bytes of all their tensors)`` the session holds now."""
    frames = session.processed_frames or {}
    outputs = 0
    nbytes = _tensor_bytes(frames) + _tensor_bytes(session.mask_inputs_per_obj)
    nbytes += _tensor_bytes(session.point_inputs_per_obj)
    for per_obj in session.output_dict_per_obj.values():
        for kind in OUTPUT_KINDS:
            outputs += len(per_obj[kind])
            nbytes += _tensor_bytes(per_obj[kind])
    return len(frames), outputs, nbytes


def _check_entry(entry: dict[str, Any]) -> None:
    unknown = set(entry) - ENTRY_KEYS
    if unknown or "object_pointer" not in entry:
        raise IncompatibleTransformersError(
            f"transformers {transformers.__version__} stores SAM2 frame outputs under keys {sorted(entry)}, not the "
            f"{sorted(ENTRY_KEYS)} garvideo prunes; {_SUPPORTED}"
        )


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    return 0


def check_layout(session_class: type = Sam2VideoInferenceSession, model_class: type = Sam2VideoModel) -> None:
    """Raise :class:`IncompatibleTransformersError` unless SAM2's session is laid out as this module expects."""
    problems = []
    if not isinstance(inspect.getattr_static(session_class, "num_frames", None), property):
        problems.append("Sam2VideoInferenceSession.num_frames is not a property")
    try:
        session = session_class()
        obj_idx = session.obj_id_to_idx(1)
        if session.output_dict_per_obj[obj_idx] != {kind: {} for kind in OUTPUT_KINDS}:
            problems.append(f"a new object's outputs are {session.output_dict_per_obj[obj_idx]!r}")
        for name in ("frames_tracked_per_obj", "point_inputs_per_obj", "mask_inputs_per_obj"):
            value = getattr(session, name)[obj_idx]
            if not (isinstance(value, dict) and not value):
                problems.append(f"{name} of a new object is {value!r}")
        if session.processed_frames is not None:
            problems.append("a session without a video holds frames")
        for method in ("add_new_frame",):
            if "frame_idx" not in inspect.signature(getattr(session, method)).parameters:
                problems.append(f"Sam2VideoInferenceSession.{method} takes no frame_idx")
        for method in ("get_vision_features", "cache_vision_features"):
            if not callable(getattr(session.cache, method, None)):
                problems.append(f"the session's cache has no {method}")
    except (AttributeError, KeyError, TypeError) as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    forward = inspect.signature(model_class.forward).parameters
    problems += [
        f"Sam2VideoModel.forward takes no {name}" for name in ("frame_idx", "frame", "reverse") if name not in forward
    ]
    try:
        source = inspect.getsource(model_class)
    except (OSError, TypeError):
        source = None  # no source to read (a frozen install): the checks above must do
    if source is not None:
        problems += [f"Sam2VideoModel no longer reads {name}" for name in _NAMES_THE_MODEL_READS if name not in source]
    if problems:
        raise IncompatibleTransformersError(
            f"transformers {transformers.__version__} changed the SAM2 video session garvideo streams through ("
            + "; ".join(problems)
            + f"): {_SUPPORTED}"
        )


check_layout()
