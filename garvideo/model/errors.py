"""Errors of the GAR model package (all :class:`~garvideo.errors.GarvideoError` subclasses)."""

from __future__ import annotations

from ..errors import GarvideoError, InvalidInputError


class TooManyRegionsError(InvalidInputError):
    """More regions than one GAR prompt holds (``prompt_numbers``, 5 for the released models).

    Callers with more regions ask about them in groups (``GAR.max_regions`` at a time).
    """


class CheckpointError(GarvideoError):
    """A checkpoint folder exists but is not a usable GAR checkpoint (bad config, missing or extra weights)."""
