"""GAR on transformers' native Perception-LM: mask patch embedding and RoI-aligned feature replay.

The pieces, in the order the data meets them:

1. Each tile's visual-prompt ids are binarised ("in some region or not"),
   embedded by ``mask_patch_embedding`` (a patch-sized, patch-strided conv)
   and ADDED to the ViT patch embeddings right after ``patch_embed``, before
   the class token, position embedding and ``norm_pre``. This is done with a
   forward hook registered on this model's own ``patch_embed`` instance while
   the vision tower runs, so no class is patched and timm's forward is used as
   is.
2. The projector's tile features are written over the ``<|image|>`` tokens.
3. For every region placeholder run, the image's tile features (thumbnail
   dropped) are merged into one feature map, the region's box is RoI-aligned
   from it to ``tokens_per_side x tokens_per_side`` features, and those replace
   the run's tokens. The box can be passed to ``roi_align`` as the reference
   does (``"reference"``: already in feature coordinates, then scaled by
   ``1 / (patch * pooling)`` again, so the top-left corner of the map is
   sampled: quirk Q1, what the released weights were trained with) or
   geometrically correct (``"aligned"``).
4. The language model generates from the resulting embeddings (left padding
   for batches) with garvideo's lean loop over transformers' ``StaticCache``
   (``decoding.py``; compiled where ``GAR.compile`` says) or, for settings it does
   not reproduce, transformers' standard ``generate``.

Feature-map sizes come from the loaded vision tower and projector (tile
size, patch size, pooling), never from constants.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torchvision
from torch import nn

from ..errors import InvalidInputError
from ..files import atomic_path
from . import decoding
from .batching import ImageFeatureMemo, image_key, same_image
from .configuration_gar import GARConfig
from .decoding import StaticDecoder
from .errors import CheckpointError
from .image_processing_gar import PreparedImage
from .processing_gar import GARInputs, PlaceholderRun

BoxMode = Literal["reference", "aligned"]
BOX_MODES = ("reference", "aligned")
MASK_EMBEDDING_KEY = "mask_patch_embedding.weight"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


@functools.cache
def _perception_lm_class():
    from transformers import PerceptionLMForConditionalGeneration

    class PerceptionLMInGAR(PerceptionLMForConditionalGeneration):
        """The native Perception-LM, loaded from a GAR file that also holds the mask patch embedding.

        Only declares that key as expected-elsewhere so loading reports stay
        clean; GARModel loads it itself.
        """

        _keys_to_ignore_on_load_unexpected = [r"^mask_patch_embedding\."]

    return PerceptionLMInGAR


@dataclass(frozen=True)
class ReplayRecord:
    """What one RoI-aligned replay did (for provenance and parity checks)."""

    run: PlaceholderRun
    roi: tuple[float, float, float, float, float]  # [batch index, x1, y1, x2, y2] as passed to roi_align (float32)
    spatial_scale: float
    feature_map_size: tuple[int, int]  # (height, width) of the sampled map


@dataclass(frozen=True)
class EncodedPrompt:
    """The language model's input for one prompt, and how it was made."""

    inputs_embeds: torch.Tensor  # (L, hidden)
    image_features: tuple[torch.Tensor, ...]  # per image: (tiles, tokens_per_tile, hidden)
    replay_features: tuple[torch.Tensor, ...]  # per run: (tokens_per_tile, hidden)
    replays: tuple[ReplayRecord, ...]


