"""A lean decode loop over transformers' ``StaticCache``: the language model's own forward, one token per step.

transformers' ``generate`` spends most of a small model's decode step in Python plumbing and KV-cache
concatenation (bench/RESULTS.md). This loop keeps only what a step needs: one forward of the language
model (transformers' own module) for the new token over a preallocated ``StaticCache``, the LM head on
that position, and the choice of the next token. The prompt itself runs as ``generate`` runs it
(its keys and values are then copied into the static cache). The step runs in one of three kinds:

- ``eager``: as written, on a cache of exactly the call's length;
- ``inductor``: through ``torch.compile`` (``mode="reduce-overhead"`` on CUDA, i.e. inductor's kernels
  replayed as CUDA graphs); compiled into a :class:`~garvideo.compile_cache.CompileCache` when one is
  given, so the next process starts warm;
- ``cuda-graphs`` (CUDA only): the eager step captured as a CUDA graph, no inductor (a capture takes about
  a second, where inductor compiles for tens).

The compiled kinds keep one cache per batch size (it only grows) with its compiled step or graph, so the
first call warms them and later calls and videos replay them. Inductor compiles with symbolic sizes: one
compile for a batch of one and one for larger batches serves every prompt length; a captured graph is
made per cache. :attr:`StaticDecoder.warmup_s` adds up the time those warm-ups took. A warm-up that fails
(a compiler missing, a corrupt cache) is warned about and the step runs eagerly instead: a compiled kind
never makes a call fail. The prefill runs eagerly.

What it reproduces of ``generate`` (same prompt layout as :meth:`GARModel.generate_from_embeddings`:
left padding, positions counted over real tokens): greedy tokens (tested equal in float32), EOS
handling (finished rows continue with the pad token), ``min_new_tokens``, raw per-step logits, and
sampling with transformers' own temperature, top-k and top-p warpers applied in ``generate``'s order
and ``torch.multinomial`` on the softmax, so a seeded run draws ``generate``'s tokens. Settings it
does not implement (a repetition penalty: ``generate``'s handling of it depends on the transformers
version) are refused by :func:`supports`; callers then use ``generate``.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: Compiled caches have a multiple of this many slots.
COMPILED_CACHE_STEP = 1024
#: Caches kept per decoder (one per batch size and setting); the least recently used goes first.
MAX_KEPT_CACHES = 3


class CompileFailedWarning(UserWarning):
    """A compiled decode step could not be made (compiled, or captured): decoding goes on eagerly."""


@dataclass(frozen=True)
class DecodeOptions:
    """What one decode call needs from the generation settings."""

    max_new_tokens: int
    eos_token_id: int
    pad_token_id: int
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    output_logits: bool = False

    @classmethod
    def from_generation_config(cls, config) -> DecodeOptions:
        eos = config.eos_token_id
        return cls(
            max_new_tokens=int(config.max_new_tokens),
            eos_token_id=int(eos[0] if isinstance(eos, (list, tuple)) else eos),
            pad_token_id=int(config.pad_token_id),
            min_new_tokens=int(config.min_new_tokens or 0),
            do_sample=bool(config.do_sample),
            temperature=float(config.temperature if config.temperature is not None else 1.0),
            top_p=float(config.top_p if config.top_p is not None else 1.0),
            top_k=int(config.top_k or 0),
            output_logits=bool(config.output_logits),
        )


def supports(config) -> bool:
    """Whether :class:`StaticDecoder` reproduces ``generate`` for this ``GenerationConfig``."""
    penalty = getattr(config, "repetition_penalty", None)
    cache = getattr(config, "cache_implementation", None)
    beams = getattr(config, "num_beams", None)
    return (penalty is None or penalty == 1.0) and cache is None and (beams is None or beams == 1)


#: How a decode step runs (see the module docstring).
STEP_KINDS = ("eager", "inductor", "cuda-graphs")


def step_kind(compile: bool | str) -> str:
    """``compile`` as a step kind: False -> ``eager``, True -> ``inductor``, a kind as it is."""
    if isinstance(compile, bool):
        return "inductor" if compile else "eager"
    if compile not in STEP_KINDS:
        raise ValueError(f"unknown decode step kind {compile!r}: one of {STEP_KINDS}")
    return compile


@dataclass
class _Kept:
    """A compiled kind's cache of ``length`` slots for one batch size, and (cuda-graphs) its captured step."""

    length: int
    cache: Any
    graphed: _GraphedStep | None = None
    warmed: bool = False  # its first step (the compile or capture) has run


