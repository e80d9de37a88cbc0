"""Textlab's router: page setup, navigation and the sidebar. Pages hold the UI."""

import logging
import os

import streamlit as st

from analysis.errors import TextlabError
from ui import state
from ui.state import job_manager
from ui.widgets import show_error, sidebar
from ui.workshop import sync_cookie

# An emoji icon: Streamlit draws it as an inline SVG, where a :material/...: page icon made
# every browser fetch the image from Google's font server.
st.set_page_config(page_title="Textlab", page_icon="🔬", layout="wide")

pages = {
    "Corpus": [st.Page("pages/data.py", title="Data", icon=":material/folder_open:", default=True)],
    "Analyse": [
        st.Page("pages/stats.py", title="Text statistics", icon=":material/straighten:"),
        st.Page("pages/sentiment.py", title="Sentiment", icon=":material/sentiment_satisfied:"),
        st.Page("pages/emotion.py", title="Emotion", icon=":material/theater_comedy:"),
        st.Page("pages/coding.py", title="Codebook coding", icon=":material/label:"),
        st.Page("pages/prompt.py", title="Free prompt", icon=":material/chat:"),
        st.Page("pages/summary.py", title="Summaries", icon=":material/summarize:"),
        st.Page("pages/topics.py", title="Topics", icon=":material/hub:"),
    ],
    "Results": [
        st.Page("pages/explore.py", title="Explore", icon=":material/query_stats:"),
        st.Page("pages/validate.py", title="Validate", icon=":material/fact_check:"),
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
    ],
}
facilitator = st.Page("pages/facilitator.py", title="Facilitator", icon=":material/groups:")
pages["Learn"] = [st.Page("pages/teaching.py", title="How models read text", icon=":material/school:")]

if state.workshop_mode():
    try:
        state.workshop()
    except TextlabError as exc:  # fail closed: never fall back to one shared workspace
        show_error(exc)
        st.stop()
    pages["Workshop"] = [facilitator]
    if state.participant() is None:
        # Not joined yet: the join page (and the facilitator's, which has its own code); no page
        # of a workspace, and no worker, before the participant is known.
        gate = st.navigation([st.Page("pages/join.py", title="Join", icon=":material/login:", default=True, url_path="welcome"),
                              facilitator], position="hidden")
        with st.sidebar:
            st.page_link("pages/join.py", label="Join", icon=":material/login:")
            st.page_link(facilitator, label="Facilitator", icon=":material/groups:")
        gate.run()
        st.stop()
    sync_cookie()

# The job worker serves the workspace from the first page view on (and from server start
# under `textlab app`): interrupted runs resume without anyone pressing a button.
job_manager()
# Navigation is drawn by the sidebar (links that carry the open project in the URL); the
# built-in menu would drop it, and on a deep link it briefly lists pages/ by file name.
navigation = st.navigation(pages, position="hidden")
sidebar(pages)
try:
    navigation.run()
except Exception as exc:  # st.stop/st.rerun are BaseExceptions and pass through
    if os.environ.get("TEXTLAB_DEBUG"):  # tests and developers see the real failure
        raise
    # A bug must not show a researcher a traceback: a short message here, details in the log.
    logging.getLogger("textlab").exception("Page %s failed", navigation.title)
    show_error(exc)
