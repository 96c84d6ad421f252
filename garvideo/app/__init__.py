"""garvideo's web app (``garvideo app``): open a video, point at regions, track, describe, ask.

Built on Gradio (the optional extra ``garvideo[app]``); every action of the page is also an HTTP
endpoint usable from ``gradio_client``. The app calls only garvideo's public API (the
:class:`~garvideo.pipeline.Pipeline`, :mod:`garvideo.outputs`, :mod:`garvideo.video`) and holds no
model code; the models are loaded once per process.

- :mod:`.regions`: the kinds of marks (box, clicks, words), read with the one grammar for marks
- :mod:`.paths`: what may be read (``--root``, never outside it) and written (the app's temporary folder)
- :mod:`.session`: what a tab holds; :mod:`.backend`: sessions, their files, the pipeline calls
- :mod:`.jobs`: model work one job at a time (a queue that tells each waiter its place) and its events
- :mod:`.fields`: every request field checked; :mod:`.view`: what the page shows, escaped
- :mod:`.commands`: the ``garvideo`` commands that reproduce a run
- :mod:`.ui`: the page and its API; :mod:`.assets`: its script and style; :mod:`.server`: launching and cleaning up
- the Live tab: :mod:`.live_page` (its widgets and API), :mod:`.live` (the app's one ``garvideo.live`` session,
  which holds the model queue while it runs), :mod:`.live_feed` (what the session reports, kept for the page),
  :mod:`.live_view` (what the tab shows, escaped)

Importing this package does not import Gradio; :mod:`.ui` and :func:`serve` do.
"""

from .backend import AppConfig, AppError, Backend
from .commands import Models
from .server import build, is_loopback, make_temp_root, open_warning, serve

__all__ = [
    "AppConfig",
    "AppError",
    "Backend",
    "Models",
    "build",
    "is_loopback",
    "make_temp_root",
    "open_warning",
    "serve",
]
