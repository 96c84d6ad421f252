"""The pipeline's seams that a live session or a training loader reuses: regions or tracks in, tracks out
(``Pipeline.tracks_for``), and which frames each prompt shows (``garvideo.pipeline.planning``)."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.errors import InvalidInputError
from garvideo.model.errors import TooManyRegionsError
from garvideo.pipeline import Pipeline, PipelineError, RegionPrompt, RegionTracks, Track
from garvideo.pipeline.planning import plan_answer, plan_description, visible_frames
from garvideo.pipeline.prompting import Question
from garvideo.video import open_video, time_span, window_bounds

from .conftest import box_prompt_values

NEVER_SEEN = "never visible between .* check its prompt, or widen the range"


def _prompt(clip, obj: int, frame: int, name: str | None = None) -> RegionPrompt:
    truth = clip.objects[obj]
    return RegionPrompt.from_box(name or truth.name, box_prompt_values(truth.boxes[frame]), frame)


def _whole(clip):
    with open_video(clip.path) as reader:
        return time_span(reader.timeline)


def test_given_tracks_are_checked_then_used_as_they_are_without_a_model(leaving_clip, truth):
    bare = Pipeline(None, None, progress=False)  # given tracks need no SAM2
    with open_video(leaving_clip.path) as reader:
        got = bare.tracks_for(reader, tracks=truth)
        assert isinstance(got, RegionTracks) and not got.tracked and got.found == ()
        assert all(a is b for a, b in zip(got.tracks, truth, strict=True)) and got.timings.total == 0
        second = truth[1].name
        assert [t.name for t in bare.tracks_for(reader, tracks=truth, select=lambda names: [second]).tracks] == [second]
        small = Track.from_masks("small", {0: np.ones((10, 10), dtype=bool)}, fps=12)
        with pytest.raises(InvalidInputError, match="has 10x10 masks but the video is 160x120"):
            bare.tracks_for(reader, tracks=[small])
        with pytest.raises(InvalidInputError, match="either regions"):
            bare.tracks_for(reader, [_prompt(leaving_clip, 1, 0)], tracks=truth)
        with pytest.raises(InvalidInputError, match="regions must be RegionPrompt objects, got tuple"):
            bare.tracks_for(reader, [(1, 2, 30, 40)])
        with pytest.raises(InvalidInputError, match="search must be a TextSearch, got float"):
            bare.tracks_for(reader, tracks=truth, search=0.3)
        with pytest.raises(PipelineError, match="without a SAM2 tracker"):
            bare.tracks_for(reader, [_prompt(leaving_clip, 1, 0)])


def test_regions_become_the_tracks_a_description_is_made_from(pipeline, leaving_clip):
    square, other = _prompt(leaving_clip, 1, 6), _prompt(leaving_clip, 0, 2)
    with open_video(leaving_clip.path) as reader:
        span = time_span(reader.timeline, 0.5, 1.5)
        # Only the regions `select` keeps are tracked: ask keeps those its question names.
        got = pipeline.tracks_for(reader, [other, square], span=span, stride=2, select=lambda names: [square.name])
    assert got.tracked and [t.name for t in got.tracks] == [square.name] and got.timings.track > 0
    indices = got.tracks[0].indices
    assert 6 in indices and set(np.diff(indices)) == {2} and indices[-1] < span.stop
    described = pipeline.describe(
        leaving_clip.path, [square], start=0.5, end=1.5, stride=2, frames=2, frames_per_window=1, max_new_tokens=2
    )
    (track,) = described.tracks
    assert track.indices == indices
    assert all(np.array_equal(track.mask_at(i), got.tracks[0].mask_at(i)) for i in indices)


def test_a_description_shows_each_region_where_it_is_seen_spread_over_each_window(leaving_clip, truth):
    span = _whole(leaving_clip)
    bounds = window_bounds(span.start, span.end, 0.5)
    plan = plan_description(truth, span, bounds, frames=3, frames_per_window=2)
    times = leaving_clip.times
    for obj in leaving_clip.objects:
        seen = [i for i, visible in enumerate(obj.visible) if visible]
        overall = plan.frames[obj.name, None]
        assert len(overall) == 3 and (overall[0], overall[-1]) == (seen[0], seen[-1]) and set(overall) <= set(seen)
        assert plan.visible_spans[obj.name] == (times[seen[0]], times[seen[-1]])
        for number, (a, b) in enumerate(bounds):
            inside = [i for i in seen if a <= times[i] < b]
            frames = plan.frames[obj.name, number]
            assert frames == (tuple(inside) if len(inside) <= 2 else (inside[0], inside[-1])), (obj.name, number)
    # the object leaves half-way: its last window shows nothing and is no prompt
    assert plan.frames["object", len(bounds) - 1] == () and ("object", len(bounds) - 1) not in dict(plan.prompts())
    assert plan.untracked == frozenset()  # tracked on every frame: each window says seen or not seen
    assert plan.frame_indices() == sorted({i for frames in plan.frames.values() for i in frames})


def test_sparse_tracks_leave_windows_unknown_not_unseen(leaving_clip):
    obj = leaving_clip.objects[1]
    every_sixth = {i: obj.masks[i] for i in range(0, leaving_clip.num_frames, 6)}
    sparse = Track.from_masks(obj.name, every_sixth, times=leaving_clip.times)
    span = _whole(leaving_clip)
    bounds = window_bounds(span.start, span.end, 0.25)  # three frames each: every other window holds no tracked frame
    plan = plan_description([sparse], span, bounds, frames=2, frames_per_window=2)
    times = leaving_clip.times
    empty = {n for n, (a, b) in enumerate(bounds) if not any(a <= times[i] < b for i in every_sixth)}
    assert empty and plan.untracked == {(obj.name, n) for n in empty}
    assert all(plan.frames[obj.name, n] == () for n in empty)


def test_an_answer_shows_frames_where_any_of_its_regions_is_seen(leaving_clip, truth):
    span = _whole(leaving_clip)
    chosen = plan_answer(truth, span, frames=5)
    seen = sorted({i for obj in leaving_clip.objects for i, visible in enumerate(obj.visible) if visible})
    assert len(chosen) == 5 and (chosen[0], chosen[-1]) == (seen[0], seen[-1]) and set(chosen) <= set(seen)
    # A region never seen in the range is refused with one message, whether described or asked about.
    with open_video(leaving_clip.path) as reader:
        late = time_span(reader.timeline, 1.5, 2.0)
    with pytest.raises(PipelineError, match=f"'object' is {NEVER_SEEN}"):
        visible_frames(truth[0], late)
    with pytest.raises(PipelineError, match=f"'object' is {NEVER_SEEN}"):
        plan_answer(truth, late, frames=5)
    with pytest.raises(PipelineError, match=f"'object' is {NEVER_SEEN}"):
        plan_description(truth, late, [(late.start, late.end)], frames=2, frames_per_window=1)


def test_a_question_is_about_the_regions_it_names_in_the_order_given():
    question = Question.of("Is <b> left of <a>?", ["<c> is", "no"], limit=2)
    assert Question.of("Is <b> left of <a>?", None, limit=5).regions_among(["a", "b", "c"]) == ["a", "b"]
    assert Question.of("What is this?", None, limit=5).regions_among(["a", "b"]) == ["a", "b"]  # none named: all
    with pytest.raises(TooManyRegionsError, match="about 3 regions .* at most 2"):  # an option names <c>
        question.regions_among(["a", "b", "c", "d"])
    with pytest.raises(InvalidInputError, match="<z>"):
        Question.of("Is <z> here?", None, limit=5).regions_among(["a"])
    with pytest.raises(InvalidInputError, match="question is empty"):
        Question.of(" ", None, limit=5)
    assert Question.of("Which?", ("x", 2), limit=5).options == ("x", "2")
