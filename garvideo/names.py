"""Region names: what a name may hold, the ``<name>`` references of a question, and questions checked before work.

A question refers to a region as ``<name>``, so a name cannot hold ``<``,
``>``, a line break or another control character. Names are checked once,
where they enter (:class:`~garvideo.tracking.RegionPrompt`,
:class:`~garvideo.tracking.Track`, GAR's region mappings), and references are
resolved by :func:`resolve_references` alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

from .errors import InvalidInputError

# <name>: anything but angle brackets and line breaks; "<|...|>" control tokens are not names.
_REFERENCE = re.compile(r"<(?!\|)([^<>\n]+)>")
# A name on the command line: letters, digits, "_", "-" and "#" (no quoting rules to learn). '#' is there
# because the instances a text region finds are named car, car#2, ... and --box reproduces them. The web app
# keeps to it too, as it prints the commands that reproduce a run.
_COMMAND_LINE_NAME = re.compile(r"[\w\-#]+")

#: A multiple-choice question's options are lettered A, B, ... Z.
MAX_OPTIONS = 26


def describe_character(char: str) -> str:
    """How a message names a character: ``'<'``, ``a space``, ``a line break``..."""
    if char in "\n\r":
        return "a line break"
    if char == " ":
        return "a space"
    if char == ",":
        return "a comma"
    if unicodedata.category(char).startswith("C"):
        return f"a control character ({char!r})"
    if char.isspace():
        return f"a blank ({char!r})"
    return repr(char)


def check_region_name(name: object) -> str:
    """``name`` without surrounding blanks, or :class:`InvalidInputError` saying what is wrong with it."""
    if not isinstance(name, str):
        raise InvalidInputError(f"a region name must be text, got {name!r}")
    stripped = name.strip()
    if not stripped:
        raise InvalidInputError(f"a region needs a non-empty name, got {name!r}")
    for char in stripped:
        if char in "<>" or unicodedata.category(char).startswith("C"):
            raise InvalidInputError(
                f"the region name {name!r} is not usable: it holds {describe_character(char)}, and as a question "
                f"refers to a region as <name>, a name cannot hold '<', '>', line breaks or control characters"
            )
    return stripped


def check_command_line_name(name: str) -> str:
    """``name`` checked as the command line takes it (see ``_COMMAND_LINE_NAME``), without surrounding blanks."""
    stripped = check_region_name(name)
    if not _COMMAND_LINE_NAME.fullmatch(stripped):
        bad = next(c for c in stripped if not _COMMAND_LINE_NAME.fullmatch(c))
        raise InvalidInputError(
            f"the region name {stripped!r} holds {describe_character(bad)}; on the command line a region name is "
            f"letters, digits, '_', '-' and '#' (e.g. dog or red-car)"
        )
    return stripped


def resolve_references(
    text: str, names: Sequence[str], token: Callable[[int], str] | None = None
) -> tuple[str, list[str]]:
    """The ``<name>`` references of ``text``: each must be one of ``names``.

    Returns ``text`` with every reference replaced by ``token(i)`` (``i`` the
    name's position in ``names``; unchanged without ``token``) and the names
    referred to, in order of first reference. Blanks inside the brackets are
    ignored. A reference to anything not given raises
    :class:`InvalidInputError` naming all of them and the given names.
    """
    position = {name: i for i, name in enumerate(names)}
    named: list[str] = []
    unknown: list[str] = []

    def swap(match: re.Match) -> str:
        name = match.group(1).strip()
        if name not in position:
            if name not in unknown:
                unknown.append(name)
            return match.group(0)
        if name not in named:
            named.append(name)
        return token(position[name]) if token is not None else match.group(0)

    replaced = _REFERENCE.sub(swap, text)
    if unknown:
        refs = ", ".join(f"<{name}>" for name in unknown)
        verb = "is" if len(unknown) == 1 else "are"
        raise InvalidInputError(
            f"the question names {refs}, which {verb} not among the given regions ({', '.join(names) or 'none'})"
        )
    return replaced, named


def check_option_count(count: int) -> None:
    """A multiple-choice question has 2 to :data:`MAX_OPTIONS` options (one letter each)."""
    if count < 2:
        raise InvalidInputError(f"a multiple-choice question needs at least two options, got {count}")
    if count > MAX_OPTIONS:
        raise InvalidInputError(f"at most {MAX_OPTIONS} options (A..Z) are supported, got {count}")


def check_options(options: Sequence[object]) -> None:
    """A multiple-choice question's options: 2 to :data:`MAX_OPTIONS`, none of them empty or blank."""
    check_option_count(len(options))
    for number, option in enumerate(options, 1):
        if not str(option).strip():
            raise InvalidInputError(
                f"option {number} of {len(options)} is empty: every option of a multiple-choice question needs a text"
            )


def check_question(question: object, options: Sequence[str] | None = None, names: Sequence[str] | None = None) -> str:
    """What can be known of a question without a model or a video, checked: it is not empty, its options (None:
    free-form) number 2 to 26 and none is empty, and, when ``names`` are given, every ``<name>`` it and its
    options hold is one of them. Returns the question without surrounding blanks."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError("the question is empty: ask something about the regions, e.g. 'What is <dog> doing?'")
    if options is not None:
        check_options(options)
    if names is not None:
        resolve_references(" ".join([question, *map(str, options or ())]), names)
    return question.strip()
