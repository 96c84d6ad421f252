"""``garvideo serve``: the JSON service (jobs, synchronous calls, OpenAI-compatible chat) on this machine or Ray."""

from __future__ import annotations

from pathlib import Path

import click

from garvideo import defaults

from .batch import ray_options, ray_settings
from .common import (
    ADAPTER_KEY,
    COMPILE_KEY,
    THREADS_KEY,
    check_sam2_name,
    load_pipeline,
    model_options,
    option_group,
    quiet_option,
)

_listening = option_group(
    click.option("--host", default=defaults.SERVE_HOST, show_default=True, help="Address to listen on."),
    click.option(
        "--port",
        default=defaults.SERVE_PORT,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="Port to listen on (0: any free port, printed at start).",
    ),
    click.option(
        "--keys",
        "keys_file",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=str),
        help="Clients, one a line: 'NAME KEY' or 'NAME sha256:HEX'. Every route but /healthz then needs "
        "'Authorization: Bearer KEY', and a key sees only its own jobs.",
    ),
)

_inputs = option_group(
    click.option(
        "--root",
        type=click.Path(exists=True, file_okay=False, path_type=str),
        metavar="FOLDER",
        help="Videos may be named by their path under FOLDER (nothing outside it is read). Without it: uploads "
        "and allowed URLs only.",
    ),
    click.option(
        "--allow-url",
        "allowed_urls",
        multiple=True,
        metavar="PREFIX",
        help="Fetch videos from URLs under PREFIX (repeat for several; nothing else is fetched).",
    ),
    click.option(
        "--max-upload-mb",
        default=defaults.SERVE_MAX_UPLOAD_MB,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Largest upload or fetched video.",
    ),
)

_jobs = option_group(
    click.option(
        "--state",
        default=defaults.SERVE_STATE,
        show_default=True,
        metavar="DIR",
        help="The job store (SQLite), uploads and results; a restarted server goes on with its jobs.",
    ),
    click.option(
        "--keep-hours",
        default=defaults.SERVE_KEEP_HOURS,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Delete finished jobs (results, files, uploads) this long after they end.",
    ),
    click.option(
        "--jobs",
        default=defaults.SERVE_JOBS,
        show_default=True,
        type=click.IntRange(min=1),
        help="Jobs run at once on the models (per Ray worker with --ray): one tracks while another describes.",
    ),
    click.option(
        "--max-running-per-key",
        default=defaults.SERVE_MAX_RUNNING_PER_KEY,
        show_default=True,
        type=click.IntRange(min=1),
        help="Jobs of one client run at once; its others wait their turn.",
    ),
    click.option(
        "--max-queued-per-key",
        default=defaults.SERVE_MAX_QUEUED_PER_KEY,
        show_default=True,
        type=click.IntRange(min=1),
        help="Jobs of one client waiting; more are refused with 429 and Retry-After.",
    ),
    click.option(
        "--max-queued",
        default=defaults.SERVE_MAX_QUEUED,
        show_default=True,
        type=click.IntRange(min=1),
        help="Jobs waiting in all; more are refused with 503 and Retry-After.",
    ),
)


@click.command("serve")
@model_options()
@click.option(
    "--detector",
    default=defaults.DETECTOR,
    show_default=True,
    metavar="ID|FOLDER",
    help="Open-vocabulary detector for text regions (loaded when the first one comes).",
)
@_listening
@_inputs
@_jobs
@ray_options
@quiet_option
def serve_command(model, sam2, device, dtype, detector, host, port, keys_file, root, allowed_urls, max_upload_mb,
                  state, keep_hours, jobs, max_running_per_key, max_queued_per_key, max_queued, ray_address,
                  workers, cpus_per_worker, gpus_per_worker, quiet):  # fmt: skip
    """Serve region understanding as a JSON API: describe, ask, track jobs; OpenAI-compatible chat.

    \b
    Jobs are kept in --state and survive a restart (queued ones run, interrupted
    ones run again from the start). The API is under /v1 (its page: /docs):
      POST /v1/jobs, GET /v1/jobs[/ID[/events|/result|/files/NAME]], DELETE /v1/jobs/ID,
      POST /v1/describe|ask?wait=SECONDS, POST /v1/chat/completions, GET /v1/models,
      /healthz, /readyz, /metrics.
    It binds 127.0.0.1 unless told; give --keys before opening it wider.
    With --ray the model work runs on Ray actors (one per GPU), the API and
    job store stay here.
    """
    import logging

    _check_installed()
    from garvideo.serve.auth import Keys
    from garvideo.serve.engine import EngineSettings
    from garvideo.serve.server import ServeConfig, open_warning, serve

    ray = ray_settings(ray_address, workers, cpus_per_worker, gpus_per_worker, None)
    config = ServeConfig(
        state=Path(state),
        root=Path(root).resolve() if root else None,
        keys=Keys.from_file(keys_file) if keys_file else None,
        allowed_urls=tuple(allowed_urls),
        max_upload_mb=max_upload_mb,
        host=host,
        port=port,
        settings=EngineSettings(max_running_per_key, max_queued_per_key, max_queued, keep_hours),
    )
    warning = open_warning(config)
    if warning:
        click.echo(f"garvideo: warning: {warning}", err=True)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="garvideo serve: %(message)s")
    serve(
        config,
        lambda: _executor(model, sam2, device, dtype, detector, jobs, ray, quiet),
        on_ready=lambda url: click.echo(f"garvideo serve: listening on {url} (API page: {url}docs; Ctrl+C stops it)"),
    )


def _check_installed() -> None:
    import importlib.util

    from garvideo.errors import InvalidInputError

    missing = [name for name in ("fastapi", "uvicorn", "python_multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise InvalidInputError(
            f"garvideo serve needs {', '.join(missing)}, not installed here: pip install 'garvideo[serve]'"
        )


def _executor(model, sam2, device, dtype, detector, jobs, ray, quiet):
    """The models, loaded once: in this process, or on the Ray workers."""
    if ray is not None:
        from garvideo.batch.ray_runner import PipelineSpec
        from garvideo.serve.ray_workers import RayExecutor

        if sam2:
            check_sam2_name(sam2)
        meta = click.get_current_context().meta
        spec = PipelineSpec(
            model, sam2, device, dtype, detector, meta.get(COMPILE_KEY), meta.get(THREADS_KEY), meta.get(ADAPTER_KEY)
        )
        if not quiet:
            click.echo("starting the Ray workers and loading the models on them ...", err=True)
        return RayExecutor(spec, ray, jobs_per_worker=jobs)
    from garvideo.serve.local import LocalExecutor

    pipeline = load_pipeline(model, sam2, device, dtype, quiet, progress=False, detector=detector, long_running=True)
    return LocalExecutor(pipeline, jobs)


# --ray and its worker options are batch's; only what --ray does differs here.
for _param in serve_command.params:
    if _param.name == "ray_address":
        _param.help = (
            "Run the model work on the actors of a Ray cluster (the API and job store stay here): no ADDRESS "
            "starts a local Ray, 'auto' joins the cluster `ray start` set up here, else a Ray address. Needs "
            "garvideo[ray]."
        )
