"""The chunk loop every analysis runs through: plan, resume, progress, cancel.

``execute(task, texts, store, config=...)`` splits the non-empty texts into fixed chunks,
runs the task's predictor on each one and hands every finished chunk to the ``store``
before it reports progress. The store decides what "finished" survives:

- ``MemoryStore``: a dict, for notebooks and tests (``run``);
- ``CheckpointStore``: Parquet checkpoints in a project's run folder, so a run cut off by a
  crash, a kill or a restart is picked up again on the same run id; finished chunks are
  read back, not recomputed.

This is the base of the task layer, as transformers' ``Pipeline`` owns batching and
iteration while each task fills in its parts: a task only loads a predictor and predicts
one chunk. The job queue (``analysis.jobs``) adds claiming, heartbeats and the run table on
top, through the ``progress``/``stage``/``cancelled`` hooks; nothing here knows about it.

Row flags: a predictor may return, beside its result columns, boolean columns named in
its task's ``row_flags`` (``split``: the text was longer than the model window, ...). They
are kept in checkpoints (a resumed run counts them too) and taken off the result here:
the manifest gets how many rows each flag marks and a few example doc ids.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import JobCancelled, TextlabError
from ..provenance import split_row_flags
from .base import BaseConfig, RunContext, Task

ProgressFn = Callable[[int, int, float], None]  # (done, total, docs per second)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:  # never import torch just to seed it
        sys.modules["torch"].manual_seed(seed)


def plan_chunks(n_items: int, chunk_size: int) -> list[range]:
    return [range(start, min(start + chunk_size, n_items)) for start in range(0, n_items, chunk_size)]


def non_empty(texts: list[str]) -> list[int]:
    """Positions of the texts a task runs on (an empty text gets the task's empty row)."""
    return [i for i, t in enumerate(texts) if t.strip()]


def assemble(task: Task, doc_ids: list[str], texts: list[str], coded: pd.DataFrame) -> pd.DataFrame:
    """One result row per input row, in input order; empty texts get the task's empty row."""
    coded = coded.set_index("doc_id")
    empty_ids = [d for d, t in zip(doc_ids, texts) if not t.strip()]
    if empty_ids:
        empty = pd.DataFrame([task.empty_row()] * len(empty_ids), index=pd.Index(empty_ids, name="doc_id"))
        coded = pd.concat([coded, empty.reindex(columns=coded.columns)]) if len(coded.columns) else empty
    integer = [c for c in coded.columns if pd.api.types.is_integer_dtype(coded[c])]
    result = coded.reindex(doc_ids)
    for column in integer:  # empty texts leave gaps: keep ids integer (nullable), not float
        result[column] = result[column].astype("Int64")
    result.index.name = "doc_id"
    return result.reset_index()


# ---------------------------------------------------------------------- stores


class Store:
    """Where ``execute`` keeps finished chunks (each a frame with ``doc_id`` first)."""

    def plan(self, proposed: dict[str, int]) -> dict[str, int]:
        """The chunk plan of this run: the stored one when the run started before, else
        ``proposed`` (stored now). A resumed run must find its chunks where it left them,
        even when a newer Textlab has another default chunk size."""
        raise NotImplementedError

    def finished(self) -> set[int]:
        raise NotImplementedError

    def save(self, index: int, part: pd.DataFrame) -> None:
        raise NotImplementedError

    def parts(self, n_chunks: int) -> list[pd.DataFrame]:
        """The finished chunks of the plan, in order."""
        raise NotImplementedError


@dataclass
class MemoryStore(Store):
    chunks: dict[int, pd.DataFrame] = field(default_factory=dict)
    stored_plan: dict[str, int] | None = None

    def plan(self, proposed: dict[str, int]) -> dict[str, int]:
        if self.stored_plan is None:
            self.stored_plan = dict(proposed)
        return self.stored_plan

    def finished(self) -> set[int]:
        return set(self.chunks)

    def save(self, index: int, part: pd.DataFrame) -> None:
        self.chunks[index] = part

    def parts(self, n_chunks: int) -> list[pd.DataFrame]:
        return [self.chunks[i] for i in sorted(self.chunks) if i < n_chunks]


class CheckpointStore(Store):
    """A project run's checkpoints: ``chunks/plan.json`` and one Parquet file per chunk."""

    def __init__(self, project: Any, run_id: str):
        self.project, self.run_id = project, run_id
        self.plan_path = Path(project.run_folder(run_id)) / "chunks" / "plan.json"

    def plan(self, proposed: dict[str, int]) -> dict[str, int]:
        if self.plan_path.exists():
            return json.loads(self.plan_path.read_text("utf-8"))
        from ..fileio import atomic_write_bytes

        atomic_write_bytes(self.plan_path, json.dumps(proposed).encode("utf-8"))
        return dict(proposed)

    def finished(self) -> set[int]:
        return set(self.project.checkpoints(self.run_id))

    def save(self, index: int, part: pd.DataFrame) -> None:
        self.project.write_checkpoint(self.run_id, index, part)

    def parts(self, n_chunks: int) -> list[pd.DataFrame]:
        found = self.project.checkpoints(self.run_id)
        return [pd.read_parquet(found[i]) for i in sorted(found) if i < n_chunks]


# ---------------------------------------------------------------------- the loop


@dataclass
class Execution:
    """What a finished ``execute`` hands back for the result table and the manifest."""

    result: pd.DataFrame                 # doc_id + result columns, one row per text, in order
    description: dict[str, Any]          # the predictor's describe(): backend, model, ...
    row_flags: dict[str, int]            # rows each declared flag marks
    row_examples: dict[str, list[str]]   # up to ten flagged doc ids per flag
    resumed_from: int                    # texts already done when this call started
    n_items: int                         # non-empty texts


def predict_checked(task: Task, predictor, texts: list[str], progress: Callable[[int], None] | None = None,
                    rows: list[int] | None = None) -> pd.DataFrame:
    # A predictor that reads other columns of each text's row (a prompt template with
    # metadata fields) says so with ``wants_rows`` and gets the rows' positions in the corpus.
    if getattr(predictor, "wants_rows", False):
        part = predictor.predict(texts, progress=progress, rows=rows)
    else:
        part = predictor.predict(texts, progress=progress)
    if len(part) != len(texts):
        # A backend that returns fewer rows than it was given would silently misalign results.
        raise TextlabError(f"The {task.name} backend returned {len(part)} results for {len(texts)} texts.")
    undeclared = [c for c in part.columns if c.startswith("_")]
    if undeclared:
        raise TextlabError(f"The {task.name} backend returned side-channel columns {undeclared}; per-row facts "
                           "must be declared in the task's row_flags.")
    return part.reset_index(drop=True)


def _flag_columns(task: Task, result: pd.DataFrame) -> pd.DataFrame:
    """Checkpoints written before row flags were declared call them ``_split`` etc."""
    for name in task.row_flags:
        old = f"_{name}"
        if old in result.columns:  # chunks of both kinds in one run: one column
            values = result.pop(old)
            result[name] = values if name not in result.columns else result[name].where(result[name].notna(), values)
    return result


@dataclass
class ChunkPlan:
    """Where a run (or a resumed one) starts: what ``execute`` and the Ray engine share."""

    doc_ids: list[str]
    context: RunContext
    todo: list[int]        # positions of the non-empty texts
    chunks: list[range]    # over ``todo``
    chunk_size: int
    done: set[int]         # chunks already in the store
    n_done: int            # texts in them

    def reporter(self, progress: ProgressFn | None) -> Callable[[int], None]:
        """``report(done)``: calls ``progress(done, total, texts/s of this session)``; the rate
        counts only texts done since now, not those read back from checkpoints."""
        clock, start = time.monotonic(), self.n_done

        def report(now_done: int) -> None:
            if progress:
                elapsed = time.monotonic() - clock
                progress(now_done, len(self.todo), (now_done - start) / elapsed if elapsed > 0 else 0.0)
        return report


def plan_run(task: Task, texts: list[str], store: Store, config: BaseConfig, context: RunContext | None,
             doc_ids: list[str] | None) -> ChunkPlan:
    """Validate and seed the run, then take its chunk plan from the store (or store a new one)."""
    task.validate(config)
    seed_everything(config.seed)
    doc_ids = [str(i) for i in range(len(texts))] if doc_ids is None else list(doc_ids)
    if context is None:
        context = RunContext(texts=texts, doc_ids=doc_ids)
    todo = non_empty(texts)
    plan = store.plan({"chunk_size": task.chunk_size, "n_items": len(todo)})
    if plan["n_items"] != len(todo):
        raise TextlabError("This run cannot resume: the corpus changed since it started.")
    chunks = plan_chunks(len(todo), plan["chunk_size"])
    done = store.finished()
    n_done = sum(len(chunks[i]) for i in done if i < len(chunks))
    return ChunkPlan(doc_ids, context, todo, chunks, plan["chunk_size"], done, n_done)


def assemble_run(task: Task, texts: list[str], store: Store, plan: ChunkPlan):
    """The finished run's result (one row per text, in order) and its row-flag counts and examples."""
    parts = store.parts(len(plan.chunks))
    coded = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"doc_id": pd.Series([], dtype=str)})
    result = assemble(task, plan.doc_ids, texts, _flag_columns(task, coded))
    return split_row_flags(result, list(task.row_flags))


