"""The analyses. Each module has one shape (see ``base.py``); this registry finds them.

Adding an analysis: its module or package here, one line in ``_TASKS`` below, and a page.
The command line takes its options from the Config's settings, and the pages and the export
find its result columns through its Task's declarations (``label_columns`` below).
"""

from __future__ import annotations

import importlib

from ..errors import TaskNotAvailable
from collections.abc import Iterable

from .base import Task

# Task name -> the module whose ``TASK`` it is (imported on first use), in the order the app
# lists them; ``register()`` adds a plugin's Task object after these (or in place of one).
_TASKS: dict[str, str | Task] = {
    "stats": "analysis.tasks.stats",
    "sentiment": "analysis.tasks.sentiment",
    "emotion": "analysis.tasks.emotion",
    "coding": "analysis.tasks.coding",
    "summary": "analysis.tasks.summary",
    "topics": "analysis.tasks.topics",
    "prompt": "analysis.tasks.prompt",
}


_BUILT_IN = dict(_TASKS)


def register(task: Task) -> None:
    """Add a task (plugins and tests); a task of the same name is replaced."""
    _TASKS[task.name] = task


def unregister(name: str) -> None:
    """Take a registered task off again; a built-in one that register() replaced comes back."""
    if name in _BUILT_IN:
        _TASKS[name] = _BUILT_IN[name]
    else:
        _TASKS.pop(name, None)


def available_tasks() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> Task:
    entry = _TASKS.get(name)
    if entry is None:
        raise TaskNotAvailable(f"Unknown task '{name}'. Tasks: {', '.join(_TASKS)}.")
    return importlib.import_module(entry).TASK if isinstance(entry, str) else entry


def label_columns(columns: Iterable[str]) -> dict[str, str]:
    """The label columns among ``columns`` (a results table's), each with the task that
    declares it: column -> task name, in registry order and each task's own order (its main
    label column first). The columns that hold a model's code for a text: what the Validate
    page compares with human codes, and what a summary can be grouped by."""
    present = {str(c) for c in columns}
    found: dict[str, str] = {}
    for name in available_tasks():
        for column in get_task(name).label_columns:
            if column in present:
                found.setdefault(column, name)
    return found


def column_task(column: str) -> str | None:
    """The task whose declared output columns include ``column`` (a name before a prefix
    family: ``code_label`` is coding's label column, ``code_housing`` one of its code_*
    scores), or None for a column no task writes (the corpus's own, hand codes)."""
    tasks = [get_task(name) for name in available_tasks()]
    named = next((t.name for t in tasks if column in t.columns), None)
    return named or next((t.name for t in tasks if t.owns_column(column)), None)
