"""Reading a column of dates, one way for the whole library.

The corpus (``Corpus.dates``), the over-time aggregates and the export all read dates
here, so a chart, a filter and an exported Stata file never disagree about a date.

- Numeric day/month dates (``04.03.2021``, ``4/3/21``) are read in the order the whole
  column shows (a value like ``13.03.2021``; dots mean day-first) or in the order given
  (``DATE_ORDERS``); a column that shows no order is refused (a CorpusError that asks for
  it) rather than guessed month-first. ISO dates are never swapped.
- Whole numbers are years (2019) or Unix times in seconds or milliseconds.
- Time-zone offsets are dropped after parsing (local wall time); a column mixing offsets
  is converted to UTC first.

A leaf: it imports nothing of Textlab but the errors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from analysis.errors import CorpusError

DATE_ORDERS = ("day-first", "month-first")
# 04.03.2021, 4/3/21, 04-03-2021 14:30: day and month in an order the value does not say.
_NUMERIC_DATE = r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$"
# Whole numbers that are dates: years, and Unix times in seconds or milliseconds (1973-2286).
_EPOCH_UNITS = (("s", 1e8, 1e10), ("ms", 1e11, 1e13))
# Where a user chooses the order, for the messages that ask for it (library users: date_order=).
_WHERE_TO_CHOOSE = "day-first or month-first: on the Data page under Group and date columns, or with --date-order"


def parse_date_strings(values: pd.Series) -> pd.Series:
    """pandas' own reading of date strings (NaT where it fails), tz-naive; no day/month
    decisions: ``parse_dates`` rewrites numeric dates as ISO before calling this."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" and the like
        try:
            parsed = pd.to_datetime(values, errors="coerce")
            if parsed.isna().any():
                mixed = pd.to_datetime(values, errors="coerce", format="mixed")
                if mixed.notna().sum() > parsed.notna().sum():
                    parsed = mixed
        except (ValueError, TypeError):  # mixed time-zone offsets
            parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed


@dataclass
class DateReading:
    """How a column's dates are read (``date_reading``)."""

    order: str | None  # day-first, month-first, or None (no numeric d/m/y dates)
    why: str  # for the note
    ambiguous: bool = False
    unit: str | None = None  # year, s, ms for whole numbers


def numbers_as_dates(numbers: pd.Series) -> str | None:
    """'year', 's' or 'ms' when every whole number of the column reads as that, else None."""
    present = numbers.dropna()
    if not len(present) or not bool((present % 1 == 0).all()):
        return None
    if present.between(1000, 2999).all():
        return "year"
    for unit, low, high in _EPOCH_UNITS:
        if present.between(low, high).all():
            return unit
    return None


def _date_strings(column: pd.Series) -> pd.Series:
    strings = column.astype(object).where(column.notna(), None).map(lambda v: v if v is None else str(v).strip())
    return strings.where(strings != "", None)


def _numeric_date_parts(strings: pd.Series) -> pd.DataFrame:
    return strings.astype("string").str.extract(_NUMERIC_DATE)


