"""Shares corrected by a random human sample (prediction-powered inference through ppi-python)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.errors import TextlabError
from analysis.inference import COLUMNS, corrected_shares


def _survey(n=4000, n_human=300, seed=0):
    """True codes A (40%) / B; a model that calls 30% of the A texts B: its share of A is biased
    down to 28%. A simple random sample of n_human texts has human codes."""
    rng = np.random.default_rng(seed)
    truth = np.where(rng.random(n) < 0.4, "A", "B")
    pred = np.where((truth == "A") & (rng.random(n) < 0.3), "B", truth)
    gold = np.full(n, "", dtype=object)
    sample = rng.choice(n, n_human, replace=False)
    gold[sample] = truth[sample]
    region = np.where(rng.random(n) < 0.5, "North", "South")
    return pd.DataFrame({"pred": pred, "gold": gold, "region": region}), truth


def test_the_corrected_share_is_near_the_truth_where_the_model_only_share_is_not():
    frame, truth = _survey()
    table, notes = corrected_shares(frame, "pred", "gold")
    assert list(table.columns) == COLUMNS
    a = table[(table["code"] == "A") & (table["group"] == "")].set_index("estimator")
    true_share = float((truth == "A").mean())
    assert not a.loc["model_only", "ci_low"] <= true_share <= a.loc["model_only", "ci_high"]  # biased, overconfident
    assert a.loc["corrected", "ci_low"] <= true_share <= a.loc["corrected", "ci_high"]
    width = lambda r: r["ci_high"] - r["ci_low"]  # noqa: E731
    assert width(a.loc["corrected"]) > width(a.loc["model_only"])  # honest about 300 human codes
    assert a.loc["corrected", "n_human"] == 300 and a.loc["corrected", "n_model"] == 4000
    assert "simple random sample" in notes[0]


def test_the_estimate_is_the_reference_packages_and_groups_are_estimated_on_their_own_rows():
    import ppi_py

    frame, _ = _survey(seed=1)
    table, _ = corrected_shares(frame, "pred", "gold", by="region")
    coded = frame["gold"] != ""
    north = frame["region"] == "North"
    y = (frame["gold"] == "A").to_numpy(float)
    yhat = (frame["pred"] == "A").to_numpy(float)
    lab, unl = (coded & north).to_numpy(), (~coded & north).to_numpy()
    expected = float(np.ravel(ppi_py.ppi_mean_pointestimate(y[lab], yhat[lab], yhat[unl]))[0])
    row = table[(table["code"] == "A") & (table["group"] == "North") & (table["estimator"] == "corrected")].iloc[0]
    assert row["estimate"] == pytest.approx(expected)
    assert row["n_human"] == int(lab.sum()) and row["n_model"] == int(north.sum())
    assert set(table["group"]) == {"", "North", "South"}


def test_weights_are_checked_and_bad_input_is_said_plainly():
    frame, _ = _survey(n=500, n_human=60)
    frame["w"] = np.where(frame["gold"] != "", 500 / 60, np.nan)
    table, notes = corrected_shares(frame, "pred", "gold", weights="w")
    assert "weighted by 'w'" in notes[0] and table["estimate"].notna().all()
    frame.loc[frame.index[frame["gold"] != ""][0], "w"] = 0
    with pytest.raises(TextlabError, match="no positive weight in 'w'"):
        corrected_shares(frame, "pred", "gold", weights="w")
    with pytest.raises(TextlabError, match="No column 'nope'"):
        corrected_shares(frame, "pred", "nope")
    missing = frame.assign(pred=frame["pred"].where(frame["gold"] == "", None))
    with pytest.raises(TextlabError, match="have no model value"):
        corrected_shares(missing, "pred", "gold")


def test_the_estimate_command_writes_the_long_table(tmp_path, capsys):
    import json

    from analysis.cli import main

    frame, _ = _survey(n=800, n_human=120, seed=2)
    frame.loc[0, "gold"] = ""  # an uncoded row stays uncoded
    path = tmp_path / "coded.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "estimates.csv"
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--by", "region", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "corrected" in printed and "model_only" in printed and "simple random sample" in printed
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == COLUMNS and len(table) == 2 * 2 * 3  # codes x estimators x (overall + 2 groups)
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--out", str(tmp_path / "e.json")]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    assert len(report["estimates"]) == 4 and report["notes"]
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--out", str(tmp_path / "e.txt")]) == 2


def test_when_every_text_is_hand_coded_the_corrected_share_is_the_human_share():
    frame, truth = _survey(n=200, n_human=200, seed=3)
    table, _ = corrected_shares(frame, "pred", "gold")
    row = table[(table["code"] == "A") & (table["estimator"] == "corrected")].iloc[0]
    assert row["estimate"] == pytest.approx(float((truth == "A").mean()))
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_corrected_intervals_cover_the_true_share_at_close_to_the_nominal_rate_where_model_only_ones_miss():
    """400 simulated surveys of a biased model: the corrected 95% interval covers the true share
    in 93-97% of them, the model-only one (biased down by 12 points) almost never."""
    covered = {"model_only": 0, "corrected": 0}
    runs = 400
    for seed in range(runs):
        frame, truth = _survey(n=1500, n_human=150, seed=100 + seed)
        table, _ = corrected_shares(frame, "pred", "gold")
        true_share = float((truth == "A").mean())
        for estimator in covered:
            row = table[(table["code"] == "A") & (table["estimator"] == estimator)].iloc[0]
            covered[estimator] += row["ci_low"] <= true_share <= row["ci_high"]
    assert 0.93 <= covered["corrected"] / runs <= 0.97
    assert covered["model_only"] / runs < 0.05


def test_several_coders_give_the_majority_and_a_tie_counts_half_to_each_code():
    from analysis.inference import human_values

    frame = pd.DataFrame({"a": ["X", "X", "Y", None, "X"], "b": ["X", "Y", "Y", None, None],
                          "c": ["Y", None, "Y", None, None]})
    human = human_values(frame, ["a", "b", "c"])
    assert human.coded.tolist() == [True, True, True, False, True]
    assert human.indicator("X").tolist()[:3] == [1.0, 0.5, 0.0] and human.indicator("X")[4] == 1.0
    assert human.n_ties == 1
    multi = human_values(pd.DataFrame({"a": ["X;Y"], "b": ["X"]}), ["a", "b"], multi=True)
    assert multi.indicator("X")[0] == 1.0 and multi.indicator("Y")[0] == 0.5

    survey, truth = _survey(n=1000, n_human=200, seed=4)
    survey["gold2"] = survey["gold"]
    table, notes = corrected_shares(survey, "pred", ["gold", "gold2"])
    one, _ = corrected_shares(survey, "pred", "gold")
    assert table["estimate"].to_numpy() == pytest.approx(one["estimate"].to_numpy())  # two coders who agree = one
    assert any("majority of the coders (2 columns)" in n for n in notes)


def test_a_score_is_estimated_as_a_mean_and_multi_label_codes_as_shares():
    import ppi_py

    rng = np.random.default_rng(5)
    n = 2000
    truth = rng.normal(0.2, 0.4, n)
    frame = pd.DataFrame({"score": truth - 0.15 + rng.normal(0, 0.1, n)})  # the model is too negative
    coded = rng.choice(n, 200, replace=False)
    frame["rating"] = np.nan
    frame.loc[coded, "rating"] = truth[coded]
    table, _ = corrected_shares(frame, "score", "rating")
    assert set(table["estimand"]) == {"mean"} and set(table["code"]) == {"score"}
    rows = table.set_index("estimator")
    assert not rows.loc["model_only", "ci_low"] <= truth.mean() <= rows.loc["model_only", "ci_high"]
    assert rows.loc["corrected", "ci_low"] <= truth.mean() <= rows.loc["corrected", "ci_high"]
    lab = frame["rating"].notna().to_numpy()
    expected = ppi_py.ppi_mean_pointestimate(truth[lab], frame["score"].to_numpy()[lab], frame["score"].to_numpy()[~lab])
    assert rows.loc["corrected", "estimate"] == pytest.approx(float(np.ravel(expected)[0]))

    multi = pd.DataFrame({"pred": ["A;B", "A", "B", "A;B"] * 50, "gold": (["A;B", "", "B", ""] * 50)})
    shares, _ = corrected_shares(multi, "pred", "gold")
    assert set(shares["code"]) == {"A", "B"}
    a = shares[(shares["code"] == "A") & (shares["estimator"] == "model_only")].iloc[0]
    assert a["estimate"] == pytest.approx(0.75)


def _regional_survey(n=3000, n_human=400, seed=6):
    """Housing is mentioned by 30% in the North and 50% in the South; the model misses a third of the
    South's mentions, so its regional difference is biased towards zero."""
    rng = np.random.default_rng(seed)
    region = np.where(rng.random(n) < 0.5, "North", "South")
    age = rng.choice(["young", "old"], n)
    p = np.where(region == "South", 0.5, 0.3)
    truth = rng.random(n) < p
    miss = (region == "South") & truth & (rng.random(n) < 1 / 3)
    pred = np.where(truth & ~miss, "Housing", "Other")
    gold = np.full(n, "", dtype=object)
    sample = rng.choice(n, n_human, replace=False)
    gold[sample] = np.where(truth[sample], "Housing", "Other")
    return pd.DataFrame({"pred": pred, "gold": gold, "region": region, "age": age}), truth


