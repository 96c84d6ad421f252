"""Public formats a user may already have, read as training examples (beside garvideo's JSON lines).

- **COCO-style region captions**: ``{"images": [{"id", "file_name", "height", "width"}], "annotations":
  [{"image_id", "segmentation" (RLE or polygons), "caption"}]}``: one image caption example per annotation
  with a caption (the region is named ``region``).
- **VideoRefer-700K**: a JSON list of ``{"video", "conversations": [{"from": "human", "value":
  "<video>\\nWhat is <region> doing?"}, {"from": "gpt", "value": "..."}, ...], "annotation": [{FRAME:
  {"segmentation": RLE or polygons}}, ...]}``: every human/gpt pair is one video question example about
  the marked objects, whose per-frame masks are the tracks (nothing is tracked). Markers ``<region>`` and
  ``<objectN><region>`` become the regions ``<region1>``... and ``<objectN>``, as ``garvideo eval
  videorefer-q`` reads the benchmark.

Every bad entry is one problem of the :class:`~garvideo.train.data.DatasetError` raised, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..masks import polygon_rle
from .data import Dataset, TrainExample, check_texts, read_entries, read_jsonl

FORMATS = ("auto", "garvideo", "coco", "videorefer")
#: The name of the one region of a COCO region caption.
COCO_REGION = "region"


def read_dataset(path: str | Path, format: str = "auto", root: str | Path | None = None) -> Dataset:
    """The examples of a data file in any of :data:`FORMATS` (``auto``: JSON lines by content, else the JSON's
    shape). ``root``: where the examples' files are (default: beside the data file)."""
    path = Path(path)
    if format not in FORMATS:
        raise InvalidInputError(f"unknown data format {format!r}: use {', '.join(FORMATS)}")
    if root is not None and not Path(root).is_dir():
        raise InvalidInputError(f"the media folder {root} does not exist")
    if format == "garvideo" or (format == "auto" and path.suffix.lower() == ".jsonl"):
        return read_jsonl(path, root)
    data = _load_json(path)
    folder = Path(root) if root is not None else path.parent
    if format == "coco" or (format == "auto" and isinstance(data, dict) and "annotations" in data):
        return read_entries(path, "coco", _coco_entries(data), lambda entry, where: _coco_example(entry, where, folder))
    if format == "videorefer" or (format == "auto" and isinstance(data, list)):
        if not isinstance(data, list):
            raise InvalidInputError(f"{path} is not a VideoRefer annotation file (a JSON list of items)")
        items = [(f"item {k}", item) for k, item in enumerate(data)]
        return read_entries(path, "videorefer", items, lambda item, where: _videorefer(item, where, folder))
    raise InvalidInputError(
        f"{path}: not a format garvideo reads (JSON lines, COCO region captions or VideoRefer-700K); see README's"
        " 'Fine-tuning'"
    )


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"no data file at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not a UTF-8 text file") from None
    except json.JSONDecodeError:
        # Not one JSON document: JSON lines under another extension.
        return None


# ---------------------------------------------------------------------- COCO region captions


def _coco_entries(data: Any) -> list[tuple[str, tuple[Mapping, Mapping]]]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InvalidInputError('a COCO file needs "images" and "annotations" lists')
    annotations = data.get("annotations")
    if not isinstance(annotations, list):
        raise InvalidInputError('a COCO file needs an "annotations" list')
    images = {image.get("id"): image for image in data["images"] if isinstance(image, dict)}
    return [
        (f"annotation {a.get('id', k) if isinstance(a, dict) else k}", (a, images))
        for k, a in enumerate(annotations)
        if not isinstance(a, dict) or a.get("caption") is not None
    ]


