"""What garvideo writes: the result document (JSON), subtitles (SRT/VTT) and overlay videos.

- :mod:`.document`: :func:`result_document` (versioned schema), :func:`validate_result_document`,
  :func:`timeline_cues`, :func:`track_summary` and :func:`track_sentence` (how a track went).
- :mod:`.tracks`: the tracks file (:func:`save_tracks_file`, :func:`tracks_document`, :func:`read_tracks_file`)
  and a result's prompts (:func:`result_prompts`), built once for every front-end.
- :mod:`.subtitles`: :class:`Cue`, :func:`to_srt`, :func:`to_vtt`.
- :mod:`.overlay`: :func:`render_overlay` (the video re-encoded with masks, boxes, names and captions drawn on it
  by :mod:`.drawing`).

Subtitles need nothing heavy; the rest loads on first use. Front-ends (the command line, batch, the web app)
write their outputs with this module.
"""

from .._lazy import lazy_attributes
from .subtitles import Cue, to_srt, to_vtt

_LAZY = {
    "RESULT_SCHEMA": ".document",
    "RESULT_VERSION": ".document",
    "result_document": ".document",
    "timeline_cues": ".document",
    "track_sentence": ".document",
    "track_summary": ".document",
    "TracksFile": ".tracks",
    "read_tracks_file": ".tracks",
    "recorded_prompts": ".tracks",
    "result_prompts": ".tracks",
    "save_tracks_file": ".tracks",
    "tracks_document": ".tracks",
    "tracks_meta": ".tracks",
    "validate_result_document": ".document",
    "render_overlay": ".overlay",
    "OverlayError": ".overlay",
}
__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["Cue", "to_srt", "to_vtt", *_LAZY]
