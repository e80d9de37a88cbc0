"""Text statistics: run the stats task as a job and chart its results."""

import streamlit as st

from analysis import aggregate, charts
from analysis.datetimes import parse_dates
from ui.widgets import analysis_header, dates_readable, run_controls, run_history

project = analysis_header("stats", "Words, sentences, model tokens, type-token ratio and language of every text. "
                                   "Runs on the CPU in seconds.")
run = run_controls(project, "stats", "Run text statistics")
latest = project.latest_runs().get("stats")

if latest is not None:
    frame = project.results_frame({"stats": latest})
    info = project.info
    # One count and one definition with the Data page: every row is a text, lengths are
    # over the non-empty ones (an empty text's 0 words would pull the medians down).
    counts = aggregate.text_counts(frame[info.text_column])
    filled = frame[~aggregate.is_empty_text(frame[info.text_column]).to_numpy()]
    st.caption(f"Results of run `{latest.id}` (finished {latest.finished}): {counts.describe()}; "
               "lengths are of the non-empty texts.")
    cols = st.columns(4)
    cols[0].metric("Texts", f"{counts.total:,}", help=counts.describe())
    cols[1].metric("Median words", f"{filled['stats_words'].median():,.0f}")
    cols[2].metric("Median tokens", f"{filled['stats_tokens'].median():,.0f}")
    known = frame["stats_language"].dropna()
    cols[3].metric("Languages", f"{known[known != 'und'].nunique():,}", help="Distinct detected languages; 'und' (too short to tell) not counted.")
    left, right = st.columns(2)
    left.plotly_chart(charts.length_histogram(filled["stats_words"], "words"))
    right.plotly_chart(charts.category_counts(frame["stats_language"].fillna("(empty text)"), "Detected language ('und': too short to tell)", "language"))
    if info.group_column:
        st.plotly_chart(charts.numeric_by_group(filled, "stats_words", info.group_column, f"Words per text by {info.group_column}"))
    if info.date_column and dates_readable(info, frame):
        # Read as the corpus reads them (04.03.2021 day-first, the project's order), not by pandas' guess.
        dates = parse_dates(frame[info.date_column], info.date_order, info.date_column)
        st.plotly_chart(charts.counts_over_time(dates))
    st.subheader("Texts")
    order = st.radio("Show", ["longest", "shortest", "lowest type-token ratio"], horizontal=True, key="stats_order")
    sort = {"longest": ("stats_words", False), "shortest": ("stats_words", True), "lowest type-token ratio": ("stats_ttr", True)}[order]
    shown = frame.sort_values(sort[0], ascending=sort[1], na_position="last").head(50)
    st.dataframe(
        shown[["doc_id", info.text_column, "stats_words", "stats_tokens", "stats_ttr", "stats_language"]],
        hide_index=True,
        column_config={info.text_column: st.column_config.TextColumn(width="large")},
    )
elif run is None:
    st.info("No results yet: press **Run text statistics**.")
run_history(project, "stats")
