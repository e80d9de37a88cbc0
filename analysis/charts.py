"""Charts: pure functions from data frames to plotly figures.

Nothing here reads session state or files; the pages pass data in and show what comes
back, and the same figures work in a notebook. Every figure has a title, labelled axes,
counts in the hover, and a colour-blind-safe palette.
"""

from __future__ import annotations

import colorsys
import html
import os
import re

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from .aggregate import top_labels

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
# Paul Tol's "muted" set: the next nine colours, still distinct from Okabe-Ito's.
_MORE = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499"]
TEMPLATE = "plotly_white"
# Charts with more categories than this show the largest ones and "other" (top-N), or
# small multiples (over time): past about a dozen, colours stop telling lines apart.
MAX_CATEGORIES = 12
# Series over time drawn in one plot; more become one small panel each.
MAX_LINES = 6
# Legend entries longer than this are shortened (the hover keeps the whole name).
LEGEND_CHARS = 40

# Readable names of the result columns the tasks write (see design.md, Output columns).
COLUMN_TITLES = {
    "stats_words": "Words per text",
    "stats_sentences": "Sentences per text",
    "stats_tokens": "Model tokens per text",
    "stats_ttr": "Type-token ratio (0 to 1)",
    "stats_language": "Detected language",
    "sentiment_label": "Sentiment",
    "sentiment_score": "Sentiment score (-1 to 1)",
    "emotion_label": "Top emotion",
    "code_label": "Code",
    "code_labels": "Codes",
    "code_explanation": "Why this code (the model's explanation)",
    "sentiment_explanation": "Why this sentiment (the model's explanation)",
    "emotion_explanation": "Why this emotion (the model's explanation)",
    "prompt_answer": "Answer to the prompt",
    "summary": "Summary",
    "topic_id": "Topic number",
    "topic_label": "Topic",
    "topic_prob": "Topic probability (0 to 1)",
}
# Families of columns named after a label: prefix -> title with the label filled in.
_COLUMN_FAMILIES = (
    ("sentiment_prob_", "P(sentiment: {})"),
    ("emotion_", "Emotion: {} (0 to 1)"),
    ("code_", "P(code: {})"),
)


def describe_column(name) -> str:
    """A readable name for a column, for axis and chart titles.

    Known result columns get their description (`stats_words` -> "Words per text",
    `code_housing` -> "P(code: housing)"); other identifier-like names are prettified
    (`age_group` -> "Age group"); anything else (a user's "Region", "mean score") is kept.
    Plain text: the charts escape it like every other user string.
    """
    text = str(name)
    if text in COLUMN_TITLES:
        return COLUMN_TITLES[text]
    for prefix, template in _COLUMN_FAMILIES:
        if text.startswith(prefix) and len(text) > len(prefix):
            return template.format(text[len(prefix):].replace("_", " "))
    if "_" in text and re.fullmatch(r"[A-Za-z0-9_]+", text):
        words = text.strip("_").replace("_", " ")
        return words[:1].upper() + words[1:] if words else text
    return text


def palette(n: int) -> list[str]:
    """`n` distinct colours: Okabe-Ito for up to 8, then Tol's muted set, then evenly
    spaced hues at alternating lightness (never a repeated colour)."""
    n = max(int(n), 0)
    base = PALETTE + _MORE
    if n <= len(base):
        return base[:n]
    out, seen = list(base), {c.lower() for c in base}
    extra = n - len(base)
    i = 0
    while len(out) < n:
        hue = (i * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbours apart
        light = (0.35, 0.5, 0.65)[i % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.65)
        color = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        if color not in seen:
            seen.add(color)
            out.append(color)
        i += 1
        if i > 50 * (extra + 1):  # pragma: no cover - cannot happen for sane n
            break
    return out


def _short(name: str, limit: int = LEGEND_CHARS) -> str:
    """A legend entry cut to `limit` characters (escaped text in, escaped text out)."""
    plain = html.unescape(name)
    return name if len(plain) <= limit else _esc(plain[: limit - 1].rstrip() + "…")


def _legend_below(fig: go.Figure, names: list[str]) -> None:
    """Horizontal legend under the plot, the figure taller by the rows it needs, so that a
    long legend wraps instead of being cut off at the right edge."""
    width = sum(len(html.unescape(str(x))) * 7 + 40 for x in names)
    rows = max(1, int(np.ceil(width / 700)))
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0, "xanchor": "left",
                              "title": None})
    if rows > 1:
        height = fig.layout.height or 450
        fig.update_layout(height=int(height + 22 * (rows - 1)))


def _style(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title={"text": _esc(title), "x": 0, "xanchor": "left"},
        template=TEMPLATE,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        font={"size": 13},
        legend_title_text=None,
    )
    return fig


BIN_ON_SERVER = 20_000  # values above which a histogram is binned before it goes to the browser


