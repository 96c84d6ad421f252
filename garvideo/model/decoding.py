"""A lean decode loop over transformers' ``StaticCache``: the language model's own forward, one token per step.

transformers' ``generate`` spends most of a small model's decode step in Python plumbing and KV-cache
concatenation (bench/RESULTS.md). This loop keeps only what a step needs: one forward of the language
model (transformers' own module) for the new token over a preallocated ``StaticCache``, the LM head on
that position, and the choice of the next token. The prompt itself runs as ``generate`` runs it
(its keys and values are then copied into the static cache). With ``compile=True`` that step goes through
``torch.compile`` (``mode="reduce-overhead"`` on CUDA, i.e. CUDA graphs); the compiled step and one
cache per batch size are kept (the cache only grows), so the first call warms them
and later calls and videos replay them; a longer prompt or another batch size costs one more
compilation. The prefill runs eagerly.

What it reproduces of ``generate`` (same prompt layout as :meth:`GARModel.generate_from_embeddings`:
left padding, positions counted over real tokens): greedy tokens (tested equal in float32), EOS
handling (finished rows continue with the pad token), ``min_new_tokens``, raw per-step logits, and
sampling with transformers' own temperature, top-k and top-p warpers applied in ``generate``'s order
and ``torch.multinomial`` on the softmax, so a seeded run draws ``generate``'s tokens. Settings it
does not implement (a repetition penalty: ``generate``'s handling of it depends on the transformers
version) are refused by :func:`supports`; callers then use ``generate``.
"""

from __future__ import annotations

import inspect
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


class StaticDecoder:
    """Greedy or sampled decoding of left-padded prompt embeddings with a static KV cache.

    ``mllm`` is transformers' ``PerceptionLMForConditionalGeneration`` (its ``model.language_model``
    and ``lm_head`` are used as they are). One decoder belongs to one loaded model and is reused for
    every call; it is not thread-safe.
    """

    def __init__(
        self, mllm: nn.Module, compile: bool = False, compile_options: Mapping[str, Any] | None = None
    ) -> None:
        self.mllm = mllm
        self.compile = bool(compile)
        self.compile_options = dict(compile_options or {})  # torch.compile keywords over the defaults below
        self.language_model = mllm.model.language_model
        self.lm_head = mllm.lm_head
        parameters = inspect.signature(self.language_model.forward).parameters
        # transformers renamed past_key_values to cache (and dropped cache_position) during 5.x.
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._takes_cache_position = "cache_position" in parameters
        self._caches: OrderedDict[tuple, tuple[int, Any]] = OrderedDict()  # key -> (slots, StaticCache)
        self._compiled = None

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

    def _step_function(self, device: torch.device):
        if not self.compile:
            return self._step
        if self._compiled is None:
            options = {
                "mode": "reduce-overhead" if device.type == "cuda" else None,  # CUDA graphs exist only on CUDA
                "dynamic": False,  # few distinct shapes (see _cache), each compiled for its own sizes
                **self.compile_options,
            }
            self._compiled = torch.compile(self._step, **options)
        return self._compiled

    def _cache(self, batch: int, needed: int, device: torch.device, dtype: torch.dtype):
        """A reset cache of at least ``needed`` slots for ``batch`` rows, reused from earlier calls where possible.

        Eager: a new cache of exactly ``needed`` slots, not kept (unused slots would only cost attention,
        and a kept cache would hold its memory between calls). Compiled: a compiled step is specialised
        to its cache, so one cache per batch size is kept and only ever grows (to a multiple of
        :data:`COMPILED_CACHE_STEP` slots): a prompt only costs a compilation when it is longer than
        every earlier one.
        """
        from transformers import StaticCache

        if not self.compile:
            return needed, StaticCache(config=self.language_model.config, max_cache_len=needed)
        key = (batch, device, dtype)
        kept = self._caches.pop(key, None)
        if kept is not None and kept[0] >= needed:
            length, cache = kept
            cache.reset()
        else:
            while len(self._caches) >= MAX_KEPT_CACHES:
                self._caches.popitem(last=False)
            length = -(-needed // COMPILED_CACHE_STEP) * COMPILED_CACHE_STEP
            cache = StaticCache(config=self.language_model.config, max_cache_len=length)
        self._caches[key] = (length, cache)
        return length, cache

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
        length, cache = self._cache(batch, prompt_length + options.max_new_tokens, device, embeds.dtype)
        positions = (attention.long().cumsum(-1) - 1).clamp(min=0)
        logits = self._prefill(cache, embeds, attention, positions)
        mask = torch.ones(batch, length, dtype=torch.long, device=device)
        mask[:, :prompt_length] = attention
        if getattr(self.language_model.config, "_attn_implementation", None) == "sdpa":
            mask = mask.bool()[:, None, None, :]  # (B, 1, query, slots): completed per step in _step
        step = self._step_function(device)
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
            if self.compile and device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()
            logits = step(cache, token[:, None], mask, position, slot)
            if self.compile:
                logits = logits.clone()  # a CUDA graph's output is overwritten by its next replay
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
