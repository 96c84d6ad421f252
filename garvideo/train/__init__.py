"""Fine-tuning GAR on one's own data (``garvideo train``): LoRA adapters trained on the inference prompts.

:func:`train` runs a fine-tuning into a run folder (:class:`TrainConfig` holds the settings);
:func:`read_dataset` reads and checks the data (JSON lines, COCO region captions, VideoRefer-700K);
:func:`check_dataset` reports what ``garvideo train --check`` prints; :func:`merge` folds an adapter into a
standalone checkpoint. The adapter is loaded with ``GAR.from_pretrained(..., adapter=DIR)`` or
``Pipeline.from_pretrained(adapter=DIR)``. Everything but the settings loads on first use.
"""

from .._lazy import lazy_attributes
from .config import TrainConfig

_LAZY = {
    "Dataset": ".data",
    "DatasetError": ".data",
    "TrainExample": ".data",
    "read_dataset": ".formats",
    "ExampleBuilder": ".examples",
    "TrainingInput": ".examples",
    "Evaluation": ".evaluation",
    "TrainSummary": ".trainer",
    "train": ".trainer",
    "DatasetReport": ".check",
    "check_dataset": ".check",
    "merge": ".merging",
}
__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetReport",
    "Evaluation",
    "ExampleBuilder",
    "TrainConfig",
    "TrainExample",
    "TrainSummary",
    "TrainingInput",
    "check_dataset",
    "merge",
    "read_dataset",
    "train",
]
