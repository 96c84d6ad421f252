"""Tracks: one object's mask on each tracked frame, and their JSON form.

A :class:`Track` is what the tracker returns per object and what the
pipeline builds from ground-truth masks for benchmarks
(:meth:`Track.from_masks`). Masks are stored as COCO compressed RLE
(:func:`garvideo.masks.encode_rle`), so a long track stays small and COCO
tools read it directly.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TextIO

import numpy as np

from ..errors import InvalidInputError
from ..files import atomic_path
from ..inputs import regular_file_problem
from ..masks import decode_rle, encode_rle, mask_bbox
from ..names import check_region_name

TRACKS_FORMAT = "garvideo.tracks"
TRACKS_VERSION = 1


@dataclass(frozen=True, init=False)
class TrackFrame:
    """One object on one frame.

    ``rle`` is the mask as COCO compressed RLE (``{"size": [h, w], "counts": str}``);
    ``box`` its tight box ``(x_min, y_min, x_max, y_max)`` in pixels, max
    inclusive (as :func:`garvideo.masks.mask_bbox`), None when the mask is
    empty; ``score`` the tracker's confidence that the object is present
    (0..1). :attr:`visible` (whether the mask marks any pixel) follows from
    the box, so the two cannot disagree: a frame where the object has left the
    scene has no box and is not visible.
    """

    index: int
    time: float
    rle: Mapping[str, Any]
    box: tuple[int, int, int, int] | None
    score: float

    def __init__(
        self,
        index: int,
        time: float,
        rle: Mapping[str, Any],
        box: Sequence[int] | None,
        score: float,
        visible: bool | None = None,
    ) -> None:
        """``visible`` is accepted for callers that pass it (and JSON that holds it); it must agree with ``box``."""
        set_ = object.__setattr__
        set_(self, "index", int(index))
        set_(self, "time", float(time))
        set_(self, "rle", rle)
        set_(self, "box", None if box is None else _checked_box(box, self.size))
        set_(self, "score", float(score))
        if visible is not None and bool(visible) != self.visible:
            raise InvalidInputError(
                f"track frame {self.index} says visible={bool(visible)} but its box is {self.box}: a visible "
                f"object has a box, an absent one has none"
            )

    @property
    def visible(self) -> bool:
        """Whether the object is on this frame (its mask marks a pixel, so it has a box)."""
        return self.box is not None

    @classmethod
    def from_mask(cls, index: int, time: float, mask: np.ndarray, score: float = 1.0) -> TrackFrame:
        """Encode ``mask`` and derive its box (and so its visibility)."""
        mask = np.asarray(mask, dtype=bool)
        return cls(index=index, time=time, rle=encode_rle(mask), box=mask_bbox(mask), score=score)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the mask."""
        height, width = self.rle["size"]
        return int(height), int(width)

    def mask(self) -> np.ndarray:
        """The decoded ``(height, width)`` boolean mask."""
        return decode_rle(self.rle)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``visible`` is written for readers of the file, and checked against the box when read."""
        return {
            "index": self.index,
            "time": self.time,
            "rle": {"size": list(self.size), "counts": self.rle["counts"]},
            "box": None if self.box is None else list(self.box),
            "score": self.score,
            "visible": self.visible,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackFrame:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"a track frame must be a JSON object, got {_short(data)}")
        try:
            rle = data["rle"]
            if not isinstance(rle, Mapping):
                raise InvalidInputError(f"its rle must be an object with size and counts, got {_short(rle)}")
            counts, size = rle["counts"], rle["size"]
            if not isinstance(counts, str):
                raise InvalidInputError("its RLE counts must be a compressed COCO string")
            if not isinstance(size, list) or len(size) != 2 or not all(_is_count(v) for v in size):
                raise InvalidInputError(f"its RLE size must be [height, width], got {_short(size)}")
            visible = data.get("visible")
            if visible is not None and not isinstance(visible, bool):
                raise InvalidInputError(f"its visible must be true or false, got {_short(visible)}")
            return cls(
                index=data["index"],
                time=data["time"],
                rle={"size": [int(v) for v in size], "counts": counts},
                box=data.get("box"),
                score=data["score"],
                visible=visible,
            )
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            problem = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InvalidInputError(f"malformed track frame {_short(data)}: {problem}") from exc


@dataclass(frozen=True)
class FrameTracked:
    """SAM2 has tracked a frame: each region tracked on it (by name) with its mask, box, score and visibility.

    Sent while a track runs (``Sam2Tracker.track(on_frame=...)``, ``Pipeline.track(on_event=...)``), in the
    order frames are tracked: every prompted frame first, then forward, then backward, so not in index order.
    ``done`` of ``total`` frames tracked so far (a frame tracked in both directions counts twice; ``total``
    grows once the backward pass is known).
    """

    index: int
    time: float
    regions: Mapping[str, TrackFrame]
    done: int
    total: int


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0


def _checked_box(box: Sequence[int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` as four ints inside a ``size`` mask (max inclusive), or :class:`InvalidInputError`."""
    if isinstance(box, (str, bytes)) or not isinstance(box, Sequence) or len(box) != 4:
        raise InvalidInputError(f"a box must be 4 numbers x_min, y_min, x_max, y_max, got {_short(box)}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in box):
        raise InvalidInputError(f"a box must be 4 whole pixel numbers, got {_short(box)}")
    x1, y1, x2, y2 = (int(v) for v in box)
    height, width = size
    if not (0 <= x1 <= x2 < width and 0 <= y1 <= y2 < height):
        raise InvalidInputError(f"the box {[x1, y1, x2, y2]} does not fit a {width}x{height} mask (max inclusive)")
    return x1, y1, x2, y2


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class Track:
    """One object through the video: its frames, sorted by index, one per tracked frame."""

    name: str
    obj_id: int
    frames: tuple[TrackFrame, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_region_name(self.name))
        frames = tuple(sorted(self.frames, key=lambda f: f.index))
        indices = [f.index for f in frames]
        if len(set(indices)) != len(indices):
            raise InvalidInputError(f"track {self.name!r} has two entries for one frame")
        sizes = {f.size for f in frames}
        if len(sizes) > 1:
            raise InvalidInputError(f"track {self.name!r} mixes mask sizes {sorted(sizes)}")
        object.__setattr__(self, "frames", frames)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def from_masks(
        cls,
        name: str,
        masks: Mapping[int, np.ndarray],
        *,
        times: Mapping[int, float] | Sequence[float] | None = None,
        fps: float | None = None,
        obj_id: int = 1,
        scores: Mapping[int, float] | None = None,
    ) -> Track:
        """A track from ``{frame index: boolean mask}`` (ground truth, another tracker).

        Each frame's time comes from ``times`` (by index) or ``index / fps``;
        ``scores`` defaults to 1.0 for a visible mask and 0.0 for an empty one.
        """
        if times is None and (fps is None or not fps > 0):
            raise InvalidInputError("Track.from_masks needs the frames' times: pass times= or a positive fps=")
        frames = []
        for index, mask in masks.items():
            time = float(times[index]) if times is not None else index / float(fps)  # type: ignore[arg-type,index]
            mask = np.asarray(mask, dtype=bool)
            default_score = 1.0 if mask.any() else 0.0
            score = default_score if scores is None else float(scores.get(index, default_score))
            frames.append(TrackFrame.from_mask(index, time, mask, score))
        return cls(name=name, obj_id=int(obj_id), frames=tuple(frames))

    # -- access ---------------------------------------------------------------------

    @cached_property
    def indices(self) -> tuple[int, ...]:
        return tuple(f.index for f in self.frames)

    @cached_property
    def _position(self) -> dict[int, int]:
        return {f.index: pos for pos, f in enumerate(self.frames)}

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        # the frames' RLE strings would flood a console
        span = self.visible_span()
        visible = f"{span[0]}..{span[1]}" if span else "never"
        return f"Track(name={self.name!r}, obj_id={self.obj_id}, frames={len(self.frames)}, visible={visible})"

    def frame(self, index: int) -> TrackFrame:
        """The entry for frame ``index``; :class:`InvalidInputError` if it was not tracked."""
        pos = self._position.get(index)
        if pos is not None:
            return self.frames[pos]
        span = f"{self.frames[0].index}..{self.frames[-1].index}" if self.frames else "none"
        raise InvalidInputError(f"track {self.name!r} has no entry for frame {index} (tracked frames: {span})")

    def mask_at(self, index: int) -> np.ndarray:
        """The decoded boolean mask on frame ``index``."""
        return self.frame(index).mask()

    def visible_frames(self) -> tuple[TrackFrame, ...]:
        return tuple(f for f in self.frames if f.visible)

    def visible_span(self) -> tuple[int, int] | None:
        """First and last frame index where the object is visible (inclusive), or None."""
        visible = self.visible_frames()
        return (visible[0].index, visible[-1].index) if visible else None

    def nearest_frame(self, index: int) -> TrackFrame:
        """The tracked entry closest to ``index`` (ties go to the earlier frame), for strided tracks."""
        if not self.frames:
            raise InvalidInputError(f"track {self.name!r} is empty")
        pos = bisect.bisect_left(self.indices, index)
        candidates = [self.frames[p] for p in (pos - 1, pos) if 0 <= p < len(self.frames)]
        return min(candidates, key=lambda f: (abs(f.index - index), f.index))

    # -- serialisation ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "obj_id": self.obj_id, "frames": [f.to_dict() for f in self.frames]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"malformed track: expected a JSON object, got {_short(data)}")
        try:
            frames = data["frames"]
            if not isinstance(frames, list):
                raise InvalidInputError(f"its frames must be a list, got {_short(frames)}")
            return cls(
                name=str(data["name"]),
                obj_id=int(data["obj_id"]),
                frames=tuple(TrackFrame.from_dict(f) for f in frames),
            )
        except KeyError as exc:
            raise InvalidInputError(f"malformed track: no {exc}") from exc
        except InvalidInputError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed track: {exc}") from exc


def tracks_to_json(tracks: Iterable[Track], meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready document: format name, version, optional ``meta`` (provenance) and the tracks."""
    doc: dict[str, Any] = {"format": TRACKS_FORMAT, "version": TRACKS_VERSION}
    if meta:
        doc["meta"] = dict(meta)
    doc["tracks"] = [t.to_dict() for t in tracks]
    return doc


def tracks_from_json(doc: Mapping[str, Any] | str) -> list[Track]:
    """Read what :func:`tracks_to_json` wrote (a dict or its JSON text)."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"tracks JSON is not valid JSON: {exc}") from exc
    if not isinstance(doc, Mapping) or doc.get("format") != TRACKS_FORMAT:
        raise InvalidInputError(f'not a garvideo tracks document (expected "format": "{TRACKS_FORMAT}")')
    version = doc.get("version")
    if version != TRACKS_VERSION:
        raise InvalidInputError(
            f"tracks document version {version!r} is not supported (this garvideo reads version {TRACKS_VERSION})"
        )
    tracks = doc.get("tracks")
    if not isinstance(tracks, list):
        raise InvalidInputError(f'a tracks document needs a "tracks" list, got {_short(tracks)}')
    return [Track.from_dict(t) for t in tracks]


def write_tracks_json(stream: TextIO, tracks: Iterable[Track], meta: Mapping[str, Any] | None = None) -> None:
    """Write the document of :func:`tracks_to_json` to a text ``stream``, one frame at a time.

    An hour of tracking is tens of megabytes of JSON: it is never held as one
    string (nor as one dict of every frame). Each frame is one line, so the
    file stays readable and diffable.
    """
    head = {"format": TRACKS_FORMAT, "version": TRACKS_VERSION}
    if meta:
        head["meta"] = dict(meta)
    stream.write(json.dumps(head, indent=2, ensure_ascii=False)[:-2] + ',\n  "tracks": [')
    for t, track in enumerate(tracks):
        name = json.dumps(track.name, ensure_ascii=False)
        stream.write(f'{"," if t else ""}\n    {{"name": {name}, "obj_id": {track.obj_id}, "frames": [')
        for f, frame in enumerate(track.frames):
            stream.write(("," if f else "") + "\n      " + json.dumps(frame.to_dict(), ensure_ascii=False))
        stream.write("\n    ]}")
    stream.write("\n  ]\n}\n")


def save_tracks(path: str | os.PathLike[str], tracks: Iterable[Track], meta: Mapping[str, Any] | None = None) -> None:
    """Write tracks as JSON (:func:`write_tracks_json`), atomically: streamed to a temporary file, then renamed."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as stream:
        write_tracks_json(stream, tracks, meta)


def load_tracks(path: str | os.PathLike[str]) -> list[Track]:
    """Read a file written by :func:`save_tracks`; every problem is an :class:`InvalidInputError` naming the file."""
    return load_tracks_document(path)[0]


def load_tracks_document(path: str | os.PathLike[str]) -> tuple[list[Track], dict[str, Any]]:
    """The tracks of a file written by :func:`save_tracks`, and its ``meta`` (``{}`` when it has none)."""
    name = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path) and (problem := regular_file_problem(path)):
        raise InvalidInputError(f"cannot read the tracks file {name}: {problem}")  # a FIFO would block
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"tracks file not found: {name}") from exc
    except IsADirectoryError as exc:
        raise InvalidInputError(f"{name} is a folder: pass the tracks JSON file written by 'garvideo track'") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{name} is not a tracks file: it is not UTF-8 text (a binary file?)") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read the tracks file {name}: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{name}: tracks JSON is not valid JSON: {exc}") from exc
    try:
        tracks = tracks_from_json(doc)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{name}: {exc}") from exc
    meta = doc.get("meta")
    return tracks, dict(meta) if isinstance(meta, Mapping) else {}
