"""What a pipeline call reports while it works: progress, each tracked frame, GAR's text as it is generated.

Every call of :class:`~garvideo.pipeline.Pipeline` that does work (``find``, ``track``, ``describe``,
``ask``) takes ``on_event``, a callable that receives these events in the calling thread as they happen.
Front-ends build on it: the web app draws masks while tracking runs and streams descriptions, the service
sends them as server-sent events, a progress bar reads :class:`StageProgress`. An exception raised by
``on_event`` stops the call and propagates to its caller: that is how a front-end cancels work.

>>> def show(event):
...     if isinstance(event, TextGenerated) and event.done:
...         print(event.region, event.window, event.text)
>>> pipe.describe("clip.mp4", [dog], on_event=show)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..tracking import FrameTracked


@dataclass(frozen=True)
class StageProgress:
    """``done`` of ``total`` units of a stage: frames searched (``find``), frames tracked (``track``, a frame
    tracked both ways counts twice), prompts generated (``describe``, ``answer``). ``total`` may grow while
    a stage runs (tracking learns its backward pass once the forward one is planned); None when unknown."""

    stage: str
    done: int
    total: int | None


@dataclass(frozen=True)
class TextGenerated:
    """GAR's text so far for one prompt, sent after every generated token and once more with ``done=True``.

    ``describe``: ``region`` and ``window`` (the window's number, from 0; None for the region's overall
    description) with the window's ``start``/``end`` in seconds (None for the overall one). ``ask``:
    ``region``, ``window``, ``start`` and ``end`` are None. The final text (``done=True``) equals the one in
    the call's result; texts before it may end in the middle of a word.
    """

    region: str | None
    window: int | None
    start: float | None
    end: float | None
    text: str
    done: bool


PipelineEvent = StageProgress | FrameTracked | TextGenerated
EventListener = Callable[[PipelineEvent], None]


def description_texts(
    on_event: EventListener | None, keys: Sequence[tuple[str, int | None]], bounds: Sequence[tuple[float, float]]
) -> Callable[[int, str, bool], None] | None:
    """GAR's streamed texts of a description's prompts ``keys`` (region, window number) as :class:`TextGenerated`
    events, with a :class:`StageProgress` each time a prompt is done; None without a listener."""
    if on_event is None:
        return None
    finished = 0

    def on_text(index: int, text: str, done: bool) -> None:
        nonlocal finished
        region, window = keys[index]
        start, end = bounds[window] if window is not None else (None, None)
        on_event(TextGenerated(region, window, start, end, text.strip() if done else text, done))
        if done:
            finished += 1
            on_event(StageProgress("describe", finished, len(keys)))

    return on_text


def answer_text(on_event: EventListener | None) -> Callable[[str, bool], None] | None:
    """An answer's streamed text as :class:`TextGenerated` events, then the stage done; None without a listener."""
    if on_event is None:
        return None

    def on_text(text: str, done: bool) -> None:
        on_event(TextGenerated(None, None, None, None, text.strip() if done else text, done))
        if done:
            on_event(StageProgress("answer", 1, 1))

    return on_text


__all__ = ["EventListener", "FrameTracked", "PipelineEvent", "StageProgress", "TextGenerated"]
