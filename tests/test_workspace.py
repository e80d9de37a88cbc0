
import pandas as pd
import pytest

from analysis.corpus import build_corpus
from analysis.errors import TextlabError
from analysis.workspace import Workspace, config_hash, corpus_hash, parquet_safe


def make_corpus(n=5, **roles):
    df = pd.DataFrame({"answer": [f"text number {i}" for i in range(n)], "region": ["N", "S"] * (n // 2) + ["N"] * (n % 2)})
    return build_corpus(df, "answer", source="t.csv", **roles)


def test_project_round_trip_survives_a_new_workspace_object(home):
    corpus = make_corpus(group_column="region")
    project = Workspace().create_project("My survey", corpus, import_report={"rows": 5})
    # A new Workspace object stands for a server restart: everything is read from disk.
    again = Workspace().project(project.id)
    info = again.info
    assert (info.name, info.rows, info.text_column, info.group_column) == ("My survey", 5, "answer", "region")
    assert info.import_report == {"rows": 5}
    loaded = again.corpus()
    pd.testing.assert_frame_equal(loaded.data, corpus.data)
    assert Workspace().list_projects()[0].id == project.id


def test_default_root_is_textlab_home(home):
    assert Workspace().root == home.resolve()
    assert (home / "textlab.sqlite").exists()


def test_runs_results_and_manifests(home):
    project = Workspace().create_project("p", make_corpus())
    run = project.create_run("stats", {"seed": 0}, n_total=5)
    assert run.status == "queued" and run.config == {"seed": 0}
    assert project.find_run("stats", {"seed": 0}, ("queued",)).id == run.id
    assert project.find_run("stats", {"seed": 1}, ("queued",)) is None
    result = pd.DataFrame({"doc_id": project.corpus().doc_ids[::-1], "stats_words": [5, 4, 3, 2, 1]})
    project.write_result(run.id, result, {"task": "stats"})
    project.workspace.update_run(run.id, status="done")
    frame = project.results_frame()
    # Results are aligned by doc_id, not by position.
    assert frame["stats_words"].tolist() == [1, 2, 3, 4, 5]
    assert list(frame.columns[:3]) == ["doc_id", "answer", "region"]
    assert project.manifests() == [{"task": "stats"}]


def test_result_missing_is_a_clear_error(home):
    project = Workspace().create_project("p", make_corpus())
    run = project.create_run("stats", {}, n_total=5)
    with pytest.raises(TextlabError, match="no result yet"):
        project.result(run.id)


def test_checkpoints_are_atomic_and_listed(home):
    project = Workspace().create_project("p", make_corpus())
    run = project.create_run("stats", {}, n_total=5)
    project.write_checkpoint(run.id, 1, pd.DataFrame({"doc_id": ["a"], "x": [1]}))
    project.write_checkpoint(run.id, 0, pd.DataFrame({"doc_id": ["b"], "x": [2]}))
    assert sorted(project.checkpoints(run.id)) == [0, 1]
    leftovers = list((project.run_folder(run.id) / "chunks").glob(".*tmp"))
    assert leftovers == []


def test_claim_run_is_exclusive(home):
    ws = Workspace()
    project = ws.create_project("p", make_corpus())
    run = project.create_run("stats", {}, n_total=5)
    assert ws.claim_run(run.id, "a", ("queued",))
    assert not ws.claim_run(run.id, "b", ("queued",))
    assert ws.run(run.id).owner == "a"


def test_delete_project(home):
    ws = Workspace()
    project = ws.create_project("p", make_corpus())
    ws.delete_project(project.id)
    assert ws.list_projects() == []
    assert not project.folder.exists()
    with pytest.raises(TextlabError, match="No project"):
        ws.project(project.id)


def test_hashes_are_stable_and_sensitive():
    a, b = make_corpus(), make_corpus()
    assert corpus_hash(a) == corpus_hash(b)
    b.data.loc[0, "answer"] = "changed"
    assert corpus_hash(a) != corpus_hash(b)
    assert config_hash("stats", {"a": 1, "b": 2}) == config_hash("stats", {"b": 2, "a": 1})


def test_parquet_safe_keeps_plain_columns_and_stringifies_mixed(tmp_path):
    df = pd.DataFrame({"mixed": [1, "two", None], "n": [1, 2, 3]})
    safe = parquet_safe(df)
    assert safe["mixed"].tolist()[:2] == ["1", "two"] and safe["n"].tolist() == [1, 2, 3]
    safe.to_parquet(tmp_path / "x.parquet")


def test_unwritable_workspace_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TextlabError, match="TEXTLAB_HOME"):
        Workspace(blocker / "ws")


def test_a_workspace_from_before_the_stage_column_is_upgraded(home):
    import sqlite3

    project = Workspace().create_project("old", make_corpus())
    run = project.create_run("stats", {}, n_total=5)
    with sqlite3.connect(home / "textlab.sqlite") as con:  # the runs table as an older Textlab made it
        con.execute("ALTER TABLE runs DROP COLUMN stage")
    ws = Workspace()
    assert ws.run(run.id).stage is None
    ws.update_run(run.id, stage="Fine-tuning: step 3 of 10")
    assert Workspace().run(run.id).stage == "Fine-tuning: step 3 of 10"
