"""Session state and cached resources.

The current project lives in the URL (``?project=...``) as well as in session state, so a
browser refresh comes back to the same project; everything else is read from the
workspace on disk on each rerun.

In workshop mode (``textlab app --workshop``) the workspace is the participant's own: the
participant comes from a signed token kept in session state and in a cookie, and every
project id (from the URL or a widget) is looked up in that workspace only.
"""

from __future__ import annotations

import os

import streamlit as st

from analysis.errors import TextlabError
from analysis.jobs import JobManager, manager_for, shared_scheduler
from analysis.workshop import COOKIE_NAME, Participant, Workshop
from analysis.workspace import Project, Workspace
from ui.resources import sample_data

PROJECT_KEY = "textlab_project"
TOKEN_KEY = "textlab_participant_token"
SAMPLE_CORPUS = sample_data("policy_survey.csv")
SAMPLE_CODEBOOK = sample_data("policy_codebook.json")


def server_root() -> str:
    return os.environ.get("TEXTLAB_HOME") or "workspace"


def workshop_mode() -> bool:
    return os.environ.get("TEXTLAB_WORKSHOP") == "1"


@st.cache_resource(show_spinner=False)
def _workshop(root: str) -> Workshop:
    return Workshop(root)


def workshop() -> Workshop | None:
    """The server's workshop (participants, codes, limits), or None outside workshop mode."""
    return _workshop(server_root()) if workshop_mode() else None


def login_configured() -> bool:
    """Whether the server has an institution login (an ``[auth]`` section for ``st.login`` in
    .streamlit/secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def login_identity() -> tuple[str, str, str] | None:
    """(issuer, subject, display name) of the signed-in institution user, or None."""
    user = st.user
    if not login_configured() or not user.get("is_logged_in"):
        return None
    subject = user.get("sub") or user.get("email")
    if not subject:
        return None
    return str(user.get("iss") or ""), str(subject), str(user.get("name") or user.get("email") or "Participant")


def participant() -> Participant | None:
    """Who this browser session is, in workshop mode: the institution login's participant, else
    the one of the token this session joined with, else of the cookie an earlier session of this
    browser left. None: not joined (yet)."""
    ws = workshop()
    if ws is None:
        return None
    identity = login_identity()
    if identity is not None:
        found = ws.participant_for_login(identity[0], identity[1])
        if found is not None:
            st.session_state[TOKEN_KEY] = ws.token(found.id)  # the return key, for another browser
            return found
    # After "Leave" the cookie this session started with is still in st.context: only a token
    # given in this session counts from then on.
    cookie = None if st.session_state.get("_left_workshop") else st.context.cookies.get(COOKIE_NAME)
    for token in (st.session_state.get(TOKEN_KEY), cookie):
        found = ws.participant(token) if isinstance(token, str) and token else None
        if found is not None:
            st.session_state[TOKEN_KEY] = token
            return found
    st.session_state.pop(TOKEN_KEY, None)
    return None


def workspace_root() -> str:
    """This session's workspace folder: the server's, or in workshop mode the participant's own."""
    ws = workshop()
    if ws is None:
        return server_root()
    person = participant()
    if person is None:  # the router shows the join page first; nothing may fall back to a shared folder
        raise TextlabError("Join the workshop first (join code and your name).")
    return str(ws.workspace_root(person.id))


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


def _job_manager(root: str) -> JobManager:
    # One started manager per process and workspace, shared with `textlab app`, which starts
    # it with the server: runs cut off by a crash or restart carry on without a click. In a
    # workshop every participant's manager feeds the server's one worker, in fair turns.
    ws = workshop()
    if ws is None:
        return manager_for(root)
    return manager_for(root, scheduler=shared_scheduler(), queue_limit=ws.limits.queued_jobs)


def workspace() -> Workspace:
    return _workspace(workspace_root())


def job_manager() -> JobManager:
    return _job_manager(workspace_root())


def current_project() -> Project | None:
    project_id = st.session_state.get(PROJECT_KEY) or st.query_params.get("project")
    if not project_id:
        return None
    try:
        project = workspace().project(project_id)
    except TextlabError:
        forget_project()
        return None
    st.session_state[PROJECT_KEY] = project_id
    # Keep it in the URL on every page (a page switch drops query parameters), so that F5,
    # a bookmark, a closed tab or a restarted server come back to it.
    if st.query_params.get("project") != project_id:
        st.query_params["project"] = project_id
    return project


def url_params() -> dict[str, str]:
    """Query parameters every link between pages carries (the open project)."""
    project_id = st.session_state.get(PROJECT_KEY) or st.query_params.get("project")
    return {"project": project_id} if project_id else {}


def set_project(project_id: str) -> None:
    st.session_state[PROJECT_KEY] = project_id
    st.query_params["project"] = project_id


def forget_project() -> None:
    st.session_state.pop(PROJECT_KEY, None)
    if "project" in st.query_params:
        del st.query_params["project"]


@st.cache_resource(show_spinner=False)
def device_summary() -> str:
    from analysis.runner import device_description

    return device_description()