def _coco_example(entry: tuple[Mapping, Mapping], where: str, folder: Path) -> list[TrainExample]:
    annotation, images = entry
    if not isinstance(annotation, dict):
        raise InvalidInputError("an annotation must be a JSON object")
    image = images.get(annotation.get("image_id"))
    if image is None:
        raise InvalidInputError(f"image_id {annotation.get('image_id')!r} is not among the images")
    name = image.get("file_name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"image {image.get('id')!r} has no file_name")
    media = folder / name
    if not media.is_file():
        raise InvalidInputError(f"image {name!r} not found (looked in {folder})")
    rle = _segmentation(annotation.get("segmentation"), image.get("height"), image.get("width"))
    caption = annotation.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        raise InvalidInputError('"caption" must be non-empty text')
    example = TrainExample(
        where=where,
        kind="image",
        media=media,
        target=caption.strip(),
        regions=({"name": COCO_REGION, "mask": rle},),
        names=(COCO_REGION,),
        folder=folder,
    )
    check_texts(example, example.names)
    return [example]


def _segmentation(segmentation: Any, height: Any, width: Any) -> dict[str, Any]:
    """A COCO segmentation (RLE, or polygons on an image of ``height`` x ``width``) as RLE."""
    if isinstance(segmentation, dict):
        if "size" not in segmentation or "counts" not in segmentation:
            raise InvalidInputError('an RLE segmentation needs "size" and "counts"')
        return dict(segmentation)
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise InvalidInputError("a polygon segmentation needs the image's height and width")
    return polygon_rle(segmentation, height, width)


# ---------------------------------------------------------------------- VideoRefer-700K


def _videorefer(item: Any, where: str, folder: Path) -> list[TrainExample]:
    from ..eval.videorefer import convert_question

    if not isinstance(item, dict):
        raise InvalidInputError("an item must be a JSON object")
    video = item.get("video")
    if not isinstance(video, str) or not video:
        raise InvalidInputError('an item needs a "video" (VideoRefer image items are not read)')
    media = folder / video
    if not media.exists():
        raise InvalidInputError(f"video {video!r} not found (looked in {folder})")
    annotation = item.get("annotation")
    if not isinstance(annotation, list) or not annotation or not all(isinstance(a, dict) for a in annotation):
        raise InvalidInputError('"annotation" must be a list with one {frame: {"segmentation": ...}} per object')
    turns = _turns(item.get("conversations"))
    names: list[str] = []
    converted = []
    for question, answer in turns:
        text, marked = convert_question(question.replace("<video>", "").replace("<image>", "").strip())
        names += [name for name in marked if name not in names]
        converted.append((text, answer.strip()))
    if len(names) != len(annotation):
        raise InvalidInputError(
            f"the conversation marks {len(names)} regions ({', '.join(names) or 'none'}) but the annotation has "
            f"masks for {len(annotation)}"
        )
    examples = []
    for number, (question, answer) in enumerate(converted, 1):
        example = TrainExample(
            where=f"{where} turn {number}" if len(converted) > 1 else where,
            kind="video",
            media=media,
            target=answer,
            question=question,
            annotation=tuple(annotation),
            names=tuple(names),
            folder=folder,
        )
        check_texts(example, names)
        examples.append(example)
    return examples


def _turns(conversations: Any) -> list[tuple[str, str]]:
    """The (human, gpt) pairs of a conversation, in order."""
    if not isinstance(conversations, list) or not conversations:
        raise InvalidInputError('"conversations" must be a list of {"from": "human"|"gpt", "value": ...} turns')
    pairs = []
    for k in range(0, len(conversations) - 1, 2):
        ask, reply = conversations[k], conversations[k + 1]
        if not (isinstance(ask, dict) and isinstance(reply, dict)) or (ask.get("from"), reply.get("from")) != (
            "human",
            "gpt",
        ):
            raise InvalidInputError("conversations must alternate human and gpt turns, starting with human")
        if not all(isinstance(t.get("value"), str) and t["value"].strip() for t in (ask, reply)):
            raise InvalidInputError("every turn needs a non-empty text value")
        pairs.append((ask["value"], reply["value"]))
    if len(conversations) % 2 or not pairs:
        raise InvalidInputError("a conversation must end with the gpt turn that answers the last human turn")
    return pairs


def annotation_with_rle(annotation: Mapping[str, Any], height: int, width: int) -> dict[str, Any]:
    """One object's ``{frame: {"segmentation": ...}}`` with polygon masks turned into RLE (for a video of that size)."""
    out: dict[str, Any] = {}
    for frame, entry in annotation.items():
        segmentation = entry.get("segmentation") if isinstance(entry, dict) else None
        if isinstance(segmentation, list):
            entry = {**entry, "segmentation": polygon_rle(segmentation, height, width)}
        out[frame] = entry
    return out
