"""The compile cache across real processes: the second process that compiles the tiny GAR's decode step finds the
first one's work (torch's own inductor folder empty in each), and a corrupt cache is warned about, never fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from garvideo.model import GAR, GenerationSettings
from garvideo.testing.gar import build_tiny_gar_checkpoint

NEW_TOKENS = 3

# One generate call with compile="on", reporting what the GAR recorded and what torch's caches counted.
_CHILD = """
import json, sys, warnings
import numpy as np
from torch._dynamo.utils import counters
from garvideo.model import GAR, GenerationSettings

warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    gar = GAR.from_pretrained(sys.argv[1], device="cpu", dtype="float32", compile="on")
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[20:60, 30:90] = True
    prompt = gar.processor.prepare_caption(image, mask)
    new = int(sys.argv[2])
    result = gar.generate(prompt, GenerationSettings(max_new_tokens=new, min_new_tokens=new))[0]
record = gar.info.compile_record
print("CHILD " + json.dumps({
    "kind": record.kind, "cache": record.cache, "warmup_s": record.warmup_s, "reason": record.reason,
    "tokens": list(result.token_ids),
    "inductor": dict(counters["inductor"]),
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
}))
"""


@pytest.fixture(scope="module")
def one_layer_gar(tmp_path_factory) -> Path:
    # one language-model layer: the smallest graph to compile (compiling takes most of this test's time)
    return build_tiny_gar_checkpoint(tmp_path_factory.mktemp("gar") / "one-layer", seed=5, num_hidden_layers=1)


def _run(checkpoint: Path, cache: Path, torch_cache: Path) -> dict:
    env = {**os.environ, "GARVIDEO_CACHE": str(cache), "TORCHINDUCTOR_CACHE_DIR": str(torch_cache)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(checkpoint), str(NEW_TOKENS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("CHILD ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("CHILD "))


@pytest.mark.slow
def test_a_second_process_compiles_from_the_first_ones_cache_and_a_corrupt_cache_only_warns(one_layer_gar, tmp_path):
    eager = GAR.from_pretrained(one_layer_gar, device="cpu", dtype="float32", compile="off")
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[20:60, 30:90] = True
    settings = GenerationSettings(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
    expected = list(eager.generate(eager.processor.prepare_caption(image, mask), settings)[0].token_ids)

    cache = tmp_path / "cache"
    cold = _run(one_layer_gar, cache, tmp_path / "torch-1")
    assert (cold["kind"], cold["cache"]) == ("inductor", "cold") and cold["warmup_s"] > 0
    assert cold["inductor"].get("fxgraph_cache_miss", 0) >= 1 and not cold["warnings"]
    assert cold["tokens"] == expected

    warm = _run(one_layer_gar, cache, tmp_path / "torch-2")  # torch's own folder empty again
    assert (warm["kind"], warm["cache"]) == ("inductor", "warm")
    assert warm["inductor"].get("fxgraph_cache_hit", 0) >= 1 and warm["inductor"].get("fxgraph_cache_miss", 0) == 0
    assert warm["tokens"] == expected and not warm["warnings"]

    (folder,) = (cache / "compile").iterdir()
    for path in (folder / "inductor").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    corrupt = _run(one_layer_gar, cache, tmp_path / "torch-3")
    assert corrupt["tokens"] == expected  # decoded all the same
    if corrupt["kind"] == "eager":  # torch tripped over the garbage: said so, and the cache was emptied
        assert any(w.startswith("CompileFailedWarning") for w in corrupt["warnings"]), corrupt
        assert any(w.startswith("CompileCacheWarning") for w in corrupt["warnings"]), corrupt
        assert "compiling failed" in corrupt["reason"] and not (folder / "ready").exists()
