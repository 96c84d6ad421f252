"""The README's Service section: its curl examples name the API's routes, its Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from garvideo.serve.http import create_app

from .conftest import KEYS

ROOT = Path(__file__).resolve().parents[2]


def service_section() -> str:
    return (ROOT / "README.md").read_text().split("## Service", 1)[1].split("\n## ", 1)[0]


def test_the_curl_examples_cover_every_route_and_only_those():
    shell = service_section().split("```bash", 2)[2].split("```", 1)[0]
    shown = set()
    for line in shell.splitlines():
        method = "DELETE" if "-X DELETE" in line else "POST" if " -d " in line or " -F " in line else "GET"
        for path in re.findall(r"http://127\.0\.0\.1:8000(/[^ ?'\"]*)", line):
            path = re.sub(r"/files/\w+", "/files/{name}", re.sub(r"/ID\b", "/{job_id}", path))
            shown.add((method, path))
    routes = {
        (method, route.path)
        for route in create_app(None, None).routes
        if not route.path.startswith(("/docs", "/openapi", "/redoc"))
        for method in route.methods - {"HEAD"}
    }
    assert shown == routes


@pytest.mark.slow
def test_the_openai_example_runs(server, material, capsys):
    code = service_section().split("```python", 1)[1].split("```", 1)[0]
    code = code.replace("http://127.0.0.1:8000/v1", f"{server.url}/v1").replace('"KEY"', repr(KEYS["alice"]))
    code = code.replace('"HaochenWang/GAR-1B"', repr(str(material.gar))).replace("max_tokens=128", "max_tokens=6")
    code = code.replace('"frames": 16', '"frames": 2')  # a random model on a CPU: a short look
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert namespace["choice"].model_extra["garvideo"]["job"] and printed.strip()
