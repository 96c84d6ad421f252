"""Region prompts: what the user marks (a box, clicks, a mask or words) and on which frame.

A :class:`RegionPrompt` names an object and says where it is on one frame.
Several prompts with the same name on different frames are corrections of one
object. Its JSON form (:meth:`RegionPrompt.to_dict` / :meth:`RegionPrompt.from_dict`)
is the one region schema: result documents list it, batch manifests take it
(README, "Regions as JSON"). The command line's ``--box ...@WHEN`` syntax is
one text grammar (:mod:`garvideo.tracking.marks`), the command line's and the web app's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..masks import decode_rle, encode_rle
from ..names import check_region_name
from ..timecode import When, parse_when

Box = tuple[float, float, float, float]
Point = tuple[float, float]

POSITIVE = 1
NEGATIVE = 0


class RegionClippedWarning(UserWarning):
    """A box reaching outside the frame was clipped to it (the user may have meant another frame size)."""


def _as_when(when: When | int | str) -> When:
    if when is None:
        raise InvalidInputError("a box, clicks or a mask needs the frame index or time it is drawn on")
    if isinstance(when, When):
        return when
    if isinstance(when, bool):
        raise InvalidInputError(f"a prompt's moment must be a When, a frame index or a time string, got {when!r}")
    if isinstance(when, (int, np.integer)):
        return When(frame=int(when))
    if isinstance(when, str):
        return parse_when(when)
    raise InvalidInputError(f"a prompt's moment must be a When, a frame index or a time string, got {when!r}")


def _finite(values: Iterable[Any], what: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)):
        raise InvalidInputError(f"{what} must be numbers, got the text {values!r}")
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be numbers") from exc
    if not all(math.isfinite(v) for v in out):
        raise InvalidInputError(f"{what} must be finite numbers, got {out}")
    return out


def _pair(point: Any, message: str) -> Any:
    if isinstance(point, (str, bytes)) or not isinstance(point, Iterable):
        raise InvalidInputError(f"{message}, got a click {point!r}")
    point = tuple(point)
    if len(point) != 2:
        raise InvalidInputError(f"{message}, got a click {point!r}")
    return point


@dataclass(frozen=True, eq=False)
class RegionPrompt:
    """One object marked on one frame.

    Exactly one of ``box`` (``x1, y1, x2, y2`` in pixels of the displayed
    frame), ``points`` (``(x, y)`` clicks with ``labels``: 1 positive, 0
    negative; all positive when omitted) or ``mask`` (a boolean array the size
    of the frame). ``when`` is a frame index or a time; the tracker needs a
    frame, so a time must be resolved first (:meth:`at_frame`,
    :meth:`resolve`). ``obj_id`` is optional: the tracker numbers objects in
    order of first appearance.

    Or ``text``: the object named in words (``"a red car"``); ``when`` is then
    optional (None: search the video for it). The tracker takes no text: the
    pipeline's detector turns a text region into box prompts first.
    """

    name: str
    when: When | None
    box: Box | None = None
    points: tuple[Point, ...] | None = None
    labels: tuple[int, ...] | None = None
    mask: np.ndarray | None = None
    obj_id: int | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "name", check_region_name(self.name))
        if self.text is None or self.when is not None:  # a text region may leave the moment to the search
            set_(self, "when", _as_when(self.when))
        given = [kind for kind in ("box", "points", "mask", "text") if getattr(self, kind) is not None]
        if len(given) != 1:
            raise InvalidInputError(
                f"region {self.name!r} needs exactly one of a box, points, a mask or a text, got {given or 'none'}"
            )
        if self.text is not None:
            if not isinstance(self.text, str) or not self.text.strip():
                raise InvalidInputError(
                    f"the text of region {self.name!r} is empty: name the object in words, e.g. "
                    f'--text {self.name}="a red car"'
                )
            set_(self, "text", " ".join(self.text.split()))
        if self.obj_id is not None:
            if isinstance(self.obj_id, bool) or not isinstance(self.obj_id, (int, np.integer)) or self.obj_id < 0:
                raise InvalidInputError(f"object id of {self.name!r} must be an integer >= 0, got {self.obj_id!r}")
            set_(self, "obj_id", int(self.obj_id))
        if self.labels is not None and self.points is None:
            raise InvalidInputError(f"region {self.name!r} has click labels but no clicks")
        if self.box is not None:
            box = _finite(self.box, f"the box of {self.name!r}")
            if len(box) != 4:
                raise InvalidInputError(f"the box of {self.name!r} needs 4 numbers x1,y1,x2,y2, got {len(box)}")
            x1, y1, x2, y2 = box
            if not (x1 < x2 and y1 < y2):
                raise InvalidInputError(
                    f"the box of {self.name!r} must be x1,y1,x2,y2 with x1 < x2 and y1 < y2, got {box}"
                )
            set_(self, "box", box)
        if self.points is not None:
            pairs = f"the clicks of {self.name!r} must be a non-empty list of (x, y) pairs"
            if isinstance(self.points, (str, bytes)) or not isinstance(self.points, Iterable):
                raise InvalidInputError(f"{pairs}, got {self.points!r}")
            points = tuple(_finite(_pair(p, pairs), f"the clicks of {self.name!r}") for p in self.points)
            if not points:
                raise InvalidInputError(pairs)
            if self.labels is not None and (isinstance(self.labels, str) or not isinstance(self.labels, Iterable)):
                raise InvalidInputError(f"the click labels of {self.name!r} must be 1s and 0s, got {self.labels!r}")
            labels = tuple(POSITIVE for _ in points) if self.labels is None else tuple(self.labels)
            if len(labels) != len(points):
                raise InvalidInputError(f"region {self.name!r} has {len(points)} clicks but {len(labels)} labels")
            if any(label not in (POSITIVE, NEGATIVE) for label in labels):
                raise InvalidInputError(f"click labels must be 1 (positive) or 0 (negative), got {labels}")
            if POSITIVE not in labels:
                raise InvalidInputError(
                    f"the clicks of {self.name!r} are all negative: add at least one positive click on the object"
                )
            set_(self, "points", tuple((float(x), float(y)) for x, y in points))
            set_(self, "labels", tuple(int(label) for label in labels))
        if self.mask is not None:
            mask = np.array(self.mask, dtype=bool, copy=True)
            if mask.ndim != 2:
                raise InvalidInputError(f"the mask of {self.name!r} must be 2-D (height, width), got {mask.shape}")
            if not mask.any():
                raise InvalidInputError(f"the mask of {self.name!r} is empty: it must mark at least one pixel")
            mask.setflags(write=False)
            set_(self, "mask", mask)

    # -- convenience constructors -------------------------------------------------

    @classmethod
    def from_box(
        cls, name: str, box: Sequence[float], when: When | int | str, obj_id: int | None = None
    ) -> RegionPrompt:
        return cls(name=name, when=when, box=box, obj_id=obj_id)  # type: ignore[arg-type]  # checked there

    @classmethod
    def from_points(
        cls,
        name: str,
        points: Sequence[Sequence[float]],
        when: When | int | str,
        labels: Sequence[int] | None = None,
        obj_id: int | None = None,
    ) -> RegionPrompt:
        return cls(name=name, when=when, points=points, labels=labels, obj_id=obj_id)  # type: ignore[arg-type]

    @classmethod
    def from_mask(cls, name: str, mask: np.ndarray, when: When | int | str, obj_id: int | None = None) -> RegionPrompt:
        return cls(name=name, when=when, mask=mask, obj_id=obj_id)  # type: ignore[arg-type]

    @classmethod
    def from_text(
        cls, name: str, text: str, when: When | int | str | None = None, obj_id: int | None = None
    ) -> RegionPrompt:
        """A region named in words; ``when`` None lets the pipeline search the video for it."""
        return cls(name=name, when=when, text=text, obj_id=obj_id)  # type: ignore[arg-type]

    # -- facts and copies -----------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"box"``, ``"points"``, ``"mask"`` or ``"text"``."""
        if self.text is not None:
            return "text"
        return "box" if self.box is not None else "points" if self.points is not None else "mask"

    @property
    def frame(self) -> int | None:
        """The frame index, or None while the prompt is given by time (or not placed: a text to search for)."""
        return self.when.frame if self.when is not None else None

    def at_frame(self, index: int) -> RegionPrompt:
        """A copy placed on frame ``index`` (how a caller resolves a time to a frame)."""
        return dataclasses.replace(self, when=When(frame=int(index)))

    def resolve(self, frame_at_time: Callable[[float], int]) -> RegionPrompt:
        """This prompt on a frame: itself if it has one (or has no moment), else ``at_frame(frame_at_time(time))``."""
        if self.when is None or self.when.frame is not None:
            return self
        assert self.when.time is not None
        return self.at_frame(frame_at_time(self.when.time))

    def fit_to_frame(self, width: int, height: int) -> RegionPrompt:
        """Check the region against a ``width`` x ``height`` frame; clip a box that sticks out, with a warning.

        Raises :class:`InvalidInputError` for a box outside the frame (or of
        zero area once clipped), a click outside the frame, a mask of
        another size, or a text (it must become a box first).
        """
        if self.text is not None:
            raise InvalidInputError(
                f"region {self.name!r} is named in words ({self.text!r}): a detector must turn it into a box first "
                f"(the Pipeline does; SAM2 alone cannot)"
            )
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            clipped = (
                min(max(x1, 0.0), width),
                min(max(y1, 0.0), height),
                min(max(x2, 0.0), width),
                min(max(y2, 0.0), height),
            )
            if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
                raise InvalidInputError(
                    f"the box of {self.name!r} {_fmt(self.box)} lies outside the {width}x{height} frame "
                    f"(zero area once clipped): boxes are x1,y1,x2,y2 in pixels of the displayed frame"
                )
            if clipped == self.box:
                return self
            warnings.warn(
                f"the box of {self.name!r} {_fmt(self.box)} reaches outside the {width}x{height} frame: "
                f"using {_fmt(clipped)}",
                RegionClippedWarning,
                stacklevel=2,
            )
            return dataclasses.replace(self, box=clipped)
        if self.points is not None:
            for x, y in self.points:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise InvalidInputError(
                        f"the click ({x:g}, {y:g}) of {self.name!r} is outside the {width}x{height} frame: "
                        f"clicks are x,y in pixels of the displayed frame"
                    )
            return self
        assert self.mask is not None
        if self.mask.shape != (height, width):
            raise InvalidInputError(
                f"the mask of {self.name!r} is {self.mask.shape[1]}x{self.mask.shape[0]} but the video frames are "
                f"{width}x{height}: draw the mask at the video's displayed size"
            )
        return self

    # -- equality and serialisation ---------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegionPrompt):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None and other.mask is not None and np.array_equal(self.mask, other.mask)
        )
        return same_mask and (self.name, self.when, self.box, self.points, self.labels, self.obj_id, self.text) == (
            other.name,
            other.when,
            other.box,
            other.points,
            other.labels,
            other.obj_id,
            other.text,
        )

    __hash__ = None  # type: ignore[assignment]  # a mask array is not hashable

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the mask as COCO RLE), for provenance in results."""
        out: dict[str, Any] = {"name": self.name}
        if self.obj_id is not None:
            out["obj_id"] = self.obj_id
        if self.when is None:
            out["when"] = None
        else:
            out["when"] = {"frame": self.when.frame} if self.when.frame is not None else {"time": self.when.time}
        if self.text is not None:
            out["text"] = self.text
        elif self.box is not None:
            out["box"] = list(self.box)
        elif self.points is not None:
            out["points"] = [list(p) for p in self.points]
            out["labels"] = list(self.labels or ())
        else:
            out["mask"] = encode_rle(self.mask)  # type: ignore[arg-type]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], read_mask: Callable[[str], np.ndarray] | None = None) -> RegionPrompt:
        """The prompt a :meth:`to_dict` dictionary describes: ``from_dict(p.to_dict()) == p``.

        ``{"name": "dog", "when": {"frame": 12} or {"time": 4.5}, "obj_id": 0 (optional)}`` and exactly one of
        ``"box": [x1, y1, x2, y2]``, ``"points": [[x, y], ...]`` with ``"labels": [1, 0, ...]`` (1 object,
        0 background; all 1 when left out), ``"mask": {"size": [h, w], "counts": "..."}`` (COCO RLE) or
        ``"text": "a red car"`` (whose ``"when"`` may be null or left out: the video is searched for it).
        ``read_mask``, when given, also accepts a mask as text (a file name) and reads it (batch manifests
        give mask images so). A malformed dictionary raises :class:`InvalidInputError` saying what to write.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"a region must be a JSON object such as {_EXAMPLE}, got {data!r}")
        name = data.get("name")
        label = f"region {name!r}" if isinstance(name, str) and name.strip() else "a region"
        unknown = [key for key in data if key not in _DICT_KEYS]
        if unknown:
            moments = [key for key in unknown if key in ("frame", "time")]
            if moments:
                raise InvalidInputError(
                    f'{label}: the moment goes in "when": write "when": {{"{moments[0]}": '
                    f'{_shown(data[moments[0]])}}} instead of "{moments[0]}"'
                )
            raise InvalidInputError(
                f"{label} has unknown keys {sorted(map(str, unknown))}: a region has name, when, obj_id and one of "
                f"box, points (+ labels), mask or text, e.g. {_EXAMPLE}"
            )
        if "name" not in data:
            raise InvalidInputError(f'a region needs a "name", e.g. {_EXAMPLE}')
        kinds = [kind for kind in ("box", "points", "mask", "text") if data.get(kind) is not None]
        mask = data.get("mask")
        if mask is not None:
            mask = _mask_from_json(mask, label, read_mask)
        return cls(
            name=name,  # type: ignore[arg-type]  # checked there
            when=_when_from_json(data, label, kinds),  # type: ignore[arg-type]  # None only for a text
            box=_numbers_from_json(data.get("box"), f"the box of {label}", "[x1, y1, x2, y2]"),  # type: ignore[arg-type]
            points=_points_from_json(data.get("points"), label),
            labels=_labels_from_json(data.get("labels"), label),
            mask=mask,
            obj_id=_whole_from_json(data.get("obj_id"), f'the "obj_id" of {label}'),
            text=_text_from_json(data.get("text"), label),
        )