def test_regression_coefficients_are_the_libraries_and_the_corrected_one_recovers_the_difference():
    import ppi_py
    import statsmodels.api as sm

    from analysis.inference import corrected_regression

    frame, truth = _regional_survey()
    table, notes = corrected_regression(frame, "pred", "gold", "Housing ~ region + age")
    assert list(table.columns) == COLUMNS
    names = ["Intercept", "region[T.South]", "age[T.young]"]
    assert table["estimand"].tolist() == names * 2 and set(table["code"]) == {"Housing"}
    X = np.column_stack([np.ones(len(frame)), frame["region"] == "South", frame["age"] == "young"]).astype(float)
    yhat = (frame["pred"] == "Housing").to_numpy(float)
    y = (frame["gold"] == "Housing").to_numpy(float)
    lab = (frame["gold"] != "").to_numpy()
    only = table[table["estimator"] == "model_only"]
    assert only["estimate"].to_numpy() == pytest.approx(sm.OLS(yhat, X).fit().params)
    corrected = table[table["estimator"] == "corrected"]
    expected = ppi_py.ppi_ols_pointestimate(X[lab], y[lab], yhat[lab], X[~lab], yhat[~lab])
    assert corrected["estimate"].to_numpy() == pytest.approx(np.ravel(expected))
    # The true South - North difference (from every text's true code) lies in the corrected interval only.
    true_diff = float(sm.OLS(truth.astype(float), X).fit().params[1])
    south = table[table["estimand"] == "region[T.South]"].set_index("estimator")
    assert south.loc["corrected", "ci_low"] <= true_diff <= south.loc["corrected", "ci_high"]
    assert not south.loc["model_only", "ci_low"] <= true_diff <= south.loc["model_only", "ci_high"]
    assert any("OLS (linear probability)" in n for n in notes)

    # Logistic on a smaller survey: ppi-python's logistic fit is an iterative optimisation.
    frame, _ = _regional_survey(n=600, n_human=150, seed=6)
    X = np.column_stack([np.ones(len(frame)), frame["region"] == "South", frame["age"] == "young"]).astype(float)
    yhat = (frame["pred"] == "Housing").to_numpy(float)
    y = (frame["gold"] == "Housing").to_numpy(float)
    lab = (frame["gold"] != "").to_numpy()
    logit, _ = corrected_regression(frame, "pred", "gold", "Housing ~ region", model="logistic")
    expected = ppi_py.ppi_logistic_pointestimate(X[lab, :2], y[lab], yhat[lab], X[~lab, :2], yhat[~lab])
    assert logit[logit["estimator"] == "corrected"]["estimate"].to_numpy() == pytest.approx(np.ravel(expected), rel=1e-3)
    assert logit[logit["estimator"] == "model_only"]["estimate"].to_numpy() == pytest.approx(
        sm.Logit(yhat, X[:, :2]).fit(disp=0).params, rel=1e-4)


