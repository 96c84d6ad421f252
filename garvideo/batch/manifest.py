"""Batch manifests: one JSON object per line naming a video, its regions and an optional question.

::

    {"video": "clips/a.mp4",
     "regions": [{"name": "dog", "when": {"frame": 12}, "box": [x1, y1, x2, y2]},
                 {"name": "ball", "when": {"time": 4.5}, "points": [[x, y], ...], "labels": [1, ...]},
                 {"name": "cat", "when": {"frame": 0}, "mask": "masks/cat.png"},
                 {"name": "car", "when": null, "text": "a red car"}],   (null or left out: search the video)
     "question": "What is <dog> doing with <ball>?",      (optional)
     "options": ["playing", "sleeping"]}                   (optional, with a question)

A region is exactly what :meth:`RegionPrompt.to_dict` writes (a result
document's ``regions[].prompts`` can be copied in as they are; README,
"Regions as JSON"), read by :meth:`RegionPrompt.from_dict`. One extension: a
``mask`` may also be the path of a mask image instead of COCO RLE. Paths
(video, mask images) are relative to the batch folder, or else to the
manifest's folder. A line that cannot be read becomes an item that fails
with the reason, so one bad line never stops a batch; :func:`check_lines`
reads every line before any model loads, and a manifest with no line that
can be run is one error. Lines are read within bounds (:data:`MAX_LINE_BYTES` a line;
:mod:`garvideo.bounded_json`: nesting, the length of numbers), and a mask's size is compared with the frame
(or, before the video is open, with :data:`MAX_MASK_PIXELS`) before it is
decoded. A UTF-8 byte order mark is accepted.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..bounded_json import loads_bounded
from ..errors import InvalidInputError
from ..images import read_image_size
from ..inputs import open_regular_file
from ..masks import read_mask_image
from ..names import check_options, resolve_references
from ..tracking import RegionPrompt

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: The longest line a manifest may hold, in bytes (a line's masks as COCO RLE take some kilobytes each).
MAX_LINE_BYTES = 16 * 2**20

#: The largest mask a line may hold before its video is open (an 8K frame is 33 million pixels); once it is,
#: a mask must be the frame's size. Checked before a mask is decoded.
MAX_MASK_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class ManifestLine:
    """One line of a manifest, read lazily: ``parse`` raises for a bad line, per item."""

    number: int  # 1-based line number
    text: str
    key: str

    def data(self) -> Any:
        """The line's JSON value (:class:`InvalidInputError` for a line that is not JSON or goes beyond bounds)."""
        return loads_bounded(self.text, f"line {self.number}")

    def video(self, folder: Path, manifest_dir: Path) -> Path:
        """The video the line names, found (before anything else of the line is read)."""
        data = self.data()
        return _video(data, folder, manifest_dir, f"line {self.number}: ")

    def parse(self, folder: Path, manifest_dir: Path, frame_size: tuple[int, int] | None = None) -> BatchRequest:
        """What the line asks for; ``frame_size`` (height, width), when known, is what every mask must be."""
        return BatchRequest.from_dict(self.data(), folder, manifest_dir, self.number, frame_size)


@dataclass(frozen=True)
class BatchRequest:
    """What one manifest line asks for, with paths resolved and regions parsed."""

    line: int
    video: Path
    regions: tuple[RegionPrompt, ...]
    question: str | None = None
    options: tuple[str, ...] | None = None

    @classmethod
    def from_dict(
        cls, data: Any, folder: Path, manifest_dir: Path, line: int = 0, frame_size: tuple[int, int] | None = None
    ) -> BatchRequest:
        where = f"line {line}: " if line else ""
        video = _video(data, folder, manifest_dir, where)
        raw_regions = data.get("regions")
        if not isinstance(raw_regions, list) or not raw_regions:
            raise InvalidInputError(f"{where}'regions' must be a non-empty list")
        regions = tuple(_region(r, k, folder, manifest_dir, where, frame_size) for k, r in enumerate(raw_regions, 1))
        question = data.get("question")
        if question is not None and (not isinstance(question, str) or not question.strip()):
            raise InvalidInputError(f"{where}'question' must be non-empty text")
        options = data.get("options")
        if options is not None:
            if question is None:
                raise InvalidInputError(f"{where}'options' need a 'question'")
            if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
                raise InvalidInputError(f"{where}'options' must be a list of at least two strings")
            try:
                check_options(options)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{where}{exc}") from None
            options = tuple(options)
        if question is not None:
            _check_references(question, options or (), regions, where)
        return cls(line=line, video=video, regions=regions, question=question, options=options)


def _video(data: Any, folder: Path, manifest_dir: Path, where: str) -> Path:
    """A line's keys checked and its video found."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where}expected a JSON object with 'video' and 'regions'")
    unknown = set(data) - {"video", "regions", "question", "options"}
    if unknown:
        raise InvalidInputError(f"{where}unknown keys {sorted(unknown)}: use video, regions, question, options")
    if not isinstance(data.get("video"), str) or not data["video"]:
        raise InvalidInputError(f"{where}'video' must be a path")
    return _resolve(data["video"], folder, manifest_dir, where, "video")


def _check_references(question: str, options: tuple[str, ...], regions: tuple[RegionPrompt, ...], where: str) -> None:
    """A question naming a region the line does not give fails the line here, before any work on it (with
    ``--describe always`` the line would be described first). A line with text regions is left to the pipeline,
    which knows their names (``car``, ``car#2``, ...) once they are found."""
    if any(region.kind == "text" for region in regions):
        return
    try:
        resolve_references(" ".join([question, *options]), list(dict.fromkeys(region.name for region in regions)))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}{exc}") from exc


