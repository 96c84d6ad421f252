"""An adapter folded into its base: a standalone checkpoint in the released layout (``garvideo train merge``).

The merged checkpoint loads as the released weights load (``--model DIR``, ``GAR.from_pretrained(DIR)``),
computes what the base with the adapter computes (up to rounding, and to the precision it is saved in), and
its ``config.json`` records the adapter and base it came from (``garvideo_merged_from``; results name it in
their provenance).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import InvalidInputError
from ..files import host_tag
from ..model import GAR
from ..model.adapters import merge_adapter, read_adapter_info


def merge(
    adapter: str | os.PathLike[str],
    out: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    dtype: str | None = None,
) -> Path:
    """Write ``adapter`` merged into its base (``model``, default: the base it was trained on) to ``out``.

    The merge is computed in float32 on the CPU; the checkpoint is saved in ``dtype`` (default: the base
    checkpoint's own). ``out`` must not exist yet, or be an empty folder; it appears complete or not at all.
    """
    info = read_adapter_info(adapter)
    base = model if model is not None else info.base_model
    if base is None:
        raise InvalidInputError(f"the adapter {info.path} does not say which base it was trained on: give --model")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(f"{target} already exists: give a new folder for the merged checkpoint")
    revision = info.base_revision if model is None and not Path(str(base)).exists() else None
    gar = GAR.from_pretrained(base, device="cpu", dtype="float32", revision=revision, adapter=info.path)
    merged = merge_adapter(gar.adapter_model, gar.adapter)
    extra = dict(merged.config.extra)
    saved_dtype = _dtype(dtype or extra.get("dtype") or extra.get("torch_dtype") or "float32")
    merged.to(saved_dtype)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{host_tag()}-{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        GAR(merged, gar.processor, gar.model_id, gar.revision).save_pretrained(tmp)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _dtype(name: str) -> torch.dtype:
    from ..devices import resolve_dtype

    return resolve_dtype(str(name), torch.device("cpu"))
