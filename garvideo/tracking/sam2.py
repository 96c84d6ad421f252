"""The SAM2 tracker: region prompts in, one :class:`Track` per object out.

Built on transformers' ``Sam2VideoModel``. The masks are those of SAM2's own
offline video session over the tracked frames (what SAM2's predictor and demo
give when the prompts come first); the frames are streamed instead, read one
at a time from a :class:`FrameSource`, and everything SAM2 will not read
again is dropped as the scan moves on.

How a run goes, per object (an object is all prompts sharing a name; its
earliest prompt is its *anchor*), each object in its own inference session:

1. Every prompted frame is read and each of its prompts run: a prompted frame
   is a conditioning memory of its object for every frame tracked afterwards,
   in both directions, so a later prompt (a correction) acts on all frames.
2. A forward scan tracks each object from its anchor to the last frame.
3. A backward scan tracks each object from its anchor down to the first
   frame; like SAM2's reverse pass it reads the forward pass's memories of
   the frames just after the anchor.

Within a step the image encoder runs at most once per frame, its features
shared between the objects' sessions, and the objects whose memories have the
same shapes (all objects prompted on one frame, once past it) go through one
batched memory attention, the most costly part of a step with several objects
(:func:`garvideo.tracking.sam2_session.track_together`; ``batch_objects=False``
runs one ``forward`` per object). Memory stays bounded whatever the
video's length: each session keeps its prompted frames' outputs, and of the
tracked frames only the mask memories and object pointers SAM2 reads later
(the last ``num_maskmem - 1`` and ``min(frames, max_object_pointers_in_encoder)
- 1`` frames behind the scan, and those few just after the anchor); never
frame pixels. Everything that touches the session's private state is in
:mod:`garvideo.tracking.sam2_session`.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from .. import defaults
from ..checkpoints import loading, resolve_checkpoint
from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError, VideoError
from .prompts import RegionPrompt
from .source import FrameLike, FrameSource, stream_frames
from .track import FrameTracked, Track, TrackFrame

if TYPE_CHECKING:
    import torch

DEFAULT_SAM2_MODEL = defaults.SAM2  # the one table of defaults holds it

#: Short names accepted wherever a SAM2 model id is.
SAM2_ALIASES = {
    "tiny": "facebook/sam2.1-hiera-tiny",
    "small": "facebook/sam2.1-hiera-small",
    "base-plus": "facebook/sam2.1-hiera-base-plus",
    "base_plus": "facebook/sam2.1-hiera-base-plus",
    "b+": "facebook/sam2.1-hiera-base-plus",
    "large": "facebook/sam2.1-hiera-large",
}


def sam2_precision(dtype: str | torch.dtype | None, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """``(weights dtype, autocast dtype or None)`` for SAM2 on ``device``.

    Unless ``dtype`` names one (``"auto"``/``None`` does not), SAM2 runs as
    Meta's predictor does: on CUDA float32 weights under bfloat16 autocast,
    elsewhere plain float32. A named dtype is used for the weights, without
    autocast.
    """
    import torch

    if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
        return torch.float32, (torch.bfloat16 if device.type == "cuda" else None)
    return resolve_dtype(dtype, device), None


@dataclass(frozen=True)
class TrackingStats:
    """What one :meth:`Sam2Tracker.track` call cost (for benchmarks and memory checks).

    The ``peak_*`` fields count what the SAM2 inference sessions held at
    their fullest moment: frames waiting for the image encoder, per-frame
    outputs (memories, object pointers) and the bytes of all those tensors.
    """

    frames_read: int
    object_steps: int
    batched_object_steps: int  # object steps whose memory attention ran batched with other objects'
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

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        model_id: str,
        revision: str | None = None,
        autocast_dtype: torch.dtype | None = None,
        batch_objects: bool = True,
        compile: bool = False,
        compile_options: Mapping[str, Any] | None = None,
    ) -> None:
        from . import sam2_session  # noqa: F401  (checks transformers' SAM2 session layout: fail now, not mid-video)

        self.model = model.eval()
        self.processor = processor
        self.model_id = model_id
        self.revision = revision
        parameter = next(model.parameters())
        self.device: torch.device = parameter.device
        self.dtype: torch.dtype = parameter.dtype
        #: The dtype SAM2's operations run in under ``torch.autocast`` (None: the weights' dtype, no autocast).
        self.autocast_dtype = autocast_dtype
        #: Track the objects that read memories of the same shapes in one batched memory attention and mask
        #: decoder call per frame (False: one call per object, as transformers' own session runs them).
        self.batch_objects = batch_objects
        #: Costs of the latest :meth:`track` call.
        self.last_stats: TrackingStats | None = None
        #: The image encoder and memory attention run through ``torch.compile`` (see :meth:`_compile`).
        self.compiled = bool(compile)
        if self.compiled:
            self._compile(dict(compile_options or {}))

    @property
    def precision(self) -> str:
        """How SAM2 computes, for provenance: ``"float32"``, or ``"float32+autocast:bfloat16"`` under autocast."""
        weights = str(self.dtype).removeprefix("torch.")
        if self.autocast_dtype is None:
            return weights
        return f"{weights}+autocast:{str(self.autocast_dtype).removeprefix('torch.')}"

    def _compile(self, options: dict[str, Any]) -> None:
        """Compile the two parts that take most of a step, as Meta's ``vos_optimized`` predictor does (there,
        under the same bfloat16 autocast :func:`sam2_precision` picks on CUDA): the image encoder for the one
        frame size it sees, the memory attention for memories whose length changes over the first frames
        (``dynamic``). ``options`` are ``torch.compile`` keywords over those defaults."""
        import torch

        for module, dynamic in ((self.model.vision_encoder, False), (self.model.memory_attention, True)):
            module.forward = torch.compile(module.forward, **{"dynamic": dynamic, **options})

    # -- loading ----------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = DEFAULT_SAM2_MODEL,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
        compile: bool | None = None,
        batch_objects: bool = True,
    ) -> Sam2Tracker:
        """Load a SAM2 video checkpoint: a hub id (any ``facebook/sam2.1-hiera-*``), an alias
        (``tiny``, ``small``, ``base-plus``, ``large``) or a local folder saved with ``save_pretrained``.

        Hub ids are found as GAR's are (:func:`garvideo.checkpoints.resolve_checkpoint`: the local
        cache when offline); ``model_id`` and ``revision`` then record the id and its snapshot's
        commit, or a folder's absolute path. ``device`` defaults to CUDA where present, else CPU;
        unless ``dtype`` names one, SAM2 runs as Meta's predictor does (:func:`sam2_precision`).

        ``compile`` compiles the image encoder and memory attention (``torch.compile``), the first
        frames paying for the compilation. ``None`` (the default) is off on every device, CUDA
        included: whether it pays there for the clips garvideo tracks (tens of seconds to compile,
        and the memory attention recompiles while its memory grows) is for bench/gpu.sh to measure,
        and nothing has measured it yet. ``batch_objects``: see :attr:`batch_objects`.
        """
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        name = os.fspath(model)
        checkpoint = resolve_checkpoint(SAM2_ALIASES.get(name, name), revision=revision)
        torch_device = resolve_device(device)
        torch_dtype, autocast_dtype = sam2_precision(dtype, torch_device)
        advice = "Use a facebook/sam2.1-hiera-* id or the path of a folder saved with save_pretrained."
        with loading(checkpoint, "the SAM2 model", "SAM2", "SAM2 video", advice):
            processor = Sam2VideoProcessor.from_pretrained(checkpoint.folder)
            network = Sam2VideoModel.from_pretrained(checkpoint.folder, dtype=torch_dtype)
        network.to(torch_device)
        return cls(
            network,
            processor,
            model_id=checkpoint.model_id,
            revision=checkpoint.revision,
            autocast_dtype=autocast_dtype,
            batch_objects=batch_objects,
            compile=bool(compile),  # None: off everywhere until a GPU measurement says otherwise
        )

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
        on_frame: Callable[[FrameTracked], None] | None = None,
    ) -> list[Track]:
        """Track every prompted object over frames ``start, start + stride, ... < stop``.

        Prompts sharing a name are one object. The masks are those of SAM2's
        own video session holding the tracked frames: every prompt of an
        object conditions it on every frame (a later prompt, a correction,
        acts on all frames, not only from its own frame on), and each object
        is tracked forward from its earliest prompt to the end, then backward
        from it to the start. Prompted frames are tracked even when off the
        stride grid; ``stop`` beyond the video is clipped to its end. Returns
        one :class:`Track` per object name, in order of first appearance in
        ``prompts``, with an entry for every tracked frame (``visible=False``
        where the object is not found). A frame the source cannot decode (it
        skips it, with a warning) has no entry; a correction on such a frame
        is not used, with a warning.

        Prompts must be on frames (resolve times first) inside ``[start,
        stop)``; bad regions and ranges raise :class:`InvalidInputError`
        before any frame is decoded. ``progress`` shows a tqdm bar. ``on_frame`` receives a
        :class:`FrameTracked` after every tracked frame (an exception it raises stops the track).
        """
        import torch

        from . import sam2_session  # noqa: F401  (checks transformers' session layout when first imported)

        began = time.perf_counter()
        order, runs = self._plan(source, prompts, start, stop, stride)
        call = _TrackCall(
            source=source,
            order=order,
            runs=runs,
            memory=_MemoryReads(self.num_maskmem, min(len(order), self.max_object_pointers)),
            meter=_Meter(),
            bar=tqdm(total=len(order), desc="tracking", unit="frame", disable=not progress),
            on_frame=on_frame,
        )
        with torch.inference_mode(), self._autocast(), call.bar:
            unused = self._prompted_pass(call)
            self._forward_pass(call)
            self._backward_pass(call)
        for run, position in unused:
            warnings.warn(
                f"the correction of {run.name!r} on frame {order[position]} was not used: the frame could not be "
                f"read from the video",
                stacklevel=2,
            )
        meter = call.meter
        self.last_stats = TrackingStats(
            frames_read=meter.frames_read,
            object_steps=meter.object_steps,
            batched_object_steps=meter.batched_object_steps,
            seconds=time.perf_counter() - began,
            peak_frames_held=meter.peak_frames,
            peak_outputs_held=meter.peak_outputs,
            peak_state_bytes=meter.peak_bytes,
        )
        return [
            Track(name=run.name, obj_id=run.obj_id, frames=tuple(sorted(run.frames, key=lambda f: f.index)))
            for run in runs
        ]

    def _prompted_pass(self, call: _TrackCall) -> list[tuple[_ObjectRun, int]]:
        """Every prompt first, as SAM2's predictor takes them: each prompted frame is a conditioning memory of
        its object for every frame tracked afterwards, in either direction. Returns the prompts whose frame
        could not be read (not used)."""
        runs, order = call.runs, call.order
        height, width = int(call.source.height), int(call.source.width)
        unused: list[tuple[_ObjectRun, int]] = []
        unread = list(call.prompted)
        for frame in stream_frames(call.source, [order[p] for p in call.prompted]):
            position = call.position_of[frame.index]
            while unread[0] < position:
                unused += _drop_unread_prompt(runs, order, unread.pop(0))
            unread.pop(0)
            starting = [run for run in runs if position in run.prompts]
            for run in starting:
                self._add_prompt(run, position, height, width)
            call.tracked(
                frame, self._step(starting, position, frame, False, runs, call.meter, call.memory.conditioning)
            )
        for position in unread:
            unused += _drop_unread_prompt(runs, order, position)
        return unused

    def _forward_pass(self, call: _TrackCall) -> None:
        """Forward from each object's earliest prompt to the end (its prompted frames are done), then prune
        each object to what the backward pass reads of it: the memories just after its earliest prompt."""
        from . import sam2_session

        runs, order = call.runs, call.order
        first = next((p for p in range(min(run.anchor for run in runs), len(order)) if _tracked_at(runs, p)), None)
        forward = range(first if first is not None else len(order), len(order))
        call.bar.total = len(call.prompted) + len(forward) + max(run.anchor for run in runs)
        call.bar.refresh()
        for frame in stream_frames(call.source, [order[p] for p in forward]):
            position = call.position_of[frame.index]
            active = _tracked_at(runs, position)
            call.tracked(frame, self._step(active, position, frame, False, runs, call.meter, call.memory.forward))
        for run in runs:
            sam2_session.prune(run.session, run.anchor, *call.memory.after_anchor(run))

    def _backward_pass(self, call: _TrackCall) -> None:
        """Backward from each object's earliest prompt to the start."""
        runs, order = call.runs, call.order
        backward = range(max(run.anchor for run in runs) - 1, -1, -1)
        for frame in stream_frames(call.source, [order[p] for p in backward]):
            position = call.position_of[frame.index]
            active = [run for run in runs if run.anchor > position]
            call.tracked(frame, self._step(active, position, frame, True, runs, call.meter, call.memory.backward))

    # -- the steps of a run -------------------------------------------------------------

    def _plan(
        self, source: FrameSource, prompts: Sequence[RegionPrompt], start: int, stop: int | None, stride: int
    ) -> tuple[list[int], list[_ObjectRun]]:
        """Check the request; return the frames to track (ascending) and one run per object."""
        from . import sam2_session

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
            # one session per object, as SAM2's own sessions are run one object at a time; it is told the
            # number of tracked frames, which SAM2 reads as the clip's length
            session = sam2_session.new_session(len(order), self.device, self.dtype)
            runs.append(_ObjectRun(name=name, obj_id=obj_id, prompts=per_position, session=session))
        return order, runs

    def _autocast(self) -> AbstractContextManager[Any]:
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def prepare(self, frame: FrameLike) -> PreparedFrame:
        """``frame`` with its model input already made (resized, normalised, on the model's device).

        Meant for another thread than the tracking one (a decode-ahead thread), so this work
        overlaps tracking; :meth:`track` uses the pixels of frames this tracker prepared as they are.
        """
        import torch

        image = np.asarray(frame.image)
        with torch.inference_mode(), self._autocast():  # both are per thread: as in track()
            pixels = self._pixels(frame, *image.shape[:2])
        return PreparedFrame(int(frame.index), float(frame.time), image, pixels, self)

    def _pixels(self, frame: FrameLike, height: int, width: int) -> torch.Tensor:
        image = np.asarray(frame.image)
        if image.shape != (height, width, 3):
            raise VideoError(f"frame {frame.index} is {image.shape} but the video reports {width}x{height} RGB frames")
        # the video processor, as an offline session uses it, on a one-frame clip; on the model's device
        # (a 1080p frame is cheaper to resize on a GPU)
        processed = self.processor.video_processor(videos=[image[None]], device=self.device, return_tensors="pt")
        return processed["pixel_values_videos"][0][0].to(self.device, self.dtype)

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
        frame: FrameLike,
        reverse: bool,
        runs: Sequence[_ObjectRun],
        meter: _Meter,
        kept: Callable[[_ObjectRun, int], tuple[Collection[int], Collection[int]]],
    ) -> Sequence[_ObjectRun]:
        """Run the ``active`` objects on one frame (the image encoder at most once), record them, then prune
        each to what ``kept(run, position)`` says later steps read: ``(mask memories, object pointers)``.
        Returns the objects it recorded (``active``)."""
        from . import sam2_session

        if not active:
            return active
        height, width = int(frame.image.shape[0]), int(frame.image.shape[1])
        if isinstance(frame, PreparedFrame) and frame.prepared_by is self:
            pixels = frame.pixels
        else:
            pixels = self._pixels(frame, height, width)
        sam2_session.add_frame(active[0].session, position, pixels)
        if (
            self.batch_objects
            and len(active) > 1
            and all(sam2_session.can_track_together(run.session, position) for run in active)
        ):
            outputs = sam2_session.track_together(self.model, [run.session for run in active], position, reverse)
        else:
            outputs = []
            for number, run in enumerate(active):
                if number > 0:
                    sam2_session.share_image_features(active[0].session, run.session, position)
                outputs.append(self.model(inference_session=run.session, frame_idx=position, reverse=reverse))
        for run, output in zip(active, outputs, strict=True):
            meter.object_steps += 1
            meter.batched_object_steps += bool(getattr(output, "batched", False))
            self._record(run, output, frame, height, width)
        meter.observe(runs)
        for run in active:
            sam2_session.prune(run.session, position, *kept(run, position))
        return active

    def _record(self, run: _ObjectRun, output: Any, frame: FrameLike, height: int, width: int) -> None:
        import torch

        low_res = output.pred_masks.float()
        mask = self.processor.post_process_masks([low_res], original_sizes=[[height, width]], binarize=True)[0]
        score = float(torch.sigmoid(output.object_score_logits.float().reshape(-1)[0]))
        run.frames.append(TrackFrame.from_mask(frame.index, frame.time, mask[0, 0].cpu().numpy(), score))


