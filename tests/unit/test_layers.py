"""The import graph follows the layers the folders name: no module imports from above.

Every import is read from the source (function-local ones too, which a runtime check
would miss), mapped to the layer that holds the imported module, and checked against
what that layer may use. A new folder must be given a place here before it can be used.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CORE = "refract.core"
JOBS = "refract.jobs"
IMAGING = "refract.imaging"
YOUTUBE = "refract.youtube"
ANALYSIS = "refract.analysis"
GATEWAY = "refract.gateway"
ACCESS = "refract.access"
OBSERVABILITY = "refract.observability"
OPS = "refract.ops"

# Each layer, and the layers below it that it may import (it may always import itself).
# ``refract`` itself (its ``__init__``: the version) is open to everyone.
MAY_IMPORT: dict[str, frozenset[str]] = {
    CORE: frozenset(),
    JOBS: frozenset({CORE}),
    ACCESS: frozenset({CORE}),
    # Metrics every process records into: just above core, so any layer may record.
    OBSERVABILITY: frozenset({CORE}),
    IMAGING: frozenset({CORE}),
    YOUTUBE: frozenset({CORE, IMAGING}),
    ANALYSIS: frozenset({CORE, IMAGING}),
    GATEWAY: frozenset({CORE, IMAGING, ANALYSIS, OBSERVABILITY}),
    # What operators see (the dashboard's figures) and the counts workers leave for it.
    OPS: frozenset({CORE, JOBS, OBSERVABILITY}),
    "migrations": frozenset({CORE}),
    # The web app sends tasks by name: it never imports task bodies, the worker or a model.
    "api": frozenset({CORE, JOBS, IMAGING, YOUTUBE, ACCESS, OBSERVABILITY, OPS}),
    "tasks": frozenset({CORE, JOBS, IMAGING, YOUTUBE, GATEWAY, OBSERVABILITY}),
    "worker": frozenset({CORE, JOBS, OBSERVABILITY, OPS, "tasks"}),
    # Launchers start processes: the top layer, nothing imports them.
    "launch": frozenset(
        {
            CORE,
            JOBS,
            ACCESS,
            IMAGING,
            YOUTUBE,
            ANALYSIS,
            GATEWAY,
            OBSERVABILITY,
            OPS,
            "api",
            "worker",
        }
    ),
    "bench": frozenset({CORE, JOBS, GATEWAY, "launch"}),
}
PACKAGES = ("refract", "api", "tasks", "worker", "launch", "migrations", "bench")


def layer_of(module: str) -> str | None:
    """The layer holding ``module``, ``"refract"`` for the package root, ``None`` if foreign."""
    for layer in sorted(MAY_IMPORT, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return "refract" if module == "refract" else None


def module_name(path: Path) -> str:
    """The dotted name of a source file under ROOT."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, at any depth, with relative imports resolved."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            found.add(base)
            # `from refract.imaging import uploads` imports the submodule.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def sources() -> list[Path]:
    """Every Python source file of the application's packages."""
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def upward_edges(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``module`` (its ``source``) that reach a layer it may not use."""
    own = layer_of(module) or ""
    allowed = MAY_IMPORT.get(own, frozenset()) | {own, "refract"}
    bad = []
    for target in sorted(imported_modules(source, module, is_package=is_package)):
        layer = layer_of(target)
        if layer is not None and layer not in allowed:
            bad.append(f"{module} imports {target} ({layer})")
    return bad


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [
        module_name(p)
        for p in sources()
        if layer_of(module_name(p)) in (None, "refract") and module_name(p) != "refract"
    ]
    assert orphans == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_from_a_layer_above(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert upward_edges(source, module_name(path), is_package=path.name == "__init__.py") == []


def test_the_check_sees_function_local_and_relative_imports() -> None:
    # A core module reaching up from inside a function is exactly what must be caught.
    source = "def f():\n    from api import create_app\n    from ..jobs import store\n"
    assert upward_edges(source, "refract.core.probe") == [
        "refract.core.probe imports api (api)",
        "refract.core.probe imports api.create_app (api)",
        "refract.core.probe imports refract.jobs (refract.jobs)",
        "refract.core.probe imports refract.jobs.store (refract.jobs)",
    ]


def test_siblings_and_lower_layers_are_allowed() -> None:
    source = "import refract\nfrom refract.core.errors import NotFound\nfrom . import catalog\n"
    assert upward_edges(source, "refract.jobs.store") == []
