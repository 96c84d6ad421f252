"""The GAR model as users call it: describe a region, answer questions about named regions, in images and videos.

>>> gar = GAR.from_pretrained("HaochenWang/GAR-1B")           # or a local folder
>>> gar.describe("photo.jpg", "dog_mask.png").text
>>> gar.ask("photo.jpg", {"dog": dog_mask, "ball": ball_mask}, "What is <dog> doing with <ball>?").text
>>> gar.ask("photo.jpg", {"dog": dog_mask}, "What colour is <dog>?", options=["brown", "black"]).choice
>>> gar.ask_video(frames, {"dog": dog_masks_per_frame}, "What does <dog> do?").text

Regions are named; in the prompt the i-th given region becomes ``<Prompti>``
(the order you give them in) and the question refers to them as ``<name>``.
Every call returns a :class:`GARResult` with the text, the new token ids and
its share of the time spent encoding (vision tower, projector, replay) and generating.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .. import defaults
from ..checkpoints import resolve_checkpoint
from ..defaults import MAX_NEW_TOKENS_LIMIT
from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError
from ..names import check_region_name, resolve_references
from . import decoding
from .adapters import AdapterInfo, attach_adapter, merged_adapter_info
from .batching import BatchPolicy, ImageFeatureMemo, plan_batches
from .compiling import CompileDecision, CompileRecord, check_setting, compile_setting, decide
from .decoding import StaticDecoder
from .decoding import synchronize as _sync
from .image_processing_gar import TilingMode
from .images import ImageLike, MaskLike
from .modeling_gar import BOX_MODES, BoxMode, GARModel
from .processing_gar import GARInputs, GARProcessor
from .prompts import (
    CAPTION_INSTRUCTION,
    VideoPromptTemplate,
    check_user_text,
    label_options,
    multiple_choice_question,
    parse_option_letter,
    prompt_token,
    question_text,
    restore_region_names,
)

DEFAULT_MODEL_ID = defaults.MODEL  # the one table of defaults holds it

Regions = Mapping[str, MaskLike] | Sequence[tuple[str, MaskLike]]
VideoRegions = Mapping[str, Sequence[MaskLike | None]] | Sequence[tuple[str, Sequence[MaskLike | None]]]

DECODERS = ("static", "generate")


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding options. Greedy by default, as the reference evaluates; ``seed`` makes sampling repeatable."""

    max_new_tokens: int = 1024
    min_new_tokens: int = 0  # EOS is suppressed before this many tokens (benchmarks use it for fixed lengths)
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    cache_implementation: str | None = None  # e.g. "static": transformers' generate with that KV cache
    # "static": garvideo's lean loop over a StaticCache (compiled where the GAR says so); "generate":
    # transformers' generate. A repetition penalty or a cache_implementation always uses generate.
    decoder: str = "static"

    def __post_init__(self) -> None:
        # Checked here, whether or not sampling is on, so a mistake is named when it is made, not deep in generate.
        for name in ("max_new_tokens", "min_new_tokens") + (("top_k",) if self.top_k is not None else ()):
            if not isinstance(getattr(self, name), numbers.Integral) or isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        for name in ("temperature", "top_p", "repetition_penalty"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
                raise InvalidInputError(f"{name} must be a number, got {value!r}")
        if self.seed is not None and (not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool)):
            raise InvalidInputError(f"seed must be a whole number or None, got {self.seed!r}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise InvalidInputError(
                f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}, got {self.max_new_tokens}"
            )
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise InvalidInputError(f"min_new_tokens must be in 0..max_new_tokens, got {self.min_new_tokens}")
        if self.temperature <= 0:
            raise InvalidInputError(f"temperature must be positive, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InvalidInputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise InvalidInputError(f"top_k must be a positive whole number (None or 0: no limit), got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise InvalidInputError(
                f"repetition_penalty must be positive (1.0: no penalty, above 1: fewer repeats), got"
                f" {self.repetition_penalty}"
            )
        if self.decoder not in DECODERS:
            raise InvalidInputError(f"unknown decoder {self.decoder!r}: use {' or '.join(map(repr, DECODERS))}")
        if self.cache_implementation is not None:
            known = _cache_implementations()
            if known and self.cache_implementation not in known:
                raise InvalidInputError(
                    f"unknown cache_implementation {self.cache_implementation!r}: use None (transformers' dynamic"
                    f" cache) or one of {', '.join(repr(k) for k in known)}"
                )

    def generation_config(self, eos_token_id: int, pad_token_id: int, output_logits: bool):
        from transformers import GenerationConfig

        options = dict(
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens,
            do_sample=self.do_sample,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            repetition_penalty=self.repetition_penalty,
            return_dict_in_generate=True,
            output_logits=output_logits,
        )
        if self.cache_implementation is not None:
            options["cache_implementation"] = self.cache_implementation
        if self.do_sample:
            options.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or 0)
        return GenerationConfig(**options)