def histogram(values: pd.Series, label: str, title: str | None = None, threshold: float | None = None,
              threshold_label: str = "") -> go.Figure:
    """Distribution of a numeric column; a dashed line marks a threshold (a model window, say).

    `label` may be a column name: it is shown by its readable name (`describe_column`)."""
    plain = describe_column(label)
    label = _esc(plain)
    data = pd.to_numeric(values, errors="coerce").dropna()
    nbins = min(60, max(10, int(np.sqrt(len(data)))))
    if len(data) > BIN_ON_SERVER:
        # Binned here: px.histogram sends every value to the browser (a million texts: megabytes
        # per chart, and a page that takes seconds to draw); the bars look the same.
        counts, edges = np.histogram(data.to_numpy(dtype=float), bins=nbins)
        fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                               marker_color=PALETTE[0], customdata=np.c_[edges[:-1], edges[1:]],
                               hovertemplate=f"{label} %{{customdata[0]:.4g}} to %{{customdata[1]:.4g}}"
                                             "<br>%{y:,} texts<extra></extra>"))
        fig.update_layout(bargap=0)
        fig.update_xaxes(title=label)
    else:
        fig = px.histogram(x=data, nbins=nbins, labels={"x": label}, color_discrete_sequence=PALETTE)
        fig.update_traces(hovertemplate=f"{label} %{{x}}<br>%{{y:,}} texts<extra></extra>")
    fig.update_yaxes(title="texts")
    if threshold is not None and len(data) and data.max() >= threshold * 0.5:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#D55E00",
                      annotation_text=_esc(threshold_label or threshold), annotation_position="top right")
    median = float(data.median()) if len(data) else float("nan")
    # The plain label: _style escapes the title (the escaped one would show "&lt;").
    return _style(fig, title or f"{plain}: median {median:,.3g}, n = {len(data):,}")


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
    label = _esc(describe_column(label))
    # Values are user data: escaped, or a value like <a href=...> would render as a link.
    frame = pd.DataFrame({label: [_esc(v) for v in counts.index], "texts": counts.values})
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
    vname, gname = _esc(describe_column(value)), _esc(describe_column(group))
    counts = data[group].value_counts()
    ticks = [_esc(g) for g in order]
    if len(set(ticks)) < len(ticks):
        ticks = [f"{t} [{i + 1}]" for i, t in enumerate(ticks)]
    fig = go.Figure()
    # One trace per group, built by hand: plotly express would name the traces and the hover
    # after the raw group values and column names.
    for g, tick, color in zip(order, ticks, palette(len(order))):
        fig.add_box(y=data.loc[data[group] == g, value], x=[tick] * int(counts[g]), name=tick,
                    marker_color=color, boxpoints=False,
                    hovertemplate=f"{tick}<br>{vname} %{{y}}<br>n = {counts[g]:,} texts<extra></extra>")
    fig.update_layout(showlegend=False)
    fig.update_xaxes(title=gname, type="category", ticktext=[f"{t}<br>n={counts[g]:,}" for g, t in zip(order, ticks)],
                     tickvals=ticks)
    fig.update_yaxes(title=vname)
    return _style(fig, title or f"{describe_column(value)} by {describe_column(group)}")


def counts_over_time(dates: pd.Series, freq: str = "MS", title: str = "Texts over time") -> go.Figure:
    """Number of texts per period (month by default); undated texts are counted in the title."""
    parsed = pd.to_datetime(dates, errors="coerce")
    missing = int(parsed.isna().sum())
    series = parsed.dropna().dt.to_period("M" if freq == "MS" else "W").dt.start_time.value_counts().sort_index()
    fig = px.bar(x=series.index, y=series.values, labels={"x": "period", "y": "texts"}, color_discrete_sequence=PALETTE)
    fig.update_traces(hovertemplate="%{x|%b %Y}<br>%{y:,} texts<extra></extra>")
    suffix = f" ({missing:,} without a readable date)" if missing else ""
    return _style(fig, title + suffix)


# --------------------------------------------------------------------------- uncertainty charts
# Figures for the tables of `analysis.aggregate`: every estimate is drawn with its interval
# and the number of texts behind it. Group and label names come from user data and plotly
# renders tick labels and hover text as its own small HTML dialect, so they pass through
# `_esc` before they reach a figure. Titles passed in are plain text and are escaped too
# (pages build them from column names). The rule: every string a chart puts into a figure
# is escaped exactly once, here; callers pass plain text, never markup or escaped text.

# Semantic colours for sentiment labels (Okabe-Ito vermillion / grey / blue).
SENTIMENT_COLORS = {"negative": "#D55E00", "neutral": "#999999", "positive": "#0072B2"}
_MUTED = "#BBBBBB"


def _esc(value) -> str:
    """Text from user data made safe for plotly's pseudo-HTML (plotly shows the entities)."""
    return html.escape(str(value), quote=False)


def _rgba(color: str, alpha: float) -> str:
    """'#RRGGBB' -> 'rgba(r,g,b,alpha)' for translucent interval bands."""
    c = color.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    if len(c) != 6:
        return f"rgba(128,128,128,{alpha})"
    r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _level_text(table: pd.DataFrame) -> str:
    level = table.attrs.get("level", 0.95) if hasattr(table, "attrs") else 0.95
    return f"{level * 100:g}% CI"


def _empty(title: str, message: str = "No data") -> go.Figure:
    """A titled figure that says there is nothing to show (instead of raising)."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 16, "color": "#666666"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, title)


def _label_order(present: list, order: list | None) -> list:
    """Labels in the requested order first, then any others as they come."""
    if not order:
        return list(present)
    first = [lab for lab in order if lab in present]
    return first + [lab for lab in present if lab not in first]


def _label_colors(labels: list, colors: dict | None) -> dict:
    """A colour per label: the given ones, else distinct ones from `palette` (never repeated),
    grey for the "other" label of `aggregate.top_labels`."""
    colors = colors or {}
    spare = iter(palette(len(labels)))
    out = {}
    for lab in labels:
        given = colors.get(lab) or colors.get(str(lab))
        out[lab] = given or (_MUTED if _is_other(lab) else next(spare))
    return out


def _other_note(table: pd.DataFrame, labels: list) -> str:
    """Title suffix saying that `aggregate.top_labels` merged or dropped the smaller labels."""
    merged = int(table.attrs.get("other", 0) or 0)
    if not merged:
        return ""
    if table.attrs.get("other_dropped"):
        return f" (largest {len(labels)} labels; {merged} smaller ones not shown)"
    return f" (largest {len(labels) - 1} labels; {merged} smaller ones as other)"


def _is_other(lab) -> bool:
    return isinstance(lab, str) and lab.startswith("other (") and lab.rstrip().endswith(" labels)")


def _err(center: pd.Series, lo: pd.Series, hi: pd.Series) -> tuple[list, list]:
    """Asymmetric error-bar lengths; no bar where the interval is missing."""
    plus = (hi - center).clip(lower=0).fillna(0)
    minus = (center - lo).clip(lower=0).fillna(0)
    return plus.tolist(), minus.tolist()


def _custom(columns: list) -> np.ndarray:
    """Hover data row by row, as objects so numbers stay numbers (a plain column_stack of
    text and numbers would turn every number into text and break `:,` formats)."""
    cols = [list(c) for c in columns]
    out = np.empty((len(cols[0]) if cols else 0, len(cols)), dtype=object)
    for j, col in enumerate(cols):
        for i, v in enumerate(col):
            if isinstance(v, (np.integer, np.floating)):
                v = v.item()
            out[i, j] = None if isinstance(v, float) and not np.isfinite(v) else v
    return out


def _rows_height(rows: int, per_row: int = 28, base: int = 160) -> int:
    # Horizontal charts grow with the number of groups so 30 groups stay readable.
    return int(max(320, base + per_row * rows))


def _period_format(table: pd.DataFrame) -> tuple[str, str]:
    """(hover date format, period word) from the table's frequency."""
    freq = table.attrs.get("freq", "M")
    return ("week of %d %b %Y", "week") if freq == "W" else ("%b %Y", "month")


