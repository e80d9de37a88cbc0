"""Where a run executes: ``local`` (this process, the default) or ``ray`` (a Ray cluster).

An engine runs a task's chunk loop with the contract of :func:`analysis.tasks.execute.execute`:
the same chunk plan from the same store, finished chunks never recomputed, one result row
per text in input order, the predictor's ``describe()`` for the manifest. A run started on
one engine therefore resumes on the other, and a finished run is reused whatever engine
asks for it (the engine is not part of a run's settings: the results are the same).

``Engine("ray", address=..., workers=...)`` is what ``textlab analyze --engine ray`` builds;
``analysis.jobs.execute_run(..., engine=...)`` runs with it. The app's job worker keeps the
local engine. Ray is imported only when the ray engine runs (``analysis.engines.ray``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import TextlabError
from ..tasks.base import BaseConfig, Task
from ..tasks.execute import Execution, Store, execute

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "Engine", "LOCAL"]


@dataclass(frozen=True)
class Engine:
    """An engine and its options. ``address``: the Ray cluster (None: start a local Ray
    instance; ``auto``: the cluster this machine belongs to, ``ray start``); ``workers``:
    model actors (None: one per CPU, or per GPU when the run uses GPUs)."""

    name: str = "local"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise TextlabError(f"Unknown engine '{self.name}': use {' or '.join(ENGINES)}.")
        if self.name != "ray" and (self.address is not None or self.workers is not None):
            raise TextlabError("--ray-address and --ray-workers go with --engine ray.")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise TextlabError(f"--ray-workers must be a whole number of at least 1, not {self.workers!r}.")

    def check(self, task: Task, config: BaseConfig) -> None:
        """Raise TextlabError, before any corpus or model is read, when this engine cannot run
        ``task`` with ``config`` (Ray not installed, a task fitted on the whole corpus)."""
        if self.name == "ray":
            from . import ray as ray_engine

            ray_engine.require_ray()
            ray_engine.refuse(task, config)

    def execute(self, task: Task, texts: list[str], store: Store, **hooks: Any) -> Execution:
        """``execute(task, texts, store, config=..., context=..., doc_ids=..., progress=...,
        stage=..., cancelled=..., on_loaded=...)`` on this engine. The returned Execution of the
        ray engine has an ``engine`` dict for the manifest."""
        if self.name == "ray":
            from .ray import execute_ray

            return execute_ray(task, texts, store, address=self.address, workers=self.workers, **hooks)
        return execute(task, texts, store, **hooks)

    def manifest(self, done: Execution) -> dict[str, Any]:
        """The manifest's ``engine`` entry for a finished execution."""
        return dict(getattr(done, "engine", None) or {"name": self.name})


LOCAL = Engine()
