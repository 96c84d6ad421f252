"""JSON from users, read within bounds: a hostile document is one error, never a crash or a stalled run.

Python's reader recurses once per level of nesting (a line nested 100,000 deep ends in ``RecursionError``) and
refuses integers of more than 4,300 digits with a ``ValueError`` of its own (and converts long ones in quadratic
time): :func:`loads_bounded` refuses both, and ``NaN``/``Infinity`` (not JSON), as :class:`InvalidInputError`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidInputError

#: Deepest nesting taken (a manifest line or a region is a few levels deep).
MAX_DEPTH = 32
#: Most characters of one number (a frame index, a pixel, a run length: a dozen at most).
MAX_NUMBER_LENGTH = 40

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text go (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _number(kind: type, limit: int) -> Any:
    def read(text: str) -> Any:
        if len(text) > limit:
            raise InvalidInputError(f"a number of {len(text)} characters ({text[:12]}...): no value here is that long")
        value = kind(text)
        if value in (float("inf"), float("-inf")):
            raise InvalidInputError(f"the number {text} is too large")
        return value

    return read


def _not_json(name: str) -> Any:
    raise InvalidInputError(f"{name} is not a JSON value: write a number")


def loads_bounded(
    text: str, what: str = "the JSON", *, max_depth: int = MAX_DEPTH, max_number_length: int = MAX_NUMBER_LENGTH
) -> Any:
    """``json.loads(text)`` refusing, as :class:`InvalidInputError` naming ``what``, what no sane document holds.

    Invalid JSON, nesting deeper than ``max_depth``, numbers longer than ``max_number_length`` characters (or
    beyond a float's range) and ``NaN``/``Infinity`` are refused; the depth is measured before anything is parsed.
    """
    depth = nesting_depth(text)
    if depth > max_depth:
        raise InvalidInputError(f"{what} is nested {depth} levels deep: at most {max_depth} are read")
    try:
        return json.loads(
            text,
            parse_int=_number(int, max_number_length),
            parse_float=_number(float, max_number_length),
            parse_constant=_not_json,
        )
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}") from None
    except InvalidInputError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None
    except RecursionError:  # deeper than the interpreter allows, below max_depth: only with a huge max_depth
        raise InvalidInputError(f"{what} is nested too deep to read") from None
