"""What a client may ask the service: a job's request, checked before it is accepted.

A request names its kind (``describe``, ``ask``, ``track``), the video, the regions (the schema of
"Regions as JSON", :meth:`RegionPrompt.from_dict`) or tracks (a ``garvideo.tracks`` document, as
``--tracks``), the question and multiple-choice ``choices`` of an ``ask`` (the CLI's ``--option``), the
``options`` (the keywords of :meth:`Pipeline.describe` / ``ask`` / ``track`` under the same names, with the
same defaults, :mod:`garvideo.defaults`; ``search`` and ``generation`` are objects of their settings' fields) and the ``files`` to make beside the result. The pydantic models
document it (the OpenAPI page) and check its shape; :func:`parse_request` turns every mistake into one
:class:`InvalidInputError` line in the CLI's words.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .. import defaults
from ..errors import InvalidInputError
from ..tracking import RegionPrompt, Track, tracks_from_json

KINDS = ("describe", "ask", "track")
#: The files a job may make beside its result, per kind (``files`` of a request; overlay only when asked).
FILES = {"describe": ("srt", "vtt", "tracks", "overlay"), "ask": ("tracks",), "track": ()}
DEFAULT_FILES = {"describe": ("srt", "vtt", "tracks"), "ask": ("tracks",), "track": ()}
FileName = Literal["srt", "vtt", "tracks", "overlay"]

_STRICT = ConfigDict(extra="forbid", strict=True)
Time = Annotated[float | str | None, Field(description="seconds (4.5), or a time code ('4.5s', '1:02.5')")]


class Generation(BaseModel):
    """Sampling settings (:class:`garvideo.model.GenerationSettings`; the length is ``max_new_tokens``)."""

    model_config = _STRICT
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    repetition_penalty: float = 1.0
    min_new_tokens: int = 0
    seed: int | None = None


class Search(BaseModel):
    """How text regions are found (:class:`garvideo.pipeline.TextSearch`; the CLI's text options)."""

    model_config = _STRICT
    box_threshold: float = defaults.BOX_THRESHOLD
    text_threshold: float = defaults.TEXT_THRESHOLD
    max_instances: int = Field(defaults.MAX_INSTANCES, ge=1)
    every: float = Field(defaults.SEARCH_EVERY, gt=0, description="seconds between searched frames")


class TrackOptions(BaseModel):
    """The keywords of ``Pipeline.track`` (``garvideo track``'s options)."""

    model_config = _STRICT
    start: Time = None
    end: Time = None
    stride: int = Field(defaults.STRIDE, ge=1)
    search: Search | None = None


class AskOptions(TrackOptions):
    """The keywords of ``Pipeline.ask`` (``garvideo ask``'s options), and the sampling settings."""

    frames: int = Field(defaults.FRAMES, ge=1)
    tiling: Literal["vanilla", "thumb+tile"] = defaults.TILING
    max_new_tokens: int = Field(defaults.MAX_NEW_TOKENS, ge=1, le=defaults.MAX_NEW_TOKENS_LIMIT)
    generation: Generation | None = None


class DescribeOptions(AskOptions):
    """The keywords of ``Pipeline.describe`` (``garvideo describe``'s options)."""

    window: float | None = Field(defaults.WINDOW, gt=0)
    frames_per_window: int = Field(defaults.FRAMES_PER_WINDOW, ge=1)
    instruction: str | None = Field(None, description="what GAR is asked for each prompt (null: its caption request)")


_VIDEO = (
    "a path under the server's --root, a URL under an --allow-url prefix, or a data: URL; "
    "left out with a multipart upload (the part named 'video')"
)
_REGIONS = "regions as under 'Regions as JSON' (README): name, when, and one of box, points (+ labels), mask or text"


class _Job(BaseModel):
    model_config = _STRICT
    video: str | None = Field(None, description=_VIDEO)
    regions: list[dict[str, Any]] | None = Field(None, description=_REGIONS)


class DescribeJob(_Job):
    kind: Literal["describe"]
    tracks: dict[str, Any] | None = Field(None, description="a garvideo.tracks document instead of regions")
    options: DescribeOptions = DescribeOptions()
    files: list[FileName] | None = Field(None, description="default: srt, vtt, tracks (overlay when asked)")


class AskJob(_Job):
    kind: Literal["ask"]
    question: str = Field(description="names the regions as <name>")
    choices: list[str] | None = Field(None, description="multiple choice (the CLI's --option), two or more")
    tracks: dict[str, Any] | None = Field(None, description="a garvideo.tracks document instead of regions")
    options: AskOptions = AskOptions()
    files: list[FileName] | None = Field(None, description="default: tracks")


class TrackJob(_Job):
    kind: Literal["track"]
    options: TrackOptions = TrackOptions()
    files: list[FileName] | None = Field(None, description="none: the result is the tracks document")


JobBody = Annotated[DescribeJob | AskJob | TrackJob, Field(discriminator="kind")]
JOB_BODY = TypeAdapter(JobBody)


@dataclass(frozen=True)
class JobRequest:
    """A checked request: what a worker needs besides the video (JSON-able, so it can travel to Ray)."""

    kind: str
    video: str | None
    regions: tuple[dict[str, Any], ...]  # as given (checked by RegionPrompt.from_dict)
    tracks: dict[str, Any] | None
    question: str | None
    choices: tuple[str, ...] | None
    options: dict[str, Any]  # only those given: the pipeline's defaults are the rest
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "video": self.video, "options": self.options}
        out["files"] = list(self.files)
        if self.regions:
            out["regions"] = list(self.regions)
        for key, value in (("tracks", self.tracks), ("question", self.question), ("choices", self.choices)):
            if value is not None:
                out[key] = list(value) if key == "choices" else value
        return out

    def digest(self, extra: bytes = b"") -> str:
        """A fingerprint of the request (and of its upload): a retried request gives the same one."""
        text = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(text + b"\0" + extra).hexdigest()

    def prompts(self) -> list[RegionPrompt]:
        return [RegionPrompt.from_dict(region) for region in self.regions]

    def given_tracks(self) -> list[Track] | None:
        return tracks_from_json(self.tracks) if self.tracks is not None else None

    def recorded_prompts(self) -> list[RegionPrompt]:
        """The marks the given tracks were made from, as their document's ``meta.prompts`` records them."""
        from ..outputs import recorded_prompts

        return recorded_prompts((self.tracks or {}).get("meta") or {}, "tracks.meta")

    def pipeline_options(self) -> dict[str, Any]:
        """The keywords of the pipeline call (``generation`` as :class:`GenerationSettings`, ``search`` as
        :class:`TextSearch`)."""
        options = {key: value for key, value in self.options.items() if value is not None or key in ("start", "end")}
        generation = options.pop("generation", None)
        if generation is not None:
            from ..model import GenerationSettings

            length = options.get("max_new_tokens", defaults.MAX_NEW_TOKENS)
            options["generation"] = GenerationSettings(**generation, max_new_tokens=length)
        if "search" in options:
            from ..pipeline import TextSearch

            options["search"] = TextSearch(**options["search"])
        return options


