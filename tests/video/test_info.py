"""Opening videos: the facts reported match what the generator wrote; bad files give one clear error."""

from __future__ import annotations

import json
import warnings

import pytest

from garvideo.errors import GarvideoError, VideoError
from garvideo.testing import clips
from garvideo.video import open_video, video_info


def _assert_facts(info, truth):
    assert (info.width, info.height) == (truth.width, truth.height)
    assert info.rotation == truth.rotation
    assert info.num_frames == truth.num_frames
    assert info.num_frames_exact
    assert info.duration == pytest.approx(truth.duration, abs=1e-6)
    assert info.fps == pytest.approx(truth.fps, rel=1e-6)
    assert info.codec == truth.codec


def test_constant_rate_facts(cfr_clip):
    info = video_info(cfr_clip.path)
    _assert_facts(info, cfr_clip)
    assert info.fps == pytest.approx(15.0)
    assert not info.variable_frame_rate
    assert not info.has_audio
    assert info.keyframes == 1
    assert info.pixel_format == "yuv420p"
    assert (info.coded_width, info.coded_height) == (64, 48)


def test_ntsc_rate_is_exact(ntsc_clip):
    info = video_info(ntsc_clip.path)
    _assert_facts(info, ntsc_clip)
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-9)
    assert not info.variable_frame_rate


@pytest.mark.parametrize("fixture", ["vfr_mp4_clip", "vfr_mkv_clip"])
def test_variable_rate_facts(fixture, request):
    truth = request.getfixturevalue(fixture)
    info = video_info(truth.path)
    _assert_facts(info, truth)
    assert info.variable_frame_rate
    assert info.fps == pytest.approx(truth.num_frames / truth.duration)


def test_rotated_clip_reports_displayed_size(rotated_clip):
    info = video_info(rotated_clip.path)
    _assert_facts(info, rotated_clip)
    if rotated_clip.rotation in (90, 270):
        assert (info.coded_width, info.coded_height) == (info.height, info.width)
    else:
        assert (info.coded_width, info.coded_height) == (info.width, info.height)


def test_odd_size(odd_clip):
    info = video_info(odd_clip.path)
    _assert_facts(info, odd_clip)
    assert (info.width, info.height) == (97, 53)


def test_long_gop_keyframes(long_gop_clip):
    info = video_info(long_gop_clip.path)
    _assert_facts(info, long_gop_clip)
    assert info.keyframes == 2  # frames 0 and 60


def test_audio_track_is_noticed(audio_clip):
    info = video_info(audio_clip.path)
    _assert_facts(info, audio_clip)
    assert info.has_audio


def test_to_dict_is_json(cfr_clip):
    facts = json.loads(json.dumps(video_info(cfr_clip.path).to_dict()))
    for key in ("width", "height", "fps", "num_frames", "duration", "codec", "rotation"):
        assert key in facts
    assert facts["num_frames"] == 30


def test_reader_convenience_attributes(cfr_clip):
    with open_video(cfr_clip.path) as video:
        assert (video.num_frames, video.width, video.height) == (30, 64, 48)
        assert video.info == video_info(cfr_clip.path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "no such video file"),
        (lambda d: d, "is a folder"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") and None or d / "empty.mp4", "empty"),
        (lambda d: clips.not_video_file(d / "notes.mp4"), "not a video file"),
        (lambda d: clips.audio_only_clip(d / "sound.m4a"), r"no video stream \(it holds only audio\)"),
        (lambda d: clips.zero_frame_clip(d / "zero.mkv"), "no frames"),
    ],
    ids=["missing", "folder", "empty", "not-video", "audio-only", "zero-frames"],
)
def test_unusable_files_give_one_clear_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(VideoError, match=message) as caught:
        open_video(path)
    assert isinstance(caught.value, GarvideoError)
    assert "\n" not in str(caught.value)


def test_unknown_backend_is_rejected(cfr_clip):
    with pytest.raises(GarvideoError, match="unknown video backend"):
        open_video(cfr_clip.path, backend="opencv")


def test_no_warning_for_healthy_files(cfr_clip, vfr_mkv_clip):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        video_info(cfr_clip.path)
        video_info(vfr_mkv_clip.path)
