"""Estimates a reviewer accepts: shares, means and regressions corrected by a random human sample.

Model codes for every text and human codes for a random sample of them are combined by
prediction-powered inference (Angelopoulos et al. 2023, PPI++ with power tuning, through
the reference package ``ppi-python``): the model's estimate over the texts, corrected by
the model's error measured on the hand-coded ones. The estimate is unbiased however wrong
the model is, and its interval is honest about the size of the human sample; the
model-only estimate (every model code taken as true) is reported beside it for contrast.

Rows whose gold cell is empty are the texts nobody hand-coded. Without sampling weights
the hand-coded rows are taken as a simple random sample of all rows, and the report says
so; with weights (inverse inclusion probabilities of a stratified or unequal design, see
``design_weights``) each hand-coded row counts as many texts as it stands for.

Several human coders: a text's human code is the majority of its coders; a tie splits the
text evenly between the tied codes (two coders, "A" and "B": half a text of each), so no
hand-coded text is dropped, and the ties are counted in the notes. For a numeric column
(a sentiment score) the coders' mean is the human value.

Long format, one row per estimate, ready for Stata/R: ``estimand`` (``share``, ``mean`` or
the coefficient's name), ``code``, ``group`` (empty for overall), ``estimator``
(``model_only`` or ``corrected``), ``estimate``, ``ci_low``, ``ci_high``, ``n_human``,
``n_model``.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .aggregate import wilson_interval
from .errors import TextlabError

# Fewer hand-coded texts than this (in a group) give no corrected estimate: with a handful the
# normal approximation collapses (4 texts none of which has a code: an interval of [0, 0]).
MIN_HUMAN = 10
# benchmarks/inference_validity.py: a share whose code has under ~20 hand-coded cases is covered
# too rarely by the normal-approximation interval (88-92% for GoEmotions' rare emotions at 5-19
# expected cases, 93-97% above), so such estimates are named in the notes.
RARE_CASES = 20
COLUMNS = ["estimand", "code", "group", "estimator", "estimate", "ci_low", "ci_high", "n_human", "n_model"]
REGRESSIONS = ("ols", "logistic")


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value).strip() != ""


def _split(value: Any, multi: bool) -> list[str]:
    if not _present(value):
        return []
    text = str(value).strip()
    return [p.strip() for p in text.split(";") if p.strip()] if multi else [text]


def _is_score(column: pd.Series) -> bool:
    """A numeric column with fractional values (a score, an intensity): estimated as a mean, not as codes.
    Numbers held as text (a CSV read without type guessing) count when every present value is one."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if not pd.api.types.is_numeric_dtype(column):
        present = column[column.map(_present)]
        numbers = pd.to_numeric(present, errors="coerce")
        if not len(present) or numbers.isna().any():
            return False
        column = numbers
    values = column.dropna()
    return bool(len(values)) and not bool((values == values.round()).all())


# --------------------------------------------------------------------------- human values

@dataclass
class HumanValues:
    """The human side, one entry per row: ``codes`` (code -> weight, weights summing to 1 for a
    single-label text; per code 1, 0 or 0.5 on a tie for multi-label) or ``scores`` (float)."""

    coded: np.ndarray            # bool per row: at least one coder coded it
    codes: list[dict[str, float]] | None
    scores: np.ndarray | None
    n_coders: int
    n_ties: int

    def indicator(self, code: str) -> np.ndarray:
        return np.array([c.get(code, 0.0) if c is not None else math.nan for c in self.codes], dtype=float)


