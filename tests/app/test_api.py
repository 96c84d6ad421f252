"""The app's HTTP API, driven with gradio_client against a launched `garvideo app` on tiny random models.

Every action of the page is checked through its endpoint; the files it offers are checked against what
the command line writes when given the exact commands the app shows.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app as cli_app
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from garvideo.outputs import validate_result_document
from garvideo.tracking import load_tracks
from garvideo.video import video_info

from .conftest import MARKUP_NAME, MAX_UPLOAD_MB, PLANTED_SECRET, SAMPLES

pytestmark = pytest.mark.slow  # every test here talks to the app server, a subprocess

CAT_BOX = "27,91,137,175"
QUICK = {"max_new": 3}  # a random model rambles: a few tokens per answer


def page(result) -> dict:
    """A full-page endpoint's fields by name (garvideo.app.ui.STATE is their order)."""
    from garvideo.app.ui import STATE

    assert len(result) == len(STATE)
    return dict(zip(STATE, result))


def rows(regions_html: str) -> list[list[str]]:
    """The regions table's cells, as the page shows them (text, unescaped)."""
    import html
    import re

    body = regions_html.split("<tbody>", 1)[1]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    ]


def error_of(call) -> str:
    with pytest.raises(AppError) as info:
        call()
    return str(info.value)


def cli_error(app, *args: str) -> str:
    """The one line the CLI prints for a mistake (with the app's models)."""
    models = ["--sam2", app.sam2, "-q"] + (["--model", app.gar] if args[0] != "track" else [])
    result = CliRunner().invoke(cli_app, [*args, *models], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("garvideo: error:")]
    return line


def open_cat(client) -> dict:
    return page(client.predict(handle_file(str(SAMPLES / "cat.mp4")), api_name="/open_upload"))


def test_open_upload_shows_the_videos_facts_and_scrubs(client):
    opened = open_cat(client)
    truth = video_info(SAMPLES / "cat.mp4")
    video = opened["details"]["video"]
    assert (video["width"], video["height"], video["num_frames"]) == (truth.width, truth.height, truth.num_frames)
    assert video["fps"] == pytest.approx(truth.fps) and video["opened_as"] == "cat.mp4"
    assert "384×256, 72 frames" in opened["facts"]
    assert (opened["frame"]["value"], opened["frame"]["maximum"]) == (0, 71) and "gv-img" in opened["view"]
    view, label, _ = client.predict(30, api_name="/seek")
    assert "data-frame='30'" in view
    assert label == "<div class='gv-where'>frame <b>30</b> of 72 · <b>00:00:02.500</b> of 00:00:06.000</div>"


