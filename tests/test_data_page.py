"""Data page: how ids and dates are read is shown, and a day/month order is asked for and
kept with the project (issue 10, finding 17)."""

import re

import pandas as pd
from streamlit.testing.v1 import AppTest

from analysis.corpus import build_corpus
from analysis.workspace import Workspace
from tests.paths import ROOT

ANSWERS = ["The buses are late every single morning.", "Rents went up again this year sadly.",
           "Great to see the new clinic open at last."]


def new_app(project_id: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if project_id is not None:
        at.query_params["project"] = project_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts_of(elements) -> str:
    """The text as a reader sees it: markdown escapes (user data is escaped) removed."""
    return " ".join(re.sub(r"\\(.)", r"\1", str(e.value)) for e in elements)


def upload(at: AppTest, dates: list[str], date_name: str = "date") -> AppTest:
    rows = "".join(f"r{i},{day},{text}\n" for i, (day, text) in enumerate(zip(dates, ANSWERS), 1))
    at.file_uploader[0].upload("survey.csv", f"rid,{date_name},answer\n{rows}".encode(), "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    date_box = next(s for s in at.selectbox if s.label == "Date column")
    if date_box.value != date_name:
        date_box.set_value(date_name).run()
    return at


def created_project(at: AppTest):
    at.button(key="create_project").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return Workspace().project(at.query_params["project"])


def test_upload_says_which_column_holds_the_ids_and_how_the_dates_are_read(home):
    at = upload(new_app(), ["04.03.2021", "13.03.2021", "20.03.2021"])
    notes = texts_of(at.info) + " " + texts_of(at.caption)
    assert "rid" in notes and "document ids" in notes
    assert "read day-first" in notes and "13.03.2021" in notes and "has no month 13" in notes
    assert not [r for r in at.radio if r.label.startswith("Dates are")]  # the column shows its order
    project = created_project(at)
    assert project.info.date_order is None
    assert project.corpus().dates().tolist()[0] == pd.Timestamp("2021-03-04")
    # The stored import report says the same as the page did.
    assert any("read day-first" in w for w in project.info.import_report["warnings"])


def test_an_ambiguous_date_column_asks_for_the_order_and_the_project_keeps_it(home):
    at = upload(new_app(), ["04/03/2021", "05/03/2021", "04/05/2021"])
    assert "could be day-first or month-first" in texts_of(at.warning) + texts_of(at.info)
    order = next(r for r in at.radio if r.label.startswith("Dates are"))
    assert order.value is None  # nothing is guessed
    order.set_value("day-first").run()
    assert not at.exception
    assert "read day-first, as chosen" in texts_of(at.caption)
    project = created_project(at)
    assert project.info.date_order == "day-first"
    assert project.corpus().dates().tolist() == [
        pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-05"), pd.Timestamp("2021-05-04")]


def test_an_open_projects_date_order_can_be_chosen_and_is_stored(home):
    table = pd.DataFrame({"text": ANSWERS, "when": ["04/03/2021", "05/03/2021", "04/05/2021"]})
    project = Workspace().create_project("dates", build_corpus(table, "text", date_column="when"))
    at = new_app(project.id)
    assert "could be day-first or month-first" in texts_of(at.warning)
    at.radio(key=f"roles_order_{project.id}_when").set_value("month-first").run()
    at.button(key="save_roles").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert Workspace().project(project.id).info.date_order == "month-first"
    assert Workspace().project(project.id).corpus().dates().tolist()[0] == pd.Timestamp("2021-04-03")
    assert "read month-first, as chosen" in texts_of(at.caption)
    assert at.radio(key=f"roles_order_{project.id}_when").value == "month-first"


def test_notes_show_column_names_literally(home):
    """A column name is data: markdown in it is shown as written, not as formatting."""
    at = upload(new_app(), ["04.03.2021", "13.03.2021", "20.03.2021"], date_name="**when**")
    shown = [e.value for e in at.info if "read day-first" in texts_of([e])]
    assert shown and all(r"\*\*when\*\*" in value for value in shown), shown