def human_values(frame: pd.DataFrame, gold: str | Sequence[str], *, multi: bool = False,
                 score: bool = False) -> HumanValues:
    """The human code of each row from one or several coder columns (majority; ties split evenly)."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    if not golds:
        raise TextlabError("Give at least one column of human codes.")
    if score:
        values = pd.concat([pd.to_numeric(frame[g], errors="coerce") for g in golds], axis=1)
        bad = [g for g in golds if (frame[g].map(_present) & pd.to_numeric(frame[g], errors="coerce").isna()).any()]
        if bad:
            raise TextlabError(f"The human column '{bad[0]}' holds values that are not numbers; a mean of a score needs "
                               "numeric human ratings on the same scale as the model's.")
        coded = values.notna().any(axis=1).to_numpy()
        return HumanValues(coded, None, values.mean(axis=1).to_numpy(dtype=float), len(golds), 0)
    per_row: list[dict[str, float] | None] = []
    ties = 0
    for cells in zip(*(frame[g].tolist() for g in golds)):
        votes = [set(_split(c, multi)) for c in cells if _present(c)]
        if not votes:
            per_row.append(None)
            continue
        if multi:
            counts = Counter(code for v in votes for code in v)
            row = {}
            for code, k in counts.items():
                share = k / len(votes)
                row[code] = 1.0 if share > 0.5 else (0.5 if share == 0.5 else 0.0)
                ties += share == 0.5
        else:
            counts = Counter(next(iter(v)) for v in votes)
            top = max(counts.values())
            winners = sorted(c for c, k in counts.items() if k == top)
            ties += len(winners) > 1
            row = {c: 1 / len(winners) for c in winners}
        per_row.append(row)
    coded = np.array([r is not None for r in per_row])
    return HumanValues(coded, per_row, None, len(golds), ties)


# --------------------------------------------------------------------------- design weights

def design_weights(membership: pd.DataFrame, coded: pd.Series | np.ndarray) -> tuple[pd.Series, list[str]]:
    """Sampling weights of the hand-coded rows from the project's sample design.

    ``membership`` (one row per corpus row): ``sample_stratum`` (None where the text was not
    drawn) and ``stratum_size`` (the stratum's size N_s when drawn). A hand-coded text of
    stratum s weighs N_s / n_s, n_s being the hand-coded texts of s: the texts a coder
    actually coded (in the random order the sample came in) are taken as the simple random
    sample of their stratum, so a sample coded only in part still has known weights.
    Hand-coded texts outside the sample (a convenience sample) get no weight and are counted.
    """
    coded = np.asarray(coded, dtype=bool)
    stratum = membership["sample_stratum"]
    drawn = stratum.map(_present).to_numpy()
    use = coded & drawn
    weights = pd.Series(np.nan, index=membership.index, dtype=float)
    notes = []
    if use.any():
        n_s = stratum[use].astype(str).value_counts()
        sizes = pd.to_numeric(membership["stratum_size"], errors="coerce")
        weights[use] = sizes[use].to_numpy() / stratum[use].astype(str).map(n_s).to_numpy(dtype=float)
        all_strata = set(stratum[drawn].astype(str))
        empty = sorted(all_strata - set(n_s.index))
        if empty:
            notes.append(f"{len(empty)} stratum(s) of the sample have no hand codes yet ({', '.join(empty[:5])}): "
                         "their texts are corrected by the other strata's errors; code some of each.")
    outside = int((coded & ~drawn).sum())
    if outside:
        notes.append(f"{outside} hand-coded text(s) were not drawn in the recorded random sample (a convenience "
                     "sample): they are left out of the corrected estimates, which need known probabilities.")
    return weights, notes


# --------------------------------------------------------------------------- estimates

def _ci(low: float, high: float, bounded: bool) -> tuple[float, float]:
    if bounded and not math.isnan(low):
        return max(0.0, low), min(1.0, high)
    return low, high


def _mean_rows(y: np.ndarray, yhat: np.ndarray, has_pred: np.ndarray, labelled: np.ndarray, w: np.ndarray | None,
               *, estimand: str, code: str, group: str, level: float, bounded: bool) -> list[dict[str, Any]]:
    import ppi_py

    n_human, n_model = int(labelled.sum()), int(has_pred.sum())
    alpha = 1 - level
    if not n_model:
        low = high = estimate = math.nan
    elif bounded:
        estimate = float(yhat[has_pred].mean())
        low, high = (float(b[0]) for b in wilson_interval(np.array([yhat[has_pred].sum()]), np.array([n_model]), level))
    else:
        estimate = float(yhat[has_pred].mean())
        low, high = (float(np.ravel(b)[0]) for b in ppi_py.classical_mean_ci(yhat[has_pred], alpha=alpha))
    base = {"estimand": estimand, "code": code, "group": group, "n_human": n_human, "n_model": n_model}
    rows = [{**base, "estimator": "model_only", "estimate": estimate, "ci_low": low, "ci_high": high}]
    # Unweighted (a simple random sample): the model's codes of the other texts, as PPI assumes.
    # Weighted: of every text, because the hand-coded ones are not a fair sample of the rest.
    unlabelled = has_pred & ~labelled if w is None else has_pred
    wl = None if w is None else w[labelled]
    if n_human >= MIN_HUMAN and np.ptp(yhat[has_pred]) == 0:
        # The model gives every text of the group the same value (a code it never or always gives):
        # it carries no information, and PPI's power tuning would divide 0 by 0. The humans alone.
        if bounded and w is None:
            estimate = float(y[labelled].mean())
            low, high = (float(b[0]) for b in wilson_interval(np.array([y[labelled].sum()]), np.array([n_human]),
                                                              level))
        else:
            estimate = float(np.average(y[labelled], weights=wl))
            low, high = (float(np.ravel(b)[0]) for b in ppi_py.classical_mean_ci(y[labelled], w=wl, alpha=alpha))
    elif n_human >= MIN_HUMAN and (has_pred & ~labelled).any():
        args = (y[labelled], yhat[labelled], yhat[unlabelled])
        # Humans who never (or always) give the code: power tuning would pick lambda = 0, the humans
        # alone, whose interval is [0, 0]; plain PPI (lambda = 1) keeps the model's spread in it.
        lam = 1.0 if np.ptp(y[labelled]) == 0 else None
        estimate = float(np.ravel(ppi_py.ppi_mean_pointestimate(*args, lam=lam, w=wl))[0])
        low, high = (float(np.ravel(b)[0]) for b in ppi_py.ppi_mean_ci(*args, lam=lam, alpha=alpha, w=wl))
    elif n_human >= MIN_HUMAN:  # every text hand-coded: the human value itself, nothing to correct
        estimate = float(np.average(y[labelled], weights=wl))
        low, high = (float(np.ravel(b)[0]) for b in ppi_py.classical_mean_ci(y[labelled], w=wl, alpha=alpha))
    else:  # too few hand-coded texts to correct with, said by the missing values and a note
        estimate = low = high = math.nan
    low, high = _ci(low, high, bounded)
    rows.append({**base, "estimator": "corrected", "estimate": estimate, "ci_low": low, "ci_high": high})
    return rows


def _check_columns(frame: pd.DataFrame, *columns: str | None) -> None:
    for column in columns:
        if column and column not in frame.columns:
            raise TextlabError(f"No column '{column}' (columns: {', '.join(map(str, frame.columns))}).")


def _weights(frame: pd.DataFrame, weights: str | None, coded: np.ndarray, notes: list[str]) -> np.ndarray | None:
    if not weights:
        notes.append("No sampling weights given: the hand-coded rows are taken as a simple random sample of all "
                     "rows. If they were not drawn at random, the corrected estimates are not valid.")
        return None
    w = pd.to_numeric(frame[weights], errors="coerce").to_numpy(dtype=float)
    bad = coded & ~(w > 0)
    if bad.any():
        raise TextlabError(f"{int(bad.sum())} hand-coded rows have no positive weight in '{weights}' (first: row "
                           f"{int(np.flatnonzero(bad)[0]) + 2} of the file): give each the inverse of "
                           "its probability of being drawn, or leave out the human codes of texts not drawn at "
                           "random (a convenience sample cannot correct estimates).")
    notes.append(f"Hand-coded rows weighted by '{weights}' (inverse inclusion probabilities).")
    return w


def _coders_note(human: HumanValues, notes: list[str]) -> None:
    if human.n_coders > 1:
        what = "mean of the coders" if human.scores is not None else "majority of the coders"
        notes.append(f"Human value of a text: the {what} ({human.n_coders} columns)"
                     + (f"; {human.n_ties} tie(s), each split evenly between the tied codes." if human.n_ties else "."))


def _targets(frame: pd.DataFrame, pred: str, golds: list[str], multi_label: bool | None, estimand: str):
    """The human values, and per code (or for the score) the model's and the humans' value of each row."""
    if estimand not in ("auto", "share", "mean"):
        raise TextlabError(f"Unknown estimand {estimand!r}: choose 'share', 'mean' or 'auto'.")
    score = _is_score(frame[pred]) if estimand == "auto" else estimand == "mean"
    if multi_label is None:
        multi_label = not score and frame[pred].astype(str).str.contains(";", regex=False).any()
    human = human_values(frame, golds, multi=bool(multi_label), score=score)
    if score:
        yhat_all = pd.to_numeric(frame[pred], errors="coerce").to_numpy(dtype=float)
        has_pred_all = ~np.isnan(yhat_all)
    else:
        model_codes = [_split(v, bool(multi_label)) for v in frame[pred]]
        has_pred_all = np.array([bool(c) for c in model_codes])
    if (human.coded & ~has_pred_all).any():
        raise TextlabError(f"{int((human.coded & ~has_pred_all).sum())} hand-coded rows have no model value in "
                           f"'{pred}': run the model on every text first (the correction needs both).")
    if score:
        return human, [("mean", str(pred), yhat_all, human.scores)], has_pred_all
    codes = sorted({c for cs in model_codes for c in cs} | {c for row in human.codes if row for c in row})
    if not codes:
        raise TextlabError(f"'{pred}' holds no codes.")
    return human, [("share", code, np.array([code in cs for cs in model_codes], dtype=float), human.indicator(code))
                   for code in codes], has_pred_all


def corrected_shares(frame: pd.DataFrame, pred: str, gold: str | Sequence[str], *, by: str | None = None,
                     weights: str | None = None, level: float = 0.95, multi_label: bool | None = None,
                     estimand: str = "auto") -> tuple[pd.DataFrame, list[str]]:
    """The share of each code (or the mean of a score), overall and per group of ``by``,
    model-only and corrected by the hand-coded rows of ``gold`` (one column or several
    coders'); returns the long table and notes for the report.

    ``estimand``: "share" (codes), "mean" (a numeric score) or "auto" (a mean for a
    numeric column with fractional values). ``multi_label``: codes are ";"-joined sets
    (default: when a model value holds a ";").
    """
    golds = [gold] if isinstance(gold, str) else list(gold)
    _check_columns(frame, pred, *golds, by, weights)
    if not 0 < level < 1:
        raise TextlabError(f"The confidence level must be between 0 and 1, not {level}.")
    human, targets, has_pred_all = _targets(frame, pred, golds, multi_label, estimand)
    notes: list[str] = []
    w = _weights(frame, weights, human.coded, notes)
    _coders_note(human, notes)
    groups = [("", np.ones(len(frame), dtype=bool))]
    if by:
        groups += [(value, (frame[by].astype(str) == value).to_numpy())
                   for value in sorted({str(v) for v in frame[by] if _present(v)})]
    rows = []
    for name, part in groups:
        has_pred, labelled = has_pred_all & part, human.coded & part
        for kind, code, yhat, y in targets:
            rows += _mean_rows(np.nan_to_num(y), np.nan_to_num(yhat), has_pred, labelled, w, estimand=kind, code=code,
                               group=name, level=level, bounded=kind == "share")
    table = pd.DataFrame(rows, columns=COLUMNS)
    rare = [code for kind, code, _, y in targets if kind == "share" and np.nansum(y[human.coded]) < RARE_CASES]
    if rare:
        notes.append(f"Fewer than {RARE_CASES} hand-coded cases of {', '.join(rare[:6])}"
                     f"{', …' if len(rare) > 6 else ''}: their corrected intervals may be too narrow (see "
                     "docs/validity.md); hand-code more texts.")
    if by:
        thin = sum(1 for name, part in groups[1:] for kind, _, _, y in targets
                   if kind == "share" and (human.coded & part).sum() >= MIN_HUMAN
                   and np.nansum(y[human.coded & part]) < RARE_CASES)
        if thin:
            notes.append(f"{thin} group estimate(s) rest on fewer than {RARE_CASES} hand-coded cases of their code: "
                         "read their corrected intervals as approximate, or hand-code more texts.")
    if (table["estimator"].eq("corrected") & table["estimate"].isna()).any():
        notes.append("Some corrected estimates are empty: their group has fewer than "
                     f"{MIN_HUMAN} hand-coded rows.")
    return table, notes


# --------------------------------------------------------------------------- regressions

_QUOTED = re.compile(r"""^Q\((.*)\)$|^`(.*)`$""", re.S)


def _formula_parts(formula: str) -> tuple[str, str]:
    if formula.count("~") != 1:
        raise TextlabError(f"The formula {formula!r} needs one '~': the code (or score column) on the left, the "
                           "metadata columns on the right, e.g. \"Housing ~ age_group + region\".")
    left, right = (p.strip() for p in formula.split("~"))
    m = _QUOTED.match(left)
    if m and m.group(1) is not None:  # a code with spaces: Q("Health care"), as patsy quotes names
        try:
            left = str(ast.literal_eval(m.group(1).strip()))
        except (ValueError, SyntaxError):
            raise TextlabError(f"Cannot read {left!r}: quote the code as Q(\"Health care\").") from None
    elif m:
        left = m.group(2)
    elif len(left) >= 2 and left[0] == left[-1] and left[0] in "'\"":
        left = left[1:-1]
    if not left or not right:
        raise TextlabError(f"The formula {formula!r} needs a code on the left of '~' and columns on the right.")
    return left, right


@dataclass
class _RegressionInputs:
    target: str
    right: str
    score: bool
    names: list[str]
    X: np.ndarray          # the design matrix of every row (zeros where a covariate is missing)
    y: np.ndarray          # human values (NaN where not hand-coded)
    yhat: np.ndarray       # model values
    has_pred: np.ndarray   # rows in the regression: a model value and every covariate
    labelled: np.ndarray   # ... and hand-coded
    w: np.ndarray | None
    notes: list[str]


def _regression_inputs(frame: pd.DataFrame, pred: str, gold: str | Sequence[str], formula: str, *,
                       model: str, weights: str | None, multi_label: bool | None) -> _RegressionInputs:
    """What the regression and its planner share: the code's human and model values and the design matrix."""
    import patsy

    if model not in REGRESSIONS:
        raise TextlabError(f"Unknown regression {model!r}: choose {' or '.join(REGRESSIONS)}.")
    golds = [gold] if isinstance(gold, str) else list(gold)
    _check_columns(frame, pred, *golds, weights)
    target, right = _formula_parts(formula)
    score = target == pred and _is_score(frame[pred])
    if multi_label is None:
        multi_label = not score and frame[pred].astype(str).str.contains(";", regex=False).any()
    human = human_values(frame, golds, multi=bool(multi_label), score=score)
    notes: list[str] = []
    w_all = _weights(frame, weights, human.coded, notes)
    _coders_note(human, notes)
    if score:
        yhat = pd.to_numeric(frame[pred], errors="coerce").to_numpy(dtype=float)
        y = human.scores
    else:
        model_codes = [_split(v, bool(multi_label)) for v in frame[pred]]
        known = {c for cs in model_codes for c in cs} | {c for row in human.codes if row for c in row}
        if target not in known:
            shown = ", ".join(sorted(known)[:8]) + (", …" if len(known) > 8 else "")
            raise TextlabError(f"'{target}' (left of '~') is not a code of '{pred}' (codes: {shown}); quote a code "
                               f"with spaces as Q(\"Health care\").")
        yhat = np.array([target in cs if cs else math.nan for cs in model_codes], dtype=float)
        y = human.indicator(target)
    if model == "logistic" and score:
        raise TextlabError("A logistic regression needs a code (0/1) on the left, not a score: use --regression ols.")
    try:
        design = patsy.dmatrix(right, frame, NA_action="drop", return_type="dataframe")
    except Exception as exc:  # patsy names the missing column or the syntax error
        raise TextlabError(f"The right-hand side {right!r} of the formula cannot be read: {exc}".splitlines()[0]) from None
    kept = np.zeros(len(frame), dtype=bool)
    kept[frame.index.get_indexer(design.index)] = True
    left_out = int((~kept & ~np.isnan(yhat)).sum())
    if left_out:
        notes.append(f"{left_out} row(s) with a missing value in a formula column are left out of the regression.")
    X_all = np.zeros((len(frame), design.shape[1]))
    X_all[kept] = design.to_numpy(dtype=float)
    names = list(design.columns)
    has_pred = kept & ~np.isnan(yhat)
    labelled = has_pred & human.coded
    n_model = int(has_pred.sum())
    if n_model <= len(names):
        raise TextlabError(f"{n_model} rows for {len(names)} coefficients: too few to fit the regression.")
    return _RegressionInputs(target, right, score, names, X_all, y, yhat, has_pred, labelled, w_all, notes)


def corrected_regression(frame: pd.DataFrame, pred: str, gold: str | Sequence[str], formula: str, *,
                         model: str = "ols", weights: str | None = None, level: float = 0.95,
                         multi_label: bool | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Coefficients of a regression of a code (its indicator: 1 when the text has it) or a
    score on metadata columns, model-only (statsmodels, on the model's codes of every text;
    robust HC1 errors for OLS) and corrected (ppi-python's prediction-powered OLS/logistic).

    ``formula``: "CODE ~ col + col" (patsy syntax on the right: ``C(age)``, interactions);
    CODE is a code of ``pred``, or ``pred``'s own name when it is a score. Rows with a
    missing covariate are left out and counted in the notes.
    """
    import ppi_py
    import statsmodels.api as sm

    r = _regression_inputs(frame, pred, gold, formula, model=model, weights=weights, multi_label=multi_label)
    names, X_all, y, yhat, has_pred, labelled, w_all, notes = (r.names, r.X, r.y, r.yhat, r.has_pred, r.labelled,
                                                                r.w, r.notes)
    target, right, score = r.target, r.right, r.score
    n_human, n_model = int(labelled.sum()), int(has_pred.sum())
    alpha = 1 - level
    fit_class = sm.OLS if model == "ols" else sm.Logit
    try:
        fitted = fit_class(yhat[has_pred], X_all[has_pred])
        fitted = fitted.fit(cov_type="HC1") if model == "ols" else fitted.fit(disp=0)
    except Exception as exc:  # perfect separation, a singular design: say which, not a traceback
        raise TextlabError(f"The model-only {model} regression cannot be fitted: {exc}".splitlines()[0]) from None
    only_ci = np.asarray(fitted.conf_int(alpha))
    base = {"code": target, "group": "", "n_human": n_human, "n_model": n_model}
    rows = [{**base, "estimand": name, "estimator": "model_only", "estimate": float(est), "ci_low": float(lo),
             "ci_high": float(hi)} for name, est, (lo, hi) in zip(names, np.asarray(fitted.params), only_ci)]
    unlabelled = has_pred & ~labelled if w_all is None else has_pred
    if n_human > len(names):
        args = (X_all[labelled], y[labelled], yhat[labelled], X_all[unlabelled], yhat[unlabelled])
        wl = None if w_all is None else w_all[labelled]
        point, interval = ((ppi_py.ppi_ols_pointestimate, ppi_py.ppi_ols_ci) if model == "ols"
                           else (ppi_py.ppi_logistic_pointestimate, ppi_py.ppi_logistic_ci))
        try:
            with warnings.catch_warnings():  # ppi-python's own sklearn call warns of a deprecated argument
                warnings.simplefilter("ignore", FutureWarning)
                estimate = np.ravel(point(*args, w=wl))
                low, high = (np.ravel(b) for b in interval(*args, alpha=alpha, w=wl))
        except Exception as exc:
            raise TextlabError(f"The corrected {model} regression cannot be fitted: {exc}".splitlines()[0]) from None
    else:
        estimate = low = high = np.full(len(names), math.nan)
        notes.append(f"Only {n_human} hand-coded rows for {len(names)} coefficients: no corrected regression.")
    rows += [{**base, "estimand": name, "estimator": "corrected", "estimate": float(e), "ci_low": float(lo),
              "ci_high": float(hi)} for name, e, lo, hi in zip(names, estimate, low, high)]
    notes.append(f"{'OLS (linear probability)' if model == 'ols' and not score else model.upper() if model == 'ols' else 'Logistic'}"
                 f" regression of {target!r} on {right}; model-only: statsmodels"
                 f"{' with HC1 robust errors' if model == 'ols' else ''}; corrected: prediction-powered (ppi-python).")
    return pd.DataFrame(rows, columns=COLUMNS), notes


# --------------------------------------------------------------------------- power planner

def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def _variance_factor(n: np.ndarray, total: int, rho: float) -> np.ndarray:
    """Variance of the power-tuned PPI mean over sigma^2: (1 - rho^2 N / (n + N)) / n, with N = total - n
    unlabelled texts (Angelopoulos, Duchi & Zrnic 2023; the "effective sample size" of Broska et al. 2024)."""
    n = np.asarray(n, dtype=float)
    unlabelled = np.maximum(total - n, 0)
    return (1 - rho**2 * unlabelled / (n + unlabelled)) / n


def agreement_correlation(y: np.ndarray, yhat: np.ndarray, w: np.ndarray | None = None) -> float:
    """Correlation of the human and model values on the hand-coded texts (BHvL's PPI correlation of
    a mean: what ``ppi_py.ppi_mean_power`` computes); 0 when either side does not vary."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    w = np.ones(len(y)) if w is None else np.asarray(w, float)
    my, mh = np.average(y, weights=w), np.average(yhat, weights=w)
    cov = np.average((y - my) * (yhat - mh), weights=w)
    sy, sh = np.average((y - my) ** 2, weights=w), np.average((yhat - mh) ** 2, weights=w)
    return float(cov / math.sqrt(sy * sh)) if sy > 0 and sh > 0 else 0.0


def assumed_correlation(share: float, accuracy: float) -> float:
    """The correlation of a code's human and model indicators when the model gets the code right
    (as present or absent) with probability ``accuracy`` either way and the code's share is ``share``."""
    if not 0 < share < 1 or not 0 <= accuracy <= 1:
        raise TextlabError("The assumed share must be between 0 and 1 (exclusive) and the accuracy between 0 and 1.")
    q = share * accuracy + (1 - share) * (1 - accuracy)  # the model's share
    if q in (0.0, 1.0):
        return 0.0
    return float((share * accuracy - share * q) / math.sqrt(share * (1 - share) * q * (1 - q)))


def width_curve(sizes: Sequence[int], total: int, *, sd: float, rho: float, level: float = 0.95) -> pd.DataFrame:
    """Expected width of the corrected interval for each number of random hand codes: columns
    ``n_human``, ``width`` (full width, high minus low) and ``classical_width`` (the humans alone)."""
    n = np.asarray([s for s in sizes if 2 <= s <= total], dtype=float)
    z = _z(level)
    return pd.DataFrame({"n_human": n.astype(int), "width": 2 * z * sd * np.sqrt(_variance_factor(n, total, rho)),
                         "classical_width": 2 * z * sd / np.sqrt(n)})


def needed_for_width(target: float, total: int, *, sd: float, rho: float, level: float = 0.95) -> int | None:
    """The fewest random hand codes whose corrected interval is at most ``target`` wide (None: not even
    with every text hand-coded)."""
    if target <= 0:
        raise TextlabError(f"The target width must be positive, not {target}.")
    z = _z(level)
    width = lambda n: 2 * z * sd * math.sqrt(float(_variance_factor(np.array([n]), total, rho)[0]))  # noqa: E731
    if width(total) > target:
        return None
    low, high = 2, total
    while low < high:  # the width falls as n grows: bisect
        mid = (low + high) // 2
        low, high = (mid + 1, high) if width(mid) > target else (low, mid)
    return low


@dataclass
class Plan:
    code: str
    n_human: int
    total: int
    rho: float
    sd: float
    width_now: float
    width_next: float
    next_n: int
    curve: pd.DataFrame
    assumed: bool = False  # planned before coding, from an assumed agreement

    def describe(self) -> str:
        if self.assumed:
            return (f"{self.code}: before coding, with an assumed agreement (correlation {self.rho:.2f}), "
                    f"{self.next_n} random hand codes would give a corrected 95% interval of about "
                    f"±{self.width_next / 2:.3f}.")
        if self.n_human < 2:
            return f"{self.code}: not enough random hand codes yet to plan from."
        return (f"{self.code}: with {self.n_human} random hand codes the corrected 95% interval is about "
                f"±{self.width_now / 2:.3f}; {self.next_n} more would make it ±{self.width_next / 2:.3f}.")


def plan_share(y: np.ndarray, yhat: np.ndarray, total: int, *, code: str = "", w: np.ndarray | None = None,
               more: int = 50, level: float = 0.95, sizes: Sequence[int] | None = None) -> Plan:
    """After coding: the interval now and what ``more`` random hand codes would buy, and the curve,
    from the agreement of the hand-coded texts (``y`` human, ``yhat`` model, 0/1 or scores)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    n = len(y)
    rho = agreement_correlation(y, yhat, w) if n >= 2 else 0.0
    sd = float(np.sqrt(np.average((y - np.average(y, weights=w)) ** 2, weights=w))) if n >= 2 else math.nan
    if n >= 2 and sd == 0:  # a share of 0 or 1 in the sample: plan with the model's spread instead
        sd = float(np.std(yhat)) or 0.5
    grid = sorted(set(sizes or np.unique(np.geomspace(10, max(total, 11), 40).astype(int))) | {max(n, 2)}
                  | {min(n + more, total)})
    curve = width_curve(grid, total, sd=sd, rho=rho, level=level)
    widths = dict(zip(curve["n_human"], curve["width"]))
    return Plan(code, n, total, rho, sd, widths.get(max(n, 2), math.nan), widths.get(min(n + more, total), math.nan),
                min(n + more, total) - n, curve)


def plans(frame: pd.DataFrame, pred: str, gold: str | Sequence[str], *, weights: str | None = None, more: int = 50,
          level: float = 0.95, multi_label: bool | None = None, estimand: str = "auto",
          assumed_accuracy: float | None = None) -> list[Plan]:
    """A ``plan_share`` for each code (or the score) of ``pred`` over every text, from the hand-coded rows;
    with ``assumed_accuracy`` (before coding), from the model's share of each code and that accuracy."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    _check_columns(frame, pred, *golds, weights)
    human, targets, has_pred = _targets(frame, pred, golds, multi_label, estimand)
    total = int(has_pred.sum())
    if assumed_accuracy is not None:
        return [_assumed_plan(code, yhat[has_pred], total, assumed_accuracy, more=more, level=level)
                for _, code, yhat, _ in targets]
    w = _weights(frame, weights, human.coded, [])
    lab = human.coded & has_pred
    return [plan_share(np.nan_to_num(y[lab]), yhat[lab], total, code=code,
                       w=None if w is None else w[lab], more=more, level=level) for _, code, yhat, y in targets]


def _assumed_rho(yhat: np.ndarray, accuracy: float, what: str) -> float:
    """The agreement to plan with before coding: a code's model share taken as its true share."""
    values = np.unique(yhat[~np.isnan(yhat)])
    if not set(values) <= {0.0, 1.0}:
        raise TextlabError(f"An assumed accuracy applies to a code, and {what} is a score: hand-code "
                           f"at least {MIN_HUMAN} texts to plan from their agreement.")
    share = float(np.clip(np.nanmean(yhat), 0.01, 0.99))
    return assumed_correlation(share, accuracy)


def _assumed_plan(code: str, yhat: np.ndarray, total: int, accuracy: float, *, more: int, level: float) -> Plan:
    rho = _assumed_rho(yhat, accuracy, repr(code))
    sd = float(np.nanstd(yhat)) or 0.5
    grid = sorted(set(np.unique(np.geomspace(10, max(total, 11), 40).astype(int))) | {2, min(more, total)})
    curve = width_curve(grid, total, sd=sd, rho=rho, level=level)
    widths = dict(zip(curve["n_human"], curve["width"]))
    return Plan(code, 0, total, rho, sd, math.nan, widths.get(min(more, total), math.nan), min(more, total), curve,
                assumed=True)


def plan_coefficients(frame: pd.DataFrame, pred: str, gold: str | Sequence[str], formula: str, *,
                      model: str = "ols", weights: str | None = None, more: int = 50, level: float = 0.95,
                      multi_label: bool | None = None, assumed_rho: float | None = None,
                      assumed_accuracy: float | None = None) -> list[Plan]:
    """A ``Plan`` for each coefficient of ``corrected_regression``'s regression: the corrected interval
    now and what ``more`` random hand codes would buy.

    A prediction-powered coefficient's variance has the mean's form (1 - rho^2 N/(n+N)) sd^2 / n, with
    rho the correlation of the human and model gradients (ppi-python's ``ppi_ols_power`` /
    ``ppi_logistic_power`` compute it) and sd the spread of the coefficient's influence, read off the
    humans' classical interval. Before there are enough hand codes (or with ``assumed_rho``), sd comes
    from the model-only fit of every text and rho is the assumed one; ``assumed_accuracy`` on the
    code is turned into that rho through the model's share of the code.
    """
    import ppi_py
    import statsmodels.api as sm

    r = _regression_inputs(frame, pred, gold, formula, model=model, weights=weights, multi_label=multi_label)
    if assumed_accuracy is not None and assumed_rho is None:
        assumed_rho = _assumed_rho(r.yhat[r.has_pred], assumed_accuracy, repr(r.target))
    n, total, z = int(r.labelled.sum()), int(r.has_pred.sum()), _z(level)
    planned_from_codes = assumed_rho is None and n >= max(MIN_HUMAN, 2 * len(r.names))
    if planned_from_codes:
        X, y, yhat = r.X[r.labelled], r.y[r.labelled], r.yhat[r.labelled]
        w = None if r.w is None else r.w[r.labelled]
        power, classical = ((ppi_py.ppi_ols_power, ppi_py.classical_ols_ci) if model == "ols"
                            else (ppi_py.ppi_logistic_power, ppi_py.classical_logistic_ci))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            try:
                low, high = (np.ravel(b) for b in classical(X, y, w=w, alpha=1 - level))
                # Only ppi_corr is used; the costs and budget just let ppi-python's sizing run.
                rhos = [float(power(X, y, yhat, 0.01, 1.0, 0.01, j, budget=1000.0, w=w)["ppi_corr"])
                        for j in range(len(r.names))]
            except Exception as exc:  # separation in a small logistic sample: say so, not a traceback
                raise TextlabError(f"The hand-coded rows cannot be fitted to plan from: {exc}".splitlines()[0]) from None
        sds = (high - low) / 2 / z * math.sqrt(n)
    else:
        if assumed_rho is None:
            raise TextlabError(f"{n} hand-coded rows for {len(r.names)} coefficients: too few to plan from; "
                               "plan from an assumed accuracy instead.")
        fit_class = sm.OLS if model == "ols" else sm.Logit
        try:
            fitted = fit_class(r.yhat[r.has_pred], r.X[r.has_pred])
            fitted = fitted.fit(cov_type="HC1") if model == "ols" else fitted.fit(disp=0)
        except Exception as exc:
            raise TextlabError(f"The model-only {model} regression cannot be fitted: {exc}".splitlines()[0]) from None
        sds = np.asarray(fitted.bse) * math.sqrt(total)
        rhos = [float(assumed_rho)] * len(r.names)
    grid = sorted(set(np.unique(np.geomspace(10, max(total, 11), 40).astype(int))) | {max(n, 2), min(n + more, total)})
    out = []
    for name, sd, rho in zip(r.names, sds, rhos):
        curve = width_curve(grid, total, sd=float(sd), rho=rho, level=level)
        widths = dict(zip(curve["n_human"], curve["width"]))
        out.append(Plan(name, n if planned_from_codes else 0, total, rho, float(sd),
                        widths.get(max(n, 2), math.nan) if planned_from_codes else math.nan,
                        widths.get(min(n + more, total), math.nan), min(n + more, total) - n, curve,
                        assumed=not planned_from_codes))
    return out


# --------------------------------------------------------------------------- one report

@dataclass
class EstimateReport:
    """What the Validate page shows and the export writes: the long table, its notes, the
    settings it was made with and the sample design the hand codes came from."""

    table: pd.DataFrame
    notes: list[str]
    settings: dict[str, Any]
    design: str              # "recorded: <design>", "simple random (assumed)" or "weights: <column>"
    n_convenience: int = 0   # hand-coded texts left out because they were not drawn at random
    data: pd.DataFrame | None = None  # the rows as estimated: convenience codes blanked, weights added
    weights: str | None = None        # the weight column of ``data``, if the design has unequal weights
    sample_weight: pd.Series | None = None  # a recorded design's weight of each hand-coded text (NaN: none)

    def plans(self, more: int = 50, assumed_accuracy: float | None = None) -> list["Plan"]:
        """What ``more`` random hand codes would buy for each share (or the mean), or each coefficient
        of the report's regression, from this report's data; before coding, from ``assumed_accuracy``."""
        s = self.settings
        if s.get("formula"):
            return plan_coefficients(self.data, s["pred"], [g for g in s["gold"] if g], s["formula"],
                                     model=s.get("regression") or "ols", weights=self.weights, more=more,
                                     level=float(s.get("level") or 0.95), multi_label=s.get("multi_label"),
                                     assumed_accuracy=assumed_accuracy)
        return plans(self.data, s["pred"], [g for g in s["gold"] if g], weights=self.weights, more=more,
                     level=float(s.get("level") or 0.95), multi_label=s.get("multi_label"),
                     assumed_accuracy=assumed_accuracy)


def estimate_report(frame: pd.DataFrame, settings: dict[str, Any],
                    membership: pd.DataFrame | None = None, design: dict | None = None) -> EstimateReport:
    """Shares (or a regression) from saved settings {pred, gold: [cols], by, formula, regression,
    level}. With the project's recorded sample (``membership`` from ``Project.sample_membership``,
    ``design`` from ``Project.sample_design``) only the texts drawn in it correct the estimates,
    each weighted by its stratum; without one the hand codes are taken as a simple random sample."""
    pred, golds = settings.get("pred"), [g for g in settings.get("gold") or [] if g]
    if not pred or not golds:
        raise TextlabError("Choose the column of model codes and at least one column of human codes.")
    _check_columns(frame, pred, *golds)
    data = frame.copy()
    notes: list[str] = []
    weights, label, n_convenience, sample_weight = None, "simple random (assumed)", 0, None
    coded = human_values(data, golds, multi=bool(settings.get("multi_label"))).coded  # read once, used twice
    # On the page a coder may code a text the model has no value for (an empty text, a model column
    # that is another coder's): such texts cannot correct anything, so they are left out and counted.
    no_model = ~data[pred].map(_present).to_numpy() & coded
    if no_model.any():
        notes.append(f"{int(no_model.sum())} hand-coded text(s) have no value in '{pred}': left out of the estimates.")
    keep = ~no_model
    if membership is not None and design and membership["sample_stratum"].map(_present).any():
        w, design_notes = design_weights(membership.set_axis(data.index), coded & keep)
        notes += design_notes
        n_convenience = int((coded & keep & w.isna().to_numpy()).sum())
        keep &= w.notna().to_numpy()  # convenience codes stay in the data, but do not correct the estimates
        sample_weight = w
        if w.notna().any() and w.dropna().nunique() > 1:
            weights = "__textlab_weight__"
            data[weights] = w
        label = f"recorded: {design.get('design', 'sample')}"
    if (coded & ~keep).any():
        for g in golds:
            data[g] = data[g].where(keep, None)
    kwargs = {"weights": weights, "level": float(settings.get("level") or 0.95),
              "multi_label": settings.get("multi_label")}
    if settings.get("formula"):
        table, more = corrected_regression(data, pred, golds, settings["formula"],
                                           model=settings.get("regression") or "ols", **kwargs)
    else:
        table, more = corrected_shares(data, pred, golds, by=settings.get("by") or None, **kwargs)
    if weights:  # the internal column name means nothing to a reader
        more = [m.replace(f"'{weights}'", "the recorded sample design") for m in more]
    elif label.startswith("recorded"):
        more = [m for m in more if not m.startswith("No sampling weights given")]
        more.insert(0, "Hand codes from the recorded simple random sample (equal weights).")
    return EstimateReport(table, notes + more, dict(settings), label, n_convenience, data, weights, sample_weight)


def with_sample_columns(frame: pd.DataFrame, membership: pd.DataFrame | None,
                        report: EstimateReport | None) -> pd.DataFrame:
    """The export's record of the hand-coding design, one value per row: ``sample_stratum`` (the
    stratum a text was drawn in by the recorded sample; empty when not drawn) and ``sample_weight``
    (the weight its hand code carried in the corrected estimates, N_s/n_s; empty for texts that did
    not correct them). ``textlab estimate --sampling-weights sample_weight`` on the exported file
    gives the app's corrected estimates. A column of the input with one of these names is kept as it
    was and the design's column gets a ``_textlab`` suffix. No design recorded: ``frame`` unchanged."""
    if membership is None or not membership["sample_stratum"].map(_present).any():
        return frame
    out = frame.copy()
    values = {"sample_stratum": membership["sample_stratum"].set_axis(frame.index)}
    if report is not None and report.sample_weight is not None:
        values["sample_weight"] = report.sample_weight.set_axis(frame.index)
    for name, column in values.items():
        while name in out.columns:
            name += "_textlab"
        out[name] = column
    return out


def disagreements_beyond_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Estimates whose model-only and corrected intervals do not overlap: the model's codes
    would mislead there. One row per (estimand, code, group) with both estimates."""
    wide = table.pivot_table(index=["estimand", "code", "group"], columns="estimator",
                             values=["estimate", "ci_low", "ci_high"], aggfunc="first")
    if wide.empty or ("estimate", "corrected") not in wide.columns:
        return pd.DataFrame(columns=["estimand", "code", "group", "model_only", "corrected"])
    apart = (wide[("ci_low", "corrected")] > wide[("ci_high", "model_only")]) | (
        wide[("ci_high", "corrected")] < wide[("ci_low", "model_only")])
    out = wide[apart.fillna(False)]
    return pd.DataFrame({"model_only": out[("estimate", "model_only")], "corrected": out[("estimate", "corrected")]}
                        ).reset_index()