def test_regression_input_errors_are_said_plainly():
    from analysis.inference import corrected_regression

    frame, _ = _regional_survey(n=400, n_human=80)
    with pytest.raises(TextlabError, match="needs one '~'"):
        corrected_regression(frame, "pred", "gold", "Housing region")
    with pytest.raises(TextlabError, match="'Health' .* is not a code of 'pred'"):
        corrected_regression(frame, "pred", "gold", "Health ~ region")
    with pytest.raises(TextlabError, match="cannot be read"):
        corrected_regression(frame, "pred", "gold", "Housing ~ nowhere")
    frame.loc[:9, "region"] = None
    table, notes = corrected_regression(frame, "pred", "gold", 'Q("Housing") ~ region')
    assert any("10 row(s) with a missing value" in n for n in notes)
    assert table["n_model"].iloc[0] == 390


def test_design_weights_correct_an_equal_per_code_sample():
    """Equal allocation over the model's codes over-samples the rare code; weighting each stratum by
    N_s / n_s undoes that, and texts coded outside the sample are left out and counted."""
    from analysis.inference import design_weights

    rng = np.random.default_rng(7)
    n = 4000
    truth = np.where(rng.random(n) < 0.15, "A", "B")
    pred = np.where((truth == "B") & (rng.random(n) < 0.1), "A", truth)
    frame = pd.DataFrame({"pred": pred, "gold": ""})
    membership = pd.DataFrame({"sample_stratum": pd.Series([None] * n, dtype=object), "stratum_size": np.nan})
    for code in ("A", "B"):
        rows = np.flatnonzero(pred == code)
        take = rng.choice(rows, 150, replace=False)
        frame.loc[take, "gold"] = truth[take]
        membership.loc[take, "sample_stratum"] = code
        membership.loc[take, "stratum_size"] = len(rows)
    frame.loc[np.flatnonzero(frame["gold"] == "")[:5], "gold"] = "A"  # a convenience code outside the sample
    weights, notes = design_weights(membership, frame["gold"] != "")
    assert weights.notna().sum() == 300 and "5 hand-coded text(s) were not drawn" in notes[0]
    assert weights[membership["sample_stratum"] == "A"].iloc[0] == pytest.approx((pred == "A").sum() / 150)
    frame["w"] = weights
    frame.loc[weights.isna(), "gold"] = ""  # as the page passes them: convenience codes left out
    table, _ = corrected_shares(frame, "pred", "gold", weights="w")
    a = table[(table["code"] == "A") & (table["estimator"] == "corrected")].iloc[0]
    assert a["ci_low"] <= float((truth == "A").mean()) <= a["ci_high"]


