"""Validation: agreement metrics equal the reference libraries, intervals behave, missing
rows are counted, several coders and multi-label work, stratified samples, hand codes in
the project, the `textlab validate` command and the validation charts."""

import io
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from analysis import charts
from analysis.cli import main
from analysis.corpus import load_corpus
from analysis.errors import TextlabError
from analysis.validation import (
    _binary_stats,
    _group_alpha,
    _group_features,
    MIN_SHARED_TEXTS,
    _single_stats,
    agreement,
    disagreements,
    draw_sample,
    strata_hash,
    stratified_sample,
)
from analysis.workspace import Workspace
from tests.paths import SAMPLE_CSV

LABELS = ["Housing", "Health care", "Transport", "Energy", "Other"]


def _noisy(rng, gold, p_keep, labels=LABELS):
    return np.where(rng.random(len(gold)) < p_keep, gold, rng.choice(labels, len(gold)))


def _kripp(*rows, codes):
    index = {c: i for i, c in enumerate(codes)}
    data = np.array([[index[v] if v is not None else np.nan for v in row] for row in rows], dtype=float)
    return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")


@pytest.fixture(scope="module")
def random_codes():
    rng = np.random.default_rng(7)
    n = 600
    gold = rng.choice(LABELS, n, p=[0.4, 0.25, 0.2, 0.1, 0.05])
    pred = _noisy(rng, gold, 0.7).astype(object)
    gold = gold.astype(object)
    pred[rng.random(n) < 0.05] = None
    gold[rng.random(n) < 0.05] = np.nan
    return pred, gold


# --------------------------------------------------------------------------- point estimates

def test_point_estimates_equal_sklearn_and_krippendorff(random_codes):
    pred, gold = random_codes
    report = agreement(pred, gold, n_boot=200)
    ok = np.array([p is not None for p in pred]) & ~pd.isna(gold)
    y_pred, y_true = pred[ok].astype(str), gold[ok].astype(str)
    assert report.n_compared == ok.sum() and report.n_missing == len(pred) - ok.sum()
    assert report.metric("accuracy") == pytest.approx(accuracy_score(y_true, y_pred))
    assert report.metric("macro_f1") == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report.metric("cohen_kappa") == pytest.approx(cohen_kappa_score(y_true, y_pred))
    assert report.metric("krippendorff_alpha") == pytest.approx(_kripp(y_true, y_pred, codes=LABELS))
    labels = report.labels
    assert sorted(labels) == sorted(LABELS)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels)
    np.testing.assert_allclose(report.per_code["precision"], p)
    np.testing.assert_allclose(report.per_code["recall"], r)
    np.testing.assert_allclose(report.per_code["f1"], f)
    np.testing.assert_array_equal(report.per_code["support"], s)
    np.testing.assert_array_equal(report.confusion.to_numpy(), confusion_matrix(y_true, y_pred, labels=labels))
    assert list(report.confusion.index) == labels and list(report.confusion.columns) == labels


def test_hand_made_example():
    pred = ["a", "a", "b", "b", "c", "c", "a", None]
    gold = ["a", "b", "b", "b", "c", "a", "a", "c"]
    report = agreement(pred, gold, min_shared=1, n_boot=100)
    assert report.n_compared == 7 and report.n_missing == 1
    assert report.metric("accuracy") == pytest.approx(5 / 7)
    # confusion: gold a -> pred a twice, c once; gold b -> a once, b twice; gold c -> c once
    assert report.confusion.loc["a"].tolist() == [2, 0, 1]
    assert report.confusion.loc["b"].tolist() == [1, 2, 0]
    assert report.confusion.loc["c"].tolist() == [0, 0, 1]
    po, pe = 5 / 7, (3 * 3 + 3 * 2 + 1 * 2) / 49
    assert report.metric("cohen_kappa") == pytest.approx((po - pe) / (1 - pe))
    f1 = {"a": 2 * 2 / (3 + 3), "b": 2 * 2 / (3 + 2), "c": 2 * 1 / (1 + 2)}
    assert report.metric("macro_f1") == pytest.approx(np.mean(list(f1.values())))
    assert report.per_code.set_index("code")["f1"].to_dict() == pytest.approx(f1)
    prev = report.prevalence.set_index(["source", "code"])
    assert prev.loc[("model", "a"), "count"] == 3 and prev.loc[("human", "b"), "count"] == 3
    assert prev.loc[("human", "a"), "share"] == pytest.approx(3 / 7)
    assert prev.loc[("human", "a"), "ci_low"] < 3 / 7 < prev.loc[("human", "a"), "ci_high"]


