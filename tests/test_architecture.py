"""The imports follow docs/architecture.md: lower layers know nothing of each other, the pipeline composes them,
front-ends stand on the pipeline and reuse each other only where the page says so, nothing imports the CLI."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOWER = {"video", "tracking", "grounding", "model"}
SHARED = {
    "garvideo",  # the package itself: its version and errors
    "_lazy",
    "bounded_json",
    "checkpoints",
    "compile_cache",
    "defaults",
    "devices",
    "errors",
    "files",
    "images",
    "inputs",
    "masks",
    "names",
    "paths",
    "timecode",
}
FRONT_ENDS = {"app", "batch", "eval", "live", "serve", "train"}
#: One front-end's module another imports, and why (docs/architecture.md says the same).
REUSE = {
    ("serve", "garvideo.batch.ray_runner"): "the service's Ray actors are batch's workers",
    ("train", "garvideo.batch.ray_runner"): "training on Ray names its models as batch's workers do",
    (
        "train",
        "garvideo.eval",
    ): "held-out accuracy is the benchmarks' own scoring; VideoRefer-700K is read as eval reads it",
    ("eval", "garvideo.batch.jobs"): "a folder's results are refused under other settings by one check, batch's",
    ("app", "garvideo.live"): "the Live tab shows a live session (Pipeline.live) through its public events and outputs",
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported from
    names: tuple[str, ...]  # the names taken (from-imports)
    lazy: bool  # inside a function


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = "garvideo_cli" if parts[0] == "cli" else parts[0]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> Iterator[Import]:
    for path in sorted([*(ROOT / "garvideo").rglob("*.py"), *(ROOT / "cli").rglob("*.py")]):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inside = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found = [(target, tuple(a.name for a in node.names))]
            elif isinstance(node, ast.Import):
                found = [(a.name, ()) for a in node.names]
            else:
                continue
            for target, names in found:
                if target.split(".")[0] in ("garvideo", "garvideo_cli"):
                    yield Import(module, target, names, id(node) in inside)


def _area(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "garvideo_cli":
        return "cli"
    return parts[1] if len(parts) > 1 else "garvideo"


def _targets(imp: Import) -> list[str]:
    """The modules an import reaches: ``from garvideo import defaults`` reaches ``garvideo.defaults``."""
    if imp.target == "garvideo" and imp.names:
        is_module = [(ROOT / "garvideo" / f"{n}.py").exists() or (ROOT / "garvideo" / n).is_dir() for n in imp.names]
        return [f"garvideo.{name}" if module else "garvideo" for name, module in zip(imp.names, is_module)]
    return [imp.target]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name != "_lazy"


def _wrong(allowed) -> list[str]:
    return [
        f"{imp.source} imports {target}"
        for imp in _imports()
        for target in _targets(imp)
        if _area(target) != _area(imp.source) and not allowed(imp, target)
    ]


def test_the_tree_is_seen():
    areas = {_area(imp.source) for imp in _imports()}
    assert {"video", "tracking", "model", "pipeline", "cli", *FRONT_ENDS} <= areas


def test_lower_layers_and_shared_modules_import_only_shared_modules():
    def allowed(imp, target):
        if _area(imp.source) not in LOWER | SHARED:
            return True
        return _area(target) in SHARED

    assert not _wrong(allowed)


def test_the_pipeline_composes_the_lower_layers_and_imports_no_front_end():
    def allowed(imp, target):
        if _area(imp.source) != "pipeline":
            return True
        if imp.lazy and target == "garvideo.live":  # Pipeline.live: the live package builds on this one
            return True
        return _area(target) in LOWER | SHARED

    assert not _wrong(allowed)


def test_front_ends_stand_on_the_pipeline_and_reuse_each_other_only_where_the_page_says():
    def allowed(imp, target):
        source = _area(imp.source)
        if source not in FRONT_ENDS | {"outputs"}:
            return True
        if _area(target) in FRONT_ENDS:
            return any(source == s and (target == t or target.startswith(t + ".")) for s, t in REUSE)
        return _area(target) in LOWER | SHARED | {"pipeline", "outputs"}

    assert not _wrong(allowed)


def test_nothing_imports_the_command_line_or_a_private_name_of_another_area():
    wrong = []
    for imp in _imports():
        if _area(imp.source) != "cli" and imp.target.startswith("garvideo_cli"):
            wrong.append(f"{imp.source} imports {imp.target}")
        for target in _targets(imp):
            if _area(target) == _area(imp.source) or _area(imp.source) == "testing":
                continue
            private = [p for p in [*target.split(".")[1:], *imp.names] if _private(p)]
            if private:
                wrong.append(f"{imp.source} takes private {private} from {target}")
    assert not wrong


def test_every_reuse_the_page_names_is_real():
    used = {
        (s, t)
        for imp in _imports()
        for target in _targets(imp)
        for s, t in REUSE
        if _area(imp.source) == s and (target == t or target.startswith(t + "."))
    }
    assert used == set(REUSE)
