"""Turning what users hand us (paths, PIL images, arrays) into RGB images and boolean masks.

Every problem becomes an :class:`~garvideo.errors.InvalidInputError` that names
the image or region, never a traceback from PIL or numpy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InvalidInputError
from ..masks import mask_from_image

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]
MaskLike = Union[str, os.PathLike, Image.Image, np.ndarray]


def _open(path: str | os.PathLike, what: str) -> Image.Image:
    try:
        with Image.open(Path(path)) as img:
            img.load()
            return img.copy()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"cannot read {what} {str(path)!r}: no such file") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {what} {str(path)!r}: not a readable image ({exc})") from exc


_SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N")


def _pil_to_rgb(img: Image.Image, what: str = "image") -> np.ndarray:
    if img.mode in _SIXTEEN_BIT_GREY:
        # 16-bit grey (PNG): PIL's conversion to RGB clips every level above 255 to white; scale instead.
        levels = np.asarray(img).astype(np.uint32)
        grey = ((levels * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("I", "F"):
        kind = "32-bit integer" if img.mode == "I" else "floating-point"
        raise InvalidInputError(
            f"{what} has {kind} pixels (PIL mode {img.mode!r}), whose range garvideo cannot know: save it as an"
            " 8-bit RGB or grey image"
        )
    # Like the Perception-LM image processor: anything that is not RGB is
    # first made RGBA and laid over a white background, so transparent pixels
    # become white rather than whatever colour hides under alpha 0.
    if img.mode != "RGB":
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (PIL's array view is read-only)


def load_rgb(image: ImageLike, what: str = "image") -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array from a path, a PIL image or an array.

    Grey, grey+alpha, RGBA and palette images are converted (transparency over
    white); 16-bit grey images are scaled to 8 bits, 32-bit integer and float
    images are refused (their range is unknown). Arrays must be uint8 ``H x W``, ``H x W x 1``, ``H x W x 3`` or
    ``H x W x 4``.
    """
    if isinstance(image, (str, os.PathLike)):
        return _pil_to_rgb(_open(image, what), what)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, what)
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
            return _pil_to_rgb(Image.fromarray(np.ascontiguousarray(image)))
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
