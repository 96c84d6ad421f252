"""GAR's configuration: the released ``config.json`` (``model_type: "GAR"``).

A GAR checkpoint wraps a full Perception-LM configuration (``mllm_config``)
and adds the region machinery: how many regions fit in one prompt
(``prompt_numbers``), the placeholder token of each (``crop_tokens_ids``)
and the mask patch embedding's kernel and width. It is kept as a small
dataclass around transformers' own :class:`~transformers.PerceptionLMConfig`
rather than a ``PreTrainedConfig`` subclass, whose internals change between
transformers releases; keys garvideo does not model are carried through
unchanged so a loaded checkpoint saves back as it came.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_write_json
from .errors import CheckpointError

CONFIG_NAME = "config.json"
MODEL_TYPE = "GAR"
# Keys that GARConfig models itself; everything else in config.json is kept as is.
_MODELED = {
    "model_type",
    "mllm_config",
    "prompt_numbers",
    "crop_tokens_ids",
    "kernel_size",
    "patch_size_h",
    "patch_size_w",
    "mask_path_embedding_out_channels",
}


@dataclass(frozen=True)
class GARConfig:
    """The GAR configuration; ``mllm_config`` is a transformers ``PerceptionLMConfig``."""

    mllm_config: Any
    prompt_numbers: int = 5
    crop_tokens_ids: tuple[int, ...] = (128004, 128005, 128008, 128010, 128011)
    kernel_size: tuple[int, int] | None = None  # mask patch embedding kernel = stride (= ViT patch)
    mask_embedding_channels: int | None = None  # mask_path_embedding_out_channels (= ViT width)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.crop_tokens_ids) != self.prompt_numbers:
            raise CheckpointError(
                f"config: crop_tokens_ids has {len(self.crop_tokens_ids)} ids for prompt_numbers={self.prompt_numbers}"
            )

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GARConfig:
        from transformers import PerceptionLMConfig

        if data.get("model_type") != MODEL_TYPE:
            raise CheckpointError(
                f"config.json has model_type {data.get('model_type')!r}, not {MODEL_TYPE!r}: not a GAR checkpoint"
            )
        mllm = data.get("mllm_config")
        if not isinstance(mllm, Mapping):
            raise CheckpointError("config.json has no mllm_config: not a GAR checkpoint")
        mllm = dict(mllm)
        mllm.pop("model_type", None)
        try:
            mllm_config = PerceptionLMConfig(**mllm)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"config.json: mllm_config is not a valid Perception-LM config ({exc})") from exc
        vision_args = dict(getattr(mllm_config.vision_config, "model_args", None) or {})
        kernel = data.get("kernel_size")
        if kernel is None and "img_size" in vision_args and "ref_feat_shape" in vision_args:
            # As the reference derives it: image size over the reference feature grid.
            kernel = [
                vision_args["img_size"][0] // vision_args["ref_feat_shape"][0],
                vision_args["img_size"][1] // vision_args["ref_feat_shape"][1],
            ]
        channels = data.get("mask_path_embedding_out_channels")
        if channels is None:
            channels = getattr(mllm_config.vision_config, "num_features", None) or vision_args.get("embed_dim")
        prompt_numbers = int(data.get("prompt_numbers", 5))
        crop = tuple(int(t) for t in data.get("crop_tokens_ids", cls.crop_tokens_ids))
        extra = {k: copy.deepcopy(v) for k, v in data.items() if k not in _MODELED}
        return cls(
            mllm_config=mllm_config,
            prompt_numbers=prompt_numbers,
            crop_tokens_ids=crop,
            kernel_size=tuple(int(k) for k in kernel) if kernel is not None else None,
            mask_embedding_channels=int(channels) if channels is not None else None,
            extra=extra,
        )

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> GARConfig:
        return cls.from_dict(read_checkpoint_json(Path(folder) / CONFIG_NAME))

    # ------------------------------------------------------------------ writing

    def to_dict(self) -> dict[str, Any]:
        """The released layout: ``model_type``, ``mllm_config``, ``prompt_numbers``, ``crop_tokens_ids``, ..."""
        mllm = self.mllm_config.to_dict()
        mllm["model_type"] = "perception_lm"
        out: dict[str, Any] = {"architectures": ["GARModel"]}
        out.update(copy.deepcopy(dict(self.extra)))
        out.update(
            {
                "model_type": MODEL_TYPE,
                "mllm_config": mllm,
                "prompt_numbers": self.prompt_numbers,
                "crop_tokens_ids": list(self.crop_tokens_ids),
            }
        )
        if self.kernel_size is not None:
            out["kernel_size"] = list(self.kernel_size)
            out["patch_size_h"], out["patch_size_w"] = self.kernel_size
        if self.mask_embedding_channels is not None:
            out["mask_path_embedding_out_channels"] = self.mask_embedding_channels
        return _jsonable(out)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / CONFIG_NAME, self.to_dict())

    # ------------------------------------------------------------------ facts

    @property
    def text_config(self) -> Any:
        return self.mllm_config.text_config

    @property
    def pooling_ratio(self) -> int:
        return int(getattr(self.mllm_config, "projector_pooling_ratio", 1) or 1)

    @property
    def image_token_id(self) -> int:
        return int(self.mllm_config.image_token_id)


def read_checkpoint_json(path: Path, required: bool = True) -> dict[str, Any]:
    """One JSON file of a checkpoint folder; a missing optional file reads as ``{}``.

    Shared by the config, image processor and processor loaders, so a broken file is one
    :class:`CheckpointError` that names it, whichever part reads it.
    """
    if not path.is_file():
        if required:
            raise CheckpointError(f"{str(path)!r} is missing: not a GAR checkpoint folder")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc}") from exc


def _jsonable(value: Any) -> Any:
    # torch dtypes and tuples appear in transformers' to_dict output on some versions.
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value).removeprefix("torch.")
