"""Agreement between model codes and human coders, with bootstrap confidence intervals.

`agreement` compares a column of model codes with one or more human coders and returns an
`AgreementReport`: accuracy, macro-F1, Cohen's kappa and Krippendorff's alpha for every
comparison, per-code precision/recall/F1, the confusion matrix and the prevalence of each
code as the model and the humans see it. `draw_sample` draws the texts to hand-code with a
recorded design (simple random, or stratified by the model's code so that rare codes get
validated too) whose inclusion probabilities are known, so the hand codes can also correct
estimates (`inference`); `stratified_sample` is the same draw without the record;
`disagreements` lists the texts behind the errors.

Choices, and why:
- Point estimates come from the reference implementations (`sklearn.metrics` and
  `krippendorff.alpha`), so a reviewer can reproduce every number with them.
- Intervals are percentile bootstraps over documents (rows): `n_boot` resamples of all
  rows, drawn once from a seeded `numpy` Generator and shared by every comparison (a
  paired bootstrap: the "model vs coder" and "coder vs coder" intervals rest on the same
  resampled documents). Missing codes are resampled with their rows, so the number of
  compared rows varies between resamples as it would between samples. Each resample's
  metrics are computed from summed per-row contributions (confusion or coincidence
  counts), one matrix product per block of resamples instead of thousands of library
  calls; the tests check that these formulas give the library values on the full data.
- Prevalence intervals are Wilson score intervals (exact to compute, inside [0, 1], not
  zero-width for a code seen 0 or n times), on the compared rows only, so the model's
  and the humans' shares rest on the same texts.
- Rows without a code (None, NaN, "" or blanks) are left out of the comparisons that need
  them and counted (`n_missing`, `missing`); nothing is dropped silently.
- With several coders the model is compared with each coder and with the majority code
  among the coders who coded the text; a tie gives no majority and is counted. Coders
  are also compared with each other, and with three or more coders Krippendorff's alpha
  is reported for all of them together; "model + coders" is the alpha with the model as
  one more coder.
- A metric that is undefined (Cohen's kappa or alpha when only one code occurs) is NaN
  with a note, not an error.
- A comparison that rests on fewer than `MIN_SHARED_TEXTS` texts (20) gets its count but
  no value and no interval, with a note: one shared text gives a kappa of 0 or 1 and a
  bootstrap "interval" of resamples of that one text, which reads as an estimate and is
  none. When the main comparison is that small, its per-code scores and prevalence
  intervals are left out too (the confusion counts stay). `min_shared` lowers the bar.
- The majority comparison says how many of its texts had one coder (the "majority" is
  then that coder's code) and how many had several (`coders_per_text`).
- Multi-label codes (``"Housing;Health care"``, ``multi_label=True``): each code is a
  yes/no decision per text. Accuracy is exact match of the whole set; precision, recall
  and F1 are per code; macro-F1 averages F1 over the codes that occur in the comparison;
  Cohen's kappa and Krippendorff's alpha are computed per code (binary) and averaged
  over the codes where they are defined. The "confusion" table is then a co-occurrence
  table: texts whose human codes include the row's code and whose model codes include
  the column's code.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from .aggregate import wilson_interval
from .errors import TextlabError

__all__ = ["AgreementReport", "DESIGNS", "METRICS", "MIN_SHARED_TEXTS", "SampleDraw", "agreement", "code_options",
           "disagreements", "draw_sample", "strata_hash", "stratified_sample"]

METRICS = ("accuracy", "macro_f1", "cohen_kappa", "krippendorff_alpha")
SEPARATOR = ";"
MODEL = "model"
MAJORITY = "majority"
_RESERVED = (MODEL, MAJORITY)
# Fewer shared texts than this: a count, no estimate (see the module notes).
MIN_SHARED_TEXTS = 20
# Resample counts held at once (resamples x rows) while bootstrapping: caps memory.
_BLOCK_CELLS = 2_000_000
_MISSING_STRATUM = "(missing)"


# --------------------------------------------------------------------------- report

@dataclass
class AgreementReport:
    """What `agreement` found. Tables are plain DataFrames; `to_dict` is JSON-ready."""

    summary: pd.DataFrame
    per_code: pd.DataFrame
    confusion: pd.DataFrame
    prevalence: pd.DataFrame
    n_compared: int
    n_missing: int
    labels: list[str]
    coders: list[str]
    n_rows: int = 0
    main_comparison: str = ""
    multi_label: bool = False
    missing: dict[str, int] = field(default_factory=dict)
    level: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    min_shared: int = MIN_SHARED_TEXTS
    # Majority comparison only: compared texts with one coder ("1") and with several ("2+").
    coders_per_text: dict[str, int] = field(default_factory=dict)

    def metric(self, name: str, comparison: str | None = None) -> float:
        """One value of the summary (default: the main comparison)."""
        rows = self.summary[(self.summary["comparison"] == (comparison or self.main_comparison))
                            & (self.summary["metric"] == name)]
        return float(rows["value"].iloc[0]) if len(rows) else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report as JSON-serialisable values (NaN becomes None)."""
        return {
            "main_comparison": self.main_comparison,
            "multi_label": self.multi_label,
            "labels": list(self.labels),
            "coders": list(self.coders),
            "n_rows": int(self.n_rows),
            "n_compared": int(self.n_compared),
            "n_missing": int(self.n_missing),
            "missing": {k: int(v) for k, v in self.missing.items()},
            "interval": {"method": "percentile bootstrap over documents", "level": self.level,
                         "n_boot": int(self.n_boot),
                         "seed": self.seed if isinstance(self.seed, (int, type(None))) else str(self.seed),
                         "prevalence": "Wilson score interval"},
            "notes": list(self.notes),
            "min_shared": int(self.min_shared),
            "coders_per_text": {k: int(v) for k, v in self.coders_per_text.items()},
            "summary": _records(self.summary),
            "per_code": _records(self.per_code),
            "confusion": {
                "gold": [str(c) for c in self.confusion.index],
                "predicted": [str(c) for c in self.confusion.columns],
                "counts": [[int(v) for v in row] for row in self.confusion.to_numpy()],
            },
            "prevalence": _records(self.prevalence),
        }

    def to_frame(self) -> pd.DataFrame:
        """One tidy table of the whole report, for a CSV export.

        Columns: table (summary, per_code, confusion, prevalence), comparison, code,
        predicted (confusion only), source (prevalence only), metric, value, ci_low,
        ci_high, n.
        """
        parts = []
        s = self.summary
        parts.append(pd.DataFrame({"table": "summary", "comparison": s["comparison"], "metric": s["metric"],
                                   "value": s["value"], "ci_low": s["ci_low"], "ci_high": s["ci_high"], "n": s["n"]}))
        pc = self.per_code
        for metric in ("precision", "recall", "f1", "support"):
            parts.append(pd.DataFrame({
                "table": "per_code", "comparison": self.main_comparison, "code": pc["code"], "metric": metric,
                "value": pc[metric].astype(float),
                "ci_low": pc["f1_ci_low"] if metric == "f1" else np.nan,
                "ci_high": pc["f1_ci_high"] if metric == "f1" else np.nan,
                "n": self.n_compared,
            }))
        conf = self.confusion.stack().rename("value").reset_index()
        conf.columns = ["code", "predicted", "value"]
        parts.append(conf.assign(table="confusion", comparison=self.main_comparison, metric="count",
                                 n=self.n_compared))
        pv = self.prevalence
        parts.append(pd.DataFrame({"table": "prevalence", "comparison": self.main_comparison, "code": pv["code"],
                                   "source": pv["source"], "metric": "share", "value": pv["share"],
                                   "ci_low": pv["ci_low"], "ci_high": pv["ci_high"], "n": pv["n"]}))
        columns = ["table", "comparison", "code", "predicted", "source", "metric", "value", "ci_low", "ci_high", "n"]
        return pd.concat(parts, ignore_index=True).reindex(columns=columns)

    def to_csv_bytes(self, *, neutralize: bool = True) -> bytes:
        """`to_frame` as UTF-8 CSV. Codes and coder names are user text: a code "=HYPERLINK(...)"
        gets a leading apostrophe like in every Textlab export (``neutralize=False``: verbatim)."""
        from .export import export_table

        return export_table(self.to_frame(), "csv", neutralize=neutralize).data


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is None or value is pd.NA:
        return None
    return value


