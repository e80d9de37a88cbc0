"""The layers of the design point down: a module never imports one of a layer above it.

Reads every module of ``analysis/`` (module-level and function-level imports alike) and
checks the rules that hold today. Issue 12 tightens them: tasks still reach ``jobs`` lazily
through their ``run()`` helpers, listed below as the one known exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import ROOT

PACKAGE = ROOT / "analysis"
# The shared leaves: they may import each other (and the package version, `from . import
# __version__`), never anything above them.
LEAVES = {"errors", "textutil", "datetimes", "fileio", "aggregate", "charts", "export", "provenance", "__version__"}
# Modules that must not import these (the layer above them).
NOT_ABOVE = {
    "corpus": {"workspace", "jobs", "tasks", "cli", "models", "runner", "embeddings"},
    "workspace": {"jobs", "tasks", "cli"},
    "codebook": {"workspace", "jobs", "tasks", "cli"},
    "models": {"workspace", "jobs", "tasks", "cli"},
    "runner": {"workspace", "jobs", "tasks", "cli"},
    "embeddings": {"workspace", "jobs", "tasks", "cli"},
    "jobs": {"cli"},
}
# Known debt (issue 12, item 1): each task's in-memory run() helper imports jobs.run_in_memory.
LAZY_TASK_TO_JOBS = "run_in_memory"


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported analysis module, names) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text("utf-8"))
    here = dotted(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [alias.name for alias in node.names]
            found.append((module, names))
            # "from . import x" imports the submodule x
            found += [(f"{module}.{n}", []) for n in names if not node.module]
    return found


def top(module: str) -> str | None:
    """The analysis module an import names (analysis.tasks.coding -> tasks), or None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "analysis" and len(parts) > 1 else None


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_it(path):
    me = dotted(path).split(".")
    mine = me[1] if len(me) > 1 else "__init__"
    for module, names in imports(path):
        root = module.split(".")[0]
        assert root not in ("streamlit", "ui", "pages", "app"), f"{path.name} imports {module}: the library has no UI"
        target = top(module)
        if target is None or target == mine:
            continue
        if mine in LEAVES:
            assert target in LEAVES, f"{path.name} is a shared leaf but imports analysis.{target}"
        assert target not in NOT_ABOVE.get(mine, set()), f"{path.name} imports analysis.{target}, a layer above"
        if mine == "tasks" and target == "jobs":
            assert names == [LAZY_TASK_TO_JOBS], f"{path.name} imports {names} from jobs"
        assert target != "cli", f"{path.name} imports the command line"
