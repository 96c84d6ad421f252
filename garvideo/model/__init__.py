"""The Grasp Any Region (GAR) model: faithful to the reference, on transformers' native Perception-LM.

High level: :class:`GAR` (``from_pretrained``, ``describe``, ``ask``, ``ask_video``,
``describe_video``, ``generate``) returning :class:`GARResult`.
Lower level: :class:`GARProcessor` (reference prompts, video prompts -> :class:`GARInputs`,
with :class:`GARImageProcessor` for tiles and prompt maps), :class:`GARModel` (mask patch embedding, RoI
replay in ``reference`` or ``aligned`` box mode, generation), :class:`GARConfig`,
:class:`StaticDecoder` (the decode loop over a static KV cache, optionally compiled) and
:class:`BatchPolicy` / :func:`plan_batches` (which prompts share a batch).
"""

from ..checkpoints import ResolvedCheckpoint, resolve_checkpoint
from .api import DECODERS, DEFAULT_MODEL_ID, GAR, GARResult, GARTimings, GenerationSettings, ModelInfo, NamedPrompt
from .batching import BatchPolicy, plan_batches
from .configuration_gar import GARConfig
from .decoding import DecodeOptions, StaticDecoder
from .errors import CheckpointError, TooManyRegionsError
from .image_processing_gar import GARImageProcessor, PreparedImage, choose_grid, region_box, supported_grids
from .images import load_mask, load_rgb
from .modeling_gar import BOX_MODES, EncodedPrompt, GARModel, ReplayRecord
from .processing_gar import GARInputs, GARProcessor, PlaceholderRun
from .prompts import (
    CAPTION_INSTRUCTION,
    VideoPromptTemplate,
    caption_text,
    find_prompt_indices,
    label_options,
    multi_region_text,
    multiple_choice_question,
    parse_option_letter,
    prompt_token,
)

__all__ = [
    "BOX_MODES",
    "DECODERS",
    "BatchPolicy",
    "DecodeOptions",
    "StaticDecoder",
    "plan_batches",
    "CAPTION_INSTRUCTION",
    "DEFAULT_MODEL_ID",
    "CheckpointError",
    "EncodedPrompt",
    "GAR",
    "GARConfig",
    "GARImageProcessor",
    "GARInputs",
    "GARModel",
    "GARProcessor",
    "GARResult",
    "GARTimings",
    "GenerationSettings",
    "ModelInfo",
    "NamedPrompt",
    "PlaceholderRun",
    "PreparedImage",
    "ReplayRecord",
    "ResolvedCheckpoint",
    "TooManyRegionsError",
    "VideoPromptTemplate",
    "caption_text",
    "choose_grid",
    "find_prompt_indices",
    "label_options",
    "load_mask",
    "load_rgb",
    "multi_region_text",
    "multiple_choice_question",
    "parse_option_letter",
    "prompt_token",
    "region_box",
    "resolve_checkpoint",
    "supported_grids",
]