def _fmt(values: Iterable[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


# -- the JSON form's pieces, checked strictly (JSON numbers, not strings that read as numbers) ---------------

_DICT_KEYS = ("name", "obj_id", "when", "box", "points", "labels", "mask", "text")
_EXAMPLE = '{"name": "dog", "when": {"frame": 12}, "box": [120, 80, 260, 210]}'


def _shown(value: Any) -> str:
    """A value as JSON writes it (``null``, ``true``), or its repr when it is no JSON value."""
    return json.dumps(value, default=repr)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole_from_json(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be a whole number, got {_shown(value)}")
    return value


def _when_from_json(data: Mapping[str, Any], label: str, kinds: list[str]) -> When | None:
    when = data.get("when")
    if when is None:
        if kinds == ["text"]:
            return None  # a text without a moment: the video is searched for it
        raise InvalidInputError(
            f'{label} needs "when": {{"frame": INDEX}} or {{"time": SECONDS}}, the moment it is marked on '
            f'(only a "text" region may leave it out)'
        )
    if not isinstance(when, Mapping) or len(when) != 1 or not ({"frame", "time"} & set(when)):
        raise InvalidInputError(
            f'the "when" of {label} must be {{"frame": INDEX}} or {{"time": SECONDS}}, got {_shown(when)}'
        )
    if "frame" in when:
        frame = _whole_from_json(when["frame"], f"the frame of {label}")
        if frame is None:
            raise InvalidInputError(f"the frame of {label} must be a whole number, got null")
        return When(frame=frame)
    if not _is_number(when["time"]):
        raise InvalidInputError(f"the time of {label} must be a number of seconds, got {_shown(when['time'])}")
    return When(time=float(when["time"]))


def _numbers_from_json(value: Any, what: str, shape: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        raise InvalidInputError(f"{what} must be a list of numbers {shape}, got {_shown(value)}")
    return tuple(value)


def _points_from_json(value: Any, label: str) -> tuple[tuple[float, ...], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInputError(f"the points of {label} must be a list of [x, y] clicks, got {_shown(value)}")
    return tuple(_numbers_from_json(p, f"each click of {label}", "[x, y]") for p in value)  # type: ignore[misc]


def _labels_from_json(value: Any, label: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        v in (0, 1) and isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InvalidInputError(
            f"the labels of {label} must be a list of 1 (object) and 0 (background), one per click, got {_shown(value)}"
        )
    return tuple(value)


def _text_from_json(value: Any, label: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f'the "text" of {label} must be a phrase, e.g. "a red car", got {_shown(value)}')
    return value


def _mask_from_json(value: Any, label: str, read_mask: Callable[[str], np.ndarray] | None) -> np.ndarray:
    if isinstance(value, str) and read_mask is not None:
        return read_mask(value)
    rle = '{"size": [height, width], "counts": "..."}'
    if not isinstance(value, Mapping) or set(value) != {"size", "counts"}:
        file = " or the path of a mask image" if read_mask is not None else ""
        raise InvalidInputError(
            f"the mask of {label} must be COCO RLE {rle} as result files write it{file}, got {_shown(value)[:80]}"
        )
    try:
        return decode_rle(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"the mask of {label}: {exc}") from exc