@dataclass(eq=False)
class _TrackCall:
    """One :meth:`Sam2Tracker.track` call's state, shared by its three passes."""

    source: FrameSource
    order: list[int]  # the frames to track, ascending; a run's positions index into it
    runs: list[_ObjectRun]
    memory: _MemoryReads
    meter: _Meter
    bar: Any  # tqdm
    on_frame: Callable[[FrameTracked], None] | None
    done: int = 0

    def __post_init__(self) -> None:
        self.position_of = {index: position for position, index in enumerate(self.order)}
        self.prompted = sorted({position for run in self.runs for position in run.prompts})
        self.bar.total = len(self.order) + len(self.prompted)

    def tracked(self, frame: FrameLike, active: Sequence[_ObjectRun]) -> None:
        """A frame was read and its ``active`` objects tracked on it: count it, and report it."""
        self.meter.frames_read += 1
        self.done += 1
        self.bar.update(1)
        if self.on_frame is not None and active:
            regions = {run.name: run.frames[-1] for run in active}
            self.on_frame(FrameTracked(frame.index, frame.time, regions, self.done, int(self.bar.total)))


@dataclass(frozen=True, eq=False)
class PreparedFrame:
    """A frame (:class:`FrameLike`) with the model input :meth:`Sam2Tracker.prepare` made of it."""

    index: int
    time: float
    image: np.ndarray
    pixels: Any = field(repr=False)  # torch.Tensor, (3, size, size) on the tracker's device and dtype
    prepared_by: Sam2Tracker = field(repr=False)


