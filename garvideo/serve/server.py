"""Start the service: the job store, the engine and its executor, the HTTP API on uvicorn."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defaults
from ..errors import InvalidInputError
from .auth import Keys
from .engine import Engine, EngineSettings
from .store import JobStore
from .videos import VideoSources

#: Addresses that only this machine can reach.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``garvideo serve`` is told, but the models."""

    state: Path
    root: Path | None = None
    keys: Keys | None = None
    allowed_urls: tuple[str, ...] = ()
    max_upload_mb: float = defaults.SERVE_MAX_UPLOAD_MB
    host: str = defaults.SERVE_HOST
    port: int = defaults.SERVE_PORT
    settings: EngineSettings = field(default_factory=EngineSettings)

    def sources(self) -> VideoSources:
        return VideoSources(self.root, self.allowed_urls, self.max_upload_mb)


def open_warning(config: ServeConfig) -> str | None:
    """What to tell an operator who opens the service beyond this machine without keys."""
    if config.host in LOCAL_HOSTS or config.keys is not None:
        return None
    return f"--host {config.host} without --keys: anyone who can reach this machine may use the service"


@contextlib.contextmanager
def running_engine(config: ServeConfig, executor: Any, store: JobStore | None = None) -> Iterator[Engine]:
    """The engine on the state folder (``store``: already open), started (the jobs a stopped server left are
    queued again), then stopped; the store is closed after it."""
    store = store or JobStore(config.state)
    try:
        engine = Engine(store, executor, config.sources(), config.settings)
        engine.start()
        try:
            yield engine
        finally:
            engine.stop()
    finally:
        store.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one); refused with one line when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: ServeConfig, make_executor: Callable[[], Any], on_ready: Callable[[str], None] | None = None) -> None:
    """Run the service until stopped (Ctrl+C or SIGTERM); ``on_ready`` gets its address once it listens.

    The address and the state folder are taken first, so a port in use or a state folder another server
    holds is refused before ``make_executor`` loads the models.
    """
    import uvicorn

    from .http import create_app

    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    try:
        store = JobStore(config.state)
    except BaseException:
        sock.close()
        raise
    try:
        executor = make_executor()
    except BaseException:
        store.close()
        sock.close()
        raise
    with running_engine(config, executor, store) as engine:
        app = create_app(engine, config.keys)
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, access_log=False, lifespan="off")
        )
        if on_ready is not None:
            on_ready(f"http://{shown}:{port}/")
        with _stopped_by_signals():
            server.run(sockets=[sock])


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Ctrl+C and SIGTERM stop uvicorn gracefully, which then raises the signal again for the handler it found:
    let that be a no-op, so the engine after it still releases its running jobs and the process ends with 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.signal(sig, lambda *_: None) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
