"""The contract every registered analysis keeps (``analysis/tasks/base.py``), checked on each.

On a few short texts with an empty one, a blank one and None, with offline settings that
run in seconds: one result row per text in input order (the same text gets the same result,
wherever it stands), empty texts get the task's empty result, every result column is one the
task declares (``output_columns``), the loaded predictor's ``describe()`` is JSON for the
manifest, and the Config survives ``to_dict``/``from_dict`` and says what each field is.
A task added to the registry is checked too; give it a case in CASES (the stand-in tasks that
other test modules register are left out).
"""

from __future__ import annotations

import importlib
import json

import pandas as pd
import pytest

from analysis.tasks import available_tasks, get_task
from analysis.tasks.base import matches_columns
from tests.paths import ROOT, SAMPLE_CSV

CODEBOOK = ROOT / "sample_data" / "policy_codebook.json"

SHORT = [
    "The buses are late every single morning and nobody seems to care.",
    "",
    "Rents went up again. We cannot afford to stay in this city much longer.",
    None,
    "Great to see the new clinic open! Waiting times are finally shorter.",
    "   ",
    "Energy bills are crazy this winter.",
    "The buses are late every single morning and nobody seems to care.",  # = the first
]


def survey_texts(n: int = 40) -> list:
    """Survey answers for topics (clustering needs a few dozen texts), with empties and a repeat."""
    texts = pd.read_csv(SAMPLE_CSV)["text"].dropna().astype(str).head(n).tolist()
    return texts[:5] + ["", None] + texts[5:] + ["  ", texts[0]]


# Task -> (settings, texts, whether its result depends on the whole corpus). Offline settings:
# no model download, a few seconds each.
CASES = {
    "stats": ({}, SHORT, False),
    "sentiment": ({"backend": "offline"}, SHORT, False),
    "emotion": ({"backend": "offline"}, SHORT, False),
    "coding": ({"backend": "offline", "codebook": str(CODEBOOK)}, SHORT, False),
    "summary": ({"backend": "offline"}, SHORT, False),
    "topics": ({"backend": "offline", "n_topics": 2}, survey_texts(), True),
    # A tiny causal LM the test builds (random weights): the real generation path, no download.
    "prompt": ({"template": "What is this about? {text}", "llm_max_tokens": 4}, SHORT, False),
}
# Over 10 s on a CPU when run alone: the first to load the embedding model pays about 10 s
# for torch and sentence-transformers; topics also fit.
SLOW = {"coding", "summary", "topics", "prompt"}


def analyses() -> list[str]:
    """The registered tasks, less the stand-ins other test modules register (tests/slow_task.py)."""
    return [n for n in available_tasks() if not type(get_task(n)).__module__.startswith("tests.")]


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def run_task(task, texts, config):
    """The task's in-process run: every analysis module has ``run(texts, config)``."""
    return importlib.import_module(type(task).__module__).run(texts, config)


def run_recording(task, texts, config, monkeypatch):
    """Run the task in-process and keep what its loaded predictor's describe() says once it
    has predicted (what the run manifest records)."""
    descriptions = []
    load = task.load

    def recording_load(config, context=None):
        predictor = load(config, context)
        predict = predictor.predict

        def recording_predict(texts, progress=None, **rows):
            out = predict(texts, progress=progress, **rows)
            descriptions.append(predictor.describe())
            return out

        predictor.predict = recording_predict
        return predictor

    monkeypatch.setattr(task, "load", recording_load)
    result = run_task(task, texts, config)
    monkeypatch.undo()
    return result, descriptions


def test_every_registered_task_has_a_case():
    assert set(analyses()) <= set(CASES), "give the new task a case in CASES"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in analyses() if n in CASES])
def test_task_keeps_the_contract(name, monkeypatch, tmp_path_factory):
    task = get_task(name)
    settings, texts, corpus_level = CASES[name]
    if name == "prompt":
        from tests.tiny_models import make_tiny_causal_lm

        settings = {**settings, "model": str(make_tiny_causal_lm(tmp_path_factory.mktemp("causal")))}
    config = task.Config.from_dict(settings)
    result, descriptions = run_recording(task, texts, config, monkeypatch)

    # One row per text, in order.
    assert len(result) == len(texts)
    assert list(result.index) == list(range(len(texts)))
    first, repeat = 0, len(texts) - 1
    assert texts[first] == texts[repeat]
    pd.testing.assert_series_equal(result.iloc[first], result.iloc[repeat], check_names=False)
    if not corpus_level:  # the result of a text does not depend on where it stands
        backwards = run_task(task, list(reversed(texts)), config).iloc[::-1].reset_index(drop=True)
        pd.testing.assert_frame_equal(backwards, result, check_dtype=False)

    # Empty texts (empty, blank, None) get the empty result: missing values, or what the task's
    # empty_row says an empty text has (no words: 0 words).
    empty_row = task.empty_row()
    empties = [i for i, t in enumerate(texts) if t is None or not str(t).strip()]
    assert len(empties) >= 3
    for i in empties:
        for column, value in result.iloc[i].items():
            if column in empty_row and not _missing(empty_row[column]):
                assert value == empty_row[column], (name, column, value)
            else:
                assert _missing(value), f"{name}: empty text {i} has {column} = {value!r}"
    filled = [i for i in range(len(texts)) if i not in empties]
    assert result.iloc[filled].notna().any(axis=1).all(), "a text with words got no result"

    # Every column is declared: for these settings, and among everything the task can write.
    assert descriptions  # one per chunk; these texts make one
    description = descriptions[-1]
    manifest = {**description, "parameters": config.to_dict()}
    declared = task.output_columns(manifest)
    assert declared and set(declared) <= set(task.output_columns()) | {c[:-1] + "*" for c in declared}
    for column in result.columns:
        assert matches_columns(column, declared), f"{name} wrote {column}, not among {declared}"
        assert task.owns_column(column)
    assert set(task.label_columns) <= set(task.columns)
    assert set(task.multi_label_columns) <= set(task.label_columns)
    manifest["columns"] = list(result.columns)
    main = task.main_column(manifest)
    assert main is None or main in result.columns

    # describe() goes into the run manifest as JSON.
    json.dumps(description)
    assert description.get("backend") in ("offline", "transformers", "llm")

    # The Config is stored with the run and read back.
    stored = json.loads(json.dumps(config.to_dict()))
    assert task.Config.from_dict(stored) == config


@pytest.mark.parametrize("name", analyses())
def test_every_setting_says_what_it_is(name):
    task = get_task(name)
    settings = task.Config.settings()
    fields = {s.name for s in settings}
    assert fields == set(task.Config().to_dict())
    for setting in settings:
        assert setting.help and setting.help.strip() == setting.help, f"{name}.{setting.name} has no help"
        assert "\n" not in setting.help
        assert setting.flag is None or setting.flag.startswith("--")
        assert setting.default == getattr(task.Config(), setting.name)
    assert task.Config.from_dict(task.Config().to_dict()) == task.Config()
