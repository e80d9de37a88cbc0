"""Workshop-mode glue: the participant's cookie, the sidebar card, the limits on imports.

The participants, tokens, limits and broadcasts are ``analysis.workshop``'s; this module only
moves the token between the browser and the session.
"""

from __future__ import annotations

import re

import streamlit as st

from analysis.errors import TextlabError
from analysis.workshop import COOKIE_NAME
from ui import state
from ui.widgets import literal

_TOKEN = re.compile(r"^[0-9a-f]{16}\.[0-9a-f]{64}$")
COOKIE_DAYS = 30


def write_cookie(token: str | None) -> None:
    """Keep the participant's token in this browser (a refresh, a closed tab and a new tab come
    back to the same workspace), or remove it (``None``). Streamlit cannot set a cookie from the
    server, so a one-line script sets it; its only value is the token made by the server (hex and
    a dot), checked here, never text a user typed."""
    value = token or ""
    if value and not _TOKEN.match(value):
        raise TextlabError("Not a workshop token.")
    max_age = COOKIE_DAYS * 86400 if value else 0
    st.html(f"<script>document.cookie = '{COOKIE_NAME}={value}; Path=/; Max-Age={max_age}; SameSite=Strict'"
            " + (location.protocol === 'https:' ? '; Secure' : '');</script>", unsafe_allow_javascript=True)


def remember(token: str) -> None:
    """This session is the participant of ``token`` from now on; the cookie follows on the next run."""
    st.session_state[state.TOKEN_KEY] = token
    st.session_state.pop("_left_workshop", None)
    st.session_state.pop(state.PROJECT_KEY, None)
    if "project" in st.query_params:  # a project id from before joining belongs to nobody here
        del st.query_params["project"]


def sync_cookie() -> None:
    """Write the session's token into the cookie once, when the browser does not have it yet."""
    token = st.session_state.get(state.TOKEN_KEY)
    if token and st.context.cookies.get(COOKIE_NAME) != token and st.session_state.get("_cookie_written") != token:
        write_cookie(token)
        st.session_state["_cookie_written"] = token


def sidebar_card() -> None:
    """Who is signed in, their return key, and leaving."""
    person = state.participant()
    if person is None:
        return
    st.markdown(f"Workshop · you are **{literal(person.name)}**")
    with st.expander("Your return key"):
        st.caption("This browser remembers you. To come back from another browser or computer, paste this key on "
                   "the join page. Keep it to yourself: it opens your workspace.")
        st.code(st.session_state.get(state.TOKEN_KEY, ""), language=None)
    if state.login_identity() is not None:
        st.button("Sign out", key="workshop_leave", on_click=st.logout,
                  help="Sign out of your institution's login here. Your workspace stays; sign in again to come back.")
        return
    st.button("Leave on this browser", key="workshop_leave", on_click=_leave,
              help="Forget you on this browser. Your workspace stays; come back with your return key.")


def _leave() -> None:
    for key in (state.TOKEN_KEY, "_cookie_written", state.PROJECT_KEY):
        st.session_state.pop(key, None)
    st.session_state["_leaving"] = st.session_state["_left_workshop"] = True


def check_import(*, n_bytes: int | None = None, rows: int | None = None) -> None:
    """The workshop's limits on what one participant imports (no-op outside workshop mode)."""
    ws, person = state.workshop(), state.participant()
    if ws is None or person is None:
        return
    if n_bytes is not None:
        ws.check_upload(n_bytes)
        ws.check_quota(person.id, adding=n_bytes)
    if rows is not None:
        ws.check_rows(rows)


def reset_workshop() -> int:
    """Stop every participant's runs and worker bookkeeping, then remove the workshop's people and data."""
    import time

    from analysis.jobs import retire_manager, shared_scheduler

    ws = state.workshop()
    roots = {str(ws.workspace_root(person.id)) for person in ws.participants()}
    for root in roots:
        retire_manager(root)
    # The run on the worker stops at its next chunk; wait for it, so that it writes nothing into
    # a folder being deleted.
    scheduler, deadline = shared_scheduler(), time.monotonic() + 30
    while (current := scheduler.current) and current[0].key in roots and time.monotonic() < deadline:
        time.sleep(0.1)
    return ws.reset()
