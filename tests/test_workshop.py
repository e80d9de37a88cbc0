"""Workshop mode, library level: participants and their tokens, private workspaces, limits,
broadcasts, and the fair scheduling of one worker between participants."""

import time

import pandas as pd
import pytest

import tests.slow_task  # noqa: F401  (registers the "slow" task)
from analysis.corpus import build_corpus
from analysis.errors import TextlabError
from analysis.jobs import JobManager, Scheduler
from analysis.workshop import FairQueue, Limits, Workshop
from analysis.workspace import Workspace


def corpus_of(texts):
    return build_corpus(pd.DataFrame({"text": texts}), "text", source="mem")


@pytest.fixture
def workshop(tmp_path):
    ws, shown = Workshop.configure(tmp_path / "server", join_code="room-42", facilitator_code="lead-7777")
    assert shown == {"join_code": "room-42", "facilitator_code": "lead-7777"}
    return ws


def test_joining_gives_a_private_workspace_and_a_token_that_cannot_be_forged(workshop):
    ana, token = workshop.join("room-42", "Ana")
    ben, ben_token = workshop.join("room-42", "  Ben   Ng ")
    assert ben.name == "Ben Ng" and ana.id != ben.id
    assert workshop.participant(token) == ana and workshop.participant(ben_token) == ben
    assert workshop.workspace_root(ana.id) != workshop.workspace_root(ben.id)
    assert workshop.workspace_root(ana.id).is_dir()
    # Forged, altered or foreign tokens are nobody.
    assert workshop.participant(f"{ana.id}.{'0' * 64}") is None
    assert workshop.participant(f"{ben.id}.{token.split('.')[1]}") is None  # Ana's signature on Ben's id
    assert workshop.participant("") is None and workshop.participant("../../etc.x") is None
    with pytest.raises(TextlabError, match="not a participant id|Not a participant id"):
        workshop.workspace_root("../" + ana.id)
    # Wrong code, a taken name (in any case), a bad name.
    with pytest.raises(TextlabError, match="join code"):
        workshop.join("room-43", "Cleo")
    with pytest.raises(TextlabError, match="already joined"):
        workshop.join("room-42", "ANA")
    with pytest.raises(TextlabError, match="Choose a name"):
        workshop.join("room-42", "<script>")
    # The codes are kept as salted hashes only.
    config = (workshop.folder / "config.json").read_text()
    assert "room-42" not in config and "lead-7777" not in config
    assert workshop.is_facilitator("lead-7777") and not workshop.is_facilitator("room-42")


def test_a_reset_removes_everyone_and_their_tokens_stop_working(workshop):
    ana, token = workshop.join("room-42", "Ana")
    project_folder = workshop.workspace_root(ana.id)
    Workspace(project_folder).create_project("survey", corpus_of(["a", "b"]))
    assert workshop.reset() == 1
    assert workshop.participants() == [] and not project_folder.exists()
    assert workshop.participant(token) is None
    again, _ = workshop.join("room-42", "Ana")  # the name is free again
    assert again.id != ana.id


def test_limits_say_what_is_over_and_what_to_do(tmp_path):
    workshop, shown = Workshop.configure(tmp_path, limits=Limits(upload_mb=1, rows_per_project=100, quota_mb=0.01,
                                                                  max_participants=1))
    assert len(shown["join_code"]) >= 4 and len(shown["facilitator_code"]) >= 4  # made up, shown once
    person, _ = workshop.join(shown["join_code"], "Ana")
    with pytest.raises(TextlabError, match="at most 1 MB"):
        workshop.check_upload(2_000_000)
    with pytest.raises(TextlabError, match="at most 100"):
        workshop.check_rows(101)
    workshop.check_rows(100)
    (workshop.workspace_root(person.id) / "big.bin").write_bytes(b"x" * 20_000)
    with pytest.raises(TextlabError, match="Delete a project"):
        workshop.check_quota(person.id)
    with pytest.raises(TextlabError, match="workshop is full"):
        workshop.join(shown["join_code"], "Ben")
    # Reconfiguring without codes keeps the old ones.
    again, shown_again = Workshop.configure(tmp_path)
    assert shown_again == {} and again.is_facilitator(shown["facilitator_code"])
    with pytest.raises(TextlabError, match="positive"):
        Limits.from_dict({"quota_mb": 0})
    with pytest.raises(TextlabError, match="must differ"):
        Workshop.configure(tmp_path, join_code=shown["facilitator_code"])
    with pytest.raises(TextlabError, match="must differ"):
        Workshop.configure(tmp_path / "other", join_code="same-code", facilitator_code="same-code")


