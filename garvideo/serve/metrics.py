"""``/metrics`` in Prometheus' text format: queue depth, jobs by state, stage times, GPU memory where there is one."""

from __future__ import annotations

from typing import Any


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    shown = ",".join(f'{key}="{val}"' for key, val in (labels or {}).items())
    return f"{name}{{{shown}}} {value:g}" if shown else f"{name} {value:g}"


def _block(name: str, kind: str, help_text: str, samples: list[tuple[float, dict[str, str] | None]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *(_line(name, v, labels) for v, labels in samples)]


def render(engine: Any) -> str:
    """The exposition of one engine's store and statistics."""
    counts = engine.store.counts()
    stats = engine.stats
    lines = _block("garvideo_queue_depth", "gauge", "Jobs waiting to run.", [(counts["queued"], None)])
    lines += _block(
        "garvideo_jobs", "gauge", "Jobs in the store by state.", [(n, {"state": s}) for s, n in counts.items()]
    )
    lines += _block(
        "garvideo_jobs_finished_total",
        "counter",
        "Jobs this server process finished, by how they ended.",
        [(stats.finished.get(s, 0), {"state": s}) for s in ("done", "failed", "cancelled")],
    )
    lines += _block(
        "garvideo_jobs_requeued_total", "counter", "Runs lost with their worker, put back.", [(stats.requeued, None)]
    )
    stages = sorted(stats.stage_seconds)
    lines += [
        "# HELP garvideo_stage_seconds Seconds per pipeline stage of finished jobs.",
        "# TYPE garvideo_stage_seconds summary",
        *(_line("garvideo_stage_seconds_sum", stats.stage_seconds[s], {"stage": s}) for s in stages),
        *(_line("garvideo_stage_seconds_count", stats.stage_count[s], {"stage": s}) for s in stages),
        "# HELP garvideo_job_run_seconds Seconds from a job's start to its end (this process).",
        "# TYPE garvideo_job_run_seconds summary",
        _line("garvideo_job_run_seconds_sum", stats.run_seconds),
        _line("garvideo_job_run_seconds_count", stats.runs),
        "# HELP garvideo_job_wait_seconds Seconds jobs waited in the queue before their run.",
        "# TYPE garvideo_job_wait_seconds summary",
        _line("garvideo_job_wait_seconds_sum", stats.wait_seconds),
        _line("garvideo_job_wait_seconds_count", stats.runs),
    ]
    merged = getattr(getattr(engine.executor, "pipeline", None), "gar", None)
    lines += _block(
        "garvideo_gar_shared_calls_total",
        "counter",
        "GAR calls of concurrent jobs generated together with another job's.",
        [(getattr(merged, "merged_calls", 0), None)],
    )
    lines += _block("garvideo_ready", "gauge", "1 when the models are loaded.", [(int(engine.executor.ready()), None)])
    lines += _gpu_memory()
    return "\n".join(lines) + "\n"


def _gpu_memory() -> list[str]:
    import sys

    torch = sys.modules.get("torch")  # loaded with the models; never imported just for this
    if torch is None or not torch.cuda.is_available():
        return []
    allocated, reserved = [], []
    for index in range(torch.cuda.device_count()):
        labels = {"device": f"cuda:{index}"}
        allocated.append((torch.cuda.memory_allocated(index), labels))
        reserved.append((torch.cuda.memory_reserved(index), labels))
    return _block("garvideo_gpu_memory_allocated_bytes", "gauge", "GPU memory held by tensors.", allocated) + _block(
        "garvideo_gpu_memory_reserved_bytes", "gauge", "GPU memory reserved by the allocator.", reserved
    )