def date_reading(column: pd.Series, order: str | None = None) -> DateReading:
    """How the column's dates are read: the day/month order (from the whole column), or
    the unit of whole numbers."""
    if order is not None and order not in DATE_ORDERS:
        raise CorpusError(f"Unknown date order {order!r}; choose one of: {', '.join(DATE_ORDERS)}.")
    if pd.api.types.is_datetime64_any_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return DateReading(None, "")
    if pd.api.types.is_numeric_dtype(column.dtype):
        return DateReading(None, "", unit=numbers_as_dates(column))
    strings = _date_strings(column).dropna()
    if len(strings) and strings.str.fullmatch(r"\d+").all():
        return DateReading(None, "", unit=numbers_as_dates(pd.to_numeric(strings)))
    parts = _numeric_date_parts(strings).dropna(subset=[0])
    if parts.empty:
        return DateReading(order, "")
    first, second = parts[0].astype(int), parts[2].astype(int)
    day_first, month_first = strings[parts.index][first > 12], strings[parts.index][second > 12]
    if order:
        return DateReading(order, "as chosen")
    if len(day_first) and len(month_first):
        chosen = "day-first" if len(day_first) >= len(month_first) else "month-first"
        other = month_first if chosen == "day-first" else day_first
        return DateReading(chosen, f"most values show it ({day_first.iloc[0]!r} vs {month_first.iloc[0]!r}); "
                                   f"{len(other)} value(s) only fit the other order and are not read as dates")
    if len(day_first):
        return DateReading("day-first", f"{day_first.iloc[0]!r} has no month {int(first[first > 12].iloc[0])}")
    if len(month_first):
        return DateReading("month-first", f"{month_first.iloc[0]!r} has no month {int(second[second > 12].iloc[0])}")
    if (parts[1] == ".").all():
        return DateReading("day-first", "no day is above 12, and dates written with dots are day-first "
                                        f"wherever they are used ({strings[parts.index].iloc[0]!r})")
    return DateReading(None, f"no day is above 12, e.g. {strings[parts.index].iloc[0]!r}", ambiguous=True)


def date_note(column: pd.Series, name: str, order: str | None) -> str | None:
    """What the import says about a date column: the order or unit used, or that it must be chosen."""
    try:
        reading = date_reading(column, order)
    except CorpusError as exc:
        return str(exc)
    if reading.ambiguous:
        return (f"The dates in {name!r} could be day-first or month-first: {reading.why}. They stay as text until "
                f"you choose the order ({_WHERE_TO_CHOOSE}).")
    if reading.unit in ("s", "ms"):
        unit = "seconds" if reading.unit == "s" else "milliseconds"
        return f"The dates in {name!r} are whole numbers; they were read as Unix time in {unit} since 1970 (UTC)."
    if reading.order and reading.why != "as chosen":
        example = "04.03.2021 = 4 March 2021" if reading.order == "day-first" else "04/03/2021 = 3 April 2021"
        return f"The dates in {name!r} were read {reading.order} ({example}): {reading.why}."
    return None


def parse_dates(column: pd.Series, order: str | None = None, name: str = "the date column") -> pd.Series:
    """The column as datetime64 (NaT where a value is not a date), same index.

    ``order`` ("day-first" or "month-first") reads numeric dates in that order; None reads
    the order the column shows and raises a CorpusError asking for it when the column
    shows none. ``name`` is the column's name for that message.
    """
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column.dt.tz_localize(None) if column.dt.tz is not None else column
    reading = date_reading(column, order)
    if reading.ambiguous:
        raise CorpusError(f"The dates in {name!r} could be day-first or month-first ({reading.why}); "
                          f"choose the order ({_WHERE_TO_CHOOSE}).")
    numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
    if numeric or reading.unit:
        numbers = pd.to_numeric(column if numeric else _date_strings(column), errors="coerce")
        if reading.unit in ("s", "ms"):
            return pd.to_datetime(numbers, unit=reading.unit, errors="coerce").astype("datetime64[ns]")
        years = numbers.where(numbers.between(1000, 2999) & (numbers % 1 == 0))
        return pd.to_datetime(years.astype("Int64").astype(str), format="%Y", errors="coerce")
    strings = _date_strings(column)
    if reading.order:
        # Rewrite d/m/y (or m/d/y) as ISO first: dateutil's dayfirst would also swap ISO dates.
        parts = _numeric_date_parts(strings)
        matched = parts[0].notna()
        day, month = (parts[0], parts[2]) if reading.order == "day-first" else (parts[2], parts[0])
        year = parts[3].where(parts[3].str.len() == 4, None)
        short = parts[3][parts[3].str.len() == 2].astype(int)
        year = year.fillna(((short < 70) * 2000 + (short >= 70) * 1900 + short).astype(str))
        valid = matched & (month.astype(float) <= 12)
        iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts[4].fillna("")
        strings = strings.where(~matched, iso.where(valid, None))
    parsed = parse_date_strings(strings)
    return parsed.astype("datetime64[ns]") if parsed.dtype == object else parsed
