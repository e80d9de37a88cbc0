"""Export coded datasets, codebooks and run manifests.

One entry point, :func:`export_table`, turns a result table into the bytes of a file (for
a download button) and :func:`write_table` writes it to disk atomically (for the CLI).
Rows are never dropped or reordered and the index is never written: output rows = input
rows.

Formats
-------
``csv`` / ``tsv``
    UTF-8, no index, missing values as empty fields, ``\\n`` line ends. ``bom=True``
    prepends a UTF-8 byte-order mark so Excel opens accented text correctly. Every field
    holding a line break is quoted, a lone ``\\r`` included (so no row is ever split).
``xlsx``
    Sheets ``data``, ``codebook`` (one row per code), ``runs`` (one row per run
    manifest, nested values as JSON), ``estimates`` (the long table of corrected
    estimates, when given) and ``methods`` (the methods paragraph, one line per row). Header row frozen, column widths set. Excel's limits
    are enforced visibly: more than 1,048,575 rows is an error; cells longer than 32,767
    characters are cut and XML-illegal control characters removed, each with a warning
    that counts the cells and names the columns. No cell is ever written as a formula.
    Carriage returns (``\\r\\n``, a lone ``\\r``) are kept, and an empty text stays an
    empty text cell, distinct from a missing value (a blank cell).
``parquet``
    pyarrow, values verbatim. Object columns holding mixed types (which Arrow cannot
    store) are written as strings, with a warning naming them. The codebook and the run
    manifests, when given, go into the file's schema metadata (``textlab.codebook``,
    ``textlab.runs``) as JSON.
``dta``
    Stata 14+ (format 118, Unicode). Column names become valid Stata names (ASCII
    letters, digits and underscore, at most 32 characters, not starting with a digit,
    not a reserved word, unique); the original names are kept as variable labels and the
    mapping is returned in ``ExportResult.renamed``. Strings over 2,045 bytes become strL.
    Label columns become labelled integers (value labels). Booleans become 0/1,
    datetimes stay datetimes (``%tc``), dates and datetime columns whose values are all at
    midnight become ``%td``, missing values stay missing. Stata has no missing text: a
    missing text becomes ``""`` (a warning counts them where a column has any).
``sav``
    SPSS via pyreadstat: same name cleaning (at most 64 characters, starting with a
    letter), original names as variable labels, label columns as numeric codes with value
    labels (measure: nominal). Strings are cut to SPSS's 32,767 bytes, with a warning.
    Dates become ``DATE``, datetimes ``DATETIME``. SPSS strips trailing spaces and has no
    missing text: both are reported with counts per column.

Dates: the columns named in ``date_columns`` (the corpus's date column) are written as
real dates to Excel, Stata and SPSS when every value parses as a date (with the reader the
corpus and the charts use, :func:`analysis.datetimes.parse_dates`, in the project's
``date_order``); otherwise they stay text, with a warning. CSV, TSV and Parquet keep them
as the user gave them.

Label columns (Stata and SPSS) are pandas Categoricals plus the text columns named in
``value_label_columns`` (default: the label columns that the tasks of the run manifests
passed as ``runs`` declare, one code per text, and :data:`VALUE_LABEL_COLUMNS` for tables
exported without their manifests). Codes are 1, 2, ... in the
order of the label set that the column's task declares (``Task.label_sets``, read from the
run manifests passed as ``runs``): sentiment negative=1, neutral=2, positive=3 in every
export, whichever labels occur. Columns no task declares are numbered in category order
(sorted values), with a warning that says so. The mapping used is in
``ExportResult.value_labels``; the two formats agree.

Formula injection
-----------------
Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some also
after a leading tab or carriage return) as a formula, so a text that a survey respondent
typed can become a live formula on the analyst's machine (OWASP "CSV injection"). In CSV,
TSV and XLSX exports every *string* cell and header that starts with one of
:data:`FORMULA_PREFIXES` gets a leading apostrophe, which makes spreadsheets show it as
text. The rule:

- only strings are touched; numeric, boolean and datetime columns are written as they
  are, so a float ``-0.5`` stays a number;
- a string that is just a plain number (``"-0.5"``, ``"+3"``, ``"-1e5"``) is left alone:
  evaluated, it can only ever be that number, and prefixing it would turn numeric-looking
  data into text;
- everything else that starts with a prefix is prefixed, including ``"- item one"``.

``neutralize=False`` is the opt-out for users who need the text verbatim; the XLSX writer
still stores such cells as text, never as formulas. Parquet, Stata and SPSS files are not
opened by formula-evaluating programs, so they always keep values verbatim.

Every adjustment made to the data (cells neutralised, cut or cleaned, columns renamed or
converted) is reported in ``ExportResult.warnings``; nothing is changed silently.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import io
import json
import math
import os
import re
import stat
import tempfile
import unicodedata
import uuid
import warnings as pywarnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.datetimes import parse_dates
from analysis.errors import TextlabError

EXPORT_FORMATS = ("csv", "xlsx", "parquet", "dta", "sav", "tsv")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# The built-in analyses' single-label columns, for a table exported without its run manifests
# (with them, each run says which of its columns are labels: ``label_columns`` in the manifest).
VALUE_LABEL_COLUMNS = ("sentiment_label", "emotion_label", "code_label", "topic_label")

EXCEL_MAX_ROWS = 1_048_575  # 1,048,576 rows per sheet, one of them the header
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_CELL_CHARS = 32_767
SPSS_MAX_STRING_BYTES = 32_767
STATA_MAX_STR_BYTES = 2_045  # longer strings must be strL

MIME_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
    "dta": "application/x-stata-dta",
    "sav": "application/x-spss-sav",
}
_FORMAT_ALIASES = {"excel": "xlsx", "stata": "dta", "spss": "sav", "pq": "parquet"}
_FORMAT_NAMES = {"csv": "CSV", "tsv": "TSV", "xlsx": "Excel", "parquet": "Parquet",
                 "dta": "Stata", "sav": "SPSS"}

# Same set as openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE (imported lazily with openpyxl).
_ILLEGAL_XML_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
_PLAIN_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NAME_JUNK_RE = re.compile(r"[^A-Za-z0-9_]+")

# pandas' list (io/stata.py) plus Stata's own reserved names; compared case-sensitively
# by Stata, but we compare lower-case to stay clear of near-misses such as "_N"/"_n".
_STATA_RESERVED = frozenset(w.lower() for w in (
    "aggregate array boolean break byte case catch class colvector complex const continue "
    "default delegate delete do double else eltypedef end enum explicit export external "
    "float for friend function global goto if inline int local long NULL pragma protected "
    "quad rowvector short typedef typename virtual _all _N _skip _b _pi str# in _pred strL "
    "_coef _rc using _cons _se with _n"
).split())
_SPSS_RESERVED = frozenset("all and by eq ge gt le lt ne not or to with".split())


@dataclass
class ExportResult:
    """An exported file: its bytes plus everything the user should be told about it
    (``write_table`` streams CSV/TSV straight to the file: there ``data`` stays empty)."""

    data: bytes
    fmt: str
    filename: str
    mime: str
    warnings: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # original -> written name
    # Stata/SPSS: column -> {code: label} of the value labels written (see _value_codes).
    value_labels: dict[str, dict[int, str]] = field(default_factory=dict)


CSV_CHUNK_ROWS = 100_000  # rows per piece of a streamed CSV/TSV file


# --------------------------------------------------------------------------- public API


def neutralize_formulas(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Return a copy of ``df`` with formula-like string cells prefixed by ``'``.

    See the module docstring for the rule. Column names are not changed here (the
    exporters do that separately and report it as a rename). Returns the copy and the
    number of cells changed.
    """
    out, counts = _map_text_cells(df, _guard_formula)
    return out, sum(counts.values())