@functools.lru_cache(maxsize=1)
def _cache_implementations() -> tuple[str, ...]:
    """The KV cache names this transformers' generate accepts (empty if it does not list them)."""
    try:
        from transformers.generation.configuration_utils import ALL_CACHE_IMPLEMENTATIONS
    except ImportError:
        return ()
    return tuple(ALL_CACHE_IMPLEMENTATIONS)


@dataclass(frozen=True)
class GARTimings:
    """One prompt's share of the time its generate batch took, per stage (seconds; monotonic clock, CUDA synchronised).

    A batch is timed as a whole and each of its ``batch_size`` prompts carries an equal share, so the
    timings of a run's results add up to the time the run took.
    """

    encode_s: float  # vision tower + projector + RoI replay + embedding assembly
    generate_s: float  # language model prefill + decode
    batch_size: int = 1  # prompts in the generate call this share is of
    warmup_s: float = 0.0  # of generate_s: compiling or capturing decode steps (see GAR.compile)


@dataclass(frozen=True)
class GARResult:
    """One generated answer."""

    text: str  # decoded up to EOS without special tokens; <Promptk> written back as <name> where regions were named
    token_ids: tuple[int, ...]  # the new tokens, EOS included when generation ended with it
    timings: GARTimings  # this prompt's share of its batch's time
    prompt_tokens: int  # length of the prompt in tokens
    finished: bool  # True if the model ended with EOS, False if max_new_tokens cut it
    choice: str | None = None  # the option letter, for multiple-choice questions
    step_logits: np.ndarray | None = field(default=None, repr=False, compare=False)  # (steps, vocab) if asked


@dataclass(frozen=True)
class ModelInfo:
    """What produced a result: for provenance records."""

    model_id: str
    revision: str | None
    dtype: str
    device: str
    box_mode: str
    double_bos: bool
    compiled: bool = False  # the last generate call's decode steps ran compiled (see compile_record)
    compile_record: CompileRecord | None = None  # the last generate call's decoding: setting, kind, why, warm-up
    adapter: AdapterInfo | None = None  # a fine-tuned adapter it runs with (or was merged from)


@dataclass(frozen=True)
class NamedPrompt:
    """A prepared prompt about named regions: what :meth:`GAR.answer` needs to map answers back to names."""

    inputs: GARInputs
    names: tuple[str, ...]  # region names in prompt order: names[i] is <Prompt{inputs.prompt_indices[i]}>
    options: tuple[str, ...] | None = None  # multiple-choice options (without letters), if any


def _named(regions, what: str) -> tuple[list[str], list]:
    items = list(regions.items()) if isinstance(regions, Mapping) else [tuple(item) for item in regions]
    if not items:
        raise InvalidInputError(f"no {what} was given")
    names = []
    for item in items:
        if len(item) != 2:
            raise InvalidInputError(f"{what}s must be (name, mask) pairs or a {{name: mask}} mapping")
        names.append(check_region_name(str(item[0])))
    if len(set(names)) != len(names):
        raise InvalidInputError(f"region names must be distinct, got {names}")
    return names, [item[1] for item in items]


def _substitute_names(text: str, names: Sequence[str]) -> str:
    """``<name>`` -> ``<Prompti>``; a reference to anything not given is an error."""
    check_user_text(text)
    return resolve_references(text, names, prompt_token)[0]