# -- what SAM2 reads back --------------------------------------------------------------------


@dataclass(frozen=True)
class _MemoryReads:
    """Which tracked frames' outputs SAM2 reads when it tracks a frame, to keep exactly those.

    Tracking position ``p`` forward reads the mask memories of ``p - 1 ..
    p - (num_maskmem - 1)`` and the object pointers of ``p - 1 .. p -
    (pointers - 1)``, where ``pointers`` is ``min(clip length,
    max_object_pointers_in_encoder)``; backward, the same offsets after ``p``.
    Besides its conditioning frames (always kept), an object's first backward
    step reads the forward pass's frames just after its earliest prompt.
    """

    num_maskmem: int
    pointers: int

    def conditioning(self, run: _ObjectRun, position: int) -> tuple[Collection[int], Collection[int]]:
        """While prompts are run nothing has been tracked yet."""
        return (), ()

    def forward(self, run: _ObjectRun, position: int) -> tuple[Collection[int], Collection[int]]:
        """After a forward step on ``position``: what the next forward step and the backward pass read."""
        masks = range(position - self.num_maskmem + 2, position + 1)
        pointers = range(position - self.pointers + 2, position + 1)
        anchor_masks, anchor_pointers = self.after_anchor(run)
        return frozenset(masks).union(anchor_masks), frozenset(pointers).union(anchor_pointers)

    def backward(self, run: _ObjectRun, position: int) -> tuple[Collection[int], Collection[int]]:
        """After a backward step on ``position``: what the next backward step reads."""
        return range(position, position + self.num_maskmem - 1), range(position, position + self.pointers - 1)

    def after_anchor(self, run: _ObjectRun) -> tuple[Collection[int], Collection[int]]:
        """What the object's first backward step reads of its forward pass (nothing when there is none)."""
        return self.backward(run, run.anchor) if run.anchor > 0 else ((), ())


