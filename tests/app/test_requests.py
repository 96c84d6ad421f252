"""Requests as anyone can send them (raw HTTP, any JSON): each field is checked, each upload must be the caller's
own, and Gradio serves nothing from outside the app's temporary folder. A refused request is one line and
changes nothing."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garvideo.defaults import MAX_NEW_TOKENS_LIMIT

from .conftest import PLANTED_SECRET, SAMPLES

pytestmark = pytest.mark.slow  # every test here talks to the app server, a subprocess


def raw_call(app, name: str, data: list, session: str) -> tuple[str, object]:
    """POST ``data`` to ``/gradio_api/call/NAME`` as session ``session``: the last event and its data."""
    posted = httpx.post(f"{app.url}gradio_api/call/{name}", json={"data": data, "session_hash": session}, timeout=60)
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    last: tuple[str, object] = ("", None)
    with httpx.stream("GET", f"{app.url}gradio_api/call/{name}/{event_id}", timeout=120) as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                last = (event, json.loads(line.removeprefix("data: ")))
    return last


def refusal(app, name: str, data: list, session: str) -> str:
    """The one line a refused request gets."""
    event, payload = raw_call(app, name, data, session)
    assert event == "error", (name, data, payload)
    assert isinstance(payload, dict), payload
    return payload["error"]


def test_an_upload_must_be_the_callers_own(client, launched_app, tmp_path):
    """A request naming another session's video (under the app's folder, so Gradio lets it through) is refused
    and the file stays where it is; so is any file the upload route did not receive."""
    from .test_api import open_cat

    open_cat(client)
    (victim,) = [p for p in launched_app.files_left() if p.name == "cat.mp4"]
    assert "sessions" in victim.parts
    file_data = {"path": str(victim), "orig_name": "cat.mp4", "meta": {"_type": "gradio.FileData"}}
    line = refusal(launched_app, "open_upload", [file_data], "thief")
    assert line == "garvideo: error: only a video uploaded to this app can be opened this way: upload it again"
    assert victim.is_file()
    view, _, _ = client.predict(5, api_name="/seek")  # the owner goes on
    assert "data-frame='5'" in view
    # A file put in an upload-like folder of the app's by anything but the upload route is no upload either.
    planted = launched_app.temp_root / ("f" * 40) / "planted.mp4"
    planted.parent.mkdir()
    shutil.copy(SAMPLES / "cat.mp4", planted)
    file_data["path"] = str(planted)
    assert refusal(launched_app, "open_upload", [file_data], "thief").startswith("garvideo: error: only a video")
    assert planted.is_file()
    shutil.rmtree(planted.parent)
    # What Gradio refuses itself (not a file it received, not file data) never reaches the app.
    assert "not uploaded by a user" in refusal(
        launched_app, "open_upload", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}], "thief"
    )


def test_gradio_serves_nothing_from_its_default_folders(launched_app):
    """The app starts in a folder holding .gradio/cached_examples/secret.txt (Gradio's default examples cache):
    it is not served, and Gradio keeps no folder outside the app's temporary one."""
    for path in (PLANTED_SECRET.as_posix(), str(launched_app.cwd / PLANTED_SECRET)):
        assert httpx.get(f"{launched_app.url}gradio_api/file={path}", timeout=30).status_code == 403, path
    left = sorted(p.relative_to(launched_app.cwd) for p in launched_app.cwd.rglob("*") if p.is_file())
    assert left == [PLANTED_SECRET]


def test_each_field_is_checked(launched_app):
    session = "checked"
    raw_call(launched_app, "open_path", ["cat.mp4"], session)
    for bad, says in (
        ("cat\0.mp4", "the path holds a control character ('\\x00'): type it without"),
        ("c" * 5000, "the path is 5000 characters long: at most 1000 are taken"),
        (["cat.mp4"], "the path must be text, got a list"),
        (12, "the path must be text, got a number"),
    ):
        assert refusal(launched_app, "open_path", [bad], session) == f"garvideo: error: {says}"
    too_many = MAX_NEW_TOKENS_LIMIT + 1
    says = f"garvideo: error: max new tokens must be a whole number from 1 to {MAX_NEW_TOKENS_LIMIT}, got {too_many}"
    raw_call(launched_app, "add_region", ["cat", "box", "27,91,137,175", 12], session)
    describe = ["", "", 1, 0, 4, 8, "vanilla", too_many, False, 0]
    assert refusal(launched_app, "describe", describe, session) == says
    ask = ["What is <cat>?", "", "", "", 1, 8, "vanilla", 10**9, 0]
    assert refusal(launched_app, "ask", ask, session).endswith("got 1000000000")
    raw_call(launched_app, "close_session", [], session)


# -- fuzzing: every endpoint, one field at a time given something it must refuse ------------------------------

_NOT_TEXT = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))  # fmt: skip
_BAD_TEXT = st.one_of(
    _NOT_TEXT,
    st.builds(
        lambda a, c, b: a + c + b,
        st.text(max_size=5),
        st.sampled_from(["\0", "\x01", "\x1b", "\x7f"]),
        st.text(max_size=5),
    ),  # fmt: skip
    st.integers(4001, 6000).map(lambda n: "x" * n),
)
_NOT_WHOLE = st.one_of(
    st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2), st.integers(max_value=-1),
    st.integers(min_value=2**31), st.floats(0.1, 0.9), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)  # fmt: skip
