"""Batch jobs over folders of videos: manifests, resumable jobs, atomic results, failure records.

:func:`run_batch` runs a manifest (:mod:`garvideo.batch.manifest`) through a
:class:`~garvideo.pipeline.Pipeline`; :class:`BatchJob` is the resumable
engine underneath, usable for any per-item work (the benchmarks use it too).
"""

from .jobs import BatchJob, BatchSummary, Failure, parse_shard, shard_from_environment
from .manifest import BatchRequest, ManifestLine, read_manifest
from .runner import BatchOptions, run_batch

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
