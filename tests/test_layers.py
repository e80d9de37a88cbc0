"""The layers of the design point down: a module never imports one of a layer above it.

Reads every module of ``analysis/`` (module-level and function-level imports alike) and
checks the design's rules: nothing imports the UI, the shared leaves import only leaves,
and no module imports one of a layer above it (tasks never import jobs: the chunk loop is
the task layer's own ``execute``). No exceptions are listed.
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
# Module names that may repeat: a method's module inside its analysis package (coding/fewshot
# and the like) never repeats another, but "abstractive" names a summary method only.
SHARED_NAMES: set[str] = set()
# Modules that must not import these (the layer above them).
NOT_ABOVE = {
    "corpus": {"workspace", "jobs", "tasks", "cli", "models", "runner", "embeddings"},
    "workspace": {"jobs", "tasks", "cli"},
    "codebook": {"workspace", "jobs", "tasks", "cli"},
    "models": {"workspace", "jobs", "tasks", "cli"},
    "runner": {"workspace", "jobs", "tasks", "cli"},
    "embeddings": {"workspace", "jobs", "tasks", "cli"},
    "tasks": {"jobs", "cli", "workshop", "engines"},
    "jobs": {"cli"},
    "workshop": {"jobs", "cli", "tasks", "engines"},
}


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
        assert target != "cli", f"{path.name} imports the command line"


def test_no_two_modules_share_a_name():
    """One obvious home per analysis: analysis/topics.py beside analysis/tasks/topics/ is gone."""
    seen: dict[str, Path] = {}
    for path in modules():
        name = path.parent.name if path.name == "__init__.py" else path.stem
        if name in ("__init__", "analysis"):
            continue
        assert name not in seen or name in SHARED_NAMES, f"{path} and {seen[name]} share the name '{name}'"
        seen[name] = path


def test_no_module_reaches_into_another_modules_private_names():
    """What another module needs is public (item 3 of issue 12): no `from x import _y`, no `x._y`
    on an imported analysis module, in the library, the UI glue and the pages."""
    for path in modules() + sorted((ROOT / "ui").glob("*.py")) + sorted((ROOT / "pages").glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    assert not (alias.name.startswith("_") and not alias.name.startswith("__")), \
                        f"{path.relative_to(ROOT)} imports the private {alias.name} from {node.module}"
                    if node.level or (node.module or "").startswith("analysis"):
                        imported.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                imported.update((alias.asname or alias.name).split(".")[0] for alias in node.names
                                if alias.name.startswith("analysis"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in imported):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
