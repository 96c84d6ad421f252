"""Turning what users hand us (paths, PIL images, arrays) into RGB images and boolean masks.

Every problem becomes an :class:`~garvideo.errors.InvalidInputError` that names
the image or region, never a traceback from PIL or numpy.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..images import pil_to_rgb, read_image
from ..masks import mask_from_image

ImageLike = str | os.PathLike | Image.Image | np.ndarray
MaskLike = str | os.PathLike | Image.Image | np.ndarray


def _open(path: str | os.PathLike, what: str) -> Image.Image:
    return read_image(path, _loaded_copy, what)


def _loaded_copy(image: Image.Image) -> Image.Image:
    image.load()
    return image.copy()


def load_rgb(image: ImageLike, what: str = "image") -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array from a path, a PIL image or an array.

    Images and files are converted as :func:`garvideo.images.pil_to_rgb` does
    for video frames: grey, grey+alpha, RGBA and palette images become RGB
    (transparency over white); 16-bit grey images are scaled to 8 bits, 32-bit
    integer and float images are refused (their range is unknown). Arrays must
    be uint8 ``H x W``, ``H x W x 1``, ``H x W x 3`` or ``H x W x 4``; a
    writable RGB array is used as is, a read-only one is copied.
    """
    if isinstance(image, (str, os.PathLike)):
        return pil_to_rgb(_open(image, what), what)
    if isinstance(image, Image.Image):
        return pil_to_rgb(image, what)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InvalidInputError(f"{what} array has dtype {image.dtype}: pass uint8 values 0..255 (H x W x 3, RGB)")
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
            return np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
        if image.ndim == 3 and image.shape[2] == 3:
            # torch.from_numpy (in tiling) warns on read-only arrays, e.g. frames read with np.asarray from PIL:
            # copy those, share writable ones.
            return np.ascontiguousarray(image) if image.flags.writeable else np.array(image, order="C")
        if image.ndim == 3 and image.shape[2] == 4:
            return pil_to_rgb(Image.fromarray(np.ascontiguousarray(image)))
        raise InvalidInputError(f"{what} array has shape {image.shape}: expected H x W x 3 (RGB) or H x W")
    raise InvalidInputError(f"{what} must be a file path, a PIL image or a numpy array, got {type(image).__name__}")


def load_mask(mask: MaskLike, what: str = "mask") -> np.ndarray:
    """A 2-D boolean mask: non-zero pixels are inside.

    Accepts bool or integer arrays (0/1 or 0/255), PIL images and image paths
    (non-zero grey level, palette index or colour: :func:`garvideo.masks.mask_from_image`).
    """
    if isinstance(mask, (str, os.PathLike)):
        mask = _open(mask, what)
    if isinstance(mask, Image.Image):
        return mask_from_image(mask)
    if isinstance(mask, np.ndarray):
        if mask.ndim == 3 and mask.shape[2] == 1:
            mask = mask[:, :, 0]
        if mask.ndim != 2:
            raise InvalidInputError(f"{what} has shape {mask.shape}: a mask must be 2-D (height x width)")
        if mask.dtype == bool:
            return mask
        if np.issubdtype(mask.dtype, np.number):
            return mask != 0
        raise InvalidInputError(f"{what} has dtype {mask.dtype}: pass a bool or 0/255 array")
    raise InvalidInputError(f"{what} must be a file path, a PIL image or a numpy array, got {type(mask).__name__}")
