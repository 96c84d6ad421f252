"""GAR's processor: questions and regions to a prompt, token ids and placeholder runs; ids back to text.

What the model needs for one prompt is a :class:`GARInputs`: the token ids,
one :class:`~garvideo.model.image_processing_gar.PreparedImage` per image
(uint8 tiles of the picture and of its visual-prompt map, made by the
:class:`~garvideo.model.image_processing_gar.GARImageProcessor`) and one
:class:`PlaceholderRun` per replayed region (where its placeholder tokens
sit, which image it comes from, its box). :class:`GARProcessor` combines the
image processor with the tokenizer and the chat template, as transformers'
processors do, and builds the four prompt kinds: the reference caption, the
reference question, GAR-Bench's exact prompt and the video prompt.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import InvalidInputError
from ..files import atomic_write_json, atomic_write_text
from .configuration_gar import CONFIG_NAME, read_checkpoint_json
from .errors import CheckpointError, TooManyRegionsError
from .image_processing_gar import (
    Box,
    GARImageProcessor,
    PreparedImage,
    TilingMode,
    load_region_masks,
    region_box,
)
from .images import ImageLike, MaskLike, load_rgb
from .prompts import (
    NO_PROMPT_TOKEN,
    VideoPromptTemplate,
    caption_text,
    check_user_text,
    find_prompt_indices,
    multi_region_text,
    prompt_token,
    question_text,
)

PROCESSOR_CONFIG_NAME = "processor_config.json"
CHAT_TEMPLATE_NAME = "chat_template.jinja"


# --------------------------------------------------------------------------- prepared inputs


@dataclass(frozen=True)
class PlaceholderRun:
    """A run of placeholder tokens that receives one region's RoI-aligned features."""

    start: int  # index of its first token in input_ids
    length: int  # tokens per tile
    image_index: int  # whose feature map is sampled
    prompt_index: int  # the region (k of <Promptk>)
    box: Box  # normalised (x_min, y_min, x_max, y_max) of the region on that image
    token_id: int


@dataclass(frozen=True)
class GARInputs:
    """Everything the model needs for one prompt."""

    input_ids: torch.Tensor  # int64 (L,)
    images: tuple[PreparedImage, ...]
    runs: tuple[PlaceholderRun, ...]
    text: str  # the templated prompt, one image token per image
    image_mean: tuple[float, ...]  # on the 0..255 scale
    image_std: tuple[float, ...]
    prompt_indices: tuple[int, ...]  # the regions in prompt order

    def with_boxes(self, boxes: Sequence[Box]) -> GARInputs:
        """A copy whose runs use ``boxes`` (one per run, in order) instead of the masks' own boxes.

        For experiments and parity checks, e.g. feeding the reference's stale boxes (quirk Q2).
        """
        if len(boxes) != len(self.runs):
            raise InvalidInputError(f"{len(boxes)} boxes were given for {len(self.runs)} placeholder runs")
        return replace(
            self, runs=tuple(replace(run, box=tuple(float(v) for v in box)) for run, box in zip(self.runs, boxes))
        )

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass(frozen=True)
class _RunSpec:
    token_id: int
    image_index: int
    prompt_index: int
    box: Box


# --------------------------------------------------------------------------- processor


