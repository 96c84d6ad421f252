"""Finding a checkpoint: a local folder, or a Hugging Face hub id resolved through the local cache.

Shared by GAR (:mod:`garvideo.model`) and SAM2 (:mod:`garvideo.tracking`), so both record
where their weights came from the same way: a hub id with its snapshot's commit, or a
folder's absolute path.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError, ModelNotFoundError
from .inputs import open_regular_file

# What a transformers checkpoint (GAR, SAM2) needs; nothing else is fetched (SAM2 repos also hold .pt files).
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model"]


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """Where a checkpoint's files are, and what to record about where they came from."""

    folder: Path
    model_id: str  # the hub id, or the folder's absolute path
    revision: str | None  # the commit hash of a hub snapshot; None for a plain folder


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~", "\\"))
        or text.endswith(("/", "\\"))
        or text.count("/") > 1
        or (os.sep != "/" and os.sep in text)
        or text in (".", "..")
    )


def check_checkpoint_name(path_or_id: str | os.PathLike) -> None:
    """Refuse, without asking the hub, what cannot name a checkpoint: a file, a folder that does not exist, or
    text that is neither a folder nor a hub id in form (``owner/name``). A well-formed id may still be missing
    from the hub or the cache: only :func:`resolve_checkpoint` finds that out."""
    text = os.fspath(path_or_id)
    local = Path(text).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelNotFoundError(f"{text!r} is a file: pass the checkpoint's folder (with config.json in it)")
        return
    if isinstance(path_or_id, os.PathLike) or _looks_like_path(text):
        raise ModelNotFoundError(f"model folder {text!r} does not exist")
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError as exc:
        raise ModelNotFoundError(f"{text!r} is neither an existing folder nor a valid hub model id") from exc


def checkpoint_id(path_or_id: str | os.PathLike) -> str:
    """How a checkpoint is named once resolved (``ResolvedCheckpoint.model_id``), known without loading it: a local
    folder by its absolute path, a hub id as written."""
    text = os.fspath(path_or_id)
    local = Path(text).expanduser()
    return str(local.resolve()) if local.exists() else text


def resolve_checkpoint(
    path_or_id: str | os.PathLike, revision: str | None = None, local_files_only: bool | None = None
) -> ResolvedCheckpoint:
    """Resolve ``path_or_id`` to a folder on this machine.

    A folder is used as is. A hub id (``owner/name``) goes through
    ``huggingface_hub.snapshot_download``: from the local cache when offline
    (``HF_HUB_OFFLINE=1`` or ``local_files_only=True``), else downloaded once.
    Whatever cannot be found becomes a :class:`ModelNotFoundError` that names
    the model and says how to pass a local folder instead.
    """
    check_checkpoint_name(path_or_id)
    text = os.fspath(path_or_id)
    local = Path(text).expanduser()
    if local.exists():
        if revision is not None:
            raise InvalidInputError(f"revision={revision!r} applies to hub ids, not to the local folder {text!r}")
        folder = local.resolve()
        check_weight_files(folder, str(folder))
        return ResolvedCheckpoint(folder=folder, model_id=checkpoint_id(text), revision=None)

    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = bool(local_files_only) or constants.is_offline_mode()
    at = f" at revision {revision!r}" if revision else ""
    advice = (
        f"download it once where the hub is reachable (`hf download {text}`), or pass the path of a local"
        " folder that holds its config.json and model.safetensors instead of the id"
    )
    try:
        folder = snapshot_download(
            repo_id=text, revision=revision, local_files_only=offline, allow_patterns=_ALLOW_PATTERNS
        )
    except LocalEntryNotFoundError as exc:
        raise ModelNotFoundError(
            f"model {text!r}{at} is not in the local Hugging Face cache and cannot be downloaded"
            f" {'while offline' if offline else 'now'}: {advice}"
        ) from exc
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise ModelNotFoundError(f"model {text!r} was not found on the hub (or is private): {advice}") from exc
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(f"model {text!r} has no revision {revision!r}") from exc
    except OSError as exc:  # network failures and everything else huggingface_hub raises for I/O
        raise ModelNotFoundError(f"model {text!r}{at} could not be fetched ({exc}): {advice}") from exc
    folder = Path(folder)
    check_weight_files(folder, text)
    # Hub snapshots live in .../snapshots/<commit hash>/.
    commit = folder.name if folder.parent.name == "snapshots" else revision
    return ResolvedCheckpoint(folder=folder, model_id=text, revision=commit)


#: A safetensors header larger than this is damage, not a header (a 70B model's is a few MB).
_MAX_HEADER_BYTES = 100_000_000


def check_weight_files(folder: Path, model_id: str) -> None:
    """Refuse, in one line naming the file, a ``*.safetensors`` file of ``folder`` that is not whole: cut short
    (an interrupted download or copy) or damaged. Reads only the headers, before any weight is loaded."""
    for file in sorted(folder.glob("*.safetensors")):
        with open_regular_file(file, f"the weights of {model_id!r},", ModelNotFoundError) as handle:
            problem = _safetensors_problem(handle, os.fstat(handle.fileno()).st_size)
        if problem is not None:
            raise ModelNotFoundError(
                f"cannot load {model_id!r}: its weights file {file} {problem}; download or copy it again"
            )


def _safetensors_problem(handle, size: int) -> str | None:
    """Why a safetensors file (an 8-byte header length, a JSON header, then the tensors' bytes) is not whole."""
    head = handle.read(8)
    if head == b"version ":
        return "is a Git LFS pointer, not the weights (run `git lfs pull` where it was cloned)"
    if len(head) < 8:
        return f"is truncated: {size} bytes, too short for the safetensors format"
    (length,) = struct.unpack("<Q", head)
    if length > min(size - 8, _MAX_HEADER_BYTES):
        return f"is truncated or damaged: {size} bytes, where its header alone claims {length + 8:,}"
    try:
        header = json.loads(handle.read(length))
        ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "is damaged: its header is not the JSON a safetensors file starts with"
    needed = 8 + length + max(ends, default=0)
    if size != needed:
        return (
            f"is {'truncated' if size < needed else 'damaged'}: {size:,} bytes, where its header describes {needed:,}"
        )
    return None


@contextmanager
def loading(checkpoint: ResolvedCheckpoint, what: str, family: str, kind: str, advice: str) -> Iterator[None]:
    """Turn transformers' errors while loading ``checkpoint`` into one-line :class:`ModelNotFoundError`s.

    ``what`` names the model in the message ("the SAM2 model"), ``family`` the checkpoint a folder
    must hold ("SAM2"), ``kind`` the model a config must describe ("SAM2 video"), ``advice`` what to
    pass instead.
    """
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as exc:  # a weights file damaged past what check_weight_files reads
        raise ModelNotFoundError(
            f"cannot load {what} {checkpoint.model_id!r}: a weights file in {checkpoint.folder} is damaged ({exc})."
            f" {advice}"
        ) from exc
    except OSError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(
            f"cannot load {what} {checkpoint.model_id!r}: the folder {checkpoint.folder} does not hold a "
            f"complete {family} checkpoint ({first_line}). {advice}"
        ) from exc
    except ValueError as exc:
        raise ModelNotFoundError(f"{checkpoint.model_id!r} is not a {kind} checkpoint: {exc}") from exc