def _resolve(text: str, folder: Path, manifest_dir: Path, where: str, what: str) -> Path:
    path = Path(text).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [folder / path, manifest_dir / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise InvalidInputError(
        f"{where}{what} {text!r} not found (looked in {', '.join(str(c.parent) for c in candidates)})"
    )


def _region(
    data: Any, number: int, folder: Path, manifest_dir: Path, where: str, frame_size: tuple[int, int] | None
) -> RegionPrompt:
    def read_mask(path: str) -> Any:
        image = _resolve(path, folder, manifest_dir, where, "mask")
        # The header's size, read as read_mask_image reads the file (a FIFO is refused before any blocking open).
        _check_mask_size(read_image_size(image, "the mask image"), frame_size, f"the mask image {path}")
        return read_mask_image(image)

    try:
        mask = data.get("mask") if isinstance(data, dict) else None
        if isinstance(mask, dict):
            _check_mask_size(_rle_size(mask), frame_size, "its mask")
        return RegionPrompt.from_dict(data, read_mask=read_mask)
    except InvalidInputError as exc:
        if where and str(exc).startswith(where):  # a mask path not found already says where
            raise
        raise InvalidInputError(f"{where}region {number}: {exc}") from exc


def _rle_size(rle: dict[str, Any]) -> tuple[int, int] | None:
    size = rle.get("size")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size):
        return size[0], size[1]
    return None  # malformed: RegionPrompt.from_dict says so


def _check_mask_size(size: tuple[int, int] | None, frame_size: tuple[int, int] | None, what: str) -> None:
    """Refuse a mask of another size than the frame, or a huge one before the frame is known, before decoding it."""
    if size is None:
        return
    height, width = size
    if frame_size is not None and (height, width) != tuple(frame_size):
        raise InvalidInputError(f"{what} is {width}x{height} but the video is {frame_size[1]}x{frame_size[0]}")
    if frame_size is None and height * width > MAX_MASK_PIXELS:
        raise InvalidInputError(
            f"{what} is {width}x{height}, larger than any video frame garvideo reads (at most {MAX_MASK_PIXELS:,} "
            "pixels): a mask is the size of its frame"
        )


def read_manifest(path: str | Path) -> list[ManifestLine]:
    """The manifest's non-blank lines, each with a stable key for its result file.

    The key is the video's file name and a hash of the line, so an edited
    line gets a new result and an unchanged one is found again after a crash.
    The file is read line by line, each within :data:`MAX_LINE_BYTES`.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InvalidInputError(f"no regions file at {path}: give a JSON-lines file, one video per line")
    lines: list[ManifestLine] = []
    first_seen: dict[str, int] = {}
    with open_regular_file(path, "the regions file") as handle:
        for number, raw in _numbered_lines(handle, path):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            key = _key(raw)
            if key in first_seen:
                raise InvalidInputError(f"{path}: line {number} repeats line {first_seen[key]}; remove one of them")
            first_seen[key] = number
            lines.append(ManifestLine(number=number, text=raw, key=key))
    if not lines:
        raise InvalidInputError(f"{path} holds no items")
    return lines


def _numbered_lines(handle: BinaryIO, path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines as text, numbered from 1, none read beyond :data:`MAX_LINE_BYTES`."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        content = raw.rstrip(b"\r\n")
        if len(content) > MAX_LINE_BYTES:
            raise InvalidInputError(
                f"{path}: line {number} is longer than {MAX_LINE_BYTES:,} bytes: a line is one video and its "
                "regions (give large masks as image files)"
            )
        if number == 1:
            content = content.removeprefix(codecs.BOM_UTF8)  # a byte order mark (Windows editors) is no part of it
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"{path} is not a UTF-8 text file (line {number})") from None
        yield number, text


def _key(raw: str) -> str:
    try:
        data = loads_bounded(raw)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        stem = Path(str(data.get("video", "item"))).stem if isinstance(data, dict) else "item"
    except InvalidInputError:  # the line fails when it is parsed, with the reason
        canonical, stem = raw.strip(), "unreadable"
    digest = hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:10]
    return f"{_SAFE.sub('_', stem)[:60] or 'item'}-{digest}"


def check_lines(
    lines: Sequence[ManifestLine], folder: Path, manifest_dir: Path, source: str | Path
) -> list[str | None]:
    """Read every line as a batch will, without a model; the reason each bad line will fail (None: it can run).

    A manifest none of whose lines can run raises one :class:`InvalidInputError` naming the first reasons.
    """
    reasons: list[str | None] = []
    for line in lines:
        try:
            line.parse(folder, manifest_dir)
            reasons.append(None)
        except InvalidInputError as exc:
            reasons.append(str(exc))
    bad = [reason for reason in reasons if reason is not None]
    if len(bad) == len(lines):
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise InvalidInputError(f"no line of {source} can be run ({shown})")
    return reasons
