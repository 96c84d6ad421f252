"""The one text grammar for marks: how a box, clicks, a mask or words are written, and how unnamed regions are named.

- ``--box [NAME=]x1,y1,x2,y2@WHEN``
- ``--points [NAME=]x,y;x,y;!x,y@WHEN`` (``!`` or ``~`` before a click marks background)
- ``--mask [NAME=]FILE.png@WHEN``
- ``--text [NAME=]PHRASE[@WHEN]`` (a region named in words; a detector turns it into a box first)

The command line reads its options with :func:`parse_region_prompts`; the web app reads the body a user
typed or dragged (``27,91,137,175``, ``80,120;!300,40``) with :func:`mark_prompt`, which is the same
grammar with the same messages, so the commands the app prints read back as the same regions. Unnamed
regions are ``region1``, ``region2``, ... (:func:`free_names`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from ..errors import InvalidInputError
from ..masks import read_mask_image
from ..names import check_command_line_name
from ..timecode import When, parse_when
from .prompts import NEGATIVE, POSITIVE, RegionPrompt

#: What an unnamed region is called, followed by a number (``region1``).
DEFAULT_PREFIX = "region"

BOX_EXAMPLE = "dog=120,80,260,210@4.5s"
POINTS_EXAMPLE = "'dog=120,80;140,90;!60,40@12'"
MASK_EXAMPLE = "dog=masks/dog_0012.png@12"
TEXT_EXAMPLE = "car='a red car'@4.5s"

# NAME=BODY where NAME has no path separator or dot (a mask's file name may itself hold "=").
_NAMED_MASK = re.compile(r"^\s*([^=/\\.]+?)\s*=(.*)$", re.DOTALL)
# NAME=PHRASE: only a word-like prefix is a name, so a phrase may hold '=' after its first word.
_NAMED_TEXT = re.compile(r"^\s*([\w\-#]+)\s*=(.*)$", re.DOTALL)
_NEGATIVE_MARKS = ("!", "~")


def free_names(taken: Collection[str], prefix: str = DEFAULT_PREFIX) -> Iterator[str]:
    """``region1``, ``region2``, ...: the default names, skipping those in ``taken``."""
    number = 0
    while True:
        number += 1
        if f"{prefix}{number}" not in taken:
            yield f"{prefix}{number}"


def _quoted(text: str, limit: int = 100) -> str:
    """A value as typed, quoted for a message; a very long one is cut in the middle."""
    return repr(text) if len(text) <= limit else f"{text[: limit // 2]!r}...{text[-limit // 4 :]!r}"


def _cli_name(name: str, option: str, text: str) -> str:
    """Check a NAME given before '=': say what the command line cannot carry in it."""
    stripped = name.strip()
    if not stripped:
        raise InvalidInputError(
            f"{option} {_quoted(text)}: the name before '=' is empty (use NAME=... or leave both out)"
        )
    try:
        return check_command_line_name(stripped)
    except InvalidInputError as error:
        raise InvalidInputError(f"{option} {_quoted(text)}: {error}") from None


def _when(text: str, option: str, spec: str, hint: str = "") -> When:
    try:
        return parse_when(text)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{option} {_quoted(spec)}: {exc}{hint}") from exc


def _split_spec(text: str, option: str, example: str) -> tuple[str | None, str, When]:
    """``[NAME=]BODY@WHEN`` -> (name or None, body, when)."""
    if "@" not in text:
        raise InvalidInputError(
            f"{option} {_quoted(text)}: say on which frame or at which time the region is drawn with @WHEN, e.g. {example}"
        )
    head, when_text = text.rsplit("@", 1)
    when = _when(when_text, option, text)
    name = None
    if option == "--mask":
        match = _NAMED_MASK.match(head)
        if match:
            name, head = _cli_name(match.group(1), option, text), match.group(2)
        elif head.lstrip().startswith("="):
            _cli_name("", option, text)
    elif "=" in head:  # boxes and clicks are numbers: whatever comes before an '=' is meant as a name
        before, head = head.rsplit("=", 1)
        name = _cli_name(before, option, text)
    head = head.strip()
    if not head:
        raise InvalidInputError(f"{option} {_quoted(text)}: nothing between the name and @WHEN, e.g. {example}")
    return name, head, when


def _numbers(text: str, option: str, spec: str, count: int) -> tuple[float, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise InvalidInputError(
            f"{option} {_quoted(spec)}: expected {count} comma-separated numbers, got {_quoted(text)}"
        )
    return values


def _box_body(body: str, spec: str) -> dict[str, Any]:
    return {"box": _numbers(body, "--box", spec, 4)}


def _points_body(body: str, spec: str) -> dict[str, Any]:
    points: list[tuple[float, ...]] = []
    labels: list[int] = []
    for chunk in body.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        label = POSITIVE
        if chunk[0] in _NEGATIVE_MARKS:
            label, chunk = NEGATIVE, chunk[1:].strip()
        points.append(_numbers(chunk, "--points", spec, 2))
        labels.append(label)
    if not points:
        raise InvalidInputError(f"--points {_quoted(spec)}: no clicks given, e.g. {POINTS_EXAMPLE}")
    return {"points": tuple(points), "labels": tuple(labels)}


def _mask_body(body: str, spec: str) -> dict[str, Any]:
    mask = read_mask_image(body)
    if not mask.any():
        raise InvalidInputError(f"--mask {_quoted(spec)}: the mask image {body} has no non-zero pixel")
    return {"mask": mask}


def _phrase(phrase: str, spec: str) -> dict[str, Any]:
    phrase = phrase.strip().strip("\"'").strip()
    if not phrase:
        raise InvalidInputError(
            f"--text {_quoted(spec)}: the phrase is empty: name the object in words, e.g. {TEXT_EXAMPLE}"
        )
    return {"text": phrase}


#: Each option that marks on a frame: (example, how its body is read).
_DRAWN = {
    "--box": (BOX_EXAMPLE, _box_body),
    "--points": (POINTS_EXAMPLE, _points_body),
    "--mask": (MASK_EXAMPLE, _mask_body),
}
#: The kinds of mark by their short name (the web app's and the JSON's), with their option.
OPTIONS = {"box": "--box", "points": "--points", "mask": "--mask", "text": "--text"}


def _drawn_parts(option: str, text: str) -> tuple[str | None, When | None, dict[str, Any]]:
    example, body_of = _DRAWN[option]
    name, body, when = _split_spec(text, option, example)
    return name, when, body_of(body, text)


def mask_files(masks: Iterable[str]) -> list[str]:
    """The image files ``--mask`` values name (the values are checked by :func:`parse_region_prompts`)."""
    return [_split_spec(text, "--mask", MASK_EXAMPLE)[1] for text in masks]


def _text_parts(text: str) -> tuple[str | None, When | None, dict[str, Any]]:
    """``[NAME=]PHRASE[@WHEN]``: unlike the other kinds, @WHEN may be left out (then the video is searched)."""
    when = None
    head = text
    if "@" in text:
        head, when_text = text.rsplit("@", 1)
        when = _when(when_text, "--text", text, " (leave @WHEN out to search the whole video)")
    name = None
    match = _NAMED_TEXT.match(head)
    if match:
        name, head = _cli_name(match.group(1), "--text", text), match.group(2)
    elif head.lstrip().startswith("="):
        raise InvalidInputError(
            f"--text {_quoted(text)}: the name before '=' is empty (use NAME=... or leave both out)"
        )
    return name, when, _phrase(head, text)


def _parts(option: str, text: str) -> tuple[str | None, When | None, dict[str, Any]]:
    return _text_parts(text) if option == "--text" else _drawn_parts(option, text)


def mark_text(name: str, body: str, when: int | str | None) -> str:
    """The option's value for a mark: ``NAME=BODY@WHEN`` (``@WHEN`` left out for a text region searched for)."""
    return f"{name}={body}" + ("" if when is None else f"@{when}")


