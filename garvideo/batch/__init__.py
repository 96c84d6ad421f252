"""Batch jobs over folders of videos: manifests, resumable jobs, atomic results, failure records.

:func:`run_batch` runs a manifest (:mod:`garvideo.batch.manifest`) through a
:class:`~garvideo.pipeline.Pipeline`; :class:`BatchJob` is the resumable
engine underneath, usable for any per-item work (the benchmarks use it too).
:func:`run_batch_on_ray` writes the same files from the workers of a Ray
cluster (:mod:`garvideo.batch.ray_runner`; needs ``garvideo[ray]``).
The manifest and runners load on first use, so ``garvideo.batch.jobs`` stays
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
    "PipelineSpec": ".ray_runner",
    "RayOptions": ".ray_runner",
    "run_batch_on_ray": ".ray_runner",
}
__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "BatchJob",
    "BatchOptions",
    "BatchRequest",
    "BatchSummary",
    "Failure",
    "ManifestLine",
    "PipelineSpec",
    "RayOptions",
    "parse_shard",
    "read_manifest",
    "run_batch",
    "run_batch_on_ray",
    "shard_from_environment",
]
