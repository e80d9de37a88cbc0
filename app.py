"""Textlab's router: page setup, navigation and the sidebar. Pages hold the UI."""

import streamlit as st

from ui.widgets import sidebar

st.set_page_config(page_title="Textlab", page_icon="🔬", layout="wide")

pages = {
    "Corpus": [st.Page("pages/data.py", title="Data", icon="📂", default=True)],
    "Analyse": [
        st.Page("pages/stats.py", title="Text statistics", icon="📏"),
        st.Page("pages/sentiment.py", title="Sentiment", icon="🙂"),
        st.Page("pages/emotion.py", title="Emotion", icon="🎭"),
        st.Page("pages/coding.py", title="Codebook coding", icon="🏷️"),
        st.Page("pages/summary.py", title="Summaries", icon="📝"),
        st.Page("pages/topics.py", title="Topics", icon="🗺️"),
    ],
    "Results": [
        st.Page("pages/explore.py", title="Explore", icon="🔎"),
        st.Page("pages/validate.py", title="Validate", icon="⚖️"),
        st.Page("pages/export.py", title="Export", icon="💾"),
    ],
}

navigation = st.navigation(pages)
sidebar()
navigation.run()
