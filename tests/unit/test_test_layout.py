"""The test tree's own layout: what tests share lives in ``tests/support`` and nowhere else.

A test module or a conftest may import ``tests.support`` and the production packages, but
never another test module or conftest (pytest imports those itself, and a second import
under another name runs them twice or gets the wrong one). Every import is read from the
source, function-local and relative ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SUPPORT = "tests.support"


def module_name(path: Path) -> str:
    """The dotted name of a source file under ROOT."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The modules ``source`` imports, at any depth, with relative imports resolved.

    ``from tests import x`` counts as importing ``tests.x``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "tests":
                found.extend(f"tests.{alias.name}" for alias in node.names)
            else:
                found.append(base)
    return sorted(set(found))


def is_allowed(target: str) -> bool:
    """Whether a test module or conftest may import ``target``."""
    top = target.split(".")[0]
    if top == "tests":
        return target == SUPPORT or target.startswith(SUPPORT + ".")
    # A sibling imported by its bare name (pytest puts test directories on sys.path).
    return not (top == "conftest" or top.startswith("test_"))


def forbidden_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``module`` (its ``source``) that reach outside ``tests.support``."""
    return [
        f"{module} imports {target}"
        for target in imported_modules(source, module, is_package=is_package)
        if not is_allowed(target)
    ]


def sources() -> list[Path]:
    """Every Python file of the test tree."""
    return sorted(TESTS.rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_import_only_tests_support(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert forbidden_imports(source, module_name(path), is_package=path.name == "__init__.py") == []


def test_support_holds_no_tests_or_conftest() -> None:
    found = [
        p.relative_to(ROOT)
        for p in (TESTS / "support").rglob("*.py")
        if p.name.startswith("test_") or p.name == "conftest.py"
    ]
    assert found == []


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import tests\n"
        "import test_catalog\n"
        "from tests import support, fakes\n"
        "from tests.support.images import encode\n"
        "from refract.core.settings import Settings\n"
        "from .conftest import VIDEO\n"
        "def f():\n"
        "    from tests.api.helpers import video_body\n"
        "    from ..support import stack\n"
    )
    assert forbidden_imports(source, "tests.youtube.test_cache") == [
        "tests.youtube.test_cache imports test_catalog",
        "tests.youtube.test_cache imports tests",
        "tests.youtube.test_cache imports tests.api.helpers",
        "tests.youtube.test_cache imports tests.fakes",
        "tests.youtube.test_cache imports tests.youtube.conftest",
    ]
