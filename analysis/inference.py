"""Estimates a reviewer accepts: shares of codes corrected by a random human sample.

Model codes for every text and human codes for a random sample of them are combined by
prediction-powered inference (Angelopoulos et al. 2023, PPI++ with power tuning, through
the reference package ``ppi-python``): the model's share over the texts nobody hand-coded,
corrected by the model's error measured on the hand-coded ones. The estimate is unbiased
however wrong the model is, and its interval is honest about the size of the human sample;
the model-only share (every model code taken as true) is reported beside it for contrast.

Rows whose gold cell is empty are the texts nobody hand-coded. Without sampling weights
the hand-coded rows are taken as a simple random sample of all rows, and the report says
so; with weights (inverse inclusion probabilities of a stratified or unequal design) each
hand-coded row counts as many texts as it stands for.

Long format, one row per estimate, ready for Stata/R: ``estimand`` (``share``), ``code``,
``group`` (empty for overall), ``estimator`` (``model_only`` or ``corrected``),
``estimate``, ``ci_low``, ``ci_high``, ``n_human``, ``n_model``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .aggregate import wilson_interval
from .errors import TextlabError

COLUMNS = ["estimand", "code", "group", "estimator", "estimate", "ci_low", "ci_high", "n_human", "n_model"]


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value).strip() != ""


def _share_rows(pred: pd.Series, gold: pd.Series, weights: pd.Series | None, codes: list[str], group: str,
                level: float) -> list[dict[str, Any]]:
    import ppi_py

    coded = gold.map(_present).to_numpy()
    has_pred = pred.map(_present).to_numpy()
    if (coded & ~has_pred).any():
        raise TextlabError(f"{int((coded & ~has_pred).sum())} hand-coded rows{' in ' + group if group else ''} have no "
                           "model code: code every text with the model first (the correction needs both).")
    labelled, unlabelled = coded & has_pred, ~coded & has_pred
    n_human, n_model = int(labelled.sum()), int(has_pred.sum())
    w = None if weights is None else weights.to_numpy(dtype=float)[labelled]
    rows = []
    for code in codes:
        yhat = (pred.astype(str).str.strip() == code).to_numpy(dtype=float)
        y = (gold.astype(str).str.strip() == code).to_numpy(dtype=float)
        low, high = (float(b[0]) for b in wilson_interval(np.array([yhat[has_pred].sum()]), np.array([n_model]),
                                                          level)) if n_model else (math.nan, math.nan)
        rows.append({"estimand": "share", "code": code, "group": group, "estimator": "model_only",
                     "estimate": float(yhat[has_pred].mean()) if n_model else math.nan, "ci_low": low,
                     "ci_high": high, "n_human": n_human, "n_model": n_model})
        if n_human >= 2 and unlabelled.any():
            args = (y[labelled], yhat[labelled], yhat[unlabelled])
            estimate = float(np.ravel(ppi_py.ppi_mean_pointestimate(*args, w=w))[0])
            low, high = (float(np.ravel(b)[0]) for b in ppi_py.ppi_mean_ci(*args, alpha=1 - level, w=w))
        elif n_human >= 2:  # every text hand-coded: the human share itself, nothing to correct
            estimate = float(np.average(y[labelled], weights=w))
            low, high = (float(np.ravel(b)[0]) for b in ppi_py.classical_mean_ci(y[labelled], w=w, alpha=1 - level))
        else:  # fewer than 2 hand-coded texts: nothing to correct with, said by the missing values
            estimate = low = high = math.nan
        rows.append({"estimand": "share", "code": code, "group": group, "estimator": "corrected",
                     "estimate": estimate, "ci_low": max(0.0, low) if not math.isnan(low) else low,
                     "ci_high": min(1.0, high) if not math.isnan(high) else high,
                     "n_human": n_human, "n_model": n_model})
    return rows


def corrected_shares(frame: pd.DataFrame, pred: str, gold: str, *, by: str | None = None,
                     weights: str | None = None, level: float = 0.95) -> tuple[pd.DataFrame, list[str]]:
    """The share of each code, overall and per group of ``by``, model-only and corrected by
    the hand-coded rows of ``gold``; returns the long table and notes for the report."""
    for column in [pred, gold] + [c for c in (by, weights) if c]:
        if column not in frame.columns:
            raise TextlabError(f"No column '{column}' (columns: {', '.join(map(str, frame.columns))}).")
    if not 0 < level < 1:
        raise TextlabError(f"The confidence level must be between 0 and 1, not {level}.")
    notes = []
    w = None
    if weights:
        w = pd.to_numeric(frame[weights], errors="coerce")
        coded = frame[gold].map(_present)
        bad = coded & ~(w > 0)
        if bad.any():
            raise TextlabError(f"{int(bad.sum())} hand-coded rows have no positive weight in '{weights}' (first: row "
                               f"{int(np.flatnonzero(bad.to_numpy())[0]) + 2} of the file): give each the inverse of "
                               "its probability of being drawn.")
        notes.append(f"Hand-coded rows weighted by '{weights}' (inverse inclusion probabilities).")
    else:
        notes.append("No sampling weights given: the hand-coded rows are taken as a simple random sample of all "
                     "rows. If they were not drawn at random, the corrected estimates are not valid.")
    codes = sorted({str(v).strip() for v in frame[pred] if _present(v)} | {str(v).strip() for v in frame[gold]
                                                                           if _present(v)})
    if not codes:
        raise TextlabError(f"'{pred}' holds no codes.")
    rows = _share_rows(frame[pred], frame[gold], w, codes, "", level)
    if by:
        for value in sorted({str(v) for v in frame[by] if _present(v)}):
            part = frame[by].astype(str) == value
            rows += _share_rows(frame.loc[part, pred], frame.loc[part, gold], None if w is None else w[part], codes,
                                value, level)
    table = pd.DataFrame(rows, columns=COLUMNS)
    if (table["estimator"].eq("corrected") & table["estimate"].isna()).any():
        notes.append("Some corrected estimates are empty: their group has fewer than 2 hand-coded rows.")
    return table, notes
