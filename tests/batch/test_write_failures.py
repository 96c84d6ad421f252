"""A batch whose output folder refuses writes after the work (a full disk, a read-only remount) loses no result,
records every item it could not finish, and always writes its failures and summary somewhere (issue 21)."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from garvideo.batch.jobs import BatchJob, ItemOutput


@dataclass(frozen=True)
class Item:
    key: str


@pytest.fixture
def refusing(monkeypatch):
    """``refuse(folder, code, after=0, read_only=False)``: once ``after`` files have been written in ``folder``,
    the file system refuses the next ones with ``code`` (at the final rename of an atomic write) and, when
    ``read_only``, any new file and the removal of locks too (a full disk still makes empty files)."""

    def refuse(folder: Path, code: int, after: int = 0, read_only: bool = False) -> None:
        real_replace, real_open, real_unlink = os.replace, os.open, os.unlink
        state = {"written": 0}

        def refused(path, creation: bool = False) -> bool:
            inside = Path(os.fspath(path)).parent == folder
            return inside and state["written"] >= after and (read_only or not creation)

        def error(path) -> OSError:
            return OSError(code, os.strerror(code), os.fspath(path))

        def replace(src, dst, *args, **kwargs):
            if refused(dst):
                real_unlink(src)
                raise error(dst)
            real_replace(src, dst, *args, **kwargs)
            state["written"] += Path(os.fspath(dst)).parent == folder

        def open_(path, flags, *args, **kwargs):
            if flags & os.O_CREAT and refused(path, creation=True):
                raise error(path)
            return real_open(path, flags, *args, **kwargs)

        def unlink(path, *args, **kwargs):
            if str(path).endswith(".lock") and refused(path, creation=True):
                raise error(path)
            return real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "unlink", unlink)

    return refuse


def test_a_full_disk_after_the_work_loses_no_result(tmp_path, refusing, monkeypatch):
    out, rescue = tmp_path / "out", tmp_path / "elsewhere"
    rescue.mkdir()
    monkeypatch.chdir(rescue)  # where a result the output folder refuses is saved instead
    out.mkdir()
    refusing(out, errno.ENOSPC)

    def process(item):
        return ItemOutput({"item": item.key}, ((".srt", f"subtitles of {item.key}"),))

    summary = BatchJob([Item("a"), Item("b")], out, process, progress=False).run()
    assert (summary.succeeded, [f.key for f in summary.failed]) == (0, ["a", "b"])
    for failure in summary.failed:
        assert "No space left on device" in failure.reason and "saved it as" in failure.reason
    # nothing is lost: the subtitles and the documents were saved where the reasons say
    assert (rescue / "a.srt").read_text() == "subtitles of a"
    assert json.loads((rescue / "a.incomplete.json").read_text()) == {"item": "a"}
    # the failures and the summary were written too, elsewhere, and the summary says where
    assert len(summary.problems) == 2 and all("saved it as" in p for p in summary.problems)
    failures = [json.loads(line) for line in (rescue / "failures.jsonl").read_text().splitlines()]
    assert [f["key"] for f in failures] == ["a", "b"]
    assert json.loads((rescue / "summary.json").read_text())["failed"] == 2


def test_a_folder_gone_read_only_mid_run_gives_failure_lines_not_a_traceback(tmp_path, refusing, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    items = [Item(k) for k in "abc"]
    done = []

    def process(item):
        if not done:  # the first item's result goes in, then the folder turns read-only
            refusing(out, errno.EROFS, after=1, read_only=True)
        done.append(item.key)
        return {"item": item.key}

    summary = BatchJob(items, out, process, progress=False).run()
    assert json.loads((out / "a.json").read_text()) == {"item": "a"}
    assert summary.succeeded == 1 and [f.key for f in summary.failed] == ["b", "c"]
    assert all("Read-only file system" in f.reason for f in summary.failed)
    assert done == ["a"]  # the items that could not even be locked were not computed for nothing
    assert summary.problems and json.loads((tmp_path / "summary.json").read_text())["succeeded"] == 1
