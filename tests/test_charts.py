"""Charts: each returns a titled figure with the expected traces, counts in the hover,
escaped group names, and a "No data" figure for an empty table."""

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis import charts
from analysis.aggregate import group_means, label_shares, label_shares_over_time, profile_by_group, trend

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(4)
    n = 400
    return pd.DataFrame({
        "region": rng.choice(["North", "South", EVIL], n),
        "sentiment_score": rng.uniform(-1, 1, n),
        "sentiment_label": rng.choice(["negative", "neutral", "positive"], n),
        "emotion_joy": rng.uniform(0, 1, n),
        "emotion_anger": rng.uniform(0, 1, n),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        "words": rng.integers(1, 400, n),
    })


def _safe(fig: go.Figure) -> None:
    """The raw group name never reaches the figure; its escaped form does."""
    # Round-trip through JSON: to_json writes "<" as \u003c, which would hide a leak.
    text = json.dumps(json.loads(fig.to_json()), ensure_ascii=False)
    assert "<script>" not in text
    assert ESCAPED in text


def _is_empty(fig: go.Figure) -> bool:
    return isinstance(fig, go.Figure) and any(a.text == "No data" for a in fig.layout.annotations)


def _check_hover_data(trace, points: int, numeric: list[int]) -> None:
    """customdata has one row per point, and count columns hold numbers, not text
    (text would break the `:,` formats in the hover)."""
    data = np.asarray(trace.customdata, dtype=object)
    assert data.shape[0] == points
    for col in numeric:
        assert all(v is None or isinstance(v, (int, float)) for v in data[:, col])


def _hovers(fig: go.Figure) -> str:
    return " ".join(t.hovertemplate or "" for t in fig.data)


# --------------------------------------------------------------------------- new charts

def test_label_distribution_overall(results):
    shares = label_shares(results, "sentiment_label")
    fig = charts.label_distribution(shares, "sentiment_label", order=["negative", "neutral", "positive"],
                                    colors=charts.SENTIMENT_COLORS)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    bar = fig.data[0]
    assert bar.type == "bar"
    assert list(bar.x) == ["negative", "neutral", "positive"]  # order honoured
    assert list(bar.marker.color) == [charts.SENTIMENT_COLORS[k] for k in ["negative", "neutral", "positive"]]
    assert bar.error_y.array is not None and bar.error_y.arrayminus is not None  # CI whiskers
    assert all(t.startswith("n = ") for t in bar.text)  # counts on the bars
    assert "texts" in bar.hovertemplate and "customdata[1]:," in bar.hovertemplate
    assert "n = 400" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    _check_hover_data(bar, 3, [1, 2, 3, 4])


def test_label_distribution_by_group_escapes_names(results):
    shares = label_shares(results, "sentiment_label", "region")
    fig = charts.label_distribution(shares, "sentiment_label", order=["negative", "neutral", "positive"])
    assert [t.name for t in fig.data] == ["negative", "neutral", "positive"]
    assert all(t.orientation == "h" and t.error_x.array is not None for t in fig.data)
    assert any("(n=" in t for t in fig.layout.yaxis.ticktext)
    _check_hover_data(fig.data[0], 3, [2, 3, 4, 5])
    _safe(fig)


def test_mean_by_group(results):
    means = group_means(results, "sentiment_score", "region", n_boot=200)
    fig = charts.mean_by_group(means, "sentiment", "region")
    (dots,) = fig.data
    assert dots.type == "scatter" and dots.mode == "markers"
    assert dots.error_x.array is not None and dots.error_x.arrayminus is not None
    assert all("(n=" in t for t in fig.layout.yaxis.ticktext)
    assert "n = %{customdata[1]:," in dots.hovertemplate
    _check_hover_data(dots, 3, [1, 2, 3])
    # Dashed reference line at 0.
    assert any(s.line.dash == "dash" and s.x0 == 0 for s in fig.layout.shapes)
    assert fig.layout.yaxis.autorange == "reversed"  # highest mean on top
    _safe(fig)
    assert not charts.mean_by_group(means, "sentiment", "region", reference=None).layout.shapes


def test_mean_by_group_thirty_groups_grows():
    frame = pd.DataFrame({"g": [f"group {i}" for i in range(30)] * 5, "v": np.linspace(-1, 1, 150)})
    fig = charts.mean_by_group(group_means(frame, "v", "g", n_boot=50), "v", "g")
    assert len(fig.layout.yaxis.ticktext) == 30
    assert fig.layout.height >= 30 * 20


def test_trend_chart(results):
    table = trend(results.iloc[:60], "sentiment_score", "date", freq="M", n_boot=200, min_n=5)
    fig = charts.trend_chart(table, "sentiment")
    kinds = [(t.type, t.name) for t in fig.data]
    assert ("bar", "texts") in kinds  # counts
    band = [t for t in fig.data if t.type == "scatter" and t.fill == "toself"]
    assert band and "CI" in band[0].name  # interval band
    line = [t for t in fig.data if t.type == "scatter" and t.mode == "lines+markers"][0]
    assert "n = %{customdata[0]:," in line.hovertemplate
    _check_hover_data(line, len(table), [0, 1, 2])
    bars = [t for t in fig.data if t.type == "bar"][0]
    assert bars.yaxis == "y2" and fig.layout.yaxis2.title.text.startswith("texts per")
    assert fig.layout.xaxis.title.text == "month" and fig.layout.yaxis.title.text


