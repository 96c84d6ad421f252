"""The SAM2 tracker: region prompts in, one :class:`Track` per object out.

Built on transformers' ``Sam2VideoModel`` in streaming mode: frames are read
one at a time from a :class:`FrameSource`, in both directions, and everything
the model does not need any more is dropped as the scan moves on.

How a run goes, per object (an object is all prompts sharing a name):

1. Its earliest prompt is its *anchor*. A backward scan walks from the
   latest anchor down to ``start``; when it reaches an object's anchor the
   object is conditioned on its anchor prompt, and on the frames before it
   the object is tracked backward.
2. A forward scan walks from the earliest anchor up to ``stop``; each object
   is tracked forward from its anchor (on the anchor frame itself it reuses
   its conditioning result). A later prompt for the same object (a
   correction) is added when the scan reaches its frame: from there on it is
   one more conditioning memory, exactly as the user's first prompt is.

Each object has its own inference session, so objects never disturb one
another (and each is tracked from its own prompts); within a scan the image
encoder runs at most once per frame, its features shared between the
objects' sessions. Frames from the earliest to the latest anchor are read
(and encoded) by both scans, every other frame by one.

Memory stays bounded whatever the video's length: after every step each
session keeps its prompted frames' memories, the mask memories of the last
``num_maskmem - 1`` frames and the object pointers of the last
``max_object_pointers_in_encoder - 1`` frames, and no frame pixels at all.
"""

from __future__ import annotations

import numbers
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ..checkpoints import resolve_checkpoint
from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError, ModelNotFoundError, VideoError
from .prompts import RegionPrompt
from .source import FrameLike, FrameSource, stream_frames
from .track import Track, TrackFrame

if TYPE_CHECKING:
    import torch

DEFAULT_SAM2_MODEL = "facebook/sam2.1-hiera-tiny"

#: Short names accepted wherever a SAM2 model id is.
SAM2_ALIASES = {
    "tiny": "facebook/sam2.1-hiera-tiny",
    "small": "facebook/sam2.1-hiera-small",
    "base-plus": "facebook/sam2.1-hiera-base-plus",
    "base_plus": "facebook/sam2.1-hiera-base-plus",
    "b+": "facebook/sam2.1-hiera-base-plus",
    "large": "facebook/sam2.1-hiera-large",
}


@dataclass(frozen=True)
class TrackingStats:
    """What one :meth:`Sam2Tracker.track` call cost (for benchmarks and memory checks).

    The ``peak_*`` fields count what the SAM2 inference sessions held at
    their fullest moment: frames waiting for the image encoder, per-frame
    outputs (memories, object pointers) and the bytes of all those tensors.
    """

    frames_read: int
    object_steps: int
    seconds: float
    peak_frames_held: int
    peak_outputs_held: int
    peak_state_bytes: int


@dataclass(eq=False)
class _ObjectRun:
    """The mutable state of one object during one run (never leaves this module)."""

    name: str
    obj_id: int
    prompts: dict[int, RegionPrompt]  # session position -> prompt
    session: Any
    frames: list[TrackFrame] = field(default_factory=list)

    @property
    def anchor(self) -> int:
        return min(self.prompts)