def test_bootstrap_formulas_equal_the_libraries(random_codes):
    """The fast per-resample formulas give the library values on the full data."""
    pred, gold = random_codes
    ok = np.array([p is not None for p in pred]) & ~pd.isna(gold)
    y_pred, y_true = pred[ok].astype(str), gold[ok].astype(str)
    conf = confusion_matrix(y_true, y_pred, labels=LABELS).astype(float)
    stats = _single_stats(conf)
    assert stats["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert stats["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert stats["cohen_kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred))
    assert stats["krippendorff_alpha"] == pytest.approx(_kripp(y_true, y_pred, codes=LABELS))
    # A code absent from both sides does not count in macro-F1 (sklearn's default labels).
    conf6 = np.zeros((6, 6))
    conf6[:5, :5] = conf
    assert _single_stats(conf6)["macro_f1"] == pytest.approx(stats["macro_f1"])

    # Several coders with gaps: coincidence-matrix alpha equals krippendorff.alpha.
    rng = np.random.default_rng(3)
    units = rng.integers(0, 4, size=(3, 300))
    units[rng.random((3, 300)) < 0.2] = -1
    feats = _group_features(units, 4, multi=False)
    assert _group_alpha(np.asarray(feats.sum(axis=0)).ravel(), 4, multi=False) == pytest.approx(
        krippendorff.alpha(reliability_data=np.where(units >= 0, units, np.nan), level_of_measurement="nominal"))

    # Binary per-code counts (multi-label).
    g, p = rng.integers(0, 2, size=(200, 3)), rng.integers(0, 2, size=(200, 3))
    tp, fp = (g & p).sum(0), ((1 - g) & p).sum(0)
    fn, tn = (g & (1 - p)).sum(0), ((1 - g) & (1 - p)).sum(0)
    b = _binary_stats(tp, fp, fn, tn, np.float64((g == p).all(1).sum()), np.float64(200))
    assert b["accuracy"] == pytest.approx(accuracy_score(g, p))
    assert b["macro_f1"] == pytest.approx(f1_score(g, p, average="macro"))
    assert b["cohen_kappa"] == pytest.approx(np.mean([cohen_kappa_score(g[:, c], p[:, c]) for c in range(3)]))
    assert b["krippendorff_alpha"] == pytest.approx(np.mean([
        krippendorff.alpha(reliability_data=np.vstack([g[:, c], p[:, c]]).astype(float), level_of_measurement="nominal")
        for c in range(3)]))


# --------------------------------------------------------------------------- intervals

def test_intervals_contain_the_estimate_and_narrow_with_n():
    rng = np.random.default_rng(11)
    widths = {}
    for n in (150, 2400):
        gold = rng.choice(LABELS, n)
        report = agreement(_noisy(rng, gold, 0.6), gold, n_boot=300, seed=1)
        s = report.summary
        assert (s["ci_low"] <= s["value"] + 1e-12).all() and (s["value"] <= s["ci_high"] + 1e-12).all(), s
        pc = report.per_code
        assert ((pc["f1_ci_low"] <= pc["f1"] + 1e-12) & (pc["f1"] <= pc["f1_ci_high"] + 1e-12)).all()
        widths[n] = (s["ci_high"] - s["ci_low"]).to_numpy()
    assert (widths[2400] < widths[150] / 2).all()


def test_same_seed_same_intervals_and_level_changes_width():
    rng = np.random.default_rng(2)
    gold = rng.choice(LABELS, 300)
    pred = _noisy(rng, gold, 0.6)
    a, b = agreement(pred, gold, n_boot=200, seed=5), agreement(pred, gold, n_boot=200, seed=5)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    c = agreement(pred, gold, n_boot=200, seed=5, level=0.5)
    assert ((c.summary["ci_high"] - c.summary["ci_low"]) < (a.summary["ci_high"] - a.summary["ci_low"])).all()


def test_report_of_2000_rows_is_fast():
    rng = np.random.default_rng(0)
    gold = rng.choice(LABELS, 2000)
    start = time.perf_counter()
    agreement(_noisy(rng, gold, 0.7), gold, n_boot=1000)
    assert time.perf_counter() - start < 3


# --------------------------------------------------------------------------- missing, coders

def test_missing_rows_are_counted_not_dropped_silently():
    pred = pd.Series(["a", None, "b", "", "  ", np.nan, "a", "b"])
    gold = pd.Series(["a", "a", None, "b", "a", "b", "b", "b"], name="coder_x")
    report = agreement(pred, gold, min_shared=1, n_boot=50)
    assert report.n_rows == 8 and report.n_compared == 3 and report.n_missing == 5
    assert report.missing == {"no_model_code": 4, "no_human_code": 1}
    assert report.main_comparison == "model vs coder_x" and report.coders == ["coder_x"]
    assert "5 of 8 rows left out" in report.notes[0]
    assert (report.summary["n"] == 3).all()


def test_several_coders_pairwise_and_majority():
    rng = np.random.default_rng(5)
    n = 400
    truth = rng.choice(LABELS, n)
    coders = {"ann": _noisy(rng, truth, 0.8).astype(object), "bob": _noisy(rng, truth, 0.7).astype(object),
              "cy": _noisy(rng, truth, 0.6).astype(object)}
    coders["cy"][:40] = None
    pred = _noisy(rng, truth, 0.65)
    report = agreement(pred, coders, n_boot=200)
    names = list(pd.unique(report.summary["comparison"]))
    assert names == ["model vs ann", "model vs bob", "model vs cy", "model vs majority", "ann vs bob", "ann vs cy",
                     "bob vs cy", "coders (3)", "model + coders"]
    assert report.main_comparison == "model vs majority" and report.coders == ["ann", "bob", "cy"]
    # pairwise values equal sklearn's
    ok = np.array([v is not None for v in coders["cy"]])
    assert report.metric("cohen_kappa", "bob vs cy") == pytest.approx(
        cohen_kappa_score(coders["cy"][ok].astype(str), coders["bob"][ok].astype(str)))
    assert report.metric("accuracy", "model vs ann") == pytest.approx(accuracy_score(coders["ann"].astype(str), pred))
    # majority among the coders who coded the row; ties counted
    majority, ties = [], 0
    for i in range(n):
        votes = pd.Series([c[i] for c in coders.values() if c[i] is not None]).value_counts()
        if len(votes) > 1 and votes.iloc[0] == votes.iloc[1]:
            majority.append(None)
            ties += 1
        else:
            majority.append(votes.index[0])
    has = np.array([m is not None for m in majority])
    assert report.missing["coders_tie"] == ties > 0
    assert report.n_compared == has.sum()
    assert report.metric("accuracy") == pytest.approx(accuracy_score(np.array(majority, dtype=object)[has], pred[has]))
    # alpha of all coders, and with the model as one more coder row
    rows = [list(c) for c in coders.values()]
    assert report.metric("krippendorff_alpha", "coders (3)") == pytest.approx(_kripp(*rows, codes=LABELS))
    assert report.metric("krippendorff_alpha", "model + coders") == pytest.approx(_kripp(list(pred), *rows, codes=LABELS))
    assert set(report.summary.loc[report.summary["comparison"] == "coders (3)", "metric"]) == {"krippendorff_alpha"}


def test_two_coders_have_no_all_coders_row_and_a_dataframe_works():
    gold = pd.DataFrame({"a": ["x", "y", "x", "y"], "b": ["x", "y", "y", "y"]})
    report = agreement(["x", "y", "x", "x"], gold, min_shared=1, n_boot=50)
    comparisons = set(report.summary["comparison"])
    assert comparisons == {"model vs a", "model vs b", "model vs majority", "a vs b", "model + coders"}
    assert report.missing["coders_tie"] == 1 and report.n_compared == 3


def test_coders_who_never_agree_fall_back_to_one_coder():
    report = agreement(["a", "b", "a", "b"], {"x": ["a", "b", "b", "a"], "y": ["b", "a", "a", "b"]}, min_shared=1, n_boot=20)
    assert report.main_comparison == "model vs x" and report.n_compared == 4
    assert "coders_tie" not in report.missing and any("no majority" in n for n in report.notes)
    assert report.metric("accuracy", "x vs y") == 0.0


def test_too_few_shared_texts_give_counts_and_no_estimate():
    """Two coders sharing one text used to get kappa 0 with an interval: below the minimum
    the comparison keeps its count, has no value or interval, and says why."""
    pred = ["a", "b", None, "a"]
    gold = {"x": ["a", "a", "b", None], "y": [None, "b", None, None]}
    report = agreement(pred, gold, n_boot=50)
    assert MIN_SHARED_TEXTS == 20
    s = report.summary.set_index(["comparison", "metric"])
    # Row 1 is a tie of x and y, so the majority rests on row 0 alone.
    for comparison, n in (("model vs x", 2), ("model vs y", 1), ("x vs y", 1), ("model vs majority", 1),
                          ("model + coders", 2)):
        rows = report.summary[report.summary["comparison"] == comparison]
        assert (rows["n"] == n).all(), comparison
        assert rows[["value", "ci_low", "ci_high"]].isna().all().all(), comparison
        assert rows["note"].str.contains(f"too few texts.*{MIN_SHARED_TEXTS}").all(), comparison
    assert np.isnan(s.loc[("x vs y", "cohen_kappa"), "value"])
    assert any("x vs y" in n and "only 1 text" in n and str(MIN_SHARED_TEXTS) in n for n in report.notes)
    # The main comparison's per-code scores and intervals are estimates too: counts only.
    assert report.per_code[["precision", "recall", "f1", "f1_ci_low", "f1_ci_high"]].isna().all().all()
    assert report.per_code["support"].sum() == 1 and report.confusion.to_numpy().sum() == 1
    assert report.prevalence[["ci_low", "ci_high"]].isna().all().all()
    assert report.prevalence["count"].sum() == 2
    json.dumps(report.to_dict())
    assert report.to_dict()["min_shared"] == MIN_SHARED_TEXTS
    # At the minimum the estimates are back.
    rng = np.random.default_rng(1)
    g = rng.choice(LABELS[:3], MIN_SHARED_TEXTS)
    enough = agreement(_noisy(rng, g, 0.7, LABELS[:3]), g, n_boot=50)
    assert enough.summary[["value", "ci_low", "ci_high"]].notna().all().all()
    assert not any("too few" in n for n in enough.notes)
    fewer = agreement(_noisy(rng, g, 0.7, LABELS[:3])[1:], g[1:], n_boot=50)
    assert fewer.summary["value"].isna().all() and (fewer.summary["n"] == MIN_SHARED_TEXTS - 1).all()
    # The threshold is a parameter (the formula tests use tiny hand-made data).
    assert agreement(pred, gold["x"], min_shared=1, n_boot=20).metric("accuracy") == 0.5


def test_majority_says_how_many_texts_had_one_or_several_coders():
    rng = np.random.default_rng(4)
    n = 60
    truth = rng.choice(LABELS, n)
    a = _noisy(rng, truth, 0.8).astype(object)
    b = _noisy(rng, truth, 0.8).astype(object)
    b[:35] = None  # 35 texts coded by a only, 25 by both
    report = agreement(_noisy(rng, truth, 0.7), {"a": a, "b": b}, n_boot=50)
    assert report.main_comparison == "model vs majority"
    single = 35
    several = report.n_compared - single
    assert report.coders_per_text == {"1": single, "2+": several}
    assert report.to_dict()["coders_per_text"] == {"1": single, "2+": several}
    note = next(x for x in report.notes if x.startswith("model vs majority:"))
    assert f"{single:,} coded by one coder" in note and f"{several:,} by two or more" in note
    # One coder: no majority, nothing to say.
    assert agreement(_noisy(rng, truth, 0.7), a, n_boot=20).coders_per_text == {}


def test_cli_validate_says_why_a_tiny_comparison_has_no_value(tmp_path, capsys):
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"text": ["x", "y", "z"], "model": ["a", "b", "a"], "coder": ["a", "a", None]}).to_csv(path, index=False)
    assert main(["validate", str(path), "--pred", "model", "--gold", "coder", "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    assert "model vs coder: 2 compared" in out
    assert "0.500" not in out and "- to -" in out
    assert "note: model vs coder: only 2 texts" in out and f"at least {MIN_SHARED_TEXTS}" in out


def test_single_code_gives_nan_kappa_with_a_note():
    report = agreement(["a"] * 5, ["a"] * 5, min_shared=1, n_boot=50)
    assert report.metric("accuracy") == 1.0
    assert np.isnan(report.metric("cohen_kappa")) and np.isnan(report.metric("krippendorff_alpha"))
    assert any("only one code" in n for n in report.notes)
    json.dumps(report.to_dict())


def test_multi_label():
    rng = np.random.default_rng(9)
    codes = ["Housing", "Health care", "Transport", "Energy"]
    n = 300
    G = (rng.random((n, 4)) < 0.35).astype(int)
    P = np.where(rng.random((n, 4)) < 0.8, G, 1 - G)
    G[G.sum(1) == 0, 0] = 1
    P[P.sum(1) == 0, 1] = 1

    def join(M, order):
        return [";".join(codes[j] for j in order if M[i, j]) for i in range(n)]

    pred = join(P, [3, 2, 1, 0])  # the order inside a cell does not matter
    gold = join(G, [0, 1, 2, 3])
    gold[0] = None
    report = agreement(pred, gold, labels=codes, multi_label=True, n_boot=200)
    assert report.multi_label and report.labels == codes and report.n_compared == n - 1
    g, p = G[1:], P[1:]
    assert report.metric("accuracy") == pytest.approx(accuracy_score(g, p))
    assert report.metric("macro_f1") == pytest.approx(f1_score(g, p, average="macro"))
    pr, rc, f, s = precision_recall_fscore_support(g, p, average=None)
    np.testing.assert_allclose(report.per_code["precision"], pr)
    np.testing.assert_allclose(report.per_code["f1"], f)
    np.testing.assert_array_equal(report.per_code["support"], s)
    assert report.metric("cohen_kappa") == pytest.approx(np.mean([cohen_kappa_score(g[:, c], p[:, c]) for c in range(4)]))
    assert report.metric("krippendorff_alpha") == pytest.approx(np.mean([
        krippendorff.alpha(reliability_data=np.vstack([g[:, c], p[:, c]]).astype(float), level_of_measurement="nominal")
        for c in range(4)]))
    np.testing.assert_array_equal(report.confusion.to_numpy(), g.T @ p)
    prev = report.prevalence.set_index(["source", "code"])
    assert prev.loc[("human", "Housing"), "count"] == g[:, 0].sum()
    s = report.summary
    assert ((s["ci_low"] <= s["value"] + 1e-12) & (s["value"] <= s["ci_high"] + 1e-12)).all()


def test_multi_label_several_coders():
    pred = ["a;b", "a", "b", "c"]
    coders = {"x": ["a", "a;b", "b", "c"], "y": ["a;b", "a", "b", None], "z": ["b", "a", "b", "c"]}
    report = agreement(pred, coders, multi_label=True, min_shared=1, n_boot=50)
    assert report.main_comparison == "model vs majority"
    assert report.metric("accuracy") == 1.0  # majorities: {a,b}, {a}, {b}, {c}
    assert report.metric("accuracy", "model vs x") == 0.5


def test_semicolons_in_single_label_codes_get_a_note():
    report = agreement(["a;b", "a"], ["a;b", "b"], n_boot=20)
    assert any("multi-label" in n for n in report.notes)


def test_export_formats(random_codes):
    pred, gold = random_codes
    report = agreement(pred, {"one": gold, "two": pd.Series(gold).shift(1)}, n_boot=50)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["n_compared"] == report.n_compared and data["coders"] == ["one", "two"]
    assert len(data["confusion"]["counts"]) == len(report.labels)
    assert data["interval"]["n_boot"] == 50
    tidy = report.to_frame()
    assert set(tidy["table"]) == {"summary", "per_code", "confusion", "prevalence"}
    assert list(tidy.columns) == ["table", "comparison", "code", "predicted", "source", "metric", "value",
                                  "ci_low", "ci_high", "n"]
    assert tidy.loc[tidy["table"] == "confusion", "value"].sum() == report.n_compared


@pytest.mark.parametrize("call, message", [
    (lambda: agreement(["a", "b"], ["a"]), "has 1"),
    (lambda: agreement([None, "a"], ["b", None]), "no row has both"),
    (lambda: agreement([None, ""], [np.nan, None]), "every row lacks a code"),
    (lambda: agreement(["a"], {}), "at least one column"),
    (lambda: agreement(["a"], {"model": ["a"]}), "may not be called 'model'"),
    (lambda: agreement(["a"], {"majority": ["a"], "b": ["a"]}), "majority"),
    (lambda: agreement(["a"], ["a"], level=95), "between 0 and 1"),
    (lambda: agreement(["a"], ["a"], n_boot=0), "at least 1"),
    (lambda: agreement("abc", ["a"]), "column of codes"),
    (lambda: agreement([], []), "empty"),
])
def test_errors_say_what_and_what_to_do(call, message):
    with pytest.raises(TextlabError, match=message):
        call()


def test_disagreements():
    frame = pd.DataFrame({"text": list("pqrstu"), "pred": ["a", "a", "b", None, "c", "a;b"],
                          "h1": ["a", "b", "b", "a", None, "a"], "h2": ["a", "a", "c", "a", "a", "a;b"]})
    assert disagreements(frame, "pred", "h1")["text"].tolist() == ["q", "u"]
    # s has no model code; t has no h1 code but differs from h2
    assert disagreements(frame, "pred", ["h1", "h2"])["text"].tolist() == ["q", "r", "t", "u"]
    assert disagreements(frame, "pred", ["h1", "h2"], codes=["c"])["text"].tolist() == ["r", "t"]
    assert disagreements(frame, "pred", ["h1", "h2"], multi_label=True)["text"].tolist() == ["q", "r", "t", "u"]
    with pytest.raises(TextlabError, match="nope"):
        disagreements(frame, "pred", "nope")


# --------------------------------------------------------------------------- sampling

@pytest.fixture
def skewed():
    counts = {"big": 300, "mid": 60, "rare": 5, "tiny": 2}
    codes = [c for c, k in counts.items() for _ in range(k)] + [None] * 8
    rng = np.random.default_rng(0)
    codes = list(rng.permutation(np.array(codes, dtype=object)))
    return pd.DataFrame({"doc_id": [f"d{i}" for i in range(len(codes))], "code_label": codes})


def test_equal_allocation_gives_rare_codes_their_rows(skewed):
    sample = stratified_sample(skewed, "code_label", 40, seed=1)
    counts = sample["code_label"].fillna("(missing)").value_counts().to_dict()
    # 40 over 5 strata = 8 each; rare (5) and tiny (2) give all they have, the rest share
    assert counts["tiny"] == 2 and counts["rare"] == 5 and counts["(missing)"] == 8
    assert counts["big"] + counts["mid"] == 25 and abs(counts["big"] - counts["mid"]) <= 1
    assert len(sample) == 40 and sample["doc_id"].is_unique


def test_proportional_allocation(skewed):
    sample = stratified_sample(skewed, "code_label", 75, allocation="proportional", seed=1)
    counts = sample["code_label"].fillna("(missing)").value_counts().to_dict()
    total = len(skewed)
    assert len(sample) == 75
    for code, size in skewed["code_label"].fillna("(missing)").value_counts().items():
        assert abs(counts.get(code, 0) - 75 * size / total) < 1


def test_sample_is_deterministic_shuffled_and_excludes(skewed):
    a = stratified_sample(skewed, "code_label", 30, seed=3)
    b = stratified_sample(skewed, "code_label", 30, seed=3)
    c = stratified_sample(skewed, "code_label", 30, seed=4)
    assert a["doc_id"].tolist() == b["doc_id"].tolist() != c["doc_id"].tolist()
    labels = a["code_label"].fillna("(missing)").tolist()
    runs = sum(1 for x, y in zip(labels, labels[1:]) if x != y)
    assert runs > 5  # not grouped by stratum
    done = set(a["doc_id"])
    d = stratified_sample(skewed, "code_label", 30, seed=3, exclude=done)
    assert not done & set(d["doc_id"])
    everything = stratified_sample(skewed, "code_label", 10_000)
    assert len(everything) == len(skewed)
    assert len(stratified_sample(skewed, None, 12)) == 12
    with pytest.raises(TextlabError, match="no such column"):
        stratified_sample(skewed, "nope", 3)
    with pytest.raises(TextlabError, match="at least 1"):
        stratified_sample(skewed, "code_label", 0)
    with pytest.raises(TextlabError, match="already hand-coded"):
        stratified_sample(skewed, "code_label", 3, exclude=skewed["doc_id"])


def test_draw_sample_records_the_design_and_its_probabilities(skewed):
    draw = draw_sample(skewed, 40, design="stratified_equal", by="code_label", seed=1)
    record = draw.record
    # The same rows as stratified_sample: one implementation.
    assert draw.rows["doc_id"].tolist() == stratified_sample(skewed, "code_label", 40, seed=1)["doc_id"].tolist()
    assert {k: record[k] for k in ("design", "by", "seed", "n", "n_requested", "pool_size", "excluded")} == {
        "design": "stratified_equal", "by": "code_label", "seed": 1, "n": 40, "n_requested": 40,
        "pool_size": len(skewed), "excluded": []}
    stamp = datetime.fromisoformat(record["drawn_at"])
    assert stamp.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=5)
    assert record["sample_id"] and json.loads(json.dumps(record)) == record  # JSON-ready
    # Per stratum: its size N_s in the pool and the number drawn; small strata are taken whole.
    sizes = skewed["code_label"].fillna("(missing)").value_counts().to_dict()
    assert {s: v["size"] for s, v in record["strata"].items()} == sizes
    drawn = {s: v["drawn"] for s, v in record["strata"].items()}
    assert drawn["tiny"] == 2 and drawn["rare"] == 5 and drawn["(missing)"] == 8 and sum(drawn.values()) == 40
    assert record["strata"]["tiny"]["drawn"] / record["strata"]["tiny"]["size"] == 1.0
    # Per drawn text its stratum at draw time, in the drawn (random) order.
    assert [d["doc_id"] for d in record["docs"]] == draw.doc_ids == draw.rows["doc_id"].tolist()
    assert [d["stratum"] for d in record["docs"]] == draw.rows["code_label"].fillna("(missing)").tolist()
    assert pd.Series([d["stratum"] for d in record["docs"]]).value_counts().to_dict() == {
        s: n for s, n in drawn.items() if n}
    assert record["strata_hash"] == strata_hash(skewed, "code_label") != strata_hash(skewed, None)


def test_draw_sample_inclusion_probabilities_are_n_s_over_N_s():
    """Over many seeds each text is drawn about n_s / N_s of the time, the probability the record states."""
    frame = pd.DataFrame({"doc_id": [f"d{i}" for i in range(30)], "code": ["A"] * 20 + ["B"] * 10})
    for design, expected in (("stratified_equal", {"A": 5 / 20, "B": 5 / 10}),
                             ("stratified_proportional", {"A": 6 / 20, "B": 3 / 10}),
                             ("simple_random", {"(all)": 9 / 30})):
        n = 10 if design == "stratified_equal" else 9
        hits = pd.Series(0, index=frame["doc_id"])
        for seed in range(800):
            draw = draw_sample(frame, n, design=design, by="code", seed=seed)
            hits[draw.doc_ids] += 1
        stated = {s: v["drawn"] / v["size"] for s, v in draw.record["strata"].items()}
        assert stated == pytest.approx(expected)
        strata = frame["code"] if design != "simple_random" else pd.Series("(all)", index=frame.index)
        rate = hits.to_numpy() / 800
        for stratum, p in expected.items():
            share = rate[(strata == stratum).to_numpy()]
            assert share.mean() == pytest.approx(p)  # n_s of N_s every time
            assert np.abs(share - p).max() < 0.07, (design, stratum)  # and every text equally likely (4 SE)


def test_draw_sample_is_deterministic_and_the_pool_leaves_out_the_excluded(skewed):
    a = draw_sample(skewed, 30, design="simple_random", seed=3)
    b = draw_sample(skewed, 30, design="simple_random", by="code_label", seed=3)  # by is ignored
    c = draw_sample(skewed, 30, design="simple_random", seed=4)
    assert a.doc_ids == b.doc_ids != c.doc_ids
    assert a.record["sample_id"] != b.record["sample_id"]
    assert b.record["by"] is None and set(b.record["strata"]) == {"(all)"}
    assert {d["stratum"] for d in a.record["docs"]} == {"(all)"}
    assert a.record["strata"]["(all)"] == {"size": len(skewed), "drawn": 30}
    later = draw_sample(skewed, 30, design="simple_random", seed=5, exclude=a.doc_ids + ["not a doc"])
    assert not set(later.doc_ids) & set(a.doc_ids)
    assert sorted(later.record["excluded"]) == sorted(a.doc_ids)  # only the table's ids
    assert later.record["pool_size"] == len(skewed) - 30 == later.record["strata"]["(all)"]["size"]
    prop = draw_sample(skewed, 75, design="stratified_proportional", by="code_label", seed=1)
    assert prop.doc_ids == stratified_sample(skewed, "code_label", 75, allocation="proportional", seed=1)["doc_id"].tolist()
    free = draw_sample(skewed, 5, design="simple_random", seed=None)
    assert isinstance(free.record["seed"], int)  # a seed was picked and recorded
    assert draw_sample(skewed, 5, design="simple_random", seed=free.record["seed"]).doc_ids == free.doc_ids
    everything = draw_sample(skewed, 10_000, design="stratified_equal", by="code_label")
    assert everything.record["n"] == len(skewed) and everything.record["n_requested"] == 10_000


@pytest.mark.parametrize("kwargs, message", [
    ({"design": "equal"}, "Unknown sample design 'equal'"),
    ({"design": "stratified_equal"}, "needs a column to stratify by"),
    ({"design": "stratified_proportional", "by": " "}, "needs a column to stratify by"),
    ({"design": "stratified_equal", "by": "nope"}, "no such column"),
    ({"design": "simple_random", "seed": 1.5}, "seed must be a whole number"),
    ({"design": "simple_random", "seed": -1}, "seed must be 0 or more"),
    ({"design": "simple_random", "n": 0}, "at least 1"),
    ({"design": "simple_random", "n": "many"}, "sample size must be a whole number"),
])
def test_draw_sample_errors_say_what_to_do(skewed, kwargs, message):
    kwargs = {"n": 5, **kwargs}
    with pytest.raises(TextlabError, match=message):
        draw_sample(skewed, kwargs.pop("n"), **kwargs)


# --------------------------------------------------------------------------- hand codes

@pytest.fixture
def project(tmp_path):
    corpus, _ = load_corpus(SAMPLE_CSV, text_column="text", id_column="respondent_id")
    return Workspace(tmp_path / "ws").create_project("sample", corpus)


def test_annotations_round_trip(project):
    assert project.annotations().empty and list(project.annotations().columns) == ["doc_id", "coder", "code", "coded_at"]
    assert project.human_codes().shape == (467, 0)
    project.save_annotations("Anna B", {"R0001": "Housing", "R0002": "Health care"})
    project.save_annotations("Bo", {"R0001": "Housing"})
    project.save_annotations("Anna B", {"R0001": None, "R0002": "Housing", "R0003": "Cost of living", "R0004": ""})
    table = project.annotations().sort_values(["coder", "doc_id"])
    assert table[["doc_id", "coder", "code"]].values.tolist() == [
        ["R0002", "Anna B", "Housing"], ["R0003", "Anna B", "Cost of living"], ["R0001", "Bo", "Housing"]]
    assert table["coded_at"].str.endswith("+00:00").all()
    wide = project.human_codes()
    corpus = project.corpus().data
    assert list(wide.columns) == ["human_anna_b", "human_bo"] and wide.index.equals(corpus.index)
    by_id = wide.set_index(corpus["doc_id"])
    assert by_id.loc["R0002", "human_anna_b"] == "Housing" and pd.isna(by_id.loc["R0001", "human_anna_b"])
    assert by_id.loc["R0001", "human_bo"] == "Housing" and wide["human_bo"].notna().sum() == 1
    joined = project.with_human_codes(project.results_frame())
    assert len(joined) == 467 and joined.loc[joined["doc_id"] == "R0003", "human_anna_b"].item() == "Cost of living"
    # a frame with its own index (the corpus table reset) gets the codes by position, not by label
    shifted = project.with_human_codes(corpus.set_index(corpus.index + 1000))
    assert shifted.loc[shifted["doc_id"] == "R0002", "human_anna_b"].item() == "Housing"


@pytest.mark.parametrize("coder, message", [
    ("", "Enter a coder name"), ("x" * 61, "at most 60"), ("???", "letter or digit"),
    ("anna-b", "too close"), ("code 2", "already has"),
])
def test_annotation_coder_names_are_checked(project, coder, message):
    project.save_annotations("Anna B", {"R0001": "Housing"})
    with pytest.raises(TextlabError, match=message):
        project.save_annotations(coder, {"R0002": "Housing"})


def test_annotations_refuse_unknown_doc_ids(project):
    with pytest.raises(TextlabError, match="not texts of this project"):
        project.save_annotations("Anna", {"nope": "Housing"})


def test_concurrent_saves_lose_nothing(project):
    def work(i):
        for j in range(8):
            project.save_annotations(f"coder {i}", {f"R{j + 1:04d}": f"code {j}"})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert project.annotations().groupby("coder").size().to_dict() == {f"coder {i}": 8 for i in range(4)}


# --------------------------------------------------------------------------- command line

def test_cli_validate_prints_tables_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["validate", str(SAMPLE_CSV), "--pred", "human_code", "--gold", "human_code_2",
                 "--out", str(out), "--n-boot", "200"]) == 0
    captured = capsys.readouterr()
    assert "human_code vs human_code_2" in captured.out and "cohen_kappa" in captured.out
    assert "Public transport" in captured.out and "95% CI" in captured.out
    assert "387 of 467 rows left out" in captured.out
    data = json.loads(out.read_text("utf-8"))
    frame = pd.read_csv(SAMPLE_CSV)
    ok = frame["human_code"].notna() & frame["human_code_2"].notna()
    kappa = {r["metric"]: r["value"] for r in data["summary"]}["cohen_kappa"]
    assert kappa == pytest.approx(cohen_kappa_score(frame.loc[ok, "human_code_2"], frame.loc[ok, "human_code"]))
    assert data["n_compared"] == ok.sum() == 80


