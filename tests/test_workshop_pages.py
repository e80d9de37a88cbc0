"""Workshop mode in the app (AppTest): joining, private workspaces, and isolation: participant B
tries to see, open, export and delete participant A's project by every route the UI and the
URL offer, and every one is refused. Also the facilitator page and the limits on imports."""

import pytest
from streamlit.testing.v1 import AppTest

from analysis.workshop import Workshop
from analysis.workspace import Workspace
from tests.paths import ROOT
from tests.test_pages import goto, load_sample, texts_of
from ui.language_model import SOURCES, STORE

JOIN, FACILITATOR = "room-42", "lead-7777"


@pytest.fixture
def room(home, monkeypatch):
    monkeypatch.setenv("TEXTLAB_WORKSHOP", "1")
    workshop, _ = Workshop.configure(home, join_code=JOIN, facilitator_code=FACILITATOR)
    return workshop


def fresh() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def join(name: str) -> AppTest:
    at = fresh()
    assert at.title[0].value == "Join the workshop"
    at.text_input(key="join_code").input(JOIN)
    at.text_input(key="join_name").input(name)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_nothing_of_a_workspace_is_shown_before_joining(room):
    at = fresh()
    assert at.title[0].value == "Join the workshop"
    assert not at.get("selectbox")  # no project picker
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/data.py")  # no page of a workspace is even registered before joining
    # A wrong code is refused with what to do.
    at.text_input(key="join_code").input("wrong")
    at.text_input(key="join_name").input("Ana")
    at.button[0].click().run()
    assert "Ask the facilitator" in texts_of(at.error)
    assert room.participants() == []


def test_two_participants_cannot_reach_each_others_projects(room):
    ana = load_sample(join("Ana"))
    ana_project = ana.query_params["project"]
    ana_folder = room.workspace_root(room.participants()[0].id)
    assert Workspace(ana_folder).project(ana_project)  # Ana's project lives in Ana's own folder

    ben = join("Ben")
    assert "Workspace: your own (private)" in texts_of(ben.sidebar.caption)
    # 1. The project picker lists nothing of Ana's.
    assert not any(ana_project in (s.options or []) for s in ben.sidebar.selectbox)
    # 2. Ana's project id in the URL opens nothing, on any page.
    for page in ("pages/data.py", "pages/export.py", "pages/validate.py", "pages/coding.py"):
        ben.query_params["project"] = ana_project
        ben = goto(ben, page)
        assert ben.query_params.get("project") != ana_project
        if page != "pages/data.py":
            assert "No project is open" in texts_of(ben.info), page
        assert not ben.get("download_button"), page  # nothing to export
    # 3. The id planted in session state (a crafted widget value) opens nothing either.
    ben.session_state["textlab_project"] = ana_project
    ben = goto(ben, "pages/export.py")
    assert "No project is open" in texts_of(ben.info)
    # 4. The Projects tab offers no Open or Delete of Ana's project.
    ben = goto(ben, "pages/data.py")
    keys = {b.key for b in ben.button}
    assert f"open_{ana_project}" not in keys and f"delete_{ana_project}" not in keys
    # 5. Ana's token with its signature changed, or Ana's id with Ben's signature, is nobody.
    ben_token = ben.session_state["textlab_participant_token"]
    ana_id = room.participants()[0].id
    forged = fresh()
    forged.session_state["textlab_participant_token"] = f"{ana_id}.{ben_token.split('.')[1]}"
    forged.run()
    assert forged.title[0].value == "Join the workshop"
    # Ana still has her project, untouched.
    assert [p.id for p in Workspace(ana_folder).list_projects()] == [ana_project]


def test_a_refresh_comes_back_to_the_same_workspace_and_leaving_forgets_it(room):
    ana = load_sample(join("Ana"))
    token = ana.session_state["textlab_participant_token"]
    assert room.participant(token).name == "Ana"
    # A new session of the same browser brings the token (AppTest has no cookies: the session
    # state stands in for the cookie the page wrote).
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    again.session_state["textlab_participant_token"] = token
    again.run()
    assert "you are **Ana**" in " ".join(m.value for m in again.sidebar.markdown)
    assert len(Workspace(room.workspace_root(room.participants()[0].id)).list_projects()) == 1
    # No participant can name a path on the server as a model: no model folder in the sidebar...
    which = next(r for r in again.sidebar.radio if r.label == "Which model")
    assert "local" in SOURCES and "local" not in which.options
    again.button(key="workshop_leave").click().run()
    assert "textlab_participant_token" not in again.session_state and again.session_state["_left_workshop"]
    # Every page of the workspace now refuses (AppTest reruns the page alone; the app's router
    # shows the join page instead).
    assert again.exception and not again.dataframe  # refused ("Join the workshop first", redacted by Streamlit)
    again = goto(again, "pages/join.py")
    assert "You left on this browser" in texts_of(again.info)
    # The return key brings her back.
    again.text_input(key="join_return_key").input(token)
    again.button(key="join_return").click().run()
    assert again.session_state["textlab_participant_token"] == token
    again = goto(again, "pages/data.py")
    assert not again.error and len(again.get("button")) >= 1
    assert "Policy survey (sample)" in " ".join(m.value for m in again.markdown)  # her project, back
    # ... no free model id or folder on an analysis page, and no model server on another machine.
    again.query_params["project"] = ana.query_params["project"]
    again = goto(again, "pages/sentiment.py")
    again.radio(key="sentiment_backend").set_value("transformers").run()
    assert all("other" not in str(o) for o in again.selectbox(key="sentiment_model").options)
    again.session_state[STORE] = {"source": "server", "url": "http://10.1.2.3:8000/v1", "model": "m"}
    again.radio(key="sentiment_backend").set_value("llm").run()
    again.button(key="submit_sentiment").click().run()
    assert "must run on this server" in texts_of(again.error)
    assert not Workspace(room.workspace_root(room.participants()[0].id)).project(
        ana.query_params["project"]).runs("sentiment")


