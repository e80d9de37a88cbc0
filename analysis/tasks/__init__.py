"""The analyses. Each module has one shape (see ``base.py``); this registry finds them."""

from __future__ import annotations

import importlib

from ..errors import TaskNotAvailable
from .base import Task

# Every task of the design, in the order the app lists them.
TASK_NAMES = ("stats", "sentiment", "emotion", "coding", "summary", "topics")
# The ones built so far. A planned task gives a clear "not available yet" instead of a fake result.
BUILT = {
    "stats": "analysis.tasks.stats",
    "sentiment": "analysis.tasks.sentiment",
    "emotion": "analysis.tasks.emotion",
    "coding": "analysis.tasks.coding",
    "summary": "analysis.tasks.summary",
    "topics": "analysis.tasks.topics",
}

_extra: dict[str, Task] = {}


def register(task: Task) -> None:
    """Add a task (plugins and tests)."""
    _extra[task.name] = task


def available_tasks() -> list[str]:
    return [n for n in TASK_NAMES if n in BUILT] + sorted(_extra)


def get_task(name: str) -> Task:
    if name in _extra:
        return _extra[name]
    if name in BUILT:
        return importlib.import_module(BUILT[name]).TASK
    built = ", ".join(available_tasks())
    if name in TASK_NAMES:
        raise TaskNotAvailable(
            f"The '{name}' analysis is not available yet in this version of Textlab. Available now: {built}."
        )
    raise TaskNotAvailable(f"Unknown task '{name}'. Tasks: {', '.join(TASK_NAMES)} (available now: {built}).")
