"""garvideo: describe and question regions in videos with SAM2 tracking and GAR."""

__version__ = "0.1.0"

from .errors import GarvideoError, InvalidInputError, ModelNotFoundError, VideoError

__all__ = ["__version__", "GarvideoError", "InvalidInputError", "ModelNotFoundError", "VideoError"]