def test_the_facilitator_sees_participants_sends_a_dataset_and_resets(room, tmp_path):
    join("Ana")
    at = fresh()
    at.switch_page("pages/facilitator.py")
    at.run()
    at.text_input(key="facilitator_code").input(JOIN)  # the participants' code is not the facilitator's
    at.button[0].click().run()
    assert "not the facilitator code" in texts_of(at.error)
    at.text_input(key="facilitator_code").input(FACILITATOR)
    at.button[0].click().run()
    assert not at.exception
    assert at.metric[0].value == "1"
    people = at.dataframe[0].value
    assert people["participant"].tolist() == ["Ana"] and "id" not in people.columns
    # A dataset sent to everyone is a project in Ana's workspace and in a later joiner's.
    room.broadcast("dataset", "Exercise", b"text\nfirst answer\nsecond answer\n", "exercise.csv")
    for person in room.participants():
        room.deliver(person.id)
    ben = join("Ben")
    names = [o for s in ben.sidebar.selectbox for o in (s.options or [])]
    assert len(names) == 1  # the exercise, delivered on joining
    at.run()
    at.checkbox(key="fac_reset_sure").check().run()
    at.button(key="fac_reset").click().run()
    assert "2 participant(s) removed" in texts_of(at.success)
    assert room.participants() == [] and not (room.root / "participants").exists()


def test_an_upload_over_the_workshop_limit_is_refused_with_what_to_do(home, monkeypatch):
    monkeypatch.setenv("TEXTLAB_WORKSHOP", "1")
    Workshop.configure(home, join_code=JOIN, facilitator_code=FACILITATOR,
                       limits={"rows_per_project": 100})
    at = join("Ana")
    at = goto(at, "pages/data.py")
    at.button(key="load_sample").click().run()
    assert "at most 100" in texts_of(at.error)
    assert not at.query_params.get("project")


def test_an_institution_login_joins_once_with_the_code_and_comes_back_by_signing_in(room, monkeypatch):
    # Streamlit's OIDC login (st.login) where the server has an [auth] section: AppTest stands in
    # for the provider with a signed-in user's claims.
    import ui.state

    monkeypatch.setattr(ui.state, "login_configured", lambda: True)
    user = {"is_logged_in": True, "iss": "https://login.example.edu", "sub": "u-123", "name": "Ana Lima",
            "email": "ana@example.edu"}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.user = dict(user)
    at.run()
    assert "Signed in as **Ana Lima**" in " ".join(m.value for m in at.markdown)
    at.text_input(key="join_login_code").input("wrong")
    at.button(key="join_login_join").click().run()
    assert "Ask the facilitator" in texts_of(at.error)
    at.text_input(key="join_login_code").input(JOIN)
    at.button(key="join_login_join").click().run()
    assert [p.name for p in room.participants()] == ["Ana Lima"]
    # A new session of the same login: straight in, same workspace, no code.
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    again.user = dict(user)
    again.run()
    assert "you are **Ana Lima**" in " ".join(m.value for m in again.sidebar.markdown)
    assert room.participant_for_login("https://login.example.edu", "u-123").id == room.participants()[0].id
    # Another person of the same institution with the same display name gets a workspace of their own.
    other = room.join_with_login(JOIN, "https://login.example.edu", "u-456", "Ana Lima")
    assert other.name == "Ana Lima 2" and other.id != room.participants()[0].id



def test_workshop_mode_without_a_set_up_workshop_fails_closed(home, monkeypatch):
    monkeypatch.setenv("TEXTLAB_WORKSHOP", "1")  # e.g. `streamlit run app.py` with the flag but no setup
    at = fresh()
    assert "No workshop is set up" in texts_of(at.error)
    assert not at.get("selectbox") and not at.get("file_uploader")  # no shared workspace behind it
