"""How garvideo turns a decoded image into RGB pixels, wherever the image comes from.

One conversion for the model's inputs (:func:`garvideo.model.load_rgb`) and
for the frames of a frame folder (:mod:`garvideo.video.frame_folder`), so a
frame looks the same whether it is read as part of a video or given to GAR as
an image. Only PIL and numpy: the video reader imports it without torch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import InvalidInputError

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
