"""The tracker reads a real encoded video through garvideo.video's reader, unchanged.

The library's tracking package never imports garvideo.video; this test checks
that the video module's reader satisfies the tracker's FrameSource protocol
in both directions, on a generated clip with exact per-frame truth.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app
from PIL import Image

from garvideo import video
from garvideo.testing import clips
from garvideo.testing.sam2 import MovingSquareSource
from garvideo.timecode import When
from garvideo.tracking import FrameSource, RegionPrompt, load_tracks


def test_tracking_a_real_clip_backward_and_forward(tracker, tmp_path):
    truth = clips.moving_object_clip(tmp_path / "clip.mp4", num_frames=14, fps=12, size=(160, 120), second_object=True)
    ellipse, square = truth.objects
    with video.open_video(truth.path, backend="pyav") as reader:
        assert isinstance(reader, FrameSource)
        # the ellipse by time (resolved with the reader's own timeline), the square by frame
        by_time = RegionPrompt.from_mask("ellipse", ellipse.masks[6], When(time=truth.times[6])).resolve(
            reader.time_to_index
        )
        prompts = [by_time, RegionPrompt.from_box("square", square.boxes[10], 10)]
        tracks = tracker.track(reader, prompts, stride=2, progress=False)

    assert by_time.frame == 6
    assert [t.name for t in tracks] == ["ellipse", "square"]
    assert tracks[0].indices == tuple(range(0, 14, 2))  # 6 is on the grid
    assert tracks[1].indices == (0, 2, 4, 6, 8, 10, 12)
    for track in tracks:
        assert all(f.size == (120, 160) for f in track.frames)
        assert [f.time for f in track.frames] == pytest.approx([truth.times[i] for i in track.indices])
    mask = tracks[0].mask_at(6)
    overlap = (mask & ellipse.masks[6]).sum() / (mask | ellipse.masks[6]).sum()
    assert overlap > 0.8  # the prompted mask comes back on its own frame


def _square_folder(folder, source, broken):
    """The frames of ``source`` as PNG files, with the files of ``broken`` frames replaced by junk."""
    folder.mkdir()
    for index in range(source.num_frames):
        path = folder / f"{index:05d}.png"
        if index in broken:
            path.write_bytes(b"not an image")
        else:
            Image.fromarray(source._render(index)).save(path)
    return folder


def test_a_frame_folder_with_a_broken_image_is_tracked_around_it(tracker, tmp_path):
    source = MovingSquareSource(8)
    folder = _square_folder(tmp_path / "frames", source, broken={3})
    prompt = RegionPrompt.from_mask("square", source.square_mask(5), 5)
    with video.open_video(folder) as reader, pytest.warns(video.VideoDecodeWarning, match=r"frame 3 \(00003.png\)"):
        [track] = tracker.track(reader, [prompt], progress=False)
    assert track.indices == (0, 1, 2, 4, 5, 6, 7)


def test_a_damaged_video_file_is_tracked_where_it_decodes(tracker, tmp_path):
    truth = clips.constant_rate_clip(tmp_path / "damaged.mkv", num_frames=40, size=(128, 96), gop=8)
    data = bytearray(truth.path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 600] = bytes(600)  # the container parses, a few frames do not decode
    truth.path.write_bytes(bytes(data))
    with pytest.warns(video.VideoDecodeWarning), video.open_video(truth.path) as reader:
        decodable = [f.index for f in reader.iter_frames()]
        [track] = tracker.track(reader, [RegionPrompt.from_box("corner", (0, 0, 40, 40), 0)], progress=False)
    assert 0 < len(decodable) < reader.num_frames
    assert track.indices == tuple(decodable)


def test_track_command_on_a_folder_with_a_broken_image(tiny_sam2_path, tmp_path):
    source = MovingSquareSource(6)
    folder = _square_folder(tmp_path / "frames", source, broken={4})
    out = tmp_path / "tracks.json"
    result = CliRunner().invoke(
        app, ["track", str(folder), "--box", "sq=10,10,40,40@1", "--sam2", str(tiny_sam2_path), "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "garvideo: warning:" in result.output and "frame 4 (00004.png) cannot be read" in result.output
    [track] = load_tracks(out)
    assert track.indices == (0, 1, 2, 3, 5)
