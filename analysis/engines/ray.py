"""The ray engine: a task's chunks predicted by model actors on a Ray cluster (Ray Data).

Same contract as the local chunk loop (:func:`analysis.tasks.execute.execute`), so the two
engines share a run's checkpoints: the chunk plan comes from the run's store, finished
chunks are skipped, and the driver (the ``textlab`` process) writes each chunk's
checkpoint through ``store.save`` as soon as all its rows are back. A driver cut off by a
crash or a kill loses only the chunks in flight; the same command (on either engine)
resumes from the checkpoints.

How a run goes:

1. the chunks still to do become a Ray dataset with ``ray.data.from_items``: one row per
   chunk (``chunk``, the texts' ``rows`` in the corpus, the ``texts``), one block per row.
   The driver puts the blocks into Ray's object store itself, so the worker nodes need no
   access to the workspace folder (a ``read_parquet`` of files written in the run folder
   would need the workspace on a filesystem every node sees) and no task runs before the
   actors (``from_pandas`` would start one per block to read its schema);
2. ``map_batches`` with :class:`ChunkPredictor`, a callable class: an actor pool of
   ``workers`` actors (one CPU each, and one GPU each when the run uses GPUs), each of which
   loads the predictor once (``task.load(config, context)``: the context, with the corpus
   table and its human codes for few-shot coding, is shipped once with ``ray.put``) and
   calls ``predict_checked`` on whole chunks;
3. the driver streams the results (``iter_batches``), puts each chunk's rows back in input
   order, saves the chunk and reports progress; cancel is asked between results.

The predictor's ``describe()`` goes into the manifest as on the local engine: each actor
sends its description with every chunk it returns, and the manifest keeps the one that came
with the last chunk to arrive. Figures a predictor keeps of its last call (the embedding
cache's hits and computed vectors, texts split into windows) are therefore those of one
chunk, as the local engine's are those of its last chunk.

Refused (with what to do): tasks fitted on the whole corpus at once (topics), the LLM
backend (a model server batches requests itself; its answer cache and prompt-stability
check are whole-run steps of this machine) and SetFit few-shot coding (each actor would
fine-tune its own model in the run folder).

Ray is imported inside the functions only: ``import analysis`` never needs it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import JobCancelled, TextlabError
from ..tasks.base import BaseConfig, RunContext, Task
from ..tasks.execute import (Execution, ProgressFn, Store, assemble_run, plan_run, predict_checked,
                             seed_everything)

INSTALL = 'pip install -e ".[ray]" (or pip install "textlab[ray]")'
# Columns the actors add beside a chunk's results (never a task's: those may not start with "_").
ROW, CHUNK, META = "__textlab_row", "__textlab_chunk", "__textlab_meta"
# A task whose chunk plan is one chunk for any corpus is fitted on all texts at once (topics).
WHOLE_CORPUS = 10**9

__all__ = ["INSTALL", "RayExecution", "ChunkPredictor", "require_ray", "refuse", "execute_ray", "connect"]


@dataclass
class RayExecution(Execution):
    """An Execution with the manifest's ``engine`` entry."""

    engine: dict[str, Any] = field(default_factory=dict)


