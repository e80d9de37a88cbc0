"""Explore: any result column, its distribution, by group and the texts behind it."""

import pandas as pd
import streamlit as st

from analysis import charts
from ui.widgets import require_project

st.title("Explore")
project = require_project()
info = project.info
latest = project.latest_runs()
if not latest:
    st.info("No finished analysis in this project yet. Run one from the Analyse pages.")
    st.stop()

frame = project.results_frame(latest)
result_columns = [c for c in frame.columns if any(c.startswith(f"{task}_") for task in latest) or c in ("summary",)]
column = st.selectbox("Result", result_columns, key="explore_column")
values = frame[column]
numeric = pd.api.types.is_numeric_dtype(values)

if numeric:
    st.plotly_chart(charts.histogram(values, column))
else:
    st.plotly_chart(charts.category_counts(values, f"{charts.describe_column(column)}: counts", column))
if info.group_column:
    if numeric:
        st.plotly_chart(charts.numeric_by_group(frame, column, info.group_column))
    else:
        table = pd.crosstab(frame[info.group_column].astype(str), values.fillna("(missing)").astype(str), normalize="index")
        st.caption(f"Share of each value within each {info.group_column}")
        st.dataframe(table.style.format("{:.1%}"))

st.subheader("Texts behind the numbers")
if numeric:
    lo, hi = float(values.min()), float(values.max())
    chosen = st.slider("Range", lo, hi, (lo, hi), key="explore_range") if hi > lo else (lo, hi)
    selected = frame[values.between(*chosen)]
else:
    options = sorted(values.dropna().astype(str).unique())
    picked = st.multiselect("Values", options, default=options[:1], key="explore_values")
    selected = frame[values.astype(str).isin(picked)]
if info.group_column:
    groups = sorted(frame[info.group_column].dropna().astype(str).unique())
    picked_groups = st.multiselect(f"{info.group_column}", groups, key="explore_groups")
    if picked_groups:
        selected = selected[selected[info.group_column].astype(str).isin(picked_groups)]
st.caption(f"{len(selected):,} texts")
show = ["doc_id", info.text_column, column] + ([info.group_column] if info.group_column else [])
st.dataframe(selected[show].head(500), hide_index=True,
             column_config={info.text_column: st.column_config.TextColumn(width="large")})
