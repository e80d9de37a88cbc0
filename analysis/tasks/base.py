"""The one shape every analysis has.

A task module defines a ``Config`` dataclass (its parameters, JSON-serialisable, stored
with the run) and a ``Task`` whose ``load(config)`` returns a ``Predictor``: the loaded
model or lexicon. ``Predictor.predict(texts, progress)`` returns one row of result columns per text,
in order. ``describe()`` says what produced the result (backend, model, revision) for the
run manifest. ``execute`` (``analysis/tasks/execute.py``) does the rest: empty texts,
batching into checkpointed chunks, progress, cancel and resume; ``analysis.jobs`` queues
runs of a project through it, and ``execute.run(task, texts)`` runs a task in-process for
notebooks and tests.

Tasks describe themselves, so that the command line, the pages and the export read one
source instead of lists of their own:

- every ``Config`` field is declared with :func:`setting`: its default, a one-line help
  text and, where the ``textlab analyze`` command takes it, its flag (``--n-topics``).
  ``Config.settings()`` lists them; ``analysis.cli`` builds its task options from them.
- every ``Task`` declares its result columns: ``columns`` (fixed names), ``column_prefixes``
  (families named after a model's labels or a codebook's codes, ``code_<slug>``), the
  ``label_columns`` among them (the code a text gets, what a person can check) and, of
  those, the ``multi_label_columns`` (``;``-joined sets). ``output_columns(manifest)`` says
  which a run of given settings writes; ``analysis.tasks.label_columns`` finds them in a
  table.

Adding an analysis: a module (or package) here with its Config, Task and Predictor, an
entry in the registry (``analysis/tasks/__init__.py``) and a page.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import pandas as pd

from ..errors import TextlabError


def setting(default: Any = None, *, help: str, flag: str | None = None, choices: tuple[Any, ...] | None = None,
            metavar: str | None = None) -> Any:
    """A Config field that says what it is: ``dataclasses.field(default=...)`` with metadata.

    ``help``: one line for ``textlab analyze --help``, notebooks and the docs. ``flag``: the
    option of ``textlab analyze`` that sets it (``--n-topics``; None: not on the command
    line). ``choices``: the values the option accepts; ``metavar``: the option's value name
    in the help (``FILE``). Defaults must be immutable (None, numbers, strings, tuples)::

        @dataclass
        class TopicsConfig(BaseConfig):
            n_topics: int | None = setting(None, help="number of topics (default: found automatically)",
                                           flag="--n-topics", metavar="N")
    """
    if not help or not help.strip():
        raise ValueError("A setting needs a help text.")
    if flag is not None and not (flag.startswith("--") and len(flag) > 2):
        raise ValueError(f"A setting's flag is a long option such as --n-topics, not {flag!r}.")
    return dataclasses.field(default=default, metadata={"help": help.strip(), "flag": flag, "choices": choices,
                                                        "metavar": metavar})


class Setting(NamedTuple):
    """One Config field as ``Config.settings()`` lists it."""

    name: str
    type: Any           # the annotation, resolved: int, float | None, ...
    default: Any
    help: str
    flag: str | None    # textlab analyze option, or None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None

    @property
    def value_type(self) -> type:
        """The one Python type the field holds besides None (str for anything richer: a
        codebook is given as a file name and read into the config by ``from_dict``)."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)] or [self.type]
        kind = args[0] if len(args) == 1 else str
        return kind if kind in (bool, int, float, str) else str


# The --fast option of the tasks that embed texts (coding, summary, topics): analysis.embeddings.
FAST_HELP = ("the fast CPU path: a static embedding model distilled here from the bundled MiniLM "
             "(built once, no download; see docs/benchmarks.md for its speed and task figures)")


