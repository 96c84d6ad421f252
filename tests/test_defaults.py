"""Every default a user can change is written once, in ``garvideo/defaults.py``: each front-end's copy is held to it
(the command line's options, the pipeline's signatures, ``BatchOptions``, the web app's commands and page, and the
library constants of the model, tracking and grounding layers)."""

from __future__ import annotations

import dataclasses
import inspect

import click
import pytest
from garvideo_cli.main import app as cli_app

from garvideo import defaults
from garvideo.app import AppConfig, Models
from garvideo.app import server as app_server
from garvideo.app.commands import Generation
from garvideo.batch import BatchOptions
from garvideo.pipeline import Pipeline, TextSearch

# A keyword or option (its Python name) -> its entry in the table.
ENTRIES = {
    "model": "MODEL",
    "sam2": "SAM2",
    "detector": "DETECTOR",
    "device": "DEVICE",
    "dtype": "DTYPE",
    "stride": "STRIDE",
    "frames": "FRAMES",
    "frames_per_window": "FRAMES_PER_WINDOW",
    "window": "WINDOW",
    "tiling": "TILING",
    "max_new_tokens": "MAX_NEW_TOKENS",
    "box_threshold": "BOX_THRESHOLD",
    "text_threshold": "TEXT_THRESHOLD",
    "max_instances": "MAX_INSTANCES",
    "search_every": "SEARCH_EVERY",
    "new_instances": "NEW_INSTANCES",
    "match_iou": "MATCH_IOU",
    "describe_mode": "BATCH_DESCRIBE",  # garvideo batch --describe
}
# `garvideo app`'s own options.
APP_ENTRIES = {
    "host": "APP_HOST",
    "port": "APP_PORT",
    "max_upload_mb": "APP_MAX_UPLOAD_MB",
    "session_hours": "APP_SESSION_HOURS",
}
# `garvideo live`'s own options, and the live session's settings that differ from the files' (a live text region
# is searched again and again, so more instances and a wider interval; windows fit a stream, not a clip).
LIVE_ENTRIES = {
    "window": "LIVE_WINDOW",
    "max_instances": "LIVE_MAX_INSTANCES",
    "search_every": "LIVE_SEARCH_EVERY",
    "track_fps": "LIVE_TRACK_FPS",
    "report_every": "LIVE_REPORT_EVERY",
    "reconnect_s": "LIVE_RECONNECT_S",
    "give_up_after_s": "LIVE_GIVE_UP_AFTER_S",
    "lost_after_s": "LIVE_LOST_AFTER_S",
    "segment_s": "LIVE_SEGMENT_S",
}
# The benchmarks run their protocols' settings (garvideo.eval, cli/eval.py), not the front-ends' defaults: their own
# entries, per command (test_the_benchmarks_run_their_own_entries_of_the_table).
BENCHMARK_SETTINGS = {"frames", "max_new_tokens"}
BENCHMARK_ENTRIES = {
    "gar-bench-vqa": {"max_new_tokens": "EVAL_MAX_NEW_TOKENS"},
    "videorefer-q": {"max_new_tokens": "EVAL_MAX_NEW_TOKENS", "frames": "VIDEOREFER_FRAMES"},
    "videorefer-d": {"max_new_tokens": "EVAL_MAX_NEW_TOKENS", "frames": "VIDEOREFER_FRAMES"},
}
# TextSearch's fields under the names of the options they stand for.
SEARCH_FIELDS = {
    "box_threshold": "box_threshold",
    "text_threshold": "text_threshold",
    "max_instances": "max_instances",
    "search_every": "every",
    "new_instances": "new_instances",
    "match_iou": "match_iou",
}


def _table(name: str, entries: dict[str, str] = ENTRIES):
    return getattr(defaults, entries.get(name) or APP_ENTRIES[name])


def _commands(command: click.Command, path: str = ""):
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}".strip())
    else:
        yield path, command


def _differences(found: dict[str, object], where: str, entries: dict[str, str] = ENTRIES) -> list[str]:
    return [
        f"{where}: {name}={value!r}, the table {_table(name, entries)!r}"
        for name, value in found.items()
        if value != _table(name, entries)
    ]


def test_every_command_line_option_defaults_to_the_table():
    checked, wrong = set(), []
    for path, command in _commands(cli_app):
        entries = ENTRIES | LIVE_ENTRIES if path == "live" else ENTRIES
        names = entries | (APP_ENTRIES if path == "app" else {})
        options = {p.name: p.default for p in command.params if isinstance(p, click.Option) and p.name in names}
        if path.startswith("eval "):
            options = {name: value for name, value in options.items() if name not in BENCHMARK_SETTINGS}
        wrong += _differences(options, f"garvideo {path}", entries)
        checked |= set(options) - (set(LIVE_ENTRIES) - set(ENTRIES) if path == "live" else set())
    assert not wrong, "\n".join(wrong)
    assert checked == set(ENTRIES) | set(APP_ENTRIES)  # every entry is some option's default


def test_the_benchmarks_run_their_own_entries_of_the_table():
    from garvideo_cli.eval import eval_group

    from garvideo.eval.run_gar_bench import REFERENCE_MAX_NEW_TOKENS
    from garvideo.eval.run_videorefer import VideoReferSettings, plan_videorefer, run_videorefer

    for name, entries in BENCHMARK_ENTRIES.items():
        options = {p.name: p.default for p in eval_group.commands[name].params if p.name in BENCHMARK_SETTINGS}
        assert set(options) == set(entries), name
        assert not _differences(options, f"garvideo eval {name}", entries)
    videorefer = {"frames": "VIDEOREFER_FRAMES"}
    for function in (plan_videorefer, run_videorefer):
        frames = inspect.signature(function).parameters["frames"].default
        assert not _differences({"frames": frames}, function.__name__, videorefer)
    assert not _differences({"frames": VideoReferSettings().frames}, "VideoReferSettings", videorefer)
    assert defaults.EVAL_MAX_NEW_TOKENS == REFERENCE_MAX_NEW_TOKENS  # the benchmarks run the reference's decoding