class GARModel(nn.Module):
    """Grasp Any Region: Perception-LM plus a mask patch embedding and RoI feature replay.

    Parameter names are the released ones (``mllm.model.vision_tower.*``,
    ``mllm.model.multi_modal_projector.*``, ``mllm.model.language_model.*``,
    ``mllm.lm_head.*``, ``mask_patch_embedding.*``).
    """

    def __init__(self, config: GARConfig, mllm: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.mllm = mllm if mllm is not None else _perception_lm_class()(copy.deepcopy(config.mllm_config))
        patch_embed = self._vision_model.patch_embed
        patch = tuple(int(p) for p in patch_embed.patch_size)
        kernel = tuple(config.kernel_size) if config.kernel_size is not None else patch
        if kernel != patch:
            raise CheckpointError(
                f"config: the mask patch embedding kernel {kernel} differs from the vision tower's patch size {patch}"
            )
        channels = config.mask_embedding_channels or int(self._vision_model.embed_dim)
        reference = next(self.mllm.parameters())
        self.mask_patch_embedding = nn.Conv2d(
            3, channels, kernel_size=kernel, stride=kernel, bias=False, device=reference.device, dtype=reference.dtype
        )
        self._pending_mask_embeds: torch.Tensor | None = None
        # Instance-level: only this model's patch_embed module gets the hook.
        patch_embed.register_forward_hook(self._add_mask_embeddings)

    # ------------------------------------------------------------------ geometry (from the modules)

    @property
    def _vision_model(self) -> nn.Module:
        return self.mllm.model.vision_tower.timm_model

    @property
    def patch_size(self) -> int:
        return int(self._vision_model.patch_embed.patch_size[0])

    @property
    def tile_size(self) -> int:
        size = self._vision_model.patch_embed.img_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def pooling_ratio(self) -> int:
        return self.config.pooling_ratio

    @property
    def tokens_per_side(self) -> int:
        return self.tile_size // self.patch_size // self.pooling_ratio

    @property
    def tokens_per_tile(self) -> int:
        return self.tokens_per_side**2

    @property
    def feature_stride(self) -> int:
        """Pixels per feature-map cell: patch size times pooling (the reference's constant 28)."""
        return self.patch_size * self.pooling_ratio

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # ------------------------------------------------------------------ vision

    def _add_mask_embeddings(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor | None:
        pending = self._pending_mask_embeds
        if pending is None:
            return None
        if output.shape[0] != pending.shape[0]:
            raise RuntimeError("mask embeddings and pixel batch differ in size")
        if output.ndim == 4:  # NHWC patch grid (timm's dynamic image size mode)
            return output + pending.permute(0, 2, 3, 1).to(output.dtype)
        return output + pending.flatten(2).transpose(1, 2).to(output.dtype)

    @contextlib.contextmanager
    def _mask_embeddings_added(self, mask_embeds: torch.Tensor) -> Iterator[None]:
        self._pending_mask_embeds = mask_embeds
        try:
            yield
        finally:
            self._pending_mask_embeds = None

    def mask_embeddings(self, prompt_tiles: torch.Tensor) -> torch.Tensor:
        """``(T, S, S)`` visual-prompt ids -> ``(T, C, S/patch, S/patch)``: "in some region" embedded per patch."""
        inside = (prompt_tiles != self.config.prompt_numbers).to(self.dtype)
        return self.mask_patch_embedding(inside.unsqueeze(1).expand(-1, 3, -1, -1))

    def encode_tiles(
        self,
        pixel_tiles: torch.Tensor,
        prompt_tiles: torch.Tensor,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        batch_size: int = 16,
        progress: bool = False,
    ) -> torch.Tensor:
        """Projector features ``(T, tokens_per_tile, hidden)`` of uint8 tiles, ``batch_size`` tiles at a time."""
        if batch_size < 1:
            raise InvalidInputError(f"vision batch size must be at least 1, got {batch_size}")
        device, dtype = self.device, self.dtype
        mean = torch.tensor(image_mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std = torch.tensor(image_std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        total = int(pixel_tiles.shape[0])
        starts = range(0, total, batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="vision tower", unit="batch", leave=False)
        outputs = []
        for start in starts:
            pixels = pixel_tiles[start : start + batch_size].to(device, non_blocking=True).float()
            pixels = ((pixels - mean) / std).to(dtype)
            mask_embeds = self.mask_embeddings(prompt_tiles[start : start + batch_size].to(device, non_blocking=True))
            with self._mask_embeddings_added(mask_embeds):
                hidden = self.mllm.model.vision_tower(pixel_values=pixels).last_hidden_state
            if self.config.mllm_config.vision_use_cls_token:
                hidden = hidden[:, 1:, :]
            outputs.append(self.mllm.model.multi_modal_projector(hidden))
        return torch.cat(outputs, dim=0)

    # ------------------------------------------------------------------ replay

    def replay_map(self, features: torch.Tensor, image: PreparedImage) -> torch.Tensor:
        """One image's tile features merged into a ``(1, hidden, rows*side, cols*side)`` map (thumbnail dropped)."""
        side = self.tokens_per_side
        tiles = features[1:] if image.has_thumbnail else features
        columns, rows = image.grid
        if tiles.shape[0] != columns * rows:
            raise RuntimeError(f"{tiles.shape[0]} tiles for a {columns}x{rows} grid")
        hidden = tiles.shape[-1]
        grid = tiles.reshape(rows, columns, side, side, hidden).permute(4, 0, 2, 1, 3)
        return grid.reshape(1, hidden, rows * side, columns * side)

    def replay(
        self, feature_map: torch.Tensor, run: PlaceholderRun, box_mode: BoxMode
    ) -> tuple[torch.Tensor, ReplayRecord]:
        """RoI-align ``run``'s box from ``feature_map`` to ``tokens_per_tile`` features (row-major)."""
        if box_mode not in BOX_MODES:
            raise InvalidInputError(f"unknown box mode {box_mode!r}: use 'reference' or 'aligned'")
        feat_h, feat_w = int(feature_map.shape[-2]), int(feature_map.shape[-1])
        # The reference's arithmetic, in this order and in float64, so the
        # float32 box is bit-identical: to pixels of a (feat * stride) canvas,
        # then back to feature cells.
        pixels_h, pixels_w = feat_h * self.feature_stride, feat_w * self.feature_stride
        scale = feat_w / pixels_w
        x1, y1, x2, y2 = run.box
        roi = torch.tensor(
            [[0.0, x1 * pixels_w * scale, y1 * pixels_h * scale, x2 * pixels_w * scale, y2 * pixels_h * scale]],
            dtype=torch.float32,
            device=feature_map.device,
        )
        # "reference" scales the feature-cell box again (quirk Q1); "aligned" does not.
        spatial_scale = scale if box_mode == "reference" else 1.0
        side = self.tokens_per_side
        pooled = torchvision.ops.roi_align(
            feature_map.float(),
            roi,
            output_size=(side, side),
            spatial_scale=spatial_scale,
            sampling_ratio=2,
            aligned=True,
        )
        features = pooled.permute(0, 2, 3, 1).reshape(side * side, -1).to(feature_map.dtype)
        record = ReplayRecord(run, tuple(float(v) for v in roi[0].tolist()), spatial_scale, (feat_h, feat_w))
        return features, record

    # ------------------------------------------------------------------ prompt embeddings

    def image_features(
        self,
        inputs: Sequence[GARInputs],
        vision_batch_size: int = 16,
        progress: bool = False,
        memo: ImageFeatureMemo | None = None,
        share: bool = True,
    ) -> list[list[torch.Tensor]]:
        """Features of every image of every prompt, all tiles through the vision tower in shared batches.

        An image that appears more than once (same pixels and prompt map: a frame two prompts show
        with the same region) is encoded once; ``memo`` carries such features between calls.
        ``share=False`` encodes every image as given.
        """
        images = [image for item in inputs for image in item.images]
        if not images:
            return [[] for _ in inputs]
        means = {(item.image_mean, item.image_std) for item in inputs}
        if len(means) != 1:
            raise InvalidInputError("prompts prepared with different normalisation cannot share a batch")
        mean, std = means.pop()
        memo = memo if memo is not None else ImageFeatureMemo()
        # Each image is found in the memo, or is the first of its kind in this call ("fresh"), or a copy of one.
        fresh: list[PreparedImage] = []
        fresh_keys: list[tuple] = []
        slots: list[torch.Tensor | int] = []
        for image in images:
            known = memo.find(image) if share else None
            if known is not None:
                slots.append(known)
                continue
            key = image_key(image) if share else None
            same = [k for k, other in enumerate(fresh) if share and fresh_keys[k] == key and same_image(other, image)]
            if not same:
                fresh.append(image)
                fresh_keys.append(key)
            slots.append(same[0] if same else len(fresh) - 1)
        encoded: list[torch.Tensor] = []
        if fresh:
            pixel_tiles = torch.cat([image.pixel_tiles for image in fresh])
            prompt_tiles = torch.cat([image.prompt_tiles for image in fresh])
            features = self.encode_tiles(pixel_tiles, prompt_tiles, mean, std, vision_batch_size, progress)
            encoded = list(torch.split(features, [image.num_tiles for image in fresh]))
            for image, image_features in zip(fresh, encoded):
                if share:
                    memo.add(image, image_features)
        per_image = [slot if isinstance(slot, torch.Tensor) else encoded[slot] for slot in slots]
        out, at = [], 0
        for item in inputs:
            out.append(per_image[at : at + len(item.images)])
            at += len(item.images)
        return out

    def embed_prompt(
        self, inputs: GARInputs, image_features: Sequence[torch.Tensor], box_mode: BoxMode = "reference"
    ) -> EncodedPrompt:
        """Token embeddings with image features written over image tokens and replays over region runs."""
        embed_tokens = self.mllm.get_input_embeddings()
        input_ids = inputs.input_ids.to(self.device)
        embeds = embed_tokens(input_ids)
        image_positions = input_ids == self.config.image_token_id
        flat = torch.cat([f.reshape(-1, f.shape[-1]) for f in image_features]) if image_features else None
        count = int(image_positions.sum())
        if (flat.shape[0] if flat is not None else 0) != count:
            raise InvalidInputError(
                f"the prompt has {count} image tokens but its images give"
                f" {0 if flat is None else flat.shape[0]} features: prepare it with this model's processor"
            )
        if flat is not None:
            embeds[image_positions] = flat.to(embeds.dtype)
        maps: dict[int, torch.Tensor] = {}
        replay_features, records = [], []
        for run in inputs.runs:
            if run.length != self.tokens_per_tile:
                raise InvalidInputError(
                    f"a placeholder run has {run.length} tokens, this model replays {self.tokens_per_tile}"
                )
            if run.image_index not in maps:
                maps[run.image_index] = self.replay_map(image_features[run.image_index], inputs.images[run.image_index])
            features, record = self.replay(maps[run.image_index], run, box_mode)
            embeds[run.start : run.start + run.length] = features.to(embeds.dtype)
            replay_features.append(features)
            records.append(record)
        return EncodedPrompt(embeds, tuple(image_features), tuple(replay_features), tuple(records))

    # ------------------------------------------------------------------ generation

    def generate_from_embeddings(
        self,
        prompts: Sequence[torch.Tensor],
        generation_config,
        pad_token_id: int,
        decoder: StaticDecoder | None = None,
        on_tokens: Callable[[torch.Tensor], None] | None = None,
    ):
        """Decode from one or more ``(L_i, hidden)`` prompts, left-padded into one batch.

        ``generation_config`` is a transformers ``GenerationConfig`` with ``return_dict_in_generate``
        (:meth:`GenerationSettings.generation_config <garvideo.model.GenerationSettings.generation_config>`
        makes one). With a ``decoder`` (:class:`~garvideo.model.decoding.StaticDecoder`) that supports the
        config, its lean static-cache loop decodes; otherwise transformers' ``generate`` does. Returns
        ``(sequences (B, new_tokens), logits (B, steps, vocab) if the config's ``output_logits`` else None)``.
        ``on_tokens`` receives each step's new tokens ``(B,)`` as they are chosen, on either path.
        """
        if not generation_config.return_dict_in_generate:
            raise InvalidInputError("the generation config must set return_dict_in_generate=True")
        longest = max(int(p.shape[0]) for p in prompts)
        hidden = int(prompts[0].shape[-1])
        pad = self.mllm.get_input_embeddings()(torch.tensor([pad_token_id], device=self.device))[0]
        batch = pad.expand(len(prompts), longest, hidden).clone()
        attention = torch.zeros(len(prompts), longest, dtype=torch.long, device=self.device)
        for i, prompt in enumerate(prompts):
            batch[i, longest - prompt.shape[0] :] = prompt
            attention[i, longest - prompt.shape[0] :] = 1
        if decoder is not None and decoding.supports(generation_config):
            options = decoding.DecodeOptions.from_generation_config(generation_config)
            return decoder.decode(batch, attention, options, on_tokens=on_tokens)
        streamer = _TokenStreamer(on_tokens) if on_tokens is not None else None
        out = self.mllm.generate(
            inputs_embeds=batch, attention_mask=attention, generation_config=generation_config, streamer=streamer
        )
        logits = torch.stack(out.logits, dim=1) if generation_config.output_logits and out.logits else None
        return out.sequences, logits

    def static_decoder(self, compile: bool | str = False, compile_cache=None) -> StaticDecoder:
        """A :class:`~garvideo.model.decoding.StaticDecoder` for this model's language model (keep and reuse it);
        ``compile``: the step's kind, ``compile_cache``: where inductor compiles into (see the decoder)."""
        return decoding.StaticDecoder(self.mllm, compile=compile, compile_cache=compile_cache)

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        attn_implementation: str = "sdpa",
    ) -> GARModel:
        """Load a GAR checkpoint folder in the released layout; missing or unexpected weights are an error."""
        folder = Path(folder)
        config = GARConfig.from_pretrained(folder)
        device = device or torch.device("cpu")
        dtype = dtype or torch.float32
        files = _weight_files(folder)
        kwargs = dict(
            config=copy.deepcopy(config.mllm_config),
            key_mapping={r"^mllm\.": ""},
            dtype=dtype,
            attn_implementation=attn_implementation,
            output_loading_info=True,
            local_files_only=True,
        )
        # Straight onto the GPU when accelerate is there (transformers needs it for device_map);
        # otherwise through CPU memory and moved afterwards.
        direct = device.type != "cpu" and importlib.util.find_spec("accelerate") is not None
        if direct:
            kwargs["device_map"] = {"": device}
        from safetensors import SafetensorError

        try:
            mllm, info = _perception_lm_class().from_pretrained(str(folder), **kwargs)
        except SafetensorError as exc:  # damaged past what garvideo.checkpoints.check_weight_files reads
            raise CheckpointError(
                f"cannot load the GAR weights in {str(folder)!r}: a weights file is damaged ({exc})"
            ) from exc
        except ImportError as exc:  # e.g. flash_attention_2 without the flash-attn package
            raise InvalidInputError(
                f"attn_implementation={attn_implementation!r} cannot be used here ({exc}): use 'sdpa' (the default)"
                " or 'eager'"
            ) from exc
        except (OSError, ValueError, RuntimeError) as exc:
            if "attn_implementation" in str(exc) or "attention implementation" in str(exc):
                raise InvalidInputError(
                    f"attn_implementation={attn_implementation!r} cannot be used with GAR: {exc}"
                ) from exc
            raise CheckpointError(f"cannot load the GAR weights in {str(folder)!r}: {exc}") from exc
        problems = []
        if info.get("missing_keys"):
            problems.append(f"missing: {_listing(info['missing_keys'], 'mllm.')}")
        if info.get("unexpected_keys"):
            problems.append(f"unexpected: {_listing(info['unexpected_keys'], 'mllm.')}")
        if info.get("mismatched_keys"):
            names = [k[0] if isinstance(k, tuple) else k for k in info["mismatched_keys"]]
            problems.append(f"wrong shape: {_listing(names, 'mllm.')}")
        mask_weight = _read_tensor(files, MASK_EMBEDDING_KEY)
        if mask_weight is None:
            problems.append(f"missing: {MASK_EMBEDDING_KEY}")
        if problems:
            raise CheckpointError(
                f"{str(folder)!r} does not hold the weights its config.json describes ({'; '.join(problems)}):"
                " the checkpoint is incomplete or belongs to another model"
            )
        model = cls(config, mllm=mllm)
        if tuple(mask_weight.shape) != tuple(model.mask_patch_embedding.weight.shape):
            raise CheckpointError(
                f"{str(folder)!r}: {MASK_EMBEDDING_KEY} has shape {tuple(mask_weight.shape)}, the config implies"
                f" {tuple(model.mask_patch_embedding.weight.shape)}"
            )
        with torch.no_grad():
            model.mask_patch_embedding.weight.copy_(mask_weight.to(model.mask_patch_embedding.weight.dtype))
        if not direct:
            model.to(device)
        return model.eval()

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` in the released layout."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        extra = dict(self.config.extra)
        extra["dtype"] = str(self.dtype).removeprefix("torch.")
        GARConfig(
            mllm_config=self.config.mllm_config,
            prompt_numbers=self.config.prompt_numbers,
            crop_tokens_ids=self.config.crop_tokens_ids,
            kernel_size=tuple(self.mask_patch_embedding.kernel_size),
            mask_embedding_channels=int(self.mask_patch_embedding.out_channels),
            extra=extra,
        ).save_pretrained(folder)
        tensors, seen = {}, set()
        for name, tensor in self.state_dict().items():
            tensor = tensor.detach().to("cpu").contiguous()
            # Tied or otherwise shared storage would be refused by safetensors: store a copy.
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            tensors[name] = tensor.clone() if key in seen else tensor
            seen.add(key)
        with atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})


def _weight_files(folder: Path) -> list[Path]:
    index = folder / WEIGHTS_INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"cannot read {str(index)!r}: {exc}") from exc
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / WEIGHTS_NAME
    if single.is_file():
        return [single]
    raise CheckpointError(
        f"{str(folder)!r} has no {WEIGHTS_NAME} (or {WEIGHTS_INDEX_NAME}): not a complete GAR checkpoint"
    )


def _read_tensor(files: Sequence[Path], key: str) -> torch.Tensor | None:
    from safetensors import safe_open

    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            if key in handle.keys():
                return handle.get_tensor(key)
    return None


def _listing(keys, prefix: str = "", limit: int = 5) -> str:
    keys = sorted(keys)
    shown = ", ".join(prefix + k if not k.startswith(prefix) and k != MASK_EMBEDDING_KEY else k for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class _TokenStreamer:
    """transformers' streamer interface (``put``/``end``) passing each step's new tokens to a callback.

    ``generate`` first puts the prompt's ids (``(B, L)``; empty here, the prompt is embeddings), then each
    step's tokens ``(B,)``: only the latter are new tokens.
    """

    def __init__(self, on_tokens: Callable[[torch.Tensor], None]) -> None:
        self.on_tokens = on_tokens

    def put(self, value: torch.Tensor) -> None:
        if value.ndim == 1:
            self.on_tokens(value)

    def end(self) -> None:
        pass