def unneutralize_text(s: str) -> str:
    """Undo :func:`neutralize_formulas` on one cell read back from a Textlab file.

    Removes the apostrophe only where the exporter would have put one (``'`` followed by
    a formula prefix), so a file written by Textlab reads back as the text it held. A
    text that really started with ``'=`` loses that apostrophe: the price of a CSV that
    spreadsheets open safely.
    """
    if isinstance(s, str) and s.startswith("'") and _guard_formula(s[1:]) is not None:
        return s[1:]
    return s


def format_from_path(path: str | os.PathLike[str]) -> str:
    """The export format for ``path``'s extension, or a TextlabError listing the formats."""
    suffix = Path(path).suffix.lower().lstrip(".")
    fmt = _FORMAT_ALIASES.get(suffix, suffix)
    if fmt in EXPORT_FORMATS:
        return fmt
    supported = ", ".join("." + f for f in EXPORT_FORMATS)
    what = f"the extension '.{suffix}' is not supported" if suffix else "it has no extension"
    raise TextlabError(f"Cannot export to '{path}': {what}. Use one of: {supported}.")


def export_table(
    df: pd.DataFrame,
    fmt: str,
    *,
    name: str = "textlab_export",
    bom: bool = False,
    neutralize: bool = True,
    codebook: dict | Any | None = None,
    runs: list[dict] | None = None,
    value_label_columns: Iterable[str] | None = None,
    date_columns: Iterable[str] | None = None,
    date_order: str | None = None,
    estimates: pd.DataFrame | None = None,
    methods: str | None = None,
) -> ExportResult:
    """Export ``df`` to ``fmt`` (one of :data:`EXPORT_FORMATS`) and return the bytes.

    ``name`` is the file name without extension. ``bom`` applies to CSV/TSV, ``neutralize``
    to CSV/TSV/XLSX; ``codebook`` and ``runs`` are written as extra sheets (XLSX) or
    schema metadata (Parquet) and ignored by the other formats (export them with the
    codebook module and :func:`manifest_bytes`). ``value_label_columns`` names the text
    columns that become labelled integers in Stata/SPSS, in addition to Categoricals.
    ``date_columns`` names the columns recognised as dates (the corpus's date column):
    held as text, they are written as real dates to Stata, SPSS and Excel, read in
    ``date_order`` ("day-first"/"month-first", the project's; None: the order the column
    shows). ``estimates`` (the long table of ``analysis.inference``) and ``methods`` (the
    paragraph of ``analysis.provenance.methods_paragraph``) become the XLSX sheets
    ``estimates`` and ``methods``, their cells neutralised like the codebook's; the other
    formats ignore them (write the table itself with ``export_table(estimates, "csv")``,
    which neutralises the same way, and the paragraph as a text file).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"export_table needs a pandas DataFrame, got {type(df).__name__}")
    fmt = _normalize_format(fmt)
    frame = _prepare(df)
    result = ExportResult(data=b"", fmt=fmt, filename=_filename(name, fmt), mime=MIME_TYPES[fmt])
    labelled = _default_label_columns(runs) if value_label_columns is None else tuple(value_label_columns)
    dates = dict.fromkeys(date_columns or (), date_order)  # column -> its day/month order
    try:
        if fmt in ("csv", "tsv"):
            result.data = _to_delimited(frame, "," if fmt == "csv" else "\t", bom, neutralize, result)
        elif fmt == "xlsx":
            result.data = _to_xlsx(frame, neutralize, codebook, runs, dates, result, estimates, methods)
        elif fmt == "parquet":
            result.data = _to_parquet(frame, codebook, runs, result)
        elif fmt == "dta":
            result.data = _to_stata(frame, name, labelled, dates, runs, result)
        else:
            result.data = _to_sav(frame, name, labelled, dates, runs, result)
    except TextlabError:
        raise
    except (ValueError, TypeError, NotImplementedError, OverflowError) as exc:
        # Something in the data this format cannot hold: say so in the user's terms.
        raise TextlabError(
            f"Could not write the table as {_FORMAT_NAMES[fmt]}: {exc}. "
            "CSV and Parquet accept any column types."
        ) from exc
    return result


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], **kw: Any) -> ExportResult:
    """Export ``df`` to ``path`` (format from the extension), replacing the file atomically.

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``, so a reader never sees half a file and a failed export leaves the
    previous file intact. Keyword arguments are those of :func:`export_table`.
    """
    path = Path(path)
    fmt = format_from_path(path)
    kw.setdefault("name", path.stem)
    if fmt in ("csv", "tsv") and isinstance(df, pd.DataFrame):
        # Streamed: the file is written piece by piece (see _delimited_pieces); the other
        # options of export_table do not apply to CSV.
        result = ExportResult(data=b"", fmt=fmt, filename=path.name, mime=MIME_TYPES[fmt])
        _atomic_write(path, _delimited_pieces(_prepare(df), "," if fmt == "csv" else "\t", kw.get("bom", False),
                                              kw.get("neutralize", True), result))
        return result
    result = export_table(df, fmt, **kw)
    _atomic_write(path, result.data)
    result.filename = path.name
    return result


def manifest_bytes(manifests: list[dict] | dict) -> bytes:
    """Run manifests as pretty UTF-8 JSON (non-ASCII kept, datetimes etc. as strings)."""
    text = json.dumps(_jsonable(manifests), indent=2, ensure_ascii=False, default=str)
    return (text + "\n").encode("utf-8")


# --------------------------------------------------------------------------- helpers


def _normalize_format(fmt: str) -> str:
    key = str(fmt).lower().lstrip(".")
    key = _FORMAT_ALIASES.get(key, key)
    if key not in EXPORT_FORMATS:
        raise TextlabError(
            f"Unknown export format '{fmt}'. Use one of: {', '.join(EXPORT_FORMATS)}."
        )
    return key


def _filename(name: str, fmt: str) -> str:
    # A download name, not a path: drop folders and characters that browsers/OSes refuse.
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", str(name)).strip(" .") or "textlab_export"
    if stem.lower().endswith("." + fmt):
        stem = stem[: -len(fmt) - 1]
    return f"{stem}.{fmt}"


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Shallow copy with string column names and a plain RangeIndex (never written)."""
    out = df.copy(deep=False)
    out.columns = [_column_label(c) for c in df.columns]
    out.index = pd.RangeIndex(len(out))
    return out