def test_marks_corrections_and_removal(client):
    open_cat(client)
    added = page(client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region"))
    assert added["details"]["regions"] == [{"name": "cat", "kind": "box", "frame": 12, "mark": CAT_BOX}]
    assert added["name"] == "cat"  # the name field keeps the last name: a correction needs no retyping
    # A correction of the same region on another frame, by clicks (one on the background).
    corrected = page(client.predict("cat", "points", "80,120;!300,40", 40, api_name="/add_region"))
    assert [r["frame"] for r in corrected["details"]["regions"]] == [12, 40]
    assert rows(corrected["regions"]) == [["cat", "box", "12", CAT_BOX], ["cat", "points", "40", "80,120;!300,40"]]
    page(client.predict("cup", "box", "250,150,339,229", 0, api_name="/add_region"))
    after = page(client.predict("cat@40", 0, api_name="/remove_region"))
    assert [(r["name"], r["frame"]) for r in after["details"]["regions"]] == [("cat", 12), ("cup", 0)]
    after = page(client.predict("cup", 0, api_name="/remove_region"))
    assert [(r["name"], r["frame"]) for r in after["details"]["regions"]] == [("cat", 12)]
    assert "there is no region or mark 'dog'" in error_of(lambda: client.predict("dog", 0, api_name="/remove_region"))


def test_track_describe_ask_and_the_shown_commands_reproduce_them(client, tmp_path, monkeypatch):
    open_cat(client)
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    tracked = page(client.predict("", "", 1, 12, api_name="/track"))
    (summary,) = tracked["details"]["tracks"]
    assert summary["name"] == "cat" and summary["frames_tracked"] == 72
    assert "<b>cat</b>: 72 frames tracked" in tracked["track_text"]
    assert tracked["strip"].count("<figure") == 8 and "<figcaption>0 · 00:00:00.000</figcaption>" in tracked["strip"]
    assert "data-frame='12'" in tracked["view"]

    described = page(
        client.predict(start="", end="", window=2, overlay_on=True, index=12, api_name="/describe", **QUICK)
    )
    (region,) = described["details"]["description"]
    assert [row[1] for row in described["timeline"]["data"]] == [
        "00:00:00.000 – 00:00:02.000",
        "00:00:02.000 – 00:00:04.000",
        "00:00:04.000 – 00:00:06.000",
    ]
    assert [row[3] for row in described["timeline"]["data"]] == [w["description"] for w in region["timeline"]]
    overlay = video_info(described["overlay"])
    assert (overlay.width, overlay.height, overlay.num_frames) == (384, 256, 72)

    asked = page(
        client.predict(
            question="What is <cat>?", options="a cat\na dog", start="", end="", index=12, api_name="/ask", **QUICK
        )
    )
    answer = asked["details"]["answer"]
    assert answer["regions"] == ["cat"] and answer["options"] == ["a cat", "a dog"]
    assert asked["answer"] == answer["answer"]
    assert asked["letter"] == (
        f"{answer['letter']}. {answer['choice']}" if answer["letter"] else "(no option letter recognised)"
    )

    files = {Path(p).name: Path(p) for p in asked["downloads"]}
    assert sorted(files) == ["answer-1.json", "overlay.mp4", "result.json", "result.srt", "result.vtt", "tracks.json"]
    for name in ("result.json", "answer-1.json"):
        document = json.loads(files[name].read_text())
        validate_result_document(document)
        # the result lists the marks the tracks came from (the app describes and asks from its tracks file)
        assert [r["prompts"] for r in document["regions"]] == [
            [{"name": "cat", "when": {"frame": 12}, "box": [27, 91, 137, 175]}]
        ]

    # Run the commands the page shows, in a folder holding the clip, and compare what they write.
    lines = asked["command"].splitlines()
    assert [shlex.split(line)[:2] for line in lines] == [
        ["garvideo", "track"],
        ["garvideo", "describe"],
        ["garvideo", "ask"],
    ]
    work = tmp_path / "cli"
    work.mkdir()
    shutil.copy(SAMPLES / "cat.mp4", work / "cat.mp4")
    monkeypatch.chdir(work)
    for line in lines:
        result = CliRunner().invoke(cli_app, [*shlex.split(line)[1:], "-q"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    app_tracks, cli_tracks = load_tracks(files["tracks.json"]), load_tracks(work / "tracks.json")
    assert [t.to_dict() for t in app_tracks] == [t.to_dict() for t in cli_tracks]
    app_meta, cli_meta = (json.loads(p.read_text()) for p in (files["tracks.json"], work / "tracks.json"))
    assert app_meta["meta"]["prompts"] == cli_meta["meta"]["prompts"]
    for name in ("result.json", "answer-1.json"):
        assert _comparable(json.loads(files[name].read_text())) == _comparable(json.loads((work / name).read_text()))
        # the marks are known: the results list them, as the tracks file records them (issue 23)
        assert [p for r in json.loads(files[name].read_text())["regions"] for p in r["prompts"]] == app_meta["meta"][
            "prompts"
        ]
    for name in ("result.srt", "result.vtt"):
        assert files[name].read_text() == (work / name).read_text()
    cli_overlay = video_info(work / "overlay.mp4")
    assert (cli_overlay.num_frames, cli_overlay.width) == (overlay.num_frames, overlay.width)


def _comparable(document: dict) -> dict:
    """A result document without what differs between two runs of the same thing (time, paths, durations, the
    process's compile history)."""
    document = json.loads(json.dumps(document))
    document.pop("created")
    document["video"].pop("path")
    document["provenance"].pop("timings")
    for settings in document["provenance"]["settings"].values():
        # why decoding ran as it did and the warm-up it cost depend on the process's history (an app that has
        # described already has decoded more); what ran (the setting, eager or compiled) must still agree
        for run_history in ("reason", "warmup_s"):
            (settings.get("compile") or {}).pop(run_history, None)
    for model in ("gar", "sam2"):
        if document["provenance"][model]:
            document["provenance"][model].pop("model")  # the same folder, named from another working folder
    return document


def test_user_mistakes_get_the_clis_one_line_and_the_app_keeps_serving(client, launched_app):
    assert error_of(lambda: client.predict("", "", 1, 0, api_name="/track")) == (
        "garvideo: error: open a video first (upload one, or pick one under --root)"
    )
    open_cat(client)
    # A box of zero area: the same message as `garvideo track --box ...`.
    app_line = error_of(lambda: client.predict("cat", "box", "60,90,60,170", 12, api_name="/add_region"))
    cat = str(SAMPLES / "cat.mp4")
    assert app_line == cli_error(launched_app, "track", cat, "--box", "cat=60,90,60,170@12", "--out", "-")
    # A box wholly outside the 384x256 frame, and a name a question could not use.
    assert "lies outside the 384x256 frame" in error_of(
        lambda: client.predict("cat", "box", "400,300,500,400", 12, api_name="/add_region")
    )
    assert "on the command line a region name is letters, digits" in error_of(
        lambda: client.predict("my cat", "box", CAT_BOX, 12, api_name="/add_region")
    )
    assert "\n" not in app_line and app_line.startswith("garvideo: error: ")
    # Still serving: the same session goes on.
    view, _, _ = client.predict(5, api_name="/seek")
    assert "data-frame='5'" in view


def test_questions_about_unknown_or_too_many_regions(client, launched_app):
    open_cat(client)
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    cat = str(SAMPLES / "cat.mp4")
    app_line = error_of(lambda: client.predict(question="What is <dog>?", api_name="/ask", **QUICK))
    assert app_line == cli_error(launched_app, "ask", cat, "What is <dog>?", "--box", f"cat={CAT_BOX}@12")
    for k in range(2, 7):
        client.predict(f"r{k}", "box", f"{40 * k},10,{40 * k + 30},40", 0, api_name="/add_region")
    question = "What do <cat> <r2> <r3> <r4> <r5> <r6> have in common?"
    app_line = error_of(lambda: client.predict(question=question, api_name="/ask", **QUICK))
    boxes = [f"cat={CAT_BOX}@12", *(f"r{k}={40 * k},10,{40 * k + 30},40@0" for k in range(2, 7))]
    assert app_line == cli_error(launched_app, "ask", cat, question, *(a for b in boxes for a in ("--box", b)))
    assert "at most 5" in app_line


def test_bad_uploads_are_refused_and_removed(client, launched_app, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    message = error_of(lambda: client.predict(handle_file(str(text)), api_name="/open_upload"))
    assert message.startswith("garvideo: error: ") and "\n" not in message
    # named as the user gave it, never by the app's own path for it
    assert "notes.mp4" in message and str(launched_app.temp_root) not in message, message
    huge = tmp_path / "huge.mp4"
    huge.write_bytes(b"\0" * (MAX_UPLOAD_MB * 2**20 + 1))
    with pytest.raises(Exception, match="(?i)size|large"):
        client.predict(handle_file(str(huge)), api_name="/open_upload")
    # Neither upload stays in the app's folder; Gradio's empty upload leftovers go when the session ends.
    assert [p for p in launched_app.files_left() if p.stat().st_size] == []
    launched_app.settle_upload_leftovers()
    client.predict(api_name="/close_session")
    assert launched_app.files_left() == []


def test_root_files_open_and_nothing_outside_root_does(client, launched_app):
    opened = page(client.predict("sub/cat_and_cup.mp4", api_name="/open_path"))
    assert opened["details"]["video"]["opened_as"].endswith("sub/cat_and_cup.mp4")
    assert page(client.predict("link_in.mp4", api_name="/open_path"))["details"]["video"]["num_frames"] == 72
    refusals = {
        "../outside/secret.mp4": "('..' is not allowed)",
        "sub/../../outside/secret.mp4": "('..' is not allowed)",
        str(launched_app.root.parent / "outside" / "secret.mp4"): "is an absolute path",
        "link_out.mp4": "leads outside the app's --root folder",
        "link_dir/secret.mp4": "leads outside the app's --root folder",
        "missing.mp4": "there is no 'missing.mp4'",
    }
    for path, reason in refusals.items():
        assert reason in error_of(lambda path=path: client.predict(path, api_name="/open_path")), path
    assert "notes.txt is not a video file" in error_of(lambda: client.predict("notes.txt", api_name="/open_path"))
    # The picker lists the videos under --root and no link that leaves it.
    config = httpx.get(launched_app.url + "config", timeout=30).json()
    (picker,) = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "gv-root-pick"]
    listed = [choice[1] if isinstance(choice, list) else choice for choice in picker["props"]["choices"]]
    assert listed == [MARKUP_NAME, "cat.mp4", "link_in.mp4", "portrait.mp4", "square.mp4", "sub/cat_and_cup.mp4"]
    # Gradio's file route serves neither --root nor anything else outside the app's temporary folder.
    for path in (
        launched_app.root / "cat.mp4",
        launched_app.root.parent / "outside" / "secret.mp4",
        Path("/etc/passwd"),
    ):
        response = httpx.get(f"{launched_app.url}gradio_api/file={path}", timeout=30)
        assert response.status_code == 403, path


def test_closing_a_session_deletes_its_files(client, launched_app):
    open_cat(client)
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    assert [p.name for p in launched_app.files_left() if p.stat().st_size] == ["cat.mp4"]
    launched_app.settle_upload_leftovers()  # Gradio's empty upload leftovers are removed once settled
    closed = page(client.predict(api_name="/close_session"))
    assert closed["details"]["video"] is None and closed["details"]["regions"] == []
    assert launched_app.files_left() == []
    assert not any((launched_app.temp_root / "sessions").iterdir()), "a session folder outlived its session"
    written = [p for p in launched_app.cwd.rglob("*") if p.is_file() and p != launched_app.cwd / PLANTED_SECRET]
    assert written == [], "the app wrote into its working folder"


def test_two_clients_tracking_at_once_both_finish(launched_app, tmp_path):
    """Model work is queued one job at a time: the second waits for the first instead of failing."""
    from gradio_client import Client

    clients = [
        Client(launched_app.url, verbose=False, download_files=str(tmp_path / str(k)), analytics_enabled=False)
        for k in range(2)
    ]
    try:
        for k, c in enumerate(clients):
            open_cat(c)
            c.predict(f"cat{k}", "box", CAT_BOX, 12, api_name="/add_region")
        jobs = [c.submit("", "", 1, 0, api_name="/track") for c in clients]
        results = [page(job.result(timeout=120)) for job in jobs]
        assert [r["details"]["tracks"][0]["name"] for r in results] == ["cat0", "cat1"]
    finally:
        for c in clients:
            c.predict(api_name="/close_session")
            c.close()


def test_readme_client_example_runs(launched_app, monkeypatch, tmp_path):
    readme = (SAMPLES.parent / "README.md").read_text()
    section = readme.split("## The web app", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    assert 'Client("http://127.0.0.1:7860/")' in code
    code = code.replace(
        'Client("http://127.0.0.1:7860/")',
        f"Client({launched_app.url!r}, verbose=False, download_files={str(tmp_path)!r})",
    )
    code = code.replace('api_name="/describe"', 'max_new=3, api_name="/describe"').replace(
        'api_name="/ask"', 'max_new=3, api_name="/ask"'
    )
    monkeypatch.chdir(SAMPLES.parent)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["summary"]["regions"] == [{"name": "cat", "kind": "box", "frame": 12, "mark": CAT_BOX}]
    assert sorted(Path(f).name for f in namespace["files"]) == [
        "overlay.mp4",
        "result.json",
        "result.srt",
        "result.vtt",
        "tracks.json",
    ]
    assert namespace["answer"]["question"] == "What is <cat> doing?" and namespace["answer"]["regions"] == ["cat"]


def find(client, phrase: str, index: int = 30, **fields) -> dict:
    """``/find_region`` for the region ``cat`` (searched over the video unless ``on_frame=True``)."""
    fields = {"name": "cat", "on_frame": False, "box_threshold": 0, "max_instances": 1, **fields}
    return page(client.predict(phrase=phrase, start="", end="", index=index, api_name="/find_region", **fields))


def test_a_region_named_in_words_is_found_tracked_and_the_command_reproduces_it(
    client, launched_app, tmp_path, monkeypatch
):
    from garvideo.pipeline import Pipeline, RegionPrompt, TextSearch

    open_cat(client)
    found_page = find(client, "a cat", max_instances=2)
    (region,) = found_page["details"]["regions"]
    # What the pipeline finds with the same detector and settings, outside the app.
    truth = Pipeline(None, None, progress=False, detector=launched_app.detector)
    _, expected = truth.find(
        SAMPLES / "cat.mp4",
        [RegionPrompt.from_text("cat", "a cat")],
        search=TextSearch(box_threshold=0.0, max_instances=2),
    )
    assert region["found"] == [f.to_dict() for f in expected] and expected
    frame = expected[0].frame
    assert (region["kind"], region["mark"], region["frame"]) == ("text", "a cat", frame)
    # The page goes to the frame it was found on and lists the score and the --box that marks it again.
    assert found_page["frame"]["value"] == frame and f"data-frame='{frame}'" in found_page["view"]
    assert expected[0].box_option in rows(found_page["regions"])[0][3]

    tracked = page(client.predict("", "", 1, frame, api_name="/track"))
    assert [t["name"] for t in tracked["details"]["tracks"]] == [f.name for f in expected]
    (line,) = tracked["command"].splitlines()
    args = shlex.split(line)
    assert args[args.index("--text") + 1] == f"cat=a cat@{frame}"
    assert args[args.index("--detector") + 1] == launched_app.detector
    assert args[args.index("--box-threshold") + 1] == "0.0" and args[args.index("--max-instances") + 1] == "2"
    (tracks_file,) = [Path(p) for p in tracked["downloads"] if Path(p).name == "tracks.json"]

    work = tmp_path / "cli"
    work.mkdir()
    shutil.copy(SAMPLES / "cat.mp4", work / "cat.mp4")
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli_app, [*args[1:], "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    app_tracks, cli_tracks = load_tracks(tracks_file), load_tracks(work / "tracks.json")
    assert [t.to_dict() for t in app_tracks] == [t.to_dict() for t in cli_tracks]
    app_meta, cli_meta = (json.loads(p.read_text())["meta"] for p in (tracks_file, work / "tracks.json"))
    assert app_meta["prompts"] == cli_meta["prompts"]
    grounding = [m["provenance"]["settings"]["grounding"] for m in (app_meta, cli_meta)]
    assert grounding[0]["found"] == grounding[1]["found"] == [f.to_dict() for f in expected]


def test_a_phrase_found_nowhere_is_the_clis_error(client, launched_app):
    open_cat(client)
    app_line = error_of(lambda: find(client, "a cat", box_threshold=1))
    cat = str(SAMPLES / "cat.mp4")
    cli_line = cli_error(
        launched_app, "track", cat, "--text", "cat=a cat", "--box-threshold", "1",
        "--detector", launched_app.detector, "--out", "-",
    )  # fmt: skip
    assert app_line == cli_line and "'a cat' (region 'cat') was not found: searched 6 frames" in app_line
    # A name already marked is refused before the detector runs; the session has no region from the failure.
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    assert "the name 'cat' is taken" in error_of(lambda: find(client, "a cat", on_frame=True))
    after = page(client.predict("cup", "box", "250,150,339,229", 0, api_name="/add_region"))
    assert [(r["name"], r["kind"]) for r in after["details"]["regions"]] == [("cat", "box"), ("cup", "box")]


def previewed(result) -> dict:
    """/preview's fields by name: it changes only these (garvideo.app.ui.PREVIEWED)."""
    from garvideo.app.ui import PREVIEWED

    return dict(zip(PREVIEWED, result, strict=True))


def test_a_mark_shows_sam2s_mask_on_its_frame_before_it_is_added(client):
    open_cat(client)
    shown = previewed(client.predict("cat", "box", CAT_BOX, 12, api_name="/preview"))
    preview = shown["details"]["preview"]
    assert (preview["name"], preview["mark"], preview["frame"], preview["index"]) == ("cat", CAT_BOX, 12, 12)
    assert shown["details"]["regions"] == [] and shown["details"]["tracks"] is None  # not added, not tracked
    assert shown["region_status"].count("SAM2&#x27;s mask on frame 12") == 1 and "data-frame='12'" in shown["view"]
    # Nothing to preview without a mark; a mark that cannot be read is the CLI's line.
    assert previewed(client.predict("cat", "box", "", 12, api_name="/preview"))["details"]["preview"] is None
    assert error_of(lambda: client.predict("cat", "box", "1,2,3", 12, api_name="/preview")) == (
        "garvideo: error: --box 'cat=1,2,3@12': expected 4 comma-separated numbers, got '1,2,3'"
    )
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    tracked = page(client.predict("", "", 1, 12, api_name="/track"))
    # SAM2's mask of a mark on its own frame is the one a track starts from there.
    (tracks_file,) = [Path(p) for p in tracked["downloads"] if Path(p).name == "tracks.json"]
    (track,) = load_tracks(tracks_file)
    (on_frame,) = [f for f in track.frames if f.index == 12]
    assert {k: preview[k] for k in ("rle", "box", "visible")} == {
        k: v for k, v in on_frame.to_dict().items() if k in ("rle", "box", "visible")
    }
    assert preview["score"] == pytest.approx(on_frame.score, abs=1e-6)


def test_a_sessions_conversation_keeps_every_answer_and_its_command(client):
    open_cat(client)
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    client.predict(question="What is <cat> doing?", api_name="/ask", **QUICK)
    asked = page(client.predict(question="Which is <cat>?", options="a cat\na dog", api_name="/ask", **QUICK))
    turns = asked["details"]["conversation"]
    assert [t["question"] for t in turns] == ["What is <cat> doing?", "Which is <cat>?"]
    assert [t["options"] for t in turns] == [[], ["a cat", "a dog"]]
    assert [shlex.split(t["command"])[-2:] for t in turns] == [["--out", "answer-1.json"], ["--out", "answer-2.json"]]
    names = sorted(Path(p).name for p in asked["downloads"])
    assert "answer-1.json" in names and "answer-2.json" in names
    for turn in turns:  # the copyable text holds each question, answer and command
        for line in (turn["question"], turn["answer"]["answer"], turn["command"]):
            assert line in asked["conversation_text"]
    # markup in a question is text: the page's conversation shows it escaped
    assert "What is &lt;cat&gt; doing?" in asked["conversation"] and "<cat>" not in asked["conversation"]


def test_opening_a_video_clears_everything_of_the_previous_one(client):
    open_cat(client)
    client.predict("cat", "box", CAT_BOX, 12, api_name="/add_region")
    client.predict("cat", "box", "10,10,50,50", 3, api_name="/preview")
    opened = page(client.predict("square.mp4", api_name="/open_path"))
    details = opened["details"]
    assert (details["regions"], details["preview"], details["files"], details["conversation"]) == ([], None, [], [])
    assert (opened["mark"], opened["name"], opened["root_pick"]["value"]) == ("", "region1", "square.mp4")
    assert opened["details"]["video"]["opened_as"].endswith("square.mp4")
