"""decord (optional extra) gives the same frames as PyAV for the same indices."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from garvideo.errors import VideoError
from garvideo.testing.clips import read_index
from garvideo.video import open_video
from garvideo.video.decord_backend import decord_available

needs_decord = pytest.mark.skipif(
    not decord_available(), reason="decord is not installed (optional: pip install 'garvideo[decord]')"
)


@needs_decord
@pytest.mark.parametrize("fixture", ["cfr_clip", "vfr_mp4_clip", "vfr_mkv_clip", "long_gop_clip", "odd_clip"])
def test_decord_matches_pyav(fixture, request):
    truth = request.getfixturevalue(fixture)
    indices = sorted({0, 3, truth.num_frames // 2, truth.num_frames - 1, min(61, truth.num_frames - 1)})
    with open_video(truth.path, backend="decord") as fast, open_video(truth.path, backend="pyav") as reference:
        assert fast.backend == "decord"
        ours = fast.read(indices)
        theirs = reference.read(indices)
        backward = [f.index for f in fast.iter_frames(start=truth.num_frames - 1, step=-2)]
    assert [f.index for f in ours] == indices
    assert [read_index(f.image) for f in ours] == indices
    for a, b in zip(ours, theirs):
        assert a.image.shape == b.image.shape
        # Same FFmpeg decoders underneath; allow a step of colour-conversion rounding.
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 2
    assert backward == list(range(truth.num_frames - 1, -1, -2))


@needs_decord
def test_auto_prefers_decord_but_falls_back_for_rotated_videos(cfr_clip, rotated_clip):
    with open_video(cfr_clip.path) as video:
        assert video.backend == "pyav"  # PyAV stays the default with decord installed
    with open_video(cfr_clip.path, backend="auto") as video:
        assert video.backend == "decord"
    with open_video(rotated_clip.path, backend="auto") as video:
        assert video.backend == "pyav"
    with pytest.raises(VideoError, match="rotated"):
        open_video(rotated_clip.path, backend="decord")


@pytest.fixture
def without_decord(monkeypatch):
    """Make decord impossible to import, as on an installation without the extra."""
    monkeypatch.setitem(sys.modules, "decord", None)
    assert not decord_available()


def test_asking_for_decord_without_it_is_a_clear_error(cfr_clip, without_decord):
    with pytest.raises(VideoError, match=r"pip install 'garvideo\[decord\]'"):
        open_video(cfr_clip.path, backend="decord")


def test_auto_uses_pyav_without_decord(cfr_clip, without_decord):
    with open_video(cfr_clip.path, backend="auto") as video:
        assert video.backend == "pyav"