class StaticDecoder:
    """Greedy or sampled decoding of left-padded prompt embeddings with a static KV cache.

    ``mllm`` is transformers' ``PerceptionLMForConditionalGeneration`` (its ``model.language_model``
    and ``lm_head`` are used as they are). ``compile``: the step's kind (``eager``, ``inductor`` or
    ``cuda-graphs``; True is ``inductor``). ``compile_cache``: a
    :class:`~garvideo.compile_cache.CompileCache` inductor compiles into. One decoder belongs to one
    loaded model and is reused for every call; it is not thread-safe.
    """

    def __init__(
        self,
        mllm: nn.Module,
        compile: bool | str = False,
        compile_options: Mapping[str, Any] | None = None,
        compile_cache: Any = None,
    ) -> None:
        self.mllm = mllm
        self.kind = step_kind(compile)
        self.compile_options = dict(compile_options or {})  # torch.compile keywords over the defaults below
        self.compile_cache = compile_cache if self.kind == "inductor" else None
        self.language_model = mllm.model.language_model
        self.lm_head = mllm.lm_head
        parameters = inspect.signature(self.language_model.forward).parameters
        # transformers renamed past_key_values to cache (and dropped cache_position) during 5.x.
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._takes_cache_position = "cache_position" in parameters
        self._caches: OrderedDict[tuple, _Kept] = OrderedDict()  # (batch, device, dtype) -> kept cache
        self._compiled = None
        self.warmup_s = 0.0  # seconds the warm-ups (compiles, captures) took, every call together
        self.failure: str | None = None  # why a compiled kind fell back to eager, if it did

    @property
    def compile(self) -> bool:
        """Whether steps run compiled (either compiled kind)."""
        return self.kind != "eager"

    # ------------------------------------------------------------------ the step

    def _forward(self, cache, attention_mask, position_ids, cache_position, **inputs) -> torch.Tensor:
        extra = {"cache_position": cache_position} if self._takes_cache_position else {}
        out = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **{self._cache_argument: cache},
            **extra,
            **inputs,
        )
        # The LM head on the last position only, in float32 as generate processes logits.
        return self.lm_head(out.last_hidden_state[:, -1, :]).float()

    def _prefill(self, cache, embeds, attention, positions) -> torch.Tensor:
        """The prompt through the language model as generate runs it, its keys and values then copied into ``cache``.

        generate's own (dynamic) cache lets attention use the causal kernel over the prompt alone; a
        static cache would attend over every slot through an explicit mask (2.5x slower on a CPU).
        """
        length = int(embeds.shape[1])
        cache_position = torch.arange(length, device=embeds.device)
        extra = {"cache_position": cache_position} if self._takes_cache_position else {}
        out = self.language_model(
            inputs_embeds=embeds, attention_mask=attention, position_ids=positions, use_cache=True, **extra
        )
        prompt_cache = getattr(out, "cache", None) or out.past_key_values
        for index, layer in enumerate(prompt_cache.layers):
            cache.update(layer.keys, layer.values, index, {"cache_position": cache_position})
        return self.lm_head(out.last_hidden_state[:, -1, :]).float()

    def _step(self, cache, input_ids, attention_mask, position_ids, cache_position) -> torch.Tensor:
        if attention_mask.ndim == 4:
            # SDPA's boolean mask made here for the new token: the prompt's real tokens and every slot up to
            # this one. transformers would rebuild it from the 2-D mask every step, a large share of an
            # eager step; passed whole (4-D), it is used as given.
            slots = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
            attention_mask = attention_mask & (slots <= cache_position[-1])
        return self._forward(cache, attention_mask, position_ids, cache_position, input_ids=input_ids)

    def _compiled_step(self, device: torch.device):
        if self._compiled is None:
            options = {
                "mode": "reduce-overhead" if device.type == "cuda" else None,  # CUDA graphs exist only on CUDA
                # Sizes symbolic: one compile serves every cache length and batch size above 1 (torch still
                # specialises a batch of 1), so another video's prompts, or a warm compile cache, need no new one.
                "dynamic": True,
                **self.compile_options,
            }
            self._compiled = torch.compile(self._step, **options)
        return self._compiled

    def _run_step(self, kept: _Kept | None, cache, *inputs: torch.Tensor) -> torch.Tensor:
        """One step in this decoder's kind; the first on a kept cache compiles or captures it (its warm-up)."""
        if kept is None or self.kind == "eager":
            return self._step(cache, *inputs)
        if kept.warmed:
            return self._compiled_run(kept, cache, inputs)
        began = time.perf_counter()
        try:
            with self.compile_cache.compiling() if self.compile_cache is not None else contextlib.nullcontext():
                logits = self._compiled_run(kept, cache, inputs)
            error = kept.graphed.error if kept.graphed is not None else None
        except Exception as exc:  # noqa: BLE001 - whatever stops compiling, the eager step still decodes
            logits, error = None, _one_line(exc)
        finally:
            synchronize(inputs[0].device)
            self.warmup_s += time.perf_counter() - began
        kept.warmed = True
        if error is not None:
            self._fall_back(error)
            return logits if logits is not None else self._step(cache, *inputs)
        if self.compile_cache is not None:
            self.compile_cache.mark_ready()
        return logits

    def _compiled_run(self, kept: _Kept, cache, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.kind == "cuda-graphs":
            if kept.graphed is None:
                kept.graphed = _GraphedStep(self._step, cache)
            return kept.graphed(*inputs).clone()  # a graph's output is overwritten by its next replay
        if inputs[0].device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        return self._compiled_step(inputs[0].device)(cache, *inputs).clone()

    def _fall_back(self, error: str) -> None:
        """Decode eagerly from now on, saying why (a corrupt or foreign compile cache is emptied for the next run)."""
        kind, self.kind, self.failure = self.kind, "eager", error
        self._caches.clear()
        if self.compile_cache is not None and self.compile_cache.warm:
            self.compile_cache.clear(f"compiling with it failed ({error})")
        warnings.warn(
            f"compiling GAR's decode step ({kind}) failed ({error}): decoding without compiling",
            CompileFailedWarning,
            stacklevel=4,
        )

    def _cache(self, batch: int, needed: int, device: torch.device, dtype: torch.dtype):
        """A reset cache of at least ``needed`` slots for ``batch`` rows, reused from earlier calls where possible.

        Eager: a new cache of exactly ``needed`` slots, not kept (unused slots would only cost attention,
        and a kept cache would hold its memory between calls). Compiled: a compiled step (or a captured
        graph) reads its cache's tensors, so one cache per batch size is kept (returned as the third value)
        and only ever grows (to a multiple of :data:`COMPILED_CACHE_STEP` slots): a prompt only costs a new
        cache's warm-up (a capture; for inductor one step, its sizes being symbolic) when it is longer than
        every earlier one.
        """
        from transformers import StaticCache

        if not self.compile:
            return needed, StaticCache(config=self.language_model.config, max_cache_len=needed), None
        key = (batch, device, dtype)
        kept = self._caches.pop(key, None)
        if kept is not None and kept.length >= needed:
            kept.cache.reset()  # in place: a captured graph keeps reading and writing the same tensors
        else:
            while len(self._caches) >= MAX_KEPT_CACHES:
                self._caches.popitem(last=False)
            length = -(-needed // COMPILED_CACHE_STEP) * COMPILED_CACHE_STEP
            kept = _Kept(length, StaticCache(config=self.language_model.config, max_cache_len=length))
        self._caches[key] = kept
        return kept.length, kept.cache, kept

    # ------------------------------------------------------------------ decoding

    @torch.inference_mode()
    def decode(
        self,
        embeds: torch.Tensor,
        attention: torch.Tensor,
        options: DecodeOptions,
        on_tokens: Callable[[torch.Tensor], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode from ``embeds`` ``(B, L, hidden)`` with ``attention`` ``(B, L)`` (0 on left padding).

        Returns ``(tokens (B, steps), raw logits (B, steps, vocab) or None)``; rows that ended with EOS
        are continued with the pad token, as ``generate`` does. ``on_tokens`` receives each step's tokens
        ``(B,)`` as they are chosen (as a streamer receives them from ``generate``).
        """
        device = embeds.device
        batch, prompt_length = int(embeds.shape[0]), int(embeds.shape[1])
        length, cache, kept = self._cache(batch, prompt_length + options.max_new_tokens, device, embeds.dtype)
        positions = (attention.long().cumsum(-1) - 1).clamp(min=0)
        logits = self._prefill(cache, embeds, attention, positions)
        mask = torch.ones(batch, length, dtype=torch.long, device=device)
        mask[:, :prompt_length] = attention
        if getattr(self.language_model.config, "_attn_implementation", None) == "sdpa":
            mask = mask.bool()[:, None, None, :]  # (B, 1, query, slots): completed per step in _step
        warpers = _warpers(options)
        position = positions[:, -1:] + 1
        slot = torch.tensor([prompt_length], device=device)  # the cache slot of the next token, kept on the device
        unfinished = torch.ones(batch, dtype=torch.bool, device=device)
        no_ids = torch.empty(batch, 0, dtype=torch.long, device=device)  # the warpers used never read the ids
        tokens: list[torch.Tensor] = []
        raw: list[torch.Tensor] = []
        for index in range(options.max_new_tokens):
            if options.output_logits:
                raw.append(logits)
            scores = logits
            if index < options.min_new_tokens:
                scores = scores.clone()
                scores[:, options.eos_token_id] = -torch.inf
            if options.do_sample:
                for warper in warpers:
                    scores = warper(no_ids, scores)
                token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
            else:
                token = torch.argmax(scores, dim=-1)
            token = torch.where(unfinished, token, torch.full_like(token, options.pad_token_id))
            tokens.append(token)
            if on_tokens is not None:
                on_tokens(token)
            unfinished &= token != options.eos_token_id
            if index + 1 == options.max_new_tokens or not bool(unfinished.any()):
                break
            logits = self._run_step(kept, cache, token[:, None], mask, position, slot)
            position = position + 1
            slot = slot + 1
        sequences = torch.stack(tokens, dim=1)
        return sequences, (torch.stack(raw, dim=1) if options.output_logits else None)


def _warpers(options: DecodeOptions) -> list:
    """transformers' sampling warpers, in the order ``generate`` applies them."""
    if not options.do_sample:
        return []
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers = []
    if options.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(options.temperature))
    if options.top_k:
        warpers.append(TopKLogitsWarper(top_k=options.top_k))
    if options.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=options.top_p))
    return warpers


class _GraphedStep:
    """One kept cache's decode step captured as a CUDA graph (eager kernels, no inductor), then replayed.

    The graph reads its inputs from static buffers, so each call copies the new token, mask, position and
    slot into them and replays. The first call runs the step itself (on a side stream, as capture wants its
    kernels warmed: that is the real first step, its logits returned) and then captures it: capturing
    records without running, so the cache is written once per step. The cache is reset in place between
    calls, so the graph stays valid for every later call on it. A capture that fails leaves ``error`` set
    (the step already ran: the caller goes on eagerly). Without CUDA (tests), the step is re-run on the static
    buffers instead of a graph: what that checks is the buffers' handling.
    """

    def __init__(self, step, cache) -> None:
        self.step = step
        self.cache = cache
        self.inputs: list[torch.Tensor] | None = None
        self.output: torch.Tensor | None = None
        self.graph = None
        self.error: str | None = None

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.inputs is None:
            self.inputs = [value.clone() for value in inputs]
            return self._first_call()
        for buffer, value in zip(self.inputs, inputs):
            buffer.copy_(value)
        if self.graph is None:
            return self.step(self.cache, *self.inputs)
        self.graph.replay()
        return self.output

    def _first_call(self) -> torch.Tensor:
        device = self.inputs[0].device
        if device.type != "cuda":
            return self.step(self.cache, *self.inputs)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            logits = self.step(self.cache, *self.inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        try:
            graph = torch.cuda.CUDAGraph()
            # thread-local: another thread's CUDA work (a decode-ahead thread, a server's) does not break the capture
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.output = self.step(self.cache, *self.inputs)
            self.graph = graph
        except Exception as exc:  # noqa: BLE001 - a step that cannot be captured still decodes eagerly
            self.error = _one_line(exc)
        return logits


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a clock read next has timed it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _one_line(error: BaseException) -> str:
    """An exception as one short line for a warning and provenance: its root cause (torch wraps what went wrong in
    its own errors, with paragraphs of advice), the first line of its message."""
    while (cause := error.__cause__ or getattr(error, "inner_exception", None)) is not None:
        error = cause
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"
