"""A tiny random Grounding DINO checkpoint, its BERT WordPiece tokenizer written offline.

>>> from garvideo.testing.grounding_dino import build_tiny_grounding_dino_checkpoint
>>> folder = build_tiny_grounding_dino_checkpoint(tmp_path / "gdino-tiny", seed=0)
>>> detector = garvideo.grounding.GroundingDetector.from_pretrained(folder)

The folder has what ``IDEA-Research/grounding-dino-tiny`` has: ``config.json``
(``GroundingDinoForObjectDetection`` with a Swin backbone and a BERT text
encoder, shrunk to about 0.2 M parameters), ``model.safetensors``, the
tokenizer and the processor configs. The tokenizer is an uncased BERT
WordPiece tokenizer whose vocabulary holds every lower-case letter and digit
(so any phrase tokenizes) and keeps ``[CLS]``, ``[SEP]``, ``.`` and ``?`` at
bert-base-uncased's ids: Grounding DINO finds phrase boundaries by those ids.

Random weights find nothing real, but where their boxes lie is known by
construction: every box-regression head (the encoder's proposal head, the
decoder's refinement heads and the output heads) is set to output zero, so
each box the model returns is one of its encoder's proposals unchanged: a
cell of one of its four feature maps (strides 8, 16, 32 and 64 of the resized
picture), centred on the cell and ``0.05 * 2**level`` of the picture wide and
high. Tests use that to check boxes in pixels of the original frame without
trusting garvideo's own conversion. The decoder's last layer norm is scaled
down (``score_scale``) so that scores spread over (0, 1) instead of all being
about 1.

(A model whose queries output chosen boxes would need ``two_stage=False``,
whose learned reference boxes would do it; transformers 5.24 cannot load such
a checkpoint: its ``_init_weights`` asks the ``reference_points`` embedding
for a bias.)
"""

from __future__ import annotations

import os
from pathlib import Path

# bert-base-uncased's ids of the tokens Grounding DINO treats as phrase delimiters
# (transformers keeps them as the constant SPECIAL_TOKENS), and of [PAD], [UNK], [MASK].
_FIXED_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
_VOCAB_SIZE = 1100
_WORDS = (
    "a an the of on in with and at near to left right red blue green yellow orange white black brown striped "
    "car dog cat person ball square circle ellipse object thing shape moving small big , ! ' -"
).split()
_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"

#: The text encoder's position limit: a phrase of more tokens is too long (tests use it).
TINY_MAX_TOKENS = 32


def tiny_vocabulary() -> list[str]:
    """The WordPiece vocabulary, index = token id."""
    vocab = [f"[unused{i}]" for i in range(_VOCAB_SIZE)]
    for token, index in _FIXED_IDS.items():
        vocab[index] = token
    free = (i for i in range(1, _VOCAB_SIZE) if i not in _FIXED_IDS.values())
    for token, index in zip([*_WORDS, *_CHARACTERS, *(f"##{c}" for c in _CHARACTERS)], free):
        vocab[index] = token
    return vocab


def tiny_grounding_dino_config(num_queries: int = 20):
    """A ``GroundingDinoConfig`` for a tiny model (d_model 32: its GroupNorms need a multiple of 32)."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        image_size=96,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_indices=[2, 3, 4],
    )
    text = BertConfig(
        vocab_size=_VOCAB_SIZE,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=TINY_MAX_TOKENS,
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=num_queries,
        max_text_len=TINY_MAX_TOKENS,
    )


def grounding_dino_processor(shortest_edge: int = 96, longest_edge: int = 128):
    """A ``GroundingDinoProcessor``: the tiny tokenizer and frames resized to ``shortest_edge`` (at most ``longest_edge``)."""
    from transformers import BertTokenizer, GroundingDinoImageProcessor, GroundingDinoProcessor

    tokenizer = BertTokenizer(vocab={token: index for index, token in enumerate(tiny_vocabulary())})
    images = GroundingDinoImageProcessor(size={"shortest_edge": shortest_edge, "longest_edge": longest_edge})
    return GroundingDinoProcessor(images, tokenizer)


def build_tiny_grounding_dino_checkpoint(
    path: str | os.PathLike[str],
    seed: int = 0,
    score_scale: float = 0.1,
) -> Path:
    """Save a tiny random Grounding DINO and its processor to ``path``; nothing is downloaded.

    Every box head outputs zero (see the module docstring); ``score_scale``
    shrinks the decoder's last layer norm so that random scores spread over
    (0, 1). The same ``seed`` gives the same weights.
    """
    import torch
    from transformers import GroundingDinoForObjectDetection

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = tiny_grounding_dino_config()
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    with torch.no_grad():
        model.model.decoder.layer_norm.weight.mul_(score_scale)
        # transformers' own init zeroes these too; setting them here keeps the construction explicit.
        for head in [*model.bbox_embed, *model.model.decoder.bbox_embed, model.model.encoder_output_bbox_embed]:
            head.layers[-1].weight.zero_()
            head.layers[-1].bias.zero_()
    model.save_pretrained(path)
    grounding_dino_processor().save_pretrained(path)
    return path


def random_grounding_dino(device=None, seed: int = 0):
    """A :class:`~garvideo.grounding.GroundingDetector` of ``IDEA-Research/grounding-dino-tiny``'s architecture with
    random weights, built in memory (nothing downloaded or written): for benchmarks.

    ``GroundingDinoConfig``'s defaults are that checkpoint's shapes (a Swin-T backbone, a BERT-base text encoder,
    6 + 6 deformable encoder and decoder layers of width 256, 900 queries); its processor resizes frames to
    800 px on the short side, 1333 at most on the long one, as the checkpoint's does. The tokenizer is this
    module's tiny one (a phrase is a handful of tokens either way). The timings are the architecture's.
    """
    import torch
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    from ..devices import resolve_device
    from ..grounding import GroundingDetector

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(GroundingDinoConfig()).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    model.to(resolve_device(device))
    return GroundingDetector(model, grounding_dino_processor(800, 1333), model_id="grounding-dino-tiny shapes")
