
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


# --------------------------------------------------------------------------- hand-coding samples

def sample_project(n=60):
    corpus = make_corpus(n)
    corpus.data["code"] = ["A"] * (n * 2 // 3) + ["B"] * (n - n * 2 // 3 - 2) + [None, None]
    return Workspace().create_project("sampled", corpus)


def test_a_recorded_sample_survives_a_new_workspace_object(home):
    from analysis.validation import draw_sample

    project = sample_project()
    assert project.sample_design() is None and project.current_sample_ids() == [] and project.sample_records() == []
    draw = draw_sample(project.results_frame(), 12, design="stratified_equal", by="code", seed=7)
    stored = project.record_sample(draw)
    assert stored["design_id"] == stored["sample_id"] == draw.record["sample_id"]
    assert stored["current"] is True and stored["continues"] is False and "docs" not in stored
    assert project.record_sample(draw) == stored  # recording it twice changes nothing
    again = Workspace().project(project.id)  # a restart: everything from disk
    assert again.current_sample_ids() == draw.doc_ids
    design = again.sample_design()
    assert {k: design[k] for k in ("design", "by", "seeds", "n", "total_drawn", "population")} == {
        "design": "stratified_equal", "by": "code", "seeds": [7], "n": 12, "total_drawn": 12, "population": 60}
    assert design["strata"] == {"(missing)": {"size": 2, "drawn": 2}, "A": {"size": 40, "drawn": 5},
                                "B": {"size": 18, "drawn": 5}}
    assert [s["sample_id"] for s in design["samples"]] == [stored["sample_id"]] and design["samples"][0]["n"] == 12
    assert (project.folder / "samples.parquet").exists() and (project.folder / "samples.json").exists()


def test_successive_draws_of_one_design_add_up_with_the_first_draws_sizes(home):
    project = sample_project()
    frame = project.results_frame()
    first = project.new_sample(frame, 10, design="stratified_equal", by="code", seed=0)
    second = project.new_sample(frame, 9, design="stratified_equal", by="code", seed=0)
    assert second.record["continues"] and second.record["design_id"] == first.record["sample_id"]
    assert second.record["seed"] == 1  # a used seed is replaced: the same numbers would not give a random union
    assert not set(first.doc_ids) & set(second.doc_ids)
    # The second draw's pool is the first's less the drawn texts ...
    assert second.record["strata"]["A"]["size"] == 40 - first.record["strata"]["A"]["drawn"]
    design = project.sample_design()
    assert design["n"] == 19 and design["seeds"] == [0, 1] and len(design["samples"]) == 2
    assert project.current_sample_ids() == first.doc_ids + second.doc_ids
    # ... but the union's N_s is the first draw's stratum size.
    assert {s: v["size"] for s, v in design["strata"].items()} == {"(missing)": 2, "A": 40, "B": 18}
    assert sum(v["drawn"] for v in design["strata"].values()) == 19
    member = project.sample_membership().set_index(frame["doc_id"])
    drawn = member.loc[first.doc_ids + second.doc_ids]
    assert drawn["stratum_size"].tolist() == [{"A": 40.0, "B": 18.0, "(missing)": 2.0}[s] for s in drawn["sample_stratum"]]
    assert (drawn["sample_stratum"] == frame.set_index("doc_id").loc[drawn.index, "code"].fillna("(missing)")).all()
    # A draw from the right pool with a seed the design already used is refused.
    from analysis.validation import draw_sample

    clash = draw_sample(frame, 3, design="stratified_equal", by="code", seed=1,
                        exclude=project.current_sample_ids())
    with pytest.raises(TextlabError, match="seed 1 was already used"):
        project.record_sample(clash)


def test_another_design_or_changed_strata_start_a_new_current_design(home):
    from analysis.validation import draw_sample

    project = sample_project()
    frame = project.results_frame()
    simple = project.new_sample(frame, 8, design="simple_random", seed=0)
    assert project.sample_design()["strata"] == {"(all)": {"size": 60, "drawn": 8}}
    stratified = project.new_sample(frame, 6, design="stratified_proportional", by="code", seed=0)
    assert not stratified.record["continues"]
    design = project.sample_design()
    assert design["design"] == "stratified_proportional" and design["n"] == 6 and design["population"] == 60
    assert project.current_sample_ids() == stratified.doc_ids  # drawn from every text, not only the undrawn
    records = project.sample_records()  # the history is kept, marked not current
    assert [(r["sample_id"], r["current"]) for r in records] == [
        (simple.record["sample_id"], False), (stratified.record["sample_id"], True)]
    # The same design and column, but the column's values changed (the model was run again): a new design.
    changed = frame.assign(code=frame["code"].fillna("B")[::-1].to_numpy())
    redo = project.new_sample(changed, 4, design="stratified_proportional", by="code", seed=0)
    assert not redo.record["continues"] and project.sample_design()["n"] == 4
    # The same design from another pool (texts left out that the design did not draw): a new design.
    other = draw_sample(changed, 4, design="stratified_proportional", by="code", seed=5, exclude=["d0", "d1"])
    assert project.record_sample(other)["continues"] is False
    assert sum(r["current"] for r in project.sample_records()) == 1 and len(project.sample_records()) == 4
    member = project.sample_membership()
    assert member["sample_stratum"].notna().sum() == 4


def test_sample_membership_is_aligned_to_the_corpus_rows(home):
    project = sample_project()
    empty = project.sample_membership()
    assert list(empty.columns) == ["sample_stratum", "stratum_size"] and len(empty) == 60
    assert empty["sample_stratum"].isna().all() and empty["stratum_size"].isna().all()
    frame = project.results_frame()
    draw = project.new_sample(frame, 10, design="simple_random", seed=3)
    member = project.sample_membership()
    assert member.index.equals(project.human_codes().index) and member.index.equals(frame.index)
    assert member["sample_stratum"].dtype == object and member["stratum_size"].dtype == float
    chosen = frame["doc_id"].isin(draw.doc_ids).to_numpy()
    assert (member.loc[chosen, "sample_stratum"] == "(all)").all() and (member.loc[chosen, "stratum_size"] == 60).all()
    assert member.loc[~chosen, "sample_stratum"].map(lambda v: v is None).all()
    assert member.loc[~chosen, "stratum_size"].isna().all()


def test_sample_records_are_written_under_the_lock_and_concurrent_draws_lose_nothing(home, monkeypatch):
    import threading

    import analysis.workspace as workspace
    from analysis.validation import draw_sample

    project = sample_project()
    frame = project.results_frame()
    locked = []

    class Recording(workspace._FileLock):
        def __enter__(self):
            out = super().__enter__()
            locked.append(self.path.name)
            return out

    monkeypatch.setattr(workspace, "_FileLock", Recording)
    draws = [draw_sample(frame, 3, design="simple_random", seed=i) for i in range(6)]

    def work(draw):
        project.record_sample(draw)

    threads = [threading.Thread(target=work, args=(d,)) for d in draws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert locked.count(".samples.lock") == 6
    records = project.sample_records()
    assert sorted(r["sample_id"] for r in records) == sorted(d.record["sample_id"] for d in draws)
    assert sum(r["current"] for r in records) == 1
    table = pd.read_parquet(project.folder / "samples.parquet")
    assert list(table.columns) == ["doc_id", "sample_id", "stratum"] and len(table) == 18
    assert not list(project.folder.glob(".samples*.tmp"))


def test_sample_records_refuse_foreign_texts_and_say_when_damaged(home):
    from analysis.validation import draw_sample

    project = sample_project()
    other = pd.DataFrame({"doc_id": ["x1", "x2", "x3"]})
    with pytest.raises(TextlabError, match="not texts of this project"):
        project.record_sample(draw_sample(other, 2, design="simple_random"))
    with pytest.raises(TextlabError, match="not a drawn sample"):
        project.record_sample({"design": "simple_random", "docs": []})
    frame = project.results_frame()
    project.new_sample(frame, 60, design="simple_random")
    with pytest.raises(TextlabError, match="nothing left to add"):
        project.new_sample(frame, 5, design="simple_random")
    (project.folder / "samples.json").write_text("{broken")
    with pytest.raises(TextlabError, match="damaged"):
        project.sample_design()
