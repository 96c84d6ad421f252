"""Jobs run in the server's own process, on one pipeline loaded once and shared (:mod:`garvideo.serve.models`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import defaults
from .models import release_models, share_models
from .requests import JobRequest
from .work import JobOutput, run_job


class LocalExecutor:
    """``slots`` jobs at once on one pipeline: one job's tracking overlaps another's describing."""

    def __init__(self, pipeline: Any, slots: int = defaults.SERVE_JOBS) -> None:
        self.pipeline = share_models(pipeline)
        self.slots = slots

    def run(
        self, slot: int, request: JobRequest, video: str, shown: str, folder: Any, on_event: Callable[[Any], None]
    ) -> JobOutput:
        return run_job(self.pipeline, request, video, shown, folder, on_event)

    def ready(self) -> bool:
        return True

    def models(self) -> dict[str, Any]:
        """The loaded models, for ``/readyz`` and ``/v1/models``."""
        return model_refs(self.pipeline)

    def close(self) -> None:
        release_models(self.pipeline)


def model_refs(pipeline: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if pipeline.gar is not None:
        info = pipeline.gar.info
        out["gar"] = {"model": info.model_id, "revision": info.revision, "device": info.device, "dtype": info.dtype}
    if pipeline.tracker is not None:
        tracker = pipeline.tracker
        out["sam2"] = {
            "model": tracker.model_id,
            "revision": tracker.revision,
            "device": str(tracker.device),
            "dtype": tracker.precision,
        }
    return out
