"""Decoded frames: the right pixels for each index, in displayed orientation, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from garvideo.errors import InvalidInputError
from garvideo.testing.clips import index_image, read_index
from garvideo.video import Frame, open_video
from garvideo.video.decord_backend import decord_available


def _check(frames: list[Frame], truth) -> None:
    for frame in frames:
        assert read_index(frame.image) == frame.index
        assert frame.time == pytest.approx(truth.times[frame.index], abs=1e-9)
        assert frame.image.shape == (truth.height, truth.width, 3)
        assert frame.image.dtype == np.uint8


@pytest.mark.parametrize(
    "fixture", ["cfr_clip", "vfr_mp4_clip", "vfr_mkv_clip", "long_gop_clip", "odd_clip", "audio_clip"]
)
def test_every_frame_in_order(fixture, request):
    truth = request.getfixturevalue(fixture)
    with open_video(truth.path, backend="pyav") as video:
        frames = list(video.iter_frames())
    assert [f.index for f in frames] == list(range(truth.num_frames))
    _check(frames, truth)


def test_rotated_frames_come_out_upright(rotated_clip):
    with open_video(rotated_clip.path, backend="pyav") as video:
        frames = list(video.iter_frames())
    assert len(frames) == rotated_clip.num_frames
    _check(frames, rotated_clip)  # the index code only reads back in the displayed orientation


@pytest.mark.parametrize(
    "start, stop, step",
    [
        (0, None, 1),
        (5, 50, 7),
        (59, 62, 1),
        (100, None, 3),
        (119, None, -1),
        (70, 10, -4),
        (61, 58, -1),
        (0, None, -1),
        (5, 5, 1),
        (40, None, 1000),
    ],
)
def test_iter_frames_has_range_semantics(long_gop_clip, start, stop, step):
    with open_video(long_gop_clip.path, backend="pyav", max_buffered_frames=8) as video:
        frames = list(video.iter_frames(start, stop, step))
    expected = (
        list(range(start, long_gop_clip.num_frames if stop is None else stop, step))
        if step > 0
        else list(range(start, -1 if stop is None else stop, step))
    )
    assert [f.index for f in frames] == expected
    _check(frames, long_gop_clip)


def test_backward_iteration_over_rotated_and_variable_rate(rotated_clip, vfr_mp4_clip):
    for truth in (rotated_clip, vfr_mp4_clip):
        with open_video(truth.path, backend="pyav", max_buffered_frames=3) as video:
            frames = list(video.iter_frames(start=truth.num_frames - 1, step=-1))
        assert [f.index for f in frames] == list(range(truth.num_frames - 1, -1, -1))
        _check(frames, truth)


def test_forward_and_backward_runs_share_one_reader(long_gop_clip):
    # The tracker propagates backward then forward from a prompt frame with one reader.
    with open_video(long_gop_clip.path, backend="pyav") as video:
        backward = [f.index for f in video.iter_frames(start=64, step=-1)]
        forward = [f.index for f in video.iter_frames(start=64)]
        again = video.frame(64)
    assert backward == list(range(64, -1, -1))
    assert forward == list(range(64, 120))
    assert read_index(again.image) == 64


def test_bad_iteration_arguments(cfr_clip):
    with open_video(cfr_clip.path) as video:
        with pytest.raises(InvalidInputError, match="non-zero"):
            video.iter_frames(step=0)
        with pytest.raises(InvalidInputError, match="it has 30 frames"):
            video.iter_frames(start=30)


def test_read_returns_the_asked_order_with_repeats(long_gop_clip):
    with open_video(long_gop_clip.path, backend="pyav") as video:
        frames = video.read([100, 3, 61, 3, 59])
    assert [f.index for f in frames] == [100, 3, 61, 3, 59]
    assert frames[1] is frames[3]
    _check(frames, long_gop_clip)


def test_frame_at_time(vfr_mp4_clip):
    with open_video(vfr_mp4_clip.path) as video:
        frame = video.frame_at(vfr_mp4_clip.times[7] + 0.001)
    assert frame.index == 7 == read_index(frame.image)


def test_sparse_read_seeks_to_the_keyframe_instead_of_decoding_everything(long_gop_clip):
    # Keyframes at 0 and 60: frames 62 and 65 are reached by one seek, not by decoding 0-61.
    with open_video(long_gop_clip.path, backend="pyav") as video:
        frames = video.read([62, 65])
        stats = video.decode_stats
    assert [read_index(f.image) for f in frames] == [62, 65]
    assert stats.seeks == 1
    assert stats.frames_decoded < 20


def test_dense_read_inside_a_gop_is_one_forward_pass(long_gop_clip):
    # No keyframe between the wanted frames: seeking cannot help, decode straight through.
    with open_video(long_gop_clip.path, backend="pyav") as video:
        frames = video.read([5, 20, 40, 59])
        stats = video.decode_stats
    assert [read_index(f.image) for f in frames] == [5, 20, 40, 59]
    assert stats.seeks == 0
    assert stats.frames_decoded <= 64  # 0-59 plus what the B-frame pipeline holds


def test_going_back_needs_a_seek(long_gop_clip):
    with open_video(long_gop_clip.path, backend="pyav") as video:
        list(video.iter_frames(start=70, stop=75))
        before = video.decode_stats
        frame = video.frame(10)
        after = video.decode_stats
    assert read_index(frame.image) == 10
    assert after.seeks == before.seeks + 1


def test_stream_without_timestamps_is_flagged_and_still_decodes_right(tmp_path):
    # A raw H.264 elementary stream has no container timestamps: times are estimated
    # from the nominal rate, and frames are found by counting instead of seeking.
    from garvideo.testing import clips

    truth = clips.constant_rate_clip(tmp_path / "raw.h264", num_frames=25, gop=10, bframes=2)
    with open_video(truth.path, backend="pyav") as video:
        assert not video.info.num_frames_exact
        assert video.num_frames == 25
        forward = list(video.iter_frames())
        backward = list(video.iter_frames(start=24, step=-1))
        picked = video.read([20, 3, 11])
    assert [read_index(f.image) for f in forward] == list(range(25))
    assert [read_index(f.image) for f in backward] == list(range(24, -1, -1))
    assert [read_index(f.image) for f in picked] == [20, 3, 11]


def test_default_backward_buffer_fits_a_memory_budget():
    from garvideo.video import default_max_buffered_frames

    assert default_max_buffered_frames(1280, 720) == 97
    assert default_max_buffered_frames(3840, 2160) == 10
    assert default_max_buffered_frames(64, 48) == 256
    assert default_max_buffered_frames(100_000, 100_000) == 4


def test_interleaved_iterators_on_one_reader_stay_correct(long_gop_clip):
    # Two streams over one reader (e.g. forward and backward passes taking turns):
    # each notices the other moved the decoder and repositions.
    with open_video(long_gop_clip.path, backend="pyav") as video:
        forward = video.iter_frames(start=50)
        backward = video.iter_frames(start=49, step=-1)
        pairs = [(next(forward), next(backward)) for _ in range(12)]
    assert [(a.index, b.index) for a, b in pairs] == [(50 + k, 49 - k) for k in range(12)]
    assert all(read_index(a.image) == a.index and read_index(b.image) == b.index for a, b in pairs)


def test_selection_from_a_longer_video_is_rejected(cfr_clip, long_gop_clip):
    with open_video(long_gop_clip.path) as longer, open_video(cfr_clip.path) as shorter:
        selection = longer.sample_every(10)
        with pytest.raises(InvalidInputError, match="it has 30 frames"):
            shorter.read(selection)


def _check_writable_and_own(path, backend):
    """The caller may draw on a frame (or hand it to torch without a copy) without changing any other frame."""
    with open_video(path, backend=backend) as video:
        frames = video.read([0, 1, 2])
        for frame in frames:
            frame.image[:] = 0  # a read-only array raises here
        again = video.read([0, 1, 2])
    assert all(read_index(f.image) == f.index for f in again)
    assert not any(np.shares_memory(a.image, b.image) for a in frames for b in again)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_frames_are_writable_arrays_of_their_own(cfr_clip, backend):
    if backend == "decord" and not decord_available():
        pytest.skip("decord is not installed (optional)")
    _check_writable_and_own(cfr_clip.path, backend)


def test_rotated_frames_are_writable_arrays_of_their_own(rotated_clip):
    _check_writable_and_own(rotated_clip.path, "pyav")


def test_frame_folder_frames_are_writable_arrays_of_their_own(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(index_image(index, 32, 32)).save(folder / f"{index}.png")
    with open_video(folder) as video:
        frames = list(video.iter_frames())
        for frame in frames:
            frame.image[:] = 0  # a read-only array (np.asarray of a PIL image) raises here
        assert [read_index(f.image) for f in video.iter_frames()] == [0, 1, 2]
