"""How garvideo turns a decoded image into RGB pixels, wherever the image comes from.

One conversion for the model's inputs (:func:`garvideo.model.load_rgb`) and
for the frames of a frame folder (:mod:`garvideo.video.frame_folder`), so a
frame looks the same whether it is read as part of a video or given to GAR as
an image. Only PIL and numpy: the video reader imports it without torch.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import BinaryIO, TypeVar

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import GarvideoError, InvalidInputError
from .inputs import open_regular_file

#: The most pixels an image file garvideo reads (a mask, a frame of a folder, an image for GAR) may have:
#: 16384 x 8192, a 16K panorama (384 MiB as RGB). Checked from the file's header, before any pixel is decoded.
MAX_IMAGE_PIXELS = 16384 * 8192

T = TypeVar("T")

#: PIL modes of 16-bit grey images (PNG), scaled to 8 bits.
SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N")
#: PIL modes whose value range cannot be known (32-bit integers, floats): refused.
UNKNOWN_RANGE_MODES = {"I": "32-bit integer", "F": "floating-point"}


def check_rgb_mode(mode: str, what: str = "image") -> None:
    """Raise :class:`InvalidInputError` if images of PIL ``mode`` cannot be made RGB (see :func:`pil_to_rgb`)."""
    if mode in UNKNOWN_RANGE_MODES:
        raise InvalidInputError(
            f"{what} has {UNKNOWN_RANGE_MODES[mode]} pixels (PIL mode {mode!r}), whose range garvideo cannot know: "
            "save it as an 8-bit RGB or grey image"
        )


def pil_to_rgb(image: Image.Image, what: str = "image") -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array of ``image``, writable and owned by the caller.

    16-bit grey is scaled to 8 bits (PIL's own conversion clips every level
    above 255 to white). Every other mode that is not RGB (grey, palette,
    grey+alpha, RGBA, CMYK ...) is made RGBA and laid over a white background,
    as the Perception-LM image processor does, so transparent pixels become
    white rather than whatever colour hides under alpha 0. 32-bit integer and
    float images are refused with :class:`InvalidInputError` naming ``what``.
    """
    if image.mode in SIXTEEN_BIT_GREY:
        levels = np.asarray(image).astype(np.uint32)
        grey = ((levels * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    check_rgb_mode(image.mode, what)
    if image.mode != "RGB":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    # np.array copies once into memory the caller owns; np.asarray would give a read-only view, which torch
    # (SAM2's and GAR's processors) warns about on every frame.
    return np.array(image, dtype=np.uint8)


def read_image(
    path: str | os.PathLike[str],
    use: Callable[[Image.Image], T],
    what: str = "image",
    error: type[GarvideoError] = InvalidInputError,
) -> T:
    """``use(image)`` on the image file at ``path``, opened lazily: ``use`` decides what is decoded.

    Refused with ``error`` naming ``what`` and the file, before any pixel is decoded: what is not a
    readable regular file (a FIFO, a folder, a link loop: :func:`garvideo.inputs.open_regular_file`),
    what is not an image, and an image of more than :data:`MAX_IMAGE_PIXELS` pixels (its header's size).
    A file that fails while ``use`` decodes it (truncated, damaged) is refused the same way.
    """
    with open_regular_file(path, what, error) as handle:
        try:
            image = _identify(handle, os.fspath(path))
        except UnidentifiedImageError:
            raise error(f"cannot read {what} {os.fspath(path)}: not a readable image (unknown format)") from None
        except OSError as exc:
            raise error(f"cannot read {what} {os.fspath(path)}: not a readable image ({exc})") from None
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise error(
                    f"cannot read {what} {os.fspath(path)}: it is {width}x{height} pixels, more than the "
                    f"{MAX_IMAGE_PIXELS:,} (16384x8192) garvideo reads; scale it down first"
                )
            try:
                return use(image)
            except InvalidInputError:
                raise
            except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for damaged or truncated data
                raise error(f"cannot read {what} {os.fspath(path)}: not a readable image ({exc})") from None


def _height_width(image: Image.Image) -> tuple[int, int]:
    return image.height, image.width


def read_image_size(
    path: str | os.PathLike[str], what: str = "image", error: type[GarvideoError] = InvalidInputError
) -> tuple[int, int]:
    """The (height, width) an image file's header states, no pixel decoded; refused as :func:`read_image` refuses
    (a FIFO never opened for a blocking read, a non-image, an image over :data:`MAX_IMAGE_PIXELS`)."""
    return read_image(path, _height_width, what, error)


def _identify(handle: BinaryIO, name: str) -> ImageFile.ImageFile:
    """The image in ``handle``, its header read and no pixel decoded, found as ``Image.open`` finds it (the
    plugins' own recognisers, the common formats first) but without its decompression-bomb check, which
    raises before it tells the size: :func:`read_image` bounds the size itself."""
    prefix = handle.read(16)
    tried: set[str] = set()
    for load_plugins in (Image.preinit, Image.init):
        load_plugins()
        for format_id in [format_id for format_id in Image.ID if format_id not in tried]:
            tried.add(format_id)
            factory, accept = Image.OPEN[format_id]
            try:  # a recogniser may fail on a short prefix (BMP's on an empty file), as Image.open allows
                accepted = accept(prefix) if accept else True
                if not accepted or isinstance(accepted, str):
                    continue
                handle.seek(0)
                return factory(handle, name)
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
    raise UnidentifiedImageError(f"cannot identify image file {name!r}")
