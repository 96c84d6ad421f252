"""Training data: examples read from JSON lines (or a public format, :mod:`garvideo.train.formats`), checked line
by line, every bad line one error naming it.

One example per line; paths are relative to the file (or to ``root``); regions are the schema of
README's "Regions as JSON"::

    {"image": "a.jpg", "regions": [{"name": "item", "mask": "a_mask.png"}], "caption": "..."}
    {"video": "clip.mp4", "regions": [{"name": "dog", "when": {"frame": 12}, "box": [...]}], "caption": "..."}
    {"video": "clip.mp4", "tracks": "clip_tracks.json", "caption": "..."}
    {"image"|"video": ..., "regions": [...], "question": "What is <dog> doing?", "answer": "...",
     "options": ["running", "sleeping"]}

A caption is of the one region given; a question names regions as ``<name>`` (one to five). With
``options`` the answer is an option's text or its letter, and the model learns the letter (the
multiple-choice prompt asks for it). Image regions are masks (COCO RLE or a mask image); video regions
are any prompt (box, clicks, mask, text) and are tracked with SAM2 as ``garvideo describe`` tracks them,
unless the line gives its ``tracks`` (a ``garvideo track`` file, or ground truth in that format).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..masks import read_mask_image
from ..model.prompts import check_user_text, parse_option_letter, question_text
from ..names import resolve_references
from ..tracking import RegionPrompt, load_tracks

KINDS = ("image", "video")
_KEYS = {"image", "video", "regions", "tracks", "caption", "question", "answer", "options", "fps"}
#: An image is frame 0 of itself: its regions need no "when".
_IMAGE_WHEN = {"frame": 0}


class DatasetError(InvalidInputError):
    """Some examples of a dataset cannot be used; ``problems`` holds one line per bad example, naming it."""

    def __init__(self, source: str, problems: Sequence[str], total: int) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(self.problems[:3]) + (
            f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        )
        super().__init__(f"{len(self.problems)} of {total} examples in {source} cannot be used: {shown}")


@dataclass(frozen=True)
class TrainExample:
    """One training example: a picture or video, its regions, and the text the model should learn to say.

    ``regions`` are region dictionaries as given (parsed when used, so a large dataset holds no masks in
    memory); ``annotation`` holds VideoRefer-style per-frame masks of the regions ``names`` instead. ``target``
    is what the model learns to answer: the caption, the answer, or the chosen option's letter.
    """

    where: str  # "train.jsonl line 3": every message about the example names it
    kind: str  # "image" or "video"
    media: Path
    target: str
    question: str | None = None  # None: a caption (describe's prompt)
    options: tuple[str, ...] | None = None
    regions: tuple[Mapping[str, Any], ...] = ()
    tracks_file: Path | None = None
    annotation: tuple[Mapping[str, Any], ...] | None = None  # per region marker: {frame: {"segmentation": mask}}
    names: tuple[str, ...] = ()  # the regions' names, in order
    fps: float | None = None  # a frame folder's frame rate
    folder: Path = field(default=Path("."), compare=False)  # where a region's mask image path is looked for

    @property
    def task(self) -> str:
        """``caption``, ``question`` or ``choice`` (multiple choice)."""
        return "caption" if self.question is None else "choice" if self.options else "question"

    @property
    def needs_tracking(self) -> bool:
        return self.kind == "video" and self.tracks_file is None and self.annotation is None

    def prompts(self) -> list[RegionPrompt]:
        """The regions as prompts (mask images read now)."""
        return [self._prompt(data) for data in self.regions]

    def _prompt(self, data: Mapping[str, Any]) -> RegionPrompt:
        if self.kind == "image" and "when" not in data:
            data = {**data, "when": _IMAGE_WHEN}
        return RegionPrompt.from_dict(data, read_mask=lambda path: read_mask_image(_find(path, self.folder, "mask")))

    def key(self) -> str:
        """A stable name for what this example tracks or shows (its cached tracks are kept under it)."""
        data = {
            "media": str(self.media),
            "regions": list(self.regions),
            "tracks": str(self.tracks_file) if self.tracks_file else None,
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return f"{self.media.stem[:40]}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Dataset:
    """The examples of one data file."""

    source: Path
    format: str  # garvideo, coco or videorefer
    examples: tuple[TrainExample, ...]

    def __len__(self) -> int:
        return len(self.examples)

    def fingerprint(self) -> str:
        """Changes when any example changes (a resumed run must train on the same data)."""
        digest = hashlib.sha1()
        for example in self.examples:
            digest.update(repr((example.key(), example.target, example.question, example.options)).encode())
        return digest.hexdigest()[:16]


def _find(text: str, folder: Path, what: str) -> Path:
    path = Path(text).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.exists():
        raise InvalidInputError(f"{what} {text!r} not found (looked in {path.parent})")
    return path


def read_jsonl(path: str | Path, root: str | Path | None = None) -> Dataset:
    """The examples of a JSON-lines file; every bad line is one problem of the :class:`DatasetError` raised."""
    path = Path(path)
    folder = Path(root) if root is not None else path.parent
    entries = [
        (f"line {number}", raw)
        for number, raw in enumerate(_lines(path), 1)
        if raw.strip() and not raw.lstrip().startswith("#")
    ]
    return read_entries(path, "garvideo", entries, lambda raw, where: [parse_line(raw, where, folder)])


def read_entries(
    path: Path, format: str, entries: Sequence[tuple[str, Any]], convert: Callable[[Any, str], list[TrainExample]]
) -> Dataset:
    """The examples ``convert(entry, where)`` makes of every ``(label, entry)`` of a data file: every entry that
    cannot be converted is one problem (``"FILE LABEL: why"``) of the :class:`DatasetError` raised."""
    examples: list[TrainExample] = []
    problems: list[str] = []
    for label, entry in entries:
        where = f"{path.name} {label}"
        try:
            examples.extend(convert(entry, where))
        except InvalidInputError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise DatasetError(str(path), problems, len(entries))
    if not examples:
        raise InvalidInputError(f"{path} holds no examples: see README's 'Fine-tuning' for the formats")
    return Dataset(path, format, tuple(examples))


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InvalidInputError(f"no data file at {path}: give a JSON-lines file, one example per line")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not a UTF-8 text file") from None


def parse_line(raw: str, where: str, folder: Path) -> TrainExample:
    """One line as an example, checked without decoding its picture or video (its masks and tracks are read)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise InvalidInputError('expected a JSON object such as {"image": "a.jpg", "regions": [...], "caption": "..."}')
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InvalidInputError(f"unknown keys {unknown}: use {', '.join(sorted(_KEYS))}")
    kinds = [kind for kind in KINDS if kind in data]
    if len(kinds) != 1:
        raise InvalidInputError('give exactly one of "image" (a picture) or "video" (a video file or frame folder)')
    kind = kinds[0]
    if not isinstance(data[kind], str) or not data[kind].strip():
        raise InvalidInputError(f'"{kind}" must be a path')
    media = _find(data[kind], folder, kind)
    tracks_file, regions = _regions_or_tracks(data, kind, folder)
    example = TrainExample(
        where=where,
        kind=kind,
        media=media,
        regions=regions,
        tracks_file=tracks_file,
        fps=_fps(data.get("fps"), media),
        folder=folder,
        **_text_fields(data),
    )
    names = _names(example)
    check_texts(example, names)
    return replace(example, names=tuple(names))


