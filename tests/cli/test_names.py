"""Region names are checked once, where they enter, and ``<name>`` references are resolved in one place."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app

from garvideo import InvalidInputError
from garvideo.names import check_region_name, resolve_references
from garvideo.tracking import RegionPrompt, Track
from garvideo.tracking.marks import parse_region_prompts


@pytest.mark.parametrize(
    "name, complaint",
    [("a<b", "'<'"), ("a>b", "'>'"), ("a\nb", "a line break"), ("tab\there", "a control character"), ("", "empty")],
)
def test_prompts_and_tracks_refuse_names_a_question_cannot_carry(name, complaint):
    with pytest.raises(InvalidInputError, match=complaint):
        RegionPrompt.from_box(name, (0, 0, 5, 5), 0)
    with pytest.raises(InvalidInputError, match=complaint):
        Track.from_masks(name, {0: np.ones((4, 4), bool)}, fps=1)
    with pytest.raises(InvalidInputError, match=complaint):
        check_region_name(name)


def test_plain_names_pass_unchanged():
    for name in ("dog", "red-car", "big dog", "chien_2", "Prompt1", "狗"):
        assert RegionPrompt.from_box(name, (0, 0, 5, 5), 0).name == name
    assert RegionPrompt.from_box("  dog ", (0, 0, 5, 5), 0).name == "dog"


@pytest.mark.parametrize(
    "spec, complaint",
    [
        ("a<b=1,2,30,40@0", "'<'"),
        ("a>b=1,2,30,40@0", "'>'"),
        ("my dog=1,2,30,40@0", "a space"),
        ("a,b=1,2,30,40@0", "a comma"),
        ("a\nb=1,2,30,40@0", "a line break"),
        ("a=b=1,2,30,40@0", "'='"),
        ("a@b=1,2,30,40@0", "'@'"),
    ],
)
def test_the_command_line_says_what_is_wrong_with_a_name(spec, complaint):
    for option, text in (("boxes", spec), ("points", spec.replace("1,2,30,40", "5,6"))):
        with pytest.raises(InvalidInputError, match=complaint) as caught:
            parse_region_prompts(**{option: [text]})
        message = str(caught.value)
        assert "region name" in message and "comma-separated numbers" not in message


def test_a_bad_name_is_refused_before_any_model_loads(material, tmp_path):
    result = CliRunner().invoke(
        app,
        ["ask", str(material.clip), "What is <a<b>?", "--box", "a<b=1,2,30,40@0", "--model", "nobody/none", "-q"],
    )
    assert result.exit_code == 2 and "'<'" in result.stderr and "nobody" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_references_are_resolved_in_order_and_unknown_ones_named():
    text, named = resolve_references("Is <dog> near < ball >? Not <dog>.", ["ball", "dog"], lambda k: f"<R{k}>")
    assert text == "Is <R1> near <R0>? Not <R1>." and named == ["dog", "ball"]
    assert resolve_references("What is this?", ["dog"])[1] == []
    with pytest.raises(InvalidInputError, match=r"<cat>, <cow>, which are not among the given regions \(dog\)"):
        resolve_references("Is <cat> bigger than <cow>?", ["dog"])
    # control tokens are left alone here (the model refuses them with its own message)
    assert resolve_references("<|image|> <dog>", ["dog"])[1] == ["dog"]
