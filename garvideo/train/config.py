"""The settings of a fine-tuning run (``garvideo train``'s options), every default from :mod:`garvideo.defaults`."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

from .. import defaults
from ..errors import InvalidInputError

#: Settings a resumed run may change: they do not change what is computed.
_RESUMABLE = ("keep", "log_every", "eval_every", "save_every", "device")


def target_modules(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """``"q_proj,v_proj"`` -> ``("q_proj", "v_proj")``: the language model's linear layers that get LoRA."""
    names = tuple(n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip())
    if not names or not all(n.replace("_", "").isalnum() for n in names):
        raise InvalidInputError(
            f"--target-modules must be layer names separated by commas (e.g. {defaults.TRAIN_TARGET_MODULES}),"
            f" got {text!r}"
        )
    return names


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains. Field names are ``garvideo train``'s options with dashes as underscores."""

    model: str = defaults.MODEL
    sam2: str = defaults.SAM2
    rank: int = defaults.TRAIN_RANK
    alpha: float = defaults.TRAIN_ALPHA
    lora_dropout: float = defaults.TRAIN_LORA_DROPOUT
    target_modules: tuple[str, ...] = target_modules(defaults.TRAIN_TARGET_MODULES)
    train_vision: bool = False  # LoRA on the vision tower's blocks too, and the projector trained outright
    lr: float = defaults.TRAIN_LR
    weight_decay: float = defaults.TRAIN_WEIGHT_DECAY
    epochs: int = defaults.TRAIN_EPOCHS
    batch_size: int = defaults.TRAIN_BATCH_SIZE
    grad_accum: int = defaults.TRAIN_GRAD_ACCUM
    warmup: float = defaults.TRAIN_WARMUP
    max_grad_norm: float = defaults.TRAIN_MAX_GRAD_NORM
    max_steps: int | None = None  # stop after this many optimizer steps (a quick run)
    gradient_checkpointing: bool = True
    seed: int = defaults.TRAIN_SEED
    length_group: int = defaults.TRAIN_LENGTH_GROUP
    frames: int = defaults.FRAMES  # frames of a video example, as describe and ask show them
    tiling: str = defaults.TILING
    device: str = defaults.DEVICE
    dtype: str = defaults.DTYPE
    save_every: int = defaults.TRAIN_SAVE_EVERY
    keep: int = defaults.TRAIN_KEEP
    log_every: int = defaults.TRAIN_LOG_EVERY
    eval_every: int | None = defaults.TRAIN_EVAL_EVERY

    def __post_init__(self) -> None:
        whole = {"rank": 1, "epochs": 1, "batch_size": 1, "grad_accum": 1, "save_every": 1, "keep": 1}
        whole.update(log_every=1, frames=1, length_group=1, seed=0)
        for name, least in whole.items():
            _check_whole(name, getattr(self, name), least)
        for name in ("max_steps", "eval_every"):
            if getattr(self, name) is not None:
                _check_whole(name, getattr(self, name), 1)
        for name, low, high in (("lr", 0, None), ("alpha", 0, None), ("lora_dropout", 0, 1), ("warmup", 0, 1)):
            _check_number(name, getattr(self, name), low, high, open_low=high is None)
        for name in ("weight_decay", "max_grad_norm"):
            _check_number(name, getattr(self, name), 0, None, open_low=False)
        if self.tiling not in ("vanilla", "thumb+tile"):
            raise InvalidInputError(f"--tiling must be vanilla or thumb+tile, got {self.tiling!r}")
        object.__setattr__(self, "target_modules", target_modules(self.target_modules))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["target_modules"] = list(self.target_modules)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "target_modules" else v) for k, v in data.items() if k in known})

    def differences(self, other: TrainConfig) -> list[str]:
        """The settings (as options) in which ``other`` would compute something else than this run."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"--{_option(k)} {mine[k]!r} (was {theirs[k]!r})"
            for k in mine
            if k not in _RESUMABLE and mine[k] != theirs[k]
        ]


def _option(name: str) -> str:
    return name.replace("_", "-")


def _check_whole(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise InvalidInputError(f"--{_option(name)} must be a whole number of at least {least}, got {value!r}")


def _check_number(name: str, value: Any, low: float, high: float | None, open_low: bool) -> None:
    """A finite number above ``low`` (or at least ``low``), and below ``high`` when given."""
    fine = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    fine = fine and (value > low if open_low else value >= low) and (high is None or value < high)
    if not fine:
        wanted = f"above {low}" if open_low else f"at least {low}"
        wanted += f" and below {high}" if high is not None else ""
        raise InvalidInputError(f"--{_option(name)} must be a number {wanted}, got {value!r}")
