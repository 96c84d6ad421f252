"""``garvideo serve``: region understanding on video as a JSON service (FastAPI; ``garvideo[serve]``).

- :mod:`.http`: the API under ``/v1`` (jobs, synchronous describe/ask, health, readiness, metrics);
  :mod:`.openai`: ``/v1/chat/completions`` and ``/v1/models``.
- :mod:`.store`: jobs in SQLite (WAL) under ``--state``; :mod:`.engine`: the queue and its runners;
  :mod:`.work`: one job on a pipeline (the CLI's documents); :mod:`.models`: one pipeline shared by
  concurrent jobs (GAR prompts of several jobs batched together).
- :mod:`.local` runs jobs in this process, :mod:`.ray_workers` on Ray actors (``--ray``).
- :mod:`.requests`: what a request may hold; :mod:`.videos`: where videos come from; :mod:`.auth`: keys.

Nothing heavy loads on import.
"""

from .._lazy import lazy_attributes

_LAZY = {
    "ServeConfig": ".server",
    "serve": ".server",
    "Engine": ".engine",
    "EngineSettings": ".engine",
    "JobStore": ".store",
    "Keys": ".auth",
    "LocalExecutor": ".local",
    "RayExecutor": ".ray_workers",
    "create_app": ".http",
    "parse_request": ".requests",
}
__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = list(_LAZY)
