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
