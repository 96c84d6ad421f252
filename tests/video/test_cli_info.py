"""``garvideo info``: human-readable facts, one JSON object with --json, one-line errors."""

from __future__ import annotations

import json

from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo.testing import clips


def test_info_prints_the_facts(rotated_clip):
    result = CliRunner().invoke(app, ["info", str(rotated_clip.path)])
    assert result.exit_code == 0, result.output
    assert f"{rotated_clip.width}x{rotated_clip.height}" in result.output
    assert f"turned {rotated_clip.rotation} degrees clockwise" in result.output
    assert f"frames     {rotated_clip.num_frames}" in result.output
    assert "h264" in result.output


def test_info_json_is_one_object(vfr_mp4_clip):
    result = CliRunner().invoke(app, ["info", "--json", str(vfr_mp4_clip.path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    facts = json.loads(lines[0])
    assert facts["width"] == 64 and facts["height"] == 48 and facts["rotation"] == 0
    assert facts["num_frames"] == vfr_mp4_clip.num_frames
    assert facts["duration"] == vfr_mp4_clip.duration
    assert facts["fps"] == vfr_mp4_clip.num_frames / vfr_mp4_clip.duration
    assert facts["codec"] == "h264"
    assert facts["variable_frame_rate"] is True


def test_info_errors_are_one_line_exit_2(tmp_path):
    for path in (tmp_path / "missing.mp4", clips.not_video_file(tmp_path / "text.mp4")):
        result = CliRunner().invoke(app, ["info", str(path)])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1
        assert result.output.startswith("garvideo: error: ")
        assert "Traceback" not in result.output


def test_info_warns_about_a_truncated_file(tmp_path):
    truth = clips.truncated_clip(tmp_path / "cut.mp4")
    result = CliRunner().invoke(app, ["info", "--json", str(truth.path)])
    assert result.exit_code == 0
    assert "garvideo: warning:" in result.output and "truncated" in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("{")]  # stdout; the warning is stderr
    assert json.loads(line)["num_frames"] < truth.num_frames


def test_info_reads_a_frame_folder_at_the_given_rate(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(6):
        Image.fromarray(clips.index_image(index, 32, 24)).save(folder / f"{index:05d}.png")
    default = json.loads(CliRunner().invoke(app, ["info", "--json", str(folder)]).output)
    assert (default["fps"], default["duration"]) == (30.0, 0.2)
    result = CliRunner().invoke(app, ["info", "--json", "--fps", "12", str(folder)])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert (facts["fps"], facts["duration"], facts["num_frames"], facts["width"]) == (12.0, 0.5, 6, 32)


def test_info_fps_mistakes_are_one_line_exit_2(tmp_path, cfr_clip):
    folder = tmp_path / "frames"
    folder.mkdir()
    from PIL import Image

    Image.fromarray(clips.index_image(0, 32, 24)).save(folder / "0.png")
    for args, message in [
        (["--fps", "25", str(cfr_clip.path)], "fps applies to frame folders only"),
        (["--fps", "0", str(folder)], "must be a positive number"),
        (["--fps", "nan", str(folder)], "must be a positive number"),
    ]:
        result = CliRunner().invoke(app, ["info", *args])
        assert result.exit_code == 2
        assert result.output.startswith("garvideo: error: ") and result.output.count("\n") == 1
        assert message in result.output