class Sam2Tracker:
    """Track prompted regions through a video with a SAM2 video model.

    Build it with :meth:`from_pretrained`; call :meth:`track` as often as
    needed (each call is independent). ``model_id`` and ``revision`` say
    which weights were used, for provenance.
    """

    def __init__(self, model: Any, processor: Any, *, model_id: str, revision: str | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.model_id = model_id
        self.revision = revision
        parameter = next(model.parameters())
        self.device: torch.device = parameter.device
        self.dtype: torch.dtype = parameter.dtype
        #: Costs of the latest :meth:`track` call.
        self.last_stats: TrackingStats | None = None

    # -- loading ----------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = DEFAULT_SAM2_MODEL,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
    ) -> Sam2Tracker:
        """Load a SAM2 video checkpoint: a hub id (any ``facebook/sam2.1-hiera-*``), an alias
        (``tiny``, ``small``, ``base-plus``, ``large``) or a local folder saved with ``save_pretrained``.

        Hub ids are found as GAR's are (:func:`garvideo.checkpoints.resolve_checkpoint`: the local
        cache when offline); ``model_id`` and ``revision`` then record the id and its snapshot's
        commit, or a folder's absolute path. ``device``/``dtype`` default to CUDA with bfloat16
        where present, else CPU float32 (see :mod:`garvideo.devices`).
        """
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        name = os.fspath(model)
        checkpoint = resolve_checkpoint(SAM2_ALIASES.get(name, name), revision=revision)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        try:
            processor = Sam2VideoProcessor.from_pretrained(checkpoint.folder)
            network = Sam2VideoModel.from_pretrained(checkpoint.folder, dtype=torch_dtype)
        except OSError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelNotFoundError(
                f"cannot load the SAM2 model {checkpoint.model_id!r}: the folder {checkpoint.folder} does not hold a "
                f"complete SAM2 checkpoint ({first_line}). Use a facebook/sam2.1-hiera-* id or the path of a folder "
                f"saved with save_pretrained."
            ) from exc
        except ValueError as exc:
            raise ModelNotFoundError(f"{checkpoint.model_id!r} is not a SAM2 video checkpoint: {exc}") from exc
        network.to(torch_device)
        return cls(network, processor, model_id=checkpoint.model_id, revision=checkpoint.revision)

    # -- facts ------------------------------------------------------------------------

    @property
    def num_maskmem(self) -> int:
        """How many frames' mask memories SAM2 attends to (prompted frame included)."""
        return int(self.model.config.num_maskmem)

    @property
    def max_object_pointers(self) -> int:
        return int(self.model.config.max_object_pointers_in_encoder)

    # -- tracking ---------------------------------------------------------------------

    def track(
        self,
        source: FrameSource,
        prompts: Sequence[RegionPrompt],
        start: int = 0,
        stop: int | None = None,
        stride: int = 1,
        progress: bool = True,
    ) -> list[Track]:
        """Track every prompted object over frames ``start, start + stride, ... < stop``.

        Prompts sharing a name are one object. Each object is tracked backward
        and forward from its earliest prompt; its later prompts (corrections)
        count from their own frame onward. Prompted frames are tracked even
        when off the stride grid; ``stop`` beyond the video is clipped to its
        end. Returns one :class:`Track` per object name, in order of first
        appearance in ``prompts``, with an entry for every tracked frame
        (``visible=False`` where the object is not found). A frame the source
        cannot decode (it skips it, with a warning) has no entry; a correction
        on such a frame is not used, with a warning.

        Prompts must be on frames (resolve times first) inside ``[start,
        stop)``; bad regions and ranges raise :class:`InvalidInputError`
        before any frame is decoded. ``progress`` shows a tqdm bar.
        """
        import torch

        began = time.perf_counter()
        height, width = int(source.height), int(source.width)
        order, runs = self._plan(source, prompts, start, stop, stride)
        position_of = {index: pos for pos, index in enumerate(order)}
        meter = _Meter()

        anchors = sorted({run.anchor for run in runs})
        backward = list(range(anchors[-1], -1, -1))
        forward = list(range(anchors[0], len(order)))
        bar = tqdm(total=len(backward) + len(forward), desc="tracking", unit="frame", disable=not progress)
        with torch.inference_mode(), bar:
            # 1. backward from the latest anchor: each object is conditioned on its anchor prompt when the scan
            #    reaches that frame, and tracked backward on the frames before it
            unread_anchors = anchors[::-1]
            for frame in stream_frames(source, [order[p] for p in backward]):
                position = position_of[frame.index]
                if unread_anchors and unread_anchors[0] > position:  # the source skipped an anchor frame
                    raise _unreadable_anchor(runs, order, unread_anchors[0])
                if unread_anchors and unread_anchors[0] == position:
                    unread_anchors.pop(0)
                meter.frames_read += 1
                starting = [run for run in runs if run.anchor == position]
                tracked = [run for run in runs if run.anchor > position]
                for run in starting:
                    self._add_prompt(run, position, height, width)
                pixels = self._pixels(frame, height, width)
                outputs = self._step(starting + tracked, position, pixels, True, runs, meter)
                # an anchor's own result is recorded by the forward scan, which reuses it
                self._record(tracked, outputs[len(starting) :], frame, height, width)
                bar.update(1)
            if unread_anchors:
                raise _unreadable_anchor(runs, order, unread_anchors[0])

            # the forward scan starts from the prompts alone, not from backward results
            for run in runs:
                _forget_tracked_frames(run.session)

            # 2. forward from the earliest anchor (on an anchor frame its object reuses its conditioning result),
            #    adding corrections as their frames come
            for frame in stream_frames(source, [order[p] for p in forward]):
                position = position_of[frame.index]
                meter.frames_read += 1
                active = [run for run in runs if run.anchor <= position]
                for run in active:
                    if position in run.prompts and position != run.anchor:
                        self._add_prompt(run, position, height, width)
                outputs = self._step(active, position, self._pixels(frame, height, width), False, runs, meter)
                self._record(active, outputs, frame, height, width)
                bar.update(1)

        for run in runs:
            tracked = {f.index for f in run.frames}
            for position in sorted(run.prompts):
                if position != run.anchor and order[position] not in tracked:
                    warnings.warn(
                        f"the correction of {run.name!r} on frame {order[position]} was not used: the frame could "
                        f"not be read from the video",
                        stacklevel=2,
                    )

        self.last_stats = TrackingStats(
            frames_read=meter.frames_read,
            object_steps=meter.object_steps,
            seconds=time.perf_counter() - began,
            peak_frames_held=meter.peak_frames,
            peak_outputs_held=meter.peak_outputs,
            peak_state_bytes=meter.peak_bytes,
        )
        return [Track(name=run.name, obj_id=run.obj_id, frames=tuple(run.frames)) for run in runs]

    # -- the steps of a run -------------------------------------------------------------

    def _plan(
        self, source: FrameSource, prompts: Sequence[RegionPrompt], start: int, stop: int | None, stride: int
    ) -> tuple[list[int], list[_ObjectRun]]:
        """Check the request; return the frames to track (ascending) and one run per object."""
        num_frames, width, height = int(source.num_frames), int(source.width), int(source.height)
        if num_frames <= 0 or width <= 0 or height <= 0:
            raise VideoError(f"the video has no frames to track ({num_frames} frames of {width}x{height})")
        if not _is_whole(stride) or stride < 1:
            raise InvalidInputError(f"the tracking stride must be a whole number of frames >= 1, got {stride!r}")
        if not _is_whole(start) or not (stop is None or _is_whole(stop)):
            raise InvalidInputError(f"the frame range must be integer indices, got start={start!r}, stop={stop!r}")
        start, stride = int(start), int(stride)
        stop = num_frames if stop is None else min(int(stop), num_frames)
        if not 0 <= start < stop:
            raise InvalidInputError(
                f"the frame range [{start}, {stop}) is empty or outside the video's {num_frames} frames"
            )
        if not prompts:
            raise InvalidInputError("nothing to track: give at least one region (a box, clicks or a mask)")

        by_name: dict[str, list[RegionPrompt]] = {}
        for prompt in prompts:
            if not isinstance(prompt, RegionPrompt):
                raise InvalidInputError(f"expected RegionPrompt objects, got {type(prompt).__name__}")
            if prompt.frame is None:
                raise InvalidInputError(
                    f"the region {prompt.name!r} is placed at {prompt.when} (a time): the tracker needs a frame "
                    f"index; resolve it first with prompt.at_frame(index) or prompt.resolve(frame_at_time)"
                )
            if prompt.frame >= num_frames:
                raise InvalidInputError(
                    f"the region {prompt.name!r} is marked on frame {prompt.frame}, beyond the video's last frame "
                    f"{num_frames - 1}"
                )
            if not start <= prompt.frame < stop:
                raise InvalidInputError(
                    f"the region {prompt.name!r} is marked on frame {prompt.frame}, outside the tracked range "
                    f"[{start}, {stop}): widen the range or mark the region inside it"
                )
            by_name.setdefault(prompt.name, []).append(prompt.fit_to_frame(width, height))

        order = sorted(set(range(start, stop, stride)) | {p.frame for p in prompts})  # type: ignore[misc]
        position_of = {index: pos for pos, index in enumerate(order)}

        wanted_ids: dict[str, int] = {}
        for name, group in by_name.items():
            ids = {p.obj_id for p in group if p.obj_id is not None}
            if len(ids) > 1:
                raise InvalidInputError(f"the region {name!r} is given different object ids {sorted(ids)}")
            if ids:
                wanted_ids[name] = ids.pop()
        if len(set(wanted_ids.values())) != len(wanted_ids):
            raise InvalidInputError(f"two regions share an object id: {wanted_ids}")
        used = set(wanted_ids.values())
        next_id = 1

        runs: list[_ObjectRun] = []
        for name, group in by_name.items():
            if name in wanted_ids:
                obj_id = wanted_ids[name]
            else:
                while next_id in used:
                    next_id += 1
                obj_id = next_id
                used.add(obj_id)
            per_position: dict[int, RegionPrompt] = {}
            for prompt in group:
                position = position_of[prompt.frame]  # type: ignore[index]
                if position in per_position:
                    raise InvalidInputError(
                        f"the region {name!r} is marked twice on frame {prompt.frame}: give one box, set of clicks "
                        f"or mask per object and frame"
                    )
                per_position[position] = prompt
            session = self.processor.init_video_session(inference_device=self.device, dtype=self.dtype)
            runs.append(_ObjectRun(name=name, obj_id=obj_id, prompts=per_position, session=session))
        return order, runs

    def _pixels(self, frame: FrameLike, height: int, width: int) -> torch.Tensor:
        image = np.asarray(frame.image)
        if image.shape != (height, width, 3):
            raise VideoError(f"frame {frame.index} is {image.shape} but the video reports {width}x{height} RGB frames")
        # resized and normalised on the model's device (a 1080p frame is cheaper to resize on a GPU)
        pixel_values = self.processor(images=image, device=self.device, return_tensors="pt")["pixel_values"][0]
        return pixel_values.to(self.device, self.dtype)

    def _add_prompt(self, run: _ObjectRun, position: int, height: int, width: int) -> None:
        prompt = run.prompts[position]
        inputs: dict[str, Any] = {}
        if prompt.box is not None:
            inputs["input_boxes"] = [[list(prompt.box)]]
        elif prompt.points is not None:
            inputs["input_points"] = [[[list(p) for p in prompt.points]]]
            inputs["input_labels"] = [[list(prompt.labels or ())]]
        else:
            inputs["input_masks"] = np.array(prompt.mask, dtype=bool)
        self.processor.add_inputs_to_inference_session(
            inference_session=run.session,
            frame_idx=position,
            obj_ids=run.obj_id,
            original_size=(height, width),
            **inputs,
        )

    def _step(
        self,
        active: Sequence[_ObjectRun],
        position: int,
        pixels: torch.Tensor,
        reverse: bool,
        runs: Sequence[_ObjectRun],
        meter: _Meter,
    ) -> list[Any]:
        """Run the ``active`` objects on one frame (the image encoder at most once), then prune."""
        shared_features = None
        outputs = []
        for run in active:
            cache = run.session.cache
            if shared_features is not None and cache.get_vision_features(position) is None:
                cache.cache_vision_features(position, shared_features)
            outputs.append(self.model(inference_session=run.session, frame_idx=position, frame=pixels, reverse=reverse))
            if shared_features is None:
                shared_features = cache.get_vision_features(position)
            meter.object_steps += 1
        meter.observe(runs)
        for run in active:
            _prune_session(run.session, position, reverse, self.num_maskmem - 1, self.max_object_pointers - 1)
        return outputs

    def _record(
        self, runs: Sequence[_ObjectRun], outputs: Sequence[Any], frame: FrameLike, height: int, width: int
    ) -> None:
        import torch

        for run, output in zip(runs, outputs):
            low_res = output.pred_masks.float()
            mask = self.processor.post_process_masks([low_res], original_sizes=[[height, width]], binarize=True)[0]
            score = float(torch.sigmoid(output.object_score_logits.float().reshape(-1)[0]))
            run.frames.append(TrackFrame.from_mask(frame.index, frame.time, mask[0, 0].cpu().numpy(), score))


