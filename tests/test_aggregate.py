"""Aggregates with intervals: checked against direct computations and known cases."""

import math
import time

import numpy as np
import pandas as pd
import pytest

from analysis.aggregate import (
    auto_freq,
    bootstrap_mean_ci,
    group_means,
    label_shares,
    label_shares_over_time,
    profile_by_group,
    trend,
)


@pytest.fixture
def scored():
    rng = np.random.default_rng(7)
    n = 600
    frame = pd.DataFrame({
        "region": rng.choice(["North", "South", "East"], n),
        "sentiment_score": rng.uniform(-1, 1, n),
    })
    # A shift per region so the order is known.
    frame.loc[frame.region == "North", "sentiment_score"] += 0.5
    frame.loc[frame.region == "East", "sentiment_score"] -= 0.5
    frame.loc[[0, 1, 2], "sentiment_score"] = np.nan
    frame.loc[[3, 4], "region"] = None
    return frame


# --------------------------------------------------------------------------- bootstrap_mean_ci

def test_bootstrap_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_mean_ci([]))
    assert all(math.isnan(v) for v in bootstrap_mean_ci([np.nan, np.nan]))
    mean, lo, hi = bootstrap_mean_ci([0.4])
    assert mean == 0.4 and math.isnan(lo) and math.isnan(hi)
    # NaN dropped, not treated as zero.
    mean, lo, hi = bootstrap_mean_ci([1.0, np.nan, 3.0])
    assert mean == 2.0 and 1.0 <= lo <= hi <= 3.0
    with pytest.raises(ValueError):
        bootstrap_mean_ci([1.0, 2.0], level=95)
    with pytest.raises(ValueError):
        bootstrap_mean_ci([1.0, 2.0], n_boot=0)


def test_bootstrap_same_seed_same_interval():
    values = np.random.default_rng(1).normal(size=300)
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    assert bootstrap_mean_ci(values, seed=3) != bootstrap_mean_ci(values, seed=4)


def test_bootstrap_matches_normal_theory_on_big_sample():
    # For a large normal sample the bootstrap interval is close to mean +- 1.96 sd / sqrt(n).
    rng = np.random.default_rng(11)
    values = rng.normal(loc=0.3, scale=2.0, size=20_000)
    mean, lo, hi = bootstrap_mean_ci(values, n_boot=2000, seed=0)
    expected = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert mean == pytest.approx(values.mean())
    assert (hi - lo) / 2 == pytest.approx(expected, rel=0.10)
    assert hi - mean == pytest.approx(expected, rel=0.10)
    assert mean - lo == pytest.approx(expected, rel=0.10)


def test_bootstrap_level_widens_interval():
    values = np.random.default_rng(2).normal(size=500)
    _, lo90, hi90 = bootstrap_mean_ci(values, level=0.90)
    _, lo99, hi99 = bootstrap_mean_ci(values, level=0.99)
    assert hi99 - lo99 > hi90 - lo90


# --------------------------------------------------------------------------- group_means

def test_group_means_match_direct_computation(scored):
    table = group_means(scored, "sentiment_score", "region")
    assert list(table.columns) == ["region", "n", "mean", "lo", "hi"]
    direct = scored.dropna().groupby("region")["sentiment_score"].agg(["mean", "size"])
    for row in table.itertuples():
        assert row.mean == pytest.approx(direct.loc[row.region, "mean"], abs=1e-12)
        assert row.n == direct.loc[row.region, "size"]
        assert row.lo <= row.mean <= row.hi
    assert list(table.region) == ["North", "South", "East"]  # highest mean first
    assert table["mean"].is_monotonic_decreasing
    # Rows 0-2 lack a value, 3-4 a group (row overlap impossible here): 5 left out.
    assert table.attrs["missing"] == 5
    assert table.n.sum() + table.attrs["missing"] == len(scored)


def test_group_means_interval_narrows_with_n():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "g": ["small"] * 40 + ["big"] * 4000,
        "v": np.concatenate([rng.normal(size=40), rng.normal(size=4000)]),
    })
    table = group_means(frame, "v", "g").set_index("g")
    width = table.hi - table.lo
    assert width["big"] < width["small"] / 5


