"""Grounding DINO through transformers: a phrase and an RGB picture in, scored boxes out.

Any checkpoint of transformers' ``GroundingDinoForObjectDetection`` (the default
``IDEA-Research/grounding-dino-tiny``, ``grounding-dino-base``) or
``MMGroundingDinoForObjectDetection`` loads, from the hub or a local folder,
through the same :func:`garvideo.checkpoints.resolve_checkpoint` as GAR and SAM2.

Post-processing follows ``GroundingDinoProcessor.post_process_grounded_object_detection``
(the same scores and boxes; a test holds them equal) with two differences that
a single phrase needs: a box's label is made of the phrase's own words only
(never ``[SEP]`` or the closing ``.``), and a box counts only when at least
one word of the phrase passes ``text_threshold`` (otherwise the box matched
nothing the user wrote). The best score of all boxes is kept for error messages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checkpoints import loading, resolve_checkpoint
from ..devices import resolve_device, resolve_dtype
from ..errors import InvalidInputError, ModelNotFoundError
from .detections import (
    DEFAULT_BOX_THRESHOLD,
    DEFAULT_TEXT_THRESHOLD,
    Detection,
    FrameDetections,
    check_threshold,
)

if TYPE_CHECKING:
    import torch

#: The model types this detector runs (their outputs and processor are the same).
SUPPORTED_MODEL_TYPES = ("grounding-dino", "mm-grounding-dino")

# Grounding DINO reads "." (and "?") as the end of a phrase: several phrases in one caption are
# several categories, and the caption must end with one.
_PHRASE_ENDS = (".", "?")


class GroundingDetector:
    """Grounding DINO, loaded once, asked about one picture and one phrase at a time.

    Build it with :meth:`from_pretrained`. ``model_id`` and ``revision`` say which
    weights ran, for provenance.
    """

    def __init__(self, model: Any, processor: Any, *, model_id: str, revision: str | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.model_id = model_id
        self.revision = revision
        parameter = next(model.parameters())
        self.device: torch.device = parameter.device
        self.dtype: torch.dtype = parameter.dtype

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = "float32",
        revision: str | None = None,
    ) -> GroundingDetector:
        """Load a Grounding DINO checkpoint: a hub id (default ``IDEA-Research/grounding-dino-tiny``) or a folder.

        Hub ids come from the local cache when offline, like GAR's and SAM2's.
        ``dtype`` defaults to float32 on every device: the model is small and its
        thresholds were tuned on float32 scores.
        """
        from transformers import AutoConfig, AutoModelForZeroShotObjectDetection, AutoProcessor

        from . import DEFAULT_DETECTOR

        checkpoint = resolve_checkpoint(DEFAULT_DETECTOR if model is None else model, revision=revision)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        advice = (
            "Use a Grounding DINO id (e.g. IDEA-Research/grounding-dino-tiny) or a folder saved with save_pretrained."
        )
        if not (checkpoint.folder / "config.json").is_file():
            raise ModelNotFoundError(
                f"cannot load the detector {checkpoint.model_id!r}: the folder {checkpoint.folder} has no config.json. "
                f"{advice}"
            )
        with loading(checkpoint, "the detector", "Grounding DINO", "Grounding DINO", advice):
            config = AutoConfig.from_pretrained(checkpoint.folder)
            if config.model_type not in SUPPORTED_MODEL_TYPES:
                raise ModelNotFoundError(
                    f"{checkpoint.model_id!r} is a {config.model_type!r} model, not an open-vocabulary detector garvideo "
                    f"runs ({', '.join(SUPPORTED_MODEL_TYPES)}). {advice}"
                )
            processor = AutoProcessor.from_pretrained(checkpoint.folder)
            network = AutoModelForZeroShotObjectDetection.from_pretrained(checkpoint.folder, dtype=torch_dtype)
        network.to(torch_device)
        return cls(network, processor, model_id=checkpoint.model_id, revision=checkpoint.revision)

    # -- phrases --------------------------------------------------------------------

    @property
    def max_tokens(self) -> int:
        """The longest caption the text encoder reads, in tokens (its start and end marks included)."""
        config = self.model.config
        return int(min(config.max_text_len, config.text_config.max_position_embeddings))

    def caption(self, phrase: str) -> tuple[str, list[int]]:
        """The caption Grounding DINO reads for ``phrase`` (lower case, one closing ``.``) and its token ids.

        Raises :class:`InvalidInputError` for an empty phrase, a phrase of several
        parts (``.`` or ``?`` inside) and one longer than the text encoder reads
        (the model would silently cut it).
        """
        if not isinstance(phrase, str) or not phrase.strip().rstrip("".join(_PHRASE_ENDS)).strip():
            raise InvalidInputError(f"the phrase {phrase!r} is empty: name the object, e.g. 'a red car'")
        text = " ".join(phrase.split()).lower().rstrip("".join(_PHRASE_ENDS)).strip()
        for mark in _PHRASE_ENDS:
            if mark in text:
                raise InvalidInputError(
                    f"the phrase {phrase!r} has a {mark!r} inside: Grounding DINO reads it as the end of a phrase; "
                    f"give one phrase per region (one --text each)"
                )
        caption = text + "."
        ids = self.processor.tokenizer(caption).input_ids
        if len(ids) > self.max_tokens:
            raise InvalidInputError(
                f"the phrase {phrase[:40]!r}{'...' if len(phrase) > 40 else ''} is {len(ids)} tokens long but the "
                f"detector {self.model_id} reads at most {self.max_tokens} (start and end marks included): shorten it"
            )
        return caption, ids

    # -- detection ------------------------------------------------------------------

    def detect(
        self,
        image: np.ndarray,
        phrase: str,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
    ) -> FrameDetections:
        """Boxes of ``image`` (``height x width x 3`` uint8 RGB) that ``phrase`` names, most confident first."""
        return self.detect_many(image, [phrase], box_threshold, text_threshold)[0]

    def detect_many(
        self,
        image: np.ndarray,
        phrases: Sequence[str],
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
    ) -> list[FrameDetections]:
        """:meth:`detect` for several phrases on one picture, which is preprocessed (resized, normalised, moved to
        the device) once for all of them: the same detections as one :meth:`detect` per phrase.

        Grounding DINO reads the phrase in every layer of its encoder, so the network itself runs once per phrase.
        """
        import torch

        box_threshold = check_threshold(box_threshold, "box threshold")
        text_threshold = check_threshold(text_threshold, "text threshold")
        captions = [self.caption(phrase) for phrase in phrases]
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError(
                f"expected an RGB picture (height, width, 3) of uint8, got {image.shape} {image.dtype}"
            )
        height, width = image.shape[:2]
        pixels = self._on_device(self.processor.image_processor(images=image, return_tensors="pt"))
        found = []
        for phrase, (caption, ids) in zip(phrases, captions):
            text = self._on_device(self.processor.tokenizer(caption, return_tensors="pt"))
            with torch.inference_mode():
                outputs = self.model(**pixels, **text)
            found.append(
                self.post_process(
                    outputs.logits[0],
                    outputs.pred_boxes[0],
                    ids,
                    (height, width),
                    phrase,
                    box_threshold,
                    text_threshold,
                )
            )
        return found

    def _on_device(self, inputs) -> dict[str, Any]:
        return {
            key: value.to(self.device, self.dtype) if value.is_floating_point() else value.to(self.device)
            for key, value in inputs.items()
        }

    def post_process(
        self,
        logits: torch.Tensor,
        pred_boxes: torch.Tensor,
        input_ids: list[int],
        size: tuple[int, int],
        phrase: str,
        box_threshold: float = DEFAULT_BOX_THRESHOLD,
        text_threshold: float = DEFAULT_TEXT_THRESHOLD,
    ) -> FrameDetections:
        """One picture's raw outputs (``logits`` ``(queries, max_text_len)``, ``pred_boxes`` ``(queries, 4)``
        centre-size in [0, 1]) as detections in pixels of a ``size = (height, width)`` picture."""
        import torch

        height, width = size
        probs = logits.float().sigmoid().cpu()
        scores = probs.max(dim=-1).values
        cx, cy, w, h = pred_boxes.float().cpu().unbind(-1)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
        boxes = boxes * torch.tensor([width, height, width, height], dtype=boxes.dtype)
        # The phrase's own tokens: after [CLS], before the closing "." and [SEP].
        words = np.arange(1, len(input_ids) - 2)
        detections = []
        for query in np.flatnonzero(scores.numpy() > box_threshold):
            matched = words[probs[query, words].numpy() > text_threshold]
            if not len(matched):
                continue
            label = self.processor.tokenizer.decode([input_ids[i] for i in matched])
            box = tuple(float(v) for v in boxes[query])
            detections.append(Detection(box=box, score=float(scores[query]), label=label))  # type: ignore[arg-type]
        detections.sort(key=lambda d: -d.score)
        return FrameDetections(
            phrase=phrase,
            detections=tuple(detections),
            best_score=float(scores.max()) if len(scores) else 0.0,
            box_threshold=box_threshold,
            text_threshold=text_threshold,
        )
