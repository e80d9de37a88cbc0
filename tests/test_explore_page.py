"""AppTest of Explore: it offers every task's declared result columns, the latest run's label
column first, and never a free-text column as a category."""

from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from analysis.corpus import Corpus
from analysis.jobs import JobManager
from analysis.workspace import Workspace
from tests.paths import ROOT

TEXTS = ["Rents went up again and the landlord will not fix the heating.",
         "The buses are late every morning and the tram line was cut.",
         "We waited six hours in the emergency room for a doctor.",
         "Our rent is now half of what we earn each month.",
         "The new bike lanes make cycling to work safe.",
         "My clinic closed, the next one is an hour away."] * 2
BOOK = {"name": "Issues", "codes": [{"label": "Housing", "definition": "rent, landlords, homes"},
                                    {"label": "Transport", "definition": "buses, trams, roads, cycling"},
                                    {"label": "Health care", "definition": "doctors, clinics, hospitals"}]}


def project_with(home, runs: list[tuple[str, dict]]):
    ws = Workspace(home)
    data = pd.DataFrame({"doc_id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS,
                         "region": ["North", "South"] * (len(TEXTS) // 2)})
    project = ws.create_project("p", Corpus(data=data, text_column="text", group_column="region"))
    manager = JobManager(ws)
    for task, config in runs:
        manager.submit(project, task, config)
        assert manager.wait(300)
    assert all(r.status == "done" for r in project.runs()), [(r.task, r.error) for r in project.runs()]
    return project


def explore(project) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["project"] = project.id
    at.run()
    at.switch_page("pages/explore.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_only_a_coding_run_shows_its_codes_by_default(home):
    project = project_with(home, [("coding", {"codebook": BOOK, "backend": "offline"})])
    at = explore(project)
    picker = at.selectbox(key="explore_column")
    assert picker.value == "code_label"
    assert "Codebook coding: P(code: housing)" in picker.options
    assert at.get("plotly_chart")


def test_free_text_summaries_are_never_offered_as_categories(home):
    project = project_with(home, [("summary", {"backend": "offline"}), ("sentiment", {"backend": "offline"})])
    at = explore(project)
    picker = at.selectbox(key="explore_column")
    assert picker.value == "sentiment_label"  # the newest run's label column
    assert not any("ummar" in o for o in picker.options)


def test_multi_label_codes_count_each_code(home):
    project = project_with(home, [("coding", {"codebook": {**BOOK, "multi_label": True}, "backend": "offline"})])
    at = explore(project)
    assert at.selectbox(key="explore_column").value == "code_labels"
    values = at.multiselect(key="explore_values").options
    assert values and all(";" not in v for v in values)
