"""What survives a refresh: the open project (in the URL), the codebook being written and the
coding settings (in the project)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from analysis.workspace import Workspace
from tests.paths import ROOT
from tests.test_pages import goto, load_sample, new_app, texts_of


def reopened(project_id: str, page: str) -> AppTest:
    """A new browser session (F5, a closed tab, a restarted server) on a page's URL."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = project_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return goto(at, page)


def open_project_id(home) -> str:
    (info,) = Workspace(home).list_projects()
    return info.id


def test_codebook_and_method_survive_a_refresh(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    name = next(t for t in at.text_input if t.label == "Name")
    name.set_value("Policy issues, draft 2").run()
    at.radio(key="coding_method").set_value("few-shot").run()
    assert not at.exception

    again = reopened(open_project_id(home), "pages/coding.py")
    assert next(t for t in again.text_input if t.label == "Name").value == "Policy issues, draft 2"
    assert again.radio(key="coding_method").value == "few-shot"
    assert not again.error  # no red error above the results after a refresh


def test_an_empty_codebook_is_an_invitation_not_an_error(home, tmp_path):
    from analysis.corpus import load_corpus

    corpus, _ = load_corpus(ROOT / "sample_data" / "policy_survey.csv")
    corpus.source = str(tmp_path / "other.csv")  # not the sample: no sample codebook preloaded
    project = Workspace(home).create_project("other", corpus)
    at = reopened(project.id, "pages/coding.py")
    assert not at.error
    assert "Write your codes" in texts_of(at.info)


def test_a_runs_codebook_can_be_reopened(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    pid = open_project_id(home)
    project = Workspace(home).project(pid)
    book = {"name": "Old book", "codes": [{"label": "Housing"}, {"label": "Transport"}]}
    project.create_run("coding", {"codebook": book, "method": "zero-shot"}, n_total=0, status="failed")
    at = reopened(pid, "pages/coding.py")
    at.selectbox(key="cb_run_pick").select_index(0).run()
    at.button(key="cb_use_run").click().run()
    assert not at.exception
    assert next(t for t in at.text_input if t.label == "Name").value == "Old book"


def test_the_open_project_stays_in_the_url_on_every_page(home):
    at = load_sample(new_app())
    pid = open_project_id(home)
    for page in ("pages/stats.py", "pages/coding.py", "pages/explore.py", "pages/export.py", "pages/data.py"):
        at = goto(at, page)  # a page switch starts without query parameters
        assert at.query_params.get("project") in (pid, [pid]), page
    # F5 / a bookmark / a restarted server: a new session on the URL opens the project.
    again = reopened(pid, "pages/stats.py")
    assert "No project is open" not in texts_of(again.info)
    first_run = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    first_run.query_params["project"] = pid
    first_run.run()  # (AppTest keeps the sidebar of a session's first run only)
    links = [el.proto for el in first_run.sidebar if getattr(el, "type", None) == "page_link"]
    assert len(links) == 12  # every page, each link carrying the open project
    assert all(f"project={pid}" in link.query_string for link in links)


def test_two_projects_with_the_same_name_and_size_stay_apart(home):
    from analysis.corpus import load_corpus

    corpus, _ = load_corpus(ROOT / "sample_data" / "policy_survey.csv")
    ws = Workspace(home)
    first = ws.create_project("Survey", corpus)
    second = ws.create_project("Survey", corpus)
    at = reopened(first.id, "pages/stats.py")
    at.button(key="submit_stats").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params.get("project") in (first.id, [first.id])
    assert [r.task for r in first.runs()] == ["stats"] and second.runs() == []
    # The browser reports the picked entry by its label: equal labels swap projects on a rerun.
    first_run = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    first_run.query_params["project"] = first.id
    first_run.run()  # (AppTest keeps the sidebar of a session's first run only)
    labels = first_run.selectbox(key="sidebar_project").options
    assert len(labels) == 2 and len(set(labels)) == 2


def test_dates_without_a_known_order_leave_out_the_time_chart_not_the_page(home):
    """04/03 could be 4 March or 3 April: the time chart says so and the rest of the page renders."""
    import pandas as pd

    from analysis.corpus import Corpus
    from analysis.jobs import JobManager

    texts = ["Rents went up again.", "The buses are late.", "Great new clinic!", "Bills are crazy."] * 3
    dates = ["04/03/2021", "05/06/2021", "01/02/2021", "07/08/2021"] * 3  # no day above 12: order unknown
    data = pd.DataFrame({"doc_id": [f"d{i}" for i in range(12)], "text": texts, "when": dates})
    project = Workspace(home).create_project("dated", Corpus(data=data, text_column="text", date_column="when"))
    manager = JobManager(project.workspace)
    manager.submit(project, "sentiment", {"backend": "offline"})
    assert manager.wait(120)
    at = reopened(project.id, "pages/sentiment.py")
    assert "Charts over time are left out" in texts_of(at.warning)
    assert at.radio(key="sent_order")  # the close reading below still renders
