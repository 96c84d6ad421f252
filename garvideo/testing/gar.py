"""A tiny, randomly initialised GAR checkpoint in the released layout, built offline in about a second.

>>> from garvideo.testing.gar import build_tiny_gar_checkpoint
>>> folder = build_tiny_gar_checkpoint(tmp_path / "gar-tiny", seed=0)
>>> gar = garvideo.model.GAR.from_pretrained(folder)

The folder has what a released GAR checkpoint has: ``config.json``
(``model_type: "GAR"``, ``mllm_config``, ``prompt_numbers``,
``crop_tokens_ids``, ...), ``model.safetensors`` with the released key names,
tokenizer files with Llama-3/Perception-LM special tokens in their usual
order plus GAR's ``<Prompt0..4>`` and ``<NO_Prompt>``, the image processor
and processor configs, and ``chat_template.jinja``. The tokenizer is a small
byte-level BPE trained on a few sentences. Weights are drawn from a seeded
generator at scales that make logits clearly separated (not transformers'
tiny init), and the mask patch embedding is non-zero (the official training
init is zero, which would hide a missing mask path).

:func:`random_gar` builds a GAR of any shape (GAR-1B's included) in memory, for benchmarks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

# Llama 3's pre-tokenizer split pattern (contractions, words, 1-3 digit groups, punctuation, spaces).
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_SENTENCES = [
    "There are some objects I am curious about.",
    "Describe this masked region in detail.",
    "The brown dog runs across the green field and catches a red ball.",
    "A person on the left holds a blue umbrella while walking in the rain.",
    "What is the relationship between these objects? Answer with the correct option's letter directly.",
    "Question: which one is in the mirror? Options: A. B. C. D.",
    "Frame 1: the car moves to the right. Frame 2: it stops near the white house.",
    "You are a helpful language and vision assistant. You are able to understand the visual content that the"
    " user provides, and assist the user with a variety of tasks using natural language.",
    "0123456789 colours, textures, materials, shapes: round, square, wooden, metallic, striped.",
]

_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that the"
    " user provides, and assist the user with a variety of tasks using natural language."
)

# Perception-LM's chat format: BOS, a system turn (default text unless given),
# then each turn's header, its images, videos and trimmed text, and <|eot_id|>.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_text = messages[0]['content'] | trim %}{%- set turns = messages[1:] %}"
    "{%- else %}"
    "{%- set system_text = '" + _SYSTEM_PROMPT + "' %}{%- set turns = messages %}"
    "{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_text + '<|eot_id|>' }}"
    "{%- for turn in turns %}"
    "{{- '<|start_header_id|>' + turn['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if turn['content'] is string %}{{- turn['content'] | trim }}"
    "{%- else %}"
    "{%- for part in turn['content'] %}{%- if part['type'] == 'image' %}{{- '<|image|>' }}{%- endif %}{%- endfor %}"
    "{%- for part in turn['content'] %}{%- if part['type'] == 'video' %}{{- '<|video|>' }}{%- endif %}{%- endfor %}"
    "{%- for part in turn['content'] %}{%- if part['type'] == 'text' %}{{- part['text'] | trim }}{%- endif %}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

#: The size keys of :func:`build_tiny_gar_checkpoint` and :func:`random_gar`, with their defaults.
DEFAULT_SIZES: Mapping[str, int] = MappingProxyType(
    dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vision_width=64,
        vision_depth=2,
        vision_heads=4,
        tile_size=448,
        patch_size=14,
        pooling_ratio=2,
        max_num_tiles=4,
        prompt_numbers=5,
        reserved_tokens=64,
        bpe_vocab_size=320,
    )
)


def _special_tokens(reserved: int) -> list[str]:
    # Llama 3's order, with Perception-LM's <|image|>/<|video|> in reserved slots 0 and 1,
    # so the region placeholders <|reserved_special_token_2..6|> are not consecutive ids.
    named = {
        0: "<|begin_of_text|>",
        1: "<|end_of_text|>",
        2: "<|image|>",
        3: "<|video|>",
        6: "<|start_header_id|>",
        7: "<|end_header_id|>",
        9: "<|eot_id|>",
    }
    tokens, next_reserved = [], 2
    for slot in range(reserved + 6):
        if slot in named:
            tokens.append(named[slot])
        else:
            tokens.append(f"<|reserved_special_token_{next_reserved}|>")
            next_reserved += 1
    return tokens


def _tokenizer(bpe_vocab_size: int, reserved: int, prompt_numbers: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    core.train_from_iterator(_SENTENCES, trainer)
    specials = _special_tokens(reserved)
    core.add_special_tokens(specials)
    core.add_special_tokens([f"<Prompt{k}>" for k in range(prompt_numbers)] + ["<NO_Prompt>"])
    bos = "<|begin_of_text|>"
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos,
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
        extra_special_tokens={"image_token": "<|image|>", "video_token": "<|video|>"},
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )


def _config_dict(sizes: dict[str, Any], tokenizer) -> dict[str, Any]:
    grid = sizes["tile_size"] // sizes["patch_size"]
    crop = [
        tokenizer.convert_tokens_to_ids(f"<|reserved_special_token_{k + 2}|>") for k in range(sizes["prompt_numbers"])
    ]
    text = dict(
        model_type="llama",
        vocab_size=len(tokenizer),
        hidden_size=sizes["hidden_size"],
        intermediate_size=sizes["intermediate_size"],
        num_hidden_layers=sizes["num_hidden_layers"],
        num_attention_heads=sizes["num_attention_heads"],
        num_key_value_heads=sizes["num_key_value_heads"],
        head_dim=sizes["hidden_size"] // sizes["num_attention_heads"],
        hidden_act="silu",
        rms_norm_eps=1e-5,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
    )
    vision = dict(
        model_type="timm_wrapper",
        architecture="vit_pe_core_large_patch14_336",
        do_pooling=False,
        num_classes=0,
        model_args=dict(
            embed_dim=sizes["vision_width"],
            depth=sizes["vision_depth"],
            num_heads=sizes["vision_heads"],
            patch_size=sizes["patch_size"],
            img_size=[sizes["tile_size"], sizes["tile_size"]],
            ref_feat_shape=[grid, grid],
            global_pool="",
            use_post_transformer_norm=False,
            init_values=0.1,
        ),
    )
    return {
        "architectures": ["GARModel"],
        "model_type": "GAR",
        "mllm_config": {
            "model_type": "perception_lm",
            "text_config": text,
            "vision_config": vision,
            "vision_use_cls_token": True,
            "projector_pooling_ratio": sizes["pooling_ratio"],
            "image_token_id": tokenizer.convert_tokens_to_ids("<|image|>"),
            "video_token_id": tokenizer.convert_tokens_to_ids("<|video|>"),
            "tie_word_embeddings": False,
        },
        "prompt_numbers": sizes["prompt_numbers"],
        "crop_tokens_ids": crop,
        "kernel_size": [sizes["patch_size"], sizes["patch_size"]],
        "mask_path_embedding_out_channels": sizes["vision_width"],
    }


def _redraw(model: torch.nn.Module, seed: int) -> None:
    # Scales that give clearly separated logits on a tiny model (transformers'
    # 0.02 init makes every token nearly tied, and greedy ids then flip on noise).
    generator = torch.Generator().manual_seed(seed)
    hidden = model.config.text_config.hidden_size
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if name.endswith("embed_tokens.weight"):
                value = noise
            elif name.endswith("lm_head.weight"):
                value = noise * (4.0 / hidden) ** 0.5
            elif "pos_embed" in name or "cls_token" in name:
                value = noise * 0.5
            elif "gamma" in name:
                value = 0.1 + 0.05 * noise
            elif param.ndim == 1 and "norm" in name and name.endswith("weight"):
                value = 1.0 + 0.2 * noise
            elif param.ndim == 1:
                value = 0.1 * noise
            else:
                fan_in = param[0].numel()
                value = noise / fan_in**0.5
            param.copy_(value.to(param.dtype))


def _merged_sizes(sizes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(sizes) - set(DEFAULT_SIZES)
    if unknown:
        raise TypeError(f"unknown size overrides: {sorted(unknown)}; known: {sorted(DEFAULT_SIZES)}")
    return {**DEFAULT_SIZES, **sizes}


def _processor(sizes: Mapping[str, Any], tokenizer, config):
    from ..model.image_processing_gar import GARImageProcessor
    from ..model.processing_gar import GARProcessor

    return GARProcessor(
        tokenizer,
        CHAT_TEMPLATE,
        image_processor=GARImageProcessor(tile_size=sizes["tile_size"], max_num_tiles=sizes["max_num_tiles"]),
        patch_size=sizes["patch_size"],
        pooling_ratio=sizes["pooling_ratio"],
        prompt_numbers=sizes["prompt_numbers"],
        crop_tokens_ids=config.crop_tokens_ids,
    )


def build_tiny_gar_checkpoint(path: str | os.PathLike, seed: int = 0, **sizes: Any) -> Path:
    """Write a tiny random GAR checkpoint to ``path`` (created if needed) and return it.

    Size overrides (defaults in brackets): ``hidden_size`` [64], ``intermediate_size`` [128],
    ``num_hidden_layers`` [2], ``num_attention_heads`` [4], ``num_key_value_heads`` [2],
    ``vision_width`` [64], ``vision_depth`` [2], ``vision_heads`` [4], ``tile_size`` [448],
    ``patch_size`` [14], ``pooling_ratio`` [2], ``max_num_tiles`` [4], ``prompt_numbers`` [5],
    ``reserved_tokens`` [64, placeholder tokens available: videos use one per frame],
    ``bpe_vocab_size`` [320]. A smaller ``tile_size`` (e.g. 112) makes tests faster.
    """
    merged = _merged_sizes(sizes)
    from ..model.configuration_gar import GARConfig
    from ..model.modeling_gar import GARModel

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(merged["bpe_vocab_size"], merged["reserved_tokens"], merged["prompt_numbers"])
    config = GARConfig.from_dict(_config_dict(merged, tokenizer))
    model = GARModel(config)
    _redraw(model, seed)  # every parameter, from its own seeded generator
    model.save_pretrained(folder)
    _processor(merged, tokenizer, config).save_pretrained(folder)
    return folder


def random_gar(
    text: Mapping[str, Any] | None = None,
    vision: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    **sizes: Any,
):
    """A :class:`~garvideo.model.GAR` of any architecture with random weights, built in memory.

    For benchmarks of shapes too large to write as a checkpoint (GAR-1B would be 6 GB of float32):
    nothing is written. ``sizes`` are :func:`build_tiny_gar_checkpoint`'s; ``text`` then overrides
    the language model's config (e.g. ``vocab_size``, ``head_dim``) and ``vision`` the vision
    tower's ``model_args`` (``embed_dim``, ``depth``, ``num_heads``) directly. The tokenizer is the
    tiny one (ids it lacks decode to nothing). The weights are transformers' and timm's own
    initialisation, made on ``device``: the text is noise, the timings are the architecture's.
    """
    merged = _merged_sizes(sizes)
    from ..devices import resolve_device, resolve_dtype
    from ..model.api import GAR
    from ..model.configuration_gar import GARConfig
    from ..model.modeling_gar import GARModel

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    tokenizer = _tokenizer(merged["bpe_vocab_size"], merged["reserved_tokens"], merged["prompt_numbers"])
    layout = _config_dict(merged, tokenizer)
    layout["mllm_config"]["text_config"].update(text or {})
    layout["mllm_config"]["vision_config"]["model_args"].update(vision or {})
    layout["mask_path_embedding_out_channels"] = layout["mllm_config"]["vision_config"]["model_args"]["embed_dim"]
    config = GARConfig.from_dict(layout)
    with torch_device:
        model = GARModel(config)
    model = model.to(torch_dtype).eval()
    return GAR(model, _processor(merged, tokenizer, config), model_id="random weights, built in memory")