def test_group_means_reproducible_and_independent_of_other_groups(scored):
    a = group_means(scored, "sentiment_score", "region", seed=9)
    b = group_means(scored, "sentiment_score", "region", seed=9)
    pd.testing.assert_frame_equal(a, b)
    # Filtering out a group leaves the others' intervals as they were.
    only = group_means(scored[scored.region != "East"], "sentiment_score", "region", seed=9)
    pd.testing.assert_frame_equal(only.set_index("region"), a[a.region != "East"].set_index("region"))


def test_group_means_single_row_group_and_non_numeric_values():
    frame = pd.DataFrame({"g": ["a", "a", "a", "b"], "v": ["0.5", "x", "1.5", "2"]})
    table = group_means(frame, "v", "g").set_index("g")
    assert table.loc["a", "mean"] == 1.0 and table.loc["a", "n"] == 2
    assert table.loc["b", "n"] == 1 and math.isnan(table.loc["b", "lo"])
    assert table.attrs["missing"] == 1


def test_group_means_empty_and_bad_columns():
    empty = group_means(pd.DataFrame({"g": [None], "v": [np.nan]}), "v", "g")
    assert empty.empty and list(empty.columns) == ["g", "n", "mean", "lo", "hi"]
    assert empty.attrs["missing"] == 1
    with pytest.raises(KeyError):
        group_means(pd.DataFrame({"g": [1]}), "v", "g")
    with pytest.raises(ValueError):
        group_means(pd.DataFrame({"n": [1], "v": [1.0]}), "v", "n")


# --------------------------------------------------------------------------- label_shares

def test_label_shares_overall_and_by_group():
    frame = pd.DataFrame({
        "party": ["A"] * 10 + ["B"] * 5 + [None],
        "sentiment_label": ["positive"] * 6 + ["negative"] * 4 + ["neutral"] * 5 + ["positive"],
    })
    overall = label_shares(frame, "sentiment_label")
    assert list(overall.columns) == ["sentiment_label", "n", "total", "share", "lo", "hi"]
    assert overall.share.sum() == pytest.approx(1.0)
    assert set(overall.total) == {16}

    by = label_shares(frame, "sentiment_label", "party")
    assert list(by.columns) == ["party", "sentiment_label", "n", "total", "share", "lo", "hi"]
    assert by.groupby("party").share.sum().tolist() == pytest.approx([1.0, 1.0])
    # Every label appears in every group, with n = 0 where absent.
    assert len(by) == 2 * 3
    b_pos = by[(by.party == "B") & (by.sentiment_label == "positive")].iloc[0]
    assert b_pos.n == 0 and b_pos.total == 5 and b_pos.share == 0 and b_pos.lo == 0 and b_pos.hi > 0.3
    assert by.attrs["missing"] == 1
    assert ((by.lo <= by.share) & (by.share <= by.hi)).all()


def test_label_shares_wilson_known_values():
    # Wilson 95% interval: 50 of 100 -> (0.4038, 0.5962); 0 of 10 -> (0, 0.2775).
    frame = pd.DataFrame({"label": ["yes"] * 50 + ["no"] * 50})
    row = label_shares(frame, "label").set_index("label").loc["yes"]
    assert row.share == 0.5
    assert row.lo == pytest.approx(0.4038, abs=1e-4) and row.hi == pytest.approx(0.5962, abs=1e-4)

    frame = pd.DataFrame({"g": ["x"] * 10 + ["y"], "label": ["no"] * 10 + ["yes"]})
    row = label_shares(frame, "label", "g").set_index(["g", "label"]).loc[("x", "yes")]
    assert row.share == 0 and row.lo == 0 and row.hi == pytest.approx(0.2775, abs=1e-4)


def test_label_shares_ci_covers_known_proportion():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"label": np.where(rng.random(2000) < 0.3, "a", "b")})
    row = label_shares(frame, "label").set_index("label").loc["a"]
    assert row.lo < 0.3 < row.hi
    assert row.hi - row.lo == pytest.approx(2 * 1.96 * math.sqrt(0.3 * 0.7 / 2000), rel=0.1)


def test_label_shares_bootstrap_option():
    frame = pd.DataFrame({"label": ["a"] * 30 + ["b"] * 70})
    one = label_shares(frame, "label", method="bootstrap", seed=1)
    two = label_shares(frame, "label", method="bootstrap", seed=1)
    pd.testing.assert_frame_equal(one, two)
    row = one.set_index("label").loc["a"]
    assert row.lo < 0.3 < row.hi
    with pytest.raises(ValueError):
        label_shares(frame, "label", method="exact")


