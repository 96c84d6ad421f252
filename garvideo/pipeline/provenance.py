"""A result's provenance: the models a pipeline call ran on, its settings, the frames it used, its time per stage."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..checkpoints import checkpoint_id
from ..video import Span, VideoReader
from .grounding import TextSearch, with_grounding
from .regions import RegionTracks
from .results import ModelRef, Provenance, StageTimings

if TYPE_CHECKING:
    from ..grounding import GroundingDetector
    from ..model import GAR
    from ..tracking import Sam2Tracker


def make_provenance(
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
        settings["compile"] = info.compile_record.to_dict() if info.compile_record is not None else None
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


def models_used(
    gar: GAR | None, tracker: Sam2Tracker | None, detector: GroundingDetector | str | os.PathLike[str] | None
) -> dict[str, str | None]:
    """Which GAR (and its fine-tuned adapter, if any), SAM2 and detector a pipeline uses, as provenance names them
    (a detector not loaded yet by its id or folder)."""
    from ..grounding import GroundingDetector

    if detector is not None and not isinstance(detector, GroundingDetector):
        detector = checkpoint_id(detector)
    elif detector is not None:
        detector = detector.model_id
    models = {
        "gar": gar.info.model_id if gar is not None else None,
        "sam2": tracker.model_id if tracker is not None else None,
        "detector": detector,
    }
    if gar is not None and gar.adapter is not None:  # only then: records made without one still match
        models["adapter"] = gar.adapter.path
    return models
