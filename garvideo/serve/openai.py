"""OpenAI-compatible routes: ``POST /v1/chat/completions`` for questions about regions, and ``GET /v1/models``.

A chat is one ``ask`` job. The last user message is the question (its text parts; it names regions as
``<name>``). The video and the regions travel in that message (or an earlier user message), in extension
fields any OpenAI client can send:

- the video: a content part ``{"type": "video_url", "video_url": {"url": ...}}`` (vLLM's) or the message's
  ``"video"`` field; the url is a path under ``--root``, a URL under an ``--allow-url`` prefix, or a
  ``data:video/mp4;base64,...`` URL;
- the regions: the message's ``"regions"`` list, each a region as under "Regions as JSON" (a box, clicks, a
  mask as COCO RLE, or text) or a masklet ``{"name", "masklet": [{"frame": INDEX, "mask": RLE}, ...]}``
  (masks the client already has: nothing is tracked; all regions of a chat are one kind or the other).

Sampling is per request: ``temperature`` (0 or left out: greedy, as GAR is evaluated; above 0: sampling at
that temperature), ``top_p``, ``seed``, ``max_tokens`` / ``max_completion_tokens``, and vLLM's ``top_k`` and
``repetition_penalty``. ``garvideo`` (extension, e.g. the openai client's ``extra_body``) holds the
multiple-choice ``choices`` and any other ask option (``{"options": {"frames": 16, "stride": 2}}``).
``stream: true`` sends ``chat.completion.chunk`` events whose ``choices[0].delta.content`` are strings, then
``data: [DONE]``. Earlier assistant turns are not read: GAR answers each question on its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidInputError
from .http import MAX_WAIT_S, Api, ApiError, accept, error_response, json_limit, read_json_body, wait_finished
from .store import Job

_OPENAI_FIELDS = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "n",
    "user",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "garvideo",
}
_UNSUPPORTED = {"tools", "tool_choice", "functions", "response_format", "stop", "logit_bias", "top_logprobs"}


def model_ids(api: Api) -> list[str]:
    gar = api.engine.executor.models().get("gar")
    return [gar["model"]] if gar else []


def add_openai_routes(app: FastAPI, api: Api) -> None:
    @app.get("/v1/models", tags=["openai"])
    def list_models(client: str = Depends(api.client)) -> dict[str, Any]:
        """The GAR model questions are answered with (OpenAI's model list)."""
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "garvideo"} for m in model_ids(api)],
        }

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat(request: Request, client: str = Depends(api.client)) -> Any:
        """A question about regions of a video, OpenAI's chat format (see the module notes in the README)."""
        body = await read_json_body(request, json_limit(api.engine))
        data, masklets, stream = chat_to_request(body, model_ids(api))
        job, _ = await accept(api, client, data, request.headers.get("idempotency-key"), masklets=masklets)
        created = int(time.time())
        if stream:
            chunks = _stream(
                api, job, body["model"], created, bool((body.get("stream_options") or {}).get("include_usage"))
            )
            return StreamingResponse(chunks, media_type="text/event-stream")
        job = await wait_finished(api.engine, job.id, MAX_WAIT_S) or job
        problem = _problem(job)
        if problem is not None:
            return problem
        answer = _answer(api, job)
        message = {"role": "assistant", "content": answer["answer"]}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        return JSONResponse(_completion(job, body["model"], created, "chat.completion", [choice], answer))


def chat_to_request(body: Any, models: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]] | None, bool]:
    """The ask request of a chat body, its masklets (None: regions to track) and whether it streams."""
    if not isinstance(body, dict):
        raise InvalidInputError("a chat completion request is a JSON object with model and messages")
    unknown = sorted(set(body) - _OPENAI_FIELDS)
    if unknown:
        hint = " (not supported here)" if set(unknown) & _UNSUPPORTED else ""
        raise InvalidInputError(f"unrecognized request argument{'s' * (len(unknown) > 1)}: {', '.join(unknown)}{hint}")
    if body.get("model") not in models:
        raise ApiError(
            404, f"the model {body.get('model')!r} does not exist here: use {', '.join(models)}", "model_not_found"
        )
    if body.get("n", 1) != 1 or body.get("logprobs") or body.get("frequency_penalty") or body.get("presence_penalty"):
        raise InvalidInputError("n above 1, logprobs and frequency or presence penalties are not supported")
    question, video, regions = _from_messages(body.get("messages"))
    extension = body.get("garvideo") or {}
    if not isinstance(extension, dict) or set(extension) - {"choices", "options"}:
        raise InvalidInputError('"garvideo" holds "choices" (multiple choice) and "options" (ask options) only')
    options = dict(extension.get("options") or {})
    _sampling(body, options)
    masklets = [r for r in regions if isinstance(r, dict) and "masklet" in r]
    if masklets and len(masklets) != len(regions):
        raise InvalidInputError("give every region as a masklet, or none: masks given are not tracked, marks are")
    data = {"kind": "ask", "video": video, "question": question, "options": options, "files": []}
    if extension.get("choices") is not None:
        data["choices"] = extension["choices"]
    if not masklets:
        data["regions"] = regions
    return data, masklets or None, bool(body.get("stream"))


