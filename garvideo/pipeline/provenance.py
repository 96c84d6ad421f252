"""A result's provenance: the models a pipeline call ran on, its settings, the frames it used, its time per stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..video import Span, VideoReader
from .grounding import TextSearch, with_grounding
from .regions import RegionTracks
from .results import ModelRef, Provenance, StageTimings

if TYPE_CHECKING:
    from ..model import GAR
    from ..tracking import Sam2Tracker


def provenance(
    gar: GAR | None,
    tracker: Sam2Tracker | None,
    reader: VideoReader,
    span: Span,
    got: RegionTracks,
    search: TextSearch,
    settings: Mapping[str, Any],
    frames: Sequence[int],
    timings: StageTimings,
) -> Provenance:
    """What a call ran on: GAR (None when the call did not use it), SAM2 (when the call tracked), its settings (the
    range first; how text regions were found last), the frames GAR saw (or that were tracked) and the time per
    stage, finding and tracking included."""
    settings = with_grounding({"start": span.start, "end": span.end, **settings}, search, got.found)
    timings = got.timings + timings
    gar_ref = None
    if gar is not None:
        info = gar.info
        adapter = info.adapter.to_dict() if info.adapter is not None else None
        gar_ref = ModelRef(info.model_id, info.revision, info.device, info.dtype, adapter)
        settings = {**settings, "box_mode": info.box_mode, "double_bos": info.double_bos, "compiled": info.compiled}
    sam2_ref = None
    if got.tracked and tracker is not None:
        t = tracker
        sam2_ref = ModelRef(t.model_id, t.revision, str(t.device), t.precision)  # e.g. float32+autocast:bfloat16
    frames = sorted(set(int(i) for i in frames))
    return Provenance(
        gar=gar_ref,
        sam2=sam2_ref,
        settings=dict(settings),
        frames=tuple(frames),
        times=tuple(reader.index_to_time(i) for i in frames),
        timings=timings,
        garvideo_version=__version__,
    )
