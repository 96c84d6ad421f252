"""The ``garvideo`` command lines that reproduce what the app ran, argument for argument."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from .. import defaults
from ..pipeline import TextSearch
from .regions import Mark


@dataclass(frozen=True)
class Models:
    """The model options the app was started with, as the CLI takes them."""

    gar: str
    sam2: str
    device: str = defaults.DEVICE
    dtype: str = defaults.DTYPE
    detector: str = defaults.DETECTOR
    adapter: str | None = None  # GAR's fine-tuned LoRA adapter folder (--adapter)

    def args(self, gar: bool, sam2: bool, detector: bool = False) -> list[str]:
        out: list[str] = []
        if gar:
            out += ["--model", self.gar]
            if self.adapter is not None:
                out += ["--adapter", self.adapter]
        if sam2:
            out += ["--sam2", self.sam2]
        if detector and self.detector != defaults.DETECTOR:
            out += ["--detector", self.detector]
        if self.device != defaults.DEVICE:
            out += ["--device", self.device]
        if self.dtype != defaults.DTYPE:
            out += ["--dtype", self.dtype]
        return out


@dataclass(frozen=True)
class Span:
    """What ``--start``/``--end`` the user typed (None: not given)."""

    start: str | None = None
    end: str | None = None

    def args(self) -> list[str]:
        out: list[str] = []
        if self.start is not None:
            out += ["--start", self.start]
        if self.end is not None:
            out += ["--end", self.end]
        return out


@dataclass(frozen=True)
class Generation:
    frames: int = defaults.FRAMES
    tiling: str = defaults.TILING
    max_new_tokens: int = defaults.MAX_NEW_TOKENS

    def args(self) -> list[str]:
        return ["--frames", str(self.frames), "--tiling", self.tiling, "--max-new-tokens", str(self.max_new_tokens)]


def search_args(search: TextSearch) -> list[str]:
    """The text-search options that differ from the CLI's defaults (marks are placed on a frame: no --search-every)."""
    out: list[str] = []
    if search.box_threshold != defaults.BOX_THRESHOLD:
        out += ["--box-threshold", repr(search.box_threshold)]
    if search.text_threshold != defaults.TEXT_THRESHOLD:
        out += ["--text-threshold", repr(search.text_threshold)]
    if search.max_instances != defaults.MAX_INSTANCES:
        out += ["--max-instances", str(search.max_instances)]
    return out


def track_command(
    video: str,
    marks: Sequence[Mark],
    span: Span,
    stride: int,
    models: Models,
    out: str,
    search: TextSearch | None = None,
) -> list[str]:
    """``search``: how the text regions among ``marks`` were found (None: there are none)."""
    args = ["garvideo", "track", video]
    for mark in marks:
        args += mark.cli_args()
    if search is not None:
        args += search_args(search)
    args += span.args()
    if stride != defaults.STRIDE:
        args += ["--stride", str(stride)]
    return [*args, *models.args(gar=False, sam2=True, detector=search is not None), "--out", out]


def describe_command(
    video: str,
    tracks: str,
    span: Span,
    window: float | None,
    frames_per_window: int,
    generation: Generation,
    models: Models,
    outputs: dict[str, str],
) -> list[str]:
    """``outputs``: CLI option (``--out``, ``--srt``, ``--vtt``, ``--overlay``) -> file name."""
    args = ["garvideo", "describe", video, "--tracks", tracks, *span.args()]
    if window is not None:
        args += ["--window", f"{window:g}"]
    args += ["--frames-per-window", str(frames_per_window), *generation.args(), *models.args(gar=True, sam2=False)]
    for option, name in outputs.items():
        args += [option, name]
    return args


def ask_command(
    video: str,
    question: str,
    options: Sequence[str],
    tracks: str,
    span: Span,
    generation: Generation,
    models: Models,
    out: str,
) -> list[str]:
    args = ["garvideo", "ask", video, question, "--tracks", tracks]
    for option in options:
        args += ["--option", option]
    return [*args, *span.args(), *generation.args(), *models.args(gar=True, sam2=False), "--out", out]


def shell_line(args: Sequence[str]) -> str:
    return shlex.join(args)
