"""Batch jobs over folders of videos: manifests, resumable jobs, atomic results, failure records.

:func:`run_batch` runs a manifest (:mod:`garvideo.batch.manifest`) through a
:class:`~garvideo.pipeline.Pipeline`; :class:`BatchJob` is the resumable
engine underneath, usable for any per-item work (the benchmarks use it too).
The manifest and runner load on first use, so ``garvideo.batch.jobs`` stays
free of torch.
"""

from .._lazy import lazy_attributes
from .jobs import BatchJob, BatchSummary, Failure, parse_shard, shard_from_environment

_LAZY = {
    "BatchRequest": ".manifest",
    "ManifestLine": ".manifest",
    "read_manifest": ".manifest",
    "BatchOptions": ".runner",
    "run_batch": ".runner",
}
__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "BatchJob",
    "BatchOptions",
    "BatchRequest",
    "BatchSummary",
    "Failure",
    "ManifestLine",
    "parse_shard",
    "read_manifest",
    "run_batch",
    "shard_from_environment",
]
