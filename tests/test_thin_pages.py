"""Pages hold no model or data-wrangling code (issue 12, item 5): they call the library and draw.

Reads every page (module-level and function-level imports alike, with ``ast``) and checks
that none imports what builds or fits a model: the model libraries themselves, the
library's model layers (embeddings, runner, models, llm), a predictor or estimator class,
the few-shot steps that fit a classifier, or a method module of an analysis package
(``analysis.tasks.coding.fewshot`` and the like: a page reaches an analysis through its
package's face, ``analysis.tasks.coding``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.paths import ROOT

PAGES = sorted((ROOT / "pages").glob("*.py"))
MODEL_LIBRARIES = {"sklearn", "torch", "transformers", "sentence_transformers", "setfit", "bertopic", "umap",
                   "hdbscan", "cuml", "nrclex", "vaderSentiment"}
MODEL_LAYERS = {"analysis.embeddings", "analysis.runner", "analysis.models", "analysis.llm", "analysis.engines"}
# Names that build, load or fit a model, or do the model logic around it (the steps of the few-shot
# check, uncertainty sampling), wherever they are imported from.
MODEL_NAMES = {"FewShotModel", "Embedder", "finetune_setfit", "fit_topics", "learning_curve", "check_training_codes",
               "training_rows", "suggest_next", "merge_similar_topics", "document_map", "summarize_texts",
               "resolve_device", "load_model", "load_pipeline"}
MODEL_CLASS = re.compile(r".+(Predictor|Coder|Runner|Summarizer|Classifier|Model)$")


def imported(source: str) -> list[tuple[str, str | None]]:
    """(module, name) for every import of the source; name None for a plain ``import module``."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(node.module or "", alias.name) for alias in node.names]
    return found


def is_method_module(module: str) -> bool:
    """analysis.tasks.<package>.<module>: a method inside an analysis package."""
    parts = module.split(".")
    return parts[:2] == ["analysis", "tasks"] and len(parts) >= 4


def model_imports(source: str) -> list[str]:
    """What the source imports that builds or fits models, as readable strings."""
    problems = []
    for module, name in imported(source):
        full = f"{module}.{name}" if name else module
        if module.split(".")[0] in MODEL_LIBRARIES:
            problems.append(f"{full} (a model library)")
        elif any(full == layer or full.startswith(layer + ".") for layer in MODEL_LAYERS):
            problems.append(f"{full} (a model layer of the library)")
        elif is_method_module(module) or (name and is_method_module(full)
                                          and (ROOT / Path(*full.split("."))).with_suffix(".py").exists()):
            problems.append(f"{full} (a method module: use the analysis package's face)")
        elif name and (name in MODEL_NAMES or MODEL_CLASS.fullmatch(name)):
            problems.append(f"{full} (model logic: the library's page-level function does it)")
    return problems


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_a_page_imports_nothing_that_builds_models(path):
    assert model_imports(path.read_text("utf-8")) == [], f"{path.name} builds models: move that into analysis/"


def test_the_check_finds_model_code_in_a_page():
    """The few-shot preview as pages/coding.py had it before item 5, and its other forms."""
    before = (
        "import streamlit as st\n"
        "if st.button('Check'):\n"
        "    from analysis.tasks.coding import fewshot\n"
        "    from analysis.embeddings import Embedder\n"
        "    from analysis.tasks.coding import training_rows, FewShotModel\n"
        "    from analysis.runner import resolve_device\n"
        "    import sklearn.linear_model\n"
        "    from analysis import models\n"
        "    from analysis.tasks.topics.fit import TopicsPredictor\n"
    )
    found = model_imports(before)
    assert len(found) == len(imported(before)) - 1, found  # all but streamlit
    assert model_imports("from analysis.tasks.coding import preview_fewshot, next_to_code\n"
                         "from analysis.tasks import get_task\nfrom analysis import aggregate, charts\n") == []