def test_the_planner_agrees_with_the_reference_package_and_the_interval_it_plans_for():
    import ppi_py

    from analysis.inference import assumed_correlation, needed_for_width, plan_share, width_curve

    frame, _ = _survey(n=4000, n_human=300, seed=8)
    lab = (frame["gold"] != "").to_numpy()
    y = (frame["gold"] == "A").to_numpy(float)[lab]
    yhat_all = (frame["pred"] == "A").to_numpy(float)
    plan = plan_share(y, yhat_all[lab], len(frame), code="A")
    power = ppi_py.ppi_mean_power(y, yhat_all[lab], cost_Y=1.0, cost_Yhat=0.01, effective_n=100)
    assert plan.rho == pytest.approx(power["ppi_corr"], abs=1e-6)
    low, high = ppi_py.ppi_mean_ci(y, yhat_all[lab], yhat_all[~lab], alpha=0.05)
    assert plan.width_now == pytest.approx(float(np.ravel(high - low)[0]), rel=0.05)
    assert plan.width_next < plan.width_now and plan.next_n == 50 and "50 more" in plan.describe()
    curve = width_curve([10, 100, 1000], 4000, sd=0.5, rho=0.8)
    assert curve["width"].is_monotonic_decreasing and (curve["width"] < curve["classical_width"]).all()
    n = needed_for_width(0.1, 4000, sd=0.5, rho=0.8)
    assert width_curve([n], 4000, sd=0.5, rho=0.8)["width"].iloc[0] <= 0.1 < width_curve([n - 1], 4000, sd=0.5,
                                                                                           rho=0.8)["width"].iloc[0]
    assert needed_for_width(0.001, 500, sd=0.5, rho=0.5) is None
    assert assumed_correlation(0.3, 1.0) == pytest.approx(1.0) and assumed_correlation(0.3, 0.5) == pytest.approx(0.0)


