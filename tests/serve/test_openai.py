"""The OpenAI-compatible routes, driven by the official `openai` Python client against the shared server."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from garvideo.masks import encode_rle

from .conftest import KEYS

pytestmark = pytest.mark.slow  # model work on the tiny models


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEYS["alice"], max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture
def model(client):
    (only,) = client.models.list().data
    return only.id


def message(material, question: str = "What is <thing> doing?", video: str = "clips/moving.mp4", regions=None) -> dict:
    return {
        "role": "user",
        "content": [{"type": "text", "text": question}, {"type": "video_url", "video_url": {"url": video}}],
        "regions": regions or [material.region()],
    }


def test_models_lists_the_gar_model(client, material):
    assert client.models.list().data[0].id == str(material.gar)


def test_a_streamed_answer_equals_the_whole_answer_and_the_jobs(client, model, material, server):
    settings = {"max_tokens": 12, "extra_body": {"garvideo": {"options": {"frames": 2}}}}
    whole = client.chat.completions.create(model=model, messages=[message(material)], **settings)
    answer = whole.choices[0].message.content
    assert whole.object == "chat.completion" and whole.choices[0].finish_reason == "stop" and answer
    job = server.client("alice").get(f"/v1/jobs/{whole.model_extra['garvideo']['job']}").json()
    assert job["kind"] == "ask" and job["result"]["answers"][0]["answer"] == answer
    stream = client.chat.completions.create(model=model, messages=[message(material)], stream=True, **settings)
    chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert all(isinstance(d, str) for d in deltas) and "".join(deltas) == answer
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert len(deltas) >= 2  # streamed as generated, not in one piece


def test_sampling_settings_are_per_request(client, model, material, pipeline):
    def ask(**sampling) -> str:
        settings = {"max_tokens": 6, **sampling}
        reply = client.chat.completions.create(model=model, messages=[message(material)], **settings)
        return reply.choices[0].message.content

    greedy = ask()
    assert ask(temperature=0) == greedy
    sampled = [ask(temperature=1.5, top_p=0.95, seed=seed) for seed in (1, 1, 2, 3, 4)]
    assert sampled[0] == sampled[1]  # one seed, one answer
    assert len(set(sampled)) > 1 or sampled[0] != greedy  # sampling is on: seeds give other texts
    from garvideo.tracking import RegionPrompt

    short = pipeline.ask(material.root / "clips" / "moving.mp4", "What is <thing> doing?",
                         [RegionPrompt.from_dict(material.region())], max_new_tokens=2, progress=False)  # fmt: skip
    assert ask(max_tokens=2) == short.text


def test_multiple_choice_masklets_and_data_urls(client, model, material, pipeline):
    from garvideo.tracking import RegionPrompt

    video = material.root / "clips" / "moving.mp4"
    tracked = pipeline.track(video, [RegionPrompt.from_dict(material.region())], progress=False).tracks[0]
    masklet = {
        "name": "thing",
        "masklet": [{"frame": f.index, "mask": encode_rle(f.mask())} for f in tracked.frames[:6]],
    }
    data_url = "data:video/mp4;base64," + base64.b64encode(video.read_bytes()).decode()
    reply = client.chat.completions.create(
        model=model,
        messages=[message(material, "Is <thing> round?", data_url, [masklet])],
        max_tokens=3,
        extra_body={"garvideo": {"choices": ["yes", "no"], "options": {"frames": 2}}},
    )
    extra = reply.model_extra["garvideo"]
    alone = pipeline.ask(video, "Is <thing> round?", tracks=[_first(tracked, 6)], options=["yes", "no"],
                         frames=2, max_new_tokens=3, progress=False)  # fmt: skip
    assert reply.choices[0].message.content == alone.text and extra["letter"] == alone.letter


def _first(track, count):
    from garvideo.tracking import Track

    return Track(track.name, 1, track.frames[:count])


def test_openai_errors_are_openai_errors(client, model, material, web):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[message(material)])
    assert "does not exist here" in missing.value.message
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(model=model, messages=[message(material, "What is <dog>?")])
    assert "<dog>" in unknown.value.message
    with pytest.raises(openai.BadRequestError, match="leaves the server's --root folder"):
        client.chat.completions.create(model=model, messages=[message(material, video="../outside/secret.mp4")])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=client.base_url, api_key="wrong-key", max_retries=0).models.list()
    outside = message(material, regions=[{**material.region(), "box": [500, 500, 600, 600]}])
    with pytest.raises(openai.BadRequestError, match="lies outside the 160x120 frame"):  # refused before it streams
        client.chat.completions.create(model=model, messages=[outside], stream=True)
    failing = message(material, video=f"{web}/allowed/jump")  # fetched when its job runs: fails in the stream
    with pytest.raises(openai.APIError, match="this server fetches only URLs under"):
        list(client.chat.completions.create(model=model, messages=[failing], stream=True))
    assert json.dumps(message(material))  # plain JSON: any client can send it
