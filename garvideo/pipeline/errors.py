"""The pipeline's own error (its modules raise it; :mod:`garvideo.pipeline` exports it)."""

from __future__ import annotations

from ..errors import GarvideoError


class PipelineError(GarvideoError):
    """A request the pipeline cannot serve as asked (a model it was built without, a region never seen)."""