def execute(
    task: Task,
    texts: list[str],
    store: Store,
    *,
    config: BaseConfig,
    context: RunContext | None = None,
    doc_ids: list[str] | None = None,
    progress: ProgressFn | None = None,
    stage: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_loaded: Callable[[dict[str, Any]], None] | None = None,
) -> Execution:
    """Run (or resume) ``task`` over ``texts``; see the module docstring.

    ``progress(done, total, docs_per_s)`` is called after every chunk and within long ones
    (it may raise JobCancelled); ``stage(message)`` names long steps without per-text
    progress (loading a model, fine-tuning); ``cancelled()`` is asked before each chunk;
    ``on_loaded(description)`` is called once the predictor is loaded.
    """
    plan = plan_run(task, texts, store, config, context, doc_ids)
    doc_ids, context, todo, chunks, done, n_done = (plan.doc_ids, plan.context, plan.todo, plan.chunks, plan.done,
                                                    plan.n_done)
    resumed_from = n_done
    if progress:
        progress(n_done, len(todo), 0.0)
    report = plan.reporter(progress)

    def say(message: str) -> None:
        if stage is not None:
            stage(message)

    def load():
        # Loading can take a minute (imports, weights, a few-shot fit): name the stage so a
        # progress bar frozen at 0 is explained.
        say("Loading the model")
        loaded = task.load(config, context)
        if on_loaded is not None:
            on_loaded(loaded.describe())
        return loaded

    if stage is not None:
        context.on_stage = stage
    predictor = None
    description: dict[str, Any] = {}
    try:
        for index, chunk in enumerate(chunks):
            if index in done:
                continue
            if cancelled is not None and cancelled():
                raise JobCancelled("The run was cancelled.")
            if predictor is None:
                predictor = load()
            idx = [todo[i] for i in chunk]
            base = n_done
            part = predict_checked(task, predictor, [texts[i] for i in idx], progress=lambda k: report(base + k),
                                   rows=idx)
            part.insert(0, "doc_id", [doc_ids[i] for i in idx])
            store.save(index, part)
            n_done += len(idx)
            report(n_done)
        if predictor is None and todo:  # everything came from checkpoints: describe it all the same
            predictor = load()
        if predictor is not None:
            predictor.finish()
    finally:
        if predictor is not None:
            description = predictor.describe()
            predictor.close()

    result, counts, examples = assemble_run(task, texts, store, plan)
    return Execution(result=result, description=description, row_flags=counts, row_examples=examples,
                     resumed_from=resumed_from, n_items=len(todo))


