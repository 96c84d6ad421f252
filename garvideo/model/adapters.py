"""LoRA adapters on GAR: a fine-tuned adapter loaded onto a GAR, and merged into a standalone checkpoint.

An adapter folder is what ``garvideo train`` writes (its run folder, or any of its checkpoints):
PEFT's ``adapter_config.json`` and ``adapter_model.safetensors`` (the language model's LoRA
weights, and the full weights of what was trained outright: the mask patch embedding, with
``--train-vision`` the vision tower and projector) plus ``garvideo_adapter.json``, which names
the base checkpoint it was trained on. The adapter is attached unmerged (PEFT's LoRA layers), so
it computes exactly what was trained; :func:`merge_adapter` folds it into the base weights and
writes a checkpoint in the released layout that loads as any GAR does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError
from .errors import CheckpointError

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_INFO_NAME = "garvideo_adapter.json"
ADAPTER_FORMAT = "garvideo.adapter"
#: The key of a merged checkpoint's ``config.json`` that records the adapter and base it was made from.
MERGED_FROM_KEY = "garvideo_merged_from"


@dataclass(frozen=True)
class AdapterInfo:
    """Which adapter a GAR runs with, and the base checkpoint it was trained on (for provenance)."""

    path: str  # the adapter folder (absolute) as loaded, or, for a merged checkpoint, as it was merged
    base_model: str | None  # the base checkpoint's hub id or folder, as training recorded it
    base_revision: str | None
    merged: bool = False  # True: folded into the weights of the checkpoint that runs

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "base": {"model": self.base_model, "revision": self.base_revision},
            "merged": self.merged,
        }

    @classmethod
    def from_dict(cls, data: Any, merged: bool = False) -> AdapterInfo | None:
        if not isinstance(data, dict):
            return None
        base = data.get("base") if isinstance(data.get("base"), dict) else {}
        return cls(str(data.get("path") or ""), base.get("model"), base.get("revision"), merged)


def check_adapter_folder(folder: str | os.PathLike[str]) -> Path:
    """The adapter folder, refused with a message a user can act on when it is not one."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"adapter folder {str(folder)!r} does not exist: give the folder garvideo train wrote")
    missing = [name for name in (ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME) if not (path / name).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"{str(folder)!r} is not an adapter folder (no {' or '.join(missing)}): give a run folder of garvideo"
            " train (it holds the final adapter) or one of its checkpoints/step-* folders"
        )
    return path.resolve()


def read_adapter_info(folder: str | os.PathLike[str]) -> AdapterInfo:
    """What ``garvideo_adapter.json`` records about the adapter in ``folder`` (a plain PEFT adapter has none)."""
    path = check_adapter_folder(folder)
    info_file = path / ADAPTER_INFO_NAME
    data: dict[str, Any] = {}
    if info_file.is_file():
        try:
            data = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {str(info_file)!r}: {exc}") from exc
    base = data.get("base") if isinstance(data.get("base"), dict) else {}
    return AdapterInfo(str(path), base.get("model"), base.get("revision"))


def attach_adapter(model, folder: str | os.PathLike[str]):
    """Load the adapter in ``folder`` onto ``model`` (a :class:`~garvideo.model.GARModel`), in place, unmerged.

    Returns ``(peft_model, info)``: PEFT's wrapper (the model itself keeps working as before, its
    layers now carry the adapter) and the :class:`AdapterInfo`.
    """
    info = read_adapter_info(folder)
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelNotFoundError(
            "loading an adapter needs PEFT: pip install 'garvideo[train]' (or pip install peft)"
        ) from exc
    try:
        peft_model = PeftModel.from_pretrained(model, info.path, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as exc:
        base = f" (it was trained on {info.base_model})" if info.base_model else ""
        raise CheckpointError(
            f"the adapter {info.path!r} does not fit this GAR checkpoint{base}: {str(exc).splitlines()[0]}"
        ) from exc
    return peft_model, info


def merged_adapter_info(config) -> AdapterInfo | None:
    """The adapter a merged checkpoint was made from (its ``config.json`` records it), else None."""
    return AdapterInfo.from_dict(dict(config.extra).get(MERGED_FROM_KEY), merged=True)


def merge_adapter(peft_model, info: AdapterInfo):
    """Fold the adapter into the base weights: the plain :class:`~garvideo.model.GARModel`, recording ``info``."""
    import dataclasses

    model = peft_model.merge_and_unload()
    extra = dict(model.config.extra)
    extra[MERGED_FROM_KEY] = dataclasses.replace(info, merged=True).to_dict()
    model.config = dataclasses.replace(model.config, extra=extra)
    return model
