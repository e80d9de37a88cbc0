import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import tests.slow_task  # noqa: F401  (registers the "slow" task)
from analysis.corpus import build_corpus
from analysis.errors import JobCancelled, TaskNotAvailable, TextlabError
from analysis.jobs import JobManager, execute_run, make_owner, owner_is_dead
from analysis.tasks.execute import run as run_in_memory
from analysis.tasks import get_task
from analysis.workspace import Workspace
from tests.paths import ROOT
from tests.slow_task import logged_chunks


def corpus_of(texts):
    return build_corpus(pd.DataFrame({"text": texts}), "text", source="mem")


def test_run_in_memory_keeps_rows_and_gives_empty_texts_empty_results():
    texts = ["Hello world. Second sentence!", "", "   ", "Bonjour tout le monde, comment allez-vous aujourd'hui ?"]
    out = run_in_memory(get_task("stats"), texts, get_task("stats").Config())
    assert len(out) == 4
    assert out["stats_words"].tolist() == [4, 0, 0, 7]  # "allez-vous", "aujourd'hui" are one word each
    assert out["stats_sentences"].tolist()[0] == 2
    assert out.loc[3, "stats_language"] == "fr"
    assert pd.isna(out.loc[1, "stats_language"])


def test_job_manager_runs_a_job_and_records_progress_and_manifest(home):
    ws = Workspace()
    project = ws.create_project("p", corpus_of([f"text {i}" for i in range(25)] + [""]))
    manager = JobManager(ws)
    run = manager.submit(project, "slow", {"delay": 0.0})
    assert manager.wait(30)
    run = ws.run(run.id)
    assert run.status == "done" and run.n_done == run.n_total == 25
    result = project.result(run.id)
    assert len(result) == 26 and result["slow_chars"].tolist()[:2] == [6, 6]
    manifest = project.manifest(run.id)
    assert manifest["rows"] == {"in": 26, "coded": 25, "empty": 1, "failed": 0}
    assert manifest["task"] == "slow" and manifest["input"]["hash_sha256"]
    assert manifest["packages"]["textlab"]


def test_submit_rejects_bad_settings_before_queueing(home):
    ws = Workspace()
    project = ws.create_project("p", corpus_of(["a"]))
    with pytest.raises(TextlabError, match="Unknown setting"):
        JobManager(ws).submit(project, "slow", {"nope": 1})
    with pytest.raises(TaskNotAvailable, match="Unknown task"):
        JobManager(ws).submit(project, "nonsense", {})
    assert project.runs() == []


def test_the_registry_lists_the_tasks_in_the_app_order_then_plugins():
    from analysis.tasks import available_tasks

    names = available_tasks()
    assert names[:6] == ["stats", "sentiment", "emotion", "coding", "summary", "topics"]
    assert "slow" in names[6:]  # registered by tests/slow_task.py
    assert all(get_task(name).name == name for name in names)
    with pytest.raises(TaskNotAvailable, match=r"Unknown task 'nonsense'\. Tasks: stats, sentiment, .*slow"):
        get_task("nonsense")


def test_cancel_stops_after_the_current_chunk_and_keeps_finished_chunks(home, tmp_path):
    ws = Workspace()
    project = ws.create_project("p", corpus_of([f"text {i}" for i in range(60)]))
    run = project.create_run("slow", {"delay": 0.02, "log": str(tmp_path / "log")}, n_total=60)
    owner = make_owner()

    def cancel_after_first_chunk(done, total, rate):
        if done >= 10:
            ws.update_run(run.id, cancel_requested=1)

    with pytest.raises(JobCancelled):
        execute_run(ws, run.id, owner=owner, on_progress=cancel_after_first_chunk)
    assert ws.run(run.id).status == "cancelled"
    kept = len(project.checkpoints(run.id))
    assert 1 <= kept < 6
    # Resuming computes only what is missing.
    manager = JobManager(ws)
    manager.retry(run.id)
    assert manager.wait(30)
    assert ws.run(run.id).status == "done"
    assert len(logged_chunks(tmp_path / "log")) == 6
    assert len(project.result(run.id)) == 60


def test_owner_liveness(tmp_path):
    assert not owner_is_dead(make_owner(), None)
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    assert owner_is_dead(f"{socket.gethostname()}:{proc.stdout.strip()}:x", None)
    assert owner_is_dead(None, None)
    assert owner_is_dead("elsewhere:1:x", "2000-01-01T00:00:00+00:00")