@dataclass
class BaseConfig:
    """Parameters every task shares. Subclasses add their own fields, each a :func:`setting`."""

    backend: str = setting("auto", help="auto (the transformer model when it is on this machine, else the offline "
                                        "method), offline, transformers, or llm (a generative model: coding, sentiment, emotion, prompt)",
                           flag="--backend", choices=("auto", "offline", "transformers", "llm"))
    model: str | None = setting(None, help="model: registry name, Hugging Face id or local folder", flag="--model")
    device: str = setting("auto", help="auto (default), cpu, cuda, cuda:N or mps", flag="--device")
    batch_size: int | None = setting(None, help="texts per batch (default: a token budget decides)",
                                     flag="--batch-size")
    seed: int = setting(0, help="seed of everything random in the run (sampling, folds, clustering)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "BaseConfig":
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TextlabError(
                f"Unknown setting(s) {', '.join(unknown)} for this task; known settings: {', '.join(sorted(known))}."
            )
        return cls(**data)

    @classmethod
    def settings(cls) -> list[Setting]:
        """Every field: name, type, default, help and flag, in field order. A subclass that only
        changes a field's default (``backend: str = "offline"``) keeps the help and flag of
        the class it overrides."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if "help" not in meta:  # an override of the default only: the parent's description
                meta = next((g.metadata for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)
                             for g in dataclasses.fields(base) if g.name == f.name and "help" in g.metadata), meta)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            out.append(Setting(f.name, hints.get(f.name, Any), default, meta.get("help", ""), meta.get("flag"),
                               meta.get("choices"), meta.get("metavar")))
        return out


@dataclass
class LLMConfig(BaseConfig):
    """The settings of a task that can run on a generative model (``backend="llm"``)."""

    llm_url: str | None = setting(None, help="backend llm: the OpenAI-compatible server (vLLM, Ollama, llama.cpp, "
                                             "LM Studio), e.g. http://127.0.0.1:11434/v1; without it --model is "
                                             "a local instruct-model folder or GGUF file, and without that the "
                                             "embedded SmolLM2-135M-Instruct runs", flag="--llm-url",
                                  metavar="URL")
    llm_model: str | None = setting(None, help="backend llm: the model's name on the server", flag="--llm-model",
                                    metavar="NAME")
    allow_remote: bool = setting(False, help="backend llm: allow a server outside this machine and its local "
                                             "network (every text is sent there)", flag="--allow-remote")
    llm_max_tokens: int | None = setting(None, help="backend llm: longest answer, in tokens (default: 32 for a "
                                                    "label, 160 with an explanation, 256 for a free prompt)",
                                         flag="--llm-max-tokens", metavar="N")
    explain: bool = setting(False, help="backend llm: the model explains each answer in a sentence "
                                        "(<task>_explanation column)", flag="--explain")


class Predictor:
    """A loaded backend. Subclasses implement ``predict`` and ``describe``."""

    def predict(self, texts: list[str], progress: Callable[[int], None] | None = None) -> pd.DataFrame:  # pragma: no cover
        """Result columns for each text, in order. ``progress(k)`` may be called with the
        number of these texts done so far, for progress bars on long chunks."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self) -> None:
        """Work on the whole run once every text is predicted (a check over a sample of the
        texts, such as prompt stability); its findings go into ``describe`` (default: none)."""

    def close(self) -> None:
        """Release workers or accelerator memory when the run ends (default: nothing)."""


def column_fingerprint(frame: pd.DataFrame | None, columns: list[str]) -> str:
    """SHA-256 of some columns of the corpus table, values as text (None for a missing column)."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for column in columns:
        values = None if frame is None or column not in frame.columns else [
            None if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v) else str(v) for v in frame[column].tolist()]
        digest.update(json.dumps([column, values], ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Pool initializer: end this worker process when the process that made the pool is gone.

    A killed CLI or server (kill -9) cannot shut its pool down; without this its workers live
    on, reparented to PID 1, holding memory for good.
    """
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # the pid now belongs to someone else's process
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def cpu_count() -> int:
    """Cores this process may use (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass
class RunContext:
    """What a task may need beyond its settings: the whole corpus (few-shot coding trains
    on its coded rows) and the project (for the shared embedding cache). Both are None
    when a task runs on a bare list of texts."""

    texts: list[str]
    frame: pd.DataFrame | None = None       # the corpus table, rows aligned with texts
    project: Any = None                     # analysis.workspace.Project
    doc_ids: list[str] | None = None        # aligned with texts
    run_folder: Any = None                  # pathlib.Path for a run's extra files (None in memory)
    # Long preparation before the first text is predicted (fine-tuning a model) reports here
    # what it is doing; in a job this shows in the progress bar, keeps the heartbeat fresh
    # and raises JobCancelled when the user cancels.
    on_stage: Callable[[str], None] | None = None

    def stage(self, message: str) -> None:
        if self.on_stage is not None:
            self.on_stage(message)

    @property
    def cache_dir(self):
        return None if self.project is None else self.project.embeddings_dir


class Task:
    """Metadata and loader of one analysis."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[BaseConfig]] = BaseConfig
    # Whether the task runs on a generative model with backend="llm" (analysis.llm).
    llm_backend: ClassVar[bool] = False
    # Documents per checkpoint: small enough that a crash loses little, large enough that
    # the Parquet writes cost nothing next to the model work.
    chunk_size: ClassVar[int] = 2048

    def validate(self, config: BaseConfig) -> None:
        """Raise TextlabError for settings that cannot work, before any model is loaded."""
        if config.batch_size is not None and config.batch_size < 1:
            raise TextlabError(f"--batch-size must be at least 1, not {config.batch_size}.")
        if config.backend not in ("auto", "offline", "transformers", "llm"):
            raise TextlabError(f"Unknown backend '{config.backend}': use auto, offline, transformers or llm.")
        if config.backend == "llm" and not self.llm_backend:
            raise TextlabError(f"The {self.title.lower()} analysis has no LLM backend yet: use auto, offline or "
                               "transformers (codebook coding has one).")
        if config.backend == "llm":
            from .prompting import validate_llm  # imports the LLM client only for this backend

            validate_llm(config)
        if config.device not in ("auto", "cpu", "cuda", "mps") and not config.device.startswith("cuda:"):
            raise TextlabError(f"Unknown device '{config.device}': use auto, cpu, cuda or mps.")

    def check(self, config: BaseConfig, context: RunContext) -> None:
        """Raise TextlabError for settings that cannot work on this corpus (default: none)."""

    def input_fingerprint(self, config: BaseConfig, context: RunContext) -> str | None:
        """A hash of what a run reads besides the texts (a column of human codes), or None
        when it reads the texts only. A finished run is reused only on the same fingerprint."""
        return None

    def load(self, config: BaseConfig, context: RunContext | None = None) -> Predictor:  # pragma: no cover
        raise NotImplementedError

    def empty_row(self) -> dict[str, Any]:
        """Result values for an empty text (the contract: empty texts get empty results)."""
        return {}

    # The result columns, declared: the command line, the pages' column pickers and the
    # export read these instead of lists of their own (see the module docstring).
    columns: ClassVar[tuple[str, ...]] = ()            # fixed names a run may write
    column_prefixes: ClassVar[tuple[str, ...]] = ()    # families: prefix + a label's slug (code_housing)
    label_columns: ClassVar[tuple[str, ...]] = ()      # the code a text gets (main first): checked against people
    multi_label_columns: ClassVar[tuple[str, ...]] = ()  # label columns holding ";"-joined sets of codes
    # Result columns a chart cannot use as a category or a number: free text (summaries) and
    # ids that another column names (topic_id beside topic_label).
    not_for_charts: ClassVar[tuple[str, ...]] = ()
    # Per-row facts a predictor may return beside its result columns (boolean columns of these
    # names), for the manifest, not the result: name -> what a marked row means. The chunk
    # loop (``execute``) counts them and takes them off; an undeclared extra column is an error.
    row_flags: ClassVar[dict[str, str]] = {}

    def output_columns(self, manifest: dict[str, Any] | None = None) -> list[str]:
        """The result columns a run writes: names, and ``prefix*`` for a family of columns.

        ``manifest``: a finished run's manifest, or ``{"parameters": config.to_dict()}`` for a
        run not made yet (None: every column the task can write). Default: all of ``columns``
        and ``column_prefixes``; a task whose columns depend on its settings narrows them."""
        return list(self.columns) + [f"{prefix}*" for prefix in self.column_prefixes]

    def owns_column(self, column: str, manifest: dict[str, Any] | None = None) -> bool:
        """Whether ``column`` is one of ``output_columns(manifest)``."""
        return matches_columns(column, self.output_columns(manifest))

    def main_column(self, manifest: dict[str, Any]) -> str | None:
        """The result column a reader looks at first (default: the first label column)."""
        return next(iter(self.label_sets(manifest)), None) or next(iter(self.label_columns), None)

    def chart_columns(self, manifest: dict[str, Any]) -> list[str]:
        """The run's result columns that charts can show, the main one first."""
        columns = [c for c in manifest.get("columns") or [] if c not in self.not_for_charts]
        first = self.main_column(manifest)
        return sorted(columns, key=lambda c: c != first)

    def label_sets(self, manifest: dict[str, Any]) -> dict[str, list[str]]:
        """The label columns of a run (described by its manifest) and every value each can
        take, in a fixed order. Exports number the labels 1, 2, ... in this order, so a code
        means the same label in every export of the task. Default: no label columns."""
        return {}


def matches_columns(column: str, declared: list[str] | tuple[str, ...]) -> bool:
    """Whether a column is among declared names and ``prefix*`` patterns (output_columns)."""
    return any(column == d or (d.endswith("*") and column.startswith(d[:-1]) and len(column) > len(d) - 1)
               for d in declared)