def test_cli_validate_csv_report_and_several_gold_columns(tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["validate", str(SAMPLE_CSV), "--pred", "region", "--gold", "human_code", "--gold", "human_code_2",
                 "--out", str(out), "--n-boot", "50"]) == 0
    tidy = pd.read_csv(out)
    assert {"summary", "per_code", "confusion", "prevalence"} == set(tidy["table"])
    assert {"region vs majority", "human_code vs human_code_2"} <= set(tidy["comparison"])


def test_cli_validate_errors(tmp_path, capsys):
    assert main(["validate", str(SAMPLE_CSV), "--pred", "model_code", "--gold", "human_code_2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("textlab: error: 'model_code' is not a column") and "human_code_2" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["validate", str(SAMPLE_CSV), "--pred", "human_code", "--gold", "human_code_2",
                 "--out", str(tmp_path / "r.xlsx")]) == 2
    assert ".json or .csv" in capsys.readouterr().err
    assert main(["validate", str(SAMPLE_CSV), "--pred", "region", "--gold", "human_code"]) == 0


# --------------------------------------------------------------------------- charts

EVIL = "<script>alert(1)</script>"


def _text(fig) -> str:
    return json.dumps(json.loads(fig.to_json()), ensure_ascii=False)


def test_validation_charts_escape_codes_and_show_counts():
    pred = ["a", EVIL, "a", "b", EVIL, "b"]
    gold = ["a", EVIL, "b", "b", "a", "b"]
    report = agreement(pred, {EVIL: gold, "c2": gold}, n_boot=30)
    heat = charts.confusion_heatmap(report.confusion)
    assert heat.data[0].type == "heatmap"
    z = np.asarray(heat.data[0].z)
    np.testing.assert_allclose(z.sum(axis=1), 1.0)  # row-normalised shares
    assert [list(map(str, r)) for r in heat.data[0].text] == [[str(v) for v in row] for row in report.confusion.to_numpy()]
    prev = charts.prevalence_chart(report.prevalence)
    assert [t.name for t in prev.data] == ["model", "human"] and prev.layout.barmode == "group"
    dots = charts.agreement_chart(report.summary)
    assert len(dots.data) == 4
    for fig in (heat, prev, dots):
        text = _text(fig)
        assert "<script>" not in text and "&lt;script&gt;" in text
    counts = charts.confusion_heatmap(report.confusion, normalize=None)
    assert np.asarray(counts.data[0].z).sum() == report.n_compared
    for fig in (charts.confusion_heatmap(pd.DataFrame()), charts.prevalence_chart(pd.DataFrame()),
                charts.agreement_chart(pd.DataFrame())):
        assert "No data" in _text(fig)


