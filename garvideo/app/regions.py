"""The regions a user marks in the app: each kind of mark, read with the command line's own grammar.

A mark typed or drawn in the app ("27,91,137,175" for a box, "120,80;!60,40" for clicks, "a red car" for
a region named in words) is the body of the matching CLI option, read by the one grammar for marks
(:mod:`garvideo.tracking.marks`), so the command that reproduces a run is the marks written out
(``--box cat=27,91,137,175@12``) and a mistake gets the command line's message. A region named in words
is found by the pipeline's detector when it is added; its mark is then placed on the frame it was found
on (``--text car="a red car"@12``), so the command finds the same box again whatever span it tracks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..names import check_command_line_name
from ..pipeline import FoundRegion, RegionPrompt, TextSearch
from ..tracking import RegionClippedWarning
from ..tracking.marks import OPTIONS, free_names, mark_prompt, mark_text


@dataclass(frozen=True)
class RegionKind:
    """One way of marking a region: its CLI option and how its text becomes a prompt."""

    key: str  # the value the API takes ("box", "points")
    label: str  # shown in the page
    placeholder: str

    @property
    def option(self) -> str:
        """The CLI option that takes the same text."""
        return OPTIONS[self.key]


BOX = RegionKind("box", "box (drag on the frame)", "x1,y1,x2,y2")
POINTS = RegionKind("points", "clicks (click on the frame; shift-click or right-click = background)", "x,y;!x,y")
TEXT = RegionKind("text", "words (the detector finds it)", "a red car")
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
    warning: str | None = None  # the command line's warning for this mark (a box clipped to the frame)

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

    @property
    def key(self) -> tuple[str, int, str, str]:
        """What makes two marks the same mark (the mask SAM2 gives one is the other's)."""
        return (self.name, self.frame, self.kind.key, self.body)

    def cli_args(self) -> list[str]:
        return [self.kind.option, mark_text(self.name, self.body, self.frame)]


def check_name(name: str) -> str:
    """A mark's name, held to the command line's rule: the page prints the commands that reproduce a run."""
    return check_command_line_name(name or "")


def make_mark(name: str, kind_key: str, body: str, frame: int, width: int, height: int) -> Mark:
    """Read a mark as the CLI reads its option and check it against the frame; :class:`InvalidInputError` if it cannot be.

    A box reaching outside the frame is kept as typed (the command line clips it the same way) and the
    mark carries the command line's warning.
    """
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
    prompt = mark_prompt(kind.key, name, body, int(frame))
    # The tracker would clip a box that sticks out and refuse one of zero area; say so now, on this frame.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegionClippedWarning)
        prompt.fit_to_frame(width, height)
    clipped = [str(w.message) for w in caught if issubclass(w.category, RegionClippedWarning)]
    return Mark(kind=kind, body=body, prompt=prompt, warning=clipped[0] if clipped else None)


def text_prompt(name: str, phrase: str, frame: int | None) -> RegionPrompt:
    """The text region the CLI reads from ``--text NAME=PHRASE[@FRAME]`` (None: search the video)."""
    return mark_prompt(TEXT.key, check_name(name), " ".join((phrase or "").split()), frame)


def found_mark(prompt: RegionPrompt, found: tuple[FoundRegion, ...], search: TextSearch) -> Mark:
    """A text region as found: placed on the frame it was found on, so ``--text NAME=PHRASE@FRAME`` finds it again."""
    assert prompt.text is not None and found
    return Mark(kind=TEXT, body=prompt.text, prompt=prompt.at_frame(found[0].frame), found=found, search=search)


def default_name(marks: list[Mark]) -> str:
    """The first default name (``region1``, ``region2``, ...) no mark uses, as the command line names regions."""
    return next(free_names({m.name for m in marks}))