def test_label_shares_blank_labels_are_missing():
    frame = pd.DataFrame({"emotion_label": ["joy", "", "  ", None, "anger", "joy"]})
    table = label_shares(frame, "emotion_label")
    assert set(table.emotion_label) == {"joy", "anger"}
    assert table.attrs["missing"] == 3
    assert table.set_index("emotion_label").loc["joy", "share"] == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- trend

@pytest.fixture
def dated():
    rows = (
        [("2024-01-03", 0.1)] * 6 + [("2024-01-28", 0.3)] * 2     # January: 8 rows
        + [("2024-03-15", -0.5)] * 3                               # March: 3 rows (sparse)
        + [("not a date", 1.0), (None, 1.0)]                       # undated
        + [("2024-03-16", None)]                                   # dated, no value
    )
    return pd.DataFrame(rows, columns=["date", "sentiment_score"])


def test_trend_monthly(dated):
    table = trend(dated, "sentiment_score", "date", freq="M", min_n=5)
    assert list(table.columns) == ["period", "n", "mean", "lo", "hi", "sparse"]
    # February has no rows but is kept so the chart shows the gap.
    assert list(table.period) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-01")]
    assert table.n.tolist() == [8, 0, 3]
    assert table["mean"].iloc[0] == pytest.approx((6 * 0.1 + 2 * 0.3) / 8)
    assert table["mean"].iloc[2] == pytest.approx(-0.5)
    assert table["sparse"].tolist() == [False, True, True]
    assert table.lo.iloc[0] <= table["mean"].iloc[0] <= table.hi.iloc[0]
    assert math.isnan(table.lo.iloc[2]) and math.isnan(table.hi.iloc[2])  # sparse: no interval
    assert table.attrs["undated"] == 2
    assert table.attrs["missing"] == 1
    assert table.attrs["freq"] == "M"
    assert pd.api.types.is_datetime64_any_dtype(table.period)