def mark_prompt(kind: str, name: str, body: str, frame: int | None) -> RegionPrompt:
    """A mark's body as typed or dragged (``27,91,137,175``; ``80,120;!300,40``; ``a red car``) on ``frame``.

    The same grammar and messages as the command line's ``--box NAME=BODY@FRAME`` (and ``--points``,
    ``--mask``, ``--text``): an error quotes the option the body would be given as. ``frame`` may be
    None for a text region only (the video is then searched).
    """
    option = OPTIONS.get(kind)
    if option is None:
        raise InvalidInputError(f"unknown region kind {kind!r}: use one of {', '.join(OPTIONS)}")
    name = check_command_line_name(name)
    spec = mark_text(name, body, frame)
    if option == "--text":
        return RegionPrompt(name=name, when=None if frame is None else When(frame=int(frame)), **_phrase(body, spec))
    if frame is None:
        raise InvalidInputError(f"{option} {_quoted(spec)}: say on which frame the region is drawn")
    if not body.strip():
        raise InvalidInputError(
            f"{option} {_quoted(spec)}: nothing between the name and @WHEN, e.g. {_DRAWN[option][0]}"
        )
    return RegionPrompt(name=name, when=When(frame=int(frame)), **_DRAWN[option][1](body.strip(), spec))


