"""The service's parts without a server: requests, keys, URLs, the job store, streaming text."""

from __future__ import annotations

import json
import threading

import pytest

from garvideo.errors import InvalidInputError
from garvideo.pipeline import TextSearch
from garvideo.serve.auth import Keys, bearer_key, key_hash
from garvideo.serve.openai import chat_to_request, settled_text
from garvideo.serve.requests import parse_request
from garvideo.serve.store import IdempotencyConflict, JobStore, StateFolderBusyError
from garvideo.serve.videos import check_url

BOX = {"name": "cat", "when": {"frame": 3}, "box": [10, 10, 40, 40]}


def describe(**extra) -> dict:
    return {"kind": "describe", "video": "a.mp4", "regions": [BOX], **extra}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "a job request is a JSON object"),
        ({"video": "a.mp4"}, 'a job request needs a "kind"'),
        ({"kind": "dance", "video": "a.mp4"}, "unknown kind 'dance': use one of describe, ask, track"),
        (describe(options={"framez": 3}), "unknown field 'options.framez': known fields here are start, end"),
        (describe(colour="red"), "unknown field 'colour'"),
        (describe(options={"frames": "3"}), "options.frames: input should be a valid integer"),
        (describe(options={"window": 0}), "options.window: input should be greater than 0"),
        (describe(options={"generation": {"temp": 1}}), "unknown field 'options.generation.temp'"),
        (describe(options={"box_threshold": 0.3}), "unknown field 'options.box_threshold'"),  # it is in "search"
        (describe(options={"search": {"every": 0}}), "options.search.every: input should be greater than 0"),
        (
            describe(regions=[{"name": "cat", "frame": 3, "box": [1, 2, 3, 4]}]),
            "regions[0]: region 'cat': the moment goes in \"when\"",
        ),
        (describe(regions=[{"name": "cat", "when": {"frame": 3}, "box": ["a", 2, 3, 4]}]), "regions[0]: "),
        (describe(regions=[]), "mark at least one region"),
        (describe(video=None), 'a job needs a "video"'),
        (describe(files=["subtitles"]), "files.0: input should be"),
        ({"kind": "track", "video": "a.mp4", "regions": [BOX], "files": ["srt"]}, "a track job makes no srt file"),
        ({"kind": "ask", "video": "a.mp4", "regions": [BOX]}, "question is missing"),
        ({"kind": "ask", "video": "a.mp4", "regions": [BOX], "question": " "}, "the question is empty"),
        ({"kind": "ask", "video": "a.mp4", "regions": [BOX], "question": "<dog>?"}, "<dog>"),
        ({"kind": "ask", "video": "a.mp4", "regions": [BOX], "question": "<cat>?", "choices": ["a"]}, "at least two"),
    ],
)
def test_a_bad_request_is_one_line_saying_what_to_write(body, message):
    with pytest.raises(InvalidInputError) as error:
        parse_request(body)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_request_keeps_only_the_options_given_and_the_pipeline_keywords_follow():
    given = {"frames": 4, "generation": {"do_sample": True, "seed": 3}, "search": {"box_threshold": 0.3}}
    request = parse_request(describe(options=given))
    assert request.options == given
    assert request.files == ("srt", "vtt", "tracks")
    keywords = request.pipeline_options()
    assert keywords["frames"] == 4 and keywords["generation"].seed == 3 and keywords["generation"].do_sample
    assert keywords["generation"].max_new_tokens == 512  # the length is max_new_tokens, whose default it took
    assert keywords["search"] == TextSearch(box_threshold=0.3)
    assert parse_request(request.to_json()) == request  # a stored request reads back equal
    assert request.digest(b"x") == parse_request(request.to_json()).digest(b"x") != request.digest(b"y")


