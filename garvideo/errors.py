"""Exceptions that carry a message a user can act on.

Every mistake a user can make (a bad region, a missing file, an unknown model)
raises a subclass of :class:`GarvideoError`. The command line prints its
message as one line and exits non-zero; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class GarvideoError(Exception):
    """Base class for errors caused by input, configuration or environment."""


class InvalidInputError(GarvideoError, ValueError):
    """An argument is malformed or out of range (a box outside the frame, an empty mask)."""


class ModelNotFoundError(GarvideoError):
    """A model id or folder cannot be resolved (offline with no cached copy, a typo)."""


class VideoError(GarvideoError):
    """A video cannot be opened or holds no decodable video stream."""