def parse_request(data: Any, upload: bool = False) -> JobRequest:
    """The checked request of a JSON body (``upload``: the video comes as a multipart part)."""
    if not isinstance(data, Mapping):
        raise InvalidInputError(f'a job request is a JSON object such as {{"kind": "describe", ...}}, got {data!r:.60}')
    if "kind" not in data:
        raise InvalidInputError(f'a job request needs a "kind": one of {", ".join(KINDS)}')
    try:
        body = JOB_BODY.validate_python(dict(data))
    except ValidationError as exc:
        raise InvalidInputError(validation_message(exc)) from None
    request = JobRequest(
        kind=body.kind,
        video=body.video,
        regions=tuple(body.regions or ()),
        tracks=getattr(body, "tracks", None),
        question=getattr(body, "question", None),
        choices=tuple(body.choices) if getattr(body, "choices", None) is not None else None,
        options=body.options.model_dump(exclude_unset=True),
        files=tuple(dict.fromkeys(body.files)) if body.files is not None else DEFAULT_FILES[body.kind],
    )
    _check_video(request, upload)
    _check_regions(request)
    _check_files(request)
    return request


def _check_video(request: JobRequest, upload: bool) -> None:
    if upload and request.video is not None:
        raise InvalidInputError('give the video once: as the upload or as "video", not both')
    if not upload and not request.video:
        raise InvalidInputError(f'a job needs a "video": {_VIDEO}')


def _check_regions(request: JobRequest) -> None:
    """Regions (or tracks) and the question's references, checked as the CLI checks its options."""
    if request.tracks is not None and request.regions:
        raise InvalidInputError('give "regions" or "tracks", not both')
    if request.tracks is None and not request.regions:
        raise InvalidInputError(f'mark at least one region in "regions" ({_REGIONS})')
    prompts = []
    for number, region in enumerate(request.regions):
        try:
            prompts.append(RegionPrompt.from_dict(region))
        except InvalidInputError as exc:
            raise InvalidInputError(f"regions[{number}]: {exc}") from None
    tracks = request.given_tracks()
    request.recorded_prompts()
    if request.kind == "ask":
        _check_question(request, prompts, tracks)


def _check_question(request: JobRequest, prompts: Sequence[RegionPrompt], tracks: Sequence[Track] | None) -> None:
    """The question, its choices and the regions they name, as the CLI checks ``ask``'s before any work."""
    from ..names import check_question
    from ..pipeline import region_names

    most = (request.options.get("search") or {}).get("max_instances", defaults.MAX_INSTANCES)
    names = [track.name for track in tracks] if tracks is not None else region_names(prompts, most)
    check_question(request.question, list(request.choices) if request.choices is not None else None, names)


def _check_files(request: JobRequest) -> None:
    wrong = [name for name in request.files if name not in FILES[request.kind]]
    if wrong:
        allowed = ", ".join(FILES[request.kind]) or "none (its result is the tracks document)"
        raise InvalidInputError(f"a {request.kind} job makes no {', '.join(wrong)} file: it makes {allowed}")


def validation_message(error: ValidationError) -> str:
    """pydantic's errors as one line a user can act on (the first error; the count of the others)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part not in KINDS and not str(part).startswith("function"))
    kind = first["type"]
    if kind == "extra_forbidden":
        known = _known_fields(first["loc"])
        message = f"unknown field {where!r}" + (f": known fields here are {', '.join(known)}" if known else "")
    elif kind == "missing":
        message = f"{where} is missing"
    elif kind == "union_tag_invalid":
        message = f"unknown kind {first['input'].get('kind')!r}: use one of {', '.join(KINDS)}"
    else:
        shown = json.dumps(first.get("input"), ensure_ascii=False, default=str)
        message = f"{where}: {first['msg'][:1].lower()}{first['msg'][1:]} (got {shown[:60]})"
    more = error.error_count() - 1
    return message + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _known_fields(location: Sequence[Any]) -> list[str]:
    models: dict[str, type[BaseModel]] = {"describe": DescribeJob, "ask": AskJob, "track": TrackJob}
    if not location or location[0] not in models:
        return []
    model: type[BaseModel] = models[location[0]]
    for part in location[1:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)
