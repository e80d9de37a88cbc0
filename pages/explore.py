"""Explore: any result column, its distribution, by group and the texts behind it."""

import pandas as pd
import streamlit as st

from analysis import aggregate, charts
from analysis.tasks import get_task
from ui.widgets import literal, require_project

st.title("Explore")
project = require_project()
info = project.info
latest = project.latest_runs()
if not latest:
    st.info("No finished analysis in this project yet. Run one from the Analyse pages.")
    st.stop()

# The columns each task declares for charts (no free text, no ids), newest run first, so the
# default is the label column of the analysis run last.
options: dict[str, str] = {}  # column -> the task that wrote it
for task, run in sorted(latest.items(), key=lambda item: item[1].finished or "", reverse=True):
    manifest = project.manifest(run.id)
    for column in get_task(task).chart_columns(manifest):
        options.setdefault(column, task)
frame = project.results_frame(latest)
options = {c: t for c, t in options.items() if c in frame.columns}
if not options:
    st.info("The finished analyses have no result to chart here (summaries are read on the Summaries page).")
    st.stop()
column = st.selectbox("Result", list(options), key="explore_column",
                      format_func=lambda c: f"{get_task(options[c]).title}: {charts.describe_column(c)}")
values = frame[column]
numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
multi = column in get_task(options[column]).multi_label_columns  # several codes per text, ";"-joined
values_for_counts = aggregate.column_values(values, multi_label=multi)  # multi: one row per (text, code)

if numeric:
    st.plotly_chart(charts.histogram(values, column))
else:
    st.plotly_chart(charts.category_counts(values_for_counts, f"{charts.describe_column(column)}: counts", column))
if info.group_column:
    if numeric:
        st.plotly_chart(charts.numeric_by_group(frame, column, info.group_column))
    else:
        table = aggregate.value_shares_by_group(frame, column, info.group_column, multi_label=multi)
        st.caption(f"Share of each value within each {literal(info.group_column)}" +
                   (" (a text with several codes counts for each)" if multi else ""))
        st.dataframe(table.style.format("{:.1%}"))

st.subheader("Texts behind the numbers")
if numeric:
    lo, hi = float(values.min()), float(values.max())
    chosen = st.slider("Range", lo, hi, (lo, hi), key="explore_range") if hi > lo else (lo, hi)
    selected = frame[values.between(*chosen)]
else:
    options_values = sorted(values_for_counts.dropna().astype(str).unique())
    picked = st.multiselect("Values", options_values, default=options_values[:1], key="explore_values")
    selected = aggregate.rows_with_values(frame, column, picked, multi_label=multi)
if info.group_column:
    groups = sorted(frame[info.group_column].dropna().astype(str).unique())
    picked_groups = st.multiselect(literal(info.group_column), groups, key="explore_groups")
    if picked_groups:
        selected = selected[selected[info.group_column].astype(str).isin(picked_groups)]
st.caption(f"{len(selected):,} texts")
show = list(dict.fromkeys(["doc_id", info.text_column, column] + ([info.group_column] if info.group_column else [])))
st.dataframe(selected[show].head(500), hide_index=True,
             column_config={info.text_column: st.column_config.TextColumn(width="large")})
