"""Charts: each returns a titled figure with the expected traces, counts in the hover,
escaped group names, and a "No data" figure for an empty table."""

import json
import re

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


# --------------------------------------------------------------------------- many categories, readable titles

LINK = "<a href='https://evil.example'>click</a>"


def _json(fig: go.Figure) -> str:
    return json.dumps(json.loads(fig.to_json()), ensure_ascii=False)


def test_describe_column_gives_readable_names():
    assert charts.describe_column("stats_words") == "Words per text"
    assert charts.describe_column("sentiment_score") == "Sentiment score (-1 to 1)"
    assert charts.describe_column("code_health_care") == "P(code: health care)"
    assert charts.describe_column("code_label") == "Code"
    assert charts.describe_column("topic_prob").startswith("Topic probability")
    assert charts.describe_column("emotion_anger").startswith("Emotion: anger")
    assert charts.describe_column("sentiment_prob_positive") == "P(sentiment: positive)"
    assert charts.describe_column("age_group") == "Age group"  # other identifiers prettified
    assert charts.describe_column("Region") == "Region" and charts.describe_column("mean score") == "mean score"
    assert charts.describe_column(LINK) == LINK  # plain text: the charts escape it
    assert set(charts.COLUMN_TITLES) >= {"stats_words", "sentiment_score", "topic_prob"}


def test_axis_titles_are_readable_not_raw_column_names(results):
    frame = results.assign(stats_words=results["words"])
    box = charts.numeric_by_group(frame, "stats_words", "region")
    assert box.layout.yaxis.title.text == "Words per text"
    assert "stats_words" not in box.layout.title.text and "Words per text" in box.layout.title.text
    hist = charts.histogram(frame["stats_words"], "stats_words")
    assert hist.layout.xaxis.title.text == "Words per text" and "stats_words" not in _json(hist)
    counts = charts.category_counts(pd.Series(["en", "de"]), "Languages", "stats_language")
    assert counts.layout.yaxis.title.text in (None, "Detected language")
    means = group_means(frame, "sentiment_score", "region", n_boot=20)
    assert charts.mean_by_group(means, "sentiment_score", "region").layout.xaxis.title.text == "Sentiment score (-1 to 1)"
    # A heatmap whose columns share no prefix has no meaningless "column" axis title.
    profile = profile_by_group(frame, ["sentiment_score", "stats_words"], "region")
    assert charts.profile_heatmap(profile).layout.xaxis.title.text != "column"
    assert list(charts.profile_heatmap(profile).data[0].x) == ["Sentiment score (-1 to 1)", "Words per text"]


def _topics_frame(k: int, n: int = 1200) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    return pd.DataFrame({
        "topic": rng.choice([f"{i}: topic words {i}" for i in range(k)], n),
        "region": rng.choice(["North", "South", "East"], n),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 360, n), unit="D"),
    })


def test_palette_scales_without_repeating():
    for n in (3, 8, 12, 30, 60):
        colours = charts.palette(n)
        assert len(colours) == n and len(set(c.lower() for c in colours)) == n, n
    assert charts.palette(5) == charts.PALETTE[:5]  # few categories: the colour-blind-safe set


def test_many_topics_get_distinct_colours_top_n_and_other():
    frame = _topics_frame(30)
    fig = charts.label_distribution(label_shares(frame, "topic", "region"), "topic")
    names = [t.name for t in fig.data]
    # 30 labels in grouped bars are unreadable: the largest ones, the rest as "other".
    assert len(names) <= 13 and names[-1].startswith("other")
    colours = [t.marker.color for t in fig.data]
    assert len(set(colours)) == len(colours)
    # "other" holds the rest: per group the counts still add up to the group's texts.
    per_group = {}
    for t in fig.data:
        for y, k in zip(t.y, t.customdata[:, 2]):
            per_group[y] = per_group.get(y, 0) + k
    assert sorted(per_group.values()) == sorted(frame["region"].value_counts().tolist())
    points = pd.DataFrame({"x": np.arange(30.0), "y": np.arange(30.0), "topic_label": [f"t{i}" for i in range(30)],
                           "snippet": ["text"] * 30})
    dmap = charts.document_map(points)
    assert len({t.marker.color for t in dmap.data}) == 30


def test_twelve_series_over_time_do_not_overlap():
    frame = _topics_frame(12)
    table = label_shares_over_time(frame, "topic", "date", freq="M")
    fig = charts.shares_over_time(table, "topic")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == 12
    # Small multiples: one panel per series, each with its own axes and a title naming it.
    assert len({t.xaxis for t in lines}) == 12
    titles = [a.text for a in fig.layout.annotations]
    assert all(any(f"topic words {i}" in t for t in titles) for i in range(12))
    assert fig.layout.height >= 4 * 150
    # Few series stay one chart with a legend below the plot that fits.
    few = charts.shares_over_time(label_shares_over_time(_topics_frame(3), "topic", "date"), "topic")
    assert len({t.xaxis for t in few.data}) == 1
    assert few.layout.legend.orientation == "h" and few.layout.legend.y < 0


