"""Decode ahead: run a frame iterator in one background thread, a bounded number of frames ahead.

    for frame in decode_ahead(video.iter_frames(start=120), ahead=4):
        track(frame)        # frame 121..124 are being decoded meanwhile

Decoding (FFmpeg through PyAV, OpenCV's colour conversion) releases the GIL, so it overlaps the
consumer's work (SAM2 on the CPU or a GPU). The frames, their order, and any exception the iterator
raises come out exactly as the iterator gives them, each exception at the position it was raised.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: Frames decoded ahead by default: enough to hide a slow frame (a keyframe, a seek) behind the
#: consumer, few enough that a 4K stream holds ~100 MB more than it would without decode-ahead.
DEFAULT_AHEAD = 4

_END = object()


class _Stream:
    """What the thread shares with the consumer; never the :class:`DecodeAhead` itself, so that one
    dropped without being closed is collected and its ``__del__`` stops the thread."""

    def __init__(self, items: Iterator[Any], transform: Callable[[Any], Any] | None, ahead: int) -> None:
        self.items = items
        self.transform = transform
        self.ready: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()
        # One slot per item the thread may produce before the consumer takes one: the bound on memory.
        self.slots = threading.Semaphore(ahead)
        self.stop = threading.Event()
        self.work_seconds = 0.0

    def produce(self) -> None:
        items, transform = self.items, self.transform
        try:
            while True:
                self.slots.acquire()
                if self.stop.is_set():
                    return
                began = time.perf_counter()
                try:
                    item = next(items)
                    if transform is not None:
                        item = transform(item)
                except StopIteration:
                    self.ready.put((_END, None))
                    return
                except BaseException as exc:  # handed to the consumer, raised there at this position
                    self.ready.put((_END, exc))
                    return
                finally:
                    self.work_seconds += time.perf_counter() - began
                self.ready.put((item, None))
        finally:
            # The thread owns the iterator while it runs; closing it here releases its decoder in order.
            _close(items)

    def halt(self) -> None:
        self.stop.set()
        self.slots.release()  # wake the thread if it waits for a free slot


class DecodeAhead(Iterator[U]):
    """Iterate ``transform(item) for item in items``, producing up to ``ahead`` items in one thread.

    At most ``ahead`` items are produced and not yet taken at any time (so memory stays flat
    whatever the stream's length), the order is kept, and an exception raised by ``items`` or
    ``transform`` is raised by ``__next__`` after every item before it was taken. ``close()`` (or
    ``with``) stops the thread and waits for it, then ``items`` is closed if it can be: after
    ``close()`` returns nothing touches ``items``' decoder, so the caller may use it again. The
    thread starts at the first ``next()`` and ends with the stream, at ``close()``, or when the
    iterator is dropped unclosed.

    ``wait_seconds``: how long the consumer waited for items (the work not hidden behind its own);
    ``work_seconds``: how long the thread spent producing them (overlapped or not).

    Warnings the iterator emits (a damaged frame skipped) come from the thread, up to ``ahead``
    items before the consumer reaches that point in the stream.
    """

    def __init__(
        self, items: Iterable[T], ahead: int = DEFAULT_AHEAD, transform: Callable[[T], U] | None = None
    ) -> None:
        if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 1:
            raise ValueError(f"decode-ahead needs ahead >= 1 items, got {ahead!r}")
        self.ahead = ahead
        self._stream = _Stream(iter(items), transform, ahead)
        self._thread: threading.Thread | None = None
        self._done = False
        self.wait_seconds = 0.0

    @property
    def work_seconds(self) -> float:
        return self._stream.work_seconds

    def __iter__(self) -> DecodeAhead[U]:
        return self

    def __next__(self) -> U:
        if self._done:
            raise StopIteration
        stream = self._stream
        if self._thread is None:
            thread = threading.Thread(target=stream.produce, name="garvideo-decode-ahead", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (too many threads): close() must not wait for it
                self._done = True
                _close(stream.items)
                raise
            self._thread = thread
        began = time.perf_counter()
        item, error = stream.ready.get()
        self.wait_seconds += time.perf_counter() - began
        stream.slots.release()
        if item is _END:
            self.close()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the thread (after the item it is producing, if any) and wait for it; idempotent."""
        self._done = True
        stream, thread = self._stream, self._thread
        if thread is None:
            _close(stream.items)
            return
        stream.halt()
        thread.join()
        self._thread = None
        while not stream.ready.empty():  # drop the items nobody will take
            stream.ready.get_nowait()

    def __enter__(self) -> DecodeAhead[U]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped unclosed: let the thread end (it closes the iterator) without waiting for it here.
        if getattr(self, "_thread", None) is not None:
            self._stream.halt()


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


def decode_ahead(
    items: Iterable[T], ahead: int = DEFAULT_AHEAD, transform: Callable[[T], U] | None = None
) -> DecodeAhead[U]:
    """:class:`DecodeAhead` over ``items`` (for example ``reader.iter_frames(...)``)."""
    return DecodeAhead(items, ahead, transform)