def _options(options: Sequence[str] | None) -> tuple[str, ...] | None:
    if options is None:
        return None
    if isinstance(options, (str, bytes)):
        raise InvalidInputError(
            f"options must be a list of option texts, e.g. ['red', 'blue'], not the single string {options!r}"
        )
    texts = tuple(str(o).strip() for o in options)
    if any(not text for text in texts):
        raise InvalidInputError(f"every option needs a text, got {list(options)!r}")
    return texts


class GAR:
    """A loaded GAR model with its processor: the image and video entry points."""

    def __init__(
        self,
        model: GARModel,
        processor: GARProcessor,
        model_id: str = "",
        revision: str | None = None,
        box_mode: BoxMode = "reference",
        vision_batch_size: int = 16,
        compile: bool | str = defaults.COMPILE,
        adapter: AdapterInfo | None = None,
        long_running: bool = False,
    ) -> None:
        if box_mode not in BOX_MODES:
            raise InvalidInputError(f"unknown box mode {box_mode!r}: use 'reference' or 'aligned'")
        tile_size = processor.image_processor.tile_size
        if processor.tokens_per_side != model.tokens_per_side or tile_size != model.tile_size:
            raise InvalidInputError(
                f"processor tiles ({tile_size} px, {processor.tokens_per_side}^2 tokens) do not fit"
                f" the model ({model.tile_size} px, {model.tokens_per_side}^2 tokens)"
            )
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.revision = revision
        self.box_mode = box_mode
        self.vision_batch_size = int(vision_batch_size)
        self.compile = compile
        self.long_running = bool(long_running)
        self._decoders: dict[str, StaticDecoder] = {}
        self._steps_done = 0  # decode steps this GAR ran (auto compiles once they and a call's plan pay back)
        self._record = CompileRecord(self.compile, "eager", "nothing generated yet")
        self.adapter = adapter
        self.adapter_model = None  # PEFT's wrapper of ``model`` when an adapter is attached (to merge it)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike = DEFAULT_MODEL_ID,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
        box_mode: BoxMode = "reference",
        double_bos: bool = True,
        attn_implementation: str = "sdpa",
        local_files_only: bool | None = None,
        vision_batch_size: int = 16,
        compile: bool | str = defaults.COMPILE,
        adapter: str | os.PathLike | None = None,
        long_running: bool = False,
    ) -> GAR:
        """Load from a local folder or a hub id (through the local cache when offline).

        ``device``/``dtype`` default to CUDA + bfloat16 when available, else CPU + float32.
        ``box_mode="reference"`` and ``double_bos=True`` reproduce the released model's
        numerics (quirks Q1 and Q6); ``box_mode="aligned"`` replays the geometrically
        correct box. ``compile``: whether the decode steps run compiled (see :attr:`compile`); ``auto``
        compiles only where the warm-up pays back, and ``long_running=True`` says this process will
        serve many calls (a batch, an app, a service, live sessions, a benchmark run).
        ``adapter``: the folder of a LoRA adapter ``garvideo train`` wrote, attached unmerged
        (:mod:`garvideo.model.adapters`).
        """
        resolved = resolve_checkpoint(path_or_id, revision=revision, local_files_only=local_files_only)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        model = GARModel.from_pretrained(resolved.folder, torch_device, torch_dtype, attn_implementation)
        processor = GARProcessor.from_pretrained(resolved.folder, double_bos=double_bos)
        peft_model, info = attach_adapter(model, adapter) if adapter is not None else (None, None)
        gar = cls(
            model,
            processor,
            resolved.model_id,
            resolved.revision,
            box_mode,
            vision_batch_size,
            compile,
            adapter=info,
            long_running=long_running,
        )
        gar.adapter_model = peft_model
        return gar

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the checkpoint (weights, config, tokenizer, processor files) in the released layout."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        return folder

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            model_id=self.model_id,
            revision=self.revision,
            dtype=str(self.model.dtype).removeprefix("torch."),
            device=str(self.model.device),
            box_mode=self.box_mode,
            double_bos=self.processor.double_bos,
            compiled=self._record.compiled,
            compile_record=self._record,
            adapter=self.adapter or merged_adapter_info(self.model.config),
        )

    # ------------------------------------------------------------------ compiled decoding

    @property
    def compile(self) -> str:
        """Whether decode steps run compiled: ``auto``, ``on``, ``off``, ``inductor`` or ``cuda-graphs``.

        ``auto`` decides at each generate call until it compiles (:func:`garvideo.model.compiling.decide`: when
        the call's planned decode steps pay back the warm-up; a long-running process at once on CUDA, and on a
        CPU once the steps it ran have earned it); inductor compiles into the compile cache
        (:mod:`garvideo.compile_cache`), so the next process starts warm. Settable (True/False too).
        """
        return self._compile

    @compile.setter
    def compile(self, value: bool | str) -> None:
        setting = compile_setting(value)
        check_setting(setting, self.model.device.type)
        self._compile = setting

    @property
    def decoder(self) -> StaticDecoder:
        """The decode loop of the last generate call's kind, made once and reused (its compiled steps are kept)."""
        return self._decoder(self._record.kind if self._record.kind in self._decoders else "eager")

    def _decoder(self, kind: str) -> StaticDecoder:
        # One per kind, so switching back and forth keeps each one's compiled steps.
        decoder = self._decoders.get(kind)
        if decoder is None or decoder.mllm is not self.model.mllm:
            cache = self.compile_cache() if kind == "inductor" else None
            decoder = self._decoders[kind] = self.model.static_decoder(compile=kind, compile_cache=cache)
        return decoder

    def compile_cache(self):
        """The :class:`~garvideo.compile_cache.CompileCache` inductor compiles this model's decode step into."""
        from ..compile_cache import CompileCache, CompileKey

        config = self.model.mllm.config.to_dict()
        if self.adapter_model is not None:  # an unmerged adapter's layers are part of the compiled step
            config["adapter"] = {name: c.to_dict() for name, c in self.adapter_model.peft_config.items()}
        key = CompileKey.for_model(
            "gar decode step, inductor", self.model_id, self.revision, config, self.model.dtype, self.model.device
        )
        return CompileCache(key)

    def _decide(self, planned_steps: int) -> CompileDecision:
        device = self.model.device.type
        failed = [d.failure for d in self._decoders.values() if d.failure]
        if failed:
            return CompileDecision("eager", f"compiling failed earlier in this process ({failed[0]})")
        compiled_before = any(d.compile and d.warmup_s > 0 for d in self._decoders.values())
        warm = self.compile == "auto" and not compiled_before and self.compile_cache().warm
        return decide(
            self.compile,
            device,
            planned_steps=planned_steps,
            done_steps=self._steps_done,
            long_running=self.long_running,
            warm=warm,
            compiled_before=compiled_before,
        )

    @property
    def max_regions(self) -> int:
        """How many regions one prompt can hold (5 for the released models)."""
        return self.processor.prompt_numbers

    # ------------------------------------------------------------------ images

    def describe(
        self,
        image: ImageLike,
        mask: MaskLike,
        generation: GenerationSettings | None = None,
        prompt_index: int = 1,
    ) -> GARResult:
        """Describe one masked region with the reference caption prompt (``<Prompt1>``, as the reference does).

        The text is decoded as the reference's caption inference decodes it: every special token dropped.
        """
        # A caption names no region, so no <Promptk> is written back: they go with the other special tokens.
        inputs = self.processor.prepare_caption(image, mask, prompt_index=prompt_index)
        (result,) = self._generate([inputs], [()], generation)
        return result

    def describe_batch(
        self,
        items: Sequence[tuple[ImageLike, MaskLike]],
        generation: GenerationSettings | None = None,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> list[GARResult]:
        """:meth:`describe` for many (image, mask) pairs, batched as :meth:`generate` does."""
        prepared = [self.processor.prepare_caption(image, mask) for image, mask in items]
        return self._generate(prepared, [()] * len(prepared), generation, batch_size=batch_size, progress=progress)

    def prepare_ask(
        self, image: ImageLike, regions: Regions, question: str, options: Sequence[str] | None = None
    ) -> NamedPrompt:
        """The prompt :meth:`ask` would send (see :meth:`answer` to generate many in batches)."""
        names, masks = _named(regions, "region")
        text = self._question_text(question, names, options)
        inputs = self.processor.prepare_question(image, masks, text, names=names)
        return NamedPrompt(inputs, tuple(names), _options(options))

    def ask(
        self,
        image: ImageLike,
        regions: Regions,
        question: str,
        options: Sequence[str] | None = None,
        generation: GenerationSettings | None = None,
    ) -> GARResult:
        """Answer a question about one to five named regions of an image.

        ``regions`` maps names to masks (in the order given: the first is ``<Prompt0>``); the question
        refers to them as ``<name>``. With ``options`` (plain texts, lettered A, B, ... here) the
        question becomes the reference multiple-choice prompt and the result's ``choice`` holds the
        letter answered.
        """
        return self.answer(self.prepare_ask(image, regions, question, options), generation)[0]

    def answer(
        self,
        prompts: NamedPrompt | Sequence[NamedPrompt],
        generation: GenerationSettings | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        on_text: Callable[[int, str, bool], None] | None = None,
    ) -> list[GARResult]:
        """Generate for prepared named prompts (batched as :meth:`generate` does) and write region names back.

        ``on_text(index, text, done)`` streams each prompt's text (names written back) as it is generated:
        after every new token with ``done=False``, then once with the final text and ``done=True`` when the
        prompt's batch ends. An exception it raises stops generation.
        """
        items = [prompts] if isinstance(prompts, NamedPrompt) else list(prompts)
        # Only the given regions' tokens are kept (to become names); any other special token is dropped.
        keep = [p.inputs.prompt_indices for p in items]

        def named(index: int, result: GARResult) -> GARResult:
            prompt = items[index]
            choice = parse_option_letter(result.text, prompt.options) if prompt.options is not None else None
            text = restore_region_names(result.text, prompt.names, prompt.inputs.prompt_indices)
            return replace(result, text=text, choice=choice)

        streams = None
        if on_text is not None:

            def partial(index: int, ids: Sequence[int]) -> None:
                text = self.processor.decode(list(ids), keep_regions=keep[index])
                on_text(index, restore_region_names(text, items[index].names, keep[index]), False)

            streams = _Streams(partial, lambda index, result: on_text(index, named(index, result).text, True))
        results = self._generate(
            [p.inputs for p in items], keep, generation, batch_size=batch_size, progress=progress, streams=streams
        )
        return [named(index, result) for index, result in enumerate(results)]

    # ------------------------------------------------------------------ videos

    def prepare_video(
        self,
        frames: Sequence[ImageLike],
        regions: VideoRegions,
        question: str,
        options: Sequence[str] | None = None,
        times: Sequence[float | None] | None = None,
        tiling: TilingMode = "vanilla",
        template: VideoPromptTemplate | None = None,
    ) -> NamedPrompt:
        """The video prompt :meth:`ask_video` would send (see :meth:`answer` to generate many in batches)."""
        names, masks = _named(regions, "region")
        text = self._question_text(question, names, options)
        inputs = self.processor.prepare_video(
            frames, masks, text, names=names, template=template, tiling=tiling, times=times
        )
        return NamedPrompt(inputs, tuple(names), _options(options))

    def ask_video(
        self,
        frames: Sequence[ImageLike],
        regions: VideoRegions,
        question: str,
        options: Sequence[str] | None = None,
        times: Sequence[float | None] | None = None,
        tiling: TilingMode = "vanilla",
        template: VideoPromptTemplate | None = None,
        generation: GenerationSettings | None = None,
        progress: bool = False,
        on_text: Callable[[str, bool], None] | None = None,
    ) -> GARResult:
        """Answer a question about up to five named regions over several frames, in one generate call.

        ``regions[name][f]`` is the region's mask on ``frames[f]`` (None where it is not visible);
        ``times[f]`` (seconds, optional) can appear in the prompt via the template's ``{time}``.
        Every frame is one tile (``tiling="vanilla"``) or thumbnail + tiles (``"thumb+tile"``)
        with its own mask embedding; every region visible on a frame gets its own RoI replay
        from that frame. Wording: :class:`VideoPromptTemplate` (override with ``template``).
        ``on_text(text, done)`` streams the answer as it is generated (see :meth:`answer`).
        """
        prompt = self.prepare_video(frames, regions, question, options, times, tiling, template)
        stream = (lambda _, text, done: on_text(text, done)) if on_text is not None else None
        return self.answer(prompt, generation, progress=progress, on_text=stream)[0]

    def describe_video(
        self,
        frames: Sequence[ImageLike],
        masks: Sequence[MaskLike | None],
        instruction: str = CAPTION_INSTRUCTION,
        name: str = "region",
        **kwargs,
    ) -> GARResult:
        """Describe one region over several frames (one mask per frame, None where not visible)."""
        return self.ask_video(frames, {name: masks}, instruction, **kwargs)

    # ------------------------------------------------------------------ the engine

    def generate(
        self,
        inputs: GARInputs | NamedPrompt | Sequence[GARInputs | NamedPrompt],
        generation: GenerationSettings | None = None,
        box_mode: BoxMode | None = None,
        batch_size: int | None = None,
        output_logits: bool = False,
        progress: bool = False,
        max_padding: float | None = None,
        share_images: bool = True,
    ) -> list[GARResult]:
        """Generate for prepared prompts in batches of similar length; results in the order given.

        Prompts are grouped by length (:func:`~garvideo.model.batching.plan_batches`): at most
        ``batch_size`` per batch (default per device: 8 on a CPU, 16 on CUDA) and at most
        ``max_padding`` of a batch's token slots as left padding (default: none on a CPU, a quarter
        on CUDA). Images that several prompts show identically go through the vision tower once
        (``share_images=False`` encodes every prompt's images anew, for comparisons).
        Texts are decoded without special tokens except the region tokens ``<Promptk>``, which
        :meth:`answer` writes back as region names for named prompts.
        """
        items = [inputs] if isinstance(inputs, (GARInputs, NamedPrompt)) else list(inputs)
        items = [item.inputs if isinstance(item, NamedPrompt) else item for item in items]
        every_region = tuple(range(self.processor.prompt_numbers))
        return self._generate(
            items,
            [every_region] * len(items),
            generation,
            box_mode,
            batch_size,
            output_logits,
            progress,
            max_padding,
            share_images,
        )

    def _generate(
        self,
        items: Sequence[GARInputs],
        keep_regions: Sequence[Sequence[int]],
        settings: GenerationSettings | None = None,
        box_mode: BoxMode | None = None,
        batch_size: int | None = None,
        output_logits: bool = False,
        progress: bool = False,
        max_padding: float | None = None,
        share_images: bool = True,
        streams: _Streams | None = None,
    ) -> list[GARResult]:
        """:meth:`generate`, with each text decoded once, keeping the region tokens ``<Promptk>`` of
        ``keep_regions[i]`` in item ``i``'s text; ``streams`` hears each item's tokens and result as they come."""
        if not items:
            return []
        settings = settings or GenerationSettings()
        processor, device = self.processor, self.model.device
        policy = BatchPolicy.for_device(device, batch_size, max_padding)
        config = settings.generation_config(processor.eos_token_id, processor.pad_token_id, output_logits)
        batches = plan_batches([item.num_tokens for item in items], policy)
        plan = self._plan_decoding(settings, config, len(batches))
        decoder = plan.decoder
        if progress and len(batches) > 1:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="GAR", unit="batch")
        memo = ImageFeatureMemo() if share_images else None
        results: list[GARResult | None] = [None] * len(items)
        for batch in batches:
            chunk = [items[i] for i in batch]
            warmed_before = decoder.warmup_s if decoder is not None else 0.0
            with torch.inference_mode():
                _sync(device)
                started = time.perf_counter()
                features = self.model.image_features(
                    chunk, self.vision_batch_size, progress=progress, memo=memo, share=share_images
                )
                prompts = [
                    self.model.embed_prompt(item, f, box_mode or self.box_mode).inputs_embeds
                    for item, f in zip(chunk, features)
                ]
                _sync(device)
                encoded = time.perf_counter()
                with _seeded(settings.seed, device):
                    on_tokens = streams.for_batch(batch, processor.eos_token_id) if streams is not None else None
                    sequences, logits = self.model.generate_from_embeddings(
                        prompts, config, processor.pad_token_id, decoder, on_tokens=on_tokens
                    )
                _sync(device)
                finished_at = time.perf_counter()
            self._steps_done += int(sequences.shape[1])
            share = len(chunk)
            warmup = (decoder.warmup_s - warmed_before) if decoder is not None else 0.0
            timings = GARTimings((encoded - started) / share, (finished_at - encoded) / share, share, warmup / share)
            for row, index in enumerate(batch):
                results[index] = self._result(sequences[row], logits, row, items[index], keep_regions[index], timings)
                if streams is not None:
                    streams.on_result(index, results[index])
        self._record = plan.record()
        return results

    def _plan_decoding(self, settings: GenerationSettings, config, batches: int) -> _DecodingPlan:
        """How one generate call decodes (decided once, before any work; the decoder None: transformers' generate)."""
        if settings.decoder != "static" or not decoding.supports(config):
            decision = CompileDecision("eager", "transformers' generate (asked for, or the settings need it)")
            return _DecodingPlan(self.compile, decision, None)
        decision = self._decide(batches * settings.max_new_tokens)
        decoder = self._decoder(decision.kind)
        warm = decoder.compile_cache is not None and decoder.compile_cache.warm
        return _DecodingPlan(self.compile, decision, decoder, warm, decoder.warmup_s)

    def _result(self, row_ids, logits, row: int, item: GARInputs, keep: Sequence[int], timings) -> GARResult:
        """One prompt's result from its row of the batch's tokens (cut after EOS) and logits."""
        processor = self.processor
        ids = [int(t) for t in row_ids.tolist()]
        done = processor.eos_token_id in ids
        if done:
            ids = ids[: ids.index(processor.eos_token_id) + 1]
        step_logits = None
        if logits is not None:
            step_logits = logits[row, : len(ids)].float().cpu().numpy()
        return GARResult(
            text=processor.decode(ids, keep_regions=keep),
            token_ids=tuple(ids),
            timings=timings,
            prompt_tokens=item.num_tokens,
            finished=done,
            step_logits=step_logits,
        )

    # ------------------------------------------------------------------ helpers

    def _question_text(self, question: str, names: Sequence[str], options: Sequence[str] | None) -> str:
        # The processor checks the regions and the final text; names become <Prompti> here.
        text = question_text(question)
        if options is not None:
            text = multiple_choice_question(text, label_options(_options(options)))
        return _substitute_names(text, names)


