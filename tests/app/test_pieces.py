"""The app's pieces that need no server: request fields, what the page shows (escaped), the model queue."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from garvideo.app import fields, jobs, view
from garvideo.app.regions import make_mark
from garvideo.app.session import Notice, Session, Turn
from garvideo.defaults import MAX_NEW_TOKENS, MAX_NEW_TOKENS_LIMIT
from garvideo.errors import GarvideoError, InvalidInputError
from garvideo.pipeline import Answer, DescribeResult, RegionTimeline, TimelineWindow
from garvideo.pipeline.events import StageProgress, TextGenerated

MARKUP = "<img src=x onerror=alert(1)> **bold** <b>"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fields.text(["a"], "the path"), "the path must be text, got a list"),
        (lambda: fields.text(7, "the path"), "the path must be text, got a number"),
        (lambda: fields.text("a\0b", "the path"), r"the path holds a control character \('\\x00'\)"),
        (lambda: fields.text("x" * 5000, "the path"), "the path is 5000 characters long: at most 1000 are taken"),
        (
            lambda: fields.whole(True, "the stride", 1, 9),
            "the stride must be a whole number from 1 to 9, got true/false",
        ),
        (lambda: fields.whole(2.5, "the stride", 1, 9), "got 2.5"),
        (lambda: fields.whole("3", "the stride", 1, 9), "got '3'"),
        (lambda: fields.number(float("inf"), "the window", 0, 9), "the window must be a number from 0 to 9"),
        (lambda: fields.choice("tile", "the tiling", ("vanilla",)), "the tiling must be one of vanilla, got 'tile'"),
        (lambda: fields.flag("yes", "draw the overlay"), "draw the overlay must be true or false"),
        (lambda: fields.upload("cat.mp4"), "the upload must be a file Gradio received, got str"),
    ],
)
def test_fields_refuse_what_they_cannot_take_in_one_line(call, message):
    with pytest.raises(InvalidInputError, match=message) as refused:
        call()
    assert "\n" not in str(refused.value)


def test_fields_take_what_the_page_sends():
    assert fields.text(None, "the name") == "" and fields.text("a\tb\nc", "the question") == "a\tb\nc"
    assert fields.whole(3.0, "the frame", 0, 9) == 3 and fields.whole(None, "the stride", 1, 9, default=1) == 1
    assert fields.window(0) is None and fields.window(2) == 2.0
    assert fields.generation(None, None, None).max_new_tokens == MAX_NEW_TOKENS
    assert fields.generation(8, "vanilla", MAX_NEW_TOKENS_LIMIT).max_new_tokens == MAX_NEW_TOKENS_LIMIT
    with pytest.raises(InvalidInputError, match=f"from 1 to {MAX_NEW_TOKENS_LIMIT}, got 1000000000"):
        fields.generation(8, "vanilla", 1_000_000_000)
    upload = fields.upload({"path": "/tmp/x/abc.mp4", "orig_name": "my clip.mp4", "meta": {}})
    assert (upload.path, upload.name) == ("/tmp/x/abc.mp4", "my clip.mp4")
    assert fields.settings("1.5", "", None).span.start == "1.5"
    with pytest.raises(InvalidInputError, match="cannot read"):
        fields.settings("soon", "", 1)


def _session_with(markup: str) -> Session:
    session = Session(key="k", folder=Path("/nonexistent"))
    session.marks = [make_mark("__cat__", "box", "1,1,9,9", 0, 20, 20)]
    window = TimelineWindow(0.0, 1.0, True, markup, (0,), (0.0,))
    timeline = RegionTimeline("__cat__", markup, (window,), (0.0, 1.0), (0,), (0.0,))
    session.described = DescribeResult(video=None, regions=(timeline,), tracks=(), provenance=None)  # type: ignore[arg-type]
    answer = Answer(question=f"What is <__cat__>? {markup}", regions=("__cat__",), text=markup)
    session.conversation = [Turn(1, answer.question, (markup, "b"), answer, markup, f"garvideo ask '{markup}'")]
    return session


def test_what_the_page_shows_is_text_never_markup():
    """A model's text, a question, a region name and an option reach the page escaped (and no Markdown is read)."""
    session = _session_with(MARKUP)
    shown = "".join(
        [
            view.regions(session),
            view.descriptions(session),
            view.conversation(session),
            view.status(Notice("error", f"garvideo: error: {MARKUP}")),
        ]  # fmt: skip
    )
    assert "<img" not in shown
    assert view.esc(MARKUP) in shown and "__cat__" in shown
    assert shown.count("&lt;img src=x onerror=alert(1)&gt;") >= 5
    assert MARKUP in view.conversation_text(session)  # the copyable text is plain: as written


