"""The task layer's chunk loop (analysis.tasks.execute): plan, resume, progress, cancel, row flags."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from analysis.errors import JobCancelled, TextlabError
from analysis.tasks.base import BaseConfig, Predictor, Task
from analysis.tasks.execute import CheckpointStore, MemoryStore, execute, run
from analysis.workspace import Workspace
from analysis.corpus import build_corpus


@dataclass
class CountConfig(BaseConfig):
    backend: str = "offline"


class CountPredictor(Predictor):
    def __init__(self, calls: list):
        self.calls = calls

    def predict(self, texts, progress=None):
        self.calls.append(list(texts))
        return pd.DataFrame({"count_chars": [len(t) for t in texts], "long": [len(t) > 5 for t in texts]})

    def describe(self):
        return {"backend": "offline", "model": "character counter"}


class CountTask(Task):
    name = "count"
    title = "Count"
    description = "Counts characters; for tests."
    Config = CountConfig
    chunk_size = 3
    row_flags = {"long": "more than five characters"}

    def __init__(self):
        self.calls: list[list[str]] = []
        self.loads = 0

    def load(self, config, context=None):
        self.loads += 1
        return CountPredictor(self.calls)


TEXTS = ["a", "", "hello world", "abc", "  ", "abcdefgh", "xy", "z"]


def test_rows_stay_aligned_empty_texts_get_empty_rows_and_flags_are_counted_not_kept():
    task = CountTask()
    done = execute(task, TEXTS, MemoryStore(), config=CountConfig())
    assert done.result["doc_id"].tolist() == [str(i) for i in range(len(TEXTS))]
    chars = done.result["count_chars"]
    assert chars[0] == 1 and pd.isna(chars[1]) and chars[2] == 11 and pd.isna(chars[4])
    assert "long" not in done.result.columns
    assert done.row_flags == {"long": 2} and done.row_examples == {"long": ["2", "5"]}
    assert done.n_items == 6 and done.resumed_from == 0
    assert [len(c) for c in task.calls] == [3, 3]  # six non-empty texts in chunks of three


def test_a_store_with_finished_chunks_is_resumed_without_recomputing_them():
    task = CountTask()
    store = MemoryStore()
    execute(task, TEXTS, store, config=CountConfig())
    first_chunk = task.calls[0]
    del store.chunks[1]  # as if the run stopped after its first chunk
    task.calls.clear()
    seen = []
    again = execute(task, TEXTS, store, config=CountConfig(), progress=lambda d, t, r: seen.append((d, t)))
    assert task.calls and first_chunk not in task.calls  # only the missing chunk ran
    assert again.resumed_from == 3 and seen[0] == (3, 6) and seen[-1] == (6, 6)
    assert again.result["count_chars"].notna().sum() == 6


def test_a_resumed_run_keeps_its_first_chunk_plan_and_refuses_a_changed_corpus():
    task = CountTask()
    store = MemoryStore()
    execute(task, TEXTS, store, config=CountConfig())
    task.chunk_size = 4  # a newer default: the stored plan still decides
    del store.chunks[1]
    task.calls.clear()
    execute(task, TEXTS, store, config=CountConfig())
    assert [len(c) for c in task.calls] == [3]
    with pytest.raises(TextlabError, match="corpus changed"):
        execute(task, TEXTS + ["one more"], store, config=CountConfig())


def test_cancel_is_asked_before_each_chunk_and_finished_chunks_are_kept():
    task = CountTask()
    store = MemoryStore()
    asked = []

    def cancelled():
        asked.append(1)
        return len(asked) > 1  # let the first chunk through

    with pytest.raises(JobCancelled):
        execute(task, TEXTS, store, config=CountConfig(), cancelled=cancelled)
    assert store.finished() == {0}


def test_side_channel_columns_must_be_declared_row_flags():
    class Sneaky(CountPredictor):
        def predict(self, texts, progress=None):
            return super().predict(texts).assign(_secret=True)

    class SneakyTask(CountTask):
        def load(self, config, context=None):
            return Sneaky(self.calls)

    with pytest.raises(TextlabError, match="row_flags"):
        execute(SneakyTask(), TEXTS, MemoryStore(), config=CountConfig())


def test_a_backend_that_drops_rows_is_refused():
    class Short(CountPredictor):
        def predict(self, texts, progress=None):
            return super().predict(texts).iloc[:-1]

    class ShortTask(CountTask):
        def load(self, config, context=None):
            return Short(self.calls)

    with pytest.raises(TextlabError, match="returned 2 results for 3 texts"):
        execute(ShortTask(), TEXTS, MemoryStore(), config=CountConfig())


def test_checkpoints_of_a_project_run_survive_and_old_underscore_flags_are_read(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    frame = pd.DataFrame({"text": TEXTS})
    project = workspace.create_project("p", build_corpus(frame, "text"))
    task = CountTask()
    store = CheckpointStore(project, "run1")
    ids = project.corpus().doc_ids
    execute(task, TEXTS, store, config=CountConfig(), doc_ids=ids)
    assert store.plan_path.exists() and store.finished() == {0, 1}
    # A checkpoint written by a Textlab that named flags "_long" counts the same.
    legacy = store.parts(2)[1].rename(columns={"long": "_long"})
    project.write_checkpoint("run1", 1, legacy)
    task.calls.clear()
    again = execute(task, TEXTS, CheckpointStore(project, "run1"), config=CountConfig(), doc_ids=ids)
    assert task.calls == [] and again.row_flags == {"long": 2}
    assert again.result["doc_id"].tolist() == ids


def test_run_takes_a_name_a_dict_or_keywords():
    texts = ["fine", "", "awful"]
    a = run("stats", texts)
    b = run("stats", texts, {})
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 3
    with pytest.raises(TextlabError, match="frame has 2 rows"):
        run("stats", texts, frame=pd.DataFrame({"x": [1, 2]}))