def test_the_estimate_command_fits_a_formula_takes_several_coders_and_plans(tmp_path, capsys):
    from analysis.cli import main

    frame, _ = _regional_survey(n=600, n_human=150, seed=9)
    frame["gold2"] = frame["gold"]
    path = tmp_path / "coded.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "coefficients.csv"
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--gold", "gold2",
                 "--formula", "Housing ~ region", "--regression", "logistic", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "region[T.South]" in printed and "majority of the coders (2 columns)" in printed
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == COLUMNS and table["estimand"].tolist() == ["Intercept", "region[T.South]"] * 2
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--plan", "100"]) == 0
    printed = capsys.readouterr().out
    assert "plan: Housing: with 150 random hand codes" in printed and "100 more would make it" in printed
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--by", "region",
                 "--formula", "Housing ~ age"]) == 2
    assert "do not go together" in capsys.readouterr().err
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--formula", "Housing ~ region",
                 "--plan", "100"]) == 0
    assert "plan: region[T.South]: with 150 random hand codes" in capsys.readouterr().out
    # Before any coding: only from an assumed accuracy, and --assume-accuracy only with --plan.
    frame["gold"] = ""
    frame.drop(columns="gold2").to_csv(path, index=False)
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--formula", "Housing ~ region",
                 "--plan"]) == 2
    assert "--assume-accuracy" in capsys.readouterr().err
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--assume-accuracy", "0.9"]) == 2
    assert "give --plan" in capsys.readouterr().err
    assert main(["estimate", str(path), "--pred", "pred", "--gold", "gold", "--formula", "Housing ~ region",
                 "--plan", "--assume-accuracy", "0.9"]) == 0
    assert "plan: region[T.South]: before coding, with an assumed agreement" in capsys.readouterr().out


def test_shares_planned_before_coding_from_an_assumed_accuracy_match_the_interval_later_coding_gives():
    from analysis.inference import assumed_correlation, corrected_shares, plans

    frame, truth = _regional_survey(n=4000, n_human=0, seed=12)
    # The model is wrong both ways on 10% of texts, the accuracy we assume.
    rng = np.random.default_rng(12)
    flip = rng.random(len(frame)) < 0.1
    frame["pred"] = np.where(truth ^ flip, "Housing", "Other")
    planned = {p.code: p for p in plans(frame, "pred", "gold", more=300, assumed_accuracy=0.9)}
    housing = planned["Housing"]
    assert housing.assumed and housing.n_human == 0 and housing.next_n == 300
    assert housing.rho == pytest.approx(assumed_correlation(float((frame["pred"] == "Housing").mean()), 0.9))
    sample = rng.choice(len(frame), 300, replace=False)
    frame.loc[sample, "gold"] = np.where(truth[sample], "Housing", "Other")
    table, _ = corrected_shares(frame, "pred", "gold")
    row = table[(table["code"] == "Housing") & (table["estimator"] == "corrected")].iloc[0]
    assert housing.width_next == pytest.approx(row["ci_high"] - row["ci_low"], rel=0.15)
    with pytest.raises(TextlabError, match="is a score"):
        plans(frame.assign(pred=rng.random(len(frame)), gold=""), "pred", "gold", assumed_accuracy=0.9, estimand="mean")


def test_a_report_from_settings_uses_only_the_recorded_sample_and_flags_misleading_model_estimates():
    from analysis.inference import disagreements_beyond_intervals, estimate_report

    frame, truth = _survey(n=3000, n_human=0, seed=10)
    rng = np.random.default_rng(10)
    drawn = rng.choice(3000, 250, replace=False)
    frame.loc[drawn, "gold"] = truth[drawn]
    outside = np.setdiff1d(np.arange(3000), drawn)[:20]
    frame.loc[outside, "gold"] = "A"  # codes given outside the random sample: a convenience sample
    membership = pd.DataFrame({"sample_stratum": pd.Series([None] * 3000, dtype=object), "stratum_size": np.nan})
    membership.loc[drawn, ["sample_stratum", "stratum_size"]] = ["(all)", 3000]
    report = estimate_report(frame, {"pred": "pred", "gold": ["gold"], "by": "region"}, membership,
                             {"design": "simple_random"})
    assert report.design == "recorded: simple_random" and report.n_convenience == 20
    overall = report.table[(report.table["group"] == "") & (report.table["estimator"] == "corrected")]
    assert set(overall["n_human"]) == {250}  # the 20 convenience codes do not correct
    assert any("20 hand-coded text(s) were not drawn" in n for n in report.notes)
    assert any("recorded simple random sample" in n for n in report.notes)
    flagged = disagreements_beyond_intervals(report.table)
    assert "A" in set(flagged[flagged["group"] == ""]["code"])  # the model's 28% vs the true 40%

    plain = estimate_report(frame, {"pred": "pred", "gold": ["gold"]})
    assert plain.design == "simple random (assumed)" and plain.table["n_human"].max() == 270
    with pytest.raises(TextlabError, match="at least one column of human codes"):
        estimate_report(frame, {"pred": "pred", "gold": []})
    regression = estimate_report(frame, {"pred": "pred", "gold": ["gold"], "formula": "A ~ region"}, membership,
                                 {"design": "simple_random"})
    assert regression.table["estimand"].tolist()[:2] == ["Intercept", "region[T.South]"]