def test_keys_file_keeps_hashes_only(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# clients\nalice alice-secret-key-0001\n\nbob sha256:{key_hash('bob-secret-key-00002')}\n")
    keys = Keys.from_file(path)
    assert "alice-secret-key-0001" not in repr(keys)
    assert keys.client("alice-secret-key-0001") == "alice" and keys.client("bob-secret-key-00002") == "bob"
    assert keys.client("alice-secret-key-0002") is None
    assert bearer_key("Bearer abc") == "abc" and bearer_key("Basic abc") is None and bearer_key(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "write 'NAME KEY'"),
        ("alice short", "shorter than 16"),
        ("al/ice alice-secret-key-0001", "a client name is"),
        ("alice sha256:1234", "64 hexadecimal digits"),
        ("alice alice-secret-key-0001\nalice alice-secret-key-0002", "gives one name twice: alice"),
        ("alice alice-secret-key-0001\nbob alice-secret-key-0001", "gives one key twice"),
        ("# nobody", "names no client"),
    ],
)
def test_bad_keys_files_are_refused(tmp_path, text, message):
    path = tmp_path / "keys"
    path.write_text(text + "\n")
    with pytest.raises(InvalidInputError, match=message):
        Keys.from_file(path)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://videos.example.org/a.mp4", True),
        ("https://videos.example.org", False),  # the prefix is the folder, with its slash
        ("https://videos.example.org.evil.net/a.mp4", False),
        ("https://videos.example.org/../secret.mp4", False),
        ("https://videos.example.org/%2e%2e/secret.mp4", False),
        ("https://user:pw@videos.example.org/a.mp4", False),
        ("ftp://videos.example.org/a.mp4", False),
        ("http://cdn.example.org/x", True),  # a prefix without the slash ends at a boundary
        ("http://cdn.example.org.evil.net/x", False),
    ],
)
def test_only_urls_under_an_allowed_prefix_pass(url, allowed):
    prefixes = ("https://videos.example.org/", "http://cdn.example.org")
    if allowed:
        assert check_url(url, prefixes) == url
    else:
        with pytest.raises(InvalidInputError):
            check_url(url, prefixes)


def test_the_store_finishes_a_run_once_and_ignores_a_stale_one(tmp_path):
    store = JobStore(tmp_path / "state")
    job, created = store.add("alice", "describe", {"kind": "describe"}, {"source": "root", "name": "a.mp4"})
    assert created and job.state == "queued"
    run = store.claim()
    assert run.id == job.id and run.state == "running" and run.attempts == 1
    assert store.requeue(job.id, 1, max_attempts=3, reason="its worker died") == "queued"
    assert not store.finish(job.id, 1, "done", b"{}")  # the first run was given up: it cannot finish the job
    again = store.claim()
    assert again.attempts == 2
    assert store.finish(job.id, 2, "done", b'{"ok": 1}', ("srt",))
    assert not store.finish(job.id, 2, "done", b"{}")  # nor twice
    assert store.result(job.id) == b'{"ok": 1}' and store.get(job.id).files == ("srt",)
    states = [state for _, state, _ in store.transitions(job.id)]
    assert states == ["queued", "running", "queued", "running", "done"]
    store.close()


def test_the_store_recovers_what_a_stopped_server_was_running(tmp_path):
    store = JobStore(tmp_path / "state")
    ids = [store.add("alice", "ask", {}, {"source": "root", "name": f"{n}.mp4"})[0].id for n in range(3)]
    store.claim()
    store.claim()
    store.request_cancel(ids[1])  # asked while running: it ends cancelled instead of running again
    store.close()
    store = JobStore(tmp_path / "state")  # the restarted server
    assert sorted(store.recover(max_attempts=3)) == sorted([(ids[0], "queued"), (ids[1], "cancelled")])
    assert [store.get(i).state for i in ids] == ["queued", "cancelled", "queued"]
    for _ in range(2):  # a job that stopped the server on each of its runs is not run forever
        store.claim()
        store.close()
        store = JobStore(tmp_path / "state")
        store.recover(max_attempts=3)
    assert store.get(ids[0]).state == "failed" and "on each of its 3 runs" in store.get(ids[0]).error
    store.close()


