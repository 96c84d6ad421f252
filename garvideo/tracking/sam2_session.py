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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
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


#: The model's steps :func:`track_together` runs itself, batched over objects, instead of through ``forward``.
_MODEL_STEPS = (
    "_prepare_vision_features",
    "_gather_memory_frame_outputs",
    "_build_memory_attention_inputs",
    "_get_object_pointers",
    "_process_object_pointers",
    "_use_multimask",
    "_single_frame_forward",
    "_encode_new_memory",
)

_SUPPORTED = (
    "garvideo knows the layout of the SAM2 session of transformers 5.17 to 5.24 (pip install 'transformers==5.24.*')"
)


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


def prompted_positions(session: Sam2VideoInferenceSession) -> list[int]:
    """The positions of the session's prompted (conditioning) frames, in order."""
    return sorted(position for outputs in session.output_dict_per_obj.values() for position in outputs[OUTPUT_KINDS[0]])


def forget_prompts(session: Sam2VideoInferenceSession, positions: Collection[int]) -> None:
    """Drop the outputs of these prompted frames: SAM2 no longer reads them as memory (a live session keeps
    a bounded number of an object's marks, since SAM2 reads all of them on every frame)."""
    for outputs in session.output_dict_per_obj.values():
        for position in positions:
            outputs[OUTPUT_KINDS[0]].pop(position, None)


@dataclass(frozen=True)
class StepOutput:
    """One object's result on one frame, as ``Sam2VideoModel.forward`` gives it for a one-object session."""

    pred_masks: torch.Tensor  # low-resolution mask logits, (1, 1, h, w)
    object_score_logits: torch.Tensor  # (1, 1)
    batched: bool  # its memory attention ran in one call with other objects'


def can_track_together(session: Sam2VideoInferenceSession, position: int) -> bool:
    """Whether ``position`` is a plain tracked frame for the session's one object (no prompt to run on it)."""
    outputs = session.output_dict_per_obj[0]
    return not session.obj_with_new_inputs and position not in outputs["cond_frame_outputs"]


def track_together(
    model: Sam2VideoModel, sessions: Sequence[Sam2VideoInferenceSession], position: int, reverse: bool
) -> list[StepOutput]:
    """Track each session's one object on ``position``, as ``model(session, frame_idx=position, reverse=...)`` does
    for each session in turn, but with the memory attention (most of a step's time) run once for all objects
    that read memories of the same shapes; the mask decoder and memory encoder run per object, to stay exact.

    Every session must pass :func:`can_track_together` and the first must hold the frame (:func:`add_frame`);
    the image encoder runs once, its features shared. Objects whose memories differ in shape from every other's
    (e.g. just after their prompt, when fewer frames are behind them) go through ``forward`` alone. Per object
    the inputs are gathered and the outputs split exactly as ``forward`` does, and on the CPU the results are
    bit for bit those of ``forward`` (tests/tracking/test_batching.py; batched GPU kernels may round otherwise).
    """
    vision_feats, vision_pos = model._prepare_vision_features(sessions[0], position, batch_size=1)
    for session in sessions[1:]:
        share_image_features(sessions[0], session, position)
    inputs = [_memory_inputs(model, session, position, reverse, vision_feats[-1].device) for session in sessions]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for number, (memory, memory_pos, pointers) in enumerate(inputs):
        groups.setdefault((tuple(memory.shape), tuple(memory_pos.shape), memory.dtype, pointers), []).append(number)

    results: list[StepOutput | None] = [None] * len(sessions)
    batched: list[tuple[int, dict[str, torch.Tensor]]] = []
    for (_, _, _, pointers), members in groups.items():
        if len(members) == 1:
            output = model(inference_session=sessions[members[0]], frame_idx=position, reverse=reverse)
            results[members[0]] = StepOutput(output.pred_masks, output.object_score_logits.reshape(1, 1), False)
            continue
        memory = torch.cat([inputs[n][0] for n in members], dim=1)
        memory_pos = torch.cat([inputs[n][1] for n in members], dim=1)
        outputs = _decode_together(model, vision_feats, vision_pos, memory, memory_pos, pointers)
        batched += zip(members, outputs, strict=True)

    for number, out in batched:
        # the memory encoder, once per object as forward runs it on a one-object session: batched, its
        # convolutions round differently (by up to 1e-2 after the bfloat16 cast), and masks then drift
        features, positions = model._encode_new_memory(
            current_vision_feats=vision_feats[-1],
            pred_masks_high_res=out["high_res_masks"],
            object_score_logits=out["object_score_logits"],
            is_mask_from_pts=False,
        )
        session = sessions[number]
        session.store_output(0, position, output_value=out, is_conditioning_frame=False)
        entry = session.output_dict_per_obj[0]["non_cond_frame_outputs"][position]
        entry["maskmem_features"], entry["maskmem_pos_enc"] = features, positions
        session.frames_tracked_per_obj[0][position] = {"reverse": reverse}
        results[number] = StepOutput(out["pred_masks"], out["object_score_logits"].reshape(1, 1), True)
    return results  # type: ignore[return-value]


