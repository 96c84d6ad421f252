"""Frame folders: a folder of images read as a video.

Benchmarks such as DAVIS and MeViS (VideoRefer-Bench) ship their videos as
folders of JPEG frames. The image files of the folder, sorted by name, are
frames 0, 1, 2, ... (digit runs compare as numbers, so ``9.jpg`` comes before
``10.jpg``; zero-padded names such as DAVIS's ``00009.jpg`` keep their plain
order). A folder has no frame rate: frame ``i`` is shown at ``i / fps``
seconds, ``fps`` defaulting to :data:`DEFAULT_FOLDER_FPS`. Other files (and
hidden ones) are ignored. Images are read when a frame is asked for, so
opening a folder reads only the first image's header and memory stays bounded.
They become RGB as images given to the model do (:func:`garvideo.images.pil_to_rgb`:
transparency over white, 16-bit grey scaled to 8 bits).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidInputError, VideoError
from ..images import check_rgb_mode, pil_to_rgb, read_image
from ..inputs import regular_file_problem
from .facts import DecodeStats, Frame, VideoDecodeWarning, VideoInfo
from .timeline import Timeline

#: File name endings read as frames (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Frames per second of a folder when the caller does not say (DAVIS-style folders carry none).
DEFAULT_FOLDER_FPS = 30.0
#: ``VideoInfo.codec`` of a frame folder.
FOLDER_CODEC = "images"

_DIGITS = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple:
    # "frame10" after "frame9": digit runs compare as numbers, the rest as text.
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name))


def is_frame_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder (the readers then treat it as frames, see :func:`frame_files`)."""
    return Path(path).is_dir()


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The folder's image files in frame order (see the module docstring)."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        raise VideoError(f"no such frame folder: {folder}") from None
    except NotADirectoryError:
        raise VideoError(f"{folder} is not a folder") from None
    except PermissionError:
        raise VideoError(f"no permission to read the folder {folder}") from None
    names = [
        entry.name
        for entry in entries
        if not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_SUFFIXES) and _is_frame(entry, folder)
    ]
    return [folder / name for name in sorted(names, key=_natural_key)]


def _is_frame(entry: os.DirEntry, folder: Path) -> bool:
    """Whether an image-named entry is a frame: a regular file (or a link to one). A folder is not; anything
    else (a FIFO, a link loop, a link to nothing, a device) is refused, never opened or followed forever."""
    if entry.is_file(follow_symlinks=False):
        return True  # (known from the folder listing on most systems: no system call)
    if os.path.isdir(entry.path):
        return False
    problem = regular_file_problem(entry.path)
    if problem is not None:
        raise VideoError(f"cannot read the frame folder {folder}: {entry.name}: {problem}")
    return True


def _size_and_mode(image: Image.Image) -> tuple[int, int, str]:
    return image.width, image.height, image.mode


def _check_fps(fps: float | None) -> float:
    if fps is None:
        return DEFAULT_FOLDER_FPS
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the frame rate of a frame folder must be a number, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"the frame rate of a frame folder must be a positive number, got {fps!r}")
    return value


def _read_rgb(path: Path) -> np.ndarray:
    return read_image(path, lambda image: pil_to_rgb(image, path.name), "the frame")


class FrameFolderDecoder:
    """Reads the frames of a folder by index, one image at a time (the reader's decoder interface)."""

    def __init__(self, files: list[Path], timeline: Timeline, width: int, height: int) -> None:
        self._files = files
        self._timeline = timeline
        self._size = (width, height)
        self._frames_read = 0

    def close(self) -> None:
        pass  # no file stays open between frames

    @property
    def stats(self) -> DecodeStats:
        return DecodeStats(frames_decoded=self._frames_read, seeks=0)

    def decode(self, indices: Iterable[int]) -> Iterator[Frame]:
        """Yield the frames at ``indices`` in order; an unreadable or odd-sized image is skipped with a warning."""
        for index in indices:
            path = self._files[int(index)]
            try:
                image = _read_rgb(path)
            except InvalidInputError as exc:
                warnings.warn(
                    f"{self._timeline.name}: frame {index} ({path.name}) cannot be read, so it was skipped: {exc}",
                    VideoDecodeWarning,
                    stacklevel=2,
                )
                continue
            self._frames_read += 1
            height, width = image.shape[:2]
            if (width, height) != self._size:
                warnings.warn(
                    f"{self._timeline.name}: frame {index} ({path.name}) is {width}x{height} but the folder's "
                    f"first frame is {self._size[0]}x{self._size[1]}; it was skipped",
                    VideoDecodeWarning,
                    stacklevel=2,
                )
                continue
            yield Frame(index=int(index), time=float(self._timeline.times[index]), image=image)


def probe_frame_folder(
    path: str | os.PathLike[str], fps: float | None = None
) -> tuple[VideoInfo, Timeline, list[Path]]:
    """The facts and timeline of a frame folder (reads only the first image's header), and its files."""
    rate = _check_fps(fps)
    name = os.fspath(path)
    files = frame_files(path)
    if not files:
        raise VideoError(
            f"{name} is a folder with no image files ({', '.join(IMAGE_SUFFIXES)}): it cannot be read as a video"
        )
    width, height, mode = read_image(files[0], _size_and_mode, "the first frame", VideoError)
    try:
        check_rgb_mode(mode, f"the first frame of {name}, {files[0].name},")
    except InvalidInputError as exc:
        raise VideoError(str(exc)) from None
    count = len(files)
    timeline = Timeline(
        name=name,
        times=np.arange(count, dtype=np.float64) / rate,
        duration=count / rate,
        exact=True,
        keyframes=np.arange(count, dtype=np.int64),  # every image decodes on its own
    )
    suffixes = sorted({f.suffix.lower().lstrip(".") for f in files})
    info = VideoInfo(
        path=name,
        width=int(width),
        height=int(height),
        rotation=0,
        fps=rate,
        num_frames=count,
        num_frames_exact=True,
        duration=count / rate,
        codec=FOLDER_CODEC,
        container="folder of " + "/".join(suffixes),
        pixel_format=mode,
        bit_rate=None,
        has_audio=False,
        variable_frame_rate=False,
        keyframes=count,
        coded_width=int(width),
        coded_height=int(height),
    )
    return info, timeline, files