def test_broadcasts_are_kept_for_present_and_future_participants(workshop):
    item = workshop.broadcast("dataset", "Exercise corpus", b"text\nhello\n", "../../exercise.csv",
                              {"text_column": "text"})
    assert item.file == "exercise.csv"  # a name, never a path
    assert workshop.broadcast_path(item).read_bytes() == b"text\nhello\n"
    assert [b.name for b in workshop.broadcasts("dataset")] == ["Exercise corpus"]
    assert workshop.broadcasts("codebook") == []


def test_the_fair_queue_serves_owners_in_turn_and_says_who_is_ahead():
    queue = FairQueue()
    for item in ("a1", "a2", "a3"):
        queue.put("A", item)
    queue.put("B", "b1")
    queue.put("C", "c1")
    predicted = queue.ahead("A", "a3")
    assert [i for _, i in predicted] == ["a1", "b1", "c1", "a2"]
    assert queue.ahead("C", "c1") == [("A", "a1"), ("B", "b1")]
    served = [queue.get(timeout=0)[1] for _ in range(5)]
    assert served == ["a1", "b1", "c1", "a2", "a3"]
    assert queue.get(timeout=0) is None
    # A newcomer after A's turn goes before A's next run.
    queue.put("A", "a4")
    queue.put("A", "a5")
    assert queue.get(timeout=0)[1] == "a4"
    queue.put("D", "d1")
    assert [queue.get(timeout=0)[1] for _ in range(2)] == ["d1", "a5"]


def test_one_worker_serves_every_participant_and_a_small_run_is_not_stuck_behind_a_big_one(tmp_path):
    scheduler = Scheduler(time_slice=0.2)
    big_ws, small_ws = Workspace(tmp_path / "ana"), Workspace(tmp_path / "ben")
    big = JobManager(big_ws, scheduler=scheduler, queue_limit=2)
    small = JobManager(small_ws, scheduler=scheduler, queue_limit=2)
    big_project = big_ws.create_project("big", corpus_of([f"long text {i}" for i in range(400)]))
    small_project = small_ws.create_project("small", corpus_of([f"short {i}" for i in range(10)]))
    big_run = big.submit(big_project, "slow", {"delay": 0.005})  # 400 texts: about 2 s
    time.sleep(0.3)
    small_run = small.submit(small_project, "slow", {"delay": 0.005})
    assert small.wait(30) and small_ws.run(small_run.id).status == "done"
    # The big one stepped aside for it and is still going; it finishes, whole, afterwards.
    assert big_ws.run(big_run.id).status in ("queued", "running")
    assert big.wait(60)
    done = big_ws.run(big_run.id)
    assert done.status == "done" and done.n_done == 400
    result = big_project.result(big_run.id)
    assert len(result) == 400 and result["slow_chars"].tolist()[:1] == [len("long text 0")]
    # The two workspaces never see each other's runs.
    assert [r.id for r in big_project.runs()] == [big_run.id]
    assert [r.id for r in small_project.runs()] == [small_run.id]


def test_runs_of_equal_size_finish_one_after_the_other_not_all_together(tmp_path):
    scheduler = Scheduler(time_slice=0.1)
    managers = [JobManager(Workspace(tmp_path / name), scheduler=scheduler) for name in ("ana", "ben")]
    projects = [m.workspace.create_project("p", corpus_of([f"text {i}" for i in range(150)])) for m in managers]
    first = managers[0].submit(projects[0], "slow", {"delay": 0.005})
    time.sleep(0.3)
    second = managers[1].submit(projects[1], "slow", {"delay": 0.005})
    assert all(m.wait(60) for m in managers)
    a, b = managers[0].workspace.run(first.id), managers[1].workspace.run(second.id)
    assert a.status == b.status == "done"
    assert b.started >= a.finished  # Ana's run, already under way, was not paused for Ben's of the same size


def test_a_participant_may_queue_only_so_many_runs(tmp_path):
    ws = Workspace(tmp_path / "ana")
    manager = JobManager(ws, scheduler=Scheduler(), queue_limit=1)
    project = ws.create_project("p", corpus_of([f"t {i}" for i in range(50)]))
    first = manager.submit(project, "slow", {"delay": 0.01})
    with pytest.raises(TextlabError, match="wait for one to finish, or cancel one"):
        manager.submit(project, "slow", {"delay": 0.0})
    manager.cancel(first.id)
    assert manager.wait(30)
    manager.submit(project, "slow", {"delay": 0.0})  # room again
    assert manager.wait(30)