def test_trend_chart_marks_sparse_periods():
    frame = pd.DataFrame({
        "date": ["2024-01-02"] * 8 + ["2024-02-02"] * 2 + ["2024-03-02"] * 6 + [None],
        "v": np.linspace(-1, 1, 17),
    })
    table = trend(frame, "v", "date", min_n=5, n_boot=100)
    fig = charts.trend_chart(table, "v")
    line = [t for t in fig.data if t.type == "scatter" and t.mode == "lines+markers"][0]
    assert list(line.marker.symbol) == ["circle", "circle-open", "circle"]
    assert "few texts" in line.customdata[1][3]
    # The band has a gap where the sparse month has no interval: two closed shapes.
    band = [t for t in fig.data if t.type == "scatter" and t.fill == "toself"][0]
    assert None in list(band.x)
    assert "1 texts without a readable date" in fig.layout.title.text


def test_shares_over_time(results):
    table = label_shares_over_time(results, "sentiment_label", "date", freq="M")
    fig = charts.shares_over_time(table, "sentiment_label", order=["negative", "neutral", "positive"],
                                  colors=charts.SENTIMENT_COLORS)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert [t.name for t in lines] == ["negative", "neutral", "positive"]
    assert len(bands) == 3
    assert lines[0].line.color == charts.SENTIMENT_COLORS["negative"]
    assert "of %{customdata[2]:," in lines[0].hovertemplate
    _check_hover_data(lines[0], table.period.nunique(), [1, 2, 3, 4])
    assert fig.layout.yaxis.tickformat == ".0%"


def test_shares_over_time_escapes_labels():
    frame = pd.DataFrame({"date": ["2024-01-01", "2024-02-01"] * 3, "label": [EVIL, "ok", "ok"] * 2})
    fig = charts.shares_over_time(label_shares_over_time(frame, "label", "date"), "label")
    _safe(fig)


def test_profile_heatmap(results):
    profile = profile_by_group(results, ["emotion_joy", "emotion_anger"], "region")
    fig = charts.profile_heatmap(profile)
    (heat,) = fig.data
    assert heat.type == "heatmap"
    assert list(heat.x) == ["joy", "anger"]  # shared prefix dropped ...
    assert fig.layout.xaxis.title.text == "emotion"  # ... and named on the axis
    assert heat.texttemplate == "%{z:.2f}"
    assert all("(n=" in t for t in fig.layout.yaxis.ticktext)
    assert "n = %{customdata:," in heat.hovertemplate
    _safe(fig)


@pytest.mark.parametrize("make", [
    lambda: charts.label_distribution(pd.DataFrame(columns=["label", "n", "total", "share", "lo", "hi"]), "label"),
    lambda: charts.mean_by_group(pd.DataFrame(columns=["g", "n", "mean", "lo", "hi"]), "v", "g"),
    lambda: charts.trend_chart(pd.DataFrame(columns=["period", "n", "mean", "lo", "hi", "sparse"]), "v"),
    lambda: charts.shares_over_time(pd.DataFrame(columns=["period", "label", "n", "total", "share", "lo", "hi"]), "label"),
    lambda: charts.profile_heatmap(pd.DataFrame()),
    lambda: charts.trend_chart(trend(pd.DataFrame({"d": ["x"], "v": [1.0]}), "v", "d"), "v"),
])
def test_empty_tables_say_no_data(make):
    fig = make()
    assert _is_empty(fig)
    assert fig.layout.title.text


# --------------------------------------------------------------------------- existing charts

def test_histogram(results):
    fig = charts.histogram(results["sentiment_score"], "score", threshold=0.5, threshold_label="cut")
    assert fig.data[0].type == "histogram" and "texts" in _hovers(fig)
    assert fig.layout.shapes  # the threshold line
    assert "n = 400" in fig.layout.title.text


def test_length_histogram(results):
    fig = charts.length_histogram(results["words"], unit="words", threshold=256)
    assert fig.data[0].type == "histogram"
    assert "Text length (words)" in fig.layout.title.text


def test_category_counts():
    values = pd.Series([f"c{i}" for i in range(30) for _ in range(i + 1)] + [None])
    fig = charts.category_counts(values, "Categories", "category", top=5)
    bar = fig.data[0]
    assert bar.type == "bar" and len(bar.y) == 6 and "(other)" in list(bar.y)
    assert "texts" in bar.hovertemplate


def test_numeric_by_group(results):
    fig = charts.numeric_by_group(results, "sentiment_score", "region")
    assert {t.type for t in fig.data} == {"box"}
    assert all("n=" in t for t in fig.layout.xaxis.ticktext)


def test_counts_over_time(results):
    dates = pd.concat([results["date"].astype(str), pd.Series(["not a date"])], ignore_index=True)
    fig = charts.counts_over_time(dates)
    assert fig.data[0].type == "bar" and sum(fig.data[0].y) == 400
    assert "1 without a readable date" in fig.layout.title.text


def test_titles_passed_in_are_escaped(results):
    means = group_means(results, "sentiment_score", "region", n_boot=50)
    fig = charts.mean_by_group(means, "mean score", "region", title=f"Mean by {EVIL}")
    assert fig.layout.title.text == f"Mean by {ESCAPED}"
    assert fig.layout.xaxis.title.text == "mean score"  # the value label as given
