"""Charts: pure functions from data frames to plotly figures.

Nothing here reads session state or files; the pages pass data in and show what comes
back, and the same figures work in a notebook. Every figure has a title, labelled axes,
counts in the hover, and a colour-blind-safe palette.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
TEMPLATE = "plotly_white"


def _style(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"},
        template=TEMPLATE,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        font={"size": 13},
        legend={"title": None},
    )
    return fig


def histogram(values: pd.Series, label: str, title: str | None = None, threshold: float | None = None,
              threshold_label: str = "") -> go.Figure:
    """Distribution of a numeric column; a dashed line marks a threshold (a model window, say)."""
    data = pd.to_numeric(values, errors="coerce").dropna()
    fig = px.histogram(x=data, nbins=min(60, max(10, int(np.sqrt(len(data))))),
                       labels={"x": label}, color_discrete_sequence=PALETTE)
    fig.update_traces(hovertemplate=f"{label} %{{x}}<br>%{{y:,}} texts<extra></extra>")
    fig.update_yaxes(title="texts")
    if threshold is not None and len(data) and data.max() >= threshold * 0.5:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#D55E00",
                      annotation_text=threshold_label or str(threshold), annotation_position="top right")
    median = float(data.median()) if len(data) else float("nan")
    return _style(fig, title or f"{label}: median {median:,.3g}, n = {len(data):,}")


def length_histogram(lengths: pd.Series, unit: str = "words", threshold: int | None = None) -> go.Figure:
    """Distribution of text lengths in words or tokens."""
    data = pd.to_numeric(lengths, errors="coerce").dropna()
    median = float(data.median()) if len(data) else 0.0
    return histogram(data, f"length ({unit})", f"Text length ({unit}): median {median:,.0f}, n = {len(data):,}",
                     threshold=threshold, threshold_label=f"{threshold} {unit}")


def category_counts(values: pd.Series, title: str, label: str, top: int = 20) -> go.Figure:
    """Horizontal bar chart of the most frequent values, with shares in the hover."""
    counts = values.fillna("(missing)").astype(str).value_counts()
    other = counts.iloc[top:].sum()
    counts = counts.iloc[:top]
    if other:
        counts.loc["(other)"] = other
    frame = pd.DataFrame({label: counts.index, "texts": counts.values})
    frame["share"] = frame["texts"] / max(frame["texts"].sum(), 1)
    fig = px.bar(frame, x="texts", y=label, orientation="h", color_discrete_sequence=PALETTE,
                 custom_data=["share"])
    fig.update_traces(hovertemplate="%{y}<br>%{x:,} texts (%{customdata[0]:.1%})<extra></extra>")
    fig.update_yaxes(autorange="reversed", title=None)
    return _style(fig, title)


def numeric_by_group(frame: pd.DataFrame, value: str, group: str, title: str | None = None) -> go.Figure:
    """Box plot of a numeric result per group (shows spread, not just the mean)."""
    data = frame[[value, group]].dropna()
    data[group] = data[group].astype(str)
    order = data.groupby(group)[value].median().sort_values(ascending=False).index.tolist()
    fig = px.box(data, x=group, y=value, color=group, category_orders={group: order},
                 color_discrete_sequence=PALETTE, points=False)
    fig.update_layout(showlegend=False)
    counts = data[group].value_counts()
    fig.update_xaxes(ticktext=[f"{g}<br>n={counts[g]:,}" for g in order], tickvals=order)
    return _style(fig, title or f"{value} by {group}")


def counts_over_time(dates: pd.Series, freq: str = "MS", title: str = "Texts over time") -> go.Figure:
    """Number of texts per period (month by default); undated texts are counted in the title."""
    parsed = pd.to_datetime(dates, errors="coerce")
    missing = int(parsed.isna().sum())
    series = parsed.dropna().dt.to_period("M" if freq == "MS" else "W").dt.start_time.value_counts().sort_index()
    fig = px.bar(x=series.index, y=series.values, labels={"x": "period", "y": "texts"}, color_discrete_sequence=PALETTE)
    fig.update_traces(hovertemplate="%{x|%b %Y}<br>%{y:,} texts<extra></extra>")
    suffix = f" ({missing:,} without a readable date)" if missing else ""
    return _style(fig, title + suffix)
