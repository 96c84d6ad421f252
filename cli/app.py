"""``garvideo app``: the web app (Gradio) on this machine, with its HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from garvideo import defaults

from .common import ADAPTER_KEY, load_pipeline, model_options, quiet_option, text_options, text_search


@click.command("app")
@model_options()
@text_options
@click.option(
    "--host", default=defaults.APP_HOST, show_default=True, help="Address to listen on (0.0.0.0: every network)."
)
@click.option(
    "--port", default=defaults.APP_PORT, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on."
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=str),
    metavar="FOLDER",
    help="Offer the videos under FOLDER in the page (nothing outside it is ever read).",
)
@click.option(
    "--max-upload-mb",
    default=defaults.APP_MAX_UPLOAD_MB,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest video the page accepts as an upload.",
)
@click.option(
    "--session-hours",
    default=defaults.APP_SESSION_HOURS,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="A session idle this long ends and its files are deleted (a closed tab ends at once).",
)
@click.option(
    "--live-device",
    "live_devices",
    multiple=True,
    metavar="DEVICE",
    help="A camera the Live tab may open (/dev/video0, avfoundation:0); repeat for several. Stream URLs and files "
    "under --root need no option.",
)
@quiet_option
def app_command(
    model,
    sam2,
    device,
    dtype,
    detector,
    box_threshold,
    text_threshold,
    max_instances,
    search_every,
    host,
    port,
    root,
    max_upload_mb,
    session_hours,
    live_devices,
    quiet,
):
    """Open the web app: mark regions with the mouse, track, describe, ask, download.

    \b
    Prints the address to open in a browser. The page's actions are also an
    HTTP API (see the page's "Use via API" link, or gradio_client). Models load
    once (the --text detector when the first region named in words is
    found; the text options are the page's starting values). Jobs run one at
    a time in a queue. Files live in a temporary folder that is removed when a
    session ends and when the app stops (Ctrl+C). The Live tab follows one
    stream at a time (a URL, a --live-device or a file under --root); while
    it runs it holds the models and the other jobs wait.
    """
    from garvideo.app import AppConfig, Models, make_temp_root, open_warning, serve

    warning = open_warning(host)
    if warning:
        click.echo(f"garvideo: warning: {warning}", err=True)
    search = text_search(box_threshold, text_threshold, max_instances, search_every)
    pipeline = load_pipeline(model, sam2, device, dtype, quiet, detector=detector, long_running=True)
    config = AppConfig(
        models=Models(
            gar=model,
            sam2=sam2,
            device=device,
            dtype=dtype,
            detector=detector,
            adapter=click.get_current_context().meta.get(ADAPTER_KEY),
        ),
        temp_root=make_temp_root(),
        root=Path(root).resolve() if root else None,
        root_arg=root,
        max_upload_mb=max_upload_mb,
        session_ttl_s=session_hours * 3600,
        text_search=search,
        live_devices=tuple(live_devices),
    )
    serve(
        config,
        pipeline,
        host=host,
        port=port,
        on_ready=lambda url: click.echo(f"garvideo app: open {url} in a browser (Ctrl+C stops it)"),
    )