# --------------------------------------------------------------------------- formula injection

HOSTILE_CODES = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://127.0.0.1:8599/x","click")', "-rent too high", "+1 for buses"]


def _formula_cells(data: bytes) -> list[str]:
    """Cells of a CSV that a spreadsheet would run as formulas (plain numbers excluded)."""
    cells = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False).to_numpy().ravel().tolist()
    return [c for c in cells if c and c[0] in "=+-@" and not re.fullmatch(r"[+-]?[\d.]+(e[+-]?\d+)?", c)]


def _hostile_report():
    rng = np.random.default_rng(3)
    gold = rng.choice(HOSTILE_CODES, 60)
    pred = np.where(rng.random(60) < 0.7, gold, rng.choice(HOSTILE_CODES, 60))
    return agreement(list(pred), list(gold), n_boot=20)


def test_report_csv_bytes_neutralise_codes():
    report = _hostile_report()
    assert _formula_cells(report.to_frame().to_csv(index=False).encode())  # the raw frame holds them
    data = report.to_csv_bytes()  # what the Validate page's download button gets
    assert not _formula_cells(data)
    codes = set(pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)["code"])
    assert "'-rent too high" in codes and "'=cmd|' /C calc'!A0" in codes
    assert set(HOSTILE_CODES) <= set(pd.read_csv(io.BytesIO(report.to_csv_bytes(neutralize=False)), dtype=str)["code"])