def run(task: Task | str, texts: list[str], config: BaseConfig | dict | None = None, *,
        frame: pd.DataFrame | None = None, progress: ProgressFn | None = None, **settings) -> pd.DataFrame:
    """Run an analysis on a list of texts in this process (notebooks, tests).

    ``task``: a Task or its name (``"sentiment"``); ``config``: its Config, a dict, or
    None for the defaults, with ``settings`` as keywords on top
    (``run("coding", texts, codebook="codebook.yaml")``). ``frame``: other columns aligned
    with ``texts`` (few-shot coding reads its human codes there). Returns the result
    columns, one row per text in order; empty texts get empty results.
    """
    if isinstance(task, str):
        from . import get_task

        task = get_task(task)
    if config is None or isinstance(config, dict):
        config = task.Config.from_dict({**(config or {}), **settings})
    elif settings:
        config = task.Config.from_dict({**config.to_dict(), **settings})
    texts = ["" if t is None else str(t) for t in texts]
    if frame is not None and len(frame) != len(texts):
        raise TextlabError(f"frame has {len(frame)} rows but there are {len(texts)} texts.")
    doc_ids = [str(i) for i in range(len(texts))]
    context = RunContext(texts=texts, frame=None if frame is None else frame.reset_index(drop=True), doc_ids=doc_ids)
    task.validate(config)
    task.check(config, context)
    done = execute(task, texts, MemoryStore(), config=config, context=context, doc_ids=doc_ids, progress=progress)
    return done.result.drop(columns="doc_id")