def _band(x: pd.Series, lo: pd.Series, hi: pd.Series) -> tuple[list, list]:
    """Polygon(s) around the interval: one closed shape per run of periods with an
    interval, separated by None (plotly's fill="toself" closes each segment on its own)."""
    xs, ys = [], []
    ok = (lo.notna() & hi.notna()).to_numpy()
    xv, lv, hv = list(x), lo.tolist(), hi.tolist()
    i, n = 0, len(xv)
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j < n and ok[j]:
            j += 1
        if xs:
            xs.append(None)
            ys.append(None)
        xs += xv[i:j] + xv[i:j][::-1]
        ys += hv[i:j] + lv[i:j][::-1]
        i = j
    return xs, ys


def label_distribution(shares: pd.DataFrame, label: str, order: list[str] | None = None,
                       title: str | None = None, colors: dict[str, str] | None = None,
                       top: int = MAX_CATEGORIES) -> go.Figure:
    """Bars of label shares with interval whiskers, from `aggregate.label_shares`.

    Counts are on the bars and in the hover. Without a group column: one bar per label.
    With one (label_shares(frame, label, group)): horizontal bars per group, one colour
    per label, so 2 to 30 groups stay readable; past `top` labels the smaller ones are
    summed into "other" (`aggregate.top_labels`). `colors` maps labels to colours (the
    sentiment pages pass `SENTIMENT_COLORS`); the legend sits below the plot.
    """
    plain = describe_column(label)
    name = _esc(plain)
    default = title is None
    title = title if title is not None else f"{plain}: share of texts"
    if shares is None or shares.empty or label not in shares.columns:
        return _empty(title)
    group_cols = [c for c in shares.columns if c not in {label, "n", "total", "share", "lo", "hi", "sparse"}]
    if group_cols:  # grouped bars of 30 labels are unreadable: the largest and "other"
        shares = top_labels(shares, label, top, other="other")
    labels = _label_order(list(pd.unique(shares[label])), order)
    palette = _label_colors(labels, colors)
    ci = _level_text(shares)
    fig = go.Figure()
    if not group_cols:
        data = shares.set_index(label).loc[labels].reset_index()
        plus, minus = _err(data["share"], data["lo"], data["hi"])
        ticks = [_esc(v) for v in data[label]]
        fig.add_bar(
            x=ticks, y=data["share"], marker_color=[palette[v] for v in data[label]],
            error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "color": "#444444", "thickness": 1.2},
            text=[f"n = {k:,}" for k in data["n"]], textposition="inside", insidetextanchor="middle",
            customdata=_custom([ticks, data["n"], data["total"], data["lo"], data["hi"]]),
            hovertemplate=("%{customdata[0]}<br>%{y:.1%} of texts"
                           f" ({ci} %{{customdata[3]:.1%}} to %{{customdata[4]:.1%}})"
                           "<br>%{customdata[1]:,} of %{customdata[2]:,} texts<extra></extra>"),
            name=name, showlegend=False,
        )
        fig.update_xaxes(title=name, type="category")
        fig.update_yaxes(title="share of texts", tickformat=".0%", rangemode="tozero")
        total = int(data["total"].max()) if len(data) else 0
        if default:
            title = f"{plain}: share of texts, n = {total:,}"
        fig.update_layout(uniformtext={"minsize": 10, "mode": "hide"})
        return _style(fig, title)

    group = group_cols[0]
    groups = list(pd.unique(shares[group]))
    totals = shares.groupby(group, sort=False)["total"].max()
    ticks = {g: _esc(g) for g in groups}
    for lab in labels:
        part = shares[shares[label] == lab].set_index(group).reindex(groups)
        plus, minus = _err(part["share"], part["lo"], part["hi"])
        y = [ticks[g] for g in groups]
        fig.add_bar(
            y=y, x=part["share"], orientation="h", name=_short(_esc(lab)), marker_color=palette[lab],
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "color": "#444444", "thickness": 1.2},
            text=[f"{int(k):,}" if pd.notna(k) else "" for k in part["n"]], textposition="inside",
            customdata=_custom([y, [_esc(lab)] * len(groups), part["n"].fillna(0),
                                        part["total"].fillna(0), part["lo"], part["hi"]]),
            hovertemplate=("%{customdata[0]}: %{customdata[1]}<br>%{x:.1%} of texts"
                           f" ({ci} %{{customdata[4]:.1%}} to %{{customdata[5]:.1%}})"
                           "<br>%{customdata[2]:,} of %{customdata[3]:,} texts<extra></extra>"),
        )
    fig.update_layout(barmode="group", height=_rows_height(len(groups), per_row=18 + 8 * len(labels)),
                      uniformtext={"minsize": 9, "mode": "hide"})
    fig.update_yaxes(title=_esc(describe_column(group)), autorange="reversed", automargin=True,
                     tickvals=[ticks[g] for g in groups], ticktext=[f"{ticks[g]} (n={int(totals[g]):,})" for g in groups])
    fig.update_xaxes(title="share of texts", tickformat=".0%", rangemode="tozero")
    _legend_below(fig, [t.name for t in fig.data])
    if default:
        title = f"{plain} by {describe_column(group)}: share of texts" + _other_note(shares, labels)
    return _style(fig, title)


