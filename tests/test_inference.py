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
    with pytest.raises(TextlabError, match="have no model code"):
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
