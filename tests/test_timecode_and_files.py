import json
import os

import pytest

from garvideo import InvalidInputError
from garvideo.files import atomic_path, atomic_write_json, is_temporary
from garvideo.timecode import When, format_clock, parse_seconds, parse_when


@pytest.mark.parametrize(
    "text, expected",
    [
        ("120", When(frame=120)),
        ("0", When(frame=0)),
        ("4.5s", When(time=4.5)),
        ("1:02.5", When(time=62.5)),
        ("1:02:03", When(time=3723.0)),
        (" 3s ", When(time=3.0)),
    ],
)
def test_parse_when(text, expected):
    assert parse_when(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-3", "1:75", "4.5", "1:2:3:4", "4.5ms"])
def test_parse_when_rejects(text):
    with pytest.raises(InvalidInputError):
        parse_when(text)


def test_parse_seconds():
    assert parse_seconds("4.5") == 4.5
    assert parse_seconds("4.5s") == 4.5
    assert parse_seconds("1:00") == 60.0
    with pytest.raises(InvalidInputError):
        parse_seconds("soon")


def test_format_clock():
    assert format_clock(3723.4567) == "01:02:03.457"
    assert format_clock(0.0, decimal=",") == "00:00:00,000"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_temp_names_are_recognisable(tmp_path):
    with atomic_path(tmp_path / "x.mp4") as tmp:
        assert is_temporary(tmp)
        assert tmp.suffix == ".mp4"  # encoders pick the container from the suffix
        tmp.write_bytes(b"1")
    assert not is_temporary(tmp_path / "x.mp4")


def test_check_writable_refuses_before_any_work(tmp_path):
    from garvideo import InvalidInputError
    from garvideo.files import check_writable

    assert check_writable(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    with pytest.raises(InvalidInputError, match="is a folder"):
        check_writable(tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        check_writable(tmp_path / "afile" / "r.json", "result")


def test_numbers_longer_than_any_moment_are_refused_unread():
    for text in ("9" * 5000, "1:" + "9" * 5000, "9" * 4000 + "s"):
        with pytest.raises(InvalidInputError, match="too long for one"):
            parse_when(text)
        with pytest.raises(InvalidInputError, match="too long for one"):
            parse_seconds(text)
    assert parse_when("1:02:03.123456").time == pytest.approx(3723.123456)
