"""Parsing and formatting of frame indices and times as users type them.

``@120`` is a frame index, ``@4.5s`` a time in seconds, ``@1:02.5`` minutes
and seconds, ``@1:02:03.5`` hours, minutes and seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import InvalidInputError

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)s$")
_NUMBER = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)$")
_INTEGER = re.compile(r"^\d+$")
#: No frame index or time a user means is longer (``1:02:03.123456`` is 14): longer text is refused unread.
_LONGEST = 32


@dataclass(frozen=True)
class When:
    """A moment in a video: exactly one of a frame index or a time in seconds."""

    frame: int | None = None
    time: float | None = None

    def __post_init__(self) -> None:
        if (self.frame is None) == (self.time is None):
            raise InvalidInputError("a moment needs exactly one of a frame index or a time")
        if self.frame is not None and self.frame < 0:
            raise InvalidInputError(f"frame index must be >= 0, got {self.frame}")
        if self.time is not None and (self.time < 0 or not math.isfinite(self.time)):
            raise InvalidInputError(f"time must be a finite number of seconds >= 0, got {self.time}")

    def __str__(self) -> str:
        return str(self.frame) if self.frame is not None else f"{self.time:g}s"


def _clock_seconds(text: str) -> float | None:
    match = _CLOCK.match(text)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    if hours is not None and int(minutes) >= 60:
        raise InvalidInputError(f"minutes must be below 60 in {text!r}")
    if float(seconds) >= 60:
        raise InvalidInputError(f"seconds must be below 60 in {text!r}")
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def _short_enough(text: str, what: str) -> str:
    text = text.strip()
    if len(text) > _LONGEST:
        raise InvalidInputError(
            f"cannot read {text[:20]!r}... ({len(text)} characters) as {what}: it is too long for one"
        )
    return text


def parse_when(text: str) -> When:
    """Parse a frame index (``120``) or a time (``4.5s``, ``1:02.5``, ``1:02:03``)."""
    text = _short_enough(text, "a frame or a time")
    if _INTEGER.match(text):
        return When(frame=int(text))
    match = _SECONDS.match(text)
    if match:
        return When(time=float(match.group(1)))
    seconds = _clock_seconds(text)
    if seconds is not None:
        return When(time=seconds)
    raise InvalidInputError(
        f"cannot read {text!r} as a frame or a time: use a frame index (120), seconds (4.5s) or m:ss (1:02.5)"
    )


def parse_seconds(text: str) -> float:
    """Parse a time given in seconds: ``4.5``, ``4.5s``, ``1:02.5`` or ``1:02:03``."""
    text = _short_enough(text, "a time")
    match = _NUMBER.match(text) or _SECONDS.match(text)
    if match:
        return float(match.group(1))
    seconds = _clock_seconds(text)
    if seconds is not None:
        return seconds
    raise InvalidInputError(f"cannot read {text!r} as a time: use seconds (4.5 or 4.5s) or m:ss (1:02.5)")


def format_clock(seconds: float, decimal: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``decimal=","`` gives SubRip's form)."""
    millis = max(0, int(round(seconds * 1000)))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