class GARProcessor:
    """Builds :class:`GARInputs` from images, masks and questions, and decodes answers.

    It combines the :class:`GARImageProcessor` (tiles and visual-prompt maps) with the
    tokenizer and the chat template; ``patch_size`` and ``pooling_ratio`` say how many tokens
    one tile becomes.

    ``double_bos`` reproduces quirk Q6: the reference tokenises a prompt that
    the chat template already began with ``<|begin_of_text|>`` and the
    tokenizer adds a second one. The released numbers were made that way, so
    it is on by default; turn it off for the training-time single BOS.
    """

    def __init__(
        self,
        tokenizer,
        chat_template: str,
        image_processor: GARImageProcessor | None = None,
        patch_size: int = 14,
        pooling_ratio: int = 2,
        prompt_numbers: int = 5,
        crop_tokens_ids: Sequence[int] | None = None,
        double_bos: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.image_processor = image_processor = image_processor or GARImageProcessor()
        self.patch_size = int(patch_size)
        self.pooling_ratio = int(pooling_ratio)
        self.prompt_numbers = int(prompt_numbers)
        self.double_bos = bool(double_bos)
        tile_size = image_processor.tile_size
        side = tile_size // self.patch_size
        if side * self.patch_size != tile_size or side % self.pooling_ratio:
            raise CheckpointError(
                f"tile size {tile_size} is not a whole number of {self.patch_size}-pixel patches"
                f" pooled by {self.pooling_ratio}"
            )
        self.tokens_per_side = side // self.pooling_ratio
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image|>"
        self.image_token_id = self._token_id(self.image_token)
        self.bos_token_id = tokenizer.bos_token_id
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # A GAR tokenizer has <Prompt0..n-1> and <NO_Prompt>: refuse any other before it garbles prompts.
        for token in [prompt_token(k) for k in range(self.prompt_numbers)] + [NO_PROMPT_TOKEN]:
            self._token_id(token)
        self.crop_tokens_ids = [self.placeholder_token_id(k) for k in range(self.prompt_numbers)]
        if crop_tokens_ids is not None and list(crop_tokens_ids) != self.crop_tokens_ids:
            raise CheckpointError(
                f"the tokenizer's region placeholder tokens {self.crop_tokens_ids} differ from the model config's"
                f" crop_tokens_ids {list(crop_tokens_ids)}: tokenizer and weights do not belong together"
            )

    # ---------------------------------------------------------------- loading and saving

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, double_bos: bool = True) -> GARProcessor:
        """Load from a GAR checkpoint folder (tokenizer files, preprocessor and processor configs)."""
        from transformers import PreTrainedTokenizerFast

        folder = Path(folder)
        try:
            # Not AutoTokenizer: it would read config.json's auto_map and ask to run remote code.
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder), clean_up_tokenization_spaces=False)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot load the tokenizer of {str(folder)!r}: {exc}") from exc
        proc = read_checkpoint_json(folder / PROCESSOR_CONFIG_NAME, required=False)
        model = read_checkpoint_json(folder / CONFIG_NAME, required=False)
        # Newer exports write chat_template.jinja, older ones chat_template.json or a processor/tokenizer key.
        chat_template_file = folder / CHAT_TEMPLATE_NAME
        if chat_template_file.is_file():
            chat_template = chat_template_file.read_text(encoding="utf-8")
        else:
            chat_template = (
                read_checkpoint_json(folder / "chat_template.json", required=False).get("chat_template")
                or proc.get("chat_template")
                or getattr(tokenizer, "chat_template", None)
            )
        if not chat_template:
            raise CheckpointError(f"{str(folder)!r} has no chat template ({CHAT_TEMPLATE_NAME})")
        return cls(
            tokenizer,
            chat_template,
            image_processor=GARImageProcessor.from_pretrained(folder),
            patch_size=int(proc.get("patch_size", model.get("patch_size_h", 14))),
            pooling_ratio=int(
                proc.get("pooling_ratio", model.get("mllm_config", {}).get("projector_pooling_ratio", 2))
            ),
            prompt_numbers=int(model.get("prompt_numbers", 5)),
            crop_tokens_ids=model.get("crop_tokens_ids"),
            double_bos=double_bos,
        )

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write tokenizer, ``preprocessor_config.json``, ``processor_config.json`` and ``chat_template.jinja``.

        The files follow the released layout, so Perception-LM's own
        processor can read them too.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(folder))
        self.image_processor.save_pretrained(folder)
        atomic_write_json(
            folder / PROCESSOR_CONFIG_NAME,
            {
                "patch_size": self.patch_size,
                "pooling_ratio": self.pooling_ratio,
                "processor_class": "PerceptionLMProcessor",
            },
        )
        atomic_write_text(folder / CHAT_TEMPLATE_NAME, self.chat_template)

    # ---------------------------------------------------------------- tokens

    def _token_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if token_id is None or (unk is not None and token_id == unk and token != self.tokenizer.unk_token):
            raise CheckpointError(f"the tokenizer has no {token!r} token: it is not a GAR tokenizer")
        return int(token_id)

    def placeholder_token_id(self, slot: int) -> int:
        """Id of ``<|reserved_special_token_{slot+2}|>``: region ``slot`` on images, frame ``slot`` in videos."""
        name = f"<|reserved_special_token_{slot + 2}|>"
        token_id = self.tokenizer.convert_tokens_to_ids(name)
        if token_id is None or self.tokenizer.convert_ids_to_tokens(int(token_id)) != name:
            raise InvalidInputError(
                f"the tokenizer has no {name!r} token, which placeholder slot {slot} needs"
                " (in videos: one per frame; use fewer frames)"
            )
        return int(token_id)

    @property
    def tokens_per_tile(self) -> int:
        return self.tokens_per_side * self.tokens_per_side

    def decode(self, token_ids: Sequence[int], keep_regions: Iterable[int] = ()) -> str:
        """Text of generated ids up to the first EOS, stripped, without special tokens.

        Special tokens are dropped as the reference's inference does (``skip_special_tokens=True``
        in its demos and its caption benchmarks), so placeholder or reserved tokens a model emits
        never reach a caption, an overlay or a subtitle. ``keep_regions`` names regions ``k`` whose
        token ``<Promptk>`` (special in GAR's tokenizer) is kept, for callers that write region names
        back in their place.
        """
        ids = [int(t) for t in token_ids]
        if self.eos_token_id in ids:
            ids = ids[: ids.index(self.eos_token_id)]
        kept = {self._token_id(prompt_token(k)) for k in keep_regions}
        dropped = self._special_token_ids - kept
        return self.tokenizer.decode([t for t in ids if t not in dropped], skip_special_tokens=False).strip()

    @functools.cached_property
    def _special_token_ids(self) -> frozenset[int]:
        """Every id ``skip_special_tokens=True`` drops: the named special tokens and added tokens marked special."""
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        return frozenset(self.tokenizer.all_special_ids) | {int(i) for i, t in added.items() if t.special}

    def decode_reference(self, token_ids: Sequence[int]) -> str:
        """GAR-Bench's decoding verbatim, for exact-match scoring as the reference scored.

        All ids decoded with special tokens, stripped, then ``<|eot_id|>`` removed when the text ends
        with it (so whitespace the model put before EOS survives, unlike :meth:`decode`).
        """
        eos = self.tokenizer.convert_ids_to_tokens(self.eos_token_id)
        text = self.tokenizer.decode([int(t) for t in token_ids], skip_special_tokens=False).strip()
        return text.replace(eos, "") if text.endswith(eos) else text

    # ---------------------------------------------------------------- images

    def _prepare_image(
        self,
        image: np.ndarray,
        masks: Sequence[np.ndarray],
        prompt_indices: Sequence[int],
        mode: TilingMode | None = None,
    ) -> PreparedImage:
        # Pixels no region covers hold <NO_Prompt>'s index, which is prompt_numbers.
        return self.image_processor.preprocess(image, masks, prompt_indices, self.prompt_numbers, mode)

    def _check_region_count(self, count: int, names: Sequence[str] | None = None) -> None:
        if count > self.prompt_numbers:
            listed = f" ({', '.join(names)})" if names else ""
            raise TooManyRegionsError(
                f"{count} regions{listed} were given but one GAR prompt holds at most {self.prompt_numbers}:"
                f" ask about them in groups of {self.prompt_numbers} or fewer"
            )
        if count == 0:
            raise InvalidInputError("no region was given: pass at least one mask")

    def _check_question(
        self,
        question: str,
        count: int,
        prompt_indices: Sequence[int] | None,
        names: Sequence[str] | None,
    ) -> tuple[str, list[int]]:
        """What every question prompt checks before reading any image: the stripped question and the indices.

        The question is not empty and has no control tokens; there are 1..``prompt_numbers`` regions,
        each with its own index (default ``0..count-1``); the question names only given regions.
        """
        question = question_text(question)
        self._check_region_count(count, names)
        indices = list(range(count)) if prompt_indices is None else [int(k) for k in prompt_indices]
        if (
            len(indices) != count
            or len(set(indices)) != count
            or any(not 0 <= k < self.prompt_numbers for k in indices)
        ):
            raise InvalidInputError(
                f"prompt_indices must give one distinct index in 0..{self.prompt_numbers - 1} per region, got {indices}"
            )
        unknown = [k for k in find_prompt_indices(question) if k not in indices]
        if unknown:
            raise InvalidInputError(
                f"the question names {', '.join(prompt_token(k) for k in unknown)}, which is not among the given"
                f" regions ({', '.join(prompt_token(k) for k in indices)})"
            )
        return question, indices

    # ---------------------------------------------------------------- assembling a prompt

    def crop_run(self, token_id: int) -> str:
        return self.tokenizer.convert_ids_to_tokens(token_id) * self.tokens_per_tile

    def assemble(
        self,
        user_text: str,
        images: Sequence[PreparedImage],
        runs: Sequence[_RunSpec],
        prompt_indices: Sequence[int],
        double_bos: bool | None = None,
    ) -> GARInputs:
        """Chat-template the user turn (images first), expand image tokens, tokenise, locate the runs."""
        conversation = [
            {"role": "user", "content": [{"type": "image"} for _ in images] + [{"type": "text", "text": user_text}]}
        ]
        text = self.tokenizer.apply_chat_template(
            conversation, chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
        )
        pieces = text.split(self.image_token)
        if len(pieces) != len(images) + 1:
            raise InvalidInputError(
                f"the chat template produced {len(pieces) - 1} image tokens for {len(images)} images"
            )
        expanded = pieces[0]
        for image, piece in zip(images, pieces[1:]):
            expanded += self.image_token * (image.num_tiles * self.tokens_per_tile) + piece
        ids = list(self.tokenizer(expanded, add_special_tokens=False)["input_ids"])
        if double_bos if double_bos is not None else self.double_bos:
            ids = [self.bos_token_id] + ids
        input_ids = np.asarray(ids, dtype=np.int64)
        expected_image_tokens = sum(image.num_tiles for image in images) * self.tokens_per_tile
        if int((input_ids == self.image_token_id).sum()) != expected_image_tokens:
            raise InvalidInputError("the prompt text contains image tokens of its own: remove them")
        located = self._locate_runs(input_ids, runs)
        mean, std = self.image_processor.normalisation
        return GARInputs(
            input_ids=torch.from_numpy(input_ids),
            images=tuple(images),
            runs=tuple(located),
            text=text,
            image_mean=mean,
            image_std=std,
            prompt_indices=tuple(prompt_indices),
        )

    def _locate_runs(self, input_ids: np.ndarray, specs: Sequence[_RunSpec]) -> list[PlaceholderRun]:
        # Runs are matched to specs in text order; a template that drops or
        # repeats a {crop} is caught here rather than silently misaligned.
        n = self.tokens_per_tile
        placeholder_ids = sorted({spec.token_id for spec in specs})
        found: list[tuple[int, int]] = []
        if placeholder_ids:
            positions = np.flatnonzero(np.isin(input_ids, placeholder_ids))
            if positions.size:
                breaks = (
                    np.flatnonzero((np.diff(positions) != 1) | (input_ids[positions[1:]] != input_ids[positions[:-1]]))
                    + 1
                )
                for group in np.split(positions, breaks):
                    if group.size % n:
                        raise InvalidInputError(
                            f"a run of {group.size} placeholder tokens is not a multiple of {n}: the prompt text"
                            " must not contain placeholder tokens of its own"
                        )
                    found.extend((int(start), int(input_ids[start])) for start in group[::n])
        if len(found) != len(specs) or any(tok != spec.token_id for (_, tok), spec in zip(found, specs)):
            raise InvalidInputError(
                f"the prompt holds {len(found)} region placeholder runs where {len(specs)} were expected, in"
                " order: a custom template must use each {crop} exactly once"
            )
        return [
            PlaceholderRun(start, n, spec.image_index, spec.prompt_index, spec.box, spec.token_id)
            for (start, _), spec in zip(found, specs)
        ]

    # ---------------------------------------------------------------- reference prompts (images)

    def prepare_caption(self, image: ImageLike, mask: MaskLike, prompt_index: int = 1) -> GARInputs:
        """The reference single-region caption (``Describe this masked region in detail.``).

        The reference uses ``<Prompt1>`` by default (quirk Q9), so does this.
        """
        if not 0 <= prompt_index < self.prompt_numbers:
            raise InvalidInputError(f"prompt_index must be in 0..{self.prompt_numbers - 1}, got {prompt_index}")
        rgb = load_rgb(image)
        (region,) = load_region_masks([mask], (rgb.shape[1], rgb.shape[0]))
        prepared = self._prepare_image(rgb, [region], [prompt_index])
        token_id = self.crop_tokens_ids[prompt_index]
        text = caption_text(prompt_index, self.crop_run(token_id))
        spec = _RunSpec(token_id, 0, prompt_index, region_box(region))
        return self.assemble(text, [prepared], [spec], [prompt_index])

    def prepare_question(
        self,
        image: ImageLike,
        masks: Sequence[MaskLike],
        question: str,
        prompt_indices: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
    ) -> GARInputs:
        """The reference several-regions prompt for a question written with ``<Promptk>`` tokens.

        ``masks[i]`` belongs to ``<Prompt{prompt_indices[i]}>`` (default: ``<Prompti>``). Every
        region is listed and replayed, in that order, whether or not the question names it; the
        question may name only given regions. Each region's box is its own mask's box (the
        reference's stale-box quirk Q2 is not reproduced).
        """
        question, indices = self._check_question(question, len(masks), prompt_indices, names)
        rgb = load_rgb(image)
        regions = load_region_masks(masks, (rgb.shape[1], rgb.shape[0]), names)
        prepared = self._prepare_image(rgb, regions, indices)
        token_ids = [self.crop_tokens_ids[k] for k in indices]
        text = multi_region_text(indices, [self.crop_run(t) for t in token_ids], question)
        specs = [_RunSpec(t, 0, k, region_box(m)) for t, k, m in zip(token_ids, indices, regions)]
        return self.assemble(text, [prepared], specs, indices)

    def prepare_reference_question(
        self,
        image: ImageLike,
        masks: Sequence[MaskLike],
        question: str,
        extra_regions: Literal["error", "reference"] = "error",
        boxes: Literal["own", "reference"] = "own",
    ) -> GARInputs:
        """Exactly the reference ``MultiRegionDataset`` prompt (GAR-Bench).

        The regions are the distinct ``<Promptk>`` tokens of ``question`` (ascending, quirk Q3) and
        ``masks[k]`` belongs to ``<Promptk>``. Some GAR-Bench items name more than
        ``prompt_numbers`` regions; the reference then lists them but neither draws nor replays
        the extra ones (their placeholder tokens stay plain embeddings). ``extra_regions="reference"``
        reproduces that; the default refuses.

        ``boxes="own"`` (default) replays every region from its own mask's box. ``boxes="reference"``
        reproduces the reference's stale loop variable (quirk Q2): every region is replayed from
        the box of the LAST mask given (``masks[-1]``, even when that region is beyond
        ``prompt_numbers`` and not drawn), which is how the published GAR-Bench-VQA figures were made.
        """
        found = find_prompt_indices(question)
        if len(found) != len(masks) or found != list(range(len(masks))):
            raise InvalidInputError(
                f"the question names {', '.join(prompt_token(k) for k in found) or 'no region'} but"
                f" {len(masks)} masks were given: masks[k] belongs to <Promptk>"
            )
        if extra_regions == "error":
            self._check_region_count(len(found))
        elif extra_regions != "reference":
            raise InvalidInputError(f"extra_regions must be 'error' or 'reference', got {extra_regions!r}")
        if boxes not in ("own", "reference"):
            raise InvalidInputError(f"boxes must be 'own' or 'reference', got {boxes!r}")
        check_user_text(question)
        rgb = load_rgb(image)
        regions = load_region_masks(masks, (rgb.shape[1], rgb.shape[0]))
        drawn = [k for k in found if k < self.prompt_numbers]
        prepared = self._prepare_image(rgb, [regions[k] for k in drawn], drawn)
        token_ids = [self.placeholder_token_id(k) for k in found]
        text = multi_region_text(found, [self.crop_run(t) for t in token_ids], question)
        stale = region_box(regions[-1]) if boxes == "reference" else None
        specs = [_RunSpec(token_ids[k], 0, k, stale or region_box(regions[k])) for k in drawn]
        return self.assemble(text, [prepared], specs, drawn)

    # ---------------------------------------------------------------- video

    def prepare_video(
        self,
        frames: Sequence[ImageLike],
        region_masks: Sequence[Sequence[MaskLike | None]],
        question: str,
        prompt_indices: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
        template: VideoPromptTemplate | None = None,
        tiling: TilingMode = "vanilla",
        times: Sequence[float | None] | None = None,
    ) -> GARInputs:
        """One prompt over several frames of a video, for up to ``prompt_numbers`` regions.

        ``region_masks[r][f]`` is region ``r``'s mask on frame ``f`` (None or empty: not visible
        there). Each frame is its own image (``vanilla``: one tile; ``thumb+tile``: thumbnail and
        grid) with its own visual-prompt map holding every region visible on it (earlier regions
        win where they overlap). Every region visible on a frame gets its own placeholder run
        there, written ``<|reserved_special_token_{2+f}|>`` x tokens-per-tile, whose tokens are
        replaced by that region's RoI-aligned features from that frame; a region not visible on a
        frame gets no run, and the template says so (see :class:`VideoPromptTemplate`).
        """
        template = template or VideoPromptTemplate()
        count = len(region_masks)
        question, indices = self._check_question(question, count, prompt_indices, names)
        if not frames:
            raise InvalidInputError("no frames were given")
        labels = list(names) if names is not None else [prompt_token(k) for k in indices]
        for label, masks in zip(labels, region_masks):
            if len(masks) != len(frames):
                raise InvalidInputError(
                    f"region {label!r} has {len(masks)} masks for {len(frames)} frames: give one per frame (None where"
                    " it is not visible)"
                )
        if times is not None:
            if isinstance(times, (str, bytes)) or len(times) != len(frames):
                raise InvalidInputError(f"give one frame time per frame ({len(frames)}), in seconds or None")
            times = [_frame_time(t, f) for f, t in enumerate(times)]

        prepared: list[PreparedImage] = []
        crops: list[list[str | None]] = []
        specs: list[_RunSpec] = []
        visible_anywhere = [False] * count
        for f, frame in enumerate(frames):
            rgb = load_rgb(frame, what=f"frame {f}")
            size = (rgb.shape[1], rgb.shape[0])
            frame_masks = []
            present: list[tuple[int, np.ndarray]] = []
            for r in range(count):
                mask = region_masks[r][f]
                if mask is None:
                    frame_masks.append(None)
                    continue
                (array,) = load_region_masks([mask], size, [labels[r]], allow_empty=True, where=f" on frame {f}")
                frame_masks.append(array if array.any() else None)
                if array.any():
                    present.append((r, array))
                    visible_anywhere[r] = True
            prepared.append(
                self._prepare_image(rgb, [m for _, m in present], [indices[r] for r, _ in present], mode=tiling)
            )
            token_id = self.placeholder_token_id(f)
            run = self.crop_run(token_id)
            crops.append([run if m is not None else None for m in frame_masks])
            specs.extend(_RunSpec(token_id, f, indices[r], region_box(m)) for r, m in present)
        never = [labels[r] for r in range(count) if not visible_anywhere[r]]
        if never:
            raise InvalidInputError(
                f"region {', '.join(repr(n) for n in never)} is not visible on any of the {len(frames)} frames:"
                " pick frames where it is visible"
            )
        text = template.render(indices, crops, question, times)
        return self.assemble(text, prepared, specs, indices)


def _frame_time(value: object, frame: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    raise InvalidInputError(f"the time of frame {frame} is {value!r}: give seconds from the video's start, or None")