def test_the_live_sessions_signature_defaults_to_the_table():
    from garvideo.live import open_session

    parameters = inspect.signature(open_session).parameters
    entries = ENTRIES | LIVE_ENTRIES
    found = {name: p.default for name, p in parameters.items() if name in entries}
    # the models and their devices are the pipeline's; a live text region is always searched again
    shared = {"model", "sam2", "detector", "device", "dtype", "stride", "describe_mode", "segment_s", "new_instances"}
    assert set(found) == set(entries) - shared
    assert not _differences(found, "open_session", entries)


@pytest.mark.parametrize("method", ["from_pretrained", "__init__", "find", "tracks_for", "track", "describe", "ask"])
def test_the_pipelines_signatures_default_to_the_table(method):
    parameters = inspect.signature(getattr(Pipeline, method)).parameters
    found = {name: p.default for name, p in parameters.items() if name in ENTRIES}
    assert not _differences(found, f"Pipeline.{method}")
    if "search" in parameters:
        search = parameters["search"].default
        fields = {option: getattr(search, field) for option, field in SEARCH_FIELDS.items()}
        assert not _differences(fields, f"Pipeline.{method}(search=...)")


def test_text_search_and_batch_options_default_to_the_table():
    fields = {option: getattr(TextSearch(), field) for option, field in SEARCH_FIELDS.items()}
    assert not _differences(fields, "TextSearch")
    batch = {f.name: f.default for f in dataclasses.fields(BatchOptions) if f.name in ENTRIES}
    assert set(batch) == {"stride", "frames", "frames_per_window", "window", "tiling", "max_new_tokens"}
    batch["describe_mode"] = BatchOptions().describe
    assert not _differences(batch, "BatchOptions")
    assert BatchOptions().search == TextSearch()


def test_the_apps_commands_and_settings_default_to_the_table():
    # adapter: None, no fine-tuned adapter unless --adapter names one (no setting of the table)
    models = {
        f.name: f.default
        for f in dataclasses.fields(Models)
        if f.default is not dataclasses.MISSING and f.name != "adapter"
    }
    generation = {f.name: f.default for f in dataclasses.fields(Generation)}
    assert not _differences(models, "app Models") and set(models) == {"device", "dtype", "detector"}
    assert not _differences(generation, "app Generation") and set(generation) == {"frames", "tiling", "max_new_tokens"}
    config = {f.name: f.default for f in dataclasses.fields(AppConfig)}
    assert config["max_upload_mb"] == defaults.APP_MAX_UPLOAD_MB
    assert config["session_ttl_s"] == defaults.APP_SESSION_HOURS * 3600
    assert config["text_search"] == TextSearch()
    serve = inspect.signature(app_server.serve).parameters
    assert (serve["host"].default, serve["port"].default) == (defaults.APP_HOST, defaults.APP_PORT)


def test_the_layers_constants_are_the_tables():
    from garvideo.grounding import DEFAULT_BOX_THRESHOLD, DEFAULT_DETECTOR, DEFAULT_TEXT_THRESHOLD
    from garvideo.model import DEFAULT_MODEL_ID
    from garvideo.tracking import DEFAULT_SAM2_MODEL

    assert (DEFAULT_MODEL_ID, DEFAULT_SAM2_MODEL, DEFAULT_DETECTOR) == (
        defaults.MODEL,
        defaults.SAM2,
        defaults.DETECTOR,
    )
    assert (DEFAULT_BOX_THRESHOLD, DEFAULT_TEXT_THRESHOLD) == (defaults.BOX_THRESHOLD, defaults.TEXT_THRESHOLD)


@pytest.mark.slow  # imports Gradio (several seconds) to build the page
def test_the_apps_page_starts_from_the_table(tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from garvideo.app import Backend
    from garvideo.app.ui import Page

    page = Page(Backend(AppConfig(models=Models("gar", "sam2"), temp_root=tmp_path), pipeline=None))
    page.build()
    shown = ["stride", "frames_per_window", "frames", "tiling", "max_new_tokens"]
    shown += ["box_threshold", "text_threshold", "max_instances"]  # `garvideo app`'s text options start them
    widgets = {name: page.w[name].value for name in shown}
    assert not _differences(widgets, "the app's page")
    assert page.w["window"].value == 0 and defaults.WINDOW is None  # 0 on the page: adaptive, the table's None
    live = ["window", "frames_per_window", "max_new_tokens", "max_instances", "search_every"]  # the Live tab's
    widgets = {name: page.w[f"live_{name}".replace("max_new_tokens", "max_new")].value for name in live}
    assert not _differences(widgets, "the app's Live tab", ENTRIES | LIVE_ENTRIES)
    assert page.w["live_last"].value == defaults.LIVE_ASK_LAST_S


def test_compile_defaults_to_the_table_in_the_command_line_pipeline_and_gar():
    from garvideo_cli.describe import describe_command

    from garvideo.model import GAR

    option = next(p for p in describe_command.params if p.name == "compile")
    context = describe_command.make_context("describe", [__file__], resilient_parsing=True)
    assert option.process_value(context, option.get_default(context)) == defaults.COMPILE  # neither flag given
    for method in (Pipeline.from_pretrained, GAR.from_pretrained, GAR.__init__):
        assert inspect.signature(method).parameters["compile"].default == defaults.COMPILE, method.__qualname__