# -- session bookkeeping (transformers' Sam2VideoInferenceSession) -------------------------


def _prune_session(session: Any, position: int, reverse: bool, keep_masks: int, keep_pointers: int) -> None:
    """Drop what the next step cannot use.

    Conditioning (prompted) frames keep their memories; a tracked frame keeps
    its mask memory while within ``keep_masks`` steps of the scan and its
    object pointer while within ``keep_pointers`` steps; frame pixels and
    full-resolution masks are never kept.
    """
    if session.processed_frames:
        session.processed_frames.clear()
    for obj_idx, outputs in session.output_dict_per_obj.items():
        for entry in outputs["cond_frame_outputs"].values():
            entry.pop("high_res_masks", None)
        tracked = outputs["non_cond_frame_outputs"]
        for index in list(tracked):
            behind = index - position if reverse else position - index
            if not 0 <= behind < keep_pointers:
                del tracked[index]
                continue
            entry = tracked[index]
            entry.pop("high_res_masks", None)
            entry.pop("pred_masks", None)
            if behind >= keep_masks:
                entry.pop("maskmem_features", None)
                entry.pop("maskmem_pos_enc", None)
        seen = session.frames_tracked_per_obj.get(obj_idx, {})
        for index in list(seen):
            behind = index - position if reverse else position - index
            if not 0 <= behind < keep_pointers:
                del seen[index]
        # a prompt is read once, on its own frame, which this step has just processed
        session.mask_inputs_per_obj.get(obj_idx, {}).pop(position, None)
        session.point_inputs_per_obj.get(obj_idx, {}).pop(position, None)


