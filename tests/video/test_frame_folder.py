"""Frame folders (DAVIS/MeViS style) read through the same reader interface as video files."""

from __future__ import annotations

import contextlib
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app
from PIL import Image

from garvideo.errors import GarvideoError, InvalidInputError, VideoError
from garvideo.testing import hostile
from garvideo.testing.clips import index_image, read_index
from garvideo.video import DEFAULT_FOLDER_FPS, VideoDecodeWarning, frame_files, open_video, video_info

WIDTH, HEIGHT = 64, 48


def write_folder(folder, count, name="{:05d}.png", size=(WIDTH, HEIGHT)):
    """Frames carrying their own index (read back with read_index), written losslessly."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(index_image(i, *size)).save(folder / name.format(i))
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("frames") / "bear", 12)


def test_folder_facts_and_timeline(folder):
    with open_video(folder) as video:
        info = video.info
        assert video.backend == "images"
        assert (info.codec, info.rotation, info.has_audio, info.variable_frame_rate) == ("images", 0, False, False)
        assert (video.num_frames, video.width, video.height) == (12, WIDTH, HEIGHT)
        assert video.fps == DEFAULT_FOLDER_FPS == 30.0
        assert video.duration == pytest.approx(12 / 30)
        assert video.path == str(folder)
        assert video.index_to_time(3) == pytest.approx(0.1)
        assert video.time_to_index(0.1) == 3 and video.time_to_index(0.0999) == 2
        assert video.timeline.times.tolist() == pytest.approx([i / 30 for i in range(12)])
    assert video_info(folder) == info
    with open_video(folder, fps=6) as slow:
        assert slow.duration == pytest.approx(2.0) and slow.index_to_time(6) == pytest.approx(1.0)
        assert slow.time_to_index(1.95) == 11


def test_frames_forward_backward_and_selected(folder):
    with open_video(folder, max_buffered_frames=4) as video:
        forward = list(video.iter_frames())
        assert [f.index for f in forward] == list(range(12))
        assert [read_index(f.image) for f in forward] == list(range(12))
        assert forward[5].time == pytest.approx(5 / 30)
        assert forward[0].image.shape == (HEIGHT, WIDTH, 3) and forward[0].image.dtype == np.uint8
        assert [f.index for f in video.iter_frames(10, 2, -3)] == [10, 7, 4]
        assert [f.index for f in video.iter_frames(3, step=-1)] == [3, 2, 1, 0]
        assert [f.index for f in video.iter_frames(2, 9, 3)] == [2, 5, 8]
        picked = video.read([9, 1, 9])
        assert [read_index(f.image) for f in picked] == [9, 1, 9]
        assert [f.index for f in video.read(video.sample_uniform(3))] == [0, 6, 11]  # first, middle (5.5 -> 6), last
        assert read_index(video.frame_at(0.2).image) == 6
        with pytest.raises(InvalidInputError, match="frame 12 is outside"):
            video.frame(12)


def test_iteration_reads_one_image_at_a_time(tmp_path):
    """Bounded memory: a long folder is streamed both ways, never read whole."""
    long = write_folder(tmp_path / "long", 40, size=(32, 32))
    with open_video(long, max_buffered_frames=4) as video:
        backward = video.iter_frames(39, step=-1)
        assert next(backward).index == 39
        assert video.decode_stats.frames_decoded == 1
        assert next(backward).index == 38 and video.decode_stats.frames_decoded == 2
        backward.close()
        forward = video.iter_frames()
        next(forward)
        assert video.decode_stats.frames_decoded == 3


def test_names_sort_as_numbers_and_other_files_are_ignored(tmp_path):
    folder = tmp_path / "unpadded"
    folder.mkdir()
    for number in (10, 2, 1, 9):
        Image.fromarray(index_image(number, 32, 32)).save(folder / f"{number}.png")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "sub").mkdir()
    assert [p.name for p in frame_files(folder)] == ["1.png", "2.png", "9.png", "10.png"]
    with open_video(folder) as video:
        assert [read_index(f.image) for f in video.iter_frames()] == [1, 2, 9, 10]


def test_jpeg_and_grey_frames_come_out_rgb(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(index_image(0, WIDTH, HEIGHT)).save(folder / "00000.jpg", quality=95)
    Image.fromarray(index_image(1, WIDTH, HEIGHT)).convert("L").save(folder / "00001.jpg", quality=95)
    with open_video(folder) as video:
        assert video.info.container == "folder of jpg"
        frames = list(video.iter_frames())
    assert [f.image.shape for f in frames] == [(HEIGHT, WIDTH, 3)] * 2
    assert [read_index(f.image) for f in frames] == [0, 1]


def test_damaged_or_odd_sized_frames_are_skipped_with_a_warning(tmp_path):
    folder = write_folder(tmp_path / "damaged", 4)
    (folder / "00001.png").write_bytes(b"not an image")
    Image.fromarray(index_image(2, 32, 32)).save(folder / "00002.png")
    with open_video(folder) as video, pytest.warns(VideoDecodeWarning) as caught:
        frames = list(video.iter_frames())
    assert [f.index for f in frames] == [0, 3]
    messages = " ".join(str(w.message) for w in caught)
    assert "00001.png" in messages and "cannot be read" in messages
    assert "00002.png" in messages and "32x32" in messages


def test_unusable_folders_and_options_give_one_clear_error(tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no frames here")
    with pytest.raises(VideoError, match="is a folder with no image files") as caught:
        open_video(empty)
    assert "\n" not in str(caught.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "00000.jpg").write_bytes(b"garbage")
    with pytest.raises(VideoError, match="cannot read the first frame .*00000.jpg: not a readable image"):
        open_video(broken)
    for fps in (0, -5, float("nan"), "fast"):
        with pytest.raises(InvalidInputError, match="frame rate of a frame folder"):
            open_video(folder, fps=fps)


def test_fps_is_refused_for_video_files(cfr_clip):
    with pytest.raises(GarvideoError, match="fps applies to frame folders only"):
        open_video(cfr_clip.path, fps=25)
    with pytest.raises(GarvideoError, match="fps applies to frame folders only"):
        video_info(cfr_clip.path, fps=25)


def test_garvideo_info_reads_a_folder(folder):
    result = CliRunner().invoke(app, ["info", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert (facts["num_frames"], facts["width"], facts["codec"], facts["fps"]) == (12, WIDTH, "images", 30.0)
    human = CliRunner().invoke(app, ["info", str(folder)])
    assert human.exit_code == 0 and "images" in human.output


def test_no_warnings_for_a_healthy_folder(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_video(folder) as video:
            assert len(list(video.iter_frames())) == 12


def test_transparent_and_16_bit_frames_convert_as_model_images_do(tmp_path):
    folder = tmp_path / "png"
    folder.mkdir()
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)  # opaque red stays red
    rgba[0, 1] = (200, 10, 10, 0)  # transparent red: white, as the model's images (not the hidden red)
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black over white
    Image.fromarray(rgba, "RGBA").save(folder / "00000.png")
    levels = np.array([[0, 257, 32896], [65535, 0, 0]], np.uint16)
    Image.fromarray(levels).save(folder / "00001.png")  # 16-bit grey: scaled, not clipped to white
    with open_video(folder) as video:
        assert Image.open(folder / "00001.png").mode.startswith("I;16")
        first, second = list(video.iter_frames())
    assert first.image[0].tolist() == [[200, 10, 10], [255, 255, 255], [127, 127, 127]]
    assert second.image[..., 0].tolist() == [[0, 1, 128], [255, 0, 0]]
    assert (second.image[..., 0] == second.image[..., 2]).all()


def test_frames_whose_range_is_unknown_are_refused(tmp_path):
    folder = tmp_path / "float"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.float32)).save(folder / "00000.tif")
    with pytest.raises(VideoError, match="floating-point pixels") as caught:
        open_video(folder)
    assert "00000.tif" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", ["link loop", "fifo", "link to nothing"])
def test_an_entry_that_is_not_a_file_is_one_line_error_never_a_hang(tmp_path, kind):
    # Issue 21: a symbolic link loop named like a frame was a traceback (ELOOP) in info, track and describe;
    # a FIFO would block the read forever. Both are refused from the listing, naming the entry.
    frames = write_folder(tmp_path / "frames", 3)
    with contextlib.ExitStack() as stack:
        if kind == "link loop":
            hostile.symlink_loop(frames / "00003.png")
        elif kind == "fifo":
            stack.enter_context(hostile.unblocking_fifo(frames / "00003.png"))
        else:
            (frames / "00003.png").symlink_to("gone.png")
        expected = {"link loop": "symbolic link loop", "fifo": "FIFO", "link to nothing": "does not exist"}[kind]
        with pytest.raises(VideoError, match=rf"frame folder .*frames: 00003.png: .*{expected}") as caught:
            open_video(frames)
        assert "\n" not in str(caught.value)
        result = CliRunner().invoke(app, ["info", str(frames)])
    assert result.exit_code == 2 and result.output.startswith("garvideo: error: cannot read the frame folder")
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_a_huge_image_in_a_folder_is_refused_from_its_header(tmp_path):
    # Issue 21: a 20000x20000 PNG in a frame folder was PIL's DecompressionBombError. Its header is read, its
    # pixels never: as the first frame the folder is refused, later it is a frame skipped with a warning.
    first = tmp_path / "first"
    first.mkdir()
    hostile.huge_png(first / "00000.png")
    with pytest.raises(VideoError, match=r"00000.png: it is 20000x20000 pixels, more than .* garvideo reads"):
        open_video(first)
    later = write_folder(tmp_path / "later", 3)
    hostile.huge_png(later / "00001.png")
    with open_video(later) as video, pytest.warns(VideoDecodeWarning, match=r"frame 1 .*20000x20000 pixels"):
        frames = list(video.iter_frames())
    assert [f.index for f in frames] == [0, 2]
