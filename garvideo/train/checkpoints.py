"""A run's folder: its settings, metrics, cached tracks, checkpoints and the final adapter, never half-written.

::

    runs/shop-v1/
      run.json                    the settings, the data's fingerprints, the base model (written at the start)
      metrics.jsonl               one line per logged step ({step, epoch, loss, lr, ...}) and per evaluation
      tensorboard/                the same as TensorBoard event files
      tracks/                     the tracks SAM2 made of video examples (made once per run)
      prepared.json               every example's prompt and answer lengths (measured once per run)
      checkpoints/step-00000200/  an adapter (usable with --adapter) + the optimizer and the run's position
      adapter_config.json, adapter_model.safetensors, garvideo_adapter.json    the final adapter
      eval.json, summary.json     the held-out results at the end, what the run did (``TrainSummary``)

A checkpoint is written into a temporary folder and renamed into place, so it is complete or absent; the
last ``keep`` are kept. The final adapter's files are written the same way, then moved in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..errors import InvalidInputError
from ..files import atomic_path, atomic_write_json, host_tag, is_abandoned_temporary
from ..model.adapters import ADAPTER_FORMAT, ADAPTER_INFO_NAME
from .config import TrainConfig

RUN_FORMAT = "garvideo.train"
TRAINED_NAME = "trainable.safetensors"
OPTIMIZER_NAME = "optimizer.pt"
STATE_NAME = "state.json"
_STEP_PREFIX = "step-"


@dataclass(frozen=True)
class Position:
    """Where a run stands: optimizer steps done in all, and in the current epoch."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    tokens: int = 0  # prompt and answer tokens trained on so far


