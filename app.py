"""Textlab's router: page setup, navigation and the sidebar. Pages hold the UI."""

import streamlit as st

from ui.widgets import sidebar

st.set_page_config(page_title="Textlab", page_icon=":material/biotech:", layout="wide")

pages = {
    "Corpus": [st.Page("pages/data.py", title="Data", icon=":material/folder_open:", default=True)],
    "Analyse": [
        st.Page("pages/stats.py", title="Text statistics", icon=":material/straighten:"),
        st.Page("pages/sentiment.py", title="Sentiment", icon=":material/sentiment_satisfied:"),
        st.Page("pages/emotion.py", title="Emotion", icon=":material/theater_comedy:"),
        st.Page("pages/coding.py", title="Codebook coding", icon=":material/label:"),
        st.Page("pages/summary.py", title="Summaries", icon=":material/summarize:"),
        st.Page("pages/topics.py", title="Topics", icon=":material/hub:"),
    ],
    "Results": [
        st.Page("pages/explore.py", title="Explore", icon=":material/query_stats:"),
        st.Page("pages/validate.py", title="Validate", icon=":material/fact_check:"),
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
    ],
}

navigation = st.navigation(pages)
sidebar()
navigation.run()