def test_trend_iso_weeks_start_monday():
    frame = pd.DataFrame({
        # 2024-01-01 is a Monday; the 7th a Sunday (same week); the 8th the next Monday.
        "date": ["2024-01-01", "2024-01-07", "2024-01-08", "2024-01-10", "2023-12-31"],
        "v": [1.0, 2.0, 3.0, 5.0, 7.0],
    })
    table = trend(frame, "v", "date", freq="week", min_n=1)
    assert list(table.period) == [pd.Timestamp("2023-12-25"), pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08")]
    assert table.n.tolist() == [1, 2, 2]
    assert table["mean"].tolist() == pytest.approx([7.0, 1.5, 4.0])
    assert (table.period.dt.day_of_week == 0).all()
    assert table.attrs["freq"] == "W"
    assert trend(frame, "v", "date", freq="W", min_n=1).equals(table)


def test_trend_freq_aliases_and_errors(dated):
    assert trend(dated, "sentiment_score", "date", freq="month").equals(
        trend(dated, "sentiment_score", "date", freq="M"))
    with pytest.raises(ValueError):
        trend(dated, "sentiment_score", "date", freq="quarter")


def test_trend_datetime_column_and_all_undated():
    frame = pd.DataFrame({"d": pd.to_datetime(["2024-05-05", "2024-05-20"]), "v": [1.0, 3.0]})
    table = trend(frame, "v", "d", min_n=2)
    assert table.period.tolist() == [pd.Timestamp("2024-05-01")]
    assert not table["sparse"].iloc[0]
    empty = trend(pd.DataFrame({"d": ["?", None], "v": [1.0, 2.0]}), "v", "d")
    assert empty.empty and empty.attrs["undated"] == 2
    assert list(empty.columns) == ["period", "n", "mean", "lo", "hi", "sparse"]


def test_label_shares_over_time():
    frame = pd.DataFrame({
        "date": ["2024-01-05"] * 4 + ["2024-02-10"] * 2 + ["bad"],
        "sentiment_label": ["positive", "positive", "negative", "neutral", "negative", "negative", "positive"],
    })
    table = label_shares_over_time(frame, "sentiment_label", "date", min_n=3)
    assert list(table.columns) == ["period", "sentiment_label", "n", "total", "share", "lo", "hi", "sparse"]
    assert table.groupby("period").share.sum().tolist() == pytest.approx([1.0, 1.0])
    jan = table[table.period == pd.Timestamp("2024-01-01")].set_index("sentiment_label")
    assert jan.loc["positive", "n"] == 2 and jan.loc["positive", "total"] == 4
    feb = table[table.period == pd.Timestamp("2024-02-01")]
    assert feb["sparse"].all() and (feb.total == 2).all()
    assert table.attrs["undated"] == 1


# --------------------------------------------------------------------------- profile_by_group, auto_freq

def test_profile_by_group():
    frame = pd.DataFrame({
        "region": ["N", "N", "S", None],
        "emotion_joy": [0.2, 0.4, 0.9, 0.5],
        "emotion_anger": [0.1, np.nan, 0.3, 0.5],
    })
    profile = profile_by_group(frame, ["emotion_joy", "emotion_anger"], "region")
    assert list(profile.columns) == ["emotion_joy", "emotion_anger"]
    assert profile.index.name == "region"
    assert profile.loc["N", "emotion_joy"] == pytest.approx(0.3)
    assert profile.loc["N", "emotion_anger"] == pytest.approx(0.1)  # NaN skipped for that column only
    assert profile.loc["S", "emotion_joy"] == pytest.approx(0.9)
    assert profile.attrs["n"].to_dict() == {"N": 2, "S": 1}
    assert profile.attrs["missing"] == 1
    empty = profile_by_group(frame.iloc[3:], ["emotion_joy"], "region")
    assert empty.empty and list(empty.columns) == ["emotion_joy"]


def test_auto_freq():
    assert auto_freq(pd.Series(["2024-01-01", "2024-03-01"])) == "W"
    assert auto_freq(pd.Series(["2023-01-01", "2024-06-01", None])) == "M"
    assert auto_freq(pd.Series([], dtype="str")) == "M"
    assert auto_freq(["2024-01-01", "garbage"]) == "W"
    frame = pd.DataFrame({"d": ["2024-01-01", "2024-01-20"], "v": [1.0, 2.0]})
    assert trend(frame, "v", "d", freq="auto", min_n=1).attrs["freq"] == "W"


# --------------------------------------------------------------------------- scale

def test_hundred_thousand_rows_is_fast():
    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame({
        "party": rng.choice(["A", "B", "C", "D"], n),
        "sentiment_score": rng.uniform(-1, 1, n),
        "sentiment_label": rng.choice(["negative", "neutral", "positive"], n),
        "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 730, n), unit="D"),
    })
    start = time.perf_counter()
    means = group_means(frame, "sentiment_score", "party")
    shares = label_shares(frame, "sentiment_label", "party")
    over = trend(frame, "sentiment_score", "date")
    assert time.perf_counter() - start < 20  # generous guard; about 1.5 s on a laptop core
    assert means.n.sum() == n and len(shares) == 12 and over.n.sum() == n
    assert ((means.hi - means.lo) < 0.03).all()


def test_groups_in_natural_order():
    frame = pd.DataFrame({"g": ["Region 10", "Region 2", "Region 1"], "a": [1.0, 2.0, 3.0]})
    assert list(profile_by_group(frame, ["a"], "g").index) == ["Region 1", "Region 2", "Region 10"]
    frame = pd.DataFrame({"year": [2021, 2019, 2020], "label": ["x", "y", "x"]})
    assert list(label_shares(frame, "label", "year").year.unique()) == [2019, 2020, 2021]


def test_duplicate_index_and_empty_periods():
    # A filtered or concatenated frame may repeat index labels; results must not care.
    frame = pd.DataFrame({
        "date": ["2024-01-05", "2024-01-09", "2024-03-02", None],
        "g": ["a", "b", "a", "b"],
        "label": ["x", "y", "x", "x"],
        "v": [1.0, 2.0, 3.0, 4.0],
    }, index=[0, 0, 1, 1])
    assert group_means(frame, "v", "g").set_index("g")["n"].to_dict() == {"a": 2, "b": 2}
    assert label_shares(frame, "label", "g").n.sum() == 4
    over = label_shares_over_time(frame, "label", "date")
    feb = over[over.period == pd.Timestamp("2024-02-01")]
    assert (feb.total == 0).all() and feb.share.isna().all() and feb.lo.isna().all()
    assert over.attrs["undated"] == 1


def test_top_labels_sums_the_rest_into_other_and_keeps_the_counts():
    from analysis.aggregate import label_shares, label_shares_over_time, multi_label_shares, top_labels

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"t": rng.choice([f"t{i}" for i in range(20)], 600, p=np.linspace(2, 0.2, 20) / 22),
                          "g": rng.choice(["a", "b"], 600),
                          "d": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, 600), unit="D")})
    shares = label_shares(frame, "t", "g")
    cut = top_labels(shares, "t", 5)
    assert cut["t"].nunique() == 5 and cut.attrs["other"] == 16
    other = cut[cut["t"].str.startswith("other")]
    assert set(other["t"]) == {"other (16 labels)"}
    assert cut.groupby("g")["n"].sum().to_dict() == frame["g"].value_counts().to_dict()
    assert ((other["lo"] <= other["share"]) & (other["share"] <= other["hi"])).all()
    assert cut.groupby("g")["t"].last().str.startswith("other").all()  # "other" last in each group
    biggest = frame["t"].value_counts().index[:4].tolist()
    assert set(cut["t"]) - set(other["t"]) == set(biggest)
    assert top_labels(shares, "t", 30) is shares  # few labels: unchanged
    over = top_labels(label_shares_over_time(frame, "t", "d"), "t", 3)
    assert over.groupby("period")["n"].sum().tolist() == over.groupby("period")["total"].first().tolist()
    # Multi-label shares are not a partition: the smaller codes are dropped, not summed.
    codes = frame.assign(m=frame["t"] + ";" + frame["t"].shift(fill_value="t0"))
    multi = multi_label_shares(codes, "m", [f"t{i}" for i in range(20)])
    kept = top_labels(multi, "m", 4)
    assert len(kept) == 4 and kept.attrs["other_dropped"] and not kept["m"].str.startswith("other").any()


