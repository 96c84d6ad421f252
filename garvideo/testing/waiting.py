"""Waiting on background work in tests: poll for the state, never sleep a guessed time and then assert."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.1) -> Any:
    """``check()``'s first truthy value, or its last value once ``timeout`` seconds have passed."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(every)


def when_filled(items: list, count: int, linger: float = 0.2, timeout: float = 60.0) -> list:
    """``items`` once a background thread has put ``count`` things in it, plus ``linger`` seconds in which a
    thread that does not stop would add more. ``timeout`` only guards against a hang; it is no speed check."""
    wait_until(lambda: len(items) >= count, timeout, every=0.01)
    time.sleep(linger)
    return items
