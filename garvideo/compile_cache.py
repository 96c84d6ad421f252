"""Compiled code kept across processes: torch's compile caches under garvideo's cache folder, one folder per key.

``torch.compile``'s first call traces, lowers and compiles kernels (C++ on a CPU, Triton on CUDA): 20 s and
more for the tiny GAR's decode step on a 2-core CPU (bench/RESULTS.md). torch keeps what it compiled in its
inductor cache folder (FX graphs, AOTAutograd entries and the compiled kernels themselves); while garvideo
compiles, it points that folder at ``<cache>/compile/<key>/inductor``, so the next process that compiles the
same thing finds it there and starts warm (dynamo still traces: a few seconds). torch's portable
``save_cache_artifacts`` alone is not enough on a CPU: it leaves out the compiled C++ kernels, which were then
rebuilt (26 s of a 28 s "warm" start here).

``<cache>`` is ``$GARVIDEO_CACHE``, else ``$XDG_CACHE_HOME/garvideo``, else ``~/.cache/garvideo``. The key
(:class:`CompileKey`) names everything that changes the compiled code: what is compiled, the model (hub id and
revision, or a folder's config hash), the architecture's config, dtype, the device (CPU instruction set, or
CUDA capability and name), torch's and garvideo's versions. ``key.json`` in the folder holds the key; a folder
without a readable key.json of its own key (corrupt, foreign) is emptied and started afresh with a
:class:`CompileCacheWarning`, never an error. ``ready`` marks a folder where a compile finished: a warm cache.
Every file garvideo writes there is written atomically (torch writes its own entries atomically too).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .files import atomic_write_json, atomic_write_text

#: The environment variable that moves garvideo's cache folder.
CACHE_ENV = "GARVIDEO_CACHE"


class CompileCacheWarning(UserWarning):
    """The compile cache could not be used as it was (emptied, or not written): compiling goes on without it."""


def cache_root() -> Path:
    """garvideo's cache folder: ``$GARVIDEO_CACHE``, else ``$XDG_CACHE_HOME/garvideo``, else ``~/.cache/garvideo``."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "garvideo"


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a model's configuration (``config.to_dict()``), without what does not change compiled code:
    private entries (``_name_or_path``: where it was loaded from) and the transformers version that wrote it."""

    def kept(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                str(k): kept(v)
                for k, v in value.items()
                if not str(k).startswith("_") and str(k) != "transformers_version"
            }
        if isinstance(value, (set, frozenset)):  # in a stable order: a set's order changes from process to process
            return sorted(str(v) for v in value)
        return value

    return hashlib.sha256(json.dumps(kept(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def device_tag(device) -> str:
    """What of the device changes compiled kernels: the CPU's vector instruction set, or CUDA's capability and name."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda sm{major}{minor} {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu {torch.backends.cpu.get_cpu_capability()}"
    return device.type


@dataclass(frozen=True)
class CompileKey:
    """Everything that changes the compiled code; two processes with equal keys share compiled work."""

    what: str  # e.g. "gar-decode-step inductor"
    model: str  # hub id@revision, or "folder" (the config hash then tells folders apart)
    config: str  # config_hash of the model's configuration
    dtype: str
    device: str  # device_tag
    torch: str
    garvideo: str = __version__

    @classmethod
    def for_model(
        cls, what: str, model_id: str, revision: str | None, config: Mapping[str, Any], dtype, device
    ) -> CompileKey:
        """The key of ``what`` compiled for a model (``config``: its ``config.to_dict()``); a local folder
        (``model_id`` a path) or a model built in memory (no id) is named by its config alone."""
        import torch

        hub = bool(model_id) and not os.path.isabs(model_id)
        return cls(
            what=what,
            model=f"{model_id}@{revision or 'main'}" if hub else "folder",
            config=config_hash(config),
            dtype=str(dtype).removeprefix("torch."),
            device=device_tag(device),
            torch=torch.__version__,
        )

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:24]


class CompileCache:
    """One key's folder of compiled work: :meth:`compiling` around the calls that compile, :meth:`mark_ready` after."""

    def __init__(self, key: CompileKey, root: str | os.PathLike[str] | None = None) -> None:
        self.key = key
        self.folder = Path(root).expanduser() if root is not None else cache_root()
        self.folder = self.folder / "compile" / key.digest()

    @property
    def warm(self) -> bool:
        """Whether an earlier compile of this key finished here (its ``ready`` mark and its own key.json)."""
        return (self.folder / "ready").is_file() and self._stored_key() == asdict(self.key)

    def _stored_key(self) -> dict | None:
        try:
            return json.loads((self.folder / "key.json").read_text())
        except (OSError, ValueError):
            return None

    def _prepare(self) -> bool:
        """Make the folder ready to be compiled into (emptied first if it is not this key's); False if it cannot be."""
        try:
            if self.folder.exists() and self._stored_key() != asdict(self.key):
                self.clear(f"{self.folder / 'key.json'} is missing, unreadable or another key's")
            self.folder.mkdir(parents=True, exist_ok=True)
            if not (self.folder / "key.json").is_file():
                atomic_write_json(self.folder / "key.json", asdict(self.key))
            return True
        except OSError as exc:
            warnings.warn(
                f"the compile cache {self.folder} cannot be written ({exc}): compiling without it (set "
                f"{CACHE_ENV} to a writable folder to keep compiled work for the next run)",
                CompileCacheWarning,
                stacklevel=3,
            )
            return False

    @contextlib.contextmanager
    def compiling(self) -> Iterator[None]:
        """Run the block (calls that compile) with torch's inductor caches in this key's folder."""
        if not self._prepare():
            yield
            return
        with _inductor_cache_dir(self.folder / "inductor"):
            yield

    def mark_ready(self) -> None:
        """Record that a compile finished here: later processes find a warm cache."""
        with contextlib.suppress(OSError):  # an unwritable cache was already warned about in compiling()
            atomic_write_text(self.folder / "ready", f"{time.time():.0f}\n")

    def clear(self, reason: str) -> None:
        """Empty the folder (a corrupt or foreign cache), saying why."""
        warnings.warn(
            f"ignoring the compile cache {self.folder}: {reason}; it is emptied, so compiling starts afresh",
            CompileCacheWarning,
            stacklevel=3,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def _inductor_cache_dir(folder: Path) -> Iterator[None]:
    """torch's inductor (and, inside it, Triton's) cache folder set to ``folder`` for the block, then restored."""
    try:
        from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir
    except ImportError:  # a torch without it: the variable alone, read by inductor whenever it looks for its folder
        temporary_cache_dir = None
    folder.mkdir(parents=True, exist_ok=True)
    if temporary_cache_dir is not None:
        with temporary_cache_dir(str(folder)):
            yield
        return
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before
