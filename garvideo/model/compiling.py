"""Whether GAR's decode steps run compiled: the one place that decides, and the record of what it decided.

Compiling costs a warm-up before it saves anything: on a 2-core CPU the tiny GAR's decode step took over 20 s
to compile and then saved about 3 ms per step (bench/RESULTS.md), so a short one-shot description is slower
compiled. The setting ``compile``:

- ``off`` (or False): eager steps; ``on`` (or True): compiled, of :data:`garvideo.defaults.COMPILE_KIND` on
  CUDA (inductor on a CPU); ``inductor`` or ``cuda-graphs``: compiled, of that kind.
- ``auto`` (the default) compiles only where the warm-up is paid back. A call compiles when the decode steps
  it plans (its prompt batches x ``max_new_tokens``, an upper bound: a description may end sooner) reach
  :data:`garvideo.defaults.COMPILE_PAYBACK_STEPS` for the device, the smaller "warm" figure when the compile
  cache holds compiled work for this model (:mod:`garvideo.compile_cache`). A long-running process (a batch,
  the web app, a service, live sessions, benchmark runs: ``long_running=True``) compiles from its first call
  on CUDA; on a CPU, where the warm-up is worth thousands of steps, it counts the steps it already decoded
  too, so it compiles once its decoding has earned the warm-up. Once compiled, a process stays compiled (its
  warm-up is spent). Devices without measured figures (e.g. ``mps``) stay eager.

:func:`decide` is pure (the GAR calls it before each generate call until it compiles); :class:`CompileRecord`
is what results carry into their provenance.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import defaults
from ..errors import InvalidInputError

#: The settings ``compile=`` takes (besides True and False).
SETTINGS = ("auto", "on", "off", "inductor", "cuda-graphs")


def compile_setting(value: bool | str | None) -> str:
    """``compile=`` as one of :data:`SETTINGS` (True -> ``on``, False -> ``off``, None -> the default)."""
    if value is None:
        return defaults.COMPILE
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and value.lower() in SETTINGS:
        return value.lower()
    raise InvalidInputError(
        f"compile must be one of {', '.join(SETTINGS)} (or True/False), got {value!r}: auto compiles GAR's decode "
        f"steps only where the warm-up pays back"
    )


def check_setting(setting: str, device_type: str) -> None:
    """Refuse a kind the device cannot run (before any model work)."""
    if setting == "cuda-graphs" and device_type != "cuda":
        raise InvalidInputError(
            f"compile='cuda-graphs' needs a CUDA device, not {device_type}: use compile='inductor' (or 'auto')"
        )


@dataclass(frozen=True)
class CompileDecision:
    """How one generate call decodes: ``kind`` is ``eager``, ``inductor`` or ``cuda-graphs``, and why."""

    kind: str
    reason: str

    @property
    def compiled(self) -> bool:
        return self.kind != "eager"


@dataclass(frozen=True)
class CompileRecord:
    """What provenance records of a run's decoding: the setting, what ran and why, and the warm-up it spent.

    ``warmup_s``: seconds this run spent compiling or capturing decode steps (0 when it reused compiled steps,
    or ran eagerly); ``cache``: ``warm`` or ``cold`` when inductor compiled with the compile cache, else None.
    """

    setting: str
    kind: str
    reason: str
    warmup_s: float = 0.0
    cache: str | None = None

    @property
    def compiled(self) -> bool:
        return self.kind != "eager"

    def to_dict(self) -> dict:
        return {
            "setting": self.setting,
            "decoding": self.kind,
            "reason": self.reason,
            "warmup_s": round(self.warmup_s, 3),
            "cache": self.cache,
        }


def compiled_kind(device_type: str) -> str:
    """The kind ``on`` and ``auto`` compile with on this device."""
    return defaults.COMPILE_KIND if device_type == "cuda" else "inductor"


def decide(
    setting: str,
    device_type: str,
    *,
    planned_steps: int,
    done_steps: int = 0,
    long_running: bool = False,
    warm: bool = False,
    compiled_before: bool = False,
) -> CompileDecision:
    """The decoding of one generate call (see the module docstring); ``setting`` as :func:`compile_setting` gives it.

    ``planned_steps``: the call's decode steps at most (batches x max_new_tokens); ``done_steps``: the steps this
    process decoded before (counted only when ``long_running``); ``warm``: the compile cache holds this model's
    compiled step; ``compiled_before``: a compiled step already warmed up in this process.
    """
    if setting == "off":
        return CompileDecision("eager", "compile off")
    if setting in ("inductor", "cuda-graphs"):
        return CompileDecision(setting, f"compile {setting}")
    kind = compiled_kind(device_type)
    if setting == "on":
        return CompileDecision(kind, "compile on")
    if compiled_before:
        return CompileDecision(kind, "auto: compiled earlier in this process (its warm-up is spent)")
    figures = defaults.COMPILE_PAYBACK_STEPS.get(device_type)
    if figures is None:
        return CompileDecision("eager", f"auto: no measured payback of compiling on {device_type}")
    if long_running and device_type == "cuda":
        return CompileDecision(kind, "auto: a long-running process on CUDA")
    cache = "warm" if warm else "cold"
    payback = int(figures[cache])
    done_steps = done_steps if long_running else 0
    steps = planned_steps + done_steps
    counted = f"{steps} decode steps planned" + (f" or run before ({done_steps})" if done_steps else "")
    if steps >= payback:
        return CompileDecision(kind, f"auto: {counted}, at least the {payback} that pay back a {cache} warm-up")
    return CompileDecision("eager", f"auto: {counted}, fewer than the {payback} that pay back a {cache} warm-up")