def require_ray():
    """The ``ray`` module with Ray Data, or a TextlabError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray without the [data] extra lacks pyarrow glue)
    except ImportError as exc:
        raise TextlabError(f"--engine ray needs Ray with Ray Data, which is not installed here ({exc}): "
                           f"{INSTALL}.") from None
    return ray


def refuse(task: Task, config: BaseConfig) -> None:
    """A TextlabError naming what to do when ``task`` cannot run chunk by chunk on actors."""
    if task.chunk_size >= WHOLE_CORPUS:
        raise TextlabError(f"The {task.name} analysis fits one model on the whole corpus at once, so it cannot be "
                           f"split over Ray workers: run it with --engine local (it resumes from its embeddings).")
    if getattr(config, "backend", None) == "llm":
        raise TextlabError(f"--backend llm does not run on --engine ray: the model server batches the requests "
                           f"itself (run several servers behind one --llm-url to scale), and its answer cache and "
                           f"prompt-stability check belong to this machine. Run the {task.name} analysis with "
                           f"--engine local.")
    if getattr(config, "classifier", None) == "setfit":
        raise TextlabError("SetFit few-shot coding fine-tunes one model for the run; every Ray worker would "
                           "fine-tune its own. Run it with --engine local.")


# ---------------------------------------------------------------------- on the actors


@dataclass
class ProjectPaths:
    """What a predictor on a worker node may read of the project: its folders (the shared
    embedding cache). Shipped instead of the Project, which holds the workspace database."""

    id: str
    folder: Path
    embeddings_dir: Path


def shippable(context: RunContext) -> RunContext:
    """The run's context as the actors get it: corpus, human codes and the project's folders."""
    project = context.project
    paths = None if project is None else ProjectPaths(str(project.id), Path(project.folder),
                                                      Path(project.embeddings_dir))
    return RunContext(texts=list(context.texts), frame=context.frame, project=paths, doc_ids=context.doc_ids,
                      run_folder=context.run_folder)


def on_this_node(context: RunContext) -> RunContext:
    """The shipped context where this node can use it: the project's folders only where this
    node sees the workspace (one machine, or a shared filesystem); elsewhere no embedding
    cache and no run folder (nothing is written outside the workspace)."""
    project = context.project
    if project is not None and not Path(project.folder).is_dir():
        project = None
    run_folder = context.run_folder if context.run_folder is not None and Path(context.run_folder).is_dir() else None
    return replace(context, project=project, run_folder=run_folder)


def plain(description: dict[str, Any]) -> dict[str, Any]:
    """A description as the manifest keeps it (JSON), so that it crosses to the driver as text."""
    return json.loads(json.dumps(description, default=str, ensure_ascii=False))


class ChunkPredictor:
    """Ray Data callable class: the task's predictor, loaded once per actor, applied to whole
    chunks (a batch is one dataset row: one chunk). Output: one row per text with the result
    columns, the text's position in the corpus and its chunk, and on the first row the
    predictor's description."""

    def __init__(self, task: Task, config: BaseConfig, context: Any):
        if not isinstance(context, RunContext):  # the ObjectRef of ray.put: Ray Data passes it as it is
            import ray

            context = ray.get(context)
        seed_everything(config.seed)
        self.task = task
        self.predictor = task.load(config, on_this_node(context))

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rows = [int(r) for cell in batch["rows"] for r in cell]
        texts = [str(t) for cell in batch["texts"] for t in cell]
        part = predict_checked(self.task, self.predictor, texts, rows=rows)
        part[ROW] = rows
        part[CHUNK] = [int(chunk) for chunk, cell in zip(batch["chunk"], batch["rows"]) for _ in cell]
        description = json.dumps(plain(self.predictor.describe()), ensure_ascii=False)
        part[META] = [description] + [None] * (len(part) - 1)
        return part

    def __del__(self) -> None:
        predictor = getattr(self, "predictor", None)
        if predictor is not None:
            try:
                predictor.close()
            except Exception:  # an actor going away must not fail on cleanup
                pass


def describe_predictor(task: Task, config: BaseConfig, context: RunContext) -> dict[str, Any]:
    """Ray task: the description of a run whose chunks all came from checkpoints."""
    predictor = task.load(config, on_this_node(context))
    try:
        return plain(predictor.describe())
    finally:
        predictor.close()


# ---------------------------------------------------------------------- the driver

_CONNECTED: dict[str, Any] = {}


