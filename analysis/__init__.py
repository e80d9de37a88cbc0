"""Textlab: a local text-analysis workbench for social scientists.

The library behind the app and the ``textlab`` command; nothing here imports Streamlit.
One import gives a notebook what it needs::

    import analysis as tl

    corpus, report = tl.load_corpus("answers.csv", text_column="answer")
    coded = tl.run("coding", corpus.texts, codebook="codebook.yaml")   # one row per text
    sentiment = tl.run("sentiment", corpus.texts, backend="offline")

    workspace = tl.Workspace()                      # the app's projects, runs and results
    project = workspace.create_project("answers", corpus)
    jobs = tl.JobManager(workspace).start()         # background runs with checkpoints
    run = jobs.submit(project, "sentiment")

Where things live: ``analysis.tasks`` holds one module or package per analysis (the
registry: ``available_tasks()``, ``get_task(name)``), ``analysis.tasks.execute`` the chunk
loop they all run through, ``analysis.validation`` agreement with human coders and
``analysis.export`` the coded dataset with its manifest. See README "Layout".
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it. Imported on first use, so that `import analysis`
# (and `textlab --help`) does not pay for pandas, torch or the workspace.
_PUBLIC = {
    "load_corpus": "analysis.corpus",
    "read_file": "analysis.corpus",
    "build_corpus": "analysis.corpus",
    "quality_report": "analysis.corpus",
    "Corpus": "analysis.corpus",
    "run": "analysis.tasks.execute",
    "execute": "analysis.tasks.execute",
    "available_tasks": "analysis.tasks",
    "get_task": "analysis.tasks",
    "Workspace": "analysis.workspace",
    "JobManager": "analysis.jobs",
    "Codebook": "analysis.codebook",
    "read_codebook": "analysis.codebook",
    "agreement": "analysis.validation",
    "TextlabError": "analysis.errors",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:  # for editors and type checkers; at run time __getattr__ imports on demand
    from .codebook import Codebook, read_codebook
    from .corpus import Corpus, build_corpus, load_corpus, quality_report, read_file
    from .errors import TextlabError
    from .jobs import JobManager
    from .tasks import available_tasks, get_task
    from .tasks.execute import execute, run
    from .validation import agreement
    from .workspace import Workspace


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
