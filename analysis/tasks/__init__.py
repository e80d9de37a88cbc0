"""The analyses. Each module has one shape (see ``base.py``); this registry finds them."""

from __future__ import annotations

import importlib

from ..errors import TaskNotAvailable
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
}


def register(task: Task) -> None:
    """Add a task (plugins and tests); a task of the same name is replaced."""
    _TASKS[task.name] = task


def available_tasks() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> Task:
    entry = _TASKS.get(name)
    if entry is None:
        raise TaskNotAvailable(f"Unknown task '{name}'. Tasks: {', '.join(_TASKS)}.")
    return importlib.import_module(entry).TASK if isinstance(entry, str) else entry