@dataclass(frozen=True)
class _DecodingPlan:
    """One generate call's decoding: the decision, its decoder (None: generate), and the decoder's state before."""

    setting: str
    decision: CompileDecision
    decoder: StaticDecoder | None
    cache_was_warm: bool = False
    warmup_before: float = 0.0

    def record(self) -> CompileRecord:
        """What the call ran (a compiled kind whose warm-up failed ran eagerly) and the warm-up it spent."""
        kind, reason, decoder = self.decision.kind, self.decision.reason, self.decoder
        if decoder is None:
            return CompileRecord(self.setting, kind, reason)
        if decoder.kind != kind:
            kind, reason = decoder.kind, f"{reason}; compiling failed ({decoder.failure}), so eager"
        warmup = decoder.warmup_s - self.warmup_before
        cache = None
        if self.decision.kind == "inductor" and decoder.compile_cache is not None and warmup > 0:
            cache = "warm" if self.cache_was_warm else "cold"
        return CompileRecord(self.setting, kind, reason, warmup, cache)


@dataclass(frozen=True)
class _Streams:
    """Where generated tokens go while a batch decodes: ``on_tokens(item index, new token ids so far)`` after
    every step that gave the item a token, ``on_result(item index, result)`` once its batch has ended."""

    on_tokens: Callable[[int, Sequence[int]], None]
    on_result: Callable[[int, GARResult], None]

    def for_batch(self, batch: Sequence[int], eos_token_id: int) -> Callable[[torch.Tensor], None]:
        """The decoder's per-step callback for one batch (rows are the items ``batch``), stopping at EOS."""
        ids: list[list[int]] = [[] for _ in batch]
        ended = [False] * len(batch)

        def step(tokens: torch.Tensor) -> None:
            for row, token in enumerate(tokens.tolist()):
                if ended[row]:
                    continue
                if token == eos_token_id:
                    ended[row] = True
                    continue
                ids[row].append(int(token))
                self.on_tokens(batch[row], ids[row])

        return step


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators for one sampling call without disturbing the caller's random state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
