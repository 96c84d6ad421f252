"""SAM2 on a live stream: frames one at a time, forward only; objects marked, corrected and removed as it runs.

    live = LiveTracker(Sam2Tracker.from_pretrained("tiny"))
    live.mark(RegionPrompt.from_box("cup", (120, 80, 260, 240), 0))   # on the next frame given
    for frame in frames:                                             # anything FrameLike, in order
        for name, entry in live.step(frame).items(): ...             # TrackFrame: mask, box, score

It runs the :class:`~garvideo.tracking.Sam2Tracker`'s own steps (its prompt, step and record code, the image
encoder once per frame, objects tracked together where they can be) and :mod:`garvideo.tracking.sam2_session`'s
pruning, with the semantics of transformers' own streaming session (``model(session, frame=...)``): each object
is tracked forward from the frame it was first marked on; a mark is a conditioning memory from its frame on; SAM2
reads its full window of object pointers (there is no clip end). Frames it is not given (dropped upstream) do not
exist for SAM2: the memories are those of the frames tracked, as offline with a stride.

Memory stays flat however long it runs: each object keeps the memories SAM2 reads on the next frame and at
most ``max_marks`` of its marks (the first and the latest ones), never frame pixels.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from .. import defaults
from ..errors import InvalidInputError, VideoError
from .prompts import RegionPrompt
from .sam2 import Sam2Tracker, _Meter, _ObjectRun
from .source import FrameLike
from .track import TrackFrame

#: The clip length a live session tells SAM2: longer than any stream, so that SAM2 reads its full window of
#: object pointers and never looks for the clip's end, as in transformers' streaming mode.
STREAM_LENGTH = 2**62


@dataclass(frozen=True)
class LiveObject:
    """An object being tracked: its name, SAM2 object id, and the frame index it was first marked on."""

    name: str
    obj_id: int
    since: int


class LiveTracker:
    """A :class:`Sam2Tracker` fed one frame at a time (see the module's doc). Not thread-safe: one thread calls
    :meth:`step`; marks and removals between two steps act on the next one."""

    def __init__(
        self,
        tracker: Sam2Tracker,
        *,
        size: tuple[int, int] | None = None,
        max_marks: int = defaults.LIVE_MAX_MARKS,
    ) -> None:
        if isinstance(max_marks, bool) or not isinstance(max_marks, int) or max_marks < 1:
            raise InvalidInputError(f"max_marks must be a whole number >= 1, got {max_marks!r}")
        self.tracker = tracker
        #: ``(height, width)`` of the frames (set by the first frame when not given).
        self.size = size
        self.max_marks = max_marks
        self._runs: dict[str, _ObjectRun] = {}
        self._since: dict[str, int] = {}
        self._marks: dict[str, list[int]] = {}
        self._pending: dict[str, RegionPrompt] = {}
        self._ids: dict[str, int] = {}  # a name keeps its id, even removed and marked again
        self._position = 0
        self._meter = _Meter()

    # -- objects ------------------------------------------------------------------------

    @property
    def objects(self) -> tuple[LiveObject, ...]:
        """The objects tracked, in the order they were first marked (those marked for the next frame not yet)."""
        return tuple(LiveObject(name, run.obj_id, self._since[name]) for name, run in self._runs.items())

    def obj_id(self, name: str) -> int:
        """The SAM2 object id of a region marked (tracked, or waiting for the next frame)."""
        return self._ids[name]

    def __contains__(self, name: object) -> bool:
        return name in self._runs or name in self._pending

    def mark(self, prompt: RegionPrompt) -> RegionPrompt:
        """Mark an object (a new name) or correct one (a name tracked) on the next frame given to :meth:`step`.

        The prompt's own frame is not used. A box is clipped to the frame (with a warning); a text region,
        clicks outside the frame or a mask of another size raise :class:`InvalidInputError` now. Returns the
        prompt as it will be used.
        """
        if not isinstance(prompt, RegionPrompt):
            raise InvalidInputError(f"expected a RegionPrompt, got {type(prompt).__name__}")
        if self.size is not None:
            prompt = prompt.fit_to_frame(self.size[1], self.size[0])
        elif prompt.kind == "text":
            prompt.fit_to_frame(1, 1)  # raises: the detector must turn it into a box first
        if prompt.obj_id is not None and prompt.obj_id != self._ids.get(prompt.name, prompt.obj_id):
            raise InvalidInputError(
                f"the region {prompt.name!r} has object id {self._ids[prompt.name]}, not {prompt.obj_id}"
            )
        taken = {obj_id for name, obj_id in self._ids.items() if name != prompt.name}
        if prompt.obj_id is not None and prompt.obj_id in taken:
            raise InvalidInputError(f"object id {prompt.obj_id} of {prompt.name!r} is another region's")
        self._object_id(prompt)
        self._pending[prompt.name] = prompt
        return prompt

    def remove(self, name: str) -> None:
        """Stop tracking ``name`` (and forget a mark waiting for the next frame)."""
        if name not in self:
            known = ", ".join(self._runs) or "none"
            raise InvalidInputError(f"no region named {name!r} is being tracked (tracked: {known})")
        self._runs.pop(name, None)
        self._pending.pop(name, None)
        self._since.pop(name, None)
        self._marks.pop(name, None)

    def _object_id(self, prompt: RegionPrompt) -> int:
        if prompt.name not in self._ids:
            used = set(self._ids.values())
            obj_id = (
                prompt.obj_id
                if prompt.obj_id is not None
                else next(i for i in range(1, len(used) + 2) if i not in used)
            )
            self._ids[prompt.name] = obj_id
        return self._ids[prompt.name]

    # -- frames -------------------------------------------------------------------------

    def step(self, frame: FrameLike) -> dict[str, TrackFrame]:
        """Track every object on ``frame`` (the next frame of the stream), first running the marks made since the
        last step; returns each object's :class:`TrackFrame`, in the order of :attr:`objects`."""
        import torch

        from . import sam2_session

        height, width = np.asarray(frame.image).shape[:2]
        if self.size is None:
            self.size = (height, width)
        if (height, width) != self.size:
            raise VideoError(
                f"frame {frame.index} is {width}x{height}, the stream's frames are {self.size[1]}x{self.size[0]}"
            )
        position = self._position
        self._position += 1
        for name, prompt in self._pending.items():
            run = self._runs.get(name)
            if run is None:
                session = sam2_session.new_session(STREAM_LENGTH, self.tracker.device, self.tracker.dtype)
                run = self._runs[name] = _ObjectRun(name, self._object_id(prompt), {}, session)
                self._since[name], self._marks[name] = int(frame.index), []
            run.prompts[position] = prompt.at_frame(frame.index)
            self.tracker._add_prompt(run, position, height, width)
            self._marks[name].append(position)
        self._pending.clear()
        runs = list(self._runs.values())
        if not runs:
            return {}
        with torch.inference_mode(), self.tracker._autocast():
            self.tracker._step(runs, position, frame, False, runs, self._meter, self._kept)
        out = {}
        for run in runs:
            out[run.name] = run.frames.pop()
            run.prompts.clear()
            self._bound_marks(run)
        return out

    def _kept(self, run: _ObjectRun, position: int) -> tuple[Collection[int], Collection[int]]:
        """What SAM2 reads on the next frame: the last ``num_maskmem - 1`` mask memories, the last
        ``max_object_pointers - 1`` object pointers."""
        masks = range(position - self.tracker.num_maskmem + 2, position + 1)
        return masks, range(position - self.tracker.max_object_pointers + 2, position + 1)

    def _bound_marks(self, run: _ObjectRun) -> None:
        from . import sam2_session

        marks = self._marks[run.name]
        if len(marks) > self.max_marks:
            forgotten = marks[1 : len(marks) - self.max_marks + 1]
            sam2_session.forget_prompts(run.session, forgotten)
            self._marks[run.name] = [marks[0], *marks[len(marks) - self.max_marks + 1 :]]

    # -- costs --------------------------------------------------------------------------

    @property
    def frames_tracked(self) -> int:
        return self._position

    def held(self) -> tuple[int, int, int]:
        """``(frames, per-frame outputs, bytes of their tensors)`` the objects' SAM2 sessions hold now."""
        from . import sam2_session

        totals = [sam2_session.held(run.session) for run in self._runs.values()]
        return tuple(sum(values) for values in zip(*totals)) if totals else (0, 0, 0)  # type: ignore[return-value]

    @property
    def peak_state_bytes(self) -> int:
        """The most bytes the sessions held after any step so far."""
        return self._meter.peak_bytes
