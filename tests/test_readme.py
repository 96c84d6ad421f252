"""The README's Python example runs as written (with tiny offline models in place of the released ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

import garvideo.model.api as gar_api

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
    defaults = gar_api.GenerationSettings.__init__.__defaults__
    monkeypatch.setattr(gar_api.GenerationSettings.__init__, "__defaults__", (3, *defaults[1:]))
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["timeline"].windows and namespace["answer"].regions == ("cat", "cup")
    assert namespace["choice"].options == ("a cup of coffee", "a dog")
