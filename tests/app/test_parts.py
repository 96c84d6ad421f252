"""The app's parts that need no server: --root path safety, marks, commands, the CLI's options."""

from __future__ import annotations

import os
import shlex
import time

import pytest
from click.testing import CliRunner
from garvideo_cli.main import app as cli_app

from garvideo.app import AppConfig, Backend, open_warning
from garvideo.app.backend import remove_upload_leftovers
from garvideo.app.commands import Generation, Models, Span, ask_command, describe_command, track_command
from garvideo.app.paths import list_root_videos, resolve_under_root, safe_file_name
from garvideo.app.regions import REGION_KINDS, default_name, found_mark, make_mark, text_prompt
from garvideo.errors import InvalidInputError


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "root"
    (base / "clips").mkdir(parents=True)
    (base / "clips" / "a.mp4").write_bytes(b"x")
    (base / "b.MOV").write_bytes(b"x")
    (base / "notes.txt").write_text("x")
    (base / ".hidden.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (base / "out.mp4").symlink_to(tmp_path / "secret.mp4")
    (base / "outdir").symlink_to(tmp_path, target_is_directory=True)
    (base / "in.mp4").symlink_to(base / "clips" / "a.mp4")
    return base.resolve()


def test_root_paths_stay_inside(root):
    assert resolve_under_root(root, "clips/a.mp4") == root / "clips" / "a.mp4"
    assert resolve_under_root(root, " in.mp4 ") == root / "clips" / "a.mp4"  # a link that stays inside
    for path, why in [
        ("../secret.mp4", "'..' is not allowed"),
        ("clips/../../secret.mp4", "'..' is not allowed"),
        ("clips\\..\\..\\secret.mp4", "'..' is not allowed"),
        (str(root.parent / "secret.mp4"), "absolute path"),
        ("/etc/passwd", "absolute path"),
        ("out.mp4", "outside the app's --root folder"),
        ("outdir/secret.mp4", "outside the app's --root folder"),
        ("missing.mp4", "there is no"),
        ("", "choose a video"),
    ]:
        with pytest.raises(InvalidInputError, match=why):
            resolve_under_root(root, path)


def test_root_listing_offers_videos_and_no_link_out(root):
    assert list_root_videos(root) == ["b.MOV", "clips/a.mp4", "in.mp4"]


def test_uploaded_names_become_plain_file_names():
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\me\\my clip (1).mp4") == "my_clip__1_.mp4"
    assert safe_file_name(".bashrc") == "bashrc"
    assert safe_file_name("..") == "video"


def test_marks_use_the_clis_syntax_and_messages():
    mark = make_mark("cat", "box", " 27, 91,137,175 ", 12, 384, 256)
    assert mark.prompt.box == (27.0, 91.0, 137.0, 175.0) and mark.frame == 12
    assert mark.cli_args() == ["--box", "cat=27, 91,137,175@12"]
    clicks = make_mark("cat", "points", "80,120;!300,40", 3, 384, 256)
    assert clicks.prompt.labels == (1, 0) and clicks.label == "cat@3"
    with pytest.raises(InvalidInputError, match="x1 < x2 and y1 < y2"):
        make_mark("cat", "box", "60,90,60,170", 0, 384, 256)
    with pytest.raises(InvalidInputError, match="outside the 384x256 frame"):
        make_mark("cat", "box", "400,300,500,400", 0, 384, 256)
    with pytest.raises(InvalidInputError, match="all negative"):
        make_mark("cat", "points", "!80,120", 0, 384, 256)
    with pytest.raises(InvalidInputError, match="holds a space; on the command line a region name is letters"):
        make_mark("a cat", "box", "1,1,5,5", 0, 384, 256)
    # the names a text search gives its instances (car#2) are names the page and the CLI both take
    assert make_mark("car#2", "box", "1,1,5,5", 0, 384, 256).name == "car#2"
    with pytest.raises(InvalidInputError, match="mark the region 'cat' first"):
        make_mark("cat", "box", "", 0, 384, 256)
    with pytest.raises(InvalidInputError, match="unknown region kind 'mask'"):
        make_mark("cat", "mask", "cat.png", 0, 384, 256)
    with pytest.raises(InvalidInputError, match="found by the detector, not marked: use 'Find and add'"):
        make_mark("cat", "text", "a cat", 0, 384, 256)
    assert [k.key for k in REGION_KINDS] == ["box", "points", "text"]
    assert default_name([mark, make_mark("region1", "box", "1,1,5,5", 0, 384, 256)]) == "region2"


def test_the_app_reads_marks_with_the_command_lines_grammar():
    # One grammar (garvideo.tracking.marks): the command the app shows reads back as the same prompt.
    from garvideo.tracking.marks import parse_region_prompts

    for kind, body in (("box", " 27, 91,137,175 "), ("points", "80,120;!300,40")):
        mark = make_mark("cat", kind, body, 7, 384, 256)
        option, value = shlex.split(shlex.join(mark.cli_args()))
        (prompt,) = parse_region_prompts(**{{"--box": "boxes", "--points": "points"}[option]: [value]})
        assert prompt == mark.prompt
    with pytest.raises(InvalidInputError, match=r"^--box 'cat=1,2,3@0': expected 4 comma-separated numbers"):
        make_mark("cat", "box", "1,2,3", 0, 384, 256)


def test_a_box_reaching_outside_the_frame_carries_the_clis_warning():
    mark = make_mark("cat", "box", "-10,20,100,300", 3, 384, 256)
    assert mark.prompt.box == (-10, 20, 100, 300)  # kept as typed: the command clips it the same way
    assert mark.warning == "the box of 'cat' -10,20,100,300 reaches outside the 384x256 frame: using 0,20,100,256"
    assert make_mark("cat", "box", "10,20,100,200", 3, 384, 256).warning is None


def test_commands_quote_what_a_shell_would_split():
    models = Models(gar="models/GAR 1B", sam2="tiny", device="cuda:1")
    marks = [make_mark("cat", "points", "80,120;!300,40", 12, 384, 256)]
    line = shlex.join(track_command("my clip.mp4", marks, Span("1.5", None), 2, models, "tracks.json"))
    assert shlex.split(line) == [
        "garvideo", "track", "my clip.mp4", "--points", "cat=80,120;!300,40@12", "--start", "1.5",
        "--stride", "2", "--sam2", "tiny", "--device", "cuda:1", "--out", "tracks.json",
    ]  # fmt: skip
    describe = describe_command(
        "c.mp4", "tracks.json", Span(), 2.0, 4, Generation(8, "vanilla", 3), models, {"--out": "result.json"}
    )
    assert describe[describe.index("--window") + 1] == "2" and "--sam2" not in describe
    ask = ask_command(
        "c.mp4", "Is <cat> 'here'?", ["yes", "no"], "t.json", Span(end="4"), Generation(), models, "a.json"
    )
    assert shlex.split(shlex.join(ask))[3] == "Is <cat> 'here'?"
    assert ask[ask.index("--end") + 1] == "4" and ask.count("--option") == 2


def test_text_marks_and_their_command():
    from garvideo.pipeline import FoundRegion, ModelRef, TextSearch

    assert text_prompt("car", "  a  red car ", None).when is None
    assert text_prompt("car", "a red car", 12).frame == 12
    with pytest.raises(InvalidInputError, match="the phrase is empty"):
        text_prompt("car", "  ", None)
    with pytest.raises(InvalidInputError, match="holds '<'"):
        text_prompt("car<2", "a red car", None)
    with pytest.raises(InvalidInputError, match="holds '.'; on the command line"):
        text_prompt("car.2", "a red car", None)
    ref = ModelRef("gdino", None, "cpu", "float32")
    found = tuple(
        FoundRegion(name, "a red car", 8, 2.0, box, score, "red car", (0, 4, 8), ref)
        for name, box, score in (("car", (1.0, 2.0, 30.5, 40.0), 0.8), ("car#2", (50.0, 2.0, 90.0, 40.0), 0.5))
    )
    search = TextSearch(box_threshold=0.3, max_instances=2)
    mark = found_mark(text_prompt("car", "a red car", None), found, search)
    assert (mark.frame, mark.region_names, mark.search) == (8, ["car", "car#2"], search)
    assert mark.cli_args() == ["--text", "car=a red car@8"]
    default = Models(gar="g", sam2="tiny")
    line = track_command("c.mp4", [mark], Span(), 1, default, "tracks.json", search)
    assert line == [
        "garvideo", "track", "c.mp4", "--text", "car=a red car@8", "--box-threshold", "0.3", "--max-instances", "2",
        "--sam2", "tiny", "--out", "tracks.json",
    ]  # fmt: skip
    other = Models(gar="g", sam2="tiny", detector="models/my gdino")
    line = track_command("c.mp4", [mark], Span(), 1, other, "tracks.json", TextSearch(text_threshold=0.5))
    assert line[5:9] == ["--text-threshold", "0.5", "--sam2", "tiny"] and line[-4:-2] == [
        "--detector",
        "models/my gdino",
    ]
    # The command line reads the mark back as the same text region on the same frame.
    from garvideo.tracking.marks import parse_text_prompt

    assert parse_text_prompt(shlex.split(shlex.join(mark.cli_args()))[1]) == mark.prompt


def test_binding_beyond_this_machine_warns():
    assert open_warning("127.0.0.1") is None and open_warning("localhost") is None and open_warning("::1") is None
    assert "no authentication" in open_warning("0.0.0.0")
    assert "no authentication" in open_warning("192.168.1.20")


def test_the_app_command_and_its_options(tmp_path):
    result = CliRunner().invoke(cli_app, ["app", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--sam2", "--device", "--host", "--port", "--root", "--max-upload-mb", "--detector",
                   "--live-device"):  # fmt: skip
        assert option in result.output
    assert "[default: 127.0.0.1]" in result.output
    missing = CliRunner().invoke(cli_app, ["app", "--root", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    none = CliRunner().invoke(cli_app, ["app", "--max-instances", "0", "-q"])
    assert none.exit_code == 2 and none.output.strip().splitlines()[-1].startswith(
        "garvideo: error: max instances must be at least 1"
    )


def test_the_warning_comes_before_anything_is_loaded(tmp_path):
    """--host 0.0.0.0 warns first; here the model then cannot be found, so nothing is ever served."""
    result = CliRunner().invoke(cli_app, ["app", "--host", "0.0.0.0", "--model", str(tmp_path / "no-model"), "-q"])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith("garvideo: warning: --host 0.0.0.0 lets other machines reach this app")
    assert lines[-1].startswith("garvideo: error: ")


def test_idle_sessions_end_and_take_their_files(tmp_path):
    config = AppConfig(models=Models("gar", "sam2"), temp_root=tmp_path, session_ttl_s=60)
    backend = Backend(config, pipeline=None)  # sessions need no models
    idle, busy = backend.session("idle"), backend.session("busy")
    (idle.folder / "tracks.json").write_text("{}")
    with backend.using("busy"):
        assert backend.end_idle_sessions(now=time.monotonic() + 61) == ["idle"]
    assert not idle.folder.exists() and busy.folder.exists()
    assert backend.end_idle_sessions(now=time.monotonic() + 30) == []  # used just now
    backend.close()
    assert not any((tmp_path / "sessions").iterdir())


def test_gradios_empty_upload_leftovers_go_once_settled(tmp_path):
    old, fresh, data = tmp_path / "tmpold", tmp_path / "tmpfresh", tmp_path / "tmpdata"
    old.touch()
    fresh.touch()
    data.write_bytes(b"an upload still arriving")
    (tmp_path / "sessions").mkdir()
    past = time.time() - 10
    os.utime(old, (past, past))
    os.utime(data, (past, past))
    assert remove_upload_leftovers(tmp_path) == [old]
    assert fresh.exists() and data.exists() and (tmp_path / "sessions").is_dir()


def test_the_pages_frames_tint_regions_as_the_overlay_video_does():
    """The page fills a region as the overlay video does (same blend, same rounding) and follows a strided track
    half a stride either way, as the overlay does."""
    import numpy as np

    from garvideo.app.drawing import FILL_OPACITY, draw_frame, track_masks
    from garvideo.outputs import drawing as overlay_drawing
    from garvideo.tracking import Track

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:120] = True
    track = Track.from_masks("cup", {0: mask, 4: mask}, fps=1)  # a stride of 4: shown up to 2 frames away
    inner = np.zeros_like(mask)
    inner[34:86, 44:116] = True  # away from the outlines
    video = overlay_drawing.draw_frame(
        image,
        2,
        [overlay_drawing.RegionPainter(track, overlay_drawing.region_colour(0))],
        None,
        overlay_drawing.FrameStyle.for_frame(160, 120, FILL_OPACITY),
    )
    for index in (0, 2, 6):
        page = draw_frame(image, index, ["cup"], masks=track_masks([track], index))
        np.testing.assert_array_equal(page[inner], video[inner])
        assert not np.array_equal(page[inner], image[inner])
    for index in (7, 9):  # more than half a stride beyond the last tracked frame
        np.testing.assert_array_equal(draw_frame(image, index, ["cup"], masks=track_masks([track], index)), image)
