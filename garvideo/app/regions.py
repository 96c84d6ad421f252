"""The regions a user marks in the app: each kind of mark, written as the command line writes it.

A mark typed in the app ("27,91,137,175" for a box, "120,80;!60,40" for clicks, "a red car" for a
region named in words) is the body of the matching CLI option, so the command that reproduces a run
is the marks written out (``--box cat=27,91,137,175@12``). The app reads a body into a
:class:`RegionPrompt` itself (library code does not import the CLI); a test reads each mark's
command back with the CLI's parser and checks it gives the same prompt. A region named in words is
found by the pipeline's detector when it is added; its mark is then placed on the frame it was found
on (``--text car="a red car"@12``), so the command finds the same box again whatever span it tracks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..names import check_command_line_name
from ..pipeline import FoundRegion, RegionPrompt, TextSearch


@dataclass(frozen=True)
class RegionKind:
    """One way of marking a region: its CLI option and how its text becomes a prompt."""

    key: str  # the value the API takes ("box", "points")
    label: str  # shown in the page
    option: str  # the CLI option that takes the same text
    placeholder: str
    parse: Callable[[str, str, int | None], RegionPrompt]  # (name, body, frame) -> RegionPrompt


def _numbers(body: str, count: int, what: str, example: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in body.split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise InvalidInputError(f"{what} {body.strip()!r}: expected {count} comma-separated numbers, e.g. {example}")
    return values


def box_prompt(name: str, body: str, frame: int | None) -> RegionPrompt:
    """A box typed or dragged as ``x1,y1,x2,y2`` (the body of ``--box``)."""
    return RegionPrompt.from_box(name, _numbers(body, 4, "the box", "27,91,137,175"), frame)  # type: ignore[arg-type]


def points_prompt(name: str, body: str, frame: int | None) -> RegionPrompt:
    """Clicks ``x,y;!x,y`` (the body of ``--points``): ``!`` or ``~`` before a click marks background."""
    points, labels = [], []
    for chunk in (c.strip() for c in body.split(";")):
        if chunk:
            background = chunk[0] in "!~"
            points.append(_numbers(chunk[1:] if background else chunk, 2, "the click", "80,120;!300,40"))
            labels.append(0 if background else 1)
    if not points:
        raise InvalidInputError(f"no clicks in {body.strip()!r}: click on the frame, or type x,y;!x,y")
    return RegionPrompt.from_points(name, points, frame, labels)  # type: ignore[arg-type]


def _phrase_prompt(name: str, phrase: str, frame: int | None) -> RegionPrompt:
    phrase = " ".join((phrase or "").split())
    if not phrase:
        raise InvalidInputError(f"the phrase of {name!r} is empty: name the object in words, e.g. a red car")
    return RegionPrompt.from_text(name, phrase, frame)


BOX = RegionKind("box", "box (drag on the frame)", "--box", "x1,y1,x2,y2", box_prompt)
POINTS = RegionKind(
    "points",
    "clicks (click on the frame; shift-click or right-click = background)",
    "--points",
    "x,y;!x,y",
    points_prompt,
)
TEXT = RegionKind("text", "words (the detector finds it)", "--text", "a red car", _phrase_prompt)
# The kinds the region panel offers, in order. Box and clicks are drawn on the frame; a text region is
# found by the detector (Backend.find_mark), not typed onto a frame.
REGION_KINDS: tuple[RegionKind, ...] = (BOX, POINTS, TEXT)
DRAWN_KINDS: tuple[RegionKind, ...] = (BOX, POINTS)


def region_kind(key: str) -> RegionKind:
    for kind in REGION_KINDS:
        if kind.key == key:
            return kind
    raise InvalidInputError(f"unknown region kind {key!r}: use one of {', '.join(k.key for k in REGION_KINDS)}")


@dataclass(frozen=True)
class Mark:
    """A region marked on one frame: the prompt and the text it was made from (for the CLI command)."""

    kind: RegionKind
    body: str
    prompt: RegionPrompt
    # A text region: what the detector found (one entry per instance, name, name#2, ...) and with what settings.
    found: tuple[FoundRegion, ...] = ()
    search: TextSearch | None = None

    @property
    def name(self) -> str:
        return self.prompt.name

    @property
    def region_names(self) -> list[str]:
        """The regions this mark makes: its name, or for a text region every instance found."""
        return [f.name for f in self.found] or [self.name]

    @property
    def frame(self) -> int:
        assert self.prompt.frame is not None  # the app always marks on a frame
        return self.prompt.frame

    @property
    def label(self) -> str:
        """How the page and the API name this mark: ``cat@12``."""
        return f"{self.name}@{self.frame}"

    def cli_args(self) -> list[str]:
        return [self.kind.option, f"{self.name}={self.body}@{self.frame}"]


def check_name(name: str) -> str:
    """A mark's name, held to the command line's rule: the page prints the commands that reproduce a run."""
    return check_command_line_name(name or "")


def make_mark(name: str, kind_key: str, body: str, frame: int, width: int, height: int) -> Mark:
    """Read a mark as the CLI reads its option and check it against the frame; :class:`InvalidInputError` if it cannot be."""
    kind = region_kind(kind_key)
    if kind not in DRAWN_KINDS:
        raise InvalidInputError(
            f"a region named in words is found by the detector, not marked: use 'Find and add' (the /find_region "
            f"endpoint) for {kind.key} regions"
        )
    name = check_name(name)
    body = " ".join((body or "").split())
    if not body:
        raise InvalidInputError(
            f"mark the region {name!r} first: {'drag a box' if kind is BOX else 'click'} on the frame, "
            f"or type {kind.placeholder}"
        )
    prompt = kind.parse(name, body, int(frame))
    # The tracker would clip a box that sticks out and refuse one of zero area; say so now, on this frame.
    prompt.fit_to_frame(width, height)
    return Mark(kind=kind, body=body, prompt=prompt)


def text_prompt(name: str, phrase: str, frame: int | None) -> RegionPrompt:
    """The text region the CLI reads from ``--text NAME=PHRASE[@FRAME]`` (None: search the video)."""
    return _phrase_prompt(check_name(name), phrase, None if frame is None else int(frame))


def found_mark(prompt: RegionPrompt, found: tuple[FoundRegion, ...], search: TextSearch) -> Mark:
    """A text region as found: placed on the frame it was found on, so ``--text NAME=PHRASE@FRAME`` finds it again."""
    assert prompt.text is not None and found
    return Mark(kind=TEXT, body=prompt.text, prompt=prompt.at_frame(found[0].frame), found=found, search=search)


def default_name(marks: list[Mark]) -> str:
    """``region1``, ``region2``, ...: the first name no mark uses (as the CLI names unnamed regions)."""
    taken = {m.name for m in marks}
    number = 1
    while f"region{number}" in taken:
        number += 1
    return f"region{number}"
