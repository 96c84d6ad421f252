"""What garvideo writes: the result document (JSON), subtitles (SRT/VTT) and overlay videos.

- :mod:`.document`: :func:`result_document` (versioned schema), :func:`validate_result_document`,
  :func:`timeline_cues`.
- :mod:`.subtitles`: :class:`Cue`, :func:`to_srt`, :func:`to_vtt`.
- :mod:`.overlay`: :func:`render_overlay` (the video re-encoded with masks, boxes, names and captions drawn on it
  by :mod:`.drawing`).

Subtitles need nothing heavy; the document and the overlay load on first use.
"""

from .._lazy import lazy_attributes
from .subtitles import Cue, to_srt, to_vtt

_LAZY = {
    "RESULT_SCHEMA": ".document",
    "RESULT_VERSION": ".document",
    "result_document": ".document",
    "timeline_cues": ".document",
    "validate_result_document": ".document",
    "render_overlay": ".overlay",
    "OverlayError": ".overlay",
}
__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["Cue", "to_srt", "to_vtt", *_LAZY]