class RunFolder:
    """The files of one run (see the module's description)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.run_file = self.path / "run.json"
        self.metrics = self.path / "metrics.jsonl"
        self.tensorboard = self.path / "tensorboard"
        self.tracks = self.path / "tracks"
        self.prepared = self.path / "prepared.json"
        self.checkpoints = self.path / "checkpoints"
        self.eval_file = self.path / "eval.json"
        self.summary_file = self.path / "summary.json"

    # ------------------------------------------------------------------ the run's identity

    def claim(self, record: dict[str, Any], config: TrainConfig, resume: bool) -> None:
        """Start a run here, or (``resume``) check that the run here is this one; refuse anything else."""
        if self.path.exists() and not self.path.is_dir():
            raise InvalidInputError(f"--out {self.path} is a file: give a folder for the run")
        if not self.run_file.is_file():
            if self.path.is_dir() and any(self.path.iterdir()):
                what = "to resume" if resume else "and is not empty: give a new folder for the run"
                raise InvalidInputError(f"{self.path} holds no garvideo run (no run.json) {what}")
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_file, {"format": RUN_FORMAT, "garvideo": __version__, **record})
            return
        if not resume:
            raise InvalidInputError(
                f"{self.path} already holds a run: add --resume to continue it, or give another --out"
            )
        earlier = self.read_record()
        changed = config.differences(TrainConfig.from_dict(earlier.get("config", {})))
        for key in ("data", "eval"):
            if earlier.get(key) != record.get(key):
                changed.append(f"the {'training' if key == 'data' else 'evaluation'} data")
        if changed:
            raise InvalidInputError(
                f"the run in {self.path} was started otherwise: {', '.join(changed)}; resume it with its own"
                " settings and data, or give another --out"
            )

    def read_record(self) -> dict[str, Any]:
        try:
            record = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot read {self.run_file}: {exc}") from exc
        if record.get("format") != RUN_FORMAT:
            raise InvalidInputError(f"{self.run_file} is not a garvideo training run")
        return record

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_folders(self) -> list[Path]:
        """The complete checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.iterdir() if p.name.startswith(_STEP_PREFIX) and p.is_dir()]
        return sorted(found, key=lambda p: int(p.name.removeprefix(_STEP_PREFIX)))

    def latest(self) -> Path | None:
        folders = self.checkpoint_folders()
        return folders[-1] if folders else None

    def save(self, peft_model, trained: dict[str, torch.Tensor], optimizer, position: Position, keep: int) -> Path:
        """Write a checkpoint atomically (a temporary folder renamed into place), then keep only the last ``keep``."""
        from safetensors.torch import save_file

        self.checkpoints.mkdir(parents=True, exist_ok=True)
        final = self.checkpoints / f"{_STEP_PREFIX}{position.step:08d}"
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{final.name}.{host_tag()}-{os.getpid()}.", suffix=".tmp", dir=self.checkpoints)
        )
        try:
            self.write_adapter_files(peft_model, tmp)
            save_file({k: v.detach().cpu().contiguous() for k, v in trained.items()}, str(tmp / TRAINED_NAME))
            torch.save(optimizer.state_dict(), tmp / OPTIMIZER_NAME)
            (tmp / STATE_NAME).write_text(json.dumps(position.__dict__) + "\n", encoding="utf-8")
            _sync_folder(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.checkpoint_folders()[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self, folder: Path, trained: dict[str, torch.nn.Parameter], optimizer) -> Position:
        """Restore the trained weights and the optimizer from a checkpoint; the position it was written at."""
        from safetensors.torch import load_file

        saved = load_file(str(folder / TRAINED_NAME))
        if set(saved) != set(trained):
            raise InvalidInputError(f"the checkpoint {folder} holds other trained weights than this run trains")
        with torch.no_grad():
            for name, param in trained.items():
                param.copy_(saved[name].to(param.device, param.dtype))
        optimizer.load_state_dict(torch.load(folder / OPTIMIZER_NAME, map_location="cpu", weights_only=True))
        return Position(**json.loads((folder / STATE_NAME).read_text(encoding="utf-8")))

    def clean(self) -> None:
        """Remove what killed runs left half-written (temporary checkpoint folders and files)."""
        for folder in (self.checkpoints, self.path):
            if folder.is_dir():
                for item in folder.iterdir():
                    if is_abandoned_temporary(item):
                        shutil.rmtree(item) if item.is_dir() else item.unlink()

    # ------------------------------------------------------------------ the adapter

    def write_adapter_files(self, peft_model, folder: Path) -> None:
        """PEFT's adapter files and garvideo's record of the base into ``folder`` (the final adapter: see
        :meth:`publish`)."""
        peft_model.save_pretrained(str(folder))
        (folder / "README.md").unlink(missing_ok=True)  # PEFT's model card template, empty here
        record = self.read_record()
        info = {
            "format": ADAPTER_FORMAT,
            "version": 1,
            "base": record.get("base", {}),
            "garvideo": __version__,
            "config": record.get("config", {}),
        }
        (folder / ADAPTER_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    def publish(self, peft_model) -> None:
        """The final adapter into the run folder: written beside it, then each file moved in."""
        tmp = Path(tempfile.mkdtemp(prefix=f".adapter.{host_tag()}-{os.getpid()}.", suffix=".tmp", dir=self.path))
        try:
            self.write_adapter_files(peft_model, tmp)
            _sync_folder(tmp)
            for item in sorted(tmp.iterdir(), key=lambda p: p.name == "adapter_config.json"):
                os.replace(item, self.path / item.name)  # the config last: it marks a complete adapter
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------ metrics

    def log(self, entry: dict[str, Any]) -> None:
        with open(self.metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def rewind_metrics(self, step: int) -> None:
        """Keep the metrics up to ``step`` (a resumed run logs the later steps again); a torn last line goes."""
        if not self.metrics.is_file():
            return
        kept = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("step", 0) <= step:
                kept.append(line + "\n")
        with atomic_path(self.metrics) as tmp:
            tmp.write_text("".join(kept), encoding="utf-8")


def _sync_folder(folder: Path) -> None:
    for item in folder.iterdir():
        with open(item, "rb") as handle:
            os.fsync(handle.fileno())
