"""The rules of the code's layout that no other test would notice breaking (README: "How the code is laid out").

- The views in `flashapp/web/` parse, call one use case and render: no query and no commit of their own.
  Only the web's own plumbing (`__init__.py`, `helpers.py`, `errors.py`) ends a request's transaction.
- Test modules share what they need through `tests/helpers.py` and `conftest.py`, never through each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

WEB = REPO / "flashapp" / "web"
PLUMBING = {"__init__.py", "helpers.py", "errors.py"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> list[tuple[str, str]]:
    """Every (module, name) a module imports; (module, '') for a plain import."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_the_views_neither_query_nor_commit():
    views = sorted(path for path in WEB.glob("*.py") if path.name not in PLUMBING)
    assert len(views) >= 10, views  # the blueprints are where they are said to be
    broken = []
    for path in views:
        tree = _tree(path)
        for module, name in _imported(tree):
            if module.startswith("sqlalchemy") and not module.startswith("sqlalchemy.exc"):
                broken.append(f"{path.name} imports {name or module} from {module}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"commit", "execute", "scalar", "scalars", "query"}):
                broken.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
    assert broken == []


def test_no_test_module_imports_another():
    tests = REPO / "tests"
    broken = []
    for path in sorted(tests.rglob("*.py")):
        for module, _ in _imported(_tree(path)):
            last = module.rsplit(".", 1)[-1]
            if module.startswith("tests.") and last.startswith("test_"):
                broken.append(f"{path.relative_to(REPO)} imports {module}")
    assert broken == []
