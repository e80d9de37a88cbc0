"""Session state and cached resources.

The current project lives in the URL (``?project=...``) as well as in session state, so a
browser refresh comes back to the same project; everything else is read from the
workspace on disk on each rerun.
"""

from __future__ import annotations

import os

import streamlit as st

from analysis.errors import TextlabError
from analysis.jobs import JobManager, manager_for
from analysis.workspace import Project, Workspace
from ui.resources import sample_data

PROJECT_KEY = "textlab_project"
SAMPLE_CORPUS = sample_data("policy_survey.csv")
SAMPLE_CODEBOOK = sample_data("policy_codebook.json")


def workspace_root() -> str:
    return os.environ.get("TEXTLAB_HOME") or "workspace"


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


def _job_manager(root: str) -> JobManager:
    # One started manager per process and workspace, shared with `textlab app`, which starts
    # it with the server: runs cut off by a crash or restart carry on without a click.
    return manager_for(root)


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