def test_idempotency_keys_and_the_state_folder_lock(tmp_path):
    store = JobStore(tmp_path / "state")
    video = {"source": "root", "name": "a.mp4"}
    first, created = store.add("alice", "ask", {}, video, "key-1", "hash-a")
    again, created_again = store.add("alice", "ask", {}, video, "key-1", "hash-a")
    assert created and not created_again and again.id == first.id
    other, created_other = store.add("bob", "ask", {}, video, "key-1", "hash-b")  # keys are per client
    assert created_other and other.id != first.id
    with pytest.raises(IdempotencyConflict, match="was used for another request"):
        store.add("alice", "ask", {}, video, "key-1", "hash-other")
    with pytest.raises(StateFolderBusyError, match="another garvideo serve is using the state folder"):
        JobStore(tmp_path / "state")
    store.close()


def test_concurrent_claims_take_each_job_once(tmp_path):
    store = JobStore(tmp_path / "state")
    for n in range(40):
        store.add(f"client{n % 4}", "ask", {}, {"source": "root", "name": "a.mp4"})
    taken: list[str] = []

    def take() -> None:
        while (job := store.claim()) is not None:
            taken.append(job.id)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == len(set(taken)) == 40
    store.close()


def test_a_client_runs_at_most_its_share(tmp_path):
    store = JobStore(tmp_path / "state")
    for owner in ("alice", "alice", "alice", "bob"):
        store.add(owner, "ask", {}, {"source": "root", "name": "a.mp4"})
    owners = [store.claim(max_running_per_owner=1) for _ in range(3)]
    assert [job.owner if job else None for job in owners] == ["alice", "bob", None]
    store.close()


def test_streamed_text_is_sent_once_settled():
    assert settled_text(" The cat", False) == "The cat"
    assert settled_text("The <Prom", False) == "The"  # a region token being written
    assert settled_text("The <cat> sits ", False) == "The <cat> sits"
    assert settled_text(" The cat sits. ", True) == "The cat sits."


def test_chat_requests_map_onto_ask_jobs():
    message = {
        "role": "user",
        "content": [{"type": "text", "text": "What is <cat>?"}, {"type": "video_url", "video_url": {"url": "a.mp4"}}],
        "regions": [BOX],
    }
    body = {"model": "gar", "messages": [message], "temperature": 0.5, "seed": 4, "max_tokens": 9, "stream": True}
    data, masklets, stream = chat_to_request(body, ["gar"])
    assert stream and masklets is None
    assert data["video"] == "a.mp4" and data["question"] == "What is <cat>?" and data["regions"] == [BOX]
    assert data["options"] == {"max_new_tokens": 9, "generation": {"do_sample": True, "temperature": 0.5, "seed": 4}}
    assert parse_request(data).pipeline_options()["generation"].temperature == 0.5
    greedy, _, _ = chat_to_request({**body, "temperature": 0}, ["gar"])
    assert "generation" not in greedy["options"] or not greedy["options"]["generation"].get("do_sample")
    masklet = {"name": "cat", "masklet": [{"frame": 0, "mask": {"size": [2, 2], "counts": "04"}}]}
    _, masklets, _ = chat_to_request({**body, "messages": [{**message, "regions": [masklet]}]}, ["gar"])
    assert masklets == [masklet]
    for wrong, text in (
        ({**body, "model": "gpt-4"}, "does not exist here"),
        ({**body, "tools": []}, "unrecognized request argument: tools"),
        ({**body, "n": 2}, "n above 1"),
        ({**body, "messages": [{"role": "system", "content": "x"}]}, "no user message"),
        ({**body, "messages": [{**message, "regions": [BOX, masklet]}]}, "every region as a masklet, or none"),
    ):
        with pytest.raises(Exception, match=text):
            chat_to_request(wrong, ["gar"])
    assert json.dumps(data)  # JSON all through


def test_an_unreachable_url_is_one_line(tmp_path):
    from garvideo.serve.videos import fetch_url

    with pytest.raises(InvalidInputError, match=r"^cannot fetch http://127.0.0.1:1/ok/a.mp4: .*refused"):
        fetch_url("http://127.0.0.1:1/ok/a.mp4", ("http://127.0.0.1:1/ok/",), tmp_path, 1 << 20, "too large")
    assert list(tmp_path.iterdir()) == []
