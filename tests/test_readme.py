"""The README's Python example runs as written (with tiny offline models in place of the released ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from garvideo.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_python_api_example_runs(tiny_models, monkeypatch):
    gar, sam2 = tiny_models / "gar", tiny_models / "sam2"
    readme = (ROOT / "README.md").read_text()
    code = readme.split("## The Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert "Pipeline.from_pretrained()" in code
    code = code.replace(
        "Pipeline.from_pretrained()", f"Pipeline.from_pretrained({str(gar)!r}, {str(sam2)!r}, progress=False)"
    )
    # a random model rambles: keep its answers to a few tokens
    for method in (Pipeline.describe, Pipeline.ask):
        monkeypatch.setitem(method.__kwdefaults__, "max_new_tokens", 3)
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["timeline"].windows and namespace["answer"].regions == ("cat", "cup")
    assert namespace["choice"].options == ("a cup of coffee", "a dog")


def test_sampling_example_says_what_it_gives(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python")[1:]]
    (code,) = [b for b in blocks if "video.sample_windows(" in b]
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    video = namespace["video"]
    assert (video.num_frames, video.duration) == (72, 6.0)
    # the numbers its comments give
    assert namespace["chosen"].indices == (0, 10, 20, 30, 41, 51, 61, 71)
    assert [f.index for f in namespace["frames"]] == list(namespace["chosen"].indices)
    windows = namespace["windows"]
    assert [(w.start, w.end) for w in windows] == [(float(k), float(k + 1)) for k in range(6)]
    assert [w.selection.indices for w in windows[:2]] == [(0, 4, 7, 11), (12, 16, 19, 23)]
