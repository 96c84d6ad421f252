"""What pipeline calls report while they work: progress, every tracked frame, GAR's text as it is generated."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.model import GenerationSettings
from garvideo.pipeline import FrameTracked, RegionPrompt, StageProgress, TextGenerated

from .conftest import box_prompt_values

TOKENS = 6


def _box_prompt(clip, frame: int) -> RegionPrompt:
    obj = clip.objects[1]  # the square stays in view
    return RegionPrompt.from_box("square", box_prompt_values(obj.boxes[frame]), frame)


def test_describe_reports_every_tracked_frame_and_streams_every_text(pipeline, leaving_clip):
    events = []
    frame = 10
    result = pipeline.describe(
        leaving_clip.path,
        [_box_prompt(leaving_clip, frame)],
        window=1.0,
        frames=3,
        frames_per_window=2,
        max_new_tokens=TOKENS,
        on_event=events.append,
    )
    track = result.tracks[0]

    tracked = [e for e in events if isinstance(e, FrameTracked)]
    # every frame of the track was reported once, the prompted frame first, with the mask the result holds
    assert sorted(e.index for e in tracked) == list(track.indices)
    assert tracked[0].index == frame
    for event in tracked:
        entry = event.regions[track.name]
        assert entry.index == event.index and entry.time == pytest.approx(event.time)
        assert np.array_equal(entry.mask(), track.mask_at(event.index))
    assert [e.done for e in tracked] == list(range(1, len(tracked) + 1))
    assert tracked[-1].done == tracked[-1].total
    track_progress = [e for e in events if isinstance(e, StageProgress) and e.stage == "track"]
    assert [(p.done, p.total) for p in track_progress] == [(e.done, e.total) for e in tracked]

    texts = [e for e in events if isinstance(e, TextGenerated)]
    finals = {(e.region, e.window): e for e in texts if e.done}
    timeline = result.region(track.name)
    described = {(track.name, None): timeline.description}
    for number, window in enumerate(timeline.windows):
        if window.description is not None:
            described[track.name, number] = window.description
    assert {key: e.text for key, e in finals.items()} == described
    for (_, number), event in finals.items():
        if number is None:
            assert event.start is None and event.end is None
        else:
            window = timeline.windows[number]
            assert (event.start, event.end) == (pytest.approx(window.start), pytest.approx(window.end))
    # text arrives before it is done: at least one partial text per prompt, none after its final one
    for key in finals:
        stream = [e for e in texts if (e.region, e.window) == key]
        assert len(stream) >= 2 and stream[-1].done and not any(e.done for e in stream[:-1])
    describe_progress = [e for e in events if isinstance(e, StageProgress) and e.stage == "describe"]
    assert [(p.done, p.total) for p in describe_progress] == [(k, len(finals)) for k in range(1, len(finals) + 1)]
    # tracking is over before GAR starts
    last_frame = max(i for i, e in enumerate(events) if isinstance(e, FrameTracked))
    assert last_frame < min(i for i, e in enumerate(events) if isinstance(e, TextGenerated))


def test_ask_streams_its_answer(pipeline, leaving_clip, truth):
    events = []
    answer = pipeline.ask(
        leaving_clip.path,
        "What is <object> doing?",
        tracks=truth,
        frames=3,
        max_new_tokens=TOKENS,
        on_event=events.append,
    )
    texts = [e for e in events if isinstance(e, TextGenerated)]
    assert texts[-1].done and texts[-1].text == answer.text
    assert all(e.region is None and e.window is None for e in texts)
    assert not any(e.done for e in texts[:-1]) and len(texts) >= 2
    assert [e for e in events if isinstance(e, StageProgress)] == [StageProgress("answer", 1, 1)]
    assert not any(isinstance(e, FrameTracked) for e in events)  # tracks were given: nothing tracked


class _Stop(Exception):
    pass


def test_an_exception_from_on_event_stops_the_call(pipeline, leaving_clip):
    seen = []

    def stop_after_three(event):
        if isinstance(event, FrameTracked):
            seen.append(event.index)
            if len(seen) == 3:
                raise _Stop

    frame = 10
    with pytest.raises(_Stop):
        pipeline.describe(
            leaving_clip.path, [_box_prompt(leaving_clip, frame)], max_new_tokens=TOKENS, on_event=stop_after_three
        )
    assert len(seen) == 3  # nothing was tracked (or reported) after the listener stopped it

    texts = []

    def stop_at_first_token(event):
        if isinstance(event, TextGenerated):
            texts.append(event)
            raise _Stop

    with pytest.raises(_Stop):
        pipeline.describe(
            leaving_clip.path, [_box_prompt(leaving_clip, frame)], max_new_tokens=TOKENS, on_event=stop_at_first_token
        )
    assert len(texts) == 1 and not texts[0].done


@pytest.mark.parametrize("decoder", ["static", "generate"])
def test_gar_streams_the_tokens_of_every_prompt_in_a_batch(pipeline, leaving_clip, truth, decoder):
    gar = pipeline.gar
    frames = [np.full((48, 64, 3), 40 * k, dtype=np.uint8) for k in range(1, 4)]
    masks = [np.zeros((48, 64), dtype=bool) for _ in frames]
    for k, mask in enumerate(masks):
        mask[5 + k : 30, 10 : 40 + k] = True
    prompts = [
        gar.prepare_video(frames[: 1 + k], {"thing": masks[: 1 + k]}, "Describe <thing>.") for k in range(len(frames))
    ]
    streamed: dict[int, list[tuple[str, bool]]] = {}
    settings = GenerationSettings(max_new_tokens=TOKENS, decoder=decoder)
    results = gar.answer(
        prompts, settings, on_text=lambda i, text, done: streamed.setdefault(i, []).append((text, done))
    )
    assert sorted(streamed) == [0, 1, 2]
    for index, result in enumerate(results):
        stream = streamed[index]
        new_tokens = len(result.token_ids) - (1 if result.finished else 0)  # EOS is not text
        assert len(stream) == new_tokens + 1 and stream[-1] == (result.text, True)
        assert not any(done for _, done in stream[:-1])
        assert stream[-2][0] == result.text  # the last partial text is the whole text: nothing held back
    # streaming changes nothing of what is generated
    assert [r.token_ids for r in gar.answer(prompts, settings)] == [r.token_ids for r in results]
