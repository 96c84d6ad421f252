"""The regions a user marks in the app: each kind of mark, parsed with the command line's own syntax.

A mark typed in the app ("27,91,137,175" for a box, "120,80;!60,40" for clicks) is the body of the
matching CLI option, so the app and ``garvideo describe --box ...`` accept and refuse exactly the
same things with the same messages, and the command that reproduces a run is the marks written out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..pipeline import RegionPrompt
from ..tracking import parse_box_prompt, parse_points_prompt

# The CLI's region names (cli `--box NAME=...`): what may stand between < > in a question.
_NAME = re.compile(r"^[\w\-]+$")


@dataclass(frozen=True)
class RegionKind:
    """One way of marking a region: its CLI option and how its text becomes a prompt."""

    key: str  # the value the API takes ("box", "points")
    label: str  # shown in the page
    option: str  # the CLI option that takes the same text
    placeholder: str
    parse: Callable[[str], RegionPrompt]  # "NAME=BODY@FRAME" -> RegionPrompt


BOX = RegionKind("box", "box (drag on the frame)", "--box", "x1,y1,x2,y2", parse_box_prompt)
POINTS = RegionKind(
    "points",
    "clicks (click on the frame; shift-click or right-click = background)",
    "--points",
    "x,y;!x,y",
    parse_points_prompt,
)
# The kinds the region panel offers, in order. A region kind that is not drawn on a frame (a text
# description such as the CLI's planned `--text car="a red car"`) is one more entry here.
REGION_KINDS: tuple[RegionKind, ...] = (BOX, POINTS)


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

    @property
    def name(self) -> str:
        return self.prompt.name

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


def make_mark(name: str, kind_key: str, body: str, frame: int, width: int, height: int) -> Mark:
    """Parse a mark as the CLI would and check it against the frame; :class:`InvalidInputError` if it cannot be."""
    kind = region_kind(kind_key)
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InvalidInputError(
            f"the region name {name!r} may use only letters, digits, _ and - (questions name it as <{name or 'name'}>)"
        )
    body = " ".join((body or "").split())
    if not body:
        raise InvalidInputError(
            f"mark the region {name!r} first: {'drag a box' if kind is BOX else 'click'} on the frame, "
            f"or type {kind.placeholder}"
        )
    prompt = kind.parse(f"{name}={body}@{int(frame)}")
    # The tracker would clip a box that sticks out and refuse one of zero area; say so now, on this frame.
    prompt.fit_to_frame(width, height)
    return Mark(kind=kind, body=body, prompt=prompt)


def default_name(marks: list[Mark]) -> str:
    """``region1``, ``region2``, ...: the first name no mark uses (as the CLI names unnamed regions)."""
    taken = {m.name for m in marks}
    number = 1
    while f"region{number}" in taken:
        number += 1
    return f"region{number}"