def test_a_queued_run_knows_how_many_runs_are_ahead_and_about_how_long_they_take(tmp_path):
    scheduler = Scheduler(time_slice=60)  # no stepping aside here
    managers = [JobManager(Workspace(tmp_path / name), scheduler=scheduler) for name in ("ana", "ben", "cleo")]
    projects = [m.workspace.create_project("p", corpus_of([f"text {i}" for i in range(120)])) for m in managers]
    first = managers[0].submit(projects[0], "slow", {"delay": 0.01})  # 120 texts, about 1.2 s
    deadline = time.monotonic() + 10
    while not managers[0].workspace.run(first.id).docs_per_s and time.monotonic() < deadline:
        time.sleep(0.05)
    second = managers[1].submit(projects[1], "slow", {"delay": 0.01})
    third = managers[2].submit(projects[2], "slow", {"delay": 0.01})
    ahead, seconds = managers[2].waiting(third.id)
    assert ahead == 2  # the running one and ben's
    assert seconds is not None and 1.0 < seconds < 10  # what is left of the first and all of the second (1.2 s)
    assert managers[1].waiting(second.id)[0] == 1
    assert all(m.wait(60) for m in managers)


def test_a_broadcast_dataset_reaches_everyone_and_their_codes_are_compared(workshop):
    import krippendorff

    from analysis.workshop import agreement_between_participants, code_agreement_table

    ana, _ = workshop.join("room-42", "Ana")
    csv = "id,text\n" + "".join(f"r{i},Answer number {i} about housing\n" for i in range(12))
    item = workshop.broadcast("dataset", "Exercise", csv.encode(), "exercise.csv", {"text_column": "text",
                                                                                 "id_column": "id"})
    assert len(workshop.deliver(ana.id)) == 1 and workshop.deliver(ana.id) == []  # once each
    ben, _ = workshop.join("room-42", "Ben")
    workshop.deliver(ben.id)  # a late joiner gets it too
    delivered = workshop.delivered(item.id)
    assert set(delivered) == {ana.id, ben.id}
    projects = {pid: Workspace(workshop.workspace_root(pid)).project(project_id)
                for pid, project_id in delivered.items()}
    assert all(p.info.rows == 12 for p in projects.values())
    codes = ["Housing", "Other"] * 6
    projects[ana.id].save_annotations("Ana", {f"r{i}": codes[i] for i in range(10)})
    projects[ben.id].save_annotations("Ben", {f"r{i}": codes[i] if i < 8 else "Housing" for i in range(11)})
    table, notes = code_agreement_table(workshop.codes_of(item.id))
    assert list(table.columns) == ["Ana", "Ben"] and len(table) == 10  # r10 coded by Ben only
    assert notes == ["1 text(s) coded by one participant only are left out."]
    pairs, alpha = agreement_between_participants(table)
    row = pairs.iloc[0]
    assert (row["coder_a"], row["coder_b"], row["texts"]) == ("Ana", "Ben", 10)
    assert row["agreement"] == 0.9  # r9: Other against Housing
    assert 0 < row["cohen_kappa"] < 1
    codes_as_numbers = table.replace({"Housing": 0, "Other": 1}).to_numpy(dtype=float).T
    assert alpha == krippendorff.alpha(reliability_data=codes_as_numbers, level_of_measurement="nominal")


def test_a_run_just_submitted_is_never_taken_for_an_abandoned_one(tmp_path):
    # Found in the 30-participant load test: submit wrote the run, then its owner; a watcher
    # looking in between took the run for a dead process's and marked it 'interrupted'.
    ws = Workspace(tmp_path / "ana")
    manager = JobManager(ws, scheduler=Scheduler())
    project = ws.create_project("p", corpus_of(["a", "b"]))
    run = project.create_run("slow", {"delay": 0.0}, 2, owner=manager.owner)
    assert ws.run(run.id).owner == manager.owner
    assert manager.resume_interrupted() == [] and ws.run(run.id).status == "queued"
    orphan = project.create_run("slow", {"delay": 0.0}, 2)  # a run nobody owns is still taken over
    assert manager.resume_interrupted() == [orphan.id]
    assert manager.wait(30)
