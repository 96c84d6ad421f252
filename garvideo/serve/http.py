"""The service's HTTP API (FastAPI): jobs under ``/v1``, synchronous describe/ask, health, readiness, metrics.

Every error is one JSON line, ``{"error": {"message", "type", "code"}}`` (the shape OpenAI's clients read),
whose message is the CLI's one line for the same mistake. The OpenAI-compatible routes are in
:mod:`garvideo.serve.openai`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import json
import logging
import shutil
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GarvideoError, InvalidInputError
from . import metrics
from .auth import ANONYMOUS, Keys, bearer_key
from .engine import Engine, LimitExceeded, one_line
from .events import sse
from .requests import JOB_BODY, JobRequest, parse_request
from .store import IdempotencyConflict, Job
from .videos import Upload, UploadTooLargeError
from .work import FILE_NAMES, MEDIA_TYPES

log = logging.getLogger("garvideo.serve")

API_VERSION = "v1"
#: The longest ``?wait=`` a synchronous call may ask for.
MAX_WAIT_S = 600.0
#: The largest JSON body: a data: URL video travels in it as base64 (a third larger); bigger videos go as uploads.
MAX_JSON_MB = 96


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": one_line(message), "type": kind, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass(frozen=True)
class Api:
    """What the routes share: the engine and who may call."""

    engine: Engine
    keys: Keys | None

    def client(self, request: Request) -> str:
        if self.keys is None:
            return ANONYMOUS
        key = bearer_key(request.headers.get("authorization"))
        if key is None:
            raise ApiError(401, "this server needs an API key: send 'Authorization: Bearer KEY'", "missing_api_key")
        name = self.keys.client(key)
        if name is None:
            raise ApiError(401, "the API key is not valid", "invalid_api_key")
        return name

    def job(self, job_id: str, client: str) -> Job:
        """The caller's job (another client's is as unknown as a missing one)."""
        job = self.engine.store.get(job_id)
        if job is None or (self.keys is not None and job.owner != client):
            raise ApiError(404, f"there is no job {job_id!r} (it may have been deleted or expired)", "job_not_found")
        return job

    def job_json(self, job: Job, with_result: bool = True) -> dict[str, Any]:
        result = self.engine.store.result(job.id) if with_result and job.state == "done" else None
        base = f"/{API_VERSION}/jobs/{job.id}"
        return {
            "id": job.id,
            "kind": job.kind,
            "state": job.state,
            "video": job.video["name"],
            "progress": self.engine.progress(job.id) or job.progress,
            "error": job.error,
            "result": json.loads(result) if result is not None else None,
            "result_url": f"{base}/result" if job.state == "done" else None,
            "files": {name: f"{base}/files/{name}" for name in job.files},
            "events_url": f"{base}/events",
            "attempts": job.attempts,
            "cancel_requested": job.cancel_requested,
            "created": _iso(job.created),
            "started": _iso(job.started),
            "finished": _iso(job.finished),
        }


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).isoformat(timespec="milliseconds")


async def read_json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, refused past ``limit`` bytes (read as it streams in)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadTooLargeError(
                f"the JSON body is larger than this server's limit of {limit / (1 << 20):.3g} MB: send a large video"
                " as a multipart upload"
            )
    return parse_json(bytes(body))


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidInputError(f"the body is not valid JSON{where}: send one JSON object") from None


async def submit(api: Api, request: Request, client: str, kind: str | None = None) -> tuple[Job, bool]:
    """Accept the job a request describes (JSON, or multipart with the upload): (job, created)."""
    engine = api.engine
    content_type = request.headers.get("content-type", "")
    upload = None
    if content_type.startswith("multipart/form-data"):
        body, upload = await engine.sources.read_multipart(request.stream(), content_type, engine.store)
        if body is None:
            _drop(engine, upload.video if upload else None)
            raise InvalidInputError("a multipart job needs a part named 'request' holding the JSON request")
        try:
            data = parse_json(body)
        except InvalidInputError:
            _drop(engine, upload.video if upload else None)
            raise
    elif content_type.split(";")[0].strip() in ("application/json", ""):
        data = await read_json_body(request, json_limit(engine))
    else:
        raise ApiError(415, f"send JSON or multipart/form-data, not {content_type}", "unsupported_media_type")
    if kind is not None:
        data = _with_kind(data, kind)
    return await accept(api, client, data, request.headers.get("idempotency-key"), upload)


def json_limit(engine: Engine) -> int:
    """Bytes a JSON body may have: room for the largest upload as a data: URL, at most :data:`MAX_JSON_MB`."""
    return min(int(engine.sources.max_upload_bytes * 4 / 3) + (1 << 20), MAX_JSON_MB << 20)


async def accept(
    api: Api,
    client: str,
    data: Any,
    idempotency_key: str | None,
    upload: Upload | None = None,
    masklets: list[dict[str, Any]] | None = None,
) -> tuple[Job, bool]:
    """Check a request, place its video and queue it: (job, created). ``masklets``: per-frame masks of regions
    (the chat route's), made into the request's tracks with the video's frame times."""
    engine = api.engine
    sources, store = engine.sources, engine.store
    video = upload.video if upload else None
    fingerprint = upload.sha256 if upload else None
    try:
        if masklets is not None:
            video, fingerprint = await run_in_threadpool(sources.from_text, _video_text(data), store)
            path = await run_in_threadpool(sources.local_path, video, store)
            data = {**data, "tracks": await run_in_threadpool(masklet_tracks, masklets, path)}
        job_request = parse_request(data, upload=upload is not None)
        if video is None:
            video, fingerprint = await run_in_threadpool(sources.from_text, job_request.video, store)
        if video["source"] != "url":  # a URL is fetched when its job runs: it is checked then
            await run_in_threadpool(_check_against_video, job_request, sources.local_path(video, store))
        if (
            video["source"] == "upload" and job_request.video
        ):  # a data: URL: its bytes are the upload's, not the store's
            job_request = dataclasses.replace(job_request, video=f"data: URL, saved as {video['file']}")
        digest = job_request.digest(fingerprint.encode())
        job, created = await run_in_threadpool(engine.submit, client, job_request, video, idempotency_key, digest)
    except BaseException:
        _drop(engine, video)
        raise
    if not created:
        _drop(engine, video)  # the retried request's job has its own copy
    return job, created


def _video_text(data: Any) -> str:
    video = data.get("video") if isinstance(data, dict) else None
    if not isinstance(video, str) or not video:
        raise InvalidInputError("a question about masklets needs the video (a path, an allowed URL or a data: URL)")
    return video


def masklet_tracks(masklets: list[dict[str, Any]], video: Any) -> dict[str, Any]:
    """A ``garvideo.tracks`` document of per-frame masks (``{"name", "masklet": [{"frame", "mask": RLE}]}``),
    timed by the video's own frame times."""
    from ..masks import decode_rle
    from ..tracking import Track, tracks_to_json
    from ..video import open_video

    tracks = []
    with open_video(video) as reader:
        for number, entry in enumerate(masklets):
            frames = entry.get("masklet")
            name = entry.get("name")
            if not isinstance(frames, list) or not frames or not isinstance(name, str):
                raise InvalidInputError(
                    f'regions[{number}]: a masklet is {{"name": ..., "masklet": [{{"frame": 12, "mask": RLE}}, ...]}}'
                )
            masks = {}
            for item in frames:
                if not isinstance(item, dict) or set(item) != {"frame", "mask"} or not isinstance(item["frame"], int):
                    raise InvalidInputError(f'regions[{number}]: each masklet entry is {{"frame": INDEX, "mask": RLE}}')
                if not 0 <= item["frame"] < reader.num_frames:
                    raise InvalidInputError(
                        f"regions[{number}]: frame {item['frame']} is beyond the video's {reader.num_frames} frames"
                    )
                masks[item["frame"]] = decode_rle(item["mask"])
            times = {index: reader.index_to_time(index) for index in masks}
            tracks.append(Track.from_masks(name, masks, times=times, obj_id=number + 1))
    return tracks_to_json(tracks)


def _with_kind(data: Any, kind: str) -> Any:
    if isinstance(data, dict):
        if data.get("kind", kind) != kind:
            raise InvalidInputError(f'this route runs {kind} jobs: leave out "kind" (or post to /v1/jobs)')
        return {**data, "kind": kind}
    return data


def _drop(engine: Engine, video: dict[str, Any] | None) -> None:
    if video is not None and video.get("upload"):
        shutil.rmtree(engine.store.uploads_root / video["upload"], ignore_errors=True)


def _check_against_video(request: JobRequest, path: Any) -> None:
    """What the CLI checks once the video is open, before any model: the video opens, the span and window fit it,
    and the regions (or tracks) lie on its frames; a mistake is refused now, with the CLI's message."""
    from ..pipeline import check_inputs
    from ..video import open_video

    options = {key: request.options[key] for key in ("start", "end", "stride", "window") if key in request.options}
    with open_video(path) as reader:
        check_inputs(
            reader, request.prompts(), request.given_tracks(), describing=request.kind == "describe", **options
        )


async def wait_finished(engine: Engine, job_id: str, seconds: float) -> Job | None:
    """The job once it has finished, or as it is after ``seconds``; None if it was deleted meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        job = await run_in_threadpool(engine.store.get, job_id)
        left = deadline - loop.time()
        if job is None or job.is_finished or left <= 0:
            return job
        watched = await run_in_threadpool(engine.log_of, job_id)
        if watched is None:
            continue
        while not watched.closed and loop.time() < deadline:
            await watched.wait(watched.count, max(0.0, min(5.0, deadline - loop.time())))


def create_app(engine: Engine, keys: Keys | None) -> FastAPI:
    """The FastAPI application of one engine."""
    from .openai import add_openai_routes

    api = Api(engine, keys)
    app = FastAPI(
        title="garvideo",
        summary="Describe and question regions in videos: SAM2 tracking + Grasp Any Region (GAR).",
        version=API_VERSION,
        docs_url="/docs",
    )
    _add_error_handlers(app)
    authorized = [Depends(api.client)]
    _add_job_routes(app, api, authorized)
    _add_sync_routes(app, api)
    _add_service_routes(app, api, authorized)
    add_openai_routes(app, api)
    _document_job_body(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(GarvideoError)
    async def garvideo_error(_: Request, exc: GarvideoError) -> JSONResponse:
        if isinstance(exc, LimitExceeded):
            code = "too_many_jobs" if exc.status == 429 else "queue_full"
            return error_response(exc.status, str(exc), code, {"Retry-After": str(exc.retry_after)})
        if isinstance(exc, UploadTooLargeError):
            return error_response(413, str(exc), "too_large")
        if isinstance(exc, IdempotencyConflict):
            return error_response(422, str(exc), "idempotency_key_reused")
        return error_response(400, str(exc), "invalid_input")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return error_response(400, f"{where}: {first['msg'][:1].lower()}{first['msg'][1:]}", "invalid_input")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, f"there is no route {request.url.path} (see /docs)", "not_found")
        if exc.status_code == 405:
            return error_response(405, f"{request.url.path} does not take {request.method}", "method_not_allowed")
        return error_response(exc.status_code, str(exc.detail), "http_error")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, f"internal error ({type(exc).__name__}); the server goes on", "internal_error")


def _add_job_routes(app: FastAPI, api: Api, authorized: list) -> None:
    @app.post("/v1/jobs", status_code=202, dependencies=authorized, tags=["jobs"], openapi_extra=_JOB_BODY)
    async def create_job(request: Request, client: str = Depends(api.client)) -> JSONResponse:
        """Accept a describe, ask or track job (JSON, or multipart with the video as the part 'video')."""
        job, created = await submit(api, request, client)
        headers = {"Location": f"/v1/jobs/{job.id}"} | ({} if created else {"Idempotent-Replayed": "true"})
        return JSONResponse(api.job_json(job), status_code=202, headers=headers)

    @app.get("/v1/jobs", tags=["jobs"])
    def list_jobs(
        client: str = Depends(api.client),
        state: str | None = Query(None, pattern="^(queued|running|done|failed|cancelled)$"),
        limit: int = Query(100, ge=1, le=1000),
        after: int = Query(0, ge=0, description="skip this many jobs (the previous page's next_after)"),
    ) -> dict[str, Any]:
        """The caller's jobs, oldest first (results at each job's result_url)."""
        owner = client if api.keys is not None else None
        jobs = api.engine.store.list(owner, state, limit + 1, after)
        more = len(jobs) > limit
        return {
            "jobs": [api.job_json(j, with_result=False) for j in jobs[:limit]],
            "next_after": after + limit if more else None,
        }

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str, client: str = Depends(api.client)) -> dict[str, Any]:
        """A job: its state, progress, error and, once done, its result document."""
        return api.job_json(api.job(job_id, client))

    @app.get("/v1/jobs/{job_id}/result", tags=["jobs"])
    def get_result(job_id: str, client: str = Depends(api.client)) -> Response:
        """The result document, byte for byte what `garvideo describe|ask|track --out` writes."""
        job = api.job(job_id, client)
        result = api.engine.store.result(job.id)
        if result is None:
            raise ApiError(409, f"job {job_id} is {job.state}: a result exists once it is done", "not_done")
        return Response(result, media_type="application/json")

    @app.get("/v1/jobs/{job_id}/files/{name}", tags=["jobs"])
    def get_file(job_id: str, name: str, client: str = Depends(api.client)) -> FileResponse:
        """A file the job made: srt, vtt (the timeline as subtitles), tracks (JSON) or overlay (MP4)."""
        job = api.job(job_id, client)
        if name not in FILE_NAMES:
            raise ApiError(404, f"no file {name!r}: a job's files are {', '.join(FILE_NAMES)}", "file_not_found")
        if job.state != "done":
            raise ApiError(409, f"job {job_id} is {job.state}: its files exist once it is done", "not_done")
        if name not in job.files:
            made = ", ".join(job.files) or "none"
            raise ApiError(404, f'job {job_id} made no {name} file (it made: {made}; ask with "files")', "no_file")
        path = api.engine.store.job_folder(job.id) / FILE_NAMES[name]
        return FileResponse(path, media_type=MEDIA_TYPES[name], filename=f"{job.id}-{FILE_NAMES[name]}")

    @app.get("/v1/jobs/{job_id}/events", tags=["jobs"])
    def job_events(job_id: str, request: Request, client: str = Depends(api.client)) -> StreamingResponse:
        """Server-sent events: state, progress, frame, text, and each timeline window as it is described."""
        job = api.job(job_id, client)
        start = request.headers.get("last-event-id")
        first = int(start) + 1 if start and start.isdigit() else 0
        return StreamingResponse(_event_stream(api, job, first), media_type="text/event-stream")

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"])
    def delete_job(job_id: str, client: str = Depends(api.client)) -> JSONResponse:
        """Cancel a queued or running job; remove a finished one (its result and files)."""
        job = api.job(job_id, client)
        if job.is_finished:
            if not api.engine.store.delete(job.id):
                raise ApiError(404, f"there is no job {job_id!r}", "job_not_found")
            return JSONResponse({"id": job.id, "deleted": True})
        job = api.engine.cancel(job.id) or job
        return JSONResponse(api.job_json(job), status_code=200 if job.is_finished else 202)


async def _event_stream(api: Api, job: Job, index: int):
    watched = await run_in_threadpool(api.engine.log_of, job.id)
    if watched is not None:
        while True:
            events, index, closed = watched.since(index)
            for number, name, data in events:
                yield sse(name, data, number)
            if closed:
                break
            await watched.wait(index, 15.0)
            if watched.count == index and not watched.closed:
                yield ": still working\n\n"  # a comment line: keeps proxies from closing a quiet stream
    job = await run_in_threadpool(api.engine.store.get, job.id) or job
    for name, data in _finished_events(api, job, windows=watched is None):
        yield sse(name, data)


def _finished_events(api: Api, job: Job, windows: bool) -> list[tuple[str, dict[str, Any]]]:
    """What a finished job tells a watcher at its end: its end, after its timeline windows (from its result)
    for a watcher who came too late to hear them."""
    events: list[tuple[str, dict[str, Any]]] = []
    result = api.engine.store.result(job.id) if job.kind == "describe" and windows else None
    if result is not None:
        for region in json.loads(result)["regions"]:
            for number, window in enumerate(region.get("timeline", [])):
                if window["visible"]:
                    data = {"region": region["name"], "window": number, "start": window["start"], "end": window["end"]}
                    events.append(("window", {**data, "text": window["description"]}))
    events.append(("end", {"state": job.state, "error": job.error}))
    return events


def _add_sync_routes(app: FastAPI, api: Api) -> None:
    async def run_sync(kind: str, request: Request, wait: float, client: str) -> JSONResponse:
        job, _ = await submit(api, request, client, kind)
        job = await wait_finished(api.engine, job.id, wait) or job
        if job.state == "failed":
            status = 400 if job.error_kind == "input" else 500
            return error_response(status, f"job {job.id} failed: {job.error}", "job_failed")
        if job.state == "cancelled":
            return error_response(409, f"job {job.id} was cancelled", "job_cancelled")
        status = 200 if job.state == "done" else 202
        return JSONResponse(api.job_json(job), status_code=status, headers={"Location": f"/v1/jobs/{job.id}"})

    wait_query = Query(60.0, ge=0, le=MAX_WAIT_S, description="seconds to wait for the result (202 if not done)")

    @app.post("/v1/describe", tags=["synchronous"], openapi_extra=_JOB_BODY)
    async def describe(request: Request, wait: float = wait_query, client: str = Depends(api.client)) -> JSONResponse:
        """A describe job, answered with its result when done within ?wait seconds (else 202 and the job)."""
        return await run_sync("describe", request, wait, client)

    @app.post("/v1/ask", tags=["synchronous"], openapi_extra=_JOB_BODY)
    async def ask(request: Request, wait: float = wait_query, client: str = Depends(api.client)) -> JSONResponse:
        """An ask job, answered with its result when done within ?wait seconds (else 202 and the job)."""
        return await run_sync("ask", request, wait, client)


def _add_service_routes(app: FastAPI, api: Api, authorized: list) -> None:
    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """The server answers (no key needed)."""
        return {"status": "ok"}

    @app.get("/readyz", dependencies=authorized, tags=["service"])
    def readyz() -> JSONResponse:
        """The models are loaded and jobs run (503 until then)."""
        ready = api.engine.executor.ready()
        body = {"ready": ready, "models": api.engine.executor.models() if ready else None}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", dependencies=authorized, tags=["service"])
    def prometheus() -> PlainTextResponse:
        """Prometheus metrics: queue depth, jobs by state, stage times, GPU memory."""
        return PlainTextResponse(metrics.render(api.engine), media_type="text/plain; version=0.0.4")


_JOB_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobBody"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "request": {"type": "string", "description": 'the JSON request, without "video"'},
                        "video": {"type": "string", "format": "binary"},
                    },
                    "required": ["request", "video"],
                }
            },
        },
    }
}


def _document_job_body(app: FastAPI) -> None:
    """Put the request's JSON schema (pydantic's) among the OpenAPI page's components."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            body = JOB_BODY.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["JobBody"] = body
        return app.openapi_schema or schema

    app.openapi = openapi  # type: ignore[method-assign]