_NOT_NUMBER = st.one_of(
    st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2), st.floats(max_value=-0.001, allow_infinity=False),
    st.floats(min_value=1e9, allow_infinity=False),
)  # fmt: skip
_NOT_CHOICE = st.one_of(st.text(max_size=6).filter(lambda t: t not in ("box", "points", "text", "vanilla", "thumb+tile")),
                        _NOT_TEXT)  # fmt: skip
_NOT_FLAG = st.one_of(st.integers(), st.text(max_size=3), st.lists(st.booleans(), max_size=1))
_BAD = {"text": _BAD_TEXT, "whole": _NOT_WHOLE, "number": _NOT_NUMBER, "choice": _NOT_CHOICE, "flag": _NOT_FLAG}

# Each endpoint's fields: (kind of field, a value it takes). Given these values, each call would do its work.
_SPAN = [("text", ""), ("text", ""), ("whole", 1)]
_GENERATION = [("whole", 8), ("choice", "vanilla"), ("whole", 3)]
ENDPOINTS = {
    "open_path": [("text", "square.mp4")],
    "seek": [("whole", 3)],
    "preview": [("text", "dog"), ("choice", "box"), ("text", "10,10,60,60"), ("whole", 3)],
    "add_region": [("text", "dog"), ("choice", "box"), ("text", "10,10,60,60"), ("whole", 3)],
    "remove_region": [("text", "cat"), ("whole", 0)],
    "find_region": [
        ("text", "thing"),
        ("text", "a cat"),
        ("flag", True),
        ("number", 0.0),
        ("number", 0.25),
        ("whole", 1),
        ("text", ""),
        ("text", ""),
        ("whole", 0),
    ],  # fmt: skip
    "track": [*_SPAN, ("whole", 0)],
    "describe": [*_SPAN, ("number", 0), ("whole", 4), *_GENERATION, ("flag", False), ("whole", 0)],
    "ask": [("text", "What is <cat>?"), ("text", ""), *_SPAN, *_GENERATION, ("whole", 0)],
    # the Live tab's source and settings (checked before a live session is reserved: nothing opens)
    "live_open": [
        ("text", "udp://127.0.0.1:9"),
        ("number", 1.0),
        ("whole", 4),
        ("whole", 3),
        ("whole", 4),
        ("number", 2.0),
        ("flag", False),
    ],  # fmt: skip
}


@st.composite
def bad_request(draw) -> tuple[str, list]:
    name = draw(st.sampled_from(sorted(ENDPOINTS)))
    fields = ENDPOINTS[name]
    spoiled = draw(st.integers(0, len(fields) - 1))
    kind = fields[spoiled][0]
    return name, [draw(_BAD[kind]) if k == spoiled else value for k, (_, value) in enumerate(fields)]


@pytest.fixture(scope="module")
def fuzz_session(launched_app):
    """A session with a video open and a region marked, so every endpoint would have work to do."""
    session = "fuzzed"
    assert raw_call(launched_app, "open_path", ["cat.mp4"], session)[0] == "complete"
    assert raw_call(launched_app, "add_region", ["cat", "box", "27,91,137,175", 12], session)[0] == "complete"
    yield session
    raw_call(launched_app, "close_session", [], session)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=bad_request())
def test_fuzzed_requests_get_one_line_and_change_nothing(launched_app, fuzz_session, request):
    name, data = request
    before = raw_call(launched_app, "summary", [], fuzz_session)
    files = launched_app.files_left()
    line = refusal(launched_app, name, data, fuzz_session)
    assert line.startswith("garvideo: error: ") and "\n" not in line and "internal error" not in line, line
    assert raw_call(launched_app, "summary", [], fuzz_session) == before
    assert launched_app.files_left() == files
