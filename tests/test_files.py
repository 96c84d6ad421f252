"""garvideo.files: atomic writes with the usual file mode, and output paths proven writable up front."""

from __future__ import annotations

import os
import stat

import pytest

from garvideo.files import atomic_write_json, atomic_write_text


@pytest.fixture
def umask():
    def set_umask(value: int) -> None:
        os.umask(value)

    previous = os.umask(0o022)
    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_get_the_usual_mode(tmp_path, umask, mask):
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_json(tmp_path / "sub" / "b.json", {"a": 1})
    for path in (tmp_path / "a.txt", tmp_path / "sub" / "b.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    # what an editor would make under the same umask
    with open(tmp_path / "editor.txt", "w") as handle:
        handle.write("x")
    assert stat.S_IMODE((tmp_path / "editor.txt").stat().st_mode) == 0o666 & ~mask


def test_only_abandoned_temporaries_are_taken_for_leftovers(tmp_path):
    import subprocess
    import sys

    from garvideo.files import atomic_path, host_tag, is_abandoned_temporary

    with atomic_path(tmp_path / "r.json") as mine:
        assert not is_abandoned_temporary(mine)  # this process is writing it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".r.json.{host_tag()}-{int(dead.stdout)}.abc_12.tmp.json"
    orphan.write_text("{")
    assert is_abandoned_temporary(orphan)  # its process is gone
    foreign = tmp_path / ".r.json.0000beef-1.abc_12.tmp.json"
    foreign.write_text("{")
    assert not is_abandoned_temporary(foreign)  # another machine's, fresh: maybe being written
    os.utime(foreign, (0, 0))
    assert is_abandoned_temporary(foreign)
    assert not is_abandoned_temporary(tmp_path / "r.json")


def test_outputs_never_replace_special_files_and_write_through_links(tmp_path):
    from garvideo import InvalidInputError
    from garvideo.files import OutputNotRegularError, check_writable, write_or_rescue

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for special in ("/dev/null", fifo):
        with pytest.raises(InvalidInputError, match="not a regular file"):
            check_writable(special)
        with pytest.raises(OutputNotRegularError):
            atomic_write_text(special, "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISFIFO(os.stat(fifo).st_mode)
    # a write that meets one after the up-front check is saved elsewhere, as any refused write
    problem = write_or_rescue(fifo, lambda target: atomic_write_text(target, "x"))
    assert "is a FIFO (named pipe), not a regular file" in problem and "saved it as" in problem
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "made" / "by-link.json")
    check_writable(dangling)
    atomic_write_text(dangling, "made")
    assert (tmp_path / "made" / "by-link.json").read_text() == "made"


def test_long_names_fit_or_are_one_clear_error(tmp_path):
    from garvideo import InvalidInputError
    from garvideo.files import atomic_path, check_writable

    longest = tmp_path / ("n" * 250 + ".json")  # fits; its temporary's name is shortened to fit too
    check_writable(longest)
    atomic_write_text(longest, "x")
    assert longest.read_text() == "x" and os.listdir(tmp_path) == [longest.name]
    with atomic_path(tmp_path / ("v" * 240 + ".mp4")) as tmp:
        assert tmp.suffix == ".mp4" and len(tmp.name) <= 255
        tmp.write_bytes(b"1")
    with pytest.raises(InvalidInputError, match="the name is too long for the file system") as caught:
        check_writable(tmp_path / ("n" * 300 + ".json"), "result")
    assert len(str(caught.value)) < 300


def test_outputs_are_compared_with_inputs_and_each_other_as_files(tmp_path):
    from garvideo import InvalidInputError
    from garvideo.files import check_distinct

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias.mp4").symlink_to(video)
    os.link(video, tmp_path / "hard.mp4")
    for same in (video, tmp_path / "sub" / ".." / "clip.mp4", tmp_path / "alias.mp4", tmp_path / "hard.mp4"):
        with pytest.raises(InvalidInputError, match="is the video itself"):
            check_distinct({"--out": same}, {"the video": video})
    with pytest.raises(InvalidInputError, match="--out and --srt both name"):
        check_distinct({"--out": tmp_path / "r", "--srt": tmp_path / "sub" / ".." / "r"})
    check_distinct({"--out": tmp_path / "r.json", "--srt": tmp_path / "r.srt", "--json": "-"}, {"the video": video})