def _tracked_at(runs: Sequence[_ObjectRun], position: int) -> list[_ObjectRun]:
    """The objects the forward pass tracks on ``position``: begun before it, and not prompted on it."""
    return [run for run in runs if run.anchor <= position and position not in run.prompts]


def _drop_unread_prompt(runs: Sequence[_ObjectRun], order: Sequence[int], position: int) -> list[tuple[Any, int]]:
    """A prompted frame the source could not decode: an error on an object's earliest prompt, else unused."""
    anchored = [run for run in runs if run.anchor == position]
    if anchored:
        names = ", ".join(repr(run.name) for run in anchored)
        raise InvalidInputError(f"frame {order[position]}, where {names} is marked, could not be read from the video")
    dropped = []
    for run in runs:
        if run.prompts.pop(position, None) is not None:
            dropped.append((run, position))
    return dropped


class _Meter:
    """Counts work and the high-water mark of what the sessions hold."""

    def __init__(self) -> None:
        self.frames_read = 0
        self.object_steps = 0
        self.batched_object_steps = 0
        self.peak_frames = 0
        self.peak_outputs = 0
        self.peak_bytes = 0

    def observe(self, runs: Sequence[_ObjectRun]) -> None:
        from . import sam2_session

        frames = outputs = nbytes = 0
        for run in runs:
            held_frames, held_outputs, held_bytes = sam2_session.held(run.session)
            frames, outputs, nbytes = frames + held_frames, outputs + held_outputs, nbytes + held_bytes
        self.peak_frames = max(self.peak_frames, frames)
        self.peak_outputs = max(self.peak_outputs, outputs)
        self.peak_bytes = max(self.peak_bytes, nbytes)


def _is_whole(value: object) -> bool:
    """An integer of any kind (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
