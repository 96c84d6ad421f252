"""Short generated videos with known contents, for tests and ``garvideo selftest``.

Every clip is written with PyAV in well under a second and comes with its
ground truth. Frames of the ``*_clip`` generators carry their own index as a
4x4 grid of large black/white cells in the top-left corner of the displayed
picture (:func:`read_index` reads it back), which survives lossy compression
and tells whether a reader returned the right frame in the right orientation.

:func:`moving_object_clip` is a textured object moving over a textured
background (optionally leaving the picture, optionally with a second object),
with per-frame ground-truth masks and boxes, for tracking and pipeline tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..masks import mask_bbox

CODE_BITS = 16
_GRID = 4  # cells per side of the index code
_LOW, _HIGH = 16, 235  # video-range black and white: no clipping surprises


@dataclass(frozen=True)
class ClipTruth:
    """What a generated clip holds, as a correct reader must report it.

    ``width``/``height`` are displayed (rotation applied); ``rotation`` is the
    clockwise turn a player applies; ``times`` are seconds since the first
    frame; ``pts`` are the timestamps written, in ``time_base`` units.
    """

    path: Path
    width: int
    height: int
    rotation: int
    pts: tuple[int, ...]
    time_base: Fraction
    times: tuple[float, ...]
    duration: float
    codec: str
    has_audio: bool = False

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    @property
    def fps(self) -> float:
        return self.num_frames / self.duration


# -- the index code ----------------------------------------------------------


def _cell_size(width: int, height: int) -> int:
    return max(4, min(width, height) // (_GRID + 2))


def index_image(index: int, width: int, height: int) -> np.ndarray:
    """An RGB picture (displayed orientation) whose top-left cells encode ``index``."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = 60 + (120 * xx // max(1, width - 1))
    image[..., 1] = 60 + (120 * yy // max(1, height - 1))
    image[..., 2] = 110
    return paint_index(image, index)


def paint_index(image: np.ndarray, index: int) -> np.ndarray:
    """Paint the code of ``index`` over the top-left corner of an RGB ``image`` (in place) and return it."""
    if not 0 <= index < 2**CODE_BITS:
        raise ValueError(f"index {index} does not fit in {CODE_BITS} bits")
    height, width = image.shape[:2]
    cell = _cell_size(width, height)
    for bit in range(CODE_BITS):
        row, col = divmod(bit, _GRID)
        value = _HIGH if (index >> bit) & 1 else _LOW
        image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = value
    return image


def read_index(image: np.ndarray) -> int:
    """The index that :func:`index_image` encoded in ``image`` (after lossy coding too)."""
    height, width = image.shape[:2]
    cell = _cell_size(width, height)
    gray = image.astype(np.float32).mean(axis=2)
    margin = cell // 4
    index = 0
    for bit in range(CODE_BITS):
        row, col = divmod(bit, _GRID)
        inner = gray[row * cell + margin : (row + 1) * cell - margin, col * cell + margin : (col + 1) * cell - margin]
        if inner.mean() > (_LOW + _HIGH) / 2:
            index |= 1 << bit
    return index


# -- writing -----------------------------------------------------------------


def _x264_options(gop: int | None, bframes: int, crf: int) -> dict[str, str]:
    params = [f"bframes={bframes}"]
    if gop is not None:
        params += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
    return {"preset": "veryfast", "crf": str(crf), "x264-params": ":".join(params)}


def _silent_audio_stream(container: av.container.OutputContainer, sample_rate: int = 16000) -> av.AudioStream:
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = "mono"
    return stream


def _write_silence(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    samples_per_frame = 1024
    for number in range(max(1, int(seconds * stream.rate) // samples_per_frame)):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, samples_per_frame), np.float32), format="fltp", layout="mono")
        frame.sample_rate = stream.rate
        frame.pts = number * samples_per_frame
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_frames(
    path: str | os.PathLike[str],
    images: Iterable[np.ndarray],
    frame_times: Sequence[Fraction],
    *,
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    bframes: int = 0,
    crf: int = 18,
    audio: bool = False,
    faststart: bool = False,
) -> ClipTruth:
    """Encode displayed-orientation RGB ``images`` as H.264, shown at ``frame_times`` (seconds, exact fractions).

    ``rotation`` (clockwise degrees) stores each picture turned the other way with
    display-matrix metadata, as phones do. The container follows the file suffix.
    """
    path = Path(path)
    if rotation % 90 or not 0 <= rotation < 360:
        raise ValueError("rotation must be 0, 90, 180 or 270 degrees")
    times = [Fraction(t) for t in frame_times]
    if any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError("frame times must increase")
    if len(times) < 2:
        raise ValueError("a clip needs at least two frames")
    steps = [b - a for a, b in zip(times, times[1:])]
    time_base = Fraction(1, int(np.lcm.reduce([t.denominator for t in times + steps])))
    pts = [int(t / time_base) for t in times]
    last_duration = steps[-1]  # the last frame stays on screen as long as the one before it
    durations = [int(step / time_base) for step in steps + [last_duration]]
    options = {"movflags": "+faststart"} if faststart else {}
    images = iter(images)
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=max(1, round(1 / min(steps))))
        first = next(images)
        stored = np.rot90(first, k=rotation // 90)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = pix_fmt
        stream.codec_context.time_base = time_base
        stream.options = _x264_options(gop, bframes, crf)
        if rotation:
            stream.set_display_rotation(-rotation)  # PyAV's angle is counter-clockwise
        audio_stream = _silent_audio_stream(container) if audio else None
        duration_of = dict(zip(pts, durations))

        def mux(packets: list[av.Packet]) -> None:
            for packet in packets:
                # Encoders guess durations from the nominal rate; the container must hold the true ones.
                packet.duration = duration_of.get(packet.pts, packet.duration)
                container.mux(packet)

        for image, timestamp in zip(_chain(first, images), pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(image, k=rotation // 90)), format="rgb24")
            frame.pts = timestamp
            frame.time_base = time_base
            mux(stream.encode(frame))
        mux(stream.encode())
        if audio_stream is not None:
            _write_silence(container, audio_stream, float(times[-1] + last_duration))
    height, width = first.shape[:2]
    origin = times[0]
    return ClipTruth(
        path=path,
        width=width,
        height=height,
        rotation=rotation,
        pts=tuple(pts),
        time_base=time_base,
        times=tuple(float(t - origin) for t in times),
        duration=float(times[-1] + last_duration - origin),
        codec="h264",
        has_audio=audio,
    )


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest


def _indexed_clip(
    path: str | os.PathLike[str], frame_times: Sequence[Fraction], size: tuple[int, int], **options
) -> ClipTruth:
    width, height = size
    images = (index_image(i, width, height) for i in range(len(frame_times)))
    return write_frames(path, images, frame_times, **options)


# -- the clips the tests need ------------------------------------------------


def constant_rate_clip(
    path: str | os.PathLike[str],
    num_frames: int = 30,
    fps: int | Fraction = 15,
    size: tuple[int, int] = (64, 48),
    **options,
) -> ClipTruth:
    """``num_frames`` frames at a constant ``fps``; ``options`` go to :func:`write_frames` (gop, bframes, audio...)."""
    step = 1 / Fraction(fps)
    return _indexed_clip(path, [i * step for i in range(num_frames)], size, **options)


def variable_rate_clip(
    path: str | os.PathLike[str],
    durations_ms: Sequence[int] = (40, 80, 120, 33, 200, 50),
    num_frames: int = 30,
    size: tuple[int, int] = (64, 48),
    **options,
) -> ClipTruth:
    """Frames shown for ``durations_ms`` in turn (cycled): a variable-frame-rate clip with known times."""
    times = [Fraction(0)]
    for i in range(num_frames - 1):
        times.append(times[-1] + Fraction(durations_ms[i % len(durations_ms)], 1000))
    return _indexed_clip(path, times, size, **options)


def rotated_clip(
    path: str | os.PathLike[str], rotation: int = 90, num_frames: int = 12, size: tuple[int, int] = (48, 64), **options
) -> ClipTruth:
    """A clip stored turned with display-matrix rotation metadata; ``size`` is the displayed (portrait) size."""
    return constant_rate_clip(path, num_frames, 15, size, rotation=rotation, **options)


def odd_size_clip(path: str | os.PathLike[str], size: tuple[int, int] = (97, 53), num_frames: int = 10) -> ClipTruth:
    """A clip of odd width and height (4:4:4 chroma, since 4:2:0 needs even sizes)."""
    return constant_rate_clip(path, num_frames, 15, size, pix_fmt="yuv444p")


def long_gop_clip(
    path: str | os.PathLike[str],
    num_frames: int = 120,
    gop: int = 60,
    bframes: int = 3,
    size: tuple[int, int] = (64, 48),
) -> ClipTruth:
    """H.264 with a keyframe only every ``gop`` frames and B-frames (reordered decode order)."""
    return constant_rate_clip(path, num_frames, 30, size, gop=gop, bframes=bframes)


def audio_only_clip(path: str | os.PathLike[str], seconds: float = 1.0) -> Path:
    """An AAC file with no video stream (use a ``.m4a`` or ``.mp4`` suffix)."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        _write_silence(container, _silent_audio_stream(container), seconds)
    return path


def zero_frame_clip(path: str | os.PathLike[str]) -> Path:
    """A Matroska file whose video stream holds no frames (an audio track keeps it a valid file)."""
    path = Path(path).with_suffix(".mkv") if Path(path).suffix != ".mkv" else Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        _write_silence(container, _silent_audio_stream(container), 0.5)
    return path


def truncated_clip(
    path: str | os.PathLike[str], keep: float = 0.6, num_frames: int = 60, size: tuple[int, int] = (128, 96)
) -> ClipTruth:
    """A clip cut after ``keep`` of its bytes, like an interrupted download; the truth is the whole clip's.

    With an ``.mp4`` suffix the index is written first (faststart) so the cut leaves it
    intact but the data short; ``.mkv`` simply ends early.
    """
    path = Path(path)
    truth = constant_rate_clip(path, num_frames, 15, size, gop=10, faststart=path.suffix == ".mp4")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return truth


def not_video_file(path: str | os.PathLike[str]) -> Path:
    """A text file with a video suffix."""
    path = Path(path)
    path.write_text("this is not a video\n" * 20)
    return path


# -- a moving object with ground-truth masks ----------------------------------


@dataclass(frozen=True, eq=False)
class ObjectTruth:
    """One object's ground truth over a clip: a mask, a tight box and visibility per frame."""

    name: str
    masks: np.ndarray  # (frames, height, width) bool
    boxes: tuple[tuple[int, int, int, int] | None, ...]  # (x_min, y_min, x_max, y_max), max inclusive
    visible: tuple[bool, ...]


@dataclass(frozen=True, eq=False)
class MovingObjectTruth:
    path: Path
    width: int
    height: int
    fps: int
    times: tuple[float, ...]
    objects: tuple[ObjectTruth, ...]

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def masks(self) -> np.ndarray:
        """The first object's masks."""
        return self.objects[0].masks

    @property
    def boxes(self) -> tuple[tuple[int, int, int, int] | None, ...]:
        """The first object's boxes."""
        return self.objects[0].boxes


def _texture(height: int, width: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Smooth coloured noise: a few random plane waves per channel."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), dtype=np.float32)
    for channel in range(3):
        for _ in range(4):
            angle = rng.uniform(0, np.pi)
            frequency = rng.uniform(0.5, 1.5) * scale
            phase = rng.uniform(0, 2 * np.pi)
            image[..., channel] += np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * frequency + phase)
    image = (image - image.min()) / max(1e-6, float(image.max() - image.min()))
    return image


def moving_object_clip(
    path: str | os.PathLike[str],
    num_frames: int = 30,
    fps: int = 12,
    size: tuple[int, int] = (160, 120),
    leaves: bool = False,
    second_object: bool = False,
    seed: int = 0,
) -> MovingObjectTruth:
    """A textured ellipse crossing a textured background left to right, with exact masks.

    ``leaves``: the object exits on the right by the middle of the clip and stays
    out (empty masks, ``visible`` False). ``second_object``: a striped square moves
    right to left in the lower part of the picture, never overlapping the first.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("moving_object_clip needs an even width and height")
    rng = np.random.default_rng(seed)
    texture = 0.65 * _texture(height, width, rng, 0.08) + 0.35 * _texture(height, width, rng, 0.4)
    background = (40 + 150 * texture).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]

    radius_x, radius_y = max(6, width // 9), max(5, height // 7)
    object_skin = _texture(2 * radius_y + 1, 2 * radius_x + 1, rng, 0.9)
    object_skin = (np.array([230, 70, 40]) * (0.5 + 0.5 * object_skin)).astype(np.uint8)
    side = max(6, height // 6)
    stripes = ((np.arange(side)[None, :] + np.arange(side)[:, None]) // 3) % 2
    square_skin = np.where(stripes[..., None] == 1, np.array([250, 240, 60]), np.array([30, 60, 200])).astype(np.uint8)

    last = max(1, num_frames - 1)
    exit_frame = num_frames // 2 if leaves else last
    first_masks = np.zeros((num_frames, height, width), dtype=bool)
    second_masks = np.zeros((num_frames, height, width), dtype=bool)
    images = []
    for index in range(num_frames):
        image = background.copy()
        # Main object: from the left edge to fully out on the right (at exit_frame) when leaving.
        progress = index / exit_frame if exit_frame else 1.0
        end_x = width + radius_x + 1 if leaves else width - radius_x - 2
        center_x = round(radius_x + 1 + progress * (end_x - radius_x - 1))
        center_y = round(height * 0.35 + height * 0.08 * np.sin(index / last * 2 * np.pi))
        inside = ((xx - center_x) / radius_x) ** 2 + ((yy - center_y) / radius_y) ** 2 <= 1.0
        ys, xs = np.nonzero(inside)
        image[ys, xs] = object_skin[ys - center_y + radius_y, xs - center_x + radius_x]
        first_masks[index] = inside
        if second_object:
            left = round((width - side - 1) * (1 - index / last))
            top = height - side - max(2, height // 12)
            image[top : top + side, left : left + side] = square_skin
            second_masks[index, top : top + side, left : left + side] = True
        images.append(image)

    times = [Fraction(i, fps) for i in range(num_frames)]
    write_frames(path, images, times, crf=12)
    objects = [_object_truth("object", first_masks)]
    if second_object:
        objects.append(_object_truth("square", second_masks))
    return MovingObjectTruth(
        path=Path(path),
        width=width,
        height=height,
        fps=fps,
        times=tuple(float(t) for t in times),
        objects=tuple(objects),
    )


def _object_truth(name: str, masks: np.ndarray) -> ObjectTruth:
    boxes = tuple(mask_bbox(mask) for mask in masks)
    return ObjectTruth(name=name, masks=masks, boxes=boxes, visible=tuple(box is not None for box in boxes))