def _column_label(c: Any) -> str:
    if isinstance(c, tuple):  # MultiIndex columns
        return "_".join(str(p) for p in c if str(p) != "")
    return str(c)


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, pd.StringDtype)


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _columns_summary(counts: Counter) -> str:
    return ", ".join(f"{col} ({n:,})" for col, n in counts.items())


def _map_text_cells(
    df: pd.DataFrame, fn: Callable[[str], str | None]
) -> tuple[pd.DataFrame, Counter]:
    """Apply ``fn`` to every string cell; ``fn`` returns the new string or None (keep).

    Works on object, string and categorical columns, by position (duplicate names are
    fine). Returns a new frame (shallow copy, changed columns replaced) and the number
    of changed cells per column name.
    """
    out = df.copy(deep=False)
    counts: Counter = Counter()
    for i, col_name in enumerate(df.columns):
        col = df.iloc[:, i]
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = list(col.cat.categories)
            new = [fn(c) if isinstance(c, str) else None for c in cats]
            changed = [j for j, v in enumerate(new) if v is not None]
            if not changed:
                continue
            counts[col_name] += int(np.isin(col.cat.codes.to_numpy(), changed).sum())
            renamed = [v if v is not None else c for c, v in zip(cats, new)]
            if len(set(renamed)) == len(renamed):
                out.isetitem(i, col.cat.rename_categories(renamed))
                continue
            col = col.astype(object)  # categories would collide: fall through, per cell
        elif not _is_text(col):
            continue
        values = col.to_numpy(dtype=object)
        changed_vals = {}
        for j, v in enumerate(values):
            if isinstance(v, str):
                nv = fn(v)
                if nv is not None:
                    changed_vals[j] = nv
        if changed_vals:
            values = values.copy()
            for j, nv in changed_vals.items():
                values[j] = nv
            dtype = col.dtype if _is_text(col) else object
            out.isetitem(i, pd.Series(values, index=col.index, dtype=dtype, name=col_name))
            counts[col_name] += len(changed_vals)
    return out, counts


def _guard_formula(s: str) -> str | None:
    if s.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER_RE.fullmatch(s):
        return "'" + s
    return None


def _neutralize_all(df: pd.DataFrame, result: ExportResult) -> pd.DataFrame:
    """Neutralise the cells and headers of a table and report it.

    Header changes show up in ``result.renamed`` through the caller, which compares the
    names before and after.
    """
    df, counts = _map_text_cells(df, _guard_formula)
    headers = [c for c in df.columns if _guard_formula(c) is not None]
    df.columns = [_guard_formula(c) or c for c in df.columns]
    _report_neutralized(counts, headers, result)
    return df


def _report_neutralized(counts: Counter, headers: list[str], result: ExportResult) -> None:
    if counts:
        result.warnings.append(
            f"{sum(counts.values()):,} text cells starting with =, +, -, @, tab or carriage "
            f"return were prefixed with an apostrophe so spreadsheets show them as text, "
            f"not formulas; by column: {_columns_summary(counts)}. Turn formula protection "
            "off (neutralize=False) to keep them verbatim."
        )
    if headers:
        result.warnings.append(
            "Column names starting with a formula character were prefixed with an "
            f"apostrophe: {', '.join(headers)}."
        )


def _naive_datetimes(df: pd.DataFrame, result: ExportResult, fmt_name: str) -> pd.DataFrame:
    """Excel, Stata and SPSS have no time zones: keep the local wall-clock time."""
    out = df.copy(deep=False)
    zoned = []
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            out.isetitem(i, col.dt.tz_localize(None))
            zoned.append(f"{c} ({col.dt.tz})")
    if zoned:
        result.warnings.append(
            f"{fmt_name} files have no time zones; these columns were written as local "
            f"times without their zone: {', '.join(zoned)}."
        )
    return out


def _parse_date_column(col: pd.Series, order: str | None, name: str) -> pd.Series:
    # The corpus's own reader, so an export reads a date exactly as the app's charts do;
    # Categorical values are read as their text.
    return parse_dates(pd.Series(col.to_numpy(dtype=object), index=col.index), order, name)


