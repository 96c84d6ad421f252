"""The command line's region syntax: ``--box``, ``--points``, ``--mask`` and ``--text`` values to prompts.

- ``--box [NAME=]x1,y1,x2,y2@WHEN``
- ``--points [NAME=]x,y;x,y;!x,y@WHEN``
- ``--mask [NAME=]FILE.png@WHEN``
- ``--text [NAME=]PHRASE[@WHEN]`` (a region named in words; a detector turns it into a box first)

The grammar is the command line's own: the library, the web app and batch
manifests build :class:`~garvideo.tracking.RegionPrompt` objects directly (a
manifest with :meth:`RegionPrompt.from_dict`), so nothing outside ``cli/``
imports this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from garvideo.errors import InvalidInputError
from garvideo.masks import read_mask_image
from garvideo.names import check_command_line_name
from garvideo.timecode import When, parse_when
from garvideo.tracking import RegionPrompt

POSITIVE = 1
NEGATIVE = 0

# -- the command line's region syntax ------------------------------------------------

# NAME=BODY where NAME has no path separator or dot (a mask's file name may itself hold "=").
_NAMED_MASK = re.compile(r"^\s*([^=/\\.]+?)\s*=(.*)$", re.DOTALL)
# NAME=PHRASE: only a word-like prefix is a name, so a phrase may hold '=' after its first word.
_NAMED_TEXT = re.compile(r"^\s*([\w\-#]+)\s*=(.*)$", re.DOTALL)
_NEGATIVE_MARKS = ("!", "~")


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


def _split_spec(text: str, option: str, example: str) -> tuple[str | None, str, When]:
    """``[NAME=]BODY@WHEN`` -> (name or None, body, when)."""
    if "@" not in text:
        raise InvalidInputError(
            f"{option} {_quoted(text)}: say on which frame or at which time the region is drawn with @WHEN, e.g. {example}"
        )
    head, when_text = text.rsplit("@", 1)
    try:
        when = parse_when(when_text)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{option} {_quoted(text)}: {exc}") from exc
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


def _box_parts(text: str) -> tuple[str | None, When, dict[str, Any]]:
    name, body, when = _split_spec(text, "--box", _BOX_EXAMPLE)
    return name, when, {"box": _numbers(body, "--box", text, 4)}


def _points_parts(text: str) -> tuple[str | None, When, dict[str, Any]]:
    name, body, when = _split_spec(text, "--points", _POINTS_EXAMPLE)
    points: list[tuple[float, ...]] = []
    labels: list[int] = []
    for chunk in body.split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        label = POSITIVE
        if chunk[0] in _NEGATIVE_MARKS:
            label, chunk = NEGATIVE, chunk[1:].strip()
        points.append(_numbers(chunk, "--points", text, 2))
        labels.append(label)
    if not points:
        raise InvalidInputError(f"--points {_quoted(text)}: no clicks given, e.g. {_POINTS_EXAMPLE}")
    return name, when, {"points": tuple(points), "labels": tuple(labels)}


def _mask_parts(text: str) -> tuple[str | None, When, dict[str, Any]]:
    name, body, when = _split_spec(text, "--mask", _MASK_EXAMPLE)
    mask = read_mask_image(body)
    if not mask.any():
        raise InvalidInputError(f"--mask {_quoted(text)}: the mask image {body} has no non-zero pixel")
    return name, when, {"mask": mask}


def mask_files(masks: Iterable[str]) -> list[str]:
    """The image files ``--mask`` values name (the values are checked by :func:`parse_region_prompts`)."""
    return [_split_spec(text, "--mask", _MASK_EXAMPLE)[1] for text in masks]


def _text_parts(text: str) -> tuple[str | None, When | None, dict[str, Any]]:
    """``[NAME=]PHRASE[@WHEN]``: unlike the other kinds, @WHEN may be left out (then the video is searched)."""
    when = None
    head = text
    if "@" in text:
        head, when_text = text.rsplit("@", 1)
        try:
            when = parse_when(when_text)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"--text {_quoted(text)}: {exc} (leave @WHEN out to search the whole video)"
            ) from exc
    name = None
    match = _NAMED_TEXT.match(head)
    if match:
        name, head = _cli_name(match.group(1), "--text", text), match.group(2)
    elif head.lstrip().startswith("="):
        raise InvalidInputError(
            f"--text {_quoted(text)}: the name before '=' is empty (use NAME=... or leave both out)"
        )
    phrase = head.strip().strip("\"'").strip()
    if not phrase:
        raise InvalidInputError(
            f"--text {_quoted(text)}: the phrase is empty: name the object in words, e.g. {_TEXT_EXAMPLE}"
        )
    return name, when, {"text": phrase}


_BOX_EXAMPLE = "dog=120,80,260,210@4.5s"
_TEXT_EXAMPLE = "car='a red car'@4.5s"
_POINTS_EXAMPLE = "'dog=120,80;140,90;!60,40@12'"
_MASK_EXAMPLE = "dog=masks/dog_0012.png@12"


def parse_box_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]x1,y1,x2,y2@WHEN``.

    The box corners are pixels of the displayed frame (top-left x1,y1 and
    bottom-right x2,y2); WHEN is a frame index (``@120``) or a time
    (``@4.5s``, ``@1:02.5``). Example: ``dog=120,80,260,210@4.5s``.
    """
    name, when, region = _box_parts(text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_points_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]x,y;x,y;!x,y@WHEN``: clicks on one object on one frame.

    Clicks are ``x,y`` pixels of the displayed frame separated by ``;``. A
    click is positive (on the object) unless prefixed with ``!`` or ``~``,
    which mark a negative click (not the object; ``~`` needs no quoting in
    interactive shells). At least one click must be positive. Quote the whole
    argument because of ``;``. Example: ``'dog=120,80;140,90;!60,40@12'``.
    """
    name, when, region = _points_parts(text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_mask_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]FILE@WHEN``: a mask image the size of the video frame.

    Non-zero pixels of FILE (PNG or any image Pillow reads) mark the region.
    Example: ``dog=masks/dog_0012.png@12``. A name may use letters, digits,
    ``_``, ``-`` and ``#``.
    """
    name, when, region = _mask_parts(text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_text_prompt(text: str, default_name: str = "region1") -> RegionPrompt:
    """Parse ``[NAME=]PHRASE[@WHEN]``: an object named in words, e.g. ``car=a red car@4.5s``.

    Without @WHEN the video is searched for the phrase (see the pipeline).
    Quote the phrase for the shell: ``--text car="a red car"@4.5s``.
    """
    name, when, region = _text_parts(text)
    return RegionPrompt(name=name or default_name, when=when, **region)


def parse_region_prompts(
    boxes: Iterable[str] = (),
    points: Iterable[str] = (),
    masks: Iterable[str] = (),
    name_prefix: str = "region",
    texts: Iterable[str] = (),
) -> list[RegionPrompt]:
    """Parse the CLI's ``--box``, ``--points`` and ``--mask`` values into prompts.

    ``--box [NAME=]x1,y1,x2,y2@WHEN`` marks a box, ``--points
    '[NAME=]x,y;x,y;!x,y@WHEN'`` clicks (``!`` or ``~`` before a click makes it
    negative), ``--mask [NAME=]FILE.png@WHEN`` a mask image (non-zero pixels),
    ``--text [NAME=]PHRASE[@WHEN]`` an object named in words.
    Coordinates are pixels of the displayed frame; WHEN is a frame index
    (``@120``) or a time (``@4.5s``, ``@1:02.5``). Unnamed regions are named
    ``region1``, ``region2``, ... (boxes first, then clicks, masks, texts),
    skipping names given explicitly, and each is its own object. Regions that
    share a NAME are one object marked on several frames (corrections).
    """
    parsed = [
        parts(text)
        for parts, values in ((_box_parts, boxes), (_points_parts, points), (_mask_parts, masks), (_text_parts, texts))
        for text in values
    ]
    taken = {name for name, _, _ in parsed if name is not None}
    counter = 0
    out: list[RegionPrompt] = []
    for name, when, region in parsed:
        if name is None:
            counter += 1
            while f"{name_prefix}{counter}" in taken:
                counter += 1
            name = f"{name_prefix}{counter}"
        out.append(RegionPrompt(name=name, when=when, **region))
    return out
