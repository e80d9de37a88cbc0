"""Uncertainty-aware summaries of result columns, by group and over time.

Pure pandas/numpy: the pages, the CLI and notebooks call these and hand the tables to
`analysis.charts`. Dates are read by `analysis.datetimes`, as the corpus and the export
read them (the day/month order from the whole column, or the project's `date_order`).
Every table says how many rows it rests on (`n`) and carries an interval (`lo`, `hi`) so
a chart never shows a bare mean.

Choices, and why:
- Means get a percentile bootstrap interval: result columns (sentiment scores, emotion
  intensities) are bounded and often skewed or piled up at 0, where a normal-theory
  interval can run outside the possible range; percentiles of resampled means cannot.
- Shares get a Wilson score interval by default: it is exact to compute (no seed, no
  resampling cost), stays inside [0, 1], and unlike the bootstrap it does not collapse to
  a zero-width interval when a label is absent (0 of 12) or universal (12 of 12), which is
  common for small groups. `method="bootstrap"` is there for those who want one method.
- Each cell (group, period) resamples with its own generator seeded with `seed`, so its
  interval does not change when other groups are filtered out or added.
- Rows are never silently lost: rows left out for a missing value, group, label or date
  are counted in `df.attrs` ("missing", "undated").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from analysis.datetimes import parse_dates
from analysis.errors import ColumnChoiceError

__all__ = [
    "TextCounts",
    "auto_freq",
    "bootstrap_mean_ci",
    "column_values",
    "group_means",
    "is_empty_text",
    "label_shares",
    "label_shares_over_time",
    "profile_by_group",
    "rows_with_values",
    "text_counts",
    "top_labels",
    "trend",
    "value_shares_by_group",
]

# Memory cap for one block of bootstrap resamples (indices + gathered values).
_BLOCK_BYTES = 50 * 2**20
# Gaps between observed periods are filled with empty rows, unless that would make an
# absurd table (a stray 1970 date in weekly data).
_MAX_FILLED_PERIODS = 5000
_RESERVED = ("n", "mean", "lo", "hi", "total", "share", "sparse", "period")


# --------------------------------------------------------------------------- helpers

def _check_level(level: float, n_boot: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot!r}")


def _check_columns(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The frame with a plain 0..n-1 index (a duplicated index would break alignment)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ColumnChoiceError(f"Column(s) not in the table: {', '.join(map(repr, map(str, missing)))}. "
                                "Choose one of the table's columns.")
    return frame.reset_index(drop=True)


def _check_name(name: str, role: str) -> None:
    # The output table uses these names itself; a clash would give duplicate columns.
    if name in _RESERVED:
        raise ColumnChoiceError(f"The {role} column may not be called {name!r}: the output table uses that name "
                                "itself. Rename the column in the file, or choose another one.")


def _bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `n_boot` resamples of `x`, drawn in blocks to cap memory."""
    n = x.size
    dtype = np.int32 if n < 2**31 - 1 else np.int64  # int32 indices: less memory, faster draws
    per_replicate = n * (np.dtype(dtype).itemsize + x.itemsize)
    block = int(max(1, min(n_boot, _BLOCK_BYTES // max(per_replicate, 1))))
    out = np.empty(n_boot)
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(size, n), dtype=dtype)
        out[start:start + size] = x[idx].mean(axis=1)
    return out


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson_interval(k: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n (NaN where n == 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    # Exact at the edges (the formula gives 0 and 1 there, up to rounding).
    lo = np.where((k == 0) & (n > 0), 0.0, lo)
    hi = np.where((k == n) & (n > 0), 1.0, hi)
    return lo, hi


def _bootstrap_share(k: int, n: int, *, n_boot: int, level: float, seed) -> tuple[float, float]:
    # Resampling n labelled rows and counting one label is exactly a Binomial(n, k/n) draw.
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n, k / n, size=int(n_boot)) / n
    lo, hi = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _clean_labels(series: pd.Series) -> pd.Series:
    """Labels with blank strings treated as missing (empty texts get empty results)."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series
    blank = series.astype("string").str.strip().eq("").fillna(False).astype(bool)
    return series.mask(blank)


def _natural_key(text: str) -> tuple:
    # "Region 2" before "Region 10": digit runs compare as numbers (they sit at odd positions).
    return tuple(int(t) if i % 2 else t.casefold() for i, t in enumerate(re.split(r"(\d+)", text)))


def _sorted_unique(values) -> list:
    """Distinct values in a reading order: numbers numerically, text naturally."""
    uniq = list(pd.unique(pd.Series(values).dropna()))
    if uniq and all(isinstance(v, str) for v in uniq):
        return sorted(uniq, key=lambda v: (_natural_key(v), v))
    try:
        return sorted(uniq)
    except TypeError:  # mixed types: order by their text
        return sorted(uniq, key=lambda v: (_natural_key(str(v)), str(v)))


def _split(values: pd.Series, keys: pd.Series) -> dict:
    """{key: float array of its values} in one pass (no per-group scan of the whole column)."""
    codes, uniques = pd.factorize(keys.to_numpy(), sort=False)
    vals = values.to_numpy(dtype=float)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(uniques)))[:-1]
    return dict(zip(list(uniques), np.split(vals[order], bounds)))


def _norm_freq(freq: str, dates: pd.Series | None = None) -> str:
    key = str(freq).strip().lower()
    if key in {"m", "ms", "me", "month", "months", "monthly"}:
        return "M"
    if key in {"w", "w-mon", "w-sun", "week", "weeks", "weekly"}:
        return "W"
    if key == "auto":
        return auto_freq(dates if dates is not None else pd.Series([], dtype="datetime64[ns]"))
    raise ValueError(f"freq must be 'M'/'month' or 'W'/'week' (or 'auto'), got {freq!r}")


def _period_start(dates: pd.Series, freq: str) -> pd.Series:
    """Start of the month, or Monday of the ISO week, at midnight."""
    day = dates.dt.normalize()
    if freq == "W":
        return day - pd.to_timedelta(dates.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(dates.dt.day - 1, unit="D")


def _all_periods(observed: pd.Series, freq: str) -> pd.DatetimeIndex | None:
    """Every period from the first to the last observed one, so gaps show as gaps."""
    if observed.empty:
        return None
    first, last = observed.min(), observed.max()
    full = pd.date_range(first, last, freq="MS" if freq == "M" else "W-MON")
    if len(full) > _MAX_FILLED_PERIODS:
        return None
    return full


# --------------------------------------------------------------------------- public API

def bootstrap_mean_ci(values, *, n_boot: int = 1000, level: float = 0.95,
                      seed=0) -> tuple[float, float, float]:
    """(mean, lo, hi): the sample mean and a percentile bootstrap interval.

    NaN (and non-numeric) values are dropped. No values give (nan, nan, nan); one value
    gives (value, nan, nan), since one observation says nothing about spread.
    """
    _check_level(level, n_boot)
    x = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = _bootstrap_means(x, int(n_boot), rng)
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return mean, float(lo), float(hi)


def group_means(frame: pd.DataFrame, value: str, group: str, *, n_boot: int = 1000,
                level: float = 0.95, seed=0) -> pd.DataFrame:
    """Mean of `value` per `group` with bootstrap intervals, highest mean first.

    Columns: <group>, n, mean, lo, hi. Rows whose value or group is missing are left out;
    their count is in `attrs["missing"]`.
    """
    frame = _check_columns(frame, value, group)
    _check_level(level, n_boot)
    _check_name(group, "group")
    if value == group:
        raise ColumnChoiceError(f"{value!r} cannot be both the value and the group: choose a different group column.")
    values = pd.to_numeric(frame[value], errors="coerce")
    groups = frame[group]
    keep = values.notna() & groups.notna()
    parts = _split(values[keep], groups[keep])
    rows = []
    for key in _sorted_unique(groups[keep]):
        sel = parts[key]
        mean, lo, hi = bootstrap_mean_ci(sel, n_boot=n_boot, level=level, seed=seed)
        rows.append({group: key, "n": int(sel.size), "mean": mean, "lo": lo, "hi": hi})
    out = pd.DataFrame(rows, columns=[group, "n", "mean", "lo", "hi"])
    out = out.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    out["n"] = out["n"].astype("int64")
    out.attrs.update(missing=int((~keep).sum()), level=level, n_boot=int(n_boot), value=value)
    return out


def _shares(labels: pd.Series, groups: pd.Series | None, group_name: str | None, label_name: str, *,
            method: str, n_boot: int, level: float, seed, label_order: list | None = None,
            group_order: list | None = None) -> pd.DataFrame:
    """Core of label_shares: labels and groups already cleaned and aligned (no missing)."""
    if labels.empty:
        label_values: list = []
    else:
        counts = labels.value_counts()
        # Most frequent label first, ties by name, so the default order is stable.
        label_values = sorted(counts.index, key=lambda v: (-counts[v], str(v)))
    if label_order is not None:
        label_values = list(label_order)
    if groups is None:
        table = pd.DataFrame({label_name: label_values})
        table["n"] = labels.value_counts().reindex(label_values, fill_value=0).to_numpy()
        table["total"] = int(labels.size)
    else:
        gvals = group_order if group_order is not None else _sorted_unique(groups)
        cross = pd.crosstab(groups, labels) if not labels.empty else pd.DataFrame()
        cross = cross.reindex(index=gvals, columns=label_values, fill_value=0)
        table = pd.DataFrame({
            group_name: np.repeat(np.array(gvals, dtype=object), len(label_values)),
            label_name: np.tile(np.array(label_values, dtype=object), len(gvals)),
            "n": cross.to_numpy().ravel() if len(gvals) and len(label_values) else np.array([], dtype=int),
        })
        table["total"] = table.groupby(group_name, sort=False)["n"].transform("sum") if len(table) else 0
    table["n"] = table["n"].astype("int64")
    table["total"] = table["total"].astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["share"] = np.where(table["total"] > 0, table["n"] / table["total"].where(table["total"] > 0, 1), np.nan)
    if method == "wilson":
        lo, hi = wilson_interval(table["n"].to_numpy(), table["total"].to_numpy(), level)
    elif method == "bootstrap":
        pairs = [_bootstrap_share(int(k), int(n), n_boot=n_boot, level=level, seed=seed)
                 for k, n in zip(table["n"], table["total"])]
        lo = np.array([p[0] for p in pairs], dtype=float)
        hi = np.array([p[1] for p in pairs], dtype=float)
    else:
        raise ValueError(f"method must be 'wilson' or 'bootstrap', got {method!r}")
    table["lo"] = lo
    table["hi"] = hi
    return table


def label_shares(frame: pd.DataFrame, label: str, group: str | None = None, *, n_boot: int = 1000,
                 level: float = 0.95, seed=0, method: str = "wilson") -> pd.DataFrame:
    """Share of each label (overall or within each group) with an interval.

    Columns: [<group>,] <label>, n (rows with this label), total (rows in the group with a
    label), share, lo, hi. Every label seen anywhere appears in every group (n = 0 where
    absent) so groups compare like for like. Blank or missing labels (and missing groups)
    are left out and counted in `attrs["missing"]`. Intervals: Wilson score by default
    (see the module docstring); `method="bootstrap"` uses `n_boot` and `seed`.
    """
    frame = _check_columns(frame, label, *([group] if group is not None else []))
    _check_level(level, n_boot)
    _check_name(label, "label")
    if group is not None:
        _check_name(group, "group")
        if group == label:
            raise ColumnChoiceError(f"{label!r} cannot be both the label and the group: choose a different group "
                                    "column.")
    labels = _clean_labels(frame[label])
    keep = labels.notna()
    if group is not None:
        keep &= frame[group].notna()
    out = _shares(labels[keep], frame[group][keep] if group is not None else None, group, label,
                  method=method, n_boot=n_boot, level=level, seed=seed)
    out.attrs.update(missing=int((~keep).sum()), level=level, method=method)
    return out


def trend(frame: pd.DataFrame, value: str, date: str, *, freq: str = "M", n_boot: int = 1000,
          level: float = 0.95, seed=0, min_n: int = 5, date_order: str | None = None) -> pd.DataFrame:
    """Mean of `value` per month or ISO week with bootstrap intervals.

    Columns: period (start of the month, or the Monday of the week), n, mean, lo, hi,
    sparse. Periods with fewer than `min_n` rows keep their mean but get no interval and
    `sparse=True`; periods between the first and last with no rows are included with
    n = 0 so a chart shows the gap. `attrs`: "undated" (rows whose date is missing or
    unreadable), "missing" (dated rows without a value), "freq" ("M" or "W").
    ``date_order`` ("day-first"/"month-first", the project's) reads dates like 04.03.2021;
    None reads the order the column shows (see ``analysis.datetimes.parse_dates``).
    """
    frame = _check_columns(frame, value, date)
    _check_level(level, n_boot)
    dates = parse_dates(frame[date], date_order, date)
    freq = _norm_freq(freq, dates)
    values = pd.to_numeric(frame[value], errors="coerce")
    dated = dates.notna()
    keep = dated & values.notna()
    periods = _period_start(dates[keep], freq)
    vals = values[keep]
    parts = _split(vals, periods)
    rows = []
    for start in sorted(parts):
        sel = parts[start]
        mean, lo, hi = bootstrap_mean_ci(sel, n_boot=n_boot, level=level, seed=seed)
        if sel.size < min_n:
            lo = hi = math.nan  # too few rows for a resampling interval to mean anything
        rows.append({"period": pd.Timestamp(start), "n": int(sel.size), "mean": mean, "lo": lo, "hi": hi})
    out = pd.DataFrame(rows, columns=["period", "n", "mean", "lo", "hi"])
    full = _all_periods(out["period"], freq)
    if full is not None:
        out = out.set_index("period").reindex(full).rename_axis("period").reset_index()
        out["n"] = out["n"].fillna(0)
    out["n"] = out["n"].astype("int64")
    out["period"] = pd.to_datetime(out["period"])
    out["sparse"] = out["n"] < min_n
    out.attrs.update(undated=int((~dated).sum()), missing=int((dated & values.isna()).sum()),
                     freq=freq, level=level, n_boot=int(n_boot), min_n=int(min_n), value=value)
    return out


def label_shares_over_time(frame: pd.DataFrame, label: str, date: str, *, freq: str = "M",
                           n_boot: int = 1000, level: float = 0.95, seed=0, min_n: int = 5,
                           method: str = "wilson", date_order: str | None = None) -> pd.DataFrame:
    """Share of each label per month or ISO week with intervals.

    Columns: period, <label>, n, total, share, lo, hi, sparse (total < min_n; the Wilson
    interval is still given, it is honest at small n, just wide). Empty periods between the
    first and last are included with total = 0 and share NaN. `attrs`: "undated",
    "missing" (dated rows without a label), "freq". ``date_order`` as in ``trend``.
    """
    frame = _check_columns(frame, label, date)
    _check_level(level, n_boot)
    _check_name(label, "label")
    dates = parse_dates(frame[date], date_order, date)
    freq = _norm_freq(freq, dates)
    labels = _clean_labels(frame[label])
    dated = dates.notna()
    keep = dated & labels.notna()
    periods = _period_start(dates[keep], freq).rename("period")
    observed = pd.Series(sorted(periods.unique()), dtype="datetime64[ns]")
    full = _all_periods(observed, freq)
    order = list(full) if full is not None else [pd.Timestamp(p) for p in observed]
    out = _shares(labels[keep], periods, "period", label, method=method, n_boot=n_boot, level=level,
                  seed=seed, group_order=order)
    out["period"] = pd.to_datetime(out["period"])
    out["sparse"] = out["total"] < min_n
    out.attrs.update(undated=int((~dated).sum()), missing=int((dated & labels.isna()).sum()),
                     freq=freq, level=level, method=method, min_n=int(min_n))
    return out


def profile_by_group(frame: pd.DataFrame, columns: list[str], group: str) -> pd.DataFrame:
    """Mean of each column per group: index = groups (named as the group column),
    columns = `columns`. `attrs["n"]` is a Series of group sizes (rows with a group);
    `attrs["missing"]` counts rows without a group. Missing values in a column are
    skipped for that column's mean only.
    """
    columns = list(columns)
    frame = _check_columns(frame, group, *columns)
    if group in columns:
        raise ColumnChoiceError(f"The group column {group!r} cannot also be one of the profile columns: choose a "
                                "different group column.")
    groups = frame[group]
    keep = groups.notna()
    data = frame.loc[keep, columns].apply(pd.to_numeric, errors="coerce").astype(float)
    order = _sorted_unique(groups[keep])
    if keep.any():
        profile = data.groupby(groups[keep].to_numpy(), sort=False).mean().reindex(order)
        sizes = groups[keep].value_counts().reindex(order).fillna(0).astype("int64")
    else:
        profile = pd.DataFrame(columns=columns, dtype=float)
        sizes = pd.Series([], dtype="int64")
    profile.index = pd.Index(order, name=group)
    sizes.index = pd.Index(order, name=group)
    sizes.name = "n"
    profile = profile[columns]
    profile.attrs.update(n=sizes, missing=int((~keep).sum()))
    return profile


def auto_freq(dates, date_order: str | None = None) -> str:
    """"W" when the dated span is under about six months (weeks give enough points to
    show a trend), else "M" (months keep the chart readable and the periods larger).
    ``date_order`` as in ``trend``."""
    dates = pd.Series(dates)
    parsed = parse_dates(dates, date_order, dates.name if dates.name is not None else "the date column").dropna()
    if parsed.empty:
        return "M"
    return "W" if parsed.max() - parsed.min() < pd.Timedelta(days=183) else "M"


def multi_label_shares(frame: pd.DataFrame, column: str, labels: list[str], group: str | None = None, *,
                       level: float = 0.95, separator: str = ";") -> pd.DataFrame:
    """Share of texts carrying each code, for ';'-joined multi-label codes, with Wilson intervals.

    Same columns as ``label_shares`` (the label column is named ``column``), but shares are
    of texts, so they need not sum to 1: a text with two codes counts for both. Rows with a
    missing value are not coded (empty texts) and are left out, counted in ``attrs["missing"]``.
    """
    frame = _check_columns(frame, column, *([group] if group is not None else []))
    _check_level(level, 1)
    values = frame[column]
    keep = values.notna()
    if group is not None:
        keep &= frame[group].notna()
    sets = values[keep].map(lambda v: {p.strip() for p in str(v).split(separator) if p.strip()})
    keys = frame[group][keep].astype(str) if group is not None else pd.Series("all", index=sets.index)
    rows = []
    for key in _sorted_unique(keys):
        members = sets[keys == key]
        total = len(members)
        for label in labels:
            n = int(sum(label in s for s in members))
            rows.append({**({group: key} if group is not None else {}), column: label, "n": n, "total": total})
    out = pd.DataFrame(rows, columns=([group] if group is not None else []) + [column, "n", "total"])
    out["share"] = out["n"] / out["total"].where(out["total"] > 0)
    lo, hi = wilson_interval(out["n"].to_numpy(), out["total"].to_numpy(), level)
    out["lo"], out["hi"] = lo, hi
    out.attrs.update(missing=int((~keep).sum()), level=level, method="wilson")
    return out


_SHARE_COLUMNS = {"n", "total", "share", "lo", "hi", "sparse"}


def top_labels(table: pd.DataFrame, label: str, top: int, *, other: str = "other") -> pd.DataFrame:
    """A `label_shares` / `label_shares_over_time` table cut to its `top` most frequent labels.

    Thirty topics in one chart are thirty colours nobody can tell apart: the largest
    `top - 1` labels stay and the rest are summed into one label "other (k labels)" per
    group or period, with a Wilson interval of its own, so every group still adds up to
    its texts. Labels that are not a partition of the texts (multi-label codes: a text
    counts for each of its codes) cannot be summed; there the smaller labels are dropped
    instead. `attrs["other"]` says how many labels were merged or dropped. A table with
    `top` labels or fewer comes back unchanged.
    """
    if table is None or table.empty or label not in table.columns:
        return table
    top = max(int(top), 2)
    keys = [c for c in table.columns if c not in _SHARE_COLUMNS and c != label]
    totals = table.groupby(label, sort=False)["n"].sum()
    if len(totals) <= top:
        return table
    # Largest first; ties keep the table's order (stable sort).
    ranked = totals.sort_values(ascending=False, kind="stable").index.tolist()
    per_key = table.groupby(keys, sort=False)["n"].sum() if keys else pd.Series([table["n"].sum()])
    first_total = table.groupby(keys, sort=False)["total"].first() if keys else pd.Series([table["total"].iloc[0]])
    partition = bool((per_key.to_numpy() == first_total.to_numpy()).all())
    kept = ranked[: top - 1] if partition else ranked[:top]
    rest = [lab for lab in ranked if lab not in kept]
    head = table[table[label].isin(kept)]
    attrs = dict(table.attrs)
    if not partition:
        out = head.reset_index(drop=True)
        out.attrs.update(attrs, other=len(rest), other_dropped=True)
        return out
    name = f"{other} ({len(rest)} labels)"
    while name in set(table[label].astype(str)):
        name += " "
    tail = table[table[label].isin(rest)]
    if keys:
        merged = tail.groupby(keys, sort=False).agg(
            n=("n", "sum"), total=("total", "first"),
            **({"sparse": ("sparse", "first")} if "sparse" in tail.columns else {})).reset_index()
    else:
        merged = pd.DataFrame({"n": [int(tail["n"].sum())], "total": [tail["total"].iloc[0]]})
    merged[label] = name
    merged["share"] = merged["n"] / merged["total"].where(merged["total"] > 0)
    merged["lo"], merged["hi"] = wilson_interval(merged["n"].to_numpy(), merged["total"].to_numpy(),
                                         float(attrs.get("level", 0.95)))
    out = pd.concat([head, merged[list(table.columns)]], ignore_index=True)
    if keys:  # keep the groups / periods in their order, "other" last within each
        order = {k: i for i, k in enumerate(pd.unique(table[keys[0]]))}
        out = out.assign(_k=out[keys[0]].map(order), _o=(out[label] == name).astype(int))
        out = out.sort_values(["_k", "_o"], kind="stable").drop(columns=["_k", "_o"]).reset_index(drop=True)
    out["n"] = out["n"].astype("int64")
    out.attrs.update(attrs, other=len(rest), other_dropped=False)
    return out


# --------------------------------------------------------------------------- counting texts
# One definition for every page and report: a text is a row; it is empty when it is
# missing or whitespace only (as in `corpus.quality_report` and the job runner, which give
# empty texts empty results). Length figures are over the non-empty texts.

def is_empty_text(texts) -> pd.Series:
    """True for each text that is missing or whitespace only."""
    values = pd.Series(list(texts) if not isinstance(texts, pd.Series) else texts, dtype=object)
    return values.map(lambda t: t is None or (isinstance(t, float) and math.isnan(t)) or not str(t).strip()).astype(bool)


@dataclass(frozen=True)
class TextCounts:
    """How many texts there are and how many are empty; `describe()` is the one wording."""

    total: int
    non_empty: int

    @property
    def empty(self) -> int:
        return self.total - self.non_empty

    def describe(self) -> str:
        """"467 texts (464 non-empty, 3 empty)", or "20 texts (none empty)"."""
        head = f"{self.total:,} text{'' if self.total == 1 else 's'}"
        if not self.empty:
            return f"{head} (none empty)"
        return f"{head} ({self.non_empty:,} non-empty, {self.empty:,} empty)"

    def __str__(self) -> str:
        return self.describe()

    def __format__(self, spec: str) -> str:
        return format(self.describe(), spec)


def text_counts(texts) -> TextCounts:
    """Texts and non-empty texts of a column (or list) of texts."""
    empty = is_empty_text(texts)
    return TextCounts(total=int(len(empty)), non_empty=int((~empty).sum()))


# ---------------------------------------------------------------------- any result column


def column_values(values: pd.Series, *, multi_label: bool = False, separator: str = ";") -> pd.Series:
    """The values of a result column to count. A multi-label column (codes joined by ``separator``)
    gives one row per (text, code), the text's index repeated, so each code counts once per
    text; a text without codes gives one missing value."""
    if not multi_label:
        return values
    exploded = values.fillna("").astype(str).str.split(separator).explode().str.strip()
    return exploded.where(exploded != "")


def value_shares_by_group(frame: pd.DataFrame, column: str, group: str, *, multi_label: bool = False,
                          separator: str = ";") -> pd.DataFrame:
    """Share of each value of ``column`` within each ``group`` (rows: groups, columns: values; a
    row sums to 1). A missing value counts as "(missing)"; a text with several codes
    (``multi_label``) counts for each."""
    frame = _check_columns(frame, column, group)
    values = column_values(frame[column], multi_label=multi_label, separator=separator)
    groups = frame[group].astype(str)
    if multi_label:
        groups = groups.reindex(values.index)
    # Arrays, not series: crosstab would align the repeated index of a multi-label column.
    return pd.crosstab(groups.to_numpy(), values.fillna("(missing)").astype(str).to_numpy(), normalize="index",
                       rownames=[group], colnames=[column])


def rows_with_values(frame: pd.DataFrame, column: str, picked, *, multi_label: bool = False,
                     separator: str = ";") -> pd.DataFrame:
    """The rows whose ``column`` (as text) is one of ``picked``; multi-label: that have at least
    one of the picked codes."""
    picked = {str(p) for p in picked}
    values = frame[column]
    if multi_label:
        has = values.fillna("").astype(str).str.split(separator).map(lambda codes: any(c.strip() in picked for c in codes))
        return frame[has.to_numpy(dtype=bool)]
    return frame[values.astype(str).isin(picked).to_numpy()]