def _regions_or_tracks(data: Mapping[str, Any], kind: str, folder: Path) -> tuple[Path | None, tuple]:
    tracks = data.get("tracks")
    regions = data.get("regions")
    if tracks is not None:
        if kind != "video":
            raise InvalidInputError('"tracks" are for videos: give an image\'s regions as masks')
        if regions is not None:
            raise InvalidInputError('give "regions" (to track) or "tracks" (already tracked), not both')
        if not isinstance(tracks, str) or not tracks.strip():
            raise InvalidInputError('"tracks" must be the path of a tracks file (garvideo track --out)')
        return _find(tracks, folder, "tracks file"), ()
    if not isinstance(regions, list) or not regions:
        raise InvalidInputError('"regions" must be a non-empty list of regions (README, "Regions as JSON")')
    if not all(isinstance(r, dict) for r in regions):
        raise InvalidInputError('every region must be a JSON object such as {"name": "dog", "mask": "dog.png"}')
    return None, tuple(regions)


def _text_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    caption, question = data.get("caption"), data.get("question")
    if (caption is None) == (question is None):
        raise InvalidInputError('give a "caption" (of the one region) or a "question" with its "answer"')
    if caption is not None:
        if "answer" in data or "options" in data:
            raise InvalidInputError('"answer" and "options" go with a "question", not a "caption"')
        return {"target": _text(caption, "caption")}
    answer = data.get("answer")
    if answer is None:
        raise InvalidInputError('a "question" needs its "answer"')
    answer = _text(answer, "answer")
    options = data.get("options")
    if options is None:
        return {"target": answer, "question": question_text(_text(question, "question"))}
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        raise InvalidInputError('"options" must be a list of at least two texts')
    options = tuple(o.strip() for o in options)
    letter = parse_option_letter(answer, options)
    if letter is None:
        raise InvalidInputError(f"the answer {answer!r} is neither one of the options nor an option's letter")
    return {"target": letter, "question": question_text(_text(question, "question")), "options": options}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f'"{what}" must be non-empty text')
    check_user_text(value, what)
    return value.strip()


def _fps(value: Any, media: Path) -> float | None:
    if value is None:
        return None
    if not media.is_dir():
        raise InvalidInputError('"fps" is for frame folders: a video file has its own frame rate')
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInputError(f'"fps" must be a positive number, got {value!r}')
    return float(value)


def _names(example: TrainExample) -> list[str]:
    """The regions' names in order of first appearance (every region parsed, so a malformed one is found now)."""
    if example.tracks_file is not None:
        names = [track.name for track in load_tracks(example.tracks_file)]
    else:
        names = []
        for number, data in enumerate(example.regions, 1):
            try:
                prompt = example._prompt(data)
            except InvalidInputError as exc:
                raise InvalidInputError(f"region {number}: {exc}") from None
            if example.kind == "image" and prompt.kind != "mask":
                raise InvalidInputError(
                    f"region {prompt.name!r} of an image is a {prompt.kind}: image regions are masks (COCO RLE or a"
                    " mask image)"
                )
            if prompt.name not in names:
                names.append(prompt.name)
    if example.kind == "image" and len(names) != len(example.regions):
        raise InvalidInputError("two regions of an image share a name: name each region once")
    return names


def check_texts(example: TrainExample, names: Sequence[str]) -> None:
    """A caption is of one region; a question names only given regions (at most five are asked about)."""
    if example.question is None:
        if len(names) != 1:
            raise InvalidInputError(f"a caption is of one region, {len(names)} are given ({', '.join(names)})")
        return
    asked = " ".join([example.question, *(example.options or ())])
    _, named = resolve_references(asked, list(names))
    if example.options is None:
        try:
            resolve_references(example.target, list(names))
        except InvalidInputError as exc:
            raise InvalidInputError(f"the answer {str(exc).removeprefix('the question ')}") from None
    if len(named or names) > 5:
        raise InvalidInputError(f"the question is about {len(named or names)} regions: GAR takes at most 5")