def _real_dates(df: pd.DataFrame, date_columns: dict[str, str | None], result: ExportResult,
                fmt_name: str) -> tuple[pd.DataFrame, dict[int, str]]:
    """Date columns as datetime64, and which datetime columns hold dates only.

    A text column named in ``date_columns`` is parsed in its order; it becomes a datetime
    column only when every non-empty value is a date (otherwise it stays text, with a
    warning: nothing is lost). Numeric columns (years) stay numbers. Returns the frame and, for every
    datetime64 column, ``"date"`` (all values at midnight) or ``"datetime"``: formats with
    a date type (Stata %td, SPSS DATE, an Excel date format) then use it.
    """
    out = df.copy(deep=False)
    kinds: dict[int, str] = {}
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if c in date_columns and (_is_text(col) or isinstance(col.dtype, pd.CategoricalDtype)):
            values = col.astype(object)
            present = values.map(lambda v: not _is_missing(v) and str(v).strip() != "")
            if present.any():
                try:
                    parsed = _parse_date_column(values, date_columns[c], str(c))
                except TextlabError as exc:  # e.g. a day/month order the parser cannot decide
                    result.warnings.append(f"The date column '{c}' was written to {fmt_name} as text, "
                                           f"not as dates: {exc}")
                    continue
                bad = values[present & parsed.isna()]
                if len(bad):
                    examples = ", ".join(repr(str(v)) for v in bad.drop_duplicates().head(3))
                    result.warnings.append(
                        f"The date column '{c}' was written to {fmt_name} as text, not as dates: "
                        f"{len(bad):,} of its values are not dates (e.g. {examples})."
                    )
                    continue
                col = parsed.where(present)
                out.isetitem(i, col)
        if pd.api.types.is_datetime64_dtype(col.dtype):
            known = col.dropna()
            midnight = len(known) > 0 and bool((known == known.dt.normalize()).all())
            kinds[i] = "date" if midnight else "datetime"
    return out, kinds


def _as_date_objects(col: pd.Series) -> pd.Series:
    """datetime64 at midnight -> datetime.date objects (None where missing): the type that
    pyreadstat writes as SPSS DATE and openpyxl as an Excel date without a time."""
    return pd.Series([None if pd.isna(v) else v.date() for v in col], index=col.index, dtype=object,
                     name=col.name)


def _jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf -> null, dates as ISO text."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [_jsonable(v) for v in items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- CSV / TSV


def _to_delimited(df: pd.DataFrame, sep: str, bom: bool, neutralize: bool, result: ExportResult) -> bytes:
    return b"".join(_delimited_pieces(df, sep, bom, neutralize, result))


def _delimited_pieces(df: pd.DataFrame, sep: str, bom: bool, neutralize: bool, result: ExportResult,
                      rows: int = CSV_CHUNK_ROWS) -> Iterator[bytes]:
    """The CSV/TSV file in pieces of ``rows`` rows: ``write_table`` writes each piece as it is
    made, so a million-row export holds one piece of text at a time, not the whole file
    (1M rows as one string took about 1 GB more). The warnings come once, after the last
    piece, with the counts of all pieces."""
    if bom:
        yield codecs.BOM_UTF8
    counts: Counter = Counter()
    header = list(df.columns)
    if neutralize:
        header = [_guard_formula(c) or c for c in df.columns]
        result.renamed.update({o: n for o, n in zip(df.columns, header) if o != n})
    for start in range(0, max(len(df), 1), rows):
        piece = df.iloc[start:start + rows]
        if neutralize:
            piece, changed = _map_text_cells(piece, _guard_formula)
            counts.update(changed)
        piece = piece.set_axis(header, axis=1)
        text = piece.to_csv(index=False, header=start == 0, sep=sep, lineterminator="\n", na_rep="")
        if "\r" in text:
            text = _quote_bare_cr(text, sep)
        yield text.encode("utf-8")
    if neutralize:
        _report_neutralized(counts, [o for o, n in zip(df.columns, header) if o != n], result)


def _quote_bare_cr(text: str, sep: str) -> str:
    """Quote the fields that hold a carriage return but were written unquoted.

    Python's csv writer (under pandas) quotes a field for the characters of the line
    terminator only, so with ``"\\n"`` a lone ``\\r`` stays bare and most readers (pandas,
    Excel, Textlab's own) end the row there. An unquoted field holds no quote character,
    delimiter or ``\\n`` (any of them makes the writer quote it), so such a field is a run of
    other characters outside quotes: wrap it in quotes, leaving quoted fields as they are.
    """
    d = re.escape(sep)
    # Unquoted fields only match where a field starts (after a delimiter, a line end or at
    # the start), and without backtracking, so this stays linear in the size of the file.
    field_re = re.compile(rf'"[^"]*(?:""[^"]*)*"|(?<![^{d}\n])[^"{d}\n\r]*\r[^"{d}\n]*')
    return field_re.sub(lambda m: m.group(0) if m.group(0).startswith('"') else f'"{m.group(0)}"', text)


# --------------------------------------------------------------------------- XLSX


