"""What one training step does to GAR: LoRA on the language model, the loss on the answers' tokens.

The adapter is PEFT's LoRA on the language model's linear layers (``target_modules``); the mask patch
embedding is trained outright (PEFT's ``modules_to_save``); the vision tower stays frozen unless
``train_vision`` (then its blocks get LoRA too and the projector is trained outright). Trained weights
are float32 (PEFT keeps LoRA weights so, the outright-trained copies are cast) while a bfloat16 model
computes under autocast: float32 master weights, bfloat16 arithmetic.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .examples import IGNORE, TrainingInput

#: The vision tower's block layers that get LoRA with ``train_vision`` (timm's names).
VISION_TARGETS = ("qkv", "proj", "fc1", "fc2")


def add_lora(gar, config: TrainConfig):
    """Put a fresh LoRA adapter on ``gar``'s model, in place, seeded; returns PEFT's wrapper (to save it)."""
    from peft import LoraConfig, get_peft_model

    language = "|".join(re.escape(name) for name in config.target_modules)
    pattern = rf"mllm\.model\.language_model\..*\.({language})"
    outright = ["mask_patch_embedding"]
    if config.train_vision:
        vision = "|".join(VISION_TARGETS)
        pattern = rf"({pattern})|(mllm\.model\.vision_tower\..*\.blocks\.\d+\..*\.({vision}))"
        outright.append("multi_modal_projector")
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.lora_dropout,
        target_modules=pattern,
        modules_to_save=outright,
    )
    torch.manual_seed(config.seed)
    peft_model = get_peft_model(gar.model, lora)
    for param in trainable_parameters(gar.model).values():
        param.data = param.data.float()  # master weights in float32, whatever the model computes in
    return peft_model


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The parameters training changes, by name, in a fixed order (the optimizer's and the checkpoints')."""
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def enable_gradient_checkpointing(gar, vision: bool = True) -> None:
    """Recompute activations in the backward pass instead of keeping them (language model, and vision tower)."""
    language = gar.model.mllm.model.language_model
    if hasattr(language, "activation_checkpointing_enable"):  # transformers >= 5.2x; the older name is deprecated
        language.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        language.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # transformers then makes the token embeddings' output require grad, for adapters behind frozen embeddings;
    # here the prompt's embeddings are written into in place (image features, replays), which that forbids, and
    # non-reentrant checkpointing needs no such input.
    if getattr(language, "_require_grads_hook", None) is not None or getattr(language, "_require_grads_hooks", None):
        language.disable_input_require_grads()
    if vision:
        gar.model.mllm.model.vision_tower.timm_model.set_grad_checkpointing(True)


@contextlib.contextmanager
def computing(gar) -> Iterator[None]:
    """bfloat16 (or float16) arithmetic under autocast when the model holds such weights; float32 as is."""
    model = gar.model
    dtype = model.mllm.get_input_embeddings().weight.dtype
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(model.device.type, dtype=dtype):
        yield


def batch_loss(gar, items: Sequence[TrainingInput]) -> tuple[torch.Tensor, int]:
    """The summed cross-entropy of the answers' tokens of a micro-batch, and how many tokens it sums over.

    Images go through the vision tower (mask embeddings added), image features and region replays are
    written into the prompts as for generation (:meth:`GARModel.embed_prompt`); the sequences are
    right-padded into one batch, and the language model head runs only where a label is.
    """
    model = gar.model
    features = model.image_features([item.inputs for item in items], gar.vision_batch_size)
    embeds = [model.embed_prompt(item.inputs, f, gar.box_mode).inputs_embeds for item, f in zip(items, features)]
    longest = max(int(e.shape[0]) for e in embeds)
    hidden_size = int(embeds[0].shape[-1])
    batch = embeds[0].new_zeros(len(items), longest, hidden_size)
    attention = torch.zeros(len(items), longest, dtype=torch.long, device=model.device)
    labels = torch.full((len(items), longest), IGNORE, dtype=torch.long, device=model.device)
    for row, (item, embed) in enumerate(zip(items, embeds)):
        length = int(embed.shape[0])
        batch[row, :length] = embed
        attention[row, :length] = 1
        labels[row, :length] = item.labels.to(model.device)
    hidden = model.mllm.model.language_model(
        inputs_embeds=batch, attention_mask=attention, use_cache=False
    ).last_hidden_state
    targets = labels[:, 1:]  # position t predicts token t + 1
    picked = targets != IGNORE
    logits = model.mllm.lm_head(hidden[:, :-1][picked])
    loss = F.cross_entropy(logits.float(), targets[picked], reduction="sum")
    return loss, int(picked.sum())
