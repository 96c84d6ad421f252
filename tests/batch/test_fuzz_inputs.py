"""Property-based tests over what users write: batch manifests and the command line's region grammar (issue 21).

Whatever a manifest or a region holds, garvideo reads it into requests or refuses it with one line (a
:class:`InvalidInputError` without a line break, or ``garvideo: error: ...`` and exit code 2), never a traceback,
and does no work before the input is known good: no model loads and nothing is written. Examples are
derandomised so CI is repeatable.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garvideo import InvalidInputError
from garvideo.batch import read_manifest
from garvideo.batch.manifest import check_lines

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

NUMBER = st.one_of(
    st.integers(-5, 400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**30, -(10**30), 1e308, 0.5]),
)
JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
WHEN = st.one_of(
    st.fixed_dictionaries({"frame": st.one_of(st.integers(-2, 30), JUNK)}),
    st.fixed_dictionaries({"time": st.one_of(st.floats(-1, 3), JUNK)}),
    st.none(),
    JUNK,
)
RLE = st.fixed_dictionaries(
    {
        "size": st.one_of(st.just([120, 160]), st.lists(st.integers(-1, 70000), min_size=2, max_size=2), JUNK),
        "counts": st.one_of(st.sampled_from(["", "0", "PPYo1", "a" * 50]), st.lists(st.integers(0, 20000)), JUNK),
    }
)
REGION = st.one_of(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["dog", "cat", "", "a<b", "x\ny"]), "when": WHEN},
        optional={
            "box": st.one_of(st.lists(NUMBER, min_size=4, max_size=4), JUNK),
            "points": st.one_of(st.lists(st.lists(NUMBER, min_size=2, max_size=2), max_size=3), JUNK),
            "labels": st.one_of(st.lists(st.integers(-1, 2), max_size=3), JUNK),
            "mask": st.one_of(RLE, st.sampled_from(["m.png", "none.png", "../m.png"]), JUNK),
            "text": st.one_of(st.sampled_from(["a red car", ""]), JUNK),
            "obj_id": st.one_of(st.integers(-1, 3), JUNK),
        },
    ),
    JUNK,
)
LINE_OBJECT = st.fixed_dictionaries(
    {"video": st.one_of(st.sampled_from(["a.mp4", "missing.mp4", ""]), JUNK)},
    optional={
        "regions": st.one_of(st.lists(REGION, max_size=3), JUNK),
        "question": st.one_of(st.sampled_from(["What is <dog>?", "", "<cat>?"]), JUNK),
        "options": st.one_of(st.lists(st.sampled_from(["yes", "no", "<dog>"]), max_size=30), JUNK),
        "extra": JUNK,
    },
)
HOSTILE_LINE = st.sampled_from(
    [
        "[" * 100_000,
        "[" * 40 + "]" * 40,
        '{"video": "a.mp4", "regions": [' + "7" * 5000 + "]}",
        '{"video": "a.mp4", "regions": [NaN]}',
        "{not json",
        "\x00\x01",
        '{"video": "a.mp4", "regions": [{"name": "dog", "when": {"frame": 0}, "box": [1, 2, 3, 4]}]}',
    ]
)
LINE = st.one_of(LINE_OBJECT.map(json.dumps), HOSTILE_LINE, st.text(max_size=30))
MANIFEST = st.tuples(st.booleans(), st.lists(LINE, min_size=1, max_size=4))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-batch")
    (folder / "a.mp4").write_bytes(b"")  # only ever read by the models' work, which these tests never reach
    from PIL import Image

    Image.new("L", (160, 120), 255).save(folder / "m.png")
    return folder


def _one_line(error: Exception) -> str:
    message = str(error)
    assert message and "\n" not in message and len(message) < 2000, message
    return message


def _write_manifest(folder, bom: bool, lines: list[str]):
    path = folder / "fuzz.jsonl"
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@SETTINGS
@given(manifest=MANIFEST)
def test_any_manifest_is_read_or_refused_in_one_line(manifest, folder):
    path = _write_manifest(folder, *manifest)
    try:
        lines = read_manifest(path)
    except InvalidInputError as error:
        _one_line(error)
        return
    try:
        reasons = check_lines(lines, folder, folder, path)
    except InvalidInputError as error:
        assert "can be run" in _one_line(error)
        return
    for line, reason in zip(lines, reasons):
        if reason is not None:
            _one_line(InvalidInputError(reason))
            assert reason.startswith(f"line {line.number}") or "not found" in reason, reason
        else:
            request = line.parse(folder, folder)
            assert request.regions and request.video.name == "a.mp4"


@pytest.mark.slow
@SETTINGS
@given(manifest=MANIFEST)
def test_the_batch_command_refuses_a_manifest_before_any_work(manifest, folder, tmp_path_factory, loading):
    from garvideo_cli.main import app

    path = _write_manifest(folder, *manifest)
    out = tmp_path_factory.mktemp("fuzz-out") / "out"
    result = CliRunner().invoke(app, ["batch", str(folder), "--regions", str(path), "--out", str(out), "-q"])
    assert not out.exists()  # no work: nothing written before the models load
    if isinstance(result.exception, loading):
        return  # some line can run: the models would load now
    assert result.exit_code == 2, (manifest, result.output, repr(result.exception))
    (line,) = result.stderr.splitlines()
    assert line.startswith("garvideo: error: ") and "Traceback" not in result.output


SPEC_NUMBER = st.one_of(st.integers(-5, 200).map(str), st.sampled_from(["1e9", "nan", "", "x", "9" * 5000, "1.5"]))
SPEC_WHEN = st.one_of(
    st.integers(0, 40).map(str),
    st.sampled_from(["1.5s", "0:01", "9" * 5000, "-1", "nan", "", "99s", "1:99"]),
)
SPEC_NAME = st.sampled_from(["", "dog=", "=", "a b=", "é=", "car#2=", "x" * 300 + "="])


@st.composite
def region_option(draw):
    kind = draw(st.sampled_from(["--box", "--points", "--mask", "--text"]))
    name = draw(SPEC_NAME)
    if kind == "--box":
        body = ",".join(draw(st.lists(SPEC_NUMBER, min_size=3, max_size=5)))
    elif kind == "--points":
        clicks = draw(st.lists(st.tuples(st.sampled_from(["", "!", "~"]), SPEC_NUMBER, SPEC_NUMBER), max_size=3))
        body = ";".join(f"{mark}{x},{y}" for mark, x, y in clicks)
    elif kind == "--mask":
        body = draw(st.sampled_from(["m.png", "none.png", "a.mp4", ""]))
    else:
        body = draw(st.sampled_from(["a red car", "'quoted'", "", "@"]))
    when = "" if draw(st.integers(0, 5)) == 0 else "@" + draw(SPEC_WHEN)
    return [kind, f"{name}{body}{when}"]


@pytest.mark.slow
@SETTINGS
@given(options=st.lists(region_option(), min_size=1, max_size=3))
def test_any_region_on_the_command_line_is_refused_in_one_line_before_any_work(
    options, folder, material, loading, monkeypatch
):
    from garvideo_cli.main import app

    monkeypatch.chdir(folder)
    out = folder / "never.json"
    args = ["track", str(material.clip), *[part for option in options for part in option], "--out", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert not out.exists()
    if isinstance(result.exception, loading):
        return  # good regions: the model would load now
    assert result.exit_code == 2, (args, result.output, repr(result.exception))
    lines = [line for line in result.stderr.splitlines() if not line.startswith("garvideo: warning:")]
    assert len(lines) == 1 and lines[0].startswith("garvideo: error: "), (args, result.stderr)
    assert len(lines[0]) < 2000


class Loading(Exception):
    """Raised where the models would load: every check before it has passed."""


@pytest.fixture
def loading(monkeypatch):
    from garvideo.pipeline import Pipeline

    def load(*_args, **_kwargs):
        raise Loading

    monkeypatch.setattr(Pipeline, "from_pretrained", load)
    return Loading


@pytest.fixture(scope="module")
def material(selftest_material):
    return selftest_material
