"""GAR's image processor: pictures to uint8 tiles, region masks to the tiled visual-prompt map.

Tiling follows Perception-LM's ``thumb+tile`` scheme exactly (same grid
choice, torchvision resizes on uint8 tensors: bicubic with antialias for
pictures, legacy ``nearest`` for the prompt map), because GAR's released
numbers depend on those pixels (docs/quirks.md, Q10). Its settings are the
checkpoint's ``preprocessor_config.json``, read and written in the released
layout so Perception-LM's own image processor can read them too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..errors import InvalidInputError
from ..files import atomic_write_json
from ..masks import mask_bbox
from .configuration_gar import read_checkpoint_json
from .images import MaskLike, load_mask

Box = tuple[float, float, float, float]
TilingMode = Literal["thumb+tile", "vanilla"]

PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"

_RESAMPLE = {
    0: InterpolationMode.NEAREST,
    2: InterpolationMode.BILINEAR,
    3: InterpolationMode.BICUBIC,
}


# --------------------------------------------------------------------------- tiling


def supported_grids(max_num_tiles: int) -> list[tuple[int, int]]:
    """Tile grids ``(columns, rows)`` in Perception-LM's search order.

    Grids with the same aspect ratio are grouped under the first one met
    while walking tile counts from ``max_num_tiles`` down to 1; the order
    decides ties in :func:`choose_grid`.
    """
    groups: dict[float, list[tuple[int, int]]] = {}
    for count in range(max_num_tiles, 0, -1):
        divisors = sorted({d for i in range(1, math.isqrt(count) + 1) if count % i == 0 for d in (i, count // i)})
        for columns in divisors:
            grid = (columns, count // columns)
            groups.setdefault(grid[0] / grid[1], []).append(grid)
    return [grid for grids in groups.values() for grid in grids]


def _scaled_size(width: int, height: int, canvas_w: int, canvas_h: int) -> tuple[float, float]:
    # Size of the image scaled into the canvas with its aspect ratio kept;
    # one side is floored, the other is left as a float (as in Perception-LM).
    aspect = width / height
    factor = min(canvas_w / width, canvas_h / height)
    if aspect > 1.0:
        new_w = factor * width
        return new_w, math.floor(new_w / aspect)
    new_h = factor * height
    return math.floor(new_h * aspect), new_h


def choose_grid(width: int, height: int, tile_size: int, max_num_tiles: int) -> tuple[int, int]:
    """The tile grid ``(columns, rows)`` Perception-LM picks for an image of this size.

    Among canvases the image fits without downscaling, the one where it can
    grow most (later candidates win ties); if none fits, the grid whose
    aspect ratio is closest.
    """
    if max_num_tiles <= 1:
        return (1, 1)
    aspect = width / height
    grids = supported_grids(max_num_tiles)
    best: tuple[int, int] | None = None
    best_size: tuple[float, float] | None = None
    for columns, rows in grids:
        canvas_w, canvas_h = columns * tile_size, rows * tile_size
        if canvas_w < width or canvas_h < height:
            continue
        size = _scaled_size(width, height, canvas_w, canvas_h)
        if best is None:
            best, best_size = (columns, rows), size
        elif (aspect < 1.0 and size[0] >= best_size[0]) or (aspect >= 1.0 and size[1] >= best_size[1]):
            best, best_size = (columns, rows), size
    if best is not None:
        return best
    by_ratio: dict[float, list[tuple[int, int]]] = {}
    for grid in grids:
        by_ratio.setdefault(grid[0] / grid[1], []).append(grid)
    if aspect >= 1:
        ratio = min((r for r in by_ratio if r <= aspect), key=lambda r: abs(r - aspect))
        return max(by_ratio[ratio], key=lambda g: g[0])
    ratio = min((r for r in by_ratio if r > aspect), key=lambda r: abs(1 / r - 1 / aspect))
    return max(by_ratio[ratio], key=lambda g: g[1])


def _resize(image: torch.Tensor, height: int, width: int, interpolation: InterpolationMode) -> torch.Tensor:
    if interpolation == InterpolationMode.NEAREST:
        return TF.resize(image, [height, width], interpolation=interpolation)
    return TF.resize(image, [height, width], interpolation=interpolation, antialias=True)


def tile_image(
    image: torch.Tensor,
    grid: tuple[int, int],
    tile_size: int,
    interpolation: InterpolationMode,
    thumbnail: bool,
) -> torch.Tensor:
    """Tiles of a ``(C, H, W)`` uint8 tensor: optional full-image thumbnail first, then the grid row by row."""
    columns, rows = grid
    channels = image.shape[0]
    resized = _resize(image, rows * tile_size, columns * tile_size, interpolation)
    tiles = (
        resized.reshape(channels, rows, tile_size, columns, tile_size)
        .permute(1, 3, 0, 2, 4)
        .reshape(rows * columns, channels, tile_size, tile_size)
    )
    if thumbnail:
        thumb = _resize(image, tile_size, tile_size, interpolation)
        tiles = torch.cat([thumb.unsqueeze(0), tiles], dim=0)
    return tiles


def prompt_map(masks: Sequence[np.ndarray], prompt_indices: Sequence[int], no_prompt_id: int) -> np.ndarray:
    """The visual-prompt map: each pixel holds the id of the first region covering it, else ``no_prompt_id``."""
    height, width = masks[0].shape
    values = np.full((height, width), no_prompt_id, dtype=np.uint8)
    taken = np.zeros((height, width), dtype=bool)
    for mask, index in zip(masks, prompt_indices):
        values[mask & ~taken] = index
        taken |= mask
    return values


def region_box(mask: np.ndarray) -> Box:
    """The mask's tight box normalised by the image size: ``(x_min/W, y_min/H, x_max/W, y_max/H)``.

    As in the reference, the maxima are the last set pixel (not one past it).
    """
    height, width = mask.shape
    x_min, y_min, x_max, y_max = mask_bbox(mask)
    return (x_min / width, y_min / height, x_max / width, y_max / height)


def load_region_masks(
    masks: Sequence[MaskLike],
    image_size: tuple[int, int],
    names: Sequence[str] | None = None,
    allow_empty: bool = False,
    where: str = "",
) -> list[np.ndarray]:
    """Load masks and check each matches the image size (and, unless allowed, is not empty).

    ``names`` label the regions in messages; ``where`` says where they are (``" on frame 3"``).
    """
    width, height = image_size
    loaded = []
    for i, mask in enumerate(masks):
        label = (f"region {names[i]!r}" if names is not None else f"mask {i}") + where
        array = load_mask(mask, what=f"the mask of {label}")
        if array.shape != (height, width):
            raise InvalidInputError(
                f"the mask of {label} is {array.shape[1]}x{array.shape[0]} (width x height) but the image is"
                f" {width}x{height}: masks must have the image's size"
            )
        if not allow_empty and not array.any():
            raise InvalidInputError(f"the mask of {label} is empty: a region needs at least one pixel")
        loaded.append(array)
    return loaded


# --------------------------------------------------------------------------- the image processor


@dataclass(frozen=True)
class PreparedImage:
    """One picture (or video frame) ready for the vision tower."""

    pixel_tiles: torch.Tensor  # uint8 (T, 3, S, S): thumbnail first when has_thumbnail
    prompt_tiles: torch.Tensor  # uint8 (T, S, S): visual-prompt ids, tiled like the pixels (NEAREST)
    grid: tuple[int, int]  # (columns, rows) of the tiles after the thumbnail
    has_thumbnail: bool
    size: tuple[int, int]  # (width, height) of the original picture
    prompt_map: np.ndarray = field(repr=False)  # uint8 (H, W) visual-prompt ids before tiling

    @property
    def num_tiles(self) -> int:
        return int(self.pixel_tiles.shape[0])


@dataclass(frozen=True)
class GARImageProcessor:
    """How pictures become tiles (Perception-LM's image-processor settings), and the tiling itself.

    ``mode``: ``thumb+tile`` (a thumbnail, then a grid of up to ``max_num_tiles`` tiles) or
    ``vanilla`` (the whole picture as one tile). ``resample``: PIL's code for the picture resize
    (0 nearest, 2 bilinear, 3 bicubic); the visual-prompt map is always resized nearest.
    """

    tile_size: int = 448
    max_num_tiles: int = 36
    mode: TilingMode = "thumb+tile"
    resample: int = 3
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255

    def __post_init__(self) -> None:
        if self.mode not in ("thumb+tile", "vanilla"):
            raise InvalidInputError(f"unknown tiling {self.mode!r}: use 'thumb+tile' or 'vanilla' (one tile)")
        if self.resample not in _RESAMPLE:
            raise InvalidInputError(f"unsupported resample code {self.resample}: use 0, 2 or 3")
        if self.tile_size <= 0 or self.max_num_tiles <= 0:
            raise InvalidInputError("tile_size and max_num_tiles must be positive")

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std on the 0..255 scale: ``(u8 - mean) / std`` (rescale fused as transformers does)."""
        scale = 1.0 / self.rescale_factor
        return tuple(m * scale for m in self.image_mean), tuple(s * scale for s in self.image_std)

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_dict(cls, data: dict) -> GARImageProcessor:
        """From the released ``preprocessor_config.json`` keys; a missing key takes its default."""
        size = data.get("size") or {}
        return cls(
            tile_size=int(data.get("tile_size", size.get("height", 448))),
            max_num_tiles=int(data.get("max_num_tiles", 36)),
            mode=data.get("vision_input_type", "thumb+tile"),
            resample=int(data.get("resample", 3)),
            image_mean=tuple(data.get("image_mean", (0.5, 0.5, 0.5))),
            image_std=tuple(data.get("image_std", (0.5, 0.5, 0.5))),
            rescale_factor=float(data.get("rescale_factor", 1 / 255)),
        )

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> GARImageProcessor:
        """From a checkpoint folder's ``preprocessor_config.json`` (the defaults when it has none)."""
        return cls.from_dict(read_checkpoint_json(Path(folder) / PREPROCESSOR_CONFIG_NAME, required=False))

    def to_dict(self) -> dict:
        """The released ``preprocessor_config.json`` (Perception-LM's fast image processor reads it too)."""
        return {
            "image_processor_type": "PerceptionLMImageProcessorFast",
            "processor_class": "PerceptionLMProcessor",
            "do_convert_rgb": True,
            "do_resize": True,
            "do_rescale": True,
            "do_normalize": True,
            "do_center_crop": False,
            "rescale_factor": self.rescale_factor,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "resample": self.resample,
            "size": {"height": self.tile_size, "width": self.tile_size},
            "tile_size": self.tile_size,
            "max_num_tiles": self.max_num_tiles,
            "vision_input_type": self.mode,
        }

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write ``preprocessor_config.json`` into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / PREPROCESSOR_CONFIG_NAME, self.to_dict())

    # ---------------------------------------------------------------- tiling

    def preprocess(
        self,
        image: np.ndarray,
        masks: Sequence[np.ndarray],
        prompt_indices: Sequence[int],
        no_prompt_id: int,
        mode: TilingMode | None = None,
    ) -> PreparedImage:
        """Tile an RGB ``H x W x 3`` uint8 image and its visual-prompt map (masks already loaded and checked).

        ``masks[i]`` is drawn into the map as ``prompt_indices[i]`` (earlier masks win where they
        overlap); every other pixel holds ``no_prompt_id``. ``mode`` overrides the settings' tiling.
        """
        mode = mode or self.mode
        if mode not in ("thumb+tile", "vanilla"):
            raise InvalidInputError(f"unknown tiling {mode!r}: use 'thumb+tile' or 'vanilla' (one tile)")
        height, width = image.shape[:2]
        values = (
            prompt_map(masks, prompt_indices, no_prompt_id)
            if masks
            else np.full((height, width), no_prompt_id, dtype=np.uint8)
        )
        pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        ids = torch.from_numpy(values).unsqueeze(0)
        size = self.tile_size
        if mode == "thumb+tile":
            grid = choose_grid(width, height, size, self.max_num_tiles)
            thumbnail = True
        else:
            grid, thumbnail = (1, 1), False
        pixel_tiles = tile_image(pixels, grid, size, _RESAMPLE[self.resample], thumbnail)
        prompt_tiles = tile_image(ids, grid, size, InterpolationMode.NEAREST, thumbnail)[:, 0]
        return PreparedImage(
            pixel_tiles=pixel_tiles.contiguous(),
            prompt_tiles=prompt_tiles.contiguous(),
            grid=grid,
            has_thumbnail=thumbnail,
            size=(width, height),
            prompt_map=values,
        )