def mean_by_group(means: pd.DataFrame, value_label: str, group: str, title: str | None = None,
                  reference: float | None = 0.0) -> go.Figure:
    """Dot-and-whisker chart of group means with intervals, from `aggregate.group_means`.

    Groups run down the y axis in the table's order (highest mean first), with n in the
    tick labels and hover; a dashed line marks `reference` (0 for sentiment; None: none).
    """
    plain, gplain = describe_column(value_label), describe_column(group)
    name, gname = _esc(plain), _esc(gplain)
    default = title is None
    title = title if title is not None else f"{plain} by {gplain}: mean with {_level_text(means)}"
    if means is None or means.empty or group not in means.columns:
        return _empty(title)
    ticks = [_esc(g) for g in means[group]]
    if len(set(ticks)) < len(ticks):  # distinct groups that read the same (1 and "1")
        ticks = [f"{t} [{i + 1}]" for i, t in enumerate(ticks)]
    plus, minus = _err(means["mean"], means["lo"], means["hi"])
    fig = go.Figure()
    fig.add_scatter(
        x=means["mean"], y=ticks, mode="markers", marker={"color": PALETTE[0], "size": 9},
        error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                 "color": PALETTE[0], "thickness": 1.5, "width": 4},
        customdata=_custom([ticks, means["n"], means["lo"], means["hi"]]),
        hovertemplate=("%{customdata[0]}<br>mean %{x:.3f}"
                       f" ({_level_text(means)} %{{customdata[2]:.3f}} to %{{customdata[3]:.3f}})"
                       "<br>n = %{customdata[1]:,} texts<extra></extra>"),
        name=name, showlegend=False,
    )
    if reference is not None:
        fig.add_vline(x=reference, line_dash="dash", line_color="#888888", line_width=1)
    fig.update_yaxes(title=gname, autorange="reversed", automargin=True, tickvals=ticks,
                     ticktext=[f"{t} (n={int(n):,})" for t, n in zip(ticks, means["n"])])
    fig.update_xaxes(title=name, zeroline=False)
    fig.update_layout(height=_rows_height(len(ticks)))
    missing = int(means.attrs.get("missing", 0) or 0)
    if missing and default:
        title += f" ({missing:,} texts without a value or {gplain} left out)"
    return _style(fig, title)


def trend_chart(table: pd.DataFrame, value_label: str, title: str | None = None) -> go.Figure:
    """Mean per period with a shaded interval band, from `aggregate.trend`.

    Muted bars of the number of texts per period sit on a secondary y axis (scaled to
    the lower part of the plot so they stay in the background). Sparse periods (too few
    texts for an interval) are hollow markers and say so in the hover.
    """
    plain = describe_column(value_label)
    name = _esc(plain)
    default = title is None
    title = title if title is not None else f"{plain} over time: mean with {_level_text(table)}"
    if table is None or table.empty or "period" not in table.columns:
        return _empty(title)
    from plotly.subplots import make_subplots

    data = table.sort_values("period")
    sparse = data["sparse"] if "sparse" in data.columns else data["lo"].isna()
    sparse = sparse.fillna(True).astype(bool)
    fmt, word = _period_format(table)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=data["period"], y=data["n"], name="texts", marker_color=_MUTED, opacity=0.45,
                hovertemplate=f"%{{x|{fmt}}}<br>%{{y:,}} texts<extra></extra>", secondary_y=True)
    bx, by = _band(data["period"], data["lo"], data["hi"])
    if bx:
        fig.add_scatter(x=bx, y=by, fill="toself", fillcolor=_rgba(PALETTE[0], 0.18), mode="lines",
                        line={"width": 0}, name=_level_text(table), hoverinfo="skip", secondary_y=False)
    note = np.where(sparse, "<br>few texts: no interval", "")
    fig.add_scatter(
        x=data["period"], y=data["mean"], mode="lines+markers", name=name,
        line={"color": PALETTE[0], "width": 2},
        marker={"color": PALETTE[0], "size": 7, "symbol": np.where(sparse, "circle-open", "circle").tolist(),
                "line": {"color": PALETTE[0], "width": 1.5}},
        customdata=_custom([data["n"], data["lo"], data["hi"], note]),
        hovertemplate=(f"%{{x|{fmt}}}<br>mean %{{y:.3f}}"
                       f" ({_level_text(table)} %{{customdata[1]:.3f}} to %{{customdata[2]:.3f}})"
                       "<br>n = %{customdata[0]:,} texts%{customdata[3]}<extra></extra>"),
        secondary_y=False,
    )
    top = float(data["n"].max()) if len(data) else 1.0
    fig.update_yaxes(title_text=name, secondary_y=False)
    # Ticks only up to the tallest bar: the axis runs to 3x that to keep the bars low.
    ticks = sorted({0, int(round(top / 2)), int(top)}) if top > 0 else [0]
    fig.update_yaxes(title_text=f"texts per {word}", secondary_y=True, showgrid=False,
                     range=[0, max(top, 1) * 3], tickvals=ticks, tickformat=",d",
                     tickfont={"color": "#888888"})
    fig.update_xaxes(title_text=word)
    undated = int(table.attrs.get("undated", 0) or 0)
    if undated and default:
        title += f" ({undated:,} texts without a readable date)"
    fig.update_layout(hovermode="x unified", legend={"orientation": "h", "y": -0.2})
    return _style(fig, title)


