"""The small records that leave ``garvideo.video``: a video's facts, a decoded frame, a choice of frames."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


class VideoDecodeWarning(UserWarning):
    """Part of a video could not be read (a truncated download, a corrupt packet).

    The frames before the damage are still returned; the message says where reading stopped.
    """


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, as a player would show it.

    ``width``/``height`` are the displayed size (rotation applied); ``rotation`` is
    how many degrees clockwise the stored picture is turned for display (90 for
    most portrait phone clips). Times are seconds since the first frame.
    """

    path: str
    width: int
    height: int
    rotation: int
    fps: float
    num_frames: int
    num_frames_exact: bool
    duration: float
    codec: str
    container: str
    pixel_format: str | None
    bit_rate: int | None
    has_audio: bool
    variable_frame_rate: bool
    keyframes: int
    coded_width: int
    coded_height: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: its index in display order, presentation time and RGB pixels.

    ``image`` is ``(height, width, 3)`` uint8 RGB in displayed orientation.
    """

    index: int
    time: float
    image: np.ndarray

    def __repr__(self) -> str:  # the array would flood logs
        return f"Frame(index={self.index}, time={self.time:.6f}, image={self.image.shape})"


@dataclass(frozen=True)
class FrameSelection:
    """Frame indices with their presentation times (seconds), in the order they were asked for."""

    indices: tuple[int, ...]
    times: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.times):
            raise ValueError("a FrameSelection needs one time per index")

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)

    def to_dict(self) -> dict[str, Any]:
        return {"indices": list(self.indices), "times": list(self.times)}


@dataclass(frozen=True)
class DecodeStats:
    """Work a decoder has done so far: frames out of the codec (wanted or not) and seeks."""

    frames_decoded: int
    seeks: int


@dataclass(frozen=True)
class Window:
    """A span ``[start, end)`` of the video in seconds and the frames chosen inside it."""

    number: int
    start: float
    end: float
    selection: FrameSelection

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "start": self.start, "end": self.end, **self.selection.to_dict()}
