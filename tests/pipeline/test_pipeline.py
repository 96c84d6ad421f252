"""The pipeline over generated clips with tiny random models (offline, CPU)."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from garvideo import InvalidInputError
from garvideo.model import GenerationSettings, TooManyRegionsError
from garvideo.model.prompts import parse_option_letter
from garvideo.pipeline import Pipeline, PipelineError, RegionPrompt, Track
from garvideo.testing.waiting import when_filled
from garvideo.video import open_video

from .conftest import box_prompt_values, first_visible

SHORT = 4  # tokens: enough to exercise generation, quick on a CPU


def test_describe_windows_cover_the_range_and_mark_absence(pipeline, leaving_clip, truth):
    result = pipeline.describe(
        leaving_clip.path, tracks=truth, window=0.5, frames=4, frames_per_window=2, max_new_tokens=SHORT
    )
    duration = open_video(leaving_clip.path).duration
    obj = leaving_clip.objects[0]
    timeline = result.region(obj.name)

    windows = timeline.windows
    assert windows[0].start == 0.0 and windows[-1].end == pytest.approx(duration)
    assert all(a.end == b.start for a, b in zip(windows, windows[1:]))
    last_seen = max(i for i, v in enumerate(obj.visible) if v)
    assert timeline.visible_span == (leaving_clip.times[first_visible(obj)], leaving_clip.times[last_seen])
    for window in windows:
        expected_visible = any(window.start <= t < window.end for t, v in zip(leaving_clip.times, obj.visible) if v)
        assert window.visible == expected_visible
        if window.visible:
            assert window.description is not None and window.frames
            assert all(window.start <= t < window.end for t in window.times)
            assert all(obj.visible[i] for i in window.frames)
            assert [leaving_clip.times[i] for i in window.frames] == pytest.approx(list(window.times))
        else:
            assert window.description is None and window.frames == ()
    # the object leaves half-way: the later windows say so
    assert not windows[-1].visible and windows[0].visible
    # the overall description uses visible frames only, spread over the visible span
    assert all(obj.visible[i] for i in timeline.frames) and len(timeline.frames) == 4
    assert timeline.frames[0] == first_visible(obj) and timeline.frames[-1] == last_seen

    prov = result.provenance
    assert prov.sam2 is None and prov.gar is not None and prov.settings["tracks_given"]
    assert set(prov.frames) >= set(timeline.frames)
    assert prov.timings.track == 0 and prov.timings.encode > 0 and prov.timings.generate > 0
    assert prov.timings.decode > 0


def test_same_inputs_give_the_same_result_twice(pipeline, leaving_clip, truth):
    def run():
        return pipeline.describe(
            leaving_clip.path, tracks=truth[:1], window=1.0, frames=3, frames_per_window=2, max_new_tokens=SHORT
        )

    first, second = run(), run()
    assert [r.description for r in first.regions] == [r.description for r in second.regions]
    assert [[w.description for w in r.windows] for r in first.regions] == [
        [w.description for w in r.windows] for r in second.regions
    ]


def test_describe_tracks_a_prompt_both_ways(pipeline, leaving_clip):
    obj = leaving_clip.objects[1]  # the square stays in view
    prompt = RegionPrompt.from_box("square", box_prompt_values(obj.boxes[10]), 10)
    result = pipeline.describe(
        leaving_clip.path,
        [prompt],
        start=0.25,
        end=1.5,
        window=0.5,
        frames=2,
        frames_per_window=1,
        max_new_tokens=SHORT,
    )
    (track,) = result.tracks
    assert track.name == "square"
    assert min(track.indices) < 10 < max(track.indices)  # before and after the prompted frame
    prov = result.provenance
    assert prov.sam2 is not None and prov.timings.track > 0
    timeline = result.region("square")
    assert timeline.windows[0].start == 0.25 and timeline.windows[-1].end == 1.5
    used = [i for w in timeline.windows for i in w.frames]
    assert all(0.25 <= leaving_clip.times[i] < 1.5 for i in used)


def test_track_only_pipeline(models_dir, leaving_clip):
    tracker_only = Pipeline.from_pretrained(model=None, sam2=models_dir / "sam2", progress=False)
    result = tracker_only.track(
        leaving_clip.path, [RegionPrompt.from_box("a", (10, 10, 40, 40), "0.5s")], start=0.0, end=1.0, stride=2
    )
    (track,) = result
    assert track.indices[0] == 0 and 6 in track.indices  # 0.5 s = frame 6 at 12 fps
    assert all(i < 12 for i in track.indices)
    with pytest.raises(PipelineError, match="without a GAR model"):
        tracker_only.describe(leaving_clip.path, [RegionPrompt.from_box("a", (10, 10, 40, 40), 0)])


def test_tracking_decodes_ahead_in_a_thread_and_tracks_as_decoding_in_place(models_dir, leaving_clip, monkeypatch):
    from garvideo.pipeline.timed_source import TimedSource
    from garvideo.video import VideoReader

    decoding_threads = set()
    iter_frames = VideoReader.iter_frames

    def recording(self, *args, **kwargs):
        for frame in iter_frames(self, *args, **kwargs):
            decoding_threads.add(threading.current_thread().name)
            yield frame

    monkeypatch.setattr(VideoReader, "iter_frames", recording)
    tracker_only = Pipeline.from_pretrained(model=None, sam2=models_dir / "sam2", progress=False)
    preparing_threads = set()
    pixels = tracker_only.tracker._pixels

    def recording_pixels(*args):
        preparing_threads.add(threading.current_thread().name)
        return pixels(*args)

    monkeypatch.setattr(tracker_only.tracker, "_pixels", recording_pixels)
    prompt = RegionPrompt.from_box("square", box_prompt_values(leaving_clip.objects[1].boxes[10]), 10)
    result = tracker_only.track(leaving_clip.path, [prompt])
    assert decoding_threads == {"garvideo-decode-ahead"}
    main = threading.current_thread().name
    assert preparing_threads == {main}  # on the CPU the frames' preprocessing stays in the tracking thread
    timings = result.provenance.timings
    assert timings.decode >= 0 and timings.track > 0

    decoding_threads.clear()
    with open_video(leaving_clip.path) as video:
        in_place = tracker_only.tracker.track(TimedSource(video, ahead=0), [prompt], progress=False)
    assert decoding_threads == {main}
    (track,), (expected,) = result.tracks, in_place
    assert track.indices == expected.indices == tuple(range(leaving_clip.num_frames))
    for a, b in zip(track.frames, expected.frames, strict=True):
        assert (a.index, a.time, a.rle, a.score) == (b.index, b.time, b.rle, b.score)
    assert [t for t in threading.enumerate() if t.name == "garvideo-decode-ahead"] == []

    # with the tracker's preprocessing in the decode thread (the pipeline's choice on a GPU): the same tracks
    preparing_threads.clear()
    with open_video(leaving_clip.path) as video:
        source = TimedSource(video, prepare=tracker_only.tracker.prepare)
        (prepared,) = tracker_only.tracker.track(source, [prompt], progress=False)
    assert preparing_threads == {"garvideo-decode-ahead"}
    assert [(f.index, f.rle, f.score) for f in prepared.frames] == [(f.index, f.rle, f.score) for f in track.frames]


def test_tracking_streams_decode_a_few_frames_ahead_forward_and_a_chunk_ahead_backward(leaving_clip, monkeypatch):
    from garvideo.pipeline.timed_source import TimedSource
    from garvideo.video import VideoReader

    decoded: list[int] = []
    iter_frames = VideoReader.iter_frames

    def recording(self, *args, **kwargs):
        for frame in iter_frames(self, *args, **kwargs):
            decoded.append(frame.index)
            yield frame

    monkeypatch.setattr(VideoReader, "iter_frames", recording)
    with open_video(leaving_clip.path, max_buffered_frames=5) as video:
        source = TimedSource(video, ahead=2)
        forward = source.iter_frames(0, 20, 1)
        next(forward)
        assert when_filled(decoded, 3) == [0, 1, 2]  # the frame taken and two ahead
        forward.close()
        decoded.clear()
        backward = source.iter_frames(19, None, -1)
        next(backward)
        when_filled(decoded, 6)
        # a chunk's worth (5) ahead of frame 19: down to frame 14, for which the reader decoded the whole next
        # chunk (frames 14-10) while frame 19 is tracked
        assert decoded == list(range(19, 13, -1))
        backward.close()
    assert source.work_seconds > 0


def test_ask_two_named_regions(pipeline, leaving_clip, truth):
    answer = pipeline.ask(
        leaving_clip.path,
        question="What is <object> doing next to <square>?",
        tracks=truth,
        frames=4,
        max_new_tokens=SHORT,
    )
    assert answer.regions == ("object", "square")
    assert answer.letter is None and answer.options is None
    assert isinstance(answer.text, str)
    assert len(answer.provenance.frames) == 4
    again = pipeline.ask(
        leaving_clip.path,
        question="What is <object> doing next to <square>?",
        tracks=truth,
        frames=4,
        max_new_tokens=SHORT,
    )
    assert again.text == answer.text


def test_regions_named_in_the_options_are_used_too(pipeline, leaving_clip, truth):
    answer = pipeline.ask(
        leaving_clip.path,
        question="What is <object> next to?",
        options=["<square>", "nothing"],
        tracks=truth,
        frames=2,
        max_new_tokens=SHORT,
    )
    assert answer.regions == ("object", "square")
    with pytest.raises(InvalidInputError, match="<dog>"):
        pipeline.ask(leaving_clip.path, question="Which?", options=["<dog>", "<object>"], tracks=truth)


def test_ask_only_uses_the_named_regions_and_the_time_range(pipeline, leaving_clip, truth):
    answer = pipeline.ask(
        leaving_clip.path,
        question="Where does <square> go?",
        tracks=truth,
        frames=3,
        start=1.0,
        end=1.9,
        max_new_tokens=SHORT,
    )
    assert answer.regions == ("square",)
    assert answer.time_range == (1.0, 1.9)
    assert all(1.0 <= t < 1.9 for t in answer.provenance.times)


def _letter_model(pipeline: Pipeline, letter_ids: tuple[int, int]) -> Pipeline:
    """A copy of the tiny GAR whose output layer can only say one of two letters.

    The final norm keeps one hidden dimension; the output rows of the two
    letters are +1 and -1 on it and every other row is zero, so greedy
    decoding answers one of those letters whatever the input.
    """
    gar = copy.copy(pipeline.gar)
    gar.model = copy.deepcopy(pipeline.gar.model)
    language = gar.model.mllm
    with torch.no_grad():
        norm = language.model.language_model.norm.weight
        norm.zero_()
        norm[0] = 1.0
        head = language.lm_head.weight
        head.zero_()
        head[letter_ids[0], 0] = 10.0
        head[letter_ids[1], 0] = -10.0
    return Pipeline(gar, None, progress=False)


def test_multiple_choice_answer_is_parsed_to_a_letter(pipeline, leaving_clip, truth):
    tokenizer = pipeline.gar.processor.tokenizer
    ids = tuple(tokenizer.convert_tokens_to_ids(letter) for letter in ("B", "C"))
    assert all(isinstance(i, int) and i >= 0 for i in ids)
    constrained = _letter_model(pipeline, ids)
    answer = constrained.ask(
        leaving_clip.path,
        question="What colour is <square>?",
        options=["red", "yellow and blue", "green"],
        tracks=truth,
        frames=2,
        max_new_tokens=1,
    )
    assert answer.text in ("B", "C")
    assert answer.letter == answer.text
    assert answer.choice == {"B": "yellow and blue", "C": "green"}[answer.letter]
    assert parse_option_letter(answer.text, ["red", "yellow and blue", "green"]) == answer.letter


def test_user_mistakes_are_clear_errors(pipeline, leaving_clip, truth):
    path = leaving_clip.path
    with pytest.raises(InvalidInputError, match=r"<dog>.*not among the given regions"):
        pipeline.ask(path, question="What is <dog> doing?", tracks=truth)
    with pytest.raises(InvalidInputError, match="question is empty"):
        pipeline.ask(path, question="  ", tracks=truth)
    with pytest.raises(InvalidInputError, match="start time 5.000 s is beyond the end"):
        pipeline.describe(path, tracks=truth, start=5.0, end=9.0)
    with pytest.raises(InvalidInputError, match="outside"):
        pipeline.describe(path, tracks=truth, start=1.0, end=9.0)
    with pytest.raises(InvalidInputError, match="empty"):
        pipeline.describe(path, tracks=truth, start=1.0, end=0.5)
    with pytest.raises(PipelineError, match="'object' is never visible"):
        pipeline.describe(path, tracks=truth[:1], start=1.2, end=1.9)
    with pytest.raises(PipelineError, match="never visible"):
        pipeline.ask(path, question="Where is <object>?", tracks=truth, start=1.2, end=1.9)
    with pytest.raises(InvalidInputError, match="either regions"):
        pipeline.describe(path)
    with pytest.raises(InvalidInputError, match="outside the 160x120 frame"):
        pipeline.describe(path, [RegionPrompt.from_box("a", (500, 500, 600, 600), 0)])
    with pytest.raises(InvalidInputError, match="beyond the end"):
        pipeline.describe(path, [RegionPrompt.from_box("a", (10, 10, 40, 40), "30s")])


def test_more_than_five_regions_are_refused_not_dropped(pipeline, leaving_clip, truth):
    many = [Track(name=f"r{k}", obj_id=k + 1, frames=truth[0].frames) for k in range(6)]
    question = "Which of " + ", ".join(f"<r{k}>" for k in range(6)) + " is largest?"
    with pytest.raises(TooManyRegionsError, match="at most 5"):
        pipeline.ask(leaving_clip.path, question=question, tracks=many)
    # describing six regions is fine: each is described on its own
    result = pipeline.describe(
        leaving_clip.path,
        tracks=many,
        window=2.0,
        frames=1,
        frames_per_window=1,
        max_new_tokens=1,
    )
    assert [r.name for r in result.regions] == [f"r{k}" for k in range(6)]


def test_tracks_of_another_size_are_refused(pipeline, leaving_clip):
    wrong = Track.from_masks("x", {0: np.ones((10, 10), bool)}, fps=12)
    with pytest.raises(InvalidInputError, match="10x10 masks but the video is 160x120"):
        pipeline.describe(leaving_clip.path, tracks=[wrong])


def test_descriptions_and_subtitles_carry_no_special_tokens(pipeline, leaving_clip, truth, monkeypatch):
    """What the random model generates includes special tokens; what reaches the user (and the SRT) does not."""
    from garvideo.outputs import to_srt
    from garvideo.outputs.document import timeline_cues

    gar = pipeline.gar
    tokenizer = gar.processor.tokenizer
    special = {int(i): t.content for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    generated = []
    real_generate = gar._generate  # every path to the model (generate, answer) goes through it

    def spy(*args, **kwargs):
        results = real_generate(*args, **kwargs)
        generated.extend(t for r in results for t in r.token_ids)
        return results

    monkeypatch.setattr(gar, "_generate", spy)
    result = pipeline.describe(
        leaving_clip.path, tracks=truth, window=0.5, frames=3, frames_per_window=2, max_new_tokens=40
    )
    emitted = {special[t] for t in generated if t in special and t != gar.processor.eos_token_id}
    assert emitted, "the tiny model emitted no special token: pick another seed or more tokens so this test bites"
    texts = [t.description for t in result.regions] + [
        w.description for t in result.regions for w in t.windows if w.visible
    ]
    srt = to_srt(timeline_cues(result))
    for token in emitted:
        assert token not in srt and not any(token in text for text in texts), token


@pytest.mark.slow
def test_each_stage_runs_on_its_own_torch_threads(models_dir, leaving_clip, truth, monkeypatch):
    from garvideo.devices import cpu_cores
    from garvideo.tracking import RegionPrompt

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the test session pins it; a user's run does not
    before = torch.get_num_threads()

    def spy(pipe):
        seen = {}
        for stage, obj, method in (
            ("track", pipe.tracker, "track"),
            ("gar", pipe.gar, "answer"),
            ("ask", pipe.gar, "ask_video"),
        ):
            original = getattr(obj, method)

            def wrapped(*args, _original=original, _stage=stage, **kwargs):
                seen[_stage] = torch.get_num_threads()
                return _original(*args, **kwargs)

            monkeypatch.setattr(obj, method, wrapped)
        return seen

    obj = leaving_clip.objects[0]
    region = RegionPrompt.from_box("object", box_prompt_values(obj.boxes[0]), 0)
    for threads, expected in (
        (None, {"track": 1, "gar": cpu_cores(), "ask": cpu_cores()}),
        (2, dict.fromkeys(("track", "gar", "ask"), 2)),
    ):
        pipe = Pipeline.from_pretrained(models_dir / "gar", models_dir / "sam2", progress=False, threads=threads)
        seen = spy(pipe)
        pipe.track(leaving_clip.path, [region], end=0.5)
        pipe.describe(
            leaving_clip.path,
            tracks=truth[:1],
            frames=2,
            frames_per_window=1,
            window=1.0,
            max_new_tokens=2,
        )
        pipe.ask(
            leaving_clip.path,
            question="What is <object>?",
            tracks=truth[:1],
            frames=2,
            max_new_tokens=2,
        )
        assert seen == expected
        assert torch.get_num_threads() == before  # restored after each stage
    with pytest.raises(InvalidInputError, match="threads must be"):
        Pipeline(None, None, threads=0)


def test_the_answer_length_has_one_name(pipeline, leaving_clip, truth):
    """``max_new_tokens`` is the length; ``generation`` carries the rest and may not say another length."""
    with pytest.raises(InvalidInputError, match="give the length once, as max_new_tokens=7"):
        pipeline.describe(leaving_clip.path, tracks=truth, generation=GenerationSettings(max_new_tokens=7))
    with pytest.raises(InvalidInputError, match="give the length once"):
        pipeline.ask(
            leaving_clip.path, "What is <object>?", tracks=truth, generation=GenerationSettings(max_new_tokens=7)
        )
    answer = pipeline.ask(
        leaving_clip.path,
        "What is <object>?",
        tracks=truth,
        frames=1,
        max_new_tokens=2,
        generation=GenerationSettings(do_sample=True, seed=5),
    )
    used = answer.provenance.settings["generation"]
    assert (used["max_new_tokens"], used["do_sample"], used["seed"]) == (2, True, 5)
    assert len(answer.provenance.frames) == 1


def test_progress_is_chosen_per_call(models_dir, leaving_clip, capsys):
    region = RegionPrompt.from_box("object", box_prompt_values(leaving_clip.objects[0].boxes[0]), 0)
    loud = Pipeline.from_pretrained(model=None, sam2=models_dir / "sam2", progress=True)
    capsys.readouterr()
    loud.track(leaving_clip.path, [region], end=0.5, progress=False)
    assert "%|" not in capsys.readouterr().err
    loud.track(leaving_clip.path, [region], end=0.5)  # the pipeline's default, unchanged by the quiet call
    assert "%|" in capsys.readouterr().err
    assert loud.progress is True
