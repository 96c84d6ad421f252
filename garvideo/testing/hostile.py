"""Hostile input files for tests: FIFOs, symbolic link loops, images whose header claims a huge size.

Small on disk and quick to make: the checks they exercise must refuse them from what the file
system or the file's header says, before anything is read or decoded.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def unblocking_fifo(path: str | os.PathLike[str], patience: float = 10.0) -> Iterator[Path]:
    """A FIFO at ``path`` for code that must refuse it without opening it for reading.

    Should the code block on it anyway, a writer opens and closes it after ``patience`` seconds, which ends
    the blocked read (no data), and the block then fails with :class:`AssertionError` whatever the code did
    next: a test of a refusal cannot pass by waiting out the patience.
    """
    path = Path(path)
    os.mkfifo(path)
    finished = threading.Event()
    unblocked: list[bool] = []

    def release() -> None:
        if finished.wait(patience):
            return
        try:
            writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # fails at once when nothing reads (ENXIO)
        except OSError:
            return
        unblocked.append(True)  # a reader had it open, waiting: the code under test blocked
        os.close(writer)

    helper = threading.Thread(target=release, name="fifo-release", daemon=True)
    helper.start()
    try:
        yield path
    finally:
        finished.set()
        helper.join()
        if unblocked:
            raise AssertionError(f"the FIFO {path} was opened for reading and waited on for {patience:g} s")


def symlink_loop(path: str | os.PathLike[str]) -> Path:
    """A symbolic link at ``path`` to a second link that leads back to it (ELOOP when followed)."""
    path = Path(path)
    other = path.with_name(path.name + ".other")
    path.symlink_to(other.name)
    other.symlink_to(path.name)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: str | os.PathLike[str], width: int = 20000, height: int = 20000) -> Path:
    """A grey PNG whose header says ``width`` x ``height`` (a decompression bomb's claim) holding one row of
    data: a few dozen bytes that no reader should try to decode."""
    path = Path(path)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (width + 1))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", row) + _chunk(b"IEND", b""))
    return path
