"""Input files that are not what they claim (issue 21): one line naming the file, never a traceback or a hang.

FIFOs, symbolic link loops, links to nothing, folders and devices where a file is expected; images whose
header claims 20000x20000 pixels; checkpoints cut short or damaged. Frame folders have their own cases in
``tests/video/test_frame_folder.py``, video files in ``tests/video/test_real_world.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app
from PIL import Image

from garvideo.checkpoints import resolve_checkpoint
from garvideo.errors import GarvideoError, InvalidInputError, ModelNotFoundError, VideoError
from garvideo.images import MAX_IMAGE_PIXELS, read_image
from garvideo.inputs import open_regular_file, regular_file_problem
from garvideo.masks import read_mask_image
from garvideo.testing import clips, hostile
from garvideo.tracking.track import load_tracks
from garvideo.video import open_video

KINDS = {
    "fifo": "it is a FIFO (named pipe), not a file",
    "link loop": "it is a symbolic link loop",
    "link to nothing": "no such file (it is a symbolic link to 'gone.png', which does not exist)",
    "folder": "it is a folder, not a file",
    "device": "it is a device, not a file",
}


@contextlib.contextmanager
def hostile_path(kind: str, folder: Path):
    """A path of ``kind`` (see KINDS) in ``folder``."""
    path = folder / "thing.png"
    if kind == "fifo":
        with hostile.unblocking_fifo(path) as fifo:
            yield fifo
        return
    if kind == "link loop":
        yield hostile.symlink_loop(path)
    elif kind == "link to nothing":
        path.symlink_to("gone.png")
        yield path
    elif kind == "folder":
        path.mkdir()
        yield path
    else:
        yield Path("/dev/null")


@pytest.mark.parametrize("kind", list(KINDS))
def test_what_is_not_a_regular_file_is_named_without_opening_it(tmp_path, kind):
    with hostile_path(kind, tmp_path) as path:
        assert regular_file_problem(path).startswith(KINDS[kind])
        problem = re.escape(KINDS[kind])
        with pytest.raises(InvalidInputError, match=rf"^cannot read the thing {path}: {problem}"):
            with open_regular_file(path, "the thing"):
                pass
        with pytest.raises(InvalidInputError, match=f"cannot read the mask image {path}: {problem}") as caught:
            read_mask_image(path)
        assert "\n" not in str(caught.value)
        if kind != "folder":  # (a folder is a frame folder: its own tests)
            with pytest.raises(VideoError, match=f"{path}: {problem}|no such video file"):
                open_video(path)
    regular = tmp_path / "mask.png"
    Image.fromarray(np.eye(4, dtype=np.uint8)).save(regular)
    assert regular_file_problem(regular) is None and read_mask_image(regular).sum() == 4


def test_a_fifo_given_as_a_tracks_file_is_refused(tmp_path):
    with hostile.unblocking_fifo(tmp_path / "tracks.json") as fifo:
        with pytest.raises(InvalidInputError, match="tracks file .*: it is a FIFO"):
            load_tracks(fifo)


def test_an_image_is_bounded_in_pixels_from_its_header(tmp_path):
    # A 20000x20000 PNG was PIL's DecompressionBombError (a traceback). The header's size is checked before
    # any pixel is decoded: the file holds one row, so decoding it would fail otherwise.
    huge = hostile.huge_png(tmp_path / "huge.png")
    with pytest.raises(InvalidInputError, match=r"huge.png: it is 20000x20000 pixels, more than the 134,217,728"):
        read_mask_image(huge)
    wide = hostile.huge_png(tmp_path / "wide.png", width=16384, height=8193)
    with pytest.raises(InvalidInputError, match="16384x8193 pixels"):
        read_image(wide, lambda image: image.size)
    at_limit = hostile.huge_png(tmp_path / "at_limit.png", width=16384, height=8192)
    assert 16384 * 8192 == MAX_IMAGE_PIXELS
    assert read_image(at_limit, lambda image: image.size) == (16384, 8192)  # the header only: no decoding
    broken = tmp_path / "broken.png"
    broken.write_bytes(huge.read_bytes()[:40])
    with pytest.raises(InvalidInputError, match="broken.png: not a readable image"):
        read_mask_image(broken)
    # an empty file made BMP's recogniser raise struct.error, a traceback (found by tests/batch/test_fuzz_inputs.py)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty.png: not a readable image"):
        read_mask_image(tmp_path / "empty.png")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return clips.constant_rate_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=4, size=(64, 48)).path


@pytest.mark.parametrize("command", ["track", "describe"])
@pytest.mark.parametrize("kind", ["huge", "fifo", "link loop"])
def test_cli_mask_files_are_refused_before_the_models_load(tmp_path, clip, command, kind):
    # The models named do not exist: the mask's error comes first, so it is found before they load.
    with contextlib.ExitStack() as stack:
        if kind == "huge":
            mask = hostile.huge_png(tmp_path / "mask.png")
        else:
            mask = stack.enter_context(hostile_path(kind, tmp_path))
        arguments = [command, str(clip), "--mask", f"{mask}@0", "--sam2", str(tmp_path / "no-sam2")]
        arguments += ["--model", str(tmp_path / "no-gar")] if command == "describe" else []
        result = CliRunner().invoke(app, [*arguments, "--out", str(tmp_path / "out.json"), "-q"])
    expected = {"huge": "20000x20000 pixels", "fifo": "FIFO", "link loop": "symbolic link loop"}[kind]
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"garvideo: error: cannot read the mask image {mask}: ")
    assert expected in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_a_frame_folder_whose_first_image_is_over_size_is_refused_before_the_models_load(tmp_path):
    # The README's promise, as it reads now: a frame folder's first image is read (its header) when the folder is
    # opened, before the models load; a later over-size image is a frame skipped with a warning
    # (tests/video/test_frame_folder.py).
    frames = tmp_path / "frames"
    frames.mkdir()
    hostile.huge_png(frames / "00000.png")
    arguments = ["describe", str(frames), "--box", "1,1,9,9@0", "--out", str(tmp_path / "out.json"), "-q"]
    result = CliRunner().invoke(app, [*arguments, "--model", str(tmp_path / "no-gar"), "--sam2", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "00000.png: it is 20000x20000 pixels" in result.output and result.output.count("\n") == 1


def test_a_manifest_mask_that_is_a_fifo_fails_its_line_without_blocking(tmp_path, clip):
    from garvideo.batch.manifest import BatchRequest

    line = {"video": str(clip), "regions": [{"name": "a", "when": {"frame": 0}, "mask": "mask.png"}]}
    with hostile.unblocking_fifo(tmp_path / "mask.png"):
        with pytest.raises(InvalidInputError, match=r"line 3: region 1: cannot read the mask image .*: it is a FIFO"):
            BatchRequest.from_dict(line, tmp_path, tmp_path, line=3)


def test_a_batch_whose_manifest_mask_is_a_fifo_is_refused_before_the_models_load(tmp_path, clip):
    # Issue 21's review: this waited forever in PIL's Image.open (the mask's size was read before the FIFO check).
    # The models named do not exist: the manifest's error comes first.
    line = {"video": str(clip), "regions": [{"name": "a", "when": {"frame": 0}, "mask": "fifo.png"}]}
    manifest = tmp_path / "fifo.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    arguments = ["batch", str(tmp_path), "--regions", str(manifest), "--out", str(tmp_path / "out"), "-q"]
    arguments += ["--model", str(tmp_path / "no-gar"), "--sam2", str(tmp_path / "no-sam2")]
    with hostile.unblocking_fifo(tmp_path / "fifo.png"):
        result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"garvideo: error: no line of {manifest} can be run (line 1: region 1: ")
    assert "fifo.png: it is a FIFO" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def damaged_checkpoints(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """Copies of the tiny GAR and SAM2 whose model.safetensors is cut in its header, cut in its data, or
    has its header overwritten."""
    made = {}
    for model in ("gar", "sam2"):
        source = (tiny_models / model).resolve()
        for damage in ("header cut", "data cut", "header garbage", "lfs pointer"):
            folder = tmp_path_factory.mktemp(f"{model}-{damage.replace(' ', '-')}")
            shutil.copytree(source, folder, dirs_exist_ok=True)
            weights = folder / "model.safetensors"
            data = bytearray(weights.read_bytes())
            if damage == "header cut":
                data = data[:5000]
            elif damage == "data cut":
                data = data[:-1000]
            elif damage == "lfs pointer":  # a clone made without Git LFS
                data = bytearray(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1504408\n")
            else:
                data[8:40] = b"\xff" * 32
            weights.write_bytes(bytes(data))
            made[f"{model}, {damage}"] = folder
    return made


EXPECTED_DAMAGE = {
    "header cut": r"is truncated or damaged: 5000 bytes, where its header alone claims",
    "data cut": r"is truncated: [\d,]+ bytes, where its header describes [\d,]+",
    "header garbage": r"is damaged: its header is not the JSON a safetensors file starts with",
    "lfs pointer": r"is a Git LFS pointer, not the weights \(run `git lfs pull` where it was cloned\)",
}


@pytest.mark.parametrize("damage", list(EXPECTED_DAMAGE))
@pytest.mark.parametrize("model", ["gar", "sam2"])
def test_a_damaged_checkpoint_is_one_line_naming_its_file(damaged_checkpoints, model, damage):
    folder = damaged_checkpoints[f"{model}, {damage}"]
    weights = folder / "model.safetensors"
    with pytest.raises(ModelNotFoundError, match=rf"its weights file {weights} {EXPECTED_DAMAGE[damage]}") as caught:
        resolve_checkpoint(folder)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("model", ["gar", "sam2"])
def test_loading_a_cut_checkpoint_fails_in_one_line(damaged_checkpoints, tiny_models, model, tmp_path):
    # Issue 21: a truncated model.safetensors was safetensors' SafetensorError (a traceback) for GAR and SAM2.
    from garvideo.pipeline import Pipeline

    folder = damaged_checkpoints[f"{model}, header cut"]
    with pytest.raises(GarvideoError, match="model.safetensors is truncated") as caught:
        if model == "gar":
            Pipeline.from_pretrained(model=str(folder), sam2=None, device="cpu", detector=None)
        else:
            Pipeline.from_pretrained(model=None, sam2=str(folder), device="cpu", detector=None)
    assert "\n" not in str(caught.value)
    clip = clips.constant_rate_clip(tmp_path / "clip.mp4", num_frames=4, size=(64, 48)).path
    arguments = ["describe", str(clip), "--box", "2,2,30,30@0", "--out", str(tmp_path / "out.json"), "-q"]
    arguments += ["--model", str(folder if model == "gar" else tiny_models / "gar")]
    arguments += ["--sam2", str(folder if model == "sam2" else tiny_models / "sam2")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert "model.safetensors is truncated" in result.output and "Traceback" not in result.output
    assert result.output.count("garvideo: error:") == 1
