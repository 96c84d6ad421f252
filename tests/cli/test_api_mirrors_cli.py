"""The Python API mirrors the command line: every option of ``garvideo track|describe|ask`` is a keyword of the
same name and default on the Pipeline method (and the model options on ``Pipeline.from_pretrained``), so a command
line translates to a call word for word. The one exception is deliberate: the text-search options are the fields
of one ``search=TextSearch(...)`` (``--box-threshold 0.3`` is ``search=TextSearch(box_threshold=0.3)``), the object
that carries them, checked once, from the command line, a batch or the web app down to the detector."""

from __future__ import annotations

import dataclasses
import inspect

import click
import pytest

from garvideo.pipeline import Pipeline, TextSearch

# Options that say where results go or how they are shown: the API returns the result instead.
PRESENTATION = {"out", "as_json", "save_tracks", "srt", "vtt", "overlay", "quiet", "help"}
# How regions are given: the API takes RegionPrompt objects (``regions``) or Track objects (``tracks``).
REGION_INPUTS = {"boxes", "points", "masks", "texts", "tracks_file"}
# Options that choose the models: keywords of Pipeline.from_pretrained.
MODEL_LOADING = {"model", "sam2", "compile", "compile_sam2", "device", "dtype", "threads", "detector", "adapter"}
# Options that say how text regions are found: fields of the methods' ``search=TextSearch(...)``.
TEXT_SEARCH = {
    "box_threshold": "box_threshold",
    "text_threshold": "text_threshold",
    "max_instances": "max_instances",
    "search_every": "every",
    "new_instances": "new_instances",
    "match_iou": "match_iou",
}
# Keywords the API has beyond the CLI (documented in the methods' docstrings and the README).
API_ONLY = {"regions", "tracks", "instruction", "template", "generation", "batch_size", "progress", "on_event"}


def _commands():
    from garvideo_cli.describe import ask_command, describe_command
    from garvideo_cli.track import track_command

    return [(track_command, Pipeline.track), (describe_command, Pipeline.describe), (ask_command, Pipeline.ask)]


def _python_name(option: click.Option) -> str:
    """``--max-new-tokens`` -> ``max_new_tokens``; a repeatable option is the plural (``--option`` -> ``options``)."""
    longest = max(option.opts, key=len).lstrip("-").replace("-", "_")
    return longest + "s" if option.multiple and not longest.endswith("s") else longest


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name not in PRESENTATION | REGION_INPUTS]


@pytest.mark.parametrize("command, method", _commands(), ids=["track", "describe", "ask"])
def test_every_option_is_a_keyword_of_the_same_name_and_default(command, method):
    keywords = inspect.signature(method).parameters
    loading = inspect.signature(Pipeline.from_pretrained).parameters
    for param in command.params:
        if isinstance(param, click.Argument):  # VIDEO, QUESTION: the method's leading positional parameters
            assert param.name in keywords and keywords[param.name].default is inspect.Parameter.empty, param.name
    # What the command receives when no option is given (the arguments are only placeholders).
    arguments = [__file__, "What is <a>?"][: sum(isinstance(p, click.Argument) for p in command.params)]
    context = command.make_context(command.name, arguments, resilient_parsing=True)
    search_fields = {f.name: f for f in dataclasses.fields(TextSearch)}
    mirrored, searched = set(), set()
    for option in _options(command):
        if option.expose_value:
            default = context.params[option.name]
        else:  # --compile, --threads: left in the context for load_pipeline
            default = option.process_value(context, option.get_default(context))
        if option.multiple and not default:
            default = None  # nothing repeated: the API's None
        name = _python_name(option)
        assert option.name == name, f"{option.opts[0]} reaches the command as {option.name!r}, not {name!r}"
        if name in TEXT_SEARCH:
            field = search_fields[TEXT_SEARCH[name]]
            assert field.default == default, (
                f"{option.opts[0]} defaults to {default!r}, TextSearch to {field.default!r}"
            )
            searched.add(field.name)
            continue
        target = loading if name in MODEL_LOADING else keywords
        where = "Pipeline.from_pretrained" if name in MODEL_LOADING else f"Pipeline.{method.__name__}"
        assert name in target, f"{option.opts[0]} of `garvideo {command.name}` is no keyword of {where}"
        assert target[name].default == default, (
            f"{option.opts[0]} defaults to {default!r} but {where}'s {name} to {target[name].default!r}"
        )
        mirrored.add(name)
    # search= stands for all the text options, or the command has none of them
    assert searched in (set(), set(search_fields)), f"`garvideo {command.name}` lacks {set(search_fields) - searched}"
    if searched:
        assert keywords["search"].default == TextSearch(), f"Pipeline.{method.__name__}'s search= is not TextSearch()"
        mirrored.add("search")
    positional = {p.name for p in command.params if isinstance(p, click.Argument)}
    extra = set(keywords) - {"self"} - positional - mirrored - API_ONLY
    assert not extra, f"Pipeline.{method.__name__} has keywords no CLI option gives: {sorted(extra)}"


def test_progress_is_chosen_per_call_not_flipped_on_the_shared_pipeline():
    for method in (Pipeline.find, Pipeline.track, Pipeline.describe, Pipeline.ask):
        progress = inspect.signature(method).parameters["progress"]
        assert progress.kind is inspect.Parameter.KEYWORD_ONLY and progress.default is None, method.__name__
    pipeline = Pipeline(None, None, progress=False)
    with pytest.raises(AttributeError):
        pipeline.progress = True  # type: ignore[misc]
