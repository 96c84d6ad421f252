"""SubRip (.srt) and WebVTT (.vtt) subtitles from timed text cues."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..timecode import format_clock


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _clean(text: str) -> str:
    # A blank line ends a cue in both formats; "-->" would be read as a timing line.
    lines = [line.strip() for line in text.replace("-->", "->").splitlines()]
    return "\n".join(line for line in lines if line)


def _ordered(cues: Iterable[Cue]) -> list[Cue]:
    return sorted((c for c in cues if c.end > c.start and _clean(c.text)), key=lambda c: (c.start, c.end))


def to_srt(cues: Iterable[Cue]) -> str:
    blocks = [
        f"{number}\n{format_clock(cue.start, ',')} --> {format_clock(cue.end, ',')}\n{_clean(cue.text)}\n"
        for number, cue in enumerate(_ordered(cues), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(cues: Iterable[Cue]) -> str:
    blocks = [f"{format_clock(cue.start)} --> {format_clock(cue.end)}\n{_clean(cue.text)}\n" for cue in _ordered(cues)]
    return "WEBVTT\n\n" + "\n".join(blocks)