def _forget_tracked_frames(session: Any) -> None:
    """Keep only the conditioning frames: the next scan starts from the prompts alone."""
    for obj_idx, outputs in session.output_dict_per_obj.items():
        outputs["non_cond_frame_outputs"].clear()
        session.frames_tracked_per_obj.get(obj_idx, {}).clear()


def _tensor_bytes(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    return 0


class _Meter:
    """Counts work and the high-water mark of what the sessions hold."""

    def __init__(self) -> None:
        self.frames_read = 0
        self.object_steps = 0
        self.peak_frames = 0
        self.peak_outputs = 0
        self.peak_bytes = 0

    def observe(self, runs: Sequence[_ObjectRun]) -> None:
        frames = outputs = nbytes = 0
        for run in runs:
            session = run.session
            held = session.processed_frames or {}
            frames += len(held)
            nbytes += _tensor_bytes(held)
            for per_obj in session.output_dict_per_obj.values():
                for kind in ("cond_frame_outputs", "non_cond_frame_outputs"):
                    outputs += len(per_obj[kind])
                    nbytes += _tensor_bytes(per_obj[kind])
            nbytes += _tensor_bytes(session.mask_inputs_per_obj)
        self.peak_frames = max(self.peak_frames, frames)
        self.peak_outputs = max(self.peak_outputs, outputs)
        self.peak_bytes = max(self.peak_bytes, nbytes)


def _is_whole(value: object) -> bool:
    """An integer of any kind (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _unreadable_anchor(runs: Sequence[_ObjectRun], order: Sequence[int], position: int) -> InvalidInputError:
    names = ", ".join(repr(run.name) for run in runs if run.anchor == position)
    return InvalidInputError(f"frame {order[position]}, where {names} is marked, could not be read from the video")