# --------------------------------------------------------------------------- inputs

def _natural_key(text: str) -> tuple:
    # "Code 2" before "Code 10".
    return tuple(int(t) if i % 2 else t.casefold() for i, t in enumerate(re.split(r"(\d+)", text)))


def _natural_sorted(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=lambda v: (_natural_key(v), v))


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(missing) if isinstance(missing, (bool, np.bool_)) else False


def _code(value: Any) -> str | None:
    """A code as text; None for a missing one. 3.0 (a number read from a file) reads 3."""
    if _is_missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _code_set(value: Any) -> frozenset[str] | None:
    """Multi-label codes: a ";"-joined string or a list; None when there are none."""
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        parts = [_code(v) for v in value]
    else:
        text = _code(value)
        parts = text.split(SEPARATOR) if text is not None else []
    codes = frozenset(p.strip() for p in parts if p is not None and p.strip())
    return codes or None


def _as_list(values: Any, role: str) -> list:
    if isinstance(values, pd.DataFrame):
        raise TextlabError(f"The {role} must be one column, not a table of {values.shape[1]} columns.")
    if values is None or isinstance(values, (str, bytes)):
        raise TextlabError(f"The {role} must be a column of codes (one per text), not {type(values).__name__}.")
    if isinstance(values, pd.Series):
        return values.tolist()
    try:
        return list(values)
    except TypeError:
        raise TextlabError(f"The {role} must be a column of codes (one per text), not {type(values).__name__}.") from None


def _coders_of(gold: Any) -> dict[str, list]:
    if isinstance(gold, pd.DataFrame):
        gold = {str(c): gold[c] for c in gold.columns}
    if isinstance(gold, Mapping):
        if not gold:
            raise TextlabError("No human coder was given: pass at least one column of human codes.")
        coders = {}
        for name, values in gold.items():
            key = str(name).strip()
            if not key:
                raise TextlabError("A coder has an empty name; give every coder a name.")
            if key in coders:
                raise TextlabError(f"The coder '{key}' is given twice; give each coder one column.")
            coders[key] = _as_list(values, f"codes of coder '{key}'")
        return coders
    name = getattr(gold, "name", None)
    name = str(name).strip() if isinstance(name, str) and str(name).strip() else "human"
    return {name: _as_list(gold, "human codes")}


# --------------------------------------------------------------------------- metrics

def _errstate():
    return np.errstate(divide="ignore", invalid="ignore")


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _alpha_from_coincidence(total: np.ndarray, trace: np.ndarray, sq_marginals: np.ndarray) -> np.ndarray:
    """Nominal Krippendorff's alpha from a coincidence matrix's total, trace and sum of squared marginals."""
    with _errstate():
        return 1 - (total - 1) * (total - trace) / (total ** 2 - sq_marginals)


