"""Emotion: choose a backend, run it as a job, compare emotion profiles across groups and time."""

import streamlit as st

from analysis import aggregate, charts
from analysis.tasks.emotion import emotion_columns
from ui.widgets import (analysis_page, close_reading, dates_readable, literal, method_caveats, model_settings,
                        run_history)

results = analysis_page("emotion", caption="An emotion profile for every text and its top emotion.",
                        run_label="Run emotion", settings=lambda: model_settings("emotion"),
                        empty="No emotion results yet: choose the settings and press **Run emotion**.")
project, info, frame, manifest = results.project, results.info, results.frame, results.manifest
emotions = emotion_columns(frame)
if manifest.get("backend") == "offline":
    st.caption("Scores are the share of a text's words that the NRC lexicon links to each emotion; "
               "'none' = no emotion word.")
method_caveats(manifest, frame, info.text_column, key="emo_non_english")
st.plotly_chart(charts.label_distribution(aggregate.label_shares(frame, "emotion_label"), "emotion_label",
                                          title="Top emotion of the texts (95% CI)"))
if info.group_column:
    profile = aggregate.profile_by_group(frame, list(emotions.values()), info.group_column)
    profile.columns = list(emotions)
    st.plotly_chart(charts.profile_heatmap(profile, title=f"Emotion profile by {info.group_column} (mean score)",
                                           value_format=".3f"))
if not emotions:  # a language model on a server that gave no probabilities: the top emotion only
    st.subheader("Close reading")
    close_reading(frame, info.text_column, None, label_column="emotion_label", group_column=info.group_column,
                  extra=[], key="emo_read")
    run_history(project, "emotion")
    st.stop()
chosen = st.selectbox("Emotion", list(emotions), key="emo_pick")
column = emotions[chosen]
if info.group_column:
    st.plotly_chart(charts.mean_by_group(aggregate.group_means(frame, column, info.group_column),
                                         f"mean {chosen} score", info.group_column, reference=None,
                                         title=f"{chosen.capitalize()} by {info.group_column} (95% bootstrap CI)"))
if info.date_column and dates_readable(info, frame):
    freq = aggregate.auto_freq(frame[info.date_column], date_order=info.date_order)
    st.plotly_chart(charts.trend_chart(aggregate.trend(frame, column, info.date_column, freq=freq,
                                                       date_order=info.date_order),
                                       f"mean {chosen} score",
                                       title=f"{chosen.capitalize()} over time (95% bootstrap CI; bars: texts)"))
st.subheader(f"Close reading: texts highest in {literal(chosen)}")  # a model's own label names
close_reading(frame, info.text_column, column, label_column="emotion_label", group_column=info.group_column,
              extra=[], key="emo_read")
st.page_link("pages/validate.py", label="Read a sample yourself: hand-code it and compare on the Validate page",
             icon=":material/fact_check:")
run_history(project, "emotion")
