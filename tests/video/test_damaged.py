"""Truncated files: the frames that can be decoded, plus a warning saying where reading stopped."""

from __future__ import annotations

import pytest

from garvideo.testing import clips
from garvideo.testing.clips import read_index
from garvideo.video import VideoDecodeWarning, open_video


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_truncated_file_yields_its_readable_prefix_and_warns(tmp_path, suffix):
    truth = clips.truncated_clip(tmp_path / f"cut{suffix}", keep=0.6, num_frames=60)
    with pytest.warns(VideoDecodeWarning, match=r"truncated or corrupt: reading stopped at .*only frames 0-\d+"):
        video = open_video(truth.path, backend="pyav")
    with video:
        readable = video.num_frames
        assert 10 < readable < truth.num_frames
        frames = list(video.iter_frames())
        backward = [f.index for f in video.iter_frames(start=readable - 1, step=-1)]
    assert [f.index for f in frames] == list(range(readable))
    assert [read_index(f.image) for f in frames] == list(range(readable))
    assert backward == list(range(readable - 1, -1, -1))
    assert video.info.duration < truth.duration


def test_truncated_warning_names_where_it_stopped(tmp_path):
    truth = clips.truncated_clip(tmp_path / "cut.mp4", keep=0.5, num_frames=60)
    with pytest.warns(VideoDecodeWarning) as caught:
        video = open_video(truth.path, backend="pyav")
    video.close()
    message = str(caught[0].message)
    assert str(truth.path) in message
    assert f"0-{video.num_frames - 1}" in message
    assert f"({video.duration:.3f} s)" in message


def test_damaged_data_mid_file_is_skipped_with_a_warning(tmp_path):
    # Overwrite the middle of a healthy Matroska clip: the container still parses,
    # but some frames cannot be decoded.
    truth = clips.constant_rate_clip(tmp_path / "damaged.mkv", num_frames=40, size=(128, 96), gop=8)
    data = bytearray(truth.path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 600] = bytes(600)
    truth.path.write_bytes(bytes(data))
    with pytest.warns(VideoDecodeWarning):
        with open_video(truth.path, backend="pyav") as video:
            frames = list(video.iter_frames())
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert 0 < len(frames) < truth.num_frames
    # Lost packets shift the indices after them, but every frame keeps its true time:
    # the frame shown at a time is the one written for that time (checked on clean GOPs).
    for frame in (frames[0], frames[-1]):
        assert read_index(frame.image) == round(frame.time * 15)
    assert frames[-1].time == pytest.approx(truth.times[-1], abs=1e-3)


def test_read_names_every_frame_it_leaves_out(tmp_path):
    truth = clips.constant_rate_clip(tmp_path / "damaged.mkv", num_frames=40, size=(128, 96), gop=8)
    data = bytearray(truth.path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 600] = bytes(600)
    truth.path.write_bytes(bytes(data))
    with pytest.warns(VideoDecodeWarning) as caught:
        with open_video(truth.path, backend="pyav") as video:
            asked = list(range(video.num_frames))
            frames = video.read(asked)
    returned = [f.index for f in frames]
    missing = sorted(set(asked) - set(returned))
    assert missing, "the damage should cost some frames"
    summary = [str(w.message) for w in caught if "left out" in str(w.message)]
    assert len(summary) == 1
    assert f"{len(missing)} of the {len(asked)} frames asked for could not be decoded" in summary[0]
    assert summary[0].endswith(
        f"left out: {', '.join(map(str, missing[:20]))}"
        + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        + " (damaged or missing data in the file)"
    )