def _single_stats(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from confusion matrices (..., gold, predicted): the bootstrap's formulas.

    Macro-F1 averages over the codes present in the matrix (as sklearn's default labels
    do); kappa and alpha are NaN where only one code occurs.
    """
    n = conf.sum(axis=(-2, -1))
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    rows, cols = conf.sum(axis=-1), conf.sum(axis=-2)
    with _errstate():
        acc = diag.sum(-1) / n
        denom = rows + cols
        f1 = np.where(denom > 0, 2 * diag / denom, np.nan)
        pe = (rows * cols).sum(-1) / n ** 2
        kappa = np.where(pe < 1, (acc - pe) / (1 - pe), np.nan)
    marg = rows + cols  # marginals of the coincidence matrix C + C^T
    alpha = _alpha_from_coincidence(2 * n, 2 * diag.sum(-1), (marg ** 2).sum(-1))
    return {"accuracy": acc, "macro_f1": _nanmean(f1, -1), "cohen_kappa": kappa,
            "krippendorff_alpha": alpha, "f1": f1}


def _binary_stats(tp, fp, fn, tn, exact, n) -> dict[str, np.ndarray]:
    """Multi-label metrics from per-code counts (..., code) and exact matches (...)."""
    with _errstate():
        acc = exact / n
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
        nn = n[..., None]
        po = (tp + tn) / nn
        pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / nn ** 2
        kappa = np.where(pe < 1, (po - pe) / (1 - pe), np.nan)
    n0, n1 = 2 * tn + fp + fn, 2 * tp + fp + fn
    alpha = _alpha_from_coincidence(2 * nn, 2 * (tp + tn), n0 ** 2 + n1 ** 2)
    return {"accuracy": acc, "macro_f1": _nanmean(f1, -1), "cohen_kappa": _nanmean(kappa, -1),
            "krippendorff_alpha": _nanmean(alpha, -1), "f1": f1}


def _krippendorff(data: np.ndarray) -> float:
    """`krippendorff.alpha`, nominal; NaN where it is undefined (one value, nothing pairable)."""
    import krippendorff

    data = np.asarray(data, dtype=float)
    pairable = (np.isfinite(data).sum(axis=0) >= 2)
    if not pairable.any() or len(np.unique(data[:, pairable][np.isfinite(data[:, pairable])])) < 2:
        return math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    except (ValueError, ZeroDivisionError):
        return math.nan


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _single_points(gold: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Library values for one comparison of integer codes (rows already without missing)."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    # Integer codes stand for the labels (same metrics, much faster than object arrays).
    y_true, y_pred = gold, pred
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(_quiet(f1_score, y_true, y_pred, average="macro", zero_division=0)),
        "cohen_kappa": float(_quiet(cohen_kappa_score, y_true, y_pred)),
        "krippendorff_alpha": _krippendorff(np.vstack([gold, pred])),
    }


def _multi_points(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Library values for one multi-label comparison (indicator matrices, rows without missing)."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    present = np.flatnonzero(gold.any(axis=0) | pred.any(axis=0))
    kappas = [float(_quiet(cohen_kappa_score, gold[:, c], pred[:, c], labels=[0, 1])) for c in range(gold.shape[1])]
    alphas = [_krippendorff(np.vstack([gold[:, c], pred[:, c]])) for c in range(gold.shape[1])]
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(_quiet(f1_score, gold, pred, labels=present, average="macro", zero_division=0))
        if len(present) else math.nan,
        "cohen_kappa": float(_nanmean(np.asarray(kappas, dtype=float), 0)),
        "krippendorff_alpha": float(_nanmean(np.asarray(alphas, dtype=float), 0)),
    }


# --------------------------------------------------------------------------- bootstrap

def _resample_sums(features, n_boot: int, seed) -> np.ndarray:
    """Column sums of `features` (rows x d, sparse) over `n_boot` bootstrap resamples of the rows.

    A resample is a count per row (how often it was drawn); its sums are counts @ features.
    """
    n, d = features.shape
    by_column = features.T.tocsr()  # d x rows: one sparse-times-dense product per block
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, d))
    block = int(max(1, min(n_boot, _BLOCK_CELLS // max(n, 1))))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        dtype = np.int32 if size * n < 2**31 - 1 else np.int64  # int32 draws are faster
        idx = rng.integers(0, n, size=(size, n), dtype=dtype)
        idx += (np.arange(size, dtype=dtype) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=size * n).reshape(size, n)
        out[start:start + size] = (by_column @ np.ascontiguousarray(counts.T, dtype=float)).T
    return out


def _interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column, ignoring resamples where the metric is undefined."""
    draws = np.atleast_2d(np.asarray(draws, dtype=float))
    if draws.ndim == 2 and draws.shape[0] == 0:
        return np.full(draws.shape[1], np.nan), np.full(draws.shape[1], np.nan)
    q = [(1 - level) / 2, (1 + level) / 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(draws, q, axis=0)
    return lo, hi


# --------------------------------------------------------------------------- comparisons

@dataclass
class _Comparison:
    name: str
    kind: str            # "pair" or "group" (Krippendorff's alpha of several coders only)
    mask: np.ndarray     # rows in the comparison
    gold: np.ndarray | None = None
    pred: np.ndarray | None = None
    units: np.ndarray | None = None   # (coders, rows) for "group"
    n: int = 0
    offset: int = 0      # first feature column
    width: int = 0


def _encode_single(values: list[str | None], index: dict[str, int]) -> np.ndarray:
    return np.array([index[v] if v is not None else -1 for v in values], dtype=np.int64)


def _encode_multi(values: list[frozenset | None], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.zeros((len(values), len(index)), dtype=np.int64)
    valid = np.zeros(len(values), dtype=bool)
    for i, codes in enumerate(values):
        if codes is not None:
            valid[i] = True
            matrix[i, [index[c] for c in codes]] = 1
    return matrix, valid


def _majority_single(coded: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Majority code per row among the coders who coded it; (codes, tie flags)."""
    stack = np.vstack(coded)
    out = np.full(stack.shape[1], -1, dtype=np.int64)
    ties = np.zeros(stack.shape[1], dtype=bool)
    for j in range(stack.shape[1]):
        counts = Counter(int(v) for v in stack[:, j] if v >= 0).most_common(2)
        if not counts:
            continue
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            ties[j] = True
        else:
            out[j] = counts[0][0]
    return out, ties


def _majority_multi(coded: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per code: in the majority set when more than half of the row's coders gave it.

    A code given by exactly half of them is a tie: the row then has no majority.
    """
    matrices = np.stack([m for m, _ in coded])          # coders x rows x codes
    valid = np.stack([v for _, v in coded])             # coders x rows
    m = valid.sum(axis=0)                                # coders per row
    votes = (matrices * valid[:, :, None]).sum(axis=0)   # rows x codes
    tie_rows = ((2 * votes == m[:, None]) & (m[:, None] > 0)).any(axis=1)
    majority = (2 * votes > m[:, None]).astype(np.int64)
    ok = (m > 0) & ~tie_rows
    return majority, ok, tie_rows


def _sparse(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]):
    from scipy import sparse

    return sparse.csr_matrix((np.asarray(data, dtype=float), (rows, cols)), shape=shape)


def _pair_features(c: _Comparison, k: int, multi: bool):
    """Per-row contributions of one comparison, sparse (rows x columns).

    Single-label: a one-hot of the confusion cell (gold, predicted). Multi-label: per code
    one of tp/fp/fn/tn, then exact match and "compared" columns.
    """
    n = len(c.mask)
    rows = np.flatnonzero(c.mask)
    if not multi:
        return _sparse(rows, c.gold[rows] * k + c.pred[rows], np.ones(len(rows)), (n, k * k))
    g, p = c.gold[rows], c.pred[rows]
    kind = np.where(g == 1, np.where(p == 1, 0, 2), np.where(p == 1, 1, 3))  # tp, fp, fn, tn
    cols = kind * k + np.arange(k)[None, :]
    exact = (g == p).all(axis=1)
    all_rows = np.concatenate([np.repeat(rows, k), rows[exact], rows])
    all_cols = np.concatenate([cols.ravel(), np.full(exact.sum(), 4 * k), np.full(len(rows), 4 * k + 1)])
    return _sparse(all_rows, all_cols, np.ones(len(all_rows)), (n, 4 * k + 2))


def _pair_stats(sums: np.ndarray, k: int, multi: bool) -> dict[str, np.ndarray]:
    if not multi:
        return _single_stats(sums.reshape(sums.shape[:-1] + (k, k)))
    tp, fp, fn, tn = (sums[..., i * k:(i + 1) * k] for i in range(4))
    return _binary_stats(tp, fp, fn, tn, sums[..., 4 * k], sums[..., 4 * k + 1])


def _group_features(units: np.ndarray, k: int, multi: bool):
    """Per-row contributions to the coincidence matrix of several coders (Krippendorff), sparse.

    Single-label `units` is (coders, rows) of code indices (-1 missing): each ordered pair
    of coders who both coded a row with m values adds 1 / (m - 1) at (their codes).
    Multi-label `units` is (coders, rows, codes) with -1 for a coder who did not code the
    row: per code the binary coincidences o00, o11 and o01.
    """
    n = units.shape[1]
    if not multi:
        present = units >= 0
        m = present.sum(axis=0)
        with _errstate():
            scale = np.where(m >= 2, 1 / (m - 1), 0.0)
        rows, cols, data = [], [], []
        for i in range(units.shape[0]):
            for j in range(units.shape[0]):
                if i == j:
                    continue
                both = np.flatnonzero(present[i] & present[j])
                rows.append(both)
                cols.append(units[i, both] * k + units[j, both])
                data.append(scale[both])
        return _sparse(np.concatenate(rows), np.concatenate(cols), np.concatenate(data), (n, k * k))
    present = units >= 0
    m = present[:, :, 0].sum(axis=0).astype(float)
    ones = (units == 1).sum(axis=0).astype(float)
    zeros = m[:, None] - ones
    with _errstate():
        scale = np.where(m >= 2, 1 / (m - 1), 0.0)[:, None]
    dense = np.hstack([zeros * (zeros - 1) * scale, ones * (ones - 1) * scale, ones * zeros * scale])
    rows, cols = np.nonzero(dense)
    return _sparse(rows, cols, dense[rows, cols], dense.shape)


def _group_alpha(sums: np.ndarray, k: int, multi: bool) -> np.ndarray:
    if not multi:
        o = sums.reshape(sums.shape[:-1] + (k, k))
        marg = o.sum(axis=-1)
        return _alpha_from_coincidence(o.sum(axis=(-2, -1)), np.trace(o, axis1=-2, axis2=-1), (marg ** 2).sum(-1))
    o00, o11, o01 = (sums[..., i * k:(i + 1) * k] for i in range(3))
    n0, n1 = o00 + o01, o11 + o01
    alpha = _alpha_from_coincidence(o00 + o11 + 2 * o01, o00 + o11, n0 ** 2 + n1 ** 2)
    return _nanmean(alpha, -1)


# --------------------------------------------------------------------------- agreement

def agreement(pred, gold, *, labels=None, n_boot: int = 1000, seed=0, level: float = 0.95,
              multi_label: bool = False, pred_name: str = MODEL,
              min_shared: int = MIN_SHARED_TEXTS) -> AgreementReport:
    """Agreement between model codes and human codes, with bootstrap intervals.

    `pred`: the model's code per text (a Series or sequence; None, NaN or "" = no code).
    `gold`: one coder's codes (a Series or sequence) or several ({coder: codes} or a
    DataFrame of coder columns), each as long as `pred`; rows are matched by position.
    `labels`: codes in the order to report them (codes found in the data are added
    after them). `multi_label`: codes are ";"-joined sets (see the module notes).
    `pred_name`: what to call the model in comparison names (default "model").
    `min_shared`: comparisons on fewer texts get a count and a note, no value or interval.

    The main comparison (per-code table, confusion matrix, prevalence, `n_compared`) is
    the model against the only coder, or against the coders' majority.
    """
    if not 0 < level < 1:
        raise TextlabError(f"The interval level must be between 0 and 1 (e.g. 0.95), not {level!r}.")
    n_boot = int(n_boot)
    min_shared = max(int(min_shared), 1)
    if n_boot < 1:
        raise TextlabError(f"n_boot (bootstrap resamples) must be at least 1, not {n_boot}.")
    pred_name = str(pred_name).strip() or MODEL
    pred_values = _as_list(pred, "model codes")
    coders = _coders_of(gold)
    for name in coders:
        if name in _RESERVED or name == pred_name:
            raise TextlabError(
                f"A coder may not be called '{name}' (the report uses that name for "
                f"{'the model' if name in (MODEL, pred_name) else 'the majority code'}); rename the coder or its column."
            )
    n_rows = len(pred_values)
    for name, values in coders.items():
        if len(values) != n_rows:
            raise TextlabError(
                f"The model codes have {n_rows:,} rows but coder '{name}' has {len(values):,}. "
                "Pass columns of the same table (one row per text, in the same order)."
            )
    if n_rows == 0:
        raise TextlabError("There are no rows to compare: the table is empty.")

    parse = _code_set if multi_label else _code
    pred_codes = [parse(v) for v in pred_values]
    coder_codes = {name: [parse(v) for v in values] for name, values in coders.items()}
    observed: set[str] = set()
    for seq in [pred_codes, *coder_codes.values()]:
        for v in seq:
            if v is not None:
                observed.update(v if multi_label else [v])
    if not observed:
        raise TextlabError(
            "Nothing to compare: every row lacks a code (the model column and the human columns are empty). "
            "Choose the columns that hold the codes, or hand-code some texts first."
        )
    given = [c for c in (_code(v) for v in (labels or [])) if c is not None]
    ordered = list(dict.fromkeys(given)) + [c for c in _natural_sorted(observed) if c not in given]
    index = {c: i for i, c in enumerate(ordered)}
    k = len(ordered)
    notes: list[str] = []
    if not multi_label and any(SEPARATOR in c for c in observed):
        notes.append(f"Some codes contain '{SEPARATOR}': if they are sets of codes, compare them as multi-label.")

    names = list(coders)
    if multi_label:
        pred_enc, pred_ok = _encode_multi(pred_codes, index)
        coder_enc = {nm: _encode_multi(coder_codes[nm], index) for nm in names}
    else:
        pred_enc = _encode_single(pred_codes, index)
        pred_ok = pred_enc >= 0
        coder_enc = {nm: _encode_single(coder_codes[nm], index) for nm in names}

    def ok_of(enc):
        return enc[1] if multi_label else enc >= 0

    def values_of(enc):
        return enc[0] if multi_label else enc

    comparisons: list[_Comparison] = []
    for nm in names:
        comparisons.append(_Comparison(f"{pred_name} vs {nm}", "pair", pred_ok & ok_of(coder_enc[nm]),
                                       gold=values_of(coder_enc[nm]), pred=pred_enc))
    ties = np.zeros(n_rows, dtype=bool)
    if len(names) > 1:
        if multi_label:
            maj, maj_ok, ties = _majority_multi([coder_enc[nm] for nm in names])
        else:
            maj, ties = _majority_single([coder_enc[nm] for nm in names])
            maj_ok = maj >= 0
        main = _Comparison(f"{pred_name} vs {MAJORITY}", "pair", pred_ok & maj_ok, gold=maj, pred=pred_enc)
        comparisons.append(main)
        gold_main_ok = maj_ok
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                comparisons.append(_Comparison(f"{a} vs {b}", "pair", ok_of(coder_enc[a]) & ok_of(coder_enc[b]),
                                               gold=values_of(coder_enc[b]), pred=values_of(coder_enc[a])))

        def units_of(encs):
            if multi_label:
                return np.stack([np.where(e[1][:, None], e[0], -1) for e in encs])
            return np.stack(encs)

        humans = units_of([coder_enc[nm] for nm in names])
        everyone = units_of([(pred_enc, pred_ok) if multi_label else pred_enc] + [coder_enc[nm] for nm in names])
        for label, units in ((f"coders ({len(names)})", humans), (f"{pred_name} + coders", everyone)):
            if label.startswith("coders") and len(names) < 3:
                continue  # with two coders this is the coder-vs-coder alpha above
            present = (units >= 0) if not multi_label else (units[:, :, 0] >= 0)
            comparisons.append(_Comparison(label, "group", present.sum(axis=0) >= 2, units=units))
    else:
        main = comparisons[0]
        gold_main_ok = ok_of(coder_enc[names[0]])

    if not main.mask.any() and len(names) > 1:
        # The coders never give a majority on a row the model coded (two coders who always
        # disagree): report the model against the coder it shares most texts with instead.
        best = max(comparisons[:len(names)], key=lambda c: int(c.mask.sum()))
        if best.mask.any():
            coder = names[comparisons.index(best)]
            notes.append(f"The coders give no majority code on any text the model coded; the per-code table, "
                         f"confusion matrix and prevalence are for {best.name} instead.")
            main, gold_main_ok, ties = best, ok_of(coder_enc[coder]), np.zeros(n_rows, dtype=bool)
    if not main.mask.any():
        raise TextlabError(
            f"Nothing to compare: no row has both a model code and a human code ({n_rows:,} rows; "
            f"{int((~pred_ok).sum()):,} without a model code, {int((~gold_main_ok & ~ties).sum()):,} without a human code"
            + (f", {int(ties.sum()):,} where the coders tie" if ties.any() else "")
            + "). Choose the columns that hold the codes, or hand-code some of the texts the model coded."
        )

    # Point estimates (reference libraries) and bootstrap features, comparison by comparison.
    feats, points = [], {}
    offset = 0
    for c in comparisons:
        c.n = int(c.mask.sum())
        if c.kind == "pair":
            f = _pair_features(c, k, multi_label)
            if c.n:
                rows = c.mask
                points[c.name] = (_multi_points(c.gold[rows], c.pred[rows]) if multi_label
                                  else _single_points(c.gold[rows], c.pred[rows], ordered))
        else:
            f = _group_features(c.units, k, multi_label)
            if c.n:
                if multi_label:
                    alphas = [_krippendorff(np.where(c.units[:, :, j] >= 0, c.units[:, :, j], np.nan)) for j in range(k)]
                    value = float(_nanmean(np.asarray(alphas, dtype=float), 0))
                else:
                    value = _krippendorff(np.where(c.units >= 0, c.units, np.nan))
                points[c.name] = {"krippendorff_alpha": value}
        c.offset, c.width = offset, f.shape[1]
        offset += f.shape[1]
        feats.append(f)
    from scipy import sparse

    sums = _resample_sums(sparse.hstack(feats, format="csr"), n_boot, seed)

    summary_rows = []
    per_code_ci = None
    for c in comparisons:
        block = sums[:, c.offset:c.offset + c.width]
        if c.kind == "pair":
            draws = _pair_stats(block, k, multi_label)
            metrics = METRICS
        else:
            draws = {"krippendorff_alpha": _group_alpha(block, k, multi_label)}
            metrics = ("krippendorff_alpha",)
        if c is main:
            per_code_ci = _interval(draws["f1"], level)
        for metric in metrics:
            value = points.get(c.name, {}).get(metric, math.nan)
            lo, hi = _interval(draws[metric][:, None], level)
            note = ""
            if c.n == 0:
                note = "no text coded by both"
                lo, hi = [math.nan], [math.nan]
            elif c.n < min_shared:
                note = f"too few texts ({c.n:,}; at least {min_shared:,} needed for an estimate)"
                value, lo, hi = math.nan, [math.nan], [math.nan]
            elif not math.isfinite(value):
                note = "undefined: only one code occurs" if metric in ("cohen_kappa", "krippendorff_alpha") else "undefined"
            summary_rows.append({"comparison": c.name, "metric": metric, "value": value,
                                 "ci_low": float(lo[0]), "ci_high": float(hi[0]), "n": c.n, "note": note})
    summary = pd.DataFrame(summary_rows, columns=["comparison", "metric", "value", "ci_low", "ci_high", "n", "note"])
    for c in comparisons:
        if 0 < c.n < min_shared:
            shared = "coded by both" if c.kind == "pair" else "coded by two or more"
            notes.append(f"{c.name}: only {c.n:,} text{'' if c.n == 1 else 's'} {shared}; at least {min_shared:,} "
                         "are needed for an estimate, so no value or interval is reported (on so few texts "
                         "agreement is mostly chance).")
    for row in summary_rows:
        if row["note"].startswith("too few"):
            continue  # said once per comparison above
        if row["note"].startswith("undefined"):
            notes.append(f"{row['comparison']}: {row['metric']} is {row['note']} (reported as NaN).")
        elif row["note"] and row["metric"] == "accuracy":
            notes.append(f"{row['comparison']}: {row['note']}.")

    # The main comparison in detail.
    rows = main.mask
    g, p = main.gold[rows], main.pred[rows]
    per_code, confusion, prev_counts = _main_tables(g, p, ordered, multi_label)
    per_code["f1_ci_low"], per_code["f1_ci_high"] = per_code_ci
    n_main = int(rows.sum())
    too_few = n_main < min_shared
    if too_few:  # counts (support, predicted, confusion) only
        per_code[["precision", "recall", "f1", "f1_ci_low", "f1_ci_high"]] = np.nan
    prevalence = []
    for source, counts in (("model", prev_counts[1]), ("human", prev_counts[0])):
        lo, hi = wilson_interval(counts, np.full(k, n_main), level)
        if too_few:
            lo, hi = np.full(k, np.nan), np.full(k, np.nan)
        prevalence.append(pd.DataFrame({"code": ordered, "source": source, "count": counts.astype(int),
                                        "share": counts / n_main, "ci_low": lo, "ci_high": hi, "n": n_main}))
    prevalence = pd.concat(prevalence, ignore_index=True)

    missing = {
        "no_model_code": int((~pred_ok).sum()),
        "no_human_code": int((pred_ok & ~gold_main_ok & ~ties).sum()),
    }
    coders_per_text: dict[str, int] = {}
    if len(names) > 1 and main.name.endswith(f" vs {MAJORITY}"):
        missing["coders_tie"] = int((pred_ok & ties).sum())
        # A "majority" of one coder is that coder's code: say how many texts that is.
        per_row = np.sum([ok_of(coder_enc[nm]) for nm in names], axis=0)[rows]
        coders_per_text = {"1": int((per_row == 1).sum()), "2+": int((per_row >= 2).sum())}
        notes.append(f"{main.name}: of {n_main:,} texts, {coders_per_text['1']:,} coded by one coder (the majority "
                     f"is that coder's code) and {coders_per_text['2+']:,} by two or more.")
    n_missing = n_rows - n_main
    if n_missing:
        words = {"no_model_code": "without a model code" if pred_name == MODEL else f"without a code in {pred_name}", "no_human_code": "without a human code",
                 "coders_tie": "where the coders tie"}
        parts = [f"{v:,} {words[k]}" for k, v in missing.items() if v]
        notes.insert(0, f"{n_missing:,} of {n_rows:,} rows left out of {main.name}: " + ", ".join(parts) + ".")
    return AgreementReport(
        summary=summary, per_code=per_code, confusion=confusion, prevalence=prevalence,
        n_compared=n_main, n_missing=n_missing, labels=ordered, coders=names, n_rows=n_rows,
        main_comparison=main.name, multi_label=multi_label, missing=missing, level=level,
        n_boot=n_boot, seed=seed, notes=notes, min_shared=min_shared, coders_per_text=coders_per_text,
    )


def _main_tables(gold: np.ndarray, pred: np.ndarray, labels: list[str], multi: bool):
    """Per-code table, confusion (or co-occurrence) matrix and code counts (human, model)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = len(labels)
    if multi:
        precision, recall, f1, support = _quiet(precision_recall_fscore_support, gold, pred, average=None,
                                                labels=list(range(k)), zero_division=np.nan)
        matrix = gold.T @ pred
        counts = (gold.sum(axis=0).astype(float), pred.sum(axis=0).astype(float))
    else:
        codes = list(range(k))  # integer codes stand for the labels, in their order
        precision, recall, f1, support = _quiet(precision_recall_fscore_support, gold, pred, labels=codes,
                                                zero_division=np.nan)
        matrix = _quiet(confusion_matrix, gold, pred, labels=codes)
        counts = (np.bincount(gold, minlength=k).astype(float), np.bincount(pred, minlength=k).astype(float))
    per_code = pd.DataFrame({"code": labels, "precision": precision, "recall": recall, "f1": f1,
                             "support": np.asarray(support, dtype=int), "predicted": counts[1].astype(int)})
    confusion = pd.DataFrame(matrix, index=pd.Index(labels, name="gold"), columns=pd.Index(labels, name="predicted"))
    return per_code, confusion, counts


# --------------------------------------------------------------------------- close reading

def _parsed(series: pd.Series, multi_label: bool) -> list:
    parse = _code_set if multi_label else _code
    return [parse(v) for v in series.tolist()]


def disagreements(frame: pd.DataFrame, pred: str, gold: str | list[str], *, multi_label: bool = False,
                  codes: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows of `frame` where the model code differs from at least one human code.

    Only rows with a model code and that human code count. `codes`: keep rows where the
    model or any of the human columns used one of these codes. Returns the rows as they
    are (all columns, original index), in table order.
    """
    golds = [gold] if isinstance(gold, str) else list(gold)
    missing = [c for c in [pred, *golds] if c not in frame.columns]
    if missing:
        raise TextlabError(f"Column(s) not in the table: {', '.join(map(str, missing))}.")
    as_set = (lambda v: v) if multi_label else (lambda v: frozenset([v]) if v is not None else None)
    p = [as_set(v) for v in _parsed(frame[pred], multi_label)]
    gs = [[as_set(v) for v in _parsed(frame[g], multi_label)] for g in golds]
    wanted = {c for c in (_code(v) for v in codes)} - {None} if codes else None
    keep = np.zeros(len(frame), dtype=bool)
    for i, pv in enumerate(p):
        if pv is None:
            continue
        others = [g[i] for g in gs if g[i] is not None]
        if not any(o != pv for o in others):
            continue
        if wanted is not None and not (wanted & (pv.union(*others))):
            continue
        keep[i] = True
    return frame.loc[keep]


def code_options(values: Iterable, *, multi_label: bool = False, extra: Iterable = ()) -> list[str]:
    """The distinct codes in a column (split on ";" for multi-label), plus `extra` codes
    (a codebook's labels), in reading order: the choices of a hand-coding form."""
    found: set[str] = set()
    for v in values:
        parsed = _code_set(v) if multi_label else _code(v)
        if parsed is not None:
            found.update(parsed if multi_label else [parsed])
    first = [c for c in (_code(v) for v in extra) if c is not None]
    return list(dict.fromkeys(first + _natural_sorted(found)))


# --------------------------------------------------------------------------- sampling

def _equal_allocation(sizes: dict[str, int], n: int) -> dict[str, int]:
    """As equal as possible; strata smaller than their share give what they lack to the others."""
    take = {s: 0 for s in sizes}
    remaining, open_ = n, sorted(sizes, key=lambda s: (sizes[s], s))
    while open_ and remaining > 0:
        share = remaining // len(open_)
        small = [s for s in open_ if sizes[s] <= share]
        if small:
            for s in small:
                take[s] = sizes[s]
                remaining -= sizes[s]
            open_ = [s for s in open_ if s not in small]
            continue
        # Every open stratum can give `share`; the rest, one each, go to the largest strata.
        for s in open_:
            take[s] = share
        extra = remaining - share * len(open_)
        for s in sorted(open_, key=lambda s: (-sizes[s], s))[:extra]:
            take[s] += 1
        remaining = 0
    return take


def _proportional_allocation(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Largest remainders: floors of n * size / total, then one more to the largest fractions."""
    total = sum(sizes.values())
    quotas = {s: n * size / total for s, size in sizes.items()}
    take = {s: int(math.floor(q)) for s, q in quotas.items()}
    extra = n - sum(take.values())
    for s in sorted(sizes, key=lambda s: (-(quotas[s] - take[s]), -sizes[s], s))[:extra]:
        take[s] += 1
    return take


def stratified_sample(frame: pd.DataFrame, by: str | None, n: int, *, allocation: str = "equal", seed=0,
                      exclude: Iterable[str] | None = None) -> pd.DataFrame:
    """Draw `n` rows stratified by the column `by` (the model's code, say).

    allocation="equal": as equal as possible per stratum, so rare codes are validated
    too (strata smaller than their share give all their rows and the rest go to the
    others); "proportional": by each stratum's share of the rows. Rows with a missing
    value in `by` form a stratum of their own; `by=None` draws a simple random sample.
    `exclude`: doc_ids already hand-coded (matched against the `doc_id` column, or the
    index when there is none). Deterministic for a seed. Returns the rows (all columns,
    original index) in a random order, not grouped by stratum. `draw_sample` draws the
    same rows and also says how they were drawn (for corrected estimates).
    """
    if allocation not in ("equal", "proportional"):
        raise TextlabError(f"Unknown allocation {allocation!r}: choose 'equal' or 'proportional'.")
    return _draw(frame, by, n, allocation=allocation, seed=seed, exclude=exclude).rows


# Sample designs: how the texts to hand-code are drawn. Each one has known inclusion
# probabilities (n_s / N_s within a stratum), so every one can correct estimates.
DESIGNS = ("simple_random", "stratified_equal", "stratified_proportional")
_ALLOCATION = {"simple_random": "equal", "stratified_equal": "equal", "stratified_proportional": "proportional"}
ALL_STRATUM = "(all)"


@dataclass
class SampleDraw:
    """A drawn sample: `rows` as `stratified_sample` returns them (all columns, original
    index, random order) and `record`, a JSON-ready account of how they were drawn.

    `record`: sample_id, design, by (None for a simple random sample), seed, n (texts
    drawn), n_requested, drawn_at (UTC ISO), pool_size (rows the draw was made from: not
    excluded), excluded (the doc_ids of the table that were left out), strata {name:
    {"size": N_s in the pool, "drawn": n_s}}, docs [{"doc_id", "stratum"}] in the drawn
    order, and strata_hash (a fingerprint of every row's doc_id and stratum, so a later
    draw can tell whether it splits the same table the same way).
    """

    rows: pd.DataFrame
    record: dict[str, Any]

    @property
    def doc_ids(self) -> list[str]:
        return [d["doc_id"] for d in self.record["docs"]]


@dataclass
class _Drawn:
    rows: pd.DataFrame
    doc_ids: list[str]         # doc_id (or index) of each drawn row, in the drawn order
    strata: list[str]          # stratum of each drawn row, in the drawn order
    sizes: dict[str, int]      # stratum sizes in the pool
    take: dict[str, int]       # drawn per stratum
    ids: pd.Series             # doc_id (or index) of every row, as text
    labels: pd.Series          # stratum of every row
    excluded: list[str]        # ids of the table left out of the pool


def _strata_of(frame: pd.DataFrame, by: str | None) -> pd.Series:
    if by is None:
        return pd.Series([ALL_STRATUM] * len(frame), dtype=object)
    return pd.Series([_code(v) or _MISSING_STRATUM for v in frame[by].tolist()], dtype=object)


def _draw(frame: pd.DataFrame, by: str | None, n, *, allocation: str, seed, exclude) -> _Drawn:
    """The one implementation of drawing: stratify, allocate, draw each stratum, shuffle."""
    if by is not None and by not in frame.columns:
        raise TextlabError(f"Cannot stratify by '{by}': no such column. Columns: {', '.join(map(str, frame.columns))}.")
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise TextlabError(f"The sample size must be a whole number, not {n!r}.") from None
    if n < 1:
        raise TextlabError(f"The sample size must be at least 1, not {n}.")
    ids = (frame["doc_id"] if "doc_id" in frame.columns else frame.index.to_series()).astype(str).reset_index(drop=True)
    pool = np.arange(len(frame))
    excluded: list[str] = []
    if exclude is not None:
        done = {str(x) for x in exclude}
        out = ids.isin(done).to_numpy()
        excluded = ids[out].tolist()
        pool = pool[~out]
    if len(pool) == 0:
        raise TextlabError("No rows are left to sample: every row is already hand-coded (or the table is empty).")
    labels = _strata_of(frame, by)
    strata = labels.iloc[pool].reset_index(drop=True)
    groups = {s: pool[idx] for s, idx in strata.groupby(strata, sort=True).indices.items()}
    sizes = {s: len(rows) for s, rows in groups.items()}
    n = min(n, len(pool))
    take = (_equal_allocation if allocation == "equal" else _proportional_allocation)(sizes, n)
    rng = np.random.default_rng(seed)
    chosen = []
    for s in sorted(groups):
        if take[s]:
            chosen.append(rng.choice(groups[s], size=take[s], replace=False))
    picked = np.concatenate(chosen) if chosen else np.array([], dtype=int)
    # Shuffled, not grouped by stratum: a coder who sees ten "Housing" predictions in a row
    # can guess the model's code and anchor on it; a random order keeps the coding blind.
    picked = rng.permutation(picked)
    return _Drawn(rows=frame.iloc[picked], doc_ids=ids.iloc[picked].tolist(), strata=labels.iloc[picked].tolist(), sizes=sizes, take=take,
                  ids=ids, labels=labels, excluded=excluded)


def _whole(value, what: str) -> int:
    """An int from 3, 3.0 or "3"; a clear error for 2.5, "x", True or None."""
    if isinstance(value, (bool, np.bool_)):
        raise TextlabError(f"The {what} must be a whole number, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TextlabError(f"The {what} must be a whole number, not {value!r}.") from None
    if not number.is_integer():
        raise TextlabError(f"The {what} must be a whole number, not {value!r}.")
    return int(number)


def strata_hash(frame: pd.DataFrame, by: str | None) -> str:
    """A fingerprint of how `frame` splits into strata by `by` (every row's doc_id and
    stratum, in any order): the same table stratified the same way gives the same hash, so
    a later draw can tell whether it adds to a recorded design (`SampleDraw.record`)."""
    if by is not None and by not in frame.columns:
        raise TextlabError(f"Cannot stratify by '{by}': no such column. Columns: {', '.join(map(str, frame.columns))}.")
    ids = (frame["doc_id"] if "doc_id" in frame.columns else frame.index.to_series()).astype(str)
    return _pairs_hash(ids, _strata_of(frame, by))


def _pairs_hash(ids: Iterable[str], strata: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for doc, stratum in sorted(zip(map(str, ids), map(str, strata))):
        digest.update(f"{doc}\x1f{stratum}\x1e".encode("utf-8"))
    return digest.hexdigest()


def draw_sample(frame: pd.DataFrame, n: int, *, design: str, by: str | None = None, seed: int | None = 0,
                exclude: Iterable[str] | None = None) -> SampleDraw:
    """Draw `n` texts to hand-code with a recorded design (see `SampleDraw`).

    design="simple_random": every text of the pool equally likely (`by` is ignored);
    "stratified_equal": as many texts per value of the column `by` as possible (rare
    codes are checked too); "stratified_proportional": per stratum by its share. Rows
    with a missing value in `by` form the stratum "(missing)". Within a stratum of N_s
    rows of the pool, each is drawn with probability n_s / N_s, so every design can
    correct estimates. `exclude`: doc_ids left out of the pool (the texts already drawn,
    when adding to a sample). Deterministic for a seed; `seed=None` picks one and records it.
    """
    if design not in DESIGNS:
        raise TextlabError(f"Unknown sample design {design!r}: choose one of {', '.join(DESIGNS)}.")
    if design == "simple_random":
        by = None
    elif by is None or (isinstance(by, str) and not by.strip()):
        raise TextlabError(f"The design '{design}' needs a column to stratify by (by=...), usually the model's "
                           "code; for a simple random sample use design='simple_random'.")
    if seed is None:
        seed = secrets.randbits(32)
    seed = _whole(seed, "seed")
    if seed < 0:
        raise TextlabError(f"The seed must be 0 or more, not {seed}.")
    n_requested = _whole(n, "sample size")
    drawn = _draw(frame, by, n, allocation=_ALLOCATION[design], seed=seed, exclude=exclude)
    stamp = datetime.now(timezone.utc)
    record = {
        "sample_id": f"sample-{stamp:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
        "design": design,
        "by": None if by is None else str(by),
        "seed": seed,
        "n": len(drawn.rows),
        "n_requested": n_requested,
        "drawn_at": stamp.isoformat(timespec="seconds"),
        "pool_size": int(sum(drawn.sizes.values())),
        "excluded": drawn.excluded,
        "strata": {s: {"size": int(drawn.sizes[s]), "drawn": int(drawn.take[s])} for s in sorted(drawn.sizes)},
        "docs": [{"doc_id": d, "stratum": s} for d, s in zip(drawn.doc_ids, drawn.strata)],
        "strata_hash": _pairs_hash(drawn.ids, drawn.labels),
    }
    return SampleDraw(rows=drawn.rows, record=record)