def _memory_inputs(
    model: Sam2VideoModel, session: Sam2VideoInferenceSession, position: int, reverse: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(memories, their position embeddings, object pointer tokens)`` the memory attention reads for the
    session's object on ``position``: its mask memories, then its object pointers, each ``(tokens, 1, dim)``."""
    memory_frames = model._gather_memory_frame_outputs(session, 0, position, reverse)
    memories, positions = model._build_memory_attention_inputs(memory_frames, device)
    offsets, tokens, most = model._get_object_pointers(session, 0, position, session.num_frames, device, reverse, False)
    pointers = 0
    if tokens:
        object_pointers, pointer_pos = model._process_object_pointers(
            offsets, tokens, most, 1, model.hidden_dim, device
        )
        if object_pointers is not None:
            memories.append(object_pointers)
            positions.append(pointer_pos)
            pointers = object_pointers.shape[0]
    return torch.cat(memories, dim=0).to(dtype=session.dtype), torch.cat(positions, dim=0), pointers


def _decode_together(
    model: Sam2VideoModel,
    vision_feats: list[torch.Tensor],
    vision_pos: list[torch.Tensor],
    memory: torch.Tensor,
    memory_pos: torch.Tensor,
    pointers: int,
) -> list[dict[str, torch.Tensor]]:
    """The memory attention for a batch of objects on one frame, then the mask decoder per object; one output
    dict per object, as the model's single-frame step stores it.

    Batched, the memory attention gives each object exactly its one-object result; the mask decoder does not
    (its upscaling convolutions round differently: ~3e-6 on mask logits, drifting to ~1e-5 on scores over a
    clip through the memories), so it runs once per object.
    """
    count = memory.shape[1]
    height, width = model.backbone_feature_sizes[-1]
    conditioned = model.memory_attention(
        current_vision_features=vision_feats[-1].expand(-1, count, -1),
        current_vision_position_embeddings=vision_pos[-1].expand(-1, count, -1),
        memory=memory,
        memory_posision_embeddings=memory_pos,
        num_object_pointer_tokens=pointers,
    )[0]  # (objects, height * width, channels)
    high_res = [
        feat.permute(1, 2, 0).view(feat.size(1), feat.size(2), *size)
        for feat, size in zip(vision_feats[:-1], model.backbone_feature_sizes[:-1], strict=True)
    ]
    multimask = model._use_multimask(False, None)
    outputs = []
    for number in range(count):
        pix_feat = conditioned[number : number + 1].transpose(1, 2).view(1, model.hidden_dim, height, width)
        sam = model._single_frame_forward(
            pixel_values=None, image_embeddings=[*high_res, pix_feat], multimask_output=multimask
        )
        outputs.append(
            {
                "pred_masks": sam.pred_masks,
                "object_pointer": sam.object_pointer,
                "high_res_masks": sam.high_res_masks,
                "object_score_logits": sam.object_score_logits,
            }
        )
    return outputs


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
    problems += [
        f"Sam2VideoModel has no {name}" for name in _MODEL_STEPS if not callable(getattr(model_class, name, None))
    ]
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
