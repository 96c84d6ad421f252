"""A property-based test over the command line's grammar and numbers (issue 15).

Whatever a user types, garvideo either does the work or prints exactly one
``garvideo: error: ...`` line and exits with code 2: never a traceback, never
unbounded time or output. Tiny random models and a generated 2-second clip;
the models are loaded once (the pipeline's loader is memoised) so each example
costs what its own work costs. Examples are derandomised so CI is repeatable.
"""

from __future__ import annotations

import functools

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

MAX_OUTPUT = 256 * 1024


def mostly(valid, junk):
    """Usually a valid value, sometimes junk: most examples then get far enough to do real work."""
    return st.integers(0, 5).flatmap(lambda roll: junk if roll == 5 else valid)


JUNK_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "1e9", "abc", "0x10", "-0", "1,5", "-5", "500", "9" * 40]),
)
JUNK_WHEN = st.sampled_from(["", "x", "nan", "infs", "9" * 30, "-1", "1.5", "99", "5s", "1:00"])
JUNK_TIME = st.sampled_from(["", "abc", "nan", "inf", "-1", "-0", "9" * 30, "1:02:03", "5"])
NAME = mostly(st.sampled_from(["", "thing=", "dog="]), st.sampled_from(["=", "a b=", "a<b=", "x,y=", "a@b=", "é-2="]))
WHEN = mostly(
    st.one_of(st.integers(0, 23).map(str), st.floats(0, 1.9).map(lambda t: f"{t:.2f}s"), st.just("0:01")), JUNK_WHEN
)
TIME = mostly(st.floats(0, 2).map(lambda t: f"{t:.2f}"), JUNK_TIME)
WINDOW = mostly(
    st.floats(0.05, 2.5).map(lambda w: f"{w:.3g}"),
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e-9", "1e-6", "0.0834", "1e308", "abc", ""]),
)


def count(top: int):
    return mostly(st.integers(1, top).map(str), st.sampled_from(["0", "-1", "", "x", "1.5", "9" * 25]))


@st.composite
def box(draw, valid: str):
    if draw(st.booleans()):
        return valid  # the clip's object on frame 3: it tracks, the rest of the command decides
    x1, y1 = draw(st.integers(0, 150)), draw(st.integers(0, 110))
    numbers = [str(x1), str(y1), str(x1 + draw(st.integers(1, 60))), str(y1 + draw(st.integers(1, 60)))]
    if draw(st.integers(0, 4)) == 0:
        numbers[draw(st.integers(0, 3))] = draw(JUNK_NUMBER)
    if draw(st.integers(0, 9)) == 0:
        numbers = numbers[: draw(st.integers(0, 3))]
    return f"{draw(NAME)}{','.join(numbers)}@{draw(WHEN)}"


@st.composite
def clicks(draw):
    chunks = []
    for _ in range(draw(st.integers(1, 3))):
        x, y = draw(st.integers(0, 170)), draw(st.integers(0, 130))
        xy = f"{x},{y}" if draw(st.integers(0, 4)) else draw(JUNK_NUMBER)
        chunks.append(draw(st.sampled_from(["", "", "!", "~"])) + xy)
    return f"{draw(NAME)}{';'.join(chunks)}@{draw(WHEN)}"


@st.composite
def command_line(draw, material, out_dir):
    command = draw(st.sampled_from(["describe", "describe", "ask", "track"]))
    args = [command, str(material.clip)]
    if command == "ask":
        question = mostly(st.just("What is <thing> doing?"), st.sampled_from(["<dog>?", "<a<b>?", "", "<|image|>"]))
        args.append(draw(question))
    for _ in range(draw(mostly(st.integers(1, 2), st.just(0)))):
        args += ["--box", draw(box(material.box))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--points", draw(clicks())]
    if draw(st.integers(0, 9)) == 0:
        args += ["--mask", draw(st.sampled_from(["m=missing.png@0", f"{material.clip}@0", "@0"]))]
    options = {"--start": TIME, "--end": TIME, "--stride": count(6)}
    if command != "track":
        options.update(
            {"--frames": count(8), "--tiling": mostly(st.just("vanilla"), st.sampled_from(["thumb+tile", "huge"]))}
        )
    if command == "describe":
        options.update({"--window": WINDOW, "--frames-per-window": count(4)})
    for option, values in options.items():
        if draw(st.integers(0, 3)) == 0:
            args += [option, draw(values)]
    if command == "ask" and draw(st.integers(0, 2)) == 0:
        for _ in range(draw(st.integers(1, 3))):
            args += [
                "--option",
                draw(mostly(st.sampled_from(["yes", "no", "<thing>"]), st.sampled_from(["", "<cat>"]))),
            ]
    out = draw(
        mostly(st.sampled_from([str(out_dir / "r.json"), "-", None]), st.sampled_from(["/proc/g/r.json", str(out_dir)]))
    )
    if command == "track" and out is None:
        out = str(out_dir / "t.json")
    if out is not None:
        args += ["--out", out]
    args += ["--sam2", str(material.sam2), "-q"]
    if command != "track":
        args += ["--model", str(material.gar), "--max-new-tokens", "2"]
    return args


@pytest.fixture(scope="module")
def loaded_once():
    """Pipeline.from_pretrained memoised for the module: the tiny checkpoints load once, not per example."""
    from garvideo.pipeline import Pipeline

    real = Pipeline.from_pretrained
    Pipeline.from_pretrained = functools.cache(real)
    yield
    Pipeline.from_pretrained = real


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_command_line_works_or_is_one_error_line(data, material, loaded_once, tmp_path_factory):
    from garvideo_cli.main import app

    args = data.draw(command_line(material, tmp_path_factory.mktemp("fuzz")), label="argv")
    result = CliRunner().invoke(app, args)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in output, output
    assert len(output) < MAX_OUTPUT, (args, len(output))
    stderr = result.stderr.splitlines()
    errors = [line for line in stderr if line.startswith("garvideo: error:")]
    if result.exit_code == 0:
        assert not errors, stderr
    else:
        assert result.exit_code == 2, (args, result.exit_code, output)
        assert len(errors) == 1, (args, stderr)
        # besides the one error, at most warnings and "wrote"/"loading" notes
        others = [line for line in stderr if not line.startswith(("garvideo: error:", "garvideo: warning:", "wrote "))]
        assert not others, (args, stderr)
