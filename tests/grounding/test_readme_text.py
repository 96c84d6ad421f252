"""The README's text-region example runs as written (tiny offline models in place of the released ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from garvideo.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_readme_text_region_example_runs(grounding_models, tiny_models, monkeypatch):
    gar = tiny_models / "gar"
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The Python API", 1)[1].split("\n## ", 1)[0]
    code = section.split("Regions named in words", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert "Pipeline.from_pretrained()" in code and "--text" in readme.split("## The command line", 1)[1]
    models = f"{str(gar)!r}, {str(grounding_models / 'sam2')!r}, detector={str(grounding_models / 'gdino')!r}"
    code = code.replace("Pipeline.from_pretrained()", f"Pipeline.from_pretrained({models}, progress=False)")
    for method in (Pipeline.describe, Pipeline.ask):
        monkeypatch.setitem(method.__kwdefaults__, "max_new_tokens", 3)
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].region("cat").description is not None
    (found,) = namespace["found"]
    assert found.name == "cat" and found.frame == namespace["result"].found[0].frame
    assert namespace["prompts"] == [found.prompt]