def connect(address: str | None) -> dict[str, Any]:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` made on this machine)
    or start a local Ray instance (None), once per process; a Ray already initialised in this
    process (a notebook, the tests) is used as it is. Returns what the manifest records."""
    ray = require_ray()
    if not ray.is_initialized():
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the core worker's C++ log lines
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
        try:
            if address in (None, "", "local"):
                ray.init(**kwargs)
            else:
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray instance" if address in (None, "", "local") else f"the Ray cluster at {address}"
            raise TextlabError(f"Could not start or join {where}: {exc}. Start the cluster with `ray start --head` "
                               "on the head node (and `ray start --address HEAD:6379` on the others), then give "
                               "--ray-address auto.") from exc
        _CONNECTED["address"] = address or "local"
    try:
        cluster = ray.get_runtime_context().gcs_address
    except Exception:  # older Ray
        cluster = None
    return {"address": _CONNECTED.get("address", address or "existing ray.init"), "cluster": cluster,
            "nodes": sum(1 for n in ray.nodes() if n.get("Alive"))}


def _quiet_data(ray) -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # progress is Textlab's own, on stderr or in the app
    for name in ("print_on_execution_start", "enable_operator_progress_bars"):
        if hasattr(context, name):
            setattr(context, name, False)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _gpus(config: BaseConfig, resources: dict[str, float]) -> int:
    """GPUs per actor: one when the run's device asks for CUDA (or is auto) and the cluster has GPUs."""
    device = str(config.device)
    has_gpus = resources.get("GPU", 0) >= 1
    if device.startswith("cuda"):
        if not has_gpus:
            raise TextlabError(f"--device {device}: the Ray cluster has no GPU. Use --device cpu (or auto), or add "
                               "GPU nodes to the cluster.")
        return 1
    return 1 if device == "auto" and has_gpus else 0


def _workers(asked: int | None, resources: dict[str, float], gpus: int, n_chunks: int) -> int:
    cpus, n_gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
    limit = min(n_gpus, cpus) if gpus else cpus
    what = "GPUs (one worker per GPU)" if gpus else "CPUs (one worker per CPU)"
    if limit < 1:
        raise TextlabError(f"The Ray cluster has no free {what}: add nodes, or run with --engine local.")
    if asked is not None and asked > limit:
        raise TextlabError(f"--ray-workers {asked}: the Ray cluster has {limit} {what}. Give at most {limit}, "
                           "or add nodes to the cluster.")
    return max(1, min(asked or limit, n_chunks))


def _cause(exc: BaseException) -> BaseException | None:
    """The TextlabError raised on an actor, under Ray's wrappers (None: none)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TextlabError) and type(current).__module__.startswith("analysis"):
            return current
        stack += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return None


def execute_ray(
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
    address: str | None = None,
    workers: int | None = None,
) -> RayExecution:
    """Run (or resume) ``task`` over ``texts`` on Ray; the contract of ``execute`` (see the
    module docstring). ``address``: the cluster (None: a local Ray instance; ``auto``);
    ``workers``: model actors (None: one per CPU, or per GPU when the run uses GPUs)."""
    ray = require_ray()
    refuse(task, config)
    plan = plan_run(task, texts, store, config, context, doc_ids)  # the local engine's plan: runs resume on either
    doc_ids, context, todo, chunks, n_done = plan.doc_ids, plan.context, plan.todo, plan.chunks, plan.n_done
    pending = [i for i in range(len(chunks)) if i not in plan.done]
    resumed_from = n_done
    if progress:
        progress(n_done, len(todo), 0.0)

    def say(message: str) -> None:
        if stage is not None:
            stage(message)

    say("Connecting to Ray")
    where = connect(address)
    _quiet_data(ray)
    resources = ray.cluster_resources()
    gpus = _gpus(config, resources)
    n_workers = _workers(workers, resources, gpus, max(1, len(pending)))
    # On an actor with one GPU that GPU is cuda:0, whatever index the run's device names.
    actor_config = replace(config, device="cuda") if gpus and str(config.device).startswith("cuda:") else config
    context_ref = ray.put(shippable(context))
    description: dict[str, Any] = {}
    computed = 0
    report = plan.reporter(progress)  # the rate from here: Ray's start-up is not texts' time

    if pending:
        if cancelled is not None and cancelled():
            raise JobCancelled("The run was cancelled.")
        items = [{"chunk": i, "rows": [todo[j] for j in chunks[i]], "texts": [texts[todo[j]] for j in chunks[i]]}
                 for i in pending]
        try:
            source = ray.data.from_items(items, override_num_blocks=len(items))
        except TypeError:  # Ray before 2.10
            source = ray.data.from_items(items, parallelism=len(items))
        dataset = source.map_batches(
            ChunkPredictor, fn_constructor_args=(task, actor_config, context_ref), batch_size=1,
            batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=n_workers), num_cpus=1, num_gpus=gpus)
        say(f"Loading the model on {n_workers} Ray worker{'s' if n_workers > 1 else ''}")
        pieces: dict[int, list[pd.DataFrame]] = {}
        arrived: dict[int, int] = {}
        # Arrow batches, made pandas as a checkpoint read back is (numpy dtypes, not Ray's ArrowDtype).
        # No prefetch: with it a finished chunk waits for the next one before it is handed over
        # (and checkpointed); the driver has nothing to overlap with the fetch anyway.
        batches = dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0)
        try:
            for table in batches:
                batch = table.to_pandas()
                said = batch[META].dropna()
                if len(said):
                    first = not description
                    description = json.loads(said.iloc[-1])
                    if first and on_loaded is not None:
                        on_loaded(description)
                for index, piece in batch.drop(columns=[META]).groupby(CHUNK, sort=False):
                    index = int(index)
                    pieces.setdefault(index, []).append(piece.drop(columns=[CHUNK]))
                    arrived[index] = arrived.get(index, 0) + len(piece)
                    if arrived[index] < len(chunks[index]):
                        continue
                    part = pd.concat(pieces.pop(index)).sort_values(ROW, kind="stable").reset_index(drop=True)
                    rows = part.pop(ROW).tolist()
                    part.insert(0, "doc_id", [doc_ids[i] for i in rows])
                    store.save(index, part)
                    computed += 1
                    n_done += len(rows)
                    report(n_done)
                if cancelled is not None and cancelled():
                    raise JobCancelled("The run was cancelled.")
        except (TextlabError, KeyboardInterrupt):
            raise
        except Exception as exc:
            cause = _cause(exc)
            if cause is not None:
                raise TextlabError(str(cause)) from exc
            raise
        finally:  # a driver stopped early (cancel, an error) stops the actors now, not at garbage collection
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        missing = [i for i in pending if i not in store.finished()]
        if missing:
            raise TextlabError(f"Ray returned no results for {len(missing)} chunk(s) of the run; run the same "
                               "command again to resume them.")
    elif todo:  # everything came from checkpoints: describe it all the same
        say("Loading the model")
        describe = ray.remote(num_cpus=1, num_gpus=gpus)(describe_predictor)
        description = ray.get(describe.remote(task, actor_config, context_ref))
        if on_loaded is not None:
            on_loaded(description)

    result, counts, examples = assemble_run(task, texts, store, plan)
    engine = {"name": "ray", "ray_version": ray.__version__, **where, "workers": n_workers if pending else 0,
              "gpus_per_worker": gpus, "blocks": len(chunks), "blocks_computed": computed,
              "blocks_from_checkpoints": len(chunks) - computed, "chunk_size": plan.chunk_size,
              "data": "ray.data.from_items: one row and block per chunk, through the object store"}
    return RayExecution(result=result, description=description, row_flags=counts, row_examples=examples,
                        resumed_from=resumed_from, n_items=len(todo), engine=engine)