def _from_messages(messages: Any) -> tuple[str, str | None, list]:
    """The question (the last user message's text) and the video and regions the user messages carry."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError("messages must be a non-empty list")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise InvalidInputError("messages hold no user message: the question is the last user message")
    video, regions = None, None
    for message in users:
        texts, message_video = _content(message.get("content"))
        video = message.get("video") or message_video or video
        regions = message.get("regions", regions)
    question = texts
    if video is None:
        raise InvalidInputError('no video: add a {"type": "video_url", "video_url": {"url": ...}} part to the message')
    if not isinstance(regions, list) or not regions:
        raise InvalidInputError('no regions: give the message a "regions" list (see "Regions as JSON")')
    return question, video, regions


def _content(content: Any) -> tuple[str, str | None]:
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        raise InvalidInputError("a message's content is a string or a list of parts")
    texts, video = [], None
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "video_url" and isinstance(part.get("video_url"), dict):
            video = part["video_url"].get("url")
        else:
            raise InvalidInputError(f"unsupported content part {kind!r}: use text and video_url parts")
    return "\n".join(texts), video


def _sampling(body: dict[str, Any], options: dict[str, Any]) -> None:
    """OpenAI's sampling fields as the ask options' generation settings and length."""
    length = body.get("max_completion_tokens", body.get("max_tokens"))
    if length is not None:
        options["max_new_tokens"] = length
    generation = dict(options.get("generation") or {})
    temperature = body.get("temperature")
    if temperature is not None and temperature != 0:
        generation.update(do_sample=True, temperature=temperature)
    for name in ("top_p", "top_k", "seed", "repetition_penalty"):
        if body.get(name) is not None:
            generation[name] = body[name]
    if generation:
        options["generation"] = generation


def _problem(job: Job) -> JSONResponse | None:
    if job.state == "done":
        return None
    if job.state == "failed":
        return error_response(400 if job.error_kind == "input" else 500, job.error or "failed", "job_failed")
    if job.state == "cancelled":
        return error_response(409, f"job {job.id} was cancelled", "job_cancelled")
    return error_response(504, f"job {job.id} is still {job.state}: follow it at /v1/jobs/{job.id}", "timeout")


def _answer(api: Api, job: Job) -> dict[str, Any]:
    return json.loads(api.engine.store.result(job.id))["answers"][0]


def _completion(job: Job, model: str, created: int, kind: str, choices: list, answer: dict | None) -> dict[str, Any]:
    extra = {"job": job.id}
    if answer is not None:
        extra.update(letter=answer.get("letter"), choice=answer.get("choice"))
    return {
        "id": f"chatcmpl-{job.id}",
        "object": kind,
        "created": created,
        "model": model,
        "choices": choices,
        "usage": None,
        "garvideo": extra,
    }


async def _stream(api: Api, job: Job, model: str, created: int, usage: bool) -> AsyncIterator[str]:
    """The answer as chunks: the text as GAR writes it (the part that can no longer change), then the end."""

    def chunk(delta: dict[str, Any], finish: str | None = None, answer: dict | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return (
            "data: " + json.dumps(_completion(job, model, created, "chat.completion.chunk", [choice], answer)) + "\n\n"
        )

    yield chunk({"role": "assistant", "content": ""})
    sent = ""
    watched = await run_in_threadpool(api.engine.log_of, job.id)
    index = 0
    while watched is not None:
        events, index, closed = watched.since(index)
        for _, name, data in events:
            if name == "text" and data["region"] is None:
                stable = settled_text(data["text"], data["done"])
                if stable.startswith(sent) and len(stable) > len(sent):
                    yield chunk({"content": stable[len(sent) :]})
                    sent = stable
        if closed:
            break
        await watched.wait(index, 15.0)
    job = await wait_finished(api.engine, job.id, MAX_WAIT_S) or job
    if job.state != "done":
        problem = _problem(job)
        yield "data: " + problem.body.decode() + "\n\n"
        return
    answer = _answer(api, job)
    final = answer["answer"]
    if final.startswith(sent) and len(final) > len(sent):
        yield chunk({"content": final[len(sent) :]})
    yield chunk({}, "stop", answer)
    if usage:
        yield "data: " + json.dumps({**_completion(job, model, created, "chat.completion.chunk", [], None)}) + "\n\n"
    yield "data: [DONE]\n\n"


def settled_text(text: str, done: bool) -> str:
    """The part of a text so far that later tokens cannot change: the final answer is stripped, and a region
    token still being written (``<Prom``) becomes the region's name only once complete."""
    text = text.lstrip()
    if done:
        return text.rstrip()
    opening = text.rfind("<")
    if opening != -1 and ">" not in text[opening:]:
        text = text[:opening]
    return text.rstrip().rstrip("\ufffd")
