"""Every bad request gets one JSON error line in the CLI's words, and the server keeps serving.

These need the shared server but no model work: the requests are refused before a job exists.
"""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import MAX_UPLOAD_MB


def error_of(response: httpx.Response, status: int) -> str:
    """The message of a one-line JSON error with this status."""
    assert response.status_code == status, response.text
    assert "\n" not in response.text.strip()
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    return body["error"]["message"]


def test_keys_none_wrong_and_another_clients_job(server, material):
    anonymous = server.client(None)
    assert anonymous.get("/healthz").json() == {"status": "ok"}  # the one open route
    for path in ("/readyz", "/metrics", "/v1/jobs", "/v1/models"):
        assert "needs an API key" in error_of(anonymous.get(path), 401)
    wrong = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer not-a-key-of-anyone"})
    assert error_of(wrong.get("/v1/jobs"), 401) == "the API key is not valid"
    assert "needs an API key" in error_of(anonymous.post("/v1/jobs", json=material.describe()), 401)
    job = server.engine.store.add("alice", "describe", material.describe(), {"source": "root", "name": "x"})[0]
    server.engine.store.request_cancel(job.id)  # a job of alice's, never run
    assert server.client("alice").get(f"/v1/jobs/{job.id}").json()["state"] == "cancelled"
    for method in ("get", "delete"):
        message = error_of(getattr(server.client("bob"), method)(f"/v1/jobs/{job.id}"), 404)
        assert message == f"there is no job {job.id!r} (it may have been deleted or expired)"
    assert job.id not in [j["id"] for j in server.client("bob").get("/v1/jobs").json()["jobs"]]
    assert job.id in [j["id"] for j in server.client("alice").get("/v1/jobs").json()["jobs"]]
    wrong.close()


@pytest.mark.parametrize(
    ("video", "message"),
    [
        ("../outside/secret.mp4", "'../outside/secret.mp4' leaves the server's --root folder ('..' is not allowed)"),
        ("/etc/passwd", "'/etc/passwd' is an absolute path: give a path relative to the server's --root folder"),
        ("link_out.mp4", "'link_out.mp4' leads outside the server's --root folder (through a symbolic link)"),
        ("link_dir/secret.mp4", "'link_dir/secret.mp4' leads outside the server's --root folder"),
        ("clips/../../outside/secret.mp4", "leaves the server's --root folder"),
        ("missing.mp4", "there is no 'missing.mp4' under the server's --root folder"),
        ("clips", "'clips' under the server's --root folder cannot be read as a video: it is a folder, not a file"),
        ("notes.txt", "notes.txt"),  # not a video: the CLI's message for it
        ("clips/corrupt.mp4", "corrupt.mp4"),
        ("file:///etc/passwd", "only http and https URLs are fetched, not file:"),
        ("http://127.0.0.1:1/other/moving.mp4", "this server fetches only URLs under"),
    ],
)
def test_paths_out_of_the_root_and_urls_not_allowed_are_refused(server, material, video, message):
    assert message in error_of(server.client("alice").post("/v1/jobs", json=material.describe(video=video)), 400)


def test_malformed_json_unknown_fields_and_bad_regions(server, material):
    alice = server.client("alice")
    cases = [
        (alice.post("/v1/jobs", content=b'{"kind": "describe",', headers={"content-type": "application/json"}), 400),
        (alice.post("/v1/jobs", content=b"kind=describe", headers={"content-type": "text/plain"}), 415),
        (alice.post("/v1/jobs", json=material.describe(options={"framez": 2})), 400),
        (alice.post("/v1/jobs", json=material.describe(regions=[{"name": "a", "box": [1, 2, 3, 4]}])), 400),
        (alice.post("/v1/jobs", json={**material.describe(), "question": "why?"}), 400),
        (alice.post("/v1/ask", json={**material.ask(), "kind": "describe"}), 400),
        (alice.get("/v1/jobs", params={"limit": 0}), 400),
        (alice.get("/v1/jobs/nope/files/srt"), 404),
        (alice.get("/v1/nothing"), 404),
        (alice.put("/v1/jobs"), 405),
    ]
    messages = [error_of(response, status) for response, status in cases]
    assert messages[0].startswith("the body is not valid JSON at line 1 column")
    assert messages[2].startswith("unknown field 'options.framez': known fields here are")
    assert messages[3].startswith('regions[0]: region \'a\' needs "when": {"frame": INDEX} or {"time": SECONDS}')
    assert messages[4].startswith("unknown field 'question'")
    assert messages[5] == 'this route runs ask jobs: leave out "kind" (or post to /v1/jobs)'
    assert messages[6] == "limit: input should be greater than or equal to 1"
    assert alice.get("/healthz").status_code == 200  # still serving


def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(server, material):
    request = json.dumps({k: v for k, v in material.describe().items() if k != "video"})
    before = sorted(server.engine.store.uploads_root.iterdir())
    with open(material.root / "cat.mp4", "rb") as video:  # 73 kB, the limit is 51 kB
        response = server.client("alice").post(
            "/v1/jobs", files={"request": (None, request), "video": ("cat.mp4", video, "video/mp4")}
        )
    assert error_of(response, 413) == f"the upload is larger than this server's limit of {MAX_UPLOAD_MB:g} MB"
    assert sorted(server.engine.store.uploads_root.iterdir()) == before
    too_big = "data:video/mp4;base64," + "A" * int(MAX_UPLOAD_MB * (1 << 20) * 1.4)
    assert "larger than this server's limit" in error_of(
        server.client("alice").post("/v1/jobs", json=material.describe(video=too_big)), 413
    )
    extra = {"request": (None, request), "video": ("a.mp4", b"x", "video/mp4"), "other": (None, "1")}
    assert error_of(server.client("alice").post("/v1/jobs", files=extra), 400).startswith("unknown part 'other'")
    assert sorted(server.engine.store.uploads_root.iterdir()) == before


def test_the_openapi_page_documents_the_request(server):
    schema = server.client(None).get("/openapi.json").json()
    assert {"DescribeJob", "AskJob", "TrackJob", "DescribeOptions", "JobBody"} <= set(schema["components"]["schemas"])
    assert server.client(None).get("/docs").status_code == 200
    options = schema["components"]["schemas"]["DescribeOptions"]["properties"]
    assert options["frames"]["default"] == 8 and options["frames_per_window"]["default"] == 4
