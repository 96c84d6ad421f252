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
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..files import atomic_write_json
from ..masks import decode_rle, encode_rle, mask_bbox

TRACKS_FORMAT = "garvideo.tracks"
TRACKS_VERSION = 1


@dataclass(frozen=True)
class TrackFrame:
    """One object on one frame.

    ``rle`` is the mask as COCO compressed RLE (``{"size": [h, w], "counts": str}``);
    ``box`` its tight box ``(x_min, y_min, x_max, y_max)`` in pixels, max
    inclusive (as :func:`garvideo.masks.mask_bbox`), None when the mask is
    empty; ``score`` the tracker's confidence that the object is present
    (0..1); ``visible`` whether the mask marks any pixel. A frame where the
    object has left the scene is simply ``visible=False``.
    """

    index: int
    time: float
    rle: Mapping[str, Any]
    box: tuple[int, int, int, int] | None
    score: float
    visible: bool

    @classmethod
    def from_mask(cls, index: int, time: float, mask: np.ndarray, score: float = 1.0) -> TrackFrame:
        """Encode ``mask`` and derive its box and visibility."""
        mask = np.asarray(mask, dtype=bool)
        box = mask_bbox(mask)
        return cls(
            index=int(index),
            time=float(time),
            rle=encode_rle(mask),
            box=box,
            score=float(score),
            visible=box is not None,
        )

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the mask."""
        height, width = self.rle["size"]
        return int(height), int(width)

    def mask(self) -> np.ndarray:
        """The decoded ``(height, width)`` boolean mask."""
        return decode_rle(self.rle)

    def to_dict(self) -> dict[str, Any]:
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
        try:
            rle = data["rle"]
            counts = rle["counts"]
            if not isinstance(counts, str):
                raise InvalidInputError("a track frame's RLE counts must be a compressed COCO string")
            box = data.get("box")
            return cls(
                index=int(data["index"]),
                time=float(data["time"]),
                rle={"size": [int(v) for v in rle["size"]], "counts": counts},
                box=None if box is None else tuple(int(v) for v in box),  # type: ignore[arg-type]
                score=float(data["score"]),
                visible=bool(data["visible"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed track frame {dict(data)!r:.200}: {exc}") from exc


@dataclass(frozen=True)
class Track:
    """One object through the video: its frames, sorted by index, one per tracked frame."""

    name: str
    obj_id: int
    frames: tuple[TrackFrame, ...]

    def __post_init__(self) -> None:
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
        try:
            return cls(
                name=str(data["name"]),
                obj_id=int(data["obj_id"]),
                frames=tuple(TrackFrame.from_dict(f) for f in data["frames"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
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
    return [Track.from_dict(t) for t in doc.get("tracks", [])]


def save_tracks(path: str | os.PathLike[str], tracks: Iterable[Track], meta: Mapping[str, Any] | None = None) -> None:
    """Write tracks as JSON, atomically."""
    atomic_write_json(path, tracks_to_json(tracks, meta))


def load_tracks(path: str | os.PathLike[str]) -> list[Track]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"tracks file not found: {path}") from exc
    return tracks_from_json(text)