def shares_over_time(table: pd.DataFrame, label: str, order: list[str] | None = None,
                     colors: dict[str, str] | None = None, title: str | None = None,
                     top: int = MAX_CATEGORIES) -> go.Figure:
    """One line per label with its interval band, from `aggregate.label_shares_over_time`.

    Counts (n of total) are in the hover; sparse periods are hollow markers. Up to
    `MAX_LINES` labels share one plot with the legend below it; more get one small panel
    each (same axes, so the panels compare), as a dozen crossing lines and bands cannot be
    read; past `top` labels the smaller ones are summed into "other".
    """
    plain = describe_column(label)
    title = title if title is not None else f"{plain} over time: share of texts with {_level_text(table)}"
    if table is None or table.empty or label not in table.columns or "period" not in table.columns:
        return _empty(title)
    table = top_labels(table, label, top, other="other")
    labels = _label_order(list(pd.unique(table[label])), order)
    palette = _label_colors(labels, colors)
    fmt, word = _period_format(table)
    facets = len(labels) > MAX_LINES
    if facets:
        from plotly.subplots import make_subplots

        cols = 3
        rows = int(np.ceil(len(labels) / cols))
        fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                            subplot_titles=[_short(_esc(lab), 34) for lab in labels],
                            vertical_spacing=min(0.08, 0.5 / rows), horizontal_spacing=0.05)
    else:
        fig = go.Figure()
    for i, lab in enumerate(labels):
        where = {"row": i // 3 + 1, "col": i % 3 + 1} if facets else {}
        part = table[table[label] == lab].sort_values("period")
        sparse = (part["sparse"] if "sparse" in part.columns else part["total"] < 1).fillna(True).astype(bool)
        color, legend = palette[lab], _esc(lab)
        bx, by = _band(part["period"], part["lo"], part["hi"])
        if bx:
            fig.add_scatter(x=bx, y=by, fill="toself", fillcolor=_rgba(color, 0.15), mode="lines",
                            line={"width": 0}, legendgroup=legend, showlegend=False, hoverinfo="skip",
                            name=f"{legend} {_level_text(table)}", **where)
        note = np.where(sparse, "<br>few texts", "")
        fig.add_scatter(
            x=part["period"], y=part["share"], mode="lines+markers", name=_short(legend), legendgroup=legend,
            line={"color": color, "width": 2}, showlegend=not facets,
            marker={"color": color, "size": 6, "symbol": np.where(sparse, "circle-open", "circle").tolist()},
            customdata=_custom([[legend] * len(part), part["n"], part["total"], part["lo"], part["hi"], note]),
            hovertemplate=(f"%{{x|{fmt}}}<br>%{{customdata[0]}}: %{{y:.1%}}"
                           f" ({_level_text(table)} %{{customdata[3]:.1%}} to %{{customdata[4]:.1%}})"
                           "<br>%{customdata[1]:,} of %{customdata[2]:,} texts%{customdata[5]}<extra></extra>"),
            **where,
        )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    if facets:
        fig.update_yaxes(title_text="share", col=1)
        fig.update_xaxes(title_text=word, row=rows)
        fig.update_annotations(font_size=12)
        fig.update_layout(height=int(140 + 190 * rows), showlegend=False)
    else:
        fig.update_yaxes(title="share of texts")
        fig.update_xaxes(title=word)
        _legend_below(fig, [t.name for t in fig.data if t.showlegend is not False])
    if title == f"{plain} over time: share of texts with {_level_text(table)}":
        title += _other_note(table, labels)
    return _style(fig, title)


def learning_curve_chart(curve: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Cross-validated macro-F1 against the number of coded training rows (mean ± 1 sd over folds)."""
    if curve.empty:
        return _empty(title or "Learning curve", "Not enough coded rows")
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=list(curve["n_train"]) + list(curve["n_train"])[::-1],
        y=list(curve["macro_f1"] + curve["sd"]) + list(curve["macro_f1"] - curve["sd"])[::-1],
        fill="toself", fillcolor=_rgba(PALETTE[0], 0.15), line={"width": 0}, hoverinfo="skip", showlegend=False,
    ))
    fig.add_trace(go.Scatter(
        x=curve["n_train"], y=curve["macro_f1"], mode="lines+markers", line={"color": PALETTE[0]}, showlegend=False,
        hovertemplate="%{x:,} coded rows<br>macro-F1 %{y:.2f}<extra></extra>",
    ))
    fig.update_xaxes(title="coded rows used for training")
    fig.update_yaxes(title="macro-F1 (cross-validated)", range=[0, 1])
    return _style(fig, title or "Learning curve: still rising = coding more rows will help")


def _zrange(z: np.ndarray) -> dict:
    # plotly applies zmin only together with zmax.
    if not np.isfinite(z).any():
        return {}
    low, high = min(0.0, float(np.nanmin(z))), float(np.nanmax(z))
    return {"zmin": low, "zmax": high if high > low else low + 1}


def profile_heatmap(profile: pd.DataFrame, title: str | None = None, value_format: str = ".2f") -> go.Figure:
    """Groups x columns heatmap of means, from `aggregate.profile_by_group`.

    Sequential colour scale (one direction: more is darker), values written in the cells,
    group sizes in the y tick labels and hover. A prefix shared by all columns
    ("emotion_") is dropped from the column names and named in the x axis title.
    """
    title = title if title is not None else "Mean by group"
    if profile is None or profile.empty or profile.shape[1] == 0:
        return _empty(title)
    cols = [str(c) for c in profile.columns]
    prefix = ""
    if len(cols) > 1:
        common = os.path.commonprefix(cols)
        prefix = common[: common.rfind("_") + 1] if "_" in common else ""
        if any(c == prefix for c in cols):
            prefix = ""
    # Without a shared prefix the cells are different measures: name each readably.
    xnames = [_esc(c[len(prefix):]) if prefix else _esc(describe_column(c)) for c in cols]
    gname = _esc(profile.index.name) if profile.index.name is not None else "group"
    sizes = profile.attrs.get("n")
    sizes = pd.Series(sizes).reindex(profile.index) if sizes is not None else pd.Series(np.nan, index=profile.index)
    ynames = [_esc(g) for g in profile.index]
    if len(set(ynames)) < len(ynames):
        ynames = [f"{t} [{i + 1}]" for i, t in enumerate(ynames)]
    ticktext = [f"{t} (n={int(n):,})" if pd.notna(n) else t for t, n in zip(ynames, sizes)]
    z = profile.to_numpy(dtype=float)
    ncount = np.repeat(sizes.fillna(-1).to_numpy(dtype=float)[:, None], len(cols), axis=1)
    fig = go.Figure(go.Heatmap(
        # The scale starts at 0 (or below, for signed columns) so pale means small, not just
        # "smallest here": a 0.50 vs 0.54 difference should not look like white vs navy.
        z=z, x=xnames, y=ynames, colorscale="Blues", **_zrange(z),
        texttemplate=f"%{{z:{value_format}}}", customdata=ncount,
        hovertemplate=f"%{{y}}<br>%{{x}}: mean %{{z:{value_format}}}<br>n = %{{customdata:,}} texts<extra></extra>",
        colorbar={"title": {"text": "mean"}},
    ))
    fig.update_yaxes(title=gname, autorange="reversed", automargin=True, tickvals=ynames, ticktext=ticktext)
    # Column names on top when the map is tall, so they are in view next to the first rows.
    fig.update_xaxes(title=_esc(prefix.rstrip("_")) if prefix else None,
                     side="top" if len(ynames) > 12 else "bottom", tickangle=-30)
    fig.update_layout(height=_rows_height(len(ynames), per_row=30))
    fig = _style(fig, title)
    if len(ynames) > 12:
        fig.update_layout(margin={"t": 110})  # room for the title and the column names above
    return fig


# --------------------------------------------------------------------------- validation charts
# Figures for `analysis.validation.AgreementReport`. Codes and coder names are user data:
# they pass through `_esc` like group names above.

def confusion_heatmap(confusion: pd.DataFrame, title: str | None = None, normalize: str | None = "true") -> go.Figure:
    """Confusion matrix: human (gold) codes down the y axis, model codes along x.

    Colour is the share of the row (normalize="true": of the texts with that human code,
    how many the model gave each code; "pred": share of the column; "all": of all texts;
    None: the counts themselves); the cells show the counts, the hover both.
    """
    title = title if title is not None else "Confusion matrix: human code (rows) vs model code (columns)"
    if confusion is None or confusion.empty:
        return _empty(title)
    counts = confusion.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if normalize == "true":
            shares = counts / counts.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            shares = counts / counts.sum(axis=0, keepdims=True)
        elif normalize == "all":
            shares = counts / counts.sum()
        elif normalize in (None, "none"):
            shares = counts
        else:
            raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, not {normalize!r}")
    ynames = [_esc(c) for c in confusion.index]
    xnames = [_esc(c) for c in confusion.columns]
    # Distinct codes that read the same once escaped would merge on a category axis.
    if len(set(ynames)) < len(ynames):
        ynames = [f"{t} [{i + 1}]" for i, t in enumerate(ynames)]
    if len(set(xnames)) < len(xnames):
        xnames = [f"{t} [{i + 1}]" for i, t in enumerate(xnames)]
    share_word = {"true": "of the human code's texts", "pred": "of the model code's texts",
                  "all": "of all texts"}.get(normalize or "none", "")
    shown = np.nan_to_num(shares, nan=0.0)
    fig = go.Figure(go.Heatmap(
        z=shown, x=xnames, y=ynames, colorscale="Blues", zmin=0, zmax=1 if normalize in ("true", "pred", "all") else None,
        text=[[f"{int(v):,}" for v in row] for row in counts], texttemplate="%{text}",
        customdata=np.dstack([counts, shown]),
        hovertemplate=("human: %{y}<br>model: %{x}<br>%{customdata[0]:,} texts"
                       + (f" (%{{customdata[1]:.1%}} {share_word})" if share_word else "") + "<extra></extra>"),
        colorbar={"title": {"text": "share of row" if normalize == "true" else ("share" if share_word else "texts")},
                  "tickformat": ".0%" if share_word else ",d"},
        xgap=1, ygap=1,
    ))
    fig.update_yaxes(title="human code", autorange="reversed", automargin=True, type="category")
    fig.update_xaxes(title="model code", automargin=True, type="category", tickangle=-30)
    size = max(len(ynames), len(xnames))
    fig.update_layout(height=_rows_height(size, per_row=40, base=200))
    return _style(fig, title)


def prevalence_chart(prevalence: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Share of texts per code as the model and as the humans coded them, with intervals.

    Grouped bars (model, human) per code from `AgreementReport.prevalence`; error bars
    are its intervals, counts are in the hover.
    """
    title = title if title is not None else "Prevalence of each code: model vs human (95% CI)"
    if prevalence is None or prevalence.empty:
        return _empty(title)
    codes = list(pd.unique(prevalence["code"]))
    ticks = [_esc(c) for c in codes]
    if len(set(ticks)) < len(ticks):
        ticks = [f"{t} [{i + 1}]" for i, t in enumerate(ticks)]
    colors = {"model": PALETTE[0], "human": PALETTE[1]}
    fig = go.Figure()
    for source in pd.unique(prevalence["source"]):
        part = prevalence[prevalence["source"] == source].set_index("code").reindex(codes)
        plus, minus = _err(part["share"], part["ci_low"], part["ci_high"])
        count = part["count"] if "count" in part.columns else (part["share"] * part["n"]).round()
        fig.add_bar(
            x=ticks, y=part["share"], name=_esc(source), marker_color=colors.get(str(source), PALETTE[2]),
            error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "color": "#444444", "thickness": 1.2},
            customdata=_custom([ticks, count, part["n"], part["ci_low"], part["ci_high"]]),
            hovertemplate=(f"{_esc(source)}: %{{customdata[0]}}<br>%{{y:.1%}} of texts"
                           " (CI %{customdata[3]:.1%} to %{customdata[4]:.1%})"
                           "<br>%{customdata[1]:,} of %{customdata[2]:,} texts<extra></extra>"),
        )
    fig.update_layout(barmode="group")
    _legend_below(fig, [t.name for t in fig.data])
    fig.update_xaxes(title="code", type="category", tickvals=ticks, ticktext=ticks)
    fig.update_yaxes(title="share of texts", tickformat=".0%", rangemode="tozero")
    return _style(fig, title)


_METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "cohen_kappa": "Cohen's kappa",
                 "krippendorff_alpha": "Krippendorff's alpha"}


