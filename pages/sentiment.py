"""Sentiment: choose a backend, run it as a job, and read the results with their uncertainty."""

import streamlit as st

from analysis import aggregate, charts
from ui.widgets import analysis_page, close_reading, dates_readable, method_caveats, model_settings, run_history

SENTIMENT_ORDER = ["negative", "neutral", "positive"]
SENTIMENT_COLORS = {"negative": "#D55E00", "neutral": "#999999", "positive": "#0072B2"}


def settings() -> dict:
    config = model_settings("sentiment")
    if config["backend"] in ("auto", "offline"):  # VADER's thresholds
        c1, c2 = st.columns(2)
        lo = c1.number_input("VADER: negative at or below", -1.0, 0.0, -0.05, 0.01, key="sent_lo")
        hi = c2.number_input("VADER: positive at or above", 0.0, 1.0, 0.05, 0.01, key="sent_hi")
        config.update(negative_threshold=lo, positive_threshold=hi)
    return config


results = analysis_page("sentiment", caption="Negative, neutral or positive for every text, with a score from -1 to 1.",
                        run_label="Run sentiment", settings=settings,
                        empty="No sentiment results yet: choose the settings and press **Run sentiment**.")
project, info, frame = results.project, results.info, results.frame
method_caveats(results.manifest, frame, info.text_column, key="sent_non_english")
scored = frame.dropna(subset=["sentiment_score"])
shares = aggregate.label_shares(frame, "sentiment_label")
by_label = dict(zip(shares["sentiment_label"], shares["share"]))
cols = st.columns(4)
cols[0].metric("Texts scored", f"{len(scored):,}")
cols[1].metric("Mean score", f"{scored['sentiment_score'].mean():+.2f}")
cols[2].metric("Positive", f"{by_label.get('positive', 0):.0%}")
cols[3].metric("Negative", f"{by_label.get('negative', 0):.0%}")
st.plotly_chart(charts.label_distribution(shares, "sentiment_label", order=SENTIMENT_ORDER,
                                          colors=SENTIMENT_COLORS, title="Sentiment of the texts (95% CI)"))
if info.group_column:
    group = info.group_column
    left, right = st.columns(2)
    left.plotly_chart(charts.mean_by_group(aggregate.group_means(frame, "sentiment_score", group),
                                           "mean sentiment score", group,
                                           title=f"Mean sentiment by {group} (95% bootstrap CI)"))
    right.plotly_chart(charts.label_distribution(
        aggregate.label_shares(frame, "sentiment_label", group), "sentiment_label", order=SENTIMENT_ORDER,
        colors=SENTIMENT_COLORS, title=f"Sentiment by {group}"))
if info.date_column and dates_readable(info, frame):
    dates = frame[info.date_column]
    default = aggregate.auto_freq(dates, date_order=info.date_order)
    freq = st.radio("Trend by", ["W", "M"], index=["W", "M"].index(default), horizontal=True,
                    format_func={"W": "week", "M": "month"}.get, key="sent_freq")
    st.plotly_chart(charts.trend_chart(aggregate.trend(frame, "sentiment_score", info.date_column, freq=freq,
                                                       date_order=info.date_order),
                                       "mean sentiment score",
                                       title="Sentiment over time (mean, 95% bootstrap CI; bars: texts)"))
st.subheader("Close reading")
order = st.radio("Show", ["most positive", "most negative"], horizontal=True, key="sent_order")
extra = [c for c in frame.columns if c.startswith("sentiment_prob_")]
close_reading(frame, info.text_column, "sentiment_score", label_column="sentiment_label",
              group_column=info.group_column, extra=extra, key="sent_read",
              highest_first=order == "most positive")
st.page_link("pages/validate.py", label="Read a sample yourself: hand-code it and compare on the Validate page",
             icon=":material/fact_check:")
run_history(project, "sentiment")