KILLED_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import tests.slow_task
from analysis.cli import main
sys.exit(main({argv!r}))
"""


def test_killed_cli_job_resumes_with_nothing_lost(home, tmp_path, monkeypatch):
    """kill -9 a `textlab analyze` mid-run; the same command resumes from its checkpoints."""
    n = 120
    frame = pd.DataFrame({"rid": [f"r{i:03d}" for i in range(n)], "text": [f"answer number {i}" for i in range(n)]})
    frame.loc[7, "text"] = ""  # an empty text must come through as an empty result
    source = tmp_path / "input.csv"
    frame.to_csv(source, index=False)
    log = tmp_path / "chunks.log"
    output = tmp_path / "out.csv"
    argv = ["analyze", str(source), "-o", str(output), "--task", "slow", "--id-column", "rid"]
    monkeypatch.setenv("SLOW_TASK_LOG", str(log))
    monkeypatch.setenv("SLOW_TASK_DELAY", "0.03")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT.format(root=str(ROOT), argv=argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(logged_chunks(log)) < 5 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not output.exists()

    ws = Workspace(home)
    (run,) = ws.runs_with_status("running")  # the dead process left it "running"
    project = ws.project_of(run)
    saved = project.checkpoints(run.id)
    assert 3 <= len(saved) < 12  # 119 non-empty texts in chunks of 10
    saved_first_texts = {pd.read_parquet(p)["slow_upper"].iloc[0].lower() for p in saved.values()}
    logged_before = len(logged_chunks(log))

    from analysis.cli import main

    assert main(argv) == 0
    recomputed = logged_chunks(log)[logged_before:]
    assert len(recomputed) == 12 - len(saved)
    assert not saved_first_texts & set(recomputed)  # no finished chunk was computed again
    result = pd.read_csv(output, keep_default_na=False)
    assert result["rid"].tolist() == frame["rid"].tolist()
    assert result["slow_chars"].tolist() == [len(t) for t in frame["text"]]
    assert ws.run(run.id).status == "done"
    manifest = project.manifest(run.id)
    assert manifest["resumed_from_checkpoint"] == 10 * len(saved)
    assert manifest["rows"] == {"in": n, "coded": n - 1, "empty": 1, "failed": 0}


# ---------------------------------------------------------------------- progress from the start (issue 10, 7)


class _LoadWatcher(get_task("slow").__class__):
    """The slow task, but its load looks at what the run record says meanwhile."""

    name = "slow_load_watch"
    seen: list = []

    def load(self, config, context=None):
        (run,) = Workspace().runs_with_status("running")
        type(self).seen.append(run.stage)
        return super().load(config, context)


def test_a_run_says_it_is_loading_the_model_while_it_loads(home):
    from analysis.tasks import register

    register(_LoadWatcher())
    ws = Workspace()
    project = ws.create_project("p", corpus_of([f"text {i}" for i in range(5)]))
    run = project.create_run("slow_load_watch", {"delay": 0.0}, n_total=5)
    stages: list[str] = []
    execute_run(ws, run.id, owner=make_owner(), on_stage=stages.append)
    assert _LoadWatcher.seen and _LoadWatcher.seen[-1].startswith("Loading the model")
    assert stages[0].startswith("Loading the model")
    assert ws.run(run.id).stage is None  # cleared once texts are predicted and when done


def test_zero_shot_coding_reports_progress_inside_its_only_chunk(home):
    """2,000 texts are one chunk of the coding task: progress must come per batch, not per chunk."""
    ws = Workspace()
    texts = [f"answer {i}: the buses are late and rents are rising in town number {i}" for i in range(120)]
    project = ws.create_project("p", corpus_of(texts))
    book = {"codes": [{"label": "Transport"}, {"label": "Housing"}]}
    run = project.create_run("coding", {"backend": "offline", "codebook": book, "batch_size": 8}, n_total=120)
    seen: list[int] = []
    execute_run(ws, run.id, owner=make_owner(), on_progress=lambda done, total, rate: seen.append(done))
    assert get_task("coding").chunk_size >= 120  # one chunk, as in the app
    inside = sorted({d for d in seen if 0 < d < 120})
    assert len(inside) >= 10  # 15 batches of 8: every batch moves the bar
    assert ws.run(run.id).status == "done"


@pytest.mark.slow
def test_topics_show_a_clustering_stage_after_the_embedding_pass(home):
    ws = Workspace()
    words = ["bus train rail", "rent landlord flat", "doctor clinic nurse"]
    texts = [f"{words[i % 3]} number {i}" for i in range(60)]
    project = ws.create_project("p", corpus_of(texts))
    run = project.create_run("topics", {"n_topics": 3}, n_total=60)
    stages: list[str] = []
    execute_run(ws, run.id, owner=make_owner(), on_stage=stages.append)
    assert any(s.startswith("Loading the model") for s in stages)
    assert any(s.startswith("Clustering") for s in stages)
    assert ws.run(run.id).status == "done" and ws.run(run.id).stage is None


def test_few_shot_coding_names_its_training_stages(home):
    ws = Workspace()
    texts = [f"the bus was late again, day {i}" if i % 2 else f"our rent went up again, month {i}" for i in range(20)]
    frame = pd.DataFrame({"text": texts, "code": ["Transport" if i % 2 else "Housing" for i in range(20)]})
    frame.loc[15:, "code"] = None
    project = ws.create_project("p", build_corpus(frame, "text", source="mem"))
    run = project.create_run("coding", {"labels_column": "code", "backend": "offline"}, n_total=20)
    stages: list[str] = []
    execute_run(ws, run.id, owner=make_owner(), on_stage=stages.append)
    assert stages[0].startswith("Loading the model")
    assert "Embedding the 15 coded rows" in stages and "Cross-validating the few-shot model" in stages
    assert ws.run(run.id).status == "done" and ws.run(run.id).stage is None