def test_a_code_the_model_never_gives_in_a_group_is_estimated_from_the_humans_alone(recwarn):
    frame = pd.DataFrame({"pred": ["A"] * 150 + ["B"] * 150, "region": ["North"] * 150 + ["South"] * 150,
                          "gold": (["A"] * 20 + ["B"] * 10 + [""] * 120) * 2})
    table, _ = corrected_shares(frame, "pred", "gold", by="region")
    north_b = table[(table["code"] == "B") & (table["group"] == "North") & (table["estimator"] == "corrected")].iloc[0]
    assert north_b["estimate"] == pytest.approx(10 / 30) and 0 < north_b["ci_low"] < north_b["ci_high"] < 1
    assert not [w for w in recwarn if "invalid value" in str(w.message)]
    assert table["estimate"].notna().all()


def test_a_score_read_from_a_csv_as_text_is_still_a_mean(tmp_path):
    frame = pd.DataFrame({"score": ["0.25", "-0.5", "0.75", "0.1"] * 25, "rating": ["0.3", "", "0.5", ""] * 25})
    table, _ = corrected_shares(frame, "score", "rating")
    assert set(table["estimand"]) == {"mean"}


def test_a_code_with_few_hand_coded_cases_is_named_in_the_notes():
    frame = pd.DataFrame({"pred": ["A"] * 290 + ["B"] * 10, "gold": (["A"] * 40 + ["B"] * 3 + [""] * 57) * 3})
    _, notes = corrected_shares(frame, "pred", "gold")
    rare = next(n for n in notes if n.startswith("Fewer than 20 hand-coded cases of"))
    assert rare.startswith("Fewer than 20 hand-coded cases of B:")  # A has 120: not named
    frame["region"] = ["North", "South"] * 150
    _, notes = corrected_shares(frame, "pred", "gold", by="region")
    assert any(n.startswith("2 group estimate(s) rest on fewer than 20 hand-coded cases") for n in notes)  # B in each


def test_the_coefficient_planner_predicts_the_interval_of_the_hand_codes_it_plans_for():
    from analysis.inference import corrected_regression, plan_coefficients

    frame, truth = _regional_survey(n=3000, n_human=200, seed=11)
    table, _ = corrected_regression(frame, "pred", "gold", "Housing ~ region")
    corrected = table[table["estimator"] == "corrected"].set_index("estimand")
    plans = {p.code: p for p in plan_coefficients(frame, "pred", "gold", "Housing ~ region", more=200)}
    assert set(plans) == {"Intercept", "region[T.South]"}
    south = plans["region[T.South]"]
    assert south.n_human == 200 and 0 < south.rho < 1 and south.width_next < south.width_now
    width_now = corrected.loc["region[T.South]", "ci_high"] - corrected.loc["region[T.South]", "ci_low"]
    assert south.width_now == pytest.approx(width_now, rel=0.1)
    # Code 200 more texts at random: the interval they give is about the one planned.
    coded = frame["gold"] != ""
    more = np.random.default_rng(3).choice(np.flatnonzero(~coded), 200, replace=False)
    frame.loc[more, "gold"] = np.where(truth[more], "Housing", "Other")
    later, _ = corrected_regression(frame, "pred", "gold", "Housing ~ region")
    later = later[later["estimator"] == "corrected"].set_index("estimand")
    assert south.width_next == pytest.approx(later.loc["region[T.South]", "ci_high"]
                                             - later.loc["region[T.South]", "ci_low"], rel=0.15)
    # Before coding: from an assumed agreement, the better the agreement the fewer codes a width needs.
    frame["gold"] = ""
    with pytest.raises(TextlabError, match="too few to plan"):
        plan_coefficients(frame, "pred", "gold", "Housing ~ region")
    weak, strong = (plan_coefficients(frame, "pred", "gold", "Housing ~ region", assumed_rho=r)[1] for r in (0.3, 0.9))
    assert weak.n_human == 0 and (strong.curve["width"] <= weak.curve["width"]).all()  # equal once all are coded
    assert (strong.curve["width"] < weak.curve["width"]).iloc[:-1].all()