def agreement_chart(summary: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Dot and interval per comparison, one colour per metric, from `AgreementReport.summary`."""
    title = title if title is not None else "Agreement with 95% bootstrap CI"
    if summary is None or summary.empty:
        return _empty(title)
    comparisons = list(pd.unique(summary["comparison"]))
    ticks = {c: _esc(c) for c in comparisons}
    fig = go.Figure()
    for i, metric in enumerate(pd.unique(summary["metric"])):
        part = summary[summary["metric"] == metric]
        plus, minus = _err(part["value"], part["ci_low"], part["ci_high"])
        y = [ticks[c] for c in part["comparison"]]
        name = _METRIC_NAMES.get(metric, _esc(metric))
        fig.add_scatter(
            x=part["value"], y=y, mode="markers", name=name,
            marker={"color": PALETTE[i % len(PALETTE)], "size": 9},
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "color": PALETTE[i % len(PALETTE)], "thickness": 1.5, "width": 3},
            customdata=_custom([y, part["ci_low"], part["ci_high"], part["n"]]),
            hovertemplate=(f"%{{customdata[0]}}<br>{name} %{{x:.3f}}"
                           " (CI %{customdata[1]:.3f} to %{customdata[2]:.3f})"
                           "<br>n = %{customdata[3]:,} texts<extra></extra>"),
        )
    fig.add_vline(x=0, line_dash="dash", line_color="#888888", line_width=1)
    fig.update_yaxes(title=None, autorange="reversed", automargin=True, type="category")
    low = pd.to_numeric(pd.concat([summary["value"], summary["ci_low"]]), errors="coerce").min()
    low = min(0.0, float(low)) if pd.notna(low) else 0.0
    fig.update_xaxes(title="agreement (1 = perfect)", range=[low - 0.05, 1.05])
    fig.update_layout(height=_rows_height(len(comparisons), per_row=36))
    _legend_below(fig, [t.name for t in fig.data])
    return _style(fig, title)


def stability_chart(summary: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Krippendorff's alpha between the runs of each prompt-stability check, with its interval
    and the usual bars (0.667 tentative, 0.8 reliable), from ``coding.stability.summary_frame``."""
    title = title if title is not None else "Prompt stability: agreement between runs (95% bootstrap CI)"
    if summary is None or summary.empty or summary["alpha"].isna().all():
        return _empty(title, "Alpha is undefined: every run gave every text the same code")
    table = pd.DataFrame({"comparison": [f"{c} ({r} runs)" for c, r in zip(summary["check"], summary["runs"])],
                          "metric": "krippendorff_alpha", "value": summary["alpha"], "ci_low": summary["ci_low"],
                          "ci_high": summary["ci_high"], "n": summary["texts"]})
    fig = agreement_chart(table, title)
    for bar, text in ((0.667, "tentative"), (0.8, "reliable")):
        fig.add_vline(x=bar, line_dash="dot", line_color="#009E73", line_width=1,
                      annotation_text=text, annotation_position="top")
    return fig


_ESTIMATORS = {"model_only": ("model only", "#999999"), "corrected": ("corrected by hand codes", PALETTE[0])}


def estimates_chart(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Model-only and corrected estimates side by side, one row per code (and group or
    coefficient), dots with their intervals, from ``inference`` long tables."""
    title = title if title is not None else "Model-only vs corrected estimates (95% CI)"
    if table is None or table.empty or table["estimate"].isna().all():
        return _empty(title, "No estimates to show")
    keys = table[["estimand", "code", "group"]].astype(str).drop_duplicates()
    regression = not set(keys["estimand"]) <= {"share", "mean"}
    labels = {}
    for estimand, code, group in keys.itertuples(index=False):
        parts = [estimand] if regression else [code] + ([group] if group else ["all texts"])
        labels[(estimand, code, group)] = " · ".join(_esc(p) for p in parts)
    if len(set(labels.values())) < len(labels):  # names equal after escaping: keep the rows apart
        labels = {k: f"{v} [{i + 1}]" for i, (k, v) in enumerate(labels.items())}
    order = list(labels.values())
    fig = go.Figure()
    for offset, (estimator, (name, color)) in zip((-0.17, 0.17), _ESTIMATORS.items()):
        part = table[table["estimator"] == estimator]
        if part.empty:
            continue
        y = [labels[(str(e), str(c), str(g))] for e, c, g in zip(part["estimand"], part["code"], part["group"])]
        plus, minus = _err(part["estimate"], part["ci_low"], part["ci_high"])
        fig.add_scatter(
            x=part["estimate"], y=[order.index(v) + offset for v in y], mode="markers", name=name,
            marker={"color": color, "size": 9, "symbol": "circle" if estimator == "corrected" else "diamond"},
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": color,
                     "thickness": 1.6, "width": 3},
            customdata=_custom([y, part["ci_low"], part["ci_high"], part["n_human"], part["n_model"]]),
            hovertemplate=(f"%{{customdata[0]}}<br>{name}: %{{x:.3f}} (CI %{{customdata[1]:.3f}} to "
                           "%{customdata[2]:.3f})<br>%{customdata[3]:,} hand-coded of %{customdata[4]:,} texts"
                           "<extra></extra>"),
        )
    fig.update_yaxes(title=None, tickvals=list(range(len(order))), ticktext=order, autorange="reversed",
                     automargin=True)
    if regression:
        fig.add_vline(x=0, line_dash="dash", line_color="#888888", line_width=1)
        fig.update_xaxes(title="coefficient")
    elif set(keys["estimand"]) == {"share"}:
        fig.update_xaxes(title="share of texts", tickformat=".0%", rangemode="tozero")
    else:
        fig.update_xaxes(title="mean")
    fig.update_layout(height=_rows_height(len(order), per_row=34))
    _legend_below(fig, [t.name for t in fig.data])
    return _style(fig, title)


def plan_chart(curve: pd.DataFrame, now: int | None = None, target: float | None = None,
               title: str | None = None) -> go.Figure:
    """Expected half-width (±) of the corrected interval against the number of random hand codes,
    beside the humans alone, with the current sample size and a target marked
    (from ``inference.width_curve`` / ``Plan.curve``)."""
    title = title if title is not None else "How many hand codes? Expected 95% interval (±) of a share"
    if curve is None or curve.empty:
        return _empty(title, "Nothing to plan from yet")
    fig = go.Figure()
    fig.add_scatter(x=curve["n_human"], y=curve["width"] / 2, mode="lines", name="corrected (model + hand codes)",
                    line={"color": PALETTE[0], "width": 2.5},
                    hovertemplate="%{x:,} hand codes: ±%{y:.3f}<extra>corrected</extra>")
    fig.add_scatter(x=curve["n_human"], y=curve["classical_width"] / 2, mode="lines", name="hand codes alone",
                    line={"color": "#999999", "width": 1.5, "dash": "dash"},
                    hovertemplate="%{x:,} hand codes: ±%{y:.3f}<extra>hand codes alone</extra>")
    if now:
        fig.add_vline(x=now, line_dash="dot", line_color=PALETTE[1], line_width=1.5,
                      annotation_text=f"now: {now:,}", annotation_position="top right")
    if target:
        fig.add_hline(y=target, line_dash="dot", line_color=PALETTE[2], line_width=1.5,
                      annotation_text=f"target ±{target:.3f}", annotation_position="bottom left")
    fig.update_xaxes(title="random hand codes", type="log")
    fig.update_yaxes(title="half-width of the 95% interval (±)", rangemode="tozero")
    _legend_below(fig, [t.name for t in fig.data])
    return _style(fig, title)


# --------------------------------------------------------------------------- topics


def topic_sizes(table: pd.DataFrame, title: str | None = None, top: int = 30) -> go.Figure:
    """Documents per topic (largest first, outliers in grey), keywords on hover."""
    if table is None or table.empty:
        return _empty(title or "Topic sizes")
    data = table.sort_values("size", ascending=False).head(top).iloc[::-1]
    names = [f"{int(t)}: {_esc(label)}" for t, label in zip(data["topic_id"], data["topic_label"])]
    colors = [_MUTED if int(t) == -1 else PALETTE[0] for t in data["topic_id"]]
    keywords = [_esc(", ".join(k[:8])) if isinstance(k, (list, tuple, np.ndarray)) else _esc(k) for k in data["keywords"]]
    fig = go.Figure(go.Bar(
        x=data["size"], y=names, orientation="h", marker_color=colors,
        customdata=np.column_stack([data["share"] * 100, keywords]),
        hovertemplate="%{y}<br>%{x:,} texts (%{customdata[0]:.1f}%)<br>%{customdata[1]}<extra></extra>",
    ))
    fig.update_layout(height=_rows_height(len(data)))
    fig.update_xaxes(title="texts")
    more = f" (largest {top} of {len(table)})" if len(table) > top else ""
    return _style(fig, title or f"Topic sizes{more}")


def document_map(points: pd.DataFrame, title: str | None = None) -> go.Figure:
    """2D map of documents (columns x, y, topic_label, snippet), one colour per topic; hover shows the text."""
    if points is None or points.empty:
        return _empty(title or "Document map")
    fig = go.Figure()
    labels = points["topic_label"].fillna("Outliers").astype(str)
    order = labels.value_counts().index.tolist()
    colours = iter(palette(sum(label != "Outliers" for label in order)))  # one distinct colour per topic
    for label in order:
        part = points[labels == label]
        outlier = label == "Outliers"
        fig.add_trace(go.Scattergl(
            x=part["x"], y=part["y"], mode="markers", name=_short(_esc(label)),
            marker={"size": 5, "opacity": 0.35 if outlier else 0.75,
                    "color": _MUTED if outlier else next(colours)},
            text=[_esc(s) for s in part["snippet"]],
            hovertemplate="%{text}<extra>" + _short(_esc(label)) + "</extra>",
        ))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=560, legend={"itemsizing": "constant"})
    _legend_below(fig, [t.name for t in fig.data])
    return _style(fig, title or "Document map (UMAP of the embeddings; nearby texts are similar)")


_TOKEN_COLORS = ("#DCEBF7", "#FBE3D2", "#E2F0D9", "#EDE2F5")


def tokens_chart(tables: dict[str, pd.DataFrame], limit: int = 60) -> go.Figure:
    """How each tokenizer cuts the same text: one row per tokenizer, one box per token (in
    alternating colours, the characters it covers written in it), from ``reading.tokenize``."""
    fig = go.Figure()
    names = list(tables)
    for row, name in enumerate(names):
        table = tables[name].head(limit)
        spans, starts = table["text"].astype(str).tolist(), table["start"].tolist()
        ends = table["end"].tolist()
        # Several byte tokens of one character (an emoji in byte-level BPE) share its span: "+" after the first.
        shown = ["+" if i and starts[i] < ends[i - 1] else (s if s.strip() else "␣") for i, s in enumerate(spans)]
        fig.add_trace(go.Bar(
            y=[_esc(name)] * len(table), x=[1] * len(table), base=list(range(len(table))), orientation="h",
            marker={"color": [_TOKEN_COLORS[(i + row) % len(_TOKEN_COLORS)] for i in range(len(table))],
                    "line": {"color": "white", "width": 2}},
            text=[_esc(s) for s in shown], textposition="inside", insidetextanchor="middle", textangle=0,
            textfont={"size": 12, "color": "#222"},
            customdata=np.column_stack([table["position"], [_esc(t) for t in table["token"]], table["id"]])
            if len(table) else None,
            hovertemplate="token %{customdata[0]}: %{customdata[1]} (id %{customdata[2]})<extra></extra>",
            showlegend=False))
    longest = max((len(t) for t in tables.values()), default=0)
    more = f" (first {limit} of up to {longest:,} tokens)" if longest > limit else ""
    fig.update_layout(barmode="overlay", title=f"The same text, cut into tokens{more}",
                      uniformtext={"minsize": 10, "mode": "show"},  # long tokens stay readable
                      xaxis={"title": "token position", "range": [0, min(max(longest, 1), limit)]},
                      yaxis={"autorange": "reversed"}, height=120 + 70 * len(names), bargap=0.25,
                      margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return fig
