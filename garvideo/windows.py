"""Timeline window lengths a user may ask for.

Torch-free, so the command line checks ``--window`` against the video before
any model is loaded; the pipeline checks again with the exact range.
"""

from __future__ import annotations

import math
import os

from .errors import InvalidInputError

#: A timeline has at most this many windows (one a minute over 16 hours): each costs a GAR call per region.
MAX_WINDOWS = 1000


def check_window_length(
    window: object,
    frame_interval: float,
    *,
    span: float | None = None,
    stride: int = 1,
    source: str | os.PathLike[str] = "the video",
) -> float:
    """``window`` as seconds, or :class:`InvalidInputError` saying the shortest length that works.

    A window shorter than the interval between tracked frames (``stride``
    frames of ``frame_interval`` seconds) could hold no frame; one cutting
    ``span`` seconds (when given) into more than :data:`MAX_WINDOWS` windows
    would plan a GAR call per window and region.
    """
    try:
        length = float(window)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"the window length must be a number of seconds, got {window!r}") from None
    if not math.isfinite(length) or length <= 0:
        raise InvalidInputError(f"the window length must be a positive, finite number of seconds, got {window!r}")
    stride = max(1, int(stride))
    shortest = frame_interval * stride
    if length < shortest * (1 - 1e-6):
        if stride > 1:
            what = f"the {stride} frames between tracked frames (stride {stride}) of {source} ({shortest:.4g} s)"
        else:
            what = f"one frame interval of {source} ({frame_interval:.4g} s)"
        raise InvalidInputError(
            f"a {length:g} s window is shorter than {what}: it could hold no frame; give a window of at least "
            f"{shortest:.4g} s"
        )
    if span is not None:
        count = math.ceil(span / length - 1e-9)
        if count > MAX_WINDOWS:
            raise InvalidInputError(
                f"a {length:g} s window cuts the {span:.3f} s range into {count} windows, at most {MAX_WINDOWS} are "
                f"allowed: give a window of at least {span / MAX_WINDOWS:.3g} s, or a shorter range with start/end"
            )
    return length