def _codebook_frame(codebook: Any) -> pd.DataFrame:
    """One row per code: label, definition, include, exclude, examples (' | '-joined)."""
    if hasattr(codebook, "to_dict"):
        codebook = codebook.to_dict()
    elif dataclasses.is_dataclass(codebook) and not isinstance(codebook, type):
        codebook = dataclasses.asdict(codebook)
    codes = codebook.get("codes", []) if isinstance(codebook, dict) else list(codebook)
    rows = []
    for code in codes:
        if dataclasses.is_dataclass(code) and not isinstance(code, type):
            code = dataclasses.asdict(code)
        elif isinstance(code, str):
            code = {"label": code}
        row = {}
        for key in ("label", "definition", "include", "exclude", "examples"):
            row[key] = _join_values(code.get(key))
        for key, value in code.items():  # keep any extra fields the codebook carries
            if key not in row:
                row[key] = _join_values(value)
        rows.append(row)
    columns = ["label", "definition", "include", "exclude", "examples"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


def _join_values(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " | ".join(str(v) for v in value if not _is_missing(v))
    if isinstance(value, dict):
        return json.dumps(_jsonable(value), ensure_ascii=False, default=str)
    return value


def _runs_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per manifest; nested values (parameters, versions, ...) as JSON text."""
    rows = []
    for manifest in runs:
        row = {}
        for key, value in _jsonable(dict(manifest)).items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            row[key] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=list(dict.fromkeys(k for r in rows for k in r)))


_EXCEL_SCALARS = (str, int, float, bool, datetime, date, time, timedelta, Decimal, np.generic)


def _excel_scalars(df: pd.DataFrame) -> pd.DataFrame:
    """Object cells openpyxl cannot store (lists, dicts, ...) become JSON/text."""
    out = df.copy(deep=False)
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        if col.dtype != object:
            continue
        bad = [not (_is_missing(v) or isinstance(v, _EXCEL_SCALARS)) for v in col]
        if any(bad):
            out.isetitem(i, pd.Series(
                [_cell_text(v) if b else v for v, b in zip(col, bad)], index=col.index, dtype=object,
                name=col.name))
    return out


def _cell_text(v: Any) -> str:
    if isinstance(v, (dict, list, tuple, set, np.ndarray)):
        return json.dumps(_jsonable(v), ensure_ascii=False, default=str)
    return str(v)


def _methods_frame(methods: str) -> pd.DataFrame:
    """The paragraph one line per row (blank lines kept: they separate its paragraphs)."""
    lines = str(methods).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    return pd.DataFrame({"methods": [line if line.strip() else None for line in lines]}, dtype=object)


def _to_xlsx(df: pd.DataFrame, neutralize: bool, codebook: Any, runs: list[dict] | None,
             dates: dict[str, str | None], result: ExportResult, estimates: pd.DataFrame | None = None,
             methods: str | None = None) -> bytes:
    if len(df) > EXCEL_MAX_ROWS:
        raise TextlabError(
            f"The table has {len(df):,} rows but an Excel sheet holds at most "
            f"{EXCEL_MAX_ROWS:,}. Export to CSV or Parquet instead."
        )
    if df.shape[1] > EXCEL_MAX_COLUMNS:
        raise TextlabError(
            f"The table has {df.shape[1]:,} columns but an Excel sheet holds at most "
            f"{EXCEL_MAX_COLUMNS:,}. Export to CSV or Parquet instead."
        )
    sheets = {"data": df}
    if codebook is not None:
        sheets["codebook"] = _codebook_frame(codebook)
    if runs:
        sheets["runs"] = _runs_frame(runs)
    if estimates is not None:
        sheets["estimates"] = _prepare(estimates)
    if methods:
        sheets["methods"] = _methods_frame(methods)

    illegal: Counter = Counter()
    guarded: Counter = Counter()
    cut: Counter = Counter()
    for sheet, frame in sheets.items():
        frame = _excel_scalars(frame)
        if sheet == "data":
            frame = _naive_datetimes(frame, result, "Excel")
            frame, date_kinds = _real_dates(frame, dates, result, "Excel")
            for i, kind in date_kinds.items():
                if kind == "date":  # written with a date format, not "YYYY-MM-DD HH:MM:SS"
                    frame.isetitem(i, _as_date_objects(frame.iloc[:, i]))
            # Control characters in headers would make the file unreadable too.
            frame.columns = [_ILLEGAL_XML_RE.sub("", c) for c in frame.columns]
        # Order matters: strip control characters first ("\x01=cmd" must still be caught),
        # neutralise next, cut last (the apostrophe counts toward the limit).
        frame, n = _map_text_cells(frame, lambda s: _ILLEGAL_XML_RE.sub("", s) if _ILLEGAL_XML_RE.search(s) else None)
        illegal += _prefixed(n, sheet)
        if neutralize:
            if sheet == "data":
                frame = _neutralize_all(frame, result)
            else:
                frame, n = _map_text_cells(frame, _guard_formula)
                guarded += _prefixed(n, sheet)
        frame, n = _map_text_cells(
            frame, lambda s: s[:EXCEL_MAX_CELL_CHARS] if len(s) > EXCEL_MAX_CELL_CHARS else None)
        cut += _prefixed(n, sheet)
        sheets[sheet] = frame
    if guarded:
        result.warnings.append(
            f"{sum(guarded.values()):,} cells of the {'/'.join(s for s in sheets if s != 'data')} sheets starting with a "
            f"formula character were prefixed with an apostrophe ({_columns_summary(guarded)})."
        )
    if illegal:
        result.warnings.append(
            f"Removed control characters that Excel files cannot contain from "
            f"{sum(illegal.values()):,} cells; by column: {_columns_summary(illegal)}."
        )
    if cut:
        result.warnings.append(
            f"{sum(cut.values()):,} cells were longer than Excel's limit of "
            f"{EXCEL_MAX_CELL_CHARS:,} characters and were cut; by column: "
            f"{_columns_summary(cut)}. Export to CSV or Parquet to keep the full text."
        )
    result.renamed.update({o: n for o, n in zip(df.columns, sheets["data"].columns) if o != n})

    # openpyxl writes "" like a missing value (an empty cell) and a carriage return raw, which
    # every XML parser reads back as "\n": mark empty texts, then fix both in the sheet XML.
    marker = f"\ue000textlab-empty-{uuid.uuid4().hex}\ue000"
    has_cr = any(any("\r" in c for c in frame.columns) or _any_text(frame, lambda v: "\r" in v)
                 for frame in sheets.values())
    data_frame, empties = _map_text_cells(sheets["data"], lambda v: marker if v == "" else None)
    n_empty = sum(empties.values())

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        for sheet, frame in sheets.items():
            (data_frame if sheet == "data" else frame).to_excel(
                writer, sheet_name=sheet, index=False, freeze_panes=(1, 0))
            ws = writer.sheets[sheet]
            _no_formulas(ws, frame)
            _set_widths(ws, frame)
            if sheet == "methods":  # a paragraph per cell: wide and wrapped, not cut off at the edge
                _wrap_column(ws, 1, width=110)
    data = buf.getvalue()
    if has_cr or n_empty:
        data = _patch_sheet_xml(data, marker if n_empty else None)
    return data


def _any_text(df: pd.DataFrame, test: Callable[[str], bool]) -> bool:
    """Whether any string cell (or category) of ``df`` passes ``test``."""
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col if _is_text(col) else ()
        if any(isinstance(v, str) and test(v) for v in values):
            return True
    return False


def _patch_sheet_xml(data: bytes, empty_marker: str | None) -> bytes:
    """Rewrite the worksheets of an .xlsx: carriage returns as ``&#13;`` (which XML parsers
    keep, unlike a raw CR) and marked empty texts as empty strings (``<t></t>``, a text cell
    that Excel and openpyxl read as "", not a blank cell).

    A raw CR can only be in cell text here: the XML writer escapes it in attributes.
    """
    marker = None if empty_marker is None else f"<t>{empty_marker}</t>".encode("utf-8")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                raw = raw.replace(b"\r", b"&#13;")
                if marker is not None:
                    raw = raw.replace(marker, b"<t></t>")
            dst.writestr(info, raw)
    return out.getvalue()


def _prefixed(counts: Counter, sheet: str) -> Counter:
    return counts if sheet == "data" else Counter({f"{sheet}:{k}": v for k, v in counts.items()})


def _no_formulas(ws: Any, frame: pd.DataFrame) -> None:
    """openpyxl stores any string starting with '=' as a formula; store it as text.

    Only reachable with neutralize=False (or a header), so only the affected columns are
    walked.
    """
    for i, c in enumerate(frame.columns, start=1):
        header = ws.cell(row=1, column=i)
        if header.data_type == "f":
            header.data_type = "s"
        col = frame.iloc[:, i - 1]
        if isinstance(col.dtype, pd.CategoricalDtype):
            has_eq = any(isinstance(v, str) and v.startswith("=") for v in col.cat.categories)
        elif _is_text(col):
            has_eq = any(isinstance(v, str) and v.startswith("=") for v in col)
        else:
            has_eq = False
        if has_eq:
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                if cell.data_type == "f":
                    cell.data_type = "s"


def _wrap_column(ws: Any, column: int, *, width: int) -> None:
    from openpyxl.styles import Alignment
    from openpyxl.utils import get_column_letter

    ws.column_dimensions[get_column_letter(column)].width = width
    for (cell,) in ws.iter_rows(min_row=2, min_col=column, max_col=column):
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _set_widths(ws: Any, frame: pd.DataFrame, sample: int = 500) -> None:
    """Fit widths to the header and the first rows; long-text columns wide but capped."""
    from openpyxl.utils import get_column_letter

    head = frame.head(sample)
    for i, c in enumerate(frame.columns):
        lengths = [len(str(v)) for v in head.iloc[:, i] if not _is_missing(v)]
        longest = max(lengths, default=0)
        width = max(len(str(c)), min(longest, 60)) + 2
        ws.column_dimensions[get_column_letter(i + 1)].width = max(8, min(width, 62))


# --------------------------------------------------------------------------- Parquet


def _unique_columns(df: pd.DataFrame, result: ExportResult) -> pd.DataFrame:
    """Parquet needs unique names: later duplicates get _2, _3, ... (the first keeps its name)."""
    seen: set[str] = set(df.columns)
    cols, changes = [], []
    for c in df.columns:
        new, k = c, 2
        if c in cols:
            while new in seen:
                new, k = f"{c}_{k}", k + 1
            seen.add(new)
            changes.append(f"{c} -> {new}")
            result.renamed[c] = new  # the first keeps the name; a mapping holds one per name
        cols.append(new)
    if changes:
        df = df.copy(deep=False)
        df.columns = cols
        result.warnings.append(f"Duplicate column names were made unique: {', '.join(changes)}.")
    return df


def _as_strings(col: pd.Series) -> pd.Series:
    return pd.Series([None if _is_missing(v) else str(v) for v in col], index=col.index,
                     dtype=object, name=col.name)


def _to_parquet(df: pd.DataFrame, codebook: Any, runs: list[dict] | None, result: ExportResult) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _unique_columns(df, result).copy(deep=False)
    mixed = []
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if col.dtype != object:
            continue
        try:
            pa.array(col, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            df.isetitem(i, _as_strings(col))
            mixed.append(c)
    if mixed:
        result.warnings.append(
            f"Columns holding mixed types were written as text: {', '.join(mixed)}."
        )
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    if codebook is not None:
        cb = codebook.to_dict() if hasattr(codebook, "to_dict") else codebook
        meta[b"textlab.codebook"] = json.dumps(_jsonable(cb), ensure_ascii=False, default=str).encode("utf-8")
    if runs:
        meta[b"textlab.runs"] = manifest_bytes(runs)
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


# --------------------------------------------------------------------------- Stata / SPSS


def _sanitize_names(names: list[str], *, max_len: int, reserved: frozenset[str],
                    valid: re.Pattern[str]) -> list[str]:
    """Valid, unique (case-insensitively) variable names; valid names are kept as they are.

    Invalid names are transliterated to ASCII, non-word runs become '_' (leading and
    trailing ones dropped), a leading digit gets a 'v' prefix, reserved words a '_'
    suffix, then the name is cut and numbered (_2, _3, ...) until unique.
    """
    taken: set[str] = set()
    keep = []
    for n in names:
        ok = bool(valid.fullmatch(n)) and n.lower() not in reserved and n.lower() not in taken
        keep.append(ok)
        if ok:
            taken.add(n.lower())
    out = []
    for i, (n, ok) in enumerate(zip(names, keep)):
        if ok:
            out.append(n)
            continue
        s = unicodedata.normalize("NFKD", n).encode("ascii", "ignore").decode("ascii")
        s = _NAME_JUNK_RE.sub("_", s).strip("_") or f"v{i + 1}"
        if not s[0].isalpha():
            s = "v" + s
        s = s[:max_len].rstrip("_")
        if s.lower() in reserved:
            s = (s + "_")[:max_len]
        base, k = s.rstrip("_") or s, 2
        while s.lower() in taken:
            suffix = f"_{k}"
            s, k = base[: max_len - len(suffix)] + suffix, k + 1
        taken.add(s.lower())
        out.append(s)
    return out


def _rename_for(df: pd.DataFrame, names: list[str], result: ExportResult, fmt_name: str) -> pd.DataFrame:
    changes = {o: n for o, n in zip(df.columns, names) if o != n}
    if changes:
        result.renamed.update(changes)
        result.warnings.append(
            f"Column names were changed to valid {fmt_name} names (originals kept as "
            f"variable labels): " + ", ".join(f"{o} -> {n}" for o, n in changes.items()) + "."
        )
    out = df.copy(deep=False)
    out.columns = names
    return out


def _coerce_objects(df: pd.DataFrame, result: ExportResult, fmt_name: str, *, dates_as_datetime: bool
                    ) -> tuple[pd.DataFrame, list[str]]:
    """Give every object column one type the format can store.

    All-missing text columns become numeric missing (Stata cannot store them as text);
    numbers, booleans and datetimes held as objects get their proper dtype; anything else
    mixed becomes text (reported). Returns the frame and the columns that held dates.
    """
    out = df.copy(deep=False)
    mixed, date_cols = [], []
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if not _is_text(col):
            continue
        if len(col) and col.isna().all():
            out.isetitem(i, pd.Series(np.nan, index=col.index, name=c))
            continue
        if col.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind in ("string", "empty"):
            continue
        if kind == "boolean":
            out.isetitem(i, col.map(lambda v: np.nan if _is_missing(v) else float(bool(v))).astype(float))
        elif kind in ("integer", "floating", "mixed-integer-float", "decimal"):
            out.isetitem(i, pd.to_numeric(col, errors="coerce"))
        elif kind == "date":
            date_cols.append(c)
            if dates_as_datetime:
                out.isetitem(i, pd.to_datetime(col))
        elif kind == "datetime":
            out.isetitem(i, pd.to_datetime(col))
        else:
            out.isetitem(i, _as_strings(col))
            mixed.append(c)
    if mixed:
        result.warnings.append(
            f"Columns holding mixed types were written to {fmt_name} as text: {', '.join(mixed)}."
        )
    return out, date_cols


def _big_ints_as_text(df: pd.DataFrame, result: ExportResult, fmt_name: str) -> pd.DataFrame:
    """Integers beyond 2**53 (e.g. post ids) would be rounded as doubles: write them as text."""
    out = df.copy(deep=False)
    moved = []
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_integer_dtype(col.dtype):
            continue
        if ((col > 2**53) | (col < -(2**53))).any():
            out.isetitem(i, _as_strings(col))
            moved.append(c)
    if moved:
        result.warnings.append(
            f"Integer columns with values too large for {fmt_name}'s numbers were written as "
            f"text so no digits are lost: {', '.join(moved)}."
        )
    return out


def _label_columns(df: pd.DataFrame, wanted: tuple[str, ...], original: list[str]) -> list[int]:
    """Positions of columns that get value labels: Categoricals and listed text columns."""
    wanted_set = set(wanted)
    positions = []
    for i, orig in enumerate(original):
        col = df.iloc[:, i]
        if isinstance(col.dtype, pd.CategoricalDtype):
            positions.append(i)
        elif orig in wanted_set and _is_text(col) and col.notna().any():
            positions.append(i)
    return positions


def _default_label_columns(runs: list[dict] | None) -> tuple[str, ...]:
    """The text columns written as labelled integers by default: the single-label columns each
    run's task declared (``label_columns`` less ``multi_label_columns`` in its manifest, written
    by ``analysis.jobs``), and the built-in ones for runs (or tables) without that record."""
    declared: list[str] = list(VALUE_LABEL_COLUMNS)
    for manifest in runs or ():
        if not isinstance(manifest, dict):
            continue
        multi = {str(c) for c in manifest.get("multi_label_columns") or ()}
        declared += [str(c) for c in manifest.get("label_columns") or () if str(c) not in multi]
    return tuple(dict.fromkeys(declared))


def _declared_labels(runs: list[dict] | None) -> dict[str, list[str]]:
    """Label columns and their fixed label order, as each run's task declared them when the
    run finished (``label_sets`` in its manifest, written by ``analysis.jobs``; export reads
    the record and never asks the task layer above it)."""
    declared: dict[str, list[str]] = {}
    for manifest in runs or ():
        sets = manifest.get("label_sets") if isinstance(manifest, dict) else None
        if not isinstance(sets, dict):
            continue  # an older manifest: sorted values then, with a warning
        for column, labels in sets.items():
            if isinstance(labels, list) and labels:
                declared.setdefault(str(column), list(dict.fromkeys(str(v) for v in labels)))
    return declared


def _value_codes(df: pd.DataFrame, positions: list[int], original: list[str],
                 declared: dict[str, list[str]], result: ExportResult) -> dict[int, dict[str, int]]:
    """label -> code (1, 2, ...) for each label column.

    Codes follow the label set the column's task declares, so a code means the same label
    in every export, whichever labels occur; values outside it are numbered after it (and
    reported). Columns no task declares are numbered in the order of their categories
    (Categoricals) or of their sorted values, which depends on the data: reported too.
    """
    out: dict[int, dict[str, int]] = {}
    undeclared, extra = [], []
    for i in positions:
        col = df.iloc[:, i]
        if isinstance(col.dtype, pd.CategoricalDtype):
            present = [str(c) for c in col.cat.categories]
        else:
            present = sorted({str(v) for v in col if not _is_missing(v)})
        order = declared.get(original[i])
        if order is None:
            undeclared.append(original[i])
            order = present
        else:
            outside = sorted(set(present) - set(order))
            if outside:
                extra.append(f"{original[i]} ({', '.join(outside)})")
            order = order + outside
        out[i] = {label: k for k, label in enumerate(order, start=1)}
        result.value_labels[original[i]] = {k: label for label, k in out[i].items()}
    if extra:
        result.warnings.append(
            "Values that are not among the labels their analysis declares were numbered after "
            f"the declared ones: {'; '.join(extra)}."
        )
    if undeclared:
        result.warnings.append(
            f"No analysis declares the labels of {', '.join(undeclared)}: their value labels are "
            "numbered 1, 2, ... in sorted order of the values in this file (or the Categorical's "
            "order), so a code can stand for another label in another export."
        )
    return out


def _coded(col: pd.Series, mapping: dict[str, int]) -> pd.Series:
    """The codes of a label column: integers, or floats with NaN where a value is missing."""
    codes = pd.Series([np.nan if _is_missing(v) else float(mapping[str(v)]) for v in col.astype(object)],
                      index=col.index, name=col.name)
    if codes.notna().all():
        dtype = "int8" if len(mapping) <= 100 else "int16" if len(mapping) <= 32_740 else "int32"
        return codes.astype(dtype)  # Stata's byte/int hold 100/32,740 non-missing values
    return codes


def _cut_bytes(s: str, limit: int) -> str | None:
    if len(s) * 4 <= limit:  # cannot exceed the limit even in the worst UTF-8 case
        return None
    raw = s.encode("utf-8")
    if len(raw) <= limit:
        return None
    return raw[:limit].decode("utf-8", errors="ignore")  # never split a character


def _report_missing_text(df: pd.DataFrame, original: list[str], result: ExportResult, fmt_name: str) -> None:
    """Stata and SPSS have no missing value for text: a missing text is written as "", and
    can no longer be told from an empty one. Say so, per column, with both counts."""
    merged = []
    for i, c in enumerate(original):
        col = df.iloc[:, i]
        if not _is_text(col):
            continue
        n_missing = int(col.isna().sum())
        if n_missing:
            n_empty = int((col.astype(object) == "").sum())
            merged.append(f"{c} ({n_missing:,} missing, {n_empty:,} empty)")
    if merged:
        result.warnings.append(
            f"{fmt_name} has no missing value for text: missing texts were written as empty ones, "
            f"so the two cannot be told apart in the file: {', '.join(merged)}. "
            "Export to Parquet or Excel to keep it."
        )


def _to_stata(df: pd.DataFrame, name: str, labelled: tuple[str, ...], dates: dict[str, str | None],
              runs: list[dict] | None, result: ExportResult) -> bytes:
    original = list(df.columns)
    names = _sanitize_names(original, max_len=32, reserved=_STATA_RESERVED,
                            valid=re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}"))
    df = _naive_datetimes(df, result, "Stata")
    df, date_kinds = _real_dates(df, dates, result, "Stata")
    df = _big_ints_as_text(df, result, "Stata")
    label_pos = _label_columns(df, labelled, original)
    codes = _value_codes(df, label_pos, original, _declared_labels(runs), result)
    for i, mapping in codes.items():
        df.isetitem(i, _coded(df.iloc[:, i], mapping))
    value_labels = {names[i]: {k: label for label, k in mapping.items()} for i, mapping in codes.items()}
    df, date_cols = _coerce_objects(df, result, "Stata", dates_as_datetime=True)
    _report_missing_text(df, original, result, "Stata")
    df = _rename_for(df, names, result, "Stata")
    convert_dates = {names[original.index(c)]: "td" for c in date_cols}
    convert_dates.update({names[i]: "td" if kind == "date" else "tc" for i, kind in date_kinds.items()})
    strl = []
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if _is_text(col) and any(isinstance(v, str) and len(v.encode("utf-8")) > STATA_MAX_STR_BYTES
                                 for v in col):
            strl.append(c)
    variable_labels = {n: o[:80] for n, o in zip(names, original)}
    buf = io.BytesIO()
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        df.to_stata(buf, write_index=False, version=118, convert_dates=convert_dates or None,
                    value_labels=value_labels or None,
                    convert_strl=strl, variable_labels=variable_labels,
                    data_label=str(name)[:80])
    for w in caught:  # e.g. pandas' PossiblePrecisionLoss: pass on, first line only
        if not issubclass(w.category, (DeprecationWarning, FutureWarning, ResourceWarning)):
            result.warnings.append("Stata: " + " ".join(str(w.message).split()))
    return buf.getvalue()


def _to_sav(df: pd.DataFrame, name: str, labelled: tuple[str, ...], dates: dict[str, str | None],
            runs: list[dict] | None, result: ExportResult) -> bytes:
    import pyreadstat

    original = list(df.columns)
    names = _sanitize_names(original, max_len=64, reserved=_SPSS_RESERVED,
                            valid=re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}(?<!\.)"))
    df = _naive_datetimes(df, result, "SPSS")
    df, date_kinds = _real_dates(df, dates, result, "SPSS")
    for i, kind in date_kinds.items():
        if kind == "date":
            df.isetitem(i, _as_date_objects(df.iloc[:, i]))
    df = _big_ints_as_text(df, result, "SPSS")
    label_pos = _label_columns(df, labelled, original)
    codes = _value_codes(df, label_pos, original, _declared_labels(runs), result)
    value_labels, measure = {}, {}
    for i, mapping in codes.items():
        df.isetitem(i, _coded(df.iloc[:, i], mapping).astype(float))
        value_labels[names[i]] = {float(k): label for label, k in mapping.items()}
        measure[names[i]] = "nominal"
    df, _ = _coerce_objects(df, result, "SPSS", dates_as_datetime=False)
    _report_missing_text(df, original, result, "SPSS")
    spaced = Counter()
    for i, c in enumerate(original):
        col = df.iloc[:, i]
        if _is_text(col):
            n = sum(1 for v in col if isinstance(v, str) and v.endswith(" "))
            if n:
                spaced[c] = n
    if spaced:
        result.warnings.append(
            f"{sum(spaced.values()):,} text cells have trailing spaces, which SPSS does not keep (its "
            f"strings are padded with spaces, so readers strip them); by column: "
            f"{_columns_summary(spaced)}. Export to CSV, Parquet or Stata to keep them."
        )
    for i, col in enumerate(df.columns):
        if df.iloc[:, i].dtype == bool:
            df.isetitem(i, df.iloc[:, i].astype("int8"))
    df, cut = _map_text_cells(df, lambda s: _cut_bytes(s, SPSS_MAX_STRING_BYTES))
    if cut:
        result.warnings.append(
            f"{sum(cut.values()):,} cells were longer than SPSS's limit of "
            f"{SPSS_MAX_STRING_BYTES:,} bytes and were cut; by column: {_columns_summary(cut)}. "
            "Export to CSV or Parquet to keep the full text."
        )
    df = _rename_for(df, names, result, "SPSS")
    with tempfile.TemporaryDirectory(prefix="textlab_sav_") as tmp:
        path = os.path.join(tmp, "export.sav")
        pyreadstat.write_sav(
            df, path, file_label=str(name)[:64],
            column_labels={n: o[:255] for n, o in zip(names, original)},
            variable_value_labels=value_labels or None,
            variable_measure=measure or None,
        )
        return Path(path).read_bytes()


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or pieces of it made while writing) to ``path`` atomically."""
    folder = path.parent
    if not folder.is_dir():
        raise TextlabError(f"Cannot write {path}: the folder {folder} does not exist.")
    mode = _new_file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise TextlabError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            for piece in ([data] if isinstance(data, bytes) else data):
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, mode)  # mkstemp makes 0600 files; match what open() would make
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise TextlabError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
        raise


def _new_file_mode(path: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)  # replacing: keep the old permissions
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        # Reading the umask via os.umask() would briefly change it for all threads.
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    return 0o666 & ~umask
