"""Every field a request carries, checked before anything is done with it.

The page's events take their fields as the browser (or any HTTP client) sent them, unprocessed: each
handler reads them through these checks, which say in one line what was wrong (a list where a name
belongs, a NUL byte in a path, a number of tokens nobody can allocate) as the command line would.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import defaults
from ..errors import InvalidInputError
from ..timecode import parse_seconds
from . import commands
from .backend import Upload
from .live import LIVE_SCHEMES, NETWORK_PROTOCOLS, LiveOptions, LiveSource
from .paths import resolve_under_root
from .session import AppError, Settings

#: The longest name, mark, phrase, time or path a request may carry (characters).
MAX_TEXT = 1000
#: The longest question or list of options.
MAX_QUESTION = 4000
#: The most frames GAR may be asked to look at in one prompt, and the longest stride.
MAX_FRAMES = 256
MAX_STRIDE = 10_000
#: The longest timeline window asked for (seconds; a day).
MAX_WINDOW_S = 86_400.0


def _kind_of(value: Any) -> str:
    return {list: "a list", tuple: "a list", dict: "an object", bool: "true/false"}.get(
        type(value), "a number" if isinstance(value, numbers.Number) else type(value).__name__
    )


def text(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    """A text field (None is empty): text, at most ``limit`` characters, without NUL or other control bytes
    but line breaks and tabs."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text, got {_kind_of(value)}")
    if len(value) > limit:
        raise InvalidInputError(f"{what} is {len(value)} characters long: at most {limit} are taken")
    bad = next((c for c in value if (ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127), None)
    if bad is not None:
        raise InvalidInputError(f"{what} holds a control character ({bad!r}): type it without")
    return value


def whole(value: Any, what: str, low: int, high: int, default: int | None = None) -> int:
    """A whole number in ``[low, high]``; ``default`` stands for an empty field (None) when given."""
    if value is None and default is not None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{what} must be a whole number from {low} to {high}, got {_shown(value)}")
    if not low <= value <= high:
        raise InvalidInputError(f"{what} must be a whole number from {low} to {high}, got {value}")
    return int(value)


def number(value: Any, what: str, low: float, high: float, default: float | None = None) -> float:
    """A finite number in ``[low, high]``; ``default`` stands for an empty field (None) when given."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a number from {low:g} to {high:g}, got {_shown(value)}")
    if not low <= value <= high:
        raise InvalidInputError(f"{what} must be a number from {low:g} to {high:g}, got {value:g}")
    return float(value)


def choice(value: Any, what: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(f"{what} must be one of {', '.join(choices)}, got {_shown(value)}")
    return value


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{what} must be true or false, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and len(repr(value)) <= 40:
        return repr(value)
    return _kind_of(value)


def upload(value: Any) -> Upload:
    """An uploaded file as Gradio describes it (``{"path": ..., "orig_name": ...}``)."""
    if value is None:
        raise InvalidInputError("choose a video file to upload")
    if not isinstance(value, dict):
        raise InvalidInputError(f"the upload must be a file Gradio received, got {_kind_of(value)}")
    path = text(value.get("path"), "the upload's path")
    name = text(value.get("orig_name"), "the upload's file name") or path.rsplit("/", 1)[-1]
    if not path:
        raise InvalidInputError("choose a video file to upload")
    return Upload(path, name)


def time_text(value: Any, what: str) -> str | None:
    """A start or end time as typed (None: not given), checked as the CLI reads it."""
    typed = text(value, what).strip()
    if not typed:
        return None
    parse_seconds(typed)  # the CLI's own check and message
    return typed


def settings(start: Any, end: Any, stride: Any) -> Settings:
    span = commands.Span(time_text(start, "the start"), time_text(end, "the end"))
    return Settings(span, whole(stride, "the stride", 1, MAX_STRIDE, default=defaults.STRIDE))


def generation(frames: Any, tiling: Any, max_new: Any) -> commands.Generation:
    return commands.Generation(
        whole(frames, "frames", 1, MAX_FRAMES, default=defaults.FRAMES),
        choice(tiling if tiling is not None else defaults.TILING, "the tiling", ("vanilla", "thumb+tile")),
        whole(max_new, "max new tokens", 1, defaults.MAX_NEW_TOKENS_LIMIT, default=defaults.MAX_NEW_TOKENS),
    )


def window(value: Any) -> float | None:
    """A timeline window in seconds; 0 or empty is the adaptive length (None)."""
    seconds = number(value, "the timeline window", 0.0, MAX_WINDOW_S, default=0.0)
    return seconds if seconds > 0 else None


def frame(value: Any) -> int:
    """A frame index (the backend says when it is beyond the video)."""
    return whole(value, "the frame", 0, 2**31 - 1, default=0)


# ---------------------------------------------------------------- the Live tab

#: The longest live window, and the most seconds a question may look back (the session keeps at most this much).
MAX_LIVE_WINDOW_S = 3600.0
MAX_SEARCH_EVERY_S = 3600.0


def live_options(
    window: Any, per_window: Any, max_new: Any, max_instances: Any, every: Any, keep_all: Any
) -> LiveOptions:
    return LiveOptions(
        window=number(window, "the window", 0.1, MAX_LIVE_WINDOW_S, default=defaults.LIVE_WINDOW),
        frames_per_window=whole(per_window, "frames per window", 1, MAX_FRAMES, default=defaults.FRAMES_PER_WINDOW),
        max_new_tokens=whole(
            max_new, "max new tokens", 1, defaults.MAX_NEW_TOKENS_LIMIT, default=defaults.MAX_NEW_TOKENS
        ),
        max_instances=whole(
            max_instances, "max instances", 1, defaults.MAX_INSTANCES_LIMIT, default=defaults.LIVE_MAX_INSTANCES
        ),
        search_every=number(every, "search every", 0.1, MAX_SEARCH_EVERY_S, default=defaults.LIVE_SEARCH_EVERY),
        keep_all=flag(keep_all if keep_all is not None else False, "never drop a frame"),
    )


def live_source(value: Any, root: Path | None, root_arg: str | None, devices: tuple[str, ...]) -> LiveSource:
    """A source typed in the Live tab: a URL of a scheme the app opens (never ``file://``), a device the app was
    started with (``--live-device``), or a file under ``--root``; one line when refused."""
    typed = text(value, "the live source").strip()
    if not typed:
        raise AppError(
            "type a stream URL (udp://, http(s)://, rtsp://, rtmp://, srt://, an HLS .m3u8), a device or a file "
            "under --root"
        )
    if "://" in typed:
        return _url(typed)
    if typed in devices:
        return LiveSource(typed, typed, "device")
    if typed == "-":
        raise AppError("standard input is not a source the app can read: type a stream URL")
    if root is None:
        offered = f": {', '.join(devices)}" if devices else ""
        raise AppError(
            f"{typed!r} is not a stream URL (such as rtsp://HOST/PATH) nor a device this app was started with "
            f"(--live-device{offered}), and this app was started without --root, so it opens no files"
        )
    path = resolve_under_root(root, typed)
    if path.is_dir():
        raise AppError(f"{typed!r} is a folder: type a file, a stream URL or a device")
    shown = os.path.join(root_arg or str(root), typed)
    return LiveSource(str(path), shown, "file", {"protocol_whitelist": "file"})


def _url(typed: str) -> LiveSource:
    parts = urlsplit(typed)
    scheme = parts.scheme.lower()
    shown = _without_password(typed)
    if scheme == "file":
        raise AppError("file:// URLs are not opened by the app: type the file's path under --root instead")
    if scheme not in LIVE_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in LIVE_SCHEMES)
        raise AppError(f"the app opens streams over {allowed}; not {shown}")
    if not parts.hostname and scheme != "udp":  # udp://:PORT listens on this machine
        raise AppError(f"{shown} names no host: type the stream's address, such as {scheme}://HOST:PORT/PATH")
    return LiveSource(typed, shown, "url", {"protocol_whitelist": NETWORK_PROTOCOLS})


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