def test_streamed_texts_show_as_they_come_and_the_answer_joins_the_conversation():
    from garvideo.app.session import LiveRun

    session = _session_with("done")
    session.conversation.append(Turn(2, "And <__cat__>?", ()))
    run = session.live = LiveRun("ask")
    run.hear(StageProgress("answer", 0, 1))
    run.hear(TextGenerated("__cat__", None, None, None, "a <cat", False))
    run.hear(TextGenerated(None, None, None, None, "it <sits", False))
    assert "a &lt;cat" in view.descriptions(session) and "…" in view.descriptions(session)
    assert "it &lt;sits …" in view.conversation(session)
    assert "And <__cat__>?" not in view.conversation_text(session)  # unanswered: not in the copy yet


def test_the_queue_tells_each_waiting_job_its_place():
    line = jobs.ModelQueue()
    first, second, third = line.join(), line.join(), line.join()
    assert [line.wait(t, 0) for t in (first, second, third)] == [0, 1, 2]
    assert jobs.waiting_text(1) == "waiting for 1 job to finish (one model job runs at a time)"
    line.leave(first)
    assert [line.wait(t, 0) for t in (second, third)] == [0, 1]
    released = threading.Thread(target=lambda: line.leave(second))
    released.start()
    assert line.wait(third, 5) == 0  # woken when the job ahead leaves
    released.join()


def test_a_job_streams_its_events_and_returns_or_raises_what_the_work_did():
    def work(hear):
        for k in range(3):
            hear(StageProgress("track", k + 1, 3))
        return "tracked"

    runner = jobs.stream(work)
    batches = []
    while True:
        try:
            batches.append(next(runner))
        except StopIteration as done:
            assert done.value == "tracked"
            break
    assert [e.done for batch in batches for e in batch] == [1, 2, 3]
    assert [e.done for e in batches[0]] == [1]  # the first of its kind is shown at once, alone

    def failing(hear):
        raise InvalidInputError("no such region")

    with pytest.raises(InvalidInputError, match="no such region"):
        list(jobs.stream(failing))


def test_closing_a_job_stops_its_work_at_the_next_event():
    cancelled, stopped = threading.Event(), threading.Event()

    def work(hear):
        hear(StageProgress("track", 1, None))
        assert cancelled.wait(60)  # the page goes away while the work runs
        try:
            hear(StageProgress("track", 2, None))
        except GarvideoError:
            stopped.set()
            raise

    runner = jobs.stream(work, cancelled)
    next(runner)
    runner.close()  # cancels, then waits for the work to end
    assert stopped.is_set()


def test_object_and_background_clicks_look_different_and_regions_keep_their_colour():
    import numpy as np

    from garvideo.app.drawing import BACKGROUND_CLICK, colour_of, draw_frame
    from garvideo.outputs.drawing import region_colour

    image = np.zeros((100, 100, 3), np.uint8)
    clicks = make_mark("cat", "points", "20,20;!70,70", 0, 100, 100)
    drawn = draw_frame(image, 0, ["cat"], [clicks])
    assert tuple(drawn[20, 20]) == region_colour(0)  # on the object: a dot of the region's colour
    assert tuple(drawn[70, 70]) == BACKGROUND_CLICK  # background: a red cross, whatever the region's colour
    # a region's colour is its place among the regions, as in the overlay video; a new name gets the next one
    session = Session(key="k", folder=Path("/nonexistent"))
    session.marks = [make_mark(name, "box", "1,1,9,9", 0, 20, 20) for name in ("cat", "cup")]
    for k, name in enumerate(session.names):
        r, g, b = region_colour(k)
        assert f"<tr data-name='{name}'><td><span class='gv-swatch' style='background: rgb({r}, {g}, {b})'>" in (
            view.regions(session)
        )
    assert colour_of("dog", session.names) == region_colour(2)


def test_a_marks_own_mask_shows_over_the_tracks_until_it_is_added():
    """After tracking, a correction drawn on a frame shows SAM2's mask of it there, not the old track's."""
    import types

    import numpy as np

    from garvideo.app.drawing import frame_masks
    from garvideo.tracking import Track

    old, new = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    old[2:6, 2:6], new[10:18, 10:18] = True, True
    session = Session(key="k", folder=Path("/nonexistent"))
    session.marks = [make_mark("cat", "box", "2,2,6,6", 0, 20, 20)]
    session.tracking = types.SimpleNamespace(tracks=(Track.from_masks("cat", {0: old, 1: old}, fps=1),))
    assert np.array_equal(frame_masks(session, 1, live=False)["cat"], old)
    session.draft = make_mark("cat", "box", "10,10,18,18", 1, 20, 20)
    session.previews[session.draft.key] = Track.from_masks("cat", {1: new}, fps=1).frames[0]
    assert np.array_equal(frame_masks(session, 1, live=False)["cat"], new)
    assert np.array_equal(frame_masks(session, 0, live=False)["cat"], old)  # other frames keep the track's
