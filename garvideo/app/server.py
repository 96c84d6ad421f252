"""Starting and stopping the app: its temporary folder, Gradio's queue and server, the idle-session sweeper."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .. import defaults
from ..errors import GarvideoError
from ..pipeline import Pipeline
from .backend import AppConfig, Backend

#: How often idle sessions are looked for (seconds).
SWEEP_EVERY_S = 60.0


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the app on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_warning(host: str) -> str | None:
    """The warning ``garvideo app`` prints when ``host`` lets other machines in (None when it does not)."""
    if is_loopback(host):
        return None
    return (
        f"--host {host} lets other machines reach this app, which has no authentication: anyone who can reach "
        f"it can upload videos, run the models and open every video under --root"
    )


def make_temp_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="garvideo-app-")).resolve()


def build(config: AppConfig, pipeline: Pipeline):
    """The backend and the Gradio Blocks (queue configured), not launched.

    ``config.temp_root`` becomes Gradio's upload and output cache (``GRADIO_TEMP_DIR``), so every file
    the app receives or serves lives there and is gone when the app stops. An upload is opened only if
    Gradio's upload route received it (its record of uploads, ``upload_file_set``).
    """
    _before_gradio(config)
    from .ui import Page

    blocks = []
    backend = Backend(config, pipeline, uploaded=lambda path: _was_uploaded(blocks, path))
    demo = Page(backend).build()
    blocks.append(demo)
    # Model work queues in the app (jobs.ModelQueue, which tells each waiter its place): Gradio runs every event.
    demo.queue(default_concurrency_limit=None)
    return backend, demo


def _was_uploaded(blocks: list, path: Path) -> bool:
    if not blocks:
        return False
    uploads = getattr(blocks[0], "upload_file_set", ())
    return any(Path(p).resolve() == path for p in list(uploads))


def serve(
    config: AppConfig,
    pipeline: Pipeline,
    host: str = defaults.APP_HOST,
    port: int = defaults.APP_PORT,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until ``stop`` is set, Ctrl+C or SIGTERM; then remove every file the app made."""
    _before_gradio(config)
    from .assets import CSS

    stop = stop or threading.Event()
    backend = demo = None
    try:
        backend, demo = build(config, pipeline)
        try:
            _, url, _ = demo.launch(
                server_name=host,
                server_port=port,
                prevent_thread_lock=True,
                quiet=True,
                show_error=True,
                share=False,
                inbrowser=False,
                ssr_mode=False,
                pwa=False,
                mcp_server=False,
                enable_monitoring=False,
                max_file_size=config.max_upload_bytes,
                footer_links=["api"],
                css=CSS,
            )
        except OSError as exc:
            # Gradio's message names its own environment variables; say it in the CLI's terms.
            raise GarvideoError(
                f"cannot listen on {host}:{port} (in use, or not an address of this machine): choose another --port or --host"
            ) from exc
        sweeper = threading.Thread(target=_sweep, args=(backend, stop), name="garvideo-app-sweeper", daemon=True)
        sweeper.start()
        if on_ready is not None:
            on_ready(url)
        with _stopping_on_signals(stop):
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        if demo is not None:
            with contextlib.suppress(Exception):
                demo.close()
        if backend is not None:
            backend.close()
        shutil.rmtree(config.temp_root, ignore_errors=True)


def _before_gradio(config: AppConfig) -> None:
    """Settings Gradio reads when first imported (some folders are fixed then): set them before that.

    Every folder Gradio keeps files in, and serves, is inside the app's temporary folder: uploads and
    outputs (``GRADIO_TEMP_DIR``) and the examples cache (``GRADIO_EXAMPLES_CACHE``, by default
    ``.gradio/cached_examples`` under the working folder, whose files Gradio's file route serves).
    """
    os.environ["GRADIO_TEMP_DIR"] = str(config.temp_root)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(config.temp_root / "examples")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the app never calls out


def _sweep(backend: Backend, stop: threading.Event) -> None:
    while not stop.wait(SWEEP_EVERY_S):
        backend.end_idle_sessions()


@contextlib.contextmanager
def _stopping_on_signals(stop: threading.Event):
    """SIGTERM (and SIGINT) stop the server cleanly, so the temporary folder is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