def test_legends_fit_below_the_plot_and_long_names_are_shortened(results):
    long = "a very long topic label " * 4
    frame = pd.DataFrame({"g": ["x", "y"] * 20, "label": [long, "short"] * 20})
    fig = charts.label_distribution(label_shares(frame, "label", "g"), "label")
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    assert max(len(t.name) for t in fig.data) <= 41
    assert any(long.strip()[:20] in (t.hovertemplate + str(t.customdata.tolist())) for t in fig.data)
    prev = charts.prevalence_chart(pd.DataFrame({"code": ["a", "a"], "source": ["model", "human"], "count": [1, 2],
                                                 "share": [0.5, 1.0], "ci_low": [0.1, 0.3], "ci_high": [0.9, 1.0],
                                                 "n": [2, 2]}))
    assert prev.layout.legend.orientation == "h"


def test_user_names_never_become_links_in_new_charts():
    frame = pd.DataFrame({"date": ["2024-01-01", "2024-02-01"] * 20,
                          "label": [LINK] + [f"t{i}" for i in range(9)] * 4 + ["t0" for _ in range(3)],
                          "g": [LINK, "x"] * 20})
    figs = [charts.shares_over_time(label_shares_over_time(frame, "label", "date"), "label"),
            charts.label_distribution(label_shares(frame, "label", "g"), "label"),
            charts.numeric_by_group(frame.assign(v=1.0), "v", "g")]
    for fig in figs:
        text = _json(fig)
        assert "<a " not in text and "&lt;a href" in text


# --------------------------------------------------------------------------- every chart, hostile names

HOSTILE_COL = '<a href="http://127.0.0.1:8599/col-a">region</a>'
HOSTILE_LABEL = "<img src=http://127.0.0.1:8599/p.png> R&D"
HOSTILE_TITLE = "<a href='http://127.0.0.1:8599/t'>Codes</a> by R&D"
# A real tag of plotly's pseudo-HTML that links or loads: <a ...>, <img ...>, or any tag
# with an href. Escaped text (&lt;a href=...&gt;) is shown literally and does not match.
_LIVE = re.compile(r"<\s*(a|img)\b|<[^>]*href\s*=", re.I)


