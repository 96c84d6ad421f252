"""Decoding chosen frames with decord (optional: ``pip install garvideo[decord]``).

decord keeps its own frame index; the reader checks that it counts the same
frames as the PyAV probe, and times always come from the probe so both
backends give the same frames for the same indices. Rotated videos are refused
(decord 0.6 mishandles their display matrix), and so are files whose frames are
not one per packet in timestamp order (packed B-frames, B-frames without
presentation timestamps, repeated or backward timestamps, packets a decoder drops at a mid-GOP start or
an edit list hides: decord numbers frames by packets) and MPEG transport and program streams (decord
seeks them to the wrong frames): PyAV reads them.
"""

from __future__ import annotations

import atexit
import importlib.util
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import VideoError
from .facts import DecodeStats, Frame
from .timeline import Timeline

#: Readers not yet closed. decord's C++ reader must be freed while the interpreter is whole: left
#: to interpreter teardown, its decoding threads can outlive what they use ("pure virtual method
#: called", SIGSEGV at exit).
_open_decoders: weakref.WeakSet[DecordDecoder] = weakref.WeakSet()


@atexit.register
def _close_open_decoders() -> None:
    for decoder in list(_open_decoders):
        decoder.close()


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


class DecordDecoder:
    def __init__(
        self,
        path: str,
        timeline: Timeline,
        rotation: int,
        batch_size: int,
        threads: int = 0,
        *,
        not_exact: str | None = None,
    ) -> None:
        if not_exact:
            # decord numbers frames by packet timestamps and seeks by them: FFmpeg's frames differ in such files.
            raise VideoError(f"decord cannot read {path} frame-exactly ({not_exact}); use backend='pyav'")
        try:
            import decord
        except ImportError:
            raise VideoError(
                "the decord backend is not installed: pip install 'garvideo[decord]' (or use backend='pyav')"
            ) from None
        if rotation:
            # decord 0.6 mishandles display-matrix rotation (wrong shapes, failed copies).
            raise VideoError(f"decord cannot read rotated videos such as {path} correctly; use backend='pyav'")
        try:
            self._reader: Any = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
        except decord.DECORDError as exc:
            raise VideoError(f"decord cannot open {path}: {str(exc).splitlines()[0]}") from None
        if len(self._reader) != len(timeline):
            raise VideoError(
                f"decord counts {len(self._reader)} frames in {path} where FFmpeg outputs {len(timeline)}; "
                "use backend='pyav' for this file"
            )
        self._timeline = timeline
        self._batch_size = batch_size
        _open_decoders.add(self)

    def close(self) -> None:
        self._reader = None
        _open_decoders.discard(self)

    @property
    def stats(self) -> DecodeStats | None:
        return None  # decord does not say how many frames it decoded

    def _batch(self, chunk: list[int]) -> Iterator[Frame]:
        arrays = self._reader.get_batch(chunk).asnumpy()
        for index, image in zip(chunk, arrays):
            yield Frame(index=index, time=float(self._timeline.times[index]), image=image)

    def decode(self, indices: Iterable[int]) -> Iterator[Frame]:
        """Yield the frames at ``indices`` (ascending), ``batch_size`` decoded at a time."""
        chunk: list[int] = []
        for index in indices:
            chunk.append(int(index))
            if len(chunk) == self._batch_size:
                yield from self._batch(chunk)
                chunk = []
        if chunk:
            yield from self._batch(chunk)