def parse_box_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]x1,y1,x2,y2@WHEN``.

    The box corners are pixels of the displayed frame (top-left x1,y1 and
    bottom-right x2,y2); WHEN is a frame index (``@120``) or a time
    (``@4.5s``, ``@1:02.5``). Example: ``dog=120,80,260,210@4.5s``.
    """
    name, when, region = _parts("--box", text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_points_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]x,y;x,y;!x,y@WHEN``: clicks on one object on one frame.

    Clicks are ``x,y`` pixels of the displayed frame separated by ``;``. A
    click is positive (on the object) unless prefixed with ``!`` or ``~``,
    which mark a negative click (not the object; ``~`` needs no quoting in
    interactive shells). At least one click must be positive. Quote the whole
    argument because of ``;``. Example: ``'dog=120,80;140,90;!60,40@12'``.
    """
    name, when, region = _parts("--points", text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_mask_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]FILE@WHEN``: a mask image the size of the video frame.

    Non-zero pixels of FILE (PNG or any image Pillow reads) mark the region.
    Example: ``dog=masks/dog_0012.png@12``. A name may use letters, digits,
    ``_``, ``-`` and ``#``.
    """
    name, when, region = _parts("--mask", text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_text_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]PHRASE[@WHEN]``: an object named in words, e.g. ``car=a red car@4.5s``.

    Without @WHEN the video is searched for the phrase (see the pipeline).
    Quote the phrase for the shell: ``--text car="a red car"@4.5s``.
    """
    name, when, region = _parts("--text", text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_region_prompts(
    boxes: Iterable[str] = (),
    points: Iterable[str] = (),
    masks: Iterable[str] = (),
    name_prefix: str = DEFAULT_PREFIX,
    texts: Iterable[str] = (),
) -> list[RegionPrompt]:
    """Parse the CLI's ``--box``, ``--points``, ``--mask`` and ``--text`` values into prompts.

    Coordinates are pixels of the displayed frame; WHEN is a frame index
    (``@120``) or a time (``@4.5s``, ``@1:02.5``). Unnamed regions are named
    ``region1``, ``region2``, ... (boxes first, then clicks, masks, texts),
    skipping names given explicitly, and each is its own object. Regions that
    share a NAME are one object marked on several frames (corrections).
    """
    parsed = [
        _parts(option, text)
        for option, values in (("--box", boxes), ("--points", points), ("--mask", masks), ("--text", texts))
        for text in values
    ]
    names = free_names({name for name, _, _ in parsed if name is not None}, name_prefix)
    return [RegionPrompt(name=name or next(names), when=when, **region) for name, when, region in parsed]