def _strings(node):
    """Every string in a plotly JSON tree (keys too), walked recursively."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, np.ndarray):
        yield from _strings(node.tolist())


def _hostile_figures():
    rng = np.random.default_rng(11)
    n = 240
    labels = [HOSTILE_LABEL, "plain", "-rent"]
    frame = pd.DataFrame({
        HOSTILE_COL: rng.choice([HOSTILE_LABEL, "North & South", "x"], n),
        "label": rng.choice(labels, n),
        "many": rng.choice([HOSTILE_LABEL] + [f"t{i}" for i in range(9)], n),
        "value": rng.uniform(-1, 1, n),
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D"),
    })
    g = HOSTILE_COL
    shares_by = label_shares(frame, "label", g)
    over_time = label_shares_over_time(frame, "label", "date")
    many_time = label_shares_over_time(frame, "many", "date")
    means = group_means(frame, "value", g, n_boot=20)
    tr = trend(frame, "value", "date", n_boot=20)
    profile = profile_by_group(frame.assign(**{"emotion_" + HOSTILE_LABEL: frame["value"].abs()},
                                            emotion_joy=frame["value"].abs()),
                               ["emotion_" + HOSTILE_LABEL, "emotion_joy"], g)
    confusion = pd.DataFrame([[3, 1], [0, 2]], index=[HOSTILE_LABEL, "b"], columns=[HOSTILE_LABEL, "b"])
    prevalence = pd.DataFrame({"code": [HOSTILE_LABEL] * 2, "source": ["model", HOSTILE_LABEL], "count": [1, 2],
                               "share": [0.5, 1.0], "ci_low": [0.1, 0.3], "ci_high": [0.9, 1.0], "n": [2, 2]})
    summary = pd.DataFrame({"comparison": [f"model vs {HOSTILE_COL}"], "metric": [HOSTILE_LABEL], "value": [0.5],
                            "ci_low": [0.2], "ci_high": [0.8], "n": [20]})
    topics = pd.DataFrame({"topic_id": [0, -1], "topic_label": [HOSTILE_LABEL, "Outliers"], "size": [5, 2],
                           "share": [0.7, 0.3], "keywords": [[HOSTILE_LABEL, "rent"], HOSTILE_COL]})
    points = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "topic_label": [HOSTILE_LABEL, None],
                           "snippet": [HOSTILE_COL, HOSTILE_LABEL]})
    curve = pd.DataFrame({"n_train": [10, 20], "macro_f1": [0.5, 0.6], "sd": [0.1, 0.1]})
    stability = pd.DataFrame({"check": [HOSTILE_LABEL], "alpha": [0.5], "ci_low": [0.3], "ci_high": [0.7],
                              "all_runs_agree": [0.8], "runs": [3], "texts": [30], "verdict": ["unstable"]})
    t = HOSTILE_TITLE
    from analysis.inference import corrected_shares, width_curve

    coded = frame.assign(gold=frame["label"].where(np.arange(n) % 4 == 0, ""))
    estimates, _ = corrected_shares(coded, "label", "gold", by=g)
    coefficients = pd.DataFrame({"estimand": ["Intercept", f"{HOSTILE_COL}[T.x]"] * 2, "code": HOSTILE_LABEL,
                                 "group": "", "estimator": ["model_only"] * 2 + ["corrected"] * 2,
                                 "estimate": [0.1, 0.2, 0.15, 0.3], "ci_low": [0.0, 0.1, 0.0, 0.1],
                                 "ci_high": [0.2, 0.3, 0.3, 0.5], "n_human": 60, "n_model": 240})
    return {
        "estimates_chart": [charts.estimates_chart(estimates), charts.estimates_chart(coefficients, t),
                            charts.estimates_chart(estimates.iloc[:0], t)],
        "plan_chart": [charts.plan_chart(width_curve([10, 100], 240, sd=0.5, rho=0.7), now=60, target=0.05, title=t),
                       charts.plan_chart(pd.DataFrame(), title=t)],
        "histogram": [charts.histogram(frame["value"], HOSTILE_COL),
                      charts.histogram(frame["value"], HOSTILE_COL, t, threshold=0.5, threshold_label=HOSTILE_LABEL)],
        "length_histogram": [charts.length_histogram(frame["value"].abs() * 100, HOSTILE_LABEL, threshold=50)],
        "category_counts": [charts.category_counts(frame[g], t, HOSTILE_COL)],
        "numeric_by_group": [charts.numeric_by_group(frame, "value", g), charts.numeric_by_group(frame, "value", g, t)],
        "counts_over_time": [charts.counts_over_time(frame["date"], title=t)],
        "label_distribution": [charts.label_distribution(label_shares(frame, "label"), "label"),
                               charts.label_distribution(shares_by, "label"),
                               charts.label_distribution(shares_by, "label", title=t),
                               charts.label_distribution(label_shares(frame, "label"), HOSTILE_COL)],
        "mean_by_group": [charts.mean_by_group(means, HOSTILE_LABEL, g), charts.mean_by_group(means, "value", g, t)],
        "trend_chart": [charts.trend_chart(tr, HOSTILE_LABEL), charts.trend_chart(tr, "value", t)],
        "shares_over_time": [charts.shares_over_time(over_time, "label"),
                             charts.shares_over_time(many_time, "many", title=t)],
        "learning_curve_chart": [charts.learning_curve_chart(curve, t), charts.learning_curve_chart(curve.iloc[:0], t)],
        "profile_heatmap": [charts.profile_heatmap(profile), charts.profile_heatmap(profile, t)],
        "confusion_heatmap": [charts.confusion_heatmap(confusion), charts.confusion_heatmap(confusion, t, None)],
        "prevalence_chart": [charts.prevalence_chart(prevalence, t)],
        "agreement_chart": [charts.agreement_chart(summary), charts.agreement_chart(summary, t)],
        "stability_chart": [charts.stability_chart(stability, t), charts.stability_chart(stability.iloc[:0], t)],
        "topic_sizes": [charts.topic_sizes(topics, t)],
        "document_map": [charts.document_map(points, t), charts.document_map(points.iloc[:0], t)],
        "tokens_chart": [charts.tokens_chart({HOSTILE_COL: pd.DataFrame({
            "position": [0, 1], "token": [HOSTILE_LABEL, "##x"], "id": [5, 6], "text": [HOSTILE_LABEL, "x"],
            "start": [0, 3], "end": [3, 4]})})],
    }


def test_every_chart_escapes_every_user_string_exactly_once():
    figures = _hostile_figures()
    public = {name for name, f in vars(charts).items()
              if callable(f) and not name.startswith("_") and getattr(f, "__module__", "") == charts.__name__
              and "Figure" in str(getattr(f, "__annotations__", {}).get("return", ""))}
    assert public <= set(figures), f"charts without a hostile-name test: {public - set(figures)}"
    for name, figs in figures.items():
        for fig in figs:
            strings = list(_strings(fig.to_plotly_json()))
            text = "\n".join(strings)
            live = [s for s in strings if _LIVE.search(s)]
            assert not live, f"{name}: live markup {live[:3]}"
            assert "&amp;lt;" not in text and "&amp;amp;" not in text, f"{name}: escaped twice"
            assert "&lt;" in text, f"{name}: the hostile name is missing"
            # An "&" in a name is escaped once, so the browser shows "&".
            assert "R&D" not in text.replace("R&amp;D", ""), f"{name}: bare & in R&D"


def test_histogram_of_a_million_values_is_binned_on_the_server():
    """A million lengths must not travel to the browser one by one; the bars count them all."""
    values = pd.Series(np.random.default_rng(0).poisson(20, 1_000_000))
    fig = charts.length_histogram(values, unit="words", threshold=256)
    assert fig.data[0].type == "bar" and int(np.sum(fig.data[0].y)) == len(values)
    assert len(fig.to_json()) < 50_000 and "n = 1,000,000" in fig.layout.title.text
    assert "texts" in fig.data[0].hovertemplate
