"""Generated clips shared by the video tests (each written once per test session)."""

from __future__ import annotations

import pytest

from garvideo.testing import clips


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("video_clips")


@pytest.fixture(scope="session")
def cfr_clip(clip_dir):
    return clips.constant_rate_clip(clip_dir / "cfr.mp4", num_frames=30, fps=15)


@pytest.fixture(scope="session")
def ntsc_clip(clip_dir):
    from fractions import Fraction

    return clips.constant_rate_clip(clip_dir / "ntsc.mp4", num_frames=20, fps=Fraction(30000, 1001))


@pytest.fixture(scope="session")
def vfr_mp4_clip(clip_dir):
    return clips.variable_rate_clip(clip_dir / "vfr.mp4", bframes=2)


@pytest.fixture(scope="session")
def vfr_mkv_clip(clip_dir):
    return clips.variable_rate_clip(clip_dir / "vfr.mkv", bframes=2)


@pytest.fixture(scope="session")
def long_gop_clip(clip_dir):
    return clips.long_gop_clip(clip_dir / "long_gop.mp4", num_frames=120, gop=60, bframes=3)


@pytest.fixture(scope="session", params=[90, 180, 270])
def rotated_clip(clip_dir, request):
    return clips.rotated_clip(clip_dir / f"rotated{request.param}.mp4", rotation=request.param)


@pytest.fixture(scope="session")
def odd_clip(clip_dir):
    return clips.odd_size_clip(clip_dir / "odd.mp4", size=(97, 53))


@pytest.fixture(scope="session")
def audio_clip(clip_dir):
    return clips.constant_rate_clip(clip_dir / "with_audio.mp4", num_frames=15, audio=True)
