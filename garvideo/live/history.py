"""The frames a live session keeps for descriptions and questions: recent ones only, in bounded memory.

Each tracked frame is kept with its regions' masks for ``keep_s`` seconds of stream time (what ``ask(last=...)``
may look back on) and never more than ``max_bytes`` of pixels: beyond that, every other frame older than the
window being filled is let go (so older stretches are kept more sparsely), and only then the window's own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from ..tracking import TrackFrame
from ..video.live_source import LiveFrame


@dataclass(frozen=True, eq=False)
class HistoryEntry:
    """A tracked frame and every region tracked on it."""

    frame: LiveFrame
    regions: Mapping[str, TrackFrame]

    @property
    def time(self) -> float:
        return self.frame.time


class FrameHistory:
    """Recent tracked frames (thread-safe: the tracking thread adds, the GAR worker reads)."""

    def __init__(self, keep_s: float, max_bytes: int) -> None:
        self.keep_s = float(keep_s)
        self.max_bytes = int(max_bytes)
        self._entries: list[HistoryEntry] = []
        self._bytes = 0
        self._protect_from = 0.0
        self._lock = threading.Lock()
        #: Frames let go to stay within ``max_bytes`` (not counting those older than ``keep_s``).
        self.thinned = 0

    def add(self, frame: LiveFrame, regions: Mapping[str, TrackFrame], protect_from: float) -> None:
        """Keep ``frame``; frames from ``protect_from`` on (the window being filled) are the last to be thinned."""
        with self._lock:
            self._entries.append(HistoryEntry(frame, dict(regions)))
            self._bytes += frame.image.nbytes
            self._protect_from = protect_from
            horizon = frame.time - self.keep_s
            expired = 0
            while expired < len(self._entries) - 1 and self._entries[expired].time < min(horizon, protect_from):
                expired += 1
            self._drop(range(expired))
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                self._thin()

    def _thin(self) -> None:
        older = sum(1 for entry in self._entries if entry.time < self._protect_from)
        if older < 2:
            older = len(self._entries) - 1  # the window alone is over the budget: thin it too (never the newest)
        before = len(self._entries)
        self._drop(range(1, older, 2))
        self.thinned += before - len(self._entries)

    def _drop(self, positions: range) -> None:
        if not positions:
            return
        gone = set(positions)
        self._bytes -= sum(self._entries[p].frame.image.nbytes for p in gone)
        self._entries = [entry for p, entry in enumerate(self._entries) if p not in gone]

    def between(self, start: float, end: float) -> list[HistoryEntry]:
        """The entries with ``start <= time < end``, in order."""
        with self._lock:
            return [entry for entry in self._entries if start <= entry.time < end]

    @property
    def latest(self) -> HistoryEntry | None:
        with self._lock:
            return self._entries[-1] if self._entries else None

    @property
    def nbytes(self) -> int:
        """Bytes of pixels held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