def test_text_counts_one_definition_of_a_text_and_an_empty_one():
    from analysis.aggregate import TextCounts, is_empty_text, text_counts

    texts = pd.Series(["a", "", "  ", None, np.nan, "b\n", "\u00a0"])
    assert is_empty_text(texts).tolist() == [False, True, True, True, True, False, True]
    counts = text_counts(texts)
    assert (counts.total, counts.non_empty, counts.empty) == (7, 2, 5)
    assert counts.describe() == "7 texts (2 non-empty, 5 empty)"
    assert str(text_counts(["x", "y"])) == "2 texts (none empty)"
    assert text_counts(["x"]).describe() == "1 text (none empty)"
    assert text_counts([]) == TextCounts(0, 0)
    assert f"{text_counts(['x'] * 1200 + [''])}" == "1,201 texts (1,200 non-empty, 1 empty)"


def test_sample_counts_agree_with_the_quality_report():
    from analysis.aggregate import text_counts
    from analysis.corpus import load_corpus
    from tests.paths import SAMPLE_CSV

    corpus, _ = load_corpus(SAMPLE_CSV, text_column="text", id_column="respondent_id")
    counts = text_counts(corpus.texts)
    assert counts.describe() == "467 texts (464 non-empty, 3 empty)"
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    assert counts.total == len(frame) and counts.empty == int((frame["text"].str.strip() == "").sum())


# --------------------------------------------------------------------------- dates (issue 10, finding 17)
# The over-time aggregates read dates with the corpus's reader (analysis.datetimes): a chart
# and the corpus never disagree about which month 04.03.2021 is.

def test_over_time_reads_day_first_dates_as_the_column_shows():
    frame = pd.DataFrame({"date": ["04.03.2021", "05.03.2021", "13.04.2021", "20.04.2021"],
                          "v": [1.0, 2.0, 3.0, 4.0], "label": ["a", "a", "b", "a"]})
    table = trend(frame, "v", "date", freq="M", min_n=1)
    assert table.period.tolist() == [pd.Timestamp("2021-03-01"), pd.Timestamp("2021-04-01")]
    assert table.n.tolist() == [2, 2] and table.attrs["undated"] == 0
    shares = label_shares_over_time(frame, "label", "date", freq="M", min_n=1)
    march = shares[shares.period == pd.Timestamp("2021-03-01")].set_index("label")
    assert march.loc["a", "n"] == 2 and march.loc["a", "total"] == 2
    assert auto_freq(frame["date"]) == "W"  # 4 March to 20 April: under six months


