"""Test-wide settings: everything runs offline, on the CPU, deterministically."""

import atexit
import os
import shutil
import tempfile

# Set before anything imports huggingface_hub: tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on small machines: extra torch/OpenMP threads only contend (tiny SAM2 on 25 frames took
# 13.4 s with the default threads, 0.48 s with one). Set before torch is imported; subprocesses inherit it.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Compiled work goes to a cache folder of this run (subprocesses inherit it): whether `auto` compiles depends on
# a warm cache, so neither a developer's ~/.cache/garvideo nor an earlier run may decide it here.
os.environ["GARVIDEO_CACHE"] = tempfile.mkdtemp(prefix="garvideo-test-cache-")
atexit.register(shutil.rmtree, os.environ["GARVIDEO_CACHE"], True)

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from garvideo.testing.selftest import SelftestFiles, prepare_selftest  # noqa: E402

# Public benchmark data (GAR-Bench-VQA items, images, released predictions) lives in the shared folder
# beside the checkout (override with GARVIDEO_SHARED); it is not part of the repository. The reference
# fixtures are (tests/fixtures).
SHARED = Path(os.environ.get("GARVIDEO_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


@pytest.fixture(scope="session")
def selftest_material(tmp_path_factory) -> SelftestFiles:
    """``garvideo selftest``'s tiny models, clips and manifest, built once for every test folder that needs
    them (the tiny GAR alone takes seconds to build). Tests only read it: they write under their own tmp_path."""
    return prepare_selftest(tmp_path_factory.mktemp("selftest"))


@pytest.fixture(scope="session")
def tiny_models(selftest_material, tmp_path_factory) -> Path:
    """A folder holding ``gar`` (the tiny GAR, seed 0, 112-pixel tiles) and ``sam2`` (the tiny SAM2, seed 0):
    the selftest's models, under the names the pipeline, eval and app tests use."""
    folder = tmp_path_factory.mktemp("tiny-models")
    (folder / "gar").symlink_to(selftest_material.gar)
    (folder / "sam2").symlink_to(selftest_material.sam2)
    return folder


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder (benchmark data); tests that need it skip, saying why, where it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"no shared data folder at {SHARED} (set GARVIDEO_SHARED to its path)")
    return SHARED


# Kill tests run a program in a subprocess and SIGKILL it mid-run. So that where the kill lands never
# depends on timing, the program is started through this launcher: its BatchJob computes `count` items,
# then touches `marker` and holds the next item (its lock taken) until it is killed.
_HELD_LAUNCHER = """
import runpy, sys, threading
from pathlib import Path
from garvideo.batch.jobs import BatchJob

count, marker = int(sys.argv[1]), Path(sys.argv[2])
finished = 0

def held(process):
    def process_or_hold(item):
        global finished
        if finished >= count:
            marker.touch()
            threading.Event().wait()
        result = process(item)
        finished += 1  # the next call comes once this result is written
        return result
    return process_or_hold

plain_init = BatchJob.__init__

def init(self, items, out_dir, process, *args, **kwargs):
    plain_init(self, items, out_dir, held(process), *args, **kwargs)

BatchJob.__init__ = init
if sys.argv[3] == "-m":
    sys.argv = sys.argv[4:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[3:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


class HeldBatch:
    """Starts programs whose batch is held after some items, and waits for the hold."""

    def command(self, count: int, marker: Path, *program: str | Path) -> list[str]:
        """The command that runs ``program`` (a script and its arguments, or ``-m module ...``) with its
        batch held after ``count`` computed items; ``marker`` appears then."""
        return [sys.executable, "-c", _HELD_LAUNCHER, str(count), str(marker), *map(str, program)]

    def wait(self, marker: Path, process: subprocess.Popen) -> None:
        """Wait until ``marker`` exists; fail at once, with the program's output, if it ends first."""
        while not marker.exists():
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the program ended (exit {process.returncode}) before its hold: {out!r} {err!r}")
            time.sleep(0.02)


@pytest.fixture(scope="session")
def held_batch() -> HeldBatch:
    return HeldBatch()