def test_over_time_uses_the_given_order_and_asks_for_one_when_the_column_shows_none():
    from analysis.errors import CorpusError, TextlabError

    frame = pd.DataFrame({"date": ["04/03/2021", "05/03/2021", "04/05/2021"], "v": [1.0, 2.0, 3.0],
                          "label": ["a", "b", "a"]})
    day_first = trend(frame, "v", "date", freq="M", min_n=1, date_order="day-first")
    assert day_first.set_index("period")["n"].to_dict() == {
        pd.Timestamp("2021-03-01"): 2, pd.Timestamp("2021-04-01"): 0, pd.Timestamp("2021-05-01"): 1}
    month_first = trend(frame, "v", "date", freq="M", min_n=1, date_order="month-first")
    assert month_first.set_index("period")["n"].to_dict() == {
        pd.Timestamp("2021-04-01"): 2, pd.Timestamp("2021-05-01"): 1}
    shares = label_shares_over_time(frame, "label", "date", freq="M", min_n=1, date_order="day-first")
    assert shares.groupby("period")["total"].first().tolist() == [2, 0, 1]
    assert auto_freq(frame["date"], date_order="month-first") == "W"
    # No order and none to see: a user error (shown as a message), never a guess.
    for call in (lambda: trend(frame, "v", "date"), lambda: label_shares_over_time(frame, "label", "date"),
                 lambda: auto_freq(frame["date"])):
        with pytest.raises(CorpusError, match="could be day-first or month-first") as caught:
            call()
        assert isinstance(caught.value, TextlabError) and "'date'" in str(caught.value)


def test_over_time_reads_unix_times_and_already_parsed_dates():
    frame = pd.DataFrame({"created_at": ["1614816000", "1614902400", "1617494400"], "v": [1.0, 2.0, 3.0]})
    table = trend(frame, "v", "created_at", freq="M", min_n=1)  # as read from a CSV: text
    assert table.set_index("period")["n"].to_dict() == {pd.Timestamp("2021-03-01"): 2, pd.Timestamp("2021-04-01"): 1}
    parsed = frame.assign(created_at=pd.to_datetime(frame["created_at"].astype(int), unit="s"))
    again = trend(parsed, "v", "created_at", freq="M", min_n=1, date_order="month-first")
    assert again[["period", "n", "mean"]].to_dict("list") == table[["period", "n", "mean"]].to_dict("list")


def test_a_bad_choice_of_columns_is_a_user_error_with_a_clear_message():
    """The UI shows TextlabErrors as they are; a plain ValueError would be 'Something went wrong'."""
    from analysis.errors import TextlabError

    frame = pd.DataFrame({"region": ["N", "S", "N"], "score": [0.1, 0.5, -0.2]})
    with pytest.raises(TextlabError, match="both the value and the group"):
        group_means(frame, "score", "score")
    with pytest.raises(TextlabError, match="both the label and the group"):
        label_shares(frame, "region", "region")
    with pytest.raises(TextlabError, match="not in the table: 'nope'") as caught:
        label_shares(frame, "nope")
    assert str(caught.value).startswith("Column(s) not in the table")  # no KeyError quotes


def test_multi_label_values_count_each_code_once_per_text():
    from analysis.aggregate import column_values, rows_with_values, value_shares_by_group

    frame = pd.DataFrame({"codes": ["a;b", "a", None, " b ;"], "single": ["x", "y", None, "x"],
                          "region": ["N", "S", "N", "S"]}, index=[10, 11, 12, 13])
    values = column_values(frame["codes"], multi_label=True)
    assert values.dropna().tolist() == ["a", "b", "a", "b"] and values.index.tolist() == [10, 10, 11, 12, 13, 13]
    pd.testing.assert_series_equal(column_values(frame["single"]), frame["single"])
    shares = value_shares_by_group(frame, "codes", "region", multi_label=True)
    assert shares.loc["N"].to_dict() == {"(missing)": 1 / 3, "a": 1 / 3, "b": 1 / 3}
    assert shares.loc["S"].to_dict() == {"(missing)": 1 / 3, "a": 1 / 3, "b": 1 / 3}
    single = value_shares_by_group(frame, "single", "region")
    assert single.loc["S"].to_dict() == {"(missing)": 0.0, "x": 0.5, "y": 0.5}
    assert single.loc["N"].to_dict() == {"(missing)": 0.5, "x": 0.5, "y": 0.0}
    assert single.index.name == "region" and single.columns.name == "single"
    assert rows_with_values(frame, "codes", ["b"], multi_label=True).index.tolist() == [10, 13]
    assert rows_with_values(frame, "single", ["x"]).index.tolist() == [10, 13]
    assert rows_with_values(frame, "single", []).empty
