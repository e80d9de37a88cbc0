"""Read input files into a validated :class:`Corpus` and describe their quality.

The journey is ``read_file`` (bytes -> DataFrame + ImportReport), ``suggest_columns``
(which column holds the texts, ids, groups, dates), ``build_corpus`` (validate the choice,
add ``doc_id``) and ``quality_report``. ``load_corpus`` chains the first three.

Principles:

- Every problem a researcher can cause is a :class:`CorpusError` whose message names the
  file, line or column and says what to do.
- Nothing is dropped silently: rows that cannot be read are listed in
  ``ImportReport.skipped`` with where and why; repairs are listed in ``warnings``.
- Cells are data: HTML, script tags and formula-like cells are kept verbatim (export and
  UI make them safe). Delimited text (CSV/TSV) is read as strings so ids like ``007``
  keep their zeros and an empty cell is ``""``; typed formats keep their types.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import sys
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from analysis.datetimes import date_note, numbers_as_dates, parse_date_strings, parse_dates
from analysis.errors import CorpusError
from analysis.textutil import token_counts, word_counts

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".csv", ".tsv", ".tab", ".txt", ".xlsx", ".xlsm", ".json", ".jsonl", ".ndjson",
    ".parquet", ".dta", ".sav", ".zip",
)
_FORMAT_OF_EXTENSION = {
    ".csv": "csv", ".tsv": "csv", ".tab": "csv", ".txt": "txt", ".xlsx": "xlsx",
    ".xlsm": "xlsx", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".dta": "dta", ".sav": "sav", ".zip": "zip",
}
_EXTENSION_HINTS = {
    ".xls": "save it from Excel as .xlsx (or export it as CSV)",
    ".ods": "save it as .xlsx or export it as CSV",
    ".docx": "save the text as .txt, or put the documents as .txt files in a .zip",
    ".pdf": "extract the text to .txt files first",
    ".gz": "unpack it first",
    ".sas7bdat": "export it from SAS as CSV or Stata (.dta)",
}
TXT_MODES = ("auto", "file", "line")
DELIMITERS = ",;\t|"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ZIP_DOCUMENT_EXTENSIONS = (".txt", ".md")
# Limits against zip bombs: one member, and the whole archive, unpacked; and how much a
# member may expand (text deflates 3-10x; a million zeros 1000x). The ratio is only checked
# for members past ZIP_RATIO_MIN_BYTES, so small repetitive files stay fine. The sizes keep
# an import within a few GB of memory (see the README's memory budget).
MAX_ZIP_MEMBER_BYTES = 256 << 20
MAX_ZIP_TOTAL_BYTES = 1 << 30
MAX_ZIP_RATIO = 100
ZIP_RATIO_MIN_BYTES = 1 << 20
_ZIP_CHUNK_BYTES = 1 << 20
# Wider tables are damaged or transposed exports; profiling a million columns takes hours.
MAX_COLUMNS = 10_000
DOC_ID_MIN_WIDTH = 6
# id_column value that asks for generated row ids (doc-000001, ...) instead of a column.
ROW_IDS = "none"
# Name the file's own doc_id column gets when it cannot be the ids (Textlab's doc_id is first).
FILE_DOC_ID = "file_doc_id"
_SNIFF_CHARS = 64_000
_ENCODING_SAMPLE_BYTES = 200_000
_MAX_LISTED = 10  # line numbers or values quoted in one message
_MAX_IDS = 50
_RECORD_BATCH = 100_000  # CSV rows per columnar batch while reading


@dataclass
class SkippedItem:
    """Something in the input that did not become a row: where it is and why."""

    where: str  # "line 17", "item 3", "archive member img/a.png"
    reason: str


@dataclass
class ImportReport:
    """What ``read_file`` did with a file."""

    source: str
    format: str  # csv, txt, xlsx, json, jsonl, parquet, dta, sav, zip
    encoding: str | None
    delimiter: str | None
    rows: int
    columns: list[str]
    skipped: list[SkippedItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ColumnRoles:
    """Suggested (or chosen) column for each role; ``None`` where nothing fits."""

    text: str | None = None
    id: str | None = None
    group: str | None = None
    date: str | None = None


@dataclass
class Corpus:
    """Texts with their metadata.

    ``data`` holds ``doc_id`` (unique strings) first, then every input column unchanged,
    in input row order, with a RangeIndex.
    """

    data: pd.DataFrame
    text_column: str
    id_column: str | None = None
    group_column: str | None = None
    date_column: str | None = None
    source: str = ""
    # What build_corpus decided on its own (e.g. the file's doc_id column became the ids).
    notes: list[str] = field(default_factory=list)
    # "day-first" or "month-first" for numeric dates; None: as the column shows.
    date_order: str | None = None

    @property
    def texts(self) -> list[str]:
        """The texts as strings; a missing value is ``""``."""
        column = self.data[self.text_column]
        return ["" if missing else str(value) for value, missing in zip(column.tolist(), column.isna().tolist())]

    @property
    def doc_ids(self) -> list[str]:
        return self.data["doc_id"].tolist()

    def __len__(self) -> int:
        return len(self.data)

    def dates(self) -> pd.Series:
        """The date column parsed to datetime64 (NaT where a value is not a date).

        Time-zone offsets are dropped after parsing, keeping local wall time (the local
        calendar day is what comparisons over time group by); a column mixing offsets is
        converted to UTC first. Numeric dates (04.03.2021) are read in ``date_order``, or
        in the order the whole column shows (a day above 12); a column that shows no order
        and is not written with dots is refused with a CorpusError that asks for the order.
        Whole numbers are years (2019) or Unix times (seconds or milliseconds).
        """
        if self.date_column is None:
            raise CorpusError("No date column is chosen for this corpus; choose the column that holds the dates.")
        return parse_dates(self.data[self.date_column], self.date_order, self.date_column).rename(self.date_column)


@dataclass
class QualityReport:
    """Data-quality figures for a corpus.

    Length statistics (``words``, ``tokens``) are over the non-empty texts; tokens are
    subword tokens of the bundled MiniLM tokenizer without special tokens.
    """

    rows: int
    empty: int
    empty_ids: list[str]
    duplicates: int
    duplicate_examples: list[tuple[str, int]]
    words: dict[str, float]
    tokens: dict[str, float]
    long_texts: int
    long_ids: list[str]
    long_threshold: int
    # Per non-empty text, for histograms (left out of to_dict: they are as long as the corpus).
    word_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    token_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def to_dict(self) -> dict[str, Any]:
        result = {k: v for k, v in asdict(self).items() if k not in ("word_lengths", "token_lengths")}
        result["duplicate_examples"] = [[snippet, count] for snippet, count in self.duplicate_examples]
        return result


# --------------------------------------------------------------------------------------
# read_file


def read_file(
    source: Any,
    name: str | None = None,
    *,
    sheet: str | int | None = None,
    txt_mode: str = "auto",
    encoding: str | None = None,
    delimiter: str | None = None,
) -> tuple[pd.DataFrame, ImportReport]:
    """Read a data file into a DataFrame and report what was done.

    ``source`` is a path, raw bytes, or a binary file-like object (a Streamlit
    UploadedFile works); for bytes and file-likes ``name`` (or ``source.name``) gives the
    file name and so the format.

    ``txt_mode`` (for .txt): ``"line"`` makes each non-empty line a document (columns
    ``line``, ``text``); ``"file"`` makes the whole file one document (columns ``file``,
    ``text``); ``"auto"`` reads per line unless the file has paragraphs separated by blank
    lines (then it is one document) and says which it chose in ``warnings``.
    ``encoding`` and ``delimiter`` override detection for text formats; ``sheet`` picks
    an Excel sheet by name or 0-based position.
    """
    data, name, display = _read_source(source, name)
    extension = _extension_of(name)
    if txt_mode not in TXT_MODES:
        raise CorpusError(f"Unknown txt mode {txt_mode!r}; choose one of: {', '.join(TXT_MODES)}.")
    if delimiter is not None and len(delimiter) != 1:
        raise CorpusError(f"The delimiter must be one character, not {delimiter!r}.")
    if not data:
        raise CorpusError(f"{name} is empty (0 bytes); choose the file that holds the data.")
    report = ImportReport(
        source=display, format=_FORMAT_OF_EXTENSION[extension], encoding=None, delimiter=None,
        rows=0, columns=[],
    )
    fmt = report.format
    if fmt == "csv":
        frame = _read_delimited(data, name, extension, report, encoding, delimiter)
    elif fmt == "txt":
        frame = _read_txt(data, name, report, txt_mode, encoding)
    elif fmt == "xlsx":
        frame = _read_xlsx(data, name, report, sheet)
    elif fmt == "json":
        frame = _read_json(data, name, report, encoding)
    elif fmt == "jsonl":
        frame = _read_jsonl(data, name, report, encoding)
    elif fmt == "parquet":
        frame = _read_parquet(data, name, report)
    elif fmt == "dta":
        frame = _read_stata(data, name, report)
    elif fmt == "sav":
        frame = _read_spss(data, name, report)
    else:
        options = dict(sheet=sheet, txt_mode=txt_mode, encoding=encoding, delimiter=delimiter)
        frame = _read_zip(data, name, report, options)
    frame = _finish_frame(frame, name, report)
    return frame, report


def _read_source(source: Any, name: str | None) -> tuple[bytes, str, str]:
    """Return (bytes, file name, source label) for a path, bytes or file-like object."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise CorpusError(f"File not found: {path}; check the path.")
        if path.is_dir():
            raise CorpusError(f"{path} is a folder, not a file; choose a file (or zip the folder's .txt files).")
        return path.read_bytes(), os.path.basename(name or path.name), str(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "getvalue"):
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read()
    else:
        raise TypeError(f"read_file needs a path, bytes or a binary file object, not {type(source).__name__}")
    if isinstance(data, str):  # a file opened in text mode
        data = data.encode("utf-8")
    name = name or getattr(source, "name", None)
    if not name:
        raise ValueError("read_file needs name= (for its extension) when reading bytes or a file object")
    name = os.path.basename(str(name))
    return bytes(data), name, name


def _extension_of(name: str) -> str:
    extension = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if extension in _FORMAT_OF_EXTENSION:
        return extension
    hint = _EXTENSION_HINTS.get(extension)
    kind = f"'{extension}' files" if extension else "files without an extension"
    message = f"{name}: {kind} are not supported; choose one of: {', '.join(SUPPORTED_EXTENSIONS)}."
    if hint:
        message += f" For this file: {hint}."
    raise CorpusError(message)


def _too_wide(name: str, found: str) -> str:
    return (
        f"{name} has {found}; Textlab reads at most {MAX_COLUMNS:,} columns. A file this wide is usually "
        "damaged or transposed (one column per text): check the delimiter, or keep only the columns you need."
    )


def _finish_frame(frame: pd.DataFrame, name: str, report: ImportReport) -> pd.DataFrame:
    """Give every format the same shape: unique string column names and a RangeIndex."""
    if frame.shape[1] > MAX_COLUMNS:
        raise CorpusError(_too_wide(name, f"{frame.shape[1]:,} columns"))
    frame.columns = _unique_column_names(list(frame.columns), report)
    frame = frame.reset_index(drop=True)
    if frame.shape[1] == 0:
        raise CorpusError(f"{name} holds no columns and no data; choose the file that holds the data.")
    if len(frame) == 0:
        shown = ", ".join(map(str, frame.columns[:_MAX_LISTED]))
        raise CorpusError(
            f"{name} has column names but no rows ({shown}); export the data again with its rows."
        )
    _storable_categories(frame, report)
    report.rows = len(frame)
    report.columns = list(frame.columns)
    return frame


def _storable_categories(frame: pd.DataFrame, report: ImportReport) -> None:
    """Value labels for only some codes (Stata, SPSS) give categories that mix labels and
    numbers, which Parquet cannot store: write the unlabelled codes as text ("5"), so they
    stay visible next to the labels."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            continue
        categories = list(column.cat.categories)
        if len({type(c) for c in categories}) < 2 and not any(isinstance(c, (bytes, bool)) for c in categories):
            continue
        unlabelled = [c for c in categories if not isinstance(c, str)]
        renamed = [c if isinstance(c, str) else _cell_as_name(c) for c in categories]
        if len(set(renamed)) == len(renamed):
            frame.isetitem(position, column.cat.rename_categories(renamed))
        else:  # a label reads like another code ("5" and 5): plain text, codes and labels as they are
            frame.isetitem(position, column.astype(object).map(lambda v: v if isinstance(v, str) or pd.isna(v)
                                                               else _cell_as_name(v)))
        shown = ", ".join(_cell_as_name(c) for c in unlabelled[:_MAX_LISTED])
        report.warnings.append(
            f"The column {frame.columns[position]!r} has value labels for only some values; "
            f"{len(unlabelled)} value(s) without a label ({shown}{', ...' if len(unlabelled) > _MAX_LISTED else ''}) "
            "are kept as their codes, written as text."
        )


def _unique_column_names(names: list[Any], report: ImportReport) -> list[str]:
    """Make names strings and unique the way pandas does (``a``, ``a.1``), with a warning."""
    result: list[str] = []
    for position, raw in enumerate(names):
        missing = raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw) == ""
        result.append(f"Unnamed: {position}" if missing else _cell_as_name(raw))
    counts = Counter(result)
    duplicated = [name for name, count in counts.items() if count > 1]
    if not duplicated:
        return result
    used = set(result)
    seen: Counter[str] = Counter()
    renamed = []
    for index, column in enumerate(result):
        seen[column] += 1
        if seen[column] == 1:
            continue
        suffix = seen[column] - 1
        while f"{column}.{suffix}" in used:
            suffix += 1
        new_name = f"{column}.{suffix}"
        used.add(new_name)
        result[index] = new_name
        renamed.append(new_name)
    listed = ", ".join(f"'{name}' ({counts[name]}x)" for name in duplicated)
    report.warnings.append(
        f"Duplicate column names: {listed}. All copies were kept; the later ones were renamed "
        f"{', '.join(repr(n) for n in renamed)}."
    )
    return result


def _cell_as_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------------
# bytes -> text

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel (.xls) or Word (.doc) file"),
    (b"%PDF", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"$FL2", "an SPSS (.sav) file"),
    (b"$FL3", "an SPSS (.sav) file"),
    (b"<stata_dta>", "a Stata (.dta) file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)
# Windows-1252 typography that is ordinary inside words (so not a sign of a wrong code page).
_WORD_INNER_PUNCTUATION = "’‘´·"


def _decode(data: bytes, name: str, encoding: str | None = None) -> tuple[str, str, list[str]]:
    """Decode text bytes; return (text, encoding used, notes about repairs).

    Order: a BOM; BOM-less UTF-16 by its NUL pattern; refuse binary files; strict UTF-8;
    mostly-UTF-8 with a few bad bytes; then a legacy code page (see _guess_legacy_encoding).
    """
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise CorpusError(f"Unknown encoding {encoding!r}; use a name such as utf-8, cp1252 or utf-16.") from None
        if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        try:
            return data.decode(codec), codec, []
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"{name} is not valid {encoding} (byte {exc.start} cannot be decoded); "
                "leave the encoding on automatic detection or choose another encoding."
            ) from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decode_with_replacement(data[len(bom) :], codec, "utf-8" if codec == "utf-8-sig" else codec)
    utf16 = _bomless_utf16(data)
    if utf16:
        return _decode_with_replacement(data, utf16, utf16)
    binary = _binary_description(data)  # after the UTF-16 checks: UTF-16 text is full of NULs
    if binary:
        raise CorpusError(f"{name} {binary}, not text; export it as CSV or choose the right format.")
    notes = []
    if b"\x00" in data:
        first, count = data.index(b"\x00"), data.count(b"\x00")
        notes.append(
            f"Removed {count} NUL byte(s) (the first at byte {first}); they are not text "
            "and usually come from a damaged export."
        )
        data = data.replace(b"\x00", b"")
    try:
        return data.decode("utf-8"), "utf-8", notes
    except UnicodeDecodeError:
        pass
    mixed = _decode_mixed_lines(data)
    if mixed:
        return mixed[0], "mixed (utf-8, cp1252)", notes + [mixed[1]]
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    valid_non_ascii = len(text) - len(text.encode("ascii", errors="ignore")) - bad
    # UTF-8 with a few damaged bytes, not another code page (whose accented letters are
    # almost never valid UTF-8 sequences).
    if valid_non_ascii >= 2 * bad:
        notes.append(f"{bad} byte sequence(s) are not valid UTF-8 and were replaced with '\ufffd'.")
        return text, "utf-8", notes
    codec = _guess_legacy_encoding(data)
    return data.decode(codec), codec, notes


_CP1252_IN_WORD = re.compile(r"[A-Za-z][\u00c0-\u00ff]|[\u00c0-\u00ff][A-Za-z]|[€’‘“”–—…]")


def _decode_mixed_lines(data: bytes) -> tuple[str, str] | None:
    """Text that joins UTF-8 lines and Windows-1252 lines (two exports appended): decode
    each line on its own, or None when the file is not like that.

    A line counts as cp1252 when it is not valid UTF-8 and its cp1252 reading puts accented
    letters inside words (or typographic quotes, dashes, €); a lone stray byte is damage
    (replaced with U+FFFD later), not another code page.
    """
    lines = data.splitlines(keepends=True)
    decoded: list[str] = []
    legacy: list[int] = []
    utf8_non_ascii = 0
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
            utf8_non_ascii += not text.isascii()
        except UnicodeDecodeError:
            text = _try_decode(line, "cp1252")
            if text is None or not _CP1252_IN_WORD.search(text):
                return None
            legacy.append(number)
        decoded.append(text)
    if not legacy or not utf8_non_ascii:
        return None
    note = (f"The file mixes UTF-8 with Windows-1252 (cp1252) lines, as when two exports are joined; "
            f"{len(legacy)} line(s) were read as cp1252 ({_lines_listed(legacy)}) and the rest as UTF-8. "
            "Check those lines' accented letters.")
    return "".join(decoded), note


def _decode_with_replacement(data: bytes, codec: str, label: str) -> tuple[str, str, list[str]]:
    try:
        return data.decode(codec), label, []
    except UnicodeDecodeError as exc:
        note = f"Some bytes are not valid {label} (the first at byte {exc.start}) and were replaced with '\ufffd'."
        return data.decode(codec, errors="replace"), label, [note]


def _bomless_utf16(data: bytes) -> str | None:
    """Detect UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte."""
    sample = data[:4096]
    sample = sample[: len(sample) // 2 * 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    pairs = len(even)
    if odd.count(0) > 0.3 * pairs and even.count(0) < 0.02 * pairs:
        return "utf-16-le"
    if even.count(0) > 0.3 * pairs and odd.count(0) < 0.02 * pairs:
        return "utf-16-be"
    return None


def _binary_problem(data: bytes) -> str | None:
    """Why the bytes are not text, or None (text with a BOM or in UTF-16 is text)."""
    if any(data.startswith(bom) for bom, _ in _BOMS) or _bomless_utf16(data):
        return None
    return _binary_description(data)


def _binary_description(data: bytes) -> str | None:
    """Describe data that is not text (a known file signature, or many NUL/control bytes)."""
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return f"looks like {what}"
    sample = data[:65536]
    if 0 not in sample:
        return None
    # A few stray NULs in a text export are repaired; binary data is full of NUL and other
    # control bytes (which text hardly ever has besides tab and line breaks).
    controls = sum(sample.count(byte) for byte in range(32) if byte not in (9, 10, 12, 13))
    if controls >= 4 and controls > 0.05 * len(sample):
        return f"looks like a binary file (NUL bytes at byte {data.index(0)})"
    return None


def _guess_legacy_encoding(data: bytes) -> str:
    """Pick a single-/multi-byte code page for text that is not UTF-8.

    charset-normalizer decides between scripts well, but within Latin text its first guess
    is often a rare code page (cp1250 for French, mac_iceland for German) because they
    decode the same bytes to equally plausible letters. So Windows-1252, by far the most
    common legacy encoding, is kept whenever it decodes the bytes to plausible Latin text
    that is at least as clean as the guess.
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_ENCODING_SAMPLE_BYTES]).best()
    guess = codecs.lookup(best.encoding).name if best is not None else None
    guess_text = _try_decode(data, guess) if guess else None
    cp1252_text = _try_decode(data, "cp1252")
    if cp1252_text is not None:
        if guess_text is None or guess_text == cp1252_text:
            return "cp1252"
        if _plausible_latin(cp1252_text) and _oddities(cp1252_text) <= _oddities(guess_text):
            return "cp1252"
    if guess_text is not None:
        return guess
    return "cp1252" if cp1252_text is not None else "latin-1"


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _plausible_latin(text: str) -> bool:
    # In Western European text most letters are ASCII; Cyrillic or Greek bytes read as
    # Windows-1252 come out as runs of accented letters ("Ïðèâåò").
    letters = re.findall(r"[^\W\d_]", text[:_ENCODING_SAMPLE_BYTES])
    non_ascii = sum(1 for letter in letters if ord(letter) > 127)
    return non_ascii <= 0.3 * max(len(letters), 1)


def _oddities(text: str) -> int:
    # Symbols wedged between letters ("Za¿ó³æ" for Polish "Zażółć") betray a wrong code page.
    wedged = rf"(?<=[^\W\d_])[^\w\s\x00-\x7f{_WORD_INNER_PUNCTUATION}](?=[^\W\d_])"
    return len(re.findall(wedged, text[:_ENCODING_SAMPLE_BYTES]))


def _require_text(text: str, name: str) -> None:
    if not text.strip():
        raise CorpusError(
            f"{name} contains only whitespace (spaces or blank lines), no data; choose the file that holds the data."
        )


# --------------------------------------------------------------------------------------
# CSV / TSV

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_EXCEL_SEPARATOR_HINT = re.compile(r"sep=(.)\r?\n|sep=(.)\r")
_BARE_CR = re.compile(r"\r(?!\n)")
# Stand-ins for characters the csv module would act on: the "delimiter" of a one-column
# file and a bare carriage return kept inside a cell. The first one not in the file is used.
_STAND_INS = ("\x1f", "\x1e", "\x1d", "\x1c", "\ue000", "\ue001", "\ue002", "\ue003")
_MAX_TITLE_LINES = 3


def _lines(text: str) -> Iterator[str]:
    # Split only at \n, \r\n and \r (Mac): str.splitlines would also split at U+2028 and
    # form feeds inside cells. A generator of slices also keeps memory low for huge cells.
    return (match.group() for match in _LINE.finditer(text))


def _allow_huge_csv_fields() -> None:
    # One cell may hold a whole book. The limit is process-wide; it is only ever raised,
    # never restored, so a parse running in another thread cannot trip over a lower one.
    limit = 2**31 - 1
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def _read_delimited(
    data: bytes, name: str, extension: str, report: ImportReport, encoding: str | None, delimiter: str | None
) -> pd.DataFrame:
    text, report.encoding, notes = _decode(data, name, encoding)
    report.warnings.extend(notes)
    _require_text(text, name)
    line_offset = 0
    hint = _EXCEL_SEPARATOR_HINT.match(text)
    if hint:  # Excel's "sep=;" first line names the delimiter
        delimiter = delimiter or hint.group(1) or hint.group(2)
        text = text[hint.end() :]
        line_offset = 1
    stand_ins = iter(c for c in _STAND_INS if c not in text)
    kept_cr = None
    if "\n" in text and _BARE_CR.search(text):
        # The lines end with \n, so a lone \r is part of a cell (a line break typed in Excel
        # or on an old Mac), not the end of a row: keep it in its cell instead of splitting.
        kept_cr = next(stand_ins)
        cr_lines = _bare_cr_lines(text)
        text = _BARE_CR.sub(kept_cr, text)
        report.warnings.append(
            f"{cr_lines[0]} line(s) hold a carriage return (\\r) that does not end the line ({_lines_listed(cr_lines[1])}); "
            "the file's lines end with \\n, so it was kept inside its cell as a line break. Check those rows."
        )
    titles = 0
    if delimiter is None:
        delimiter, titles = _sniff_delimiter(text[:_SNIFF_CHARS], truncated=len(text) > _SNIFF_CHARS,
                                             preferred="\t" if extension in (".tsv", ".tab") else ",")
    report.delimiter = delimiter
    _allow_huge_csv_fields()

    # A one-column file still needs csv quoting rules, but no cell may be split: use a
    # character that does not occur in the file as the delimiter.
    split_on = delimiter or next(stand_ins)
    reader = csv.reader(_lines(text), delimiter=split_on)
    header: list[str] | None = None
    records: list[list[str]] = []
    # Rows become columnar frames every _RECORD_BATCH rows: a million rows as lists of Python
    # strings took 1.9 GB at peak; as (Arrow-backed) string columns they take a fraction.
    batches: list[pd.DataFrame] = []
    padded_lines: list[int] = []
    title_lines: list[tuple[int, str]] = []
    repeated_headers: list[int] = []
    bom_lines: list[int] = []
    header_line = 0
    record_start = record_end = line_offset
    for fields in reader:
        record_start, record_end = record_end + 1, line_offset + reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        bom = fields[0].startswith("\ufeff")
        if bom:  # a byte-order mark inside the file: another file starts here
            fields[0] = fields[0].lstrip("\ufeff")
            bom_lines.append(record_start)
        if kept_cr:
            fields = [cell.replace(kept_cr, "\r") if kept_cr in cell else cell for cell in fields]
        if header is None:
            if len(title_lines) < titles:
                title_lines.append((record_start, " ".join(cell for cell in fields if cell.strip())))
                continue
            if len(fields) > MAX_COLUMNS:  # refuse before building rows of a million cells
                raise CorpusError(_too_wide(name, f"{len(fields):,} columns in its header (line {record_start})"))
            header, header_line = fields, record_start
            continue
        if fields == header and (len(header) > 1 or bom):  # (one word alone may be an answer)
            repeated_headers.append(record_start)
            continue
        if len(fields) > len(header):
            extra = fields[len(header) :]
            if any(cell.strip() for cell in extra):
                report.skipped.append(SkippedItem(
                    f"line {record_start}",
                    f"{len(fields)} fields where the header has {len(header)}: an unquoted "
                    f"{_delimiter_name(delimiter)} inside a cell?",
                ))
                continue
            fields = fields[: len(header)]  # trailing empty fields hold nothing
        elif len(fields) < len(header):
            fields = fields + [""] * (len(header) - len(fields))
            padded_lines.append(record_start)
        records.append(fields)
        if len(records) >= _RECORD_BATCH:
            batches.append(pd.DataFrame(records))
            records.clear()

    if record_end > record_start and _ends_inside_quotes(text, record_start - line_offset, split_on):
        raise CorpusError(
            f"{name}: the quotation mark that opens a cell on line {record_start} is never closed, so "
            f"lines {record_start}-{record_end} would become one cell. Fix or remove that quote, "
            "or export the file again with quoting."
        )
    if title_lines:
        shown = "; ".join(f"line {number}: {_snippet(line, 60)!r}" for number, line in title_lines)
        report.warnings.append(
            f"Skipped {len(title_lines)} title line(s) above the header ({shown}); the header is line {header_line}."
        )
    if bom_lines:
        report.warnings.append(
            f"A byte-order mark starts {_lines_listed(bom_lines)}: the file looks like several exports joined "
            "together. The mark was removed."
        )
    if repeated_headers:
        report.warnings.append(
            f"The header row is repeated on {_lines_listed(repeated_headers)} (several exports joined together?); "
            "the repeated header row(s) were dropped, not read as data."
        )
    if padded_lines:
        report.warnings.append(
            f"{len(padded_lines)} row(s) have fewer fields than the header and were padded with empty cells "
            f"({_lines_listed(padded_lines)}); if that is unexpected, check the delimiter."
        )
    if report.skipped and len(report.skipped) > len(records):
        report.warnings.append(
            f"More rows were skipped ({len(report.skipped)}) than read ({len(records)}); "
            f"the delimiter ({_delimiter_name(delimiter)}) may be wrong."
        )
    if not batches:
        return pd.DataFrame(records, columns=header or [])
    if records:
        batches.append(pd.DataFrame(records))
    frame = pd.concat(batches, ignore_index=True)  # positional column names: a header may repeat names
    frame.columns = header
    return frame


def _bare_cr_lines(text: str) -> tuple[int, list[int]]:
    """How many lines hold a bare \\r, and the first of them (1-based, counting \\n)."""
    lines = []
    count = 0
    last_line = None
    for match in _BARE_CR.finditer(text):
        if len(lines) >= _MAX_LISTED + 1:
            count += 1  # counted, not located: finding line numbers costs a scan each
            continue
        line = text.count("\n", 0, match.start()) + 1
        if line != last_line:
            lines.append(line)
            last_line = line
    return len(lines) + count, lines


def _delimiter_name(delimiter: str | None) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter)) if delimiter else "separator"


def _lines_listed(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:_MAX_LISTED]))
    return f"line{'s' if len(lines) > 1 else ''} {shown}{', ...' if len(lines) > _MAX_LISTED else ''}"


def _ends_inside_quotes(text: str, start_line: int, delimiter: str) -> bool:
    """Whether the record starting at physical line ``start_line`` ends inside an open quote."""
    lines = _lines(text)
    tail_start = sum(len(line) for line in itertools.islice(lines, start_line - 1))
    try:
        for _ in csv.reader(_lines(text[tail_start:]), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _sniff_delimiter(sample: str, *, truncated: bool, preferred: str) -> tuple[str | None, int]:
    """Choose the delimiter that splits the header and the sample rows most consistently,
    and count title lines above the header.

    Each candidate is scored by (share of rows with as many fields as the header, number of
    header fields); csv.Sniffer's answer, then the extension's usual delimiter, break ties.
    A header may sit below up to _MAX_TITLE_LINES lines of one cell each ("Survey export,
    March 2024") when the rows below it agree with it. None when no candidate splits the
    header: the file is one column.
    """
    scores: dict[str, tuple[float, int]] = {}
    titles_of: dict[str, int] = {}
    for candidate in DELIMITERS:
        rows = []
        try:
            for row in itertools.islice(csv.reader(_lines(sample), delimiter=candidate), 500):
                if row and any(cell.strip() for cell in row):
                    rows.append(row)
        except csv.Error:
            pass
        if truncated and len(rows) > 1:
            rows = rows[:-1]  # the last row may be cut off by the sample
        for titles in range(min(_MAX_TITLE_LINES, max(len(rows) - 2, 0)) + 1):
            if titles and not _title_like(rows[titles - 1]):
                break
            header, body = rows[titles] if rows else [], rows[titles + 1 :]
            if len(header) < 2:
                continue
            if titles and not _names_like(header):
                break  # "1,hello" below a one-cell line is data, not a header
            # "Title,,," above a full header: the title is not the header.
            if titles == 0 and _title_like(header) and body and _filled(body[0]) == len(body[0]) >= 2 \
                    and _names_like(body[0]):
                continue
            width = len(header)
            consistency = sum(len(row) == width for row in body) / len(body) if body else 1.0
            if titles and consistency < 0.8:
                continue
            scores[candidate], titles_of[candidate] = (consistency, width), titles
            break
    if not scores:
        return None, 0
    best = max(scores.values())
    tied = [candidate for candidate in DELIMITERS if scores.get(candidate) == best]
    if len(tied) == 1:
        return tied[0], titles_of[tied[0]]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(tied)).delimiter
    except csv.Error:
        sniffed = None
    chosen = max(tied, key=lambda c: (c == sniffed, c == preferred, -DELIMITERS.index(c)))
    return chosen, titles_of[chosen]


def _filled(row: list[str]) -> int:
    return sum(1 for cell in row if cell.strip())


def _title_like(row: list[str]) -> bool:
    # One text in the first cell; ",text" (a pandas index column) is a header, not a title.
    return bool(row) and bool(row[0].strip()) and _filled(row) == 1


_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def _names_like(row: list[str]) -> bool:
    # Column names are not numbers (data rows usually hold some: ids, scores, years).
    return not any(_NUMBER.fullmatch(cell.strip()) for cell in row)


# --------------------------------------------------------------------------------------
# Plain text

_PARAGRAPH_BREAK = re.compile(r"\S[ \t]*(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)\s*\S")


def _read_txt(data: bytes, name: str, report: ImportReport, txt_mode: str, encoding: str | None) -> pd.DataFrame:
    text, report.encoding, notes = _decode(data, name, encoding)
    report.warnings.extend(notes)
    _require_text(text, name)
    numbered = [(number, line) for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1) if line.strip()]
    mode = txt_mode
    if mode == "auto" and len(numbered) > 1:
        if _PARAGRAPH_BREAK.search(text):
            mode = "file"
            report.warnings.append(
                "Read the whole file as one document because it has paragraphs separated by blank lines; "
                "choose txt mode 'line' to make each line a document."
            )
        else:
            mode = "line"
            report.warnings.append(
                f"Read each of the {len(numbered)} non-empty lines as one document; "
                "choose txt mode 'file' to read the whole file as one document."
            )
    if mode == "line":
        return pd.DataFrame({"line": [n for n, _ in numbered], "text": [line for _, line in numbered]})
    return pd.DataFrame({"file": [name], "text": [text]})


# --------------------------------------------------------------------------------------
# Excel


def _read_xlsx(data: bytes, name: str, report: ImportReport, sheet: str | int | None) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="openpyxl")
    except Exception as exc:  # openpyxl/zipfile raise many types for damaged files
        raise CorpusError(
            f"{name} could not be opened as an Excel workbook ({_brief(exc)}); it may be damaged or not "
            "really .xlsx. Open it in Excel and save it again as .xlsx, or export it as CSV."
        ) from exc
    with book:
        names = [str(n) for n in book.sheet_names]
        listed = ", ".join(repr(n) for n in names)
        if sheet is None:
            candidates = names
        elif isinstance(sheet, int) and not isinstance(sheet, bool):
            if not 0 <= sheet < len(names):
                raise CorpusError(f"{name} has no sheet number {sheet} (counting from 0); its sheets are {listed}.")
            candidates = [names[sheet]]
        elif str(sheet) in names:
            candidates = [str(sheet)]
        else:
            raise CorpusError(f"{name} has no sheet named {sheet!r}; its sheets are {listed}.")
        for chosen in candidates:
            try:
                grid = pd.read_excel(book, sheet_name=chosen, header=None, dtype=object)
            except Exception as exc:
                raise CorpusError(
                    f"{name}: the sheet {chosen!r} could not be read ({_brief(exc)}); "
                    "save the workbook again or export the sheet as CSV."
                ) from exc
            grid = grid.dropna(how="all").dropna(axis=1, how="all")
            if not grid.empty:
                break
        else:
            which = f"the sheet {candidates[0]!r} is" if sheet is not None else "all its sheets are"
            raise CorpusError(
                f"{name} has no data: {which} empty (sheets: {listed}). Choose the workbook or sheet that holds the data."
            )
    if sheet is None and len(names) > 1:
        skipped_empty = names[: names.index(chosen)]
        note = f" (skipped empty sheets {', '.join(repr(n) for n in skipped_empty)})" if skipped_empty else ""
        report.warnings.append(
            f"The workbook has {len(names)} sheets ({listed}); read {chosen!r}{note}. "
            "Choose another sheet to read it instead."
        )
    # The first non-empty row is the header (after title rows); types are inferred per
    # column after it.
    titles = _xlsx_title_rows(grid)
    if titles:
        shown = "; ".join(f"{_snippet(str(value), 60)!r}" for value in titles)
        report.warnings.append(f"Skipped {len(titles)} title row(s) above the header in sheet {chosen!r} ({shown}).")
        grid = grid.iloc[len(titles):].dropna(axis=1, how="all")
    lost = _formulas_without_values(data, chosen)
    if lost:
        cells = ", ".join(lost[:_MAX_LISTED]) + (", ..." if len(lost) > _MAX_LISTED else "")
        report.warnings.append(
            f"{len(lost)} formula cell(s) in sheet {chosen!r} have no saved value, so they are empty here ({cells}): "
            "the workbook was saved by a program that does not calculate formulas. Open it in Excel or LibreOffice "
            "and save it again, or export the sheet as CSV."
        )
    frame = pd.DataFrame(grid.iloc[1:].to_numpy(), columns=list(grid.iloc[0]))
    return frame.infer_objects()


def _xlsx_title_rows(grid: pd.DataFrame) -> list[Any]:
    """Leading rows of one cell ("Survey results 2024") above a header that fills the sheet's columns."""
    filled = grid.notna().sum(axis=1).tolist()
    width = grid.shape[1]
    titles: list[Any] = []
    for position in range(min(_MAX_TITLE_LINES, len(filled) - 2)):
        if filled[position] != 1:
            break
        following = filled[position + 1]
        titles.append(grid.iloc[position].dropna().iloc[0])
        if following >= 2 and following >= 0.8 * width:
            return titles
    return []


_XML_FORMULA = re.compile(rb"<(?:\w+:)?f[ >/]")


def _formulas_without_values(data: bytes, sheet: str) -> list[str]:
    """Cells of the sheet that hold a formula but no cached value (openpyxl, pandas and
    every reader see them as empty). Only workbooks with formulas pay for the extra pass."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            if not any(_XML_FORMULA.search(archive.read(n)) for n in sheets):
                return []
        import openpyxl

        formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        values = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            lost = []
            for formula_row, value_row in zip(formulas[sheet].iter_rows(), values[sheet].iter_rows()):
                for formula, value in zip(formula_row, value_row):
                    if getattr(formula, "data_type", None) == "f" and value.value is None:
                        lost.append(formula.coordinate)
            return lost
        finally:
            formulas.close()
            values.close()
    except Exception:  # the data itself was read; this check is only a warning
        return []


# --------------------------------------------------------------------------------------
# JSON and JSON Lines


def _read_json(data: bytes, name: str, report: ImportReport, encoding: str | None) -> pd.DataFrame:
    text, report.encoding, notes = _decode(data, name, encoding)
    report.warnings.extend(notes)
    _require_text(text, name)
    oddities = _JsonOddities()
    try:
        value = oddities.loads(text)
    except RecursionError:
        raise CorpusError(_too_deep(name)) from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several JSON values one after another: JSON Lines?
            lines_report = ImportReport(report.source, "jsonl", report.encoding, None, 0, [])
            oddities = _JsonOddities()
            try:
                frame = _records_frame(_json_lines(text, oddities, lines_report), name, lines_report)
            except CorpusError:
                frame = None
            if frame is not None and not lines_report.skipped:
                report.warnings.append("The file holds one JSON record per line (JSON Lines); it was read that way.")
                report.warnings.extend(lines_report.warnings + oddities.notes())
                return frame
        raise CorpusError(
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Fix the file there or export it again (for one record per line, name it .jsonl)."
        ) from None
    report.warnings.extend(oddities.notes())
    return _records_frame(_records_in_json(value, name, report), name, report)


def _too_deep(where: str) -> str:
    return (
        f"{where} nests lists or objects inside each other too deeply to read (more than about "
        f"{sys.getrecursionlimit():,} levels; records need a few at most); export the data again as a flat list "
        "of records."
    )


class _JsonOddities:
    """json.loads that notes what it accepts silently: repeated keys in one object (the
    last value wins) and NaN/Infinity, which are not JSON but Python writes them."""

    def __init__(self) -> None:
        self.duplicates: Counter[str] = Counter()
        self.constants: Counter[str] = Counter()
        self.where: dict[str, str] = {}
        self.current = ""

    def loads(self, text: str, where: str = "") -> Any:
        self.current = where
        return json.loads(text, object_pairs_hook=self._object, parse_constant=self._constant)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) < len(pairs):
            for key, count in Counter(key for key, _ in pairs).items():
                if count > 1:
                    self.duplicates[key] += 1
                    self.where.setdefault(f"key {key}", self.current)
        return result

    def _constant(self, name: str) -> float:
        self.constants[name] += 1
        self.where.setdefault(name, self.current)
        return float(name)

    def notes(self) -> list[str]:
        notes = []
        if self.duplicates:
            keys = ", ".join(f"{key!r}" + (f" (first {self.where[f'key {key}']})" if self.where[f"key {key}"] else "")
                             for key in list(self.duplicates)[:_MAX_LISTED])
            notes.append(
                f"{sum(self.duplicates.values())} record(s) repeat a key ({keys}); only the last value of each "
                "repeated key was kept. Check the export if both values matter."
            )
        if self.constants:
            found = ", ".join(f"{name} ({count}x" + (f", first {self.where[name]})" if self.where[name] else ")")
                              for name, count in self.constants.items())
            notes.append(
                f"The file holds {found}, which JSON does not allow; they were read as numbers (NaN = missing). "
                "Check that the exporting program meant them."
            )
        return notes


def _records_in_json(value: Any, name: str, report: ImportReport) -> list[tuple[str, Any]]:
    """The items of a list of records, or of the one list of records inside an object."""
    expected = 'Textlab needs a list of records such as [{"text": "...", "id": 1}, ...]'
    if isinstance(value, list):
        if not value:
            raise CorpusError(f"{name} holds an empty list, no records; {expected}.")
        return [(f"item {i}", item) for i, item in enumerate(value, start=1)]
    if isinstance(value, dict):
        lists = [key for key, item in value.items()
                 if isinstance(item, list) and any(isinstance(x, dict) for x in item)]
        if len(lists) == 1:
            if len(value) > 1:
                report.warnings.append(
                    f"Read the records under {lists[0]!r}; the other keys of the JSON object were left out."
                )
            return [(f"{lists[0]} item {i}", item) for i, item in enumerate(value[lists[0]], start=1)]
        if len(lists) > 1:
            raise CorpusError(
                f"{name} holds several lists of records ({', '.join(map(repr, lists))}); "
                "save the one you want as its own file."
            )
        raise CorpusError(f"{name} is a JSON object without a list of records; {expected}.")
    raise CorpusError(
        f"{name} holds a single JSON {_json_kind(value)} ({_snippet(json.dumps(value), 40)}), not records; {expected}."
    )


def _read_jsonl(data: bytes, name: str, report: ImportReport, encoding: str | None) -> pd.DataFrame:
    text, report.encoding, notes = _decode(data, name, encoding)
    report.warnings.extend(notes)
    _require_text(text, name)
    oddities = _JsonOddities()
    frame = _records_frame(_json_lines(text, oddities, report), name, report)
    report.warnings.extend(oddities.notes())
    return frame


def _json_lines(text: str, oddities: "_JsonOddities", report: ImportReport) -> Iterator[tuple[str, Any]]:
    # JSON strings cannot hold a raw newline, so "\n" separates records; U+2028 may not.
    bom_lines = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if line.startswith("\ufeff"):  # files appended to each other keep each one's BOM
            line = line.lstrip("\ufeff").strip()
            bom_lines.append(number)
        if not line:
            continue
        try:
            yield f"line {number}", oddities.loads(line, f"on line {number}")
        except RecursionError:
            yield f"line {number}", _BadJson(_too_deep("the record"))
        except json.JSONDecodeError as exc:
            yield f"line {number}", _BadJson(f"not valid JSON ({exc.msg} at column {exc.colno})")
    if bom_lines:
        report.warnings.append(
            f"{len(bom_lines)} line(s) start with a byte-order mark ({_lines_listed(bom_lines)}), as when files are "
            "appended to each other; the mark was removed and the lines were read."
        )


@dataclass
class _BadJson:
    reason: str


def _records_frame(items: Any, name: str, report: ImportReport) -> pd.DataFrame:
    """Rows from JSON values: objects become records; a list of only strings becomes texts.

    Anything else is skipped and listed. Nested values are kept as JSON strings.
    """
    items = list(items)
    if items and all(isinstance(value, str) for _, value in items):
        return pd.DataFrame({"text": [value for _, value in items]})
    records = []
    keys: dict[str, None] = {}
    for where, value in items:
        if isinstance(value, dict):
            keys.update(dict.fromkeys(value))
            if len(keys) > MAX_COLUMNS:
                raise CorpusError(_too_wide(name, f"more than {MAX_COLUMNS:,} different keys (by {where})"))
            try:
                records.append({key: _flat_json_value(item) for key, item in value.items()})
            except RecursionError:
                report.skipped.append(SkippedItem(where, _too_deep("the record")))
        elif isinstance(value, _BadJson):
            report.skipped.append(SkippedItem(where, value.reason))
        else:
            report.skipped.append(SkippedItem(where, f"is a {_json_kind(value)}, not a record (an object in braces)"))
    if not records:
        first = f" The first problem: {report.skipped[0].where}: {report.skipped[0].reason}." if report.skipped else ""
        raise CorpusError(f"{name} holds no JSON records (objects such as {{\"text\": \"...\"}}).{first}")
    return pd.DataFrame(records)


def _flat_json_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false value"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "null" if value is None else type(value).__name__


# --------------------------------------------------------------------------------------
# Parquet, Stata, SPSS


def _read_parquet(data: bytes, name: str, report: ImportReport) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        if len(parquet.schema_arrow) > MAX_COLUMNS:  # before reading any data
            raise CorpusError(_too_wide(name, f"{len(parquet.schema_arrow):,} columns"))
        table = parquet.read()
        table = _plain_arrow_columns(table, report)
        frame = table.to_pandas()
    except CorpusError:
        raise
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise CorpusError(
            f"{name} could not be read as a Parquet file ({_brief(exc)}); it may be damaged or another "
            "format. Export it again or choose the right format."
        ) from exc
    return _index_as_columns(frame)


def _plain_arrow_columns(table: Any, report: ImportReport) -> Any:
    """Nested columns (list, struct, map) become JSON text and decimals floats, so that they
    are stored, shown and exported as values instead of Python reprs ("[1 2]", "Decimal('1.5')")."""
    import pyarrow as pa

    nested, decimals, exact = [], [], []
    for position, column_field in enumerate(table.schema):
        kind = column_field.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind) \
                or pa.types.is_struct(kind) or pa.types.is_map(kind):
            values = [None if value is None else json.dumps(_jsonable(value), ensure_ascii=False, default=str)
                      for value in table.column(position).to_pylist(maps_as_pydicts="lossy")]
            table = table.set_column(position, column_field.name, pa.array(values, type=pa.string()))
            nested.append(column_field.name)
        elif pa.types.is_decimal(kind):
            if kind.precision <= 15:  # a float holds 15 significant digits exactly
                table = table.set_column(position, column_field.name, table.column(position).cast(pa.float64()))
                decimals.append(column_field.name)
            else:
                table = table.set_column(position, column_field.name, table.column(position).cast(pa.string()))
                exact.append(column_field.name)
    if nested:
        report.warnings.append(
            f"Nested columns (lists, structs or maps) were read as JSON text: {_names_listed(nested)}."
        )
    if decimals:
        report.warnings.append(f"Decimal columns were read as numbers (floats): {_names_listed(decimals)}.")
    if exact:
        report.warnings.append(
            f"Decimal columns with more than 15 digits were read as text to keep every digit: {_names_listed(exact)}."
        )
    return table


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if type(value).__name__ == "Decimal":
        return float(value) if value.is_finite() else None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _names_listed(names: list[str]) -> str:
    return ", ".join(map(repr, names[:_MAX_LISTED])) + (", ..." if len(names) > _MAX_LISTED else "")


def _index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    # A saved named index (e.g. "respondent") is data; a plain 0..n-1 index is not.
    plain = isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
    return frame.reset_index(drop=plain)


def _read_stata(data: bytes, name: str, report: ImportReport) -> pd.DataFrame:
    def read(convert_categoricals: bool) -> pd.DataFrame:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pd.read_stata(io.BytesIO(data), convert_categoricals=convert_categoricals)
        relevant = [w for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
        report.warnings.extend(_brief(w.message) for w in relevant[:3])
        return frame

    try:
        try:
            frame = read(convert_categoricals=True)
        except ValueError as exc:
            if "label" not in str(exc).lower():
                raise
            frame = read(convert_categoricals=False)
            report.warnings.append(f"Value labels could not be applied ({_brief(exc)}); the codes are shown instead.")
    except Exception as exc:
        raise CorpusError(
            f"{name} could not be read as a Stata file ({_brief(exc)}); "
            "save it again from Stata (version 10 or later) or export it as CSV."
        ) from exc
    return _index_as_columns(frame)


def _read_spss(data: bytes, name: str, report: ImportReport) -> pd.DataFrame:
    import pyreadstat

    # pyreadstat reads from a path only.
    with tempfile.TemporaryDirectory(prefix="textlab-") as folder:
        path = Path(folder) / "input.sav"
        path.write_bytes(data)
        try:
            # user_missing=True: a code SPSS marks as missing (99 "refused") keeps its value and
            # label instead of becoming NaN; whether it is missing is the researcher's call.
            frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
            kept = _spss_user_missing(frame, meta)
            frame = pyreadstat.set_value_labels(frame, meta, formats_as_category=True)
        except Exception as exc:
            raise CorpusError(
                f"{name} could not be read as an SPSS .sav file ({_brief(exc)}); "
                "save it again from SPSS or export it as CSV."
            ) from exc
    if kept:
        listed = "; ".join(kept[:_MAX_LISTED]) + ("; ..." if len(kept) > _MAX_LISTED else "")
        report.warnings.append(
            f"Values that SPSS marks as user-missing were kept with their labels ({listed}); "
            "treat them as missing in your analysis if that is what they mean."
        )
    return frame


def _spss_user_missing(frame: pd.DataFrame, meta: Any) -> list[str]:
    """Per column, how many rows hold a user-missing code, e.g. "'q': 99 'refused' (3 rows)"."""
    found = []
    for column, ranges in (meta.missing_ranges or {}).items():
        if column not in frame.columns:
            continue
        values = frame[column]
        labels = (meta.variable_value_labels or {}).get(column, {})
        parts = []
        for span in ranges:
            low, high = span.get("lo"), span.get("hi")
            try:
                hits = values[(values >= low) & (values <= high)] if low != high else values[values == low]
            except TypeError:
                continue
            for value, count in hits.value_counts().items():
                label = labels.get(value)
                parts.append(f"{_cell_as_name(value)}{f' {label!r}' if label else ''} ({count} row{'s' if count > 1 else ''})")
        if parts:
            found.append(f"{column!r}: {', '.join(parts)}")
    return found


# --------------------------------------------------------------------------------------
# Zip archives


def _read_zip(data: bytes, name: str, report: ImportReport, options: dict[str, Any]) -> pd.DataFrame:
    """Every .txt/.md member is one document (columns ``file``, ``text``).

    An archive without documents but with exactly one data file (say a zipped CSV) is read
    as that file. Folders, hidden files, macOS metadata and other members are skipped and
    listed.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise CorpusError(
            f"{name} is not a valid zip archive ({_brief(exc)}); it may be damaged or only partly downloaded. "
            "Create the archive again."
        ) from exc
    with archive:
        names = set(archive.namelist())
        if {"[Content_Types].xml", "xl/workbook.xml"} <= names:  # an Office Open XML workbook, renamed
            report.format = "xlsx"
            report.warnings.append(f"{name} is an Excel workbook (.xlsx) with a .zip name; it was read as a workbook.")
            return _read_xlsx(data, name, report, options.get("sheet"))
        members = sorted((info for info in archive.infolist() if not info.is_dir()), key=lambda info: info.filename)
        if not members:
            raise CorpusError(
                f"{name} is an empty zip archive (no files in it); add the .txt files and zip them again."
            )
        documents, data_files = [], []
        for info in members:
            path = info.filename.replace("\\", "/")
            parts = PurePosixPath(path).parts
            suffix = PurePosixPath(path).suffix.lower()
            where = f"archive member {path}"
            if path.startswith("/") or ".." in parts or re.match(r"[A-Za-z]:[/\\]", path):
                # Unpacked naively, such a member would land outside the folder ("zip slip").
                report.skipped.append(SkippedItem(where, "unsafe path outside the archive, skipped"))
            elif parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
                report.skipped.append(SkippedItem(where, "hidden file or macOS metadata, not a document"))
            elif suffix in ZIP_DOCUMENT_EXTENSIONS:
                documents.append(info)
            elif suffix in _FORMAT_OF_EXTENSION and suffix != ".zip":
                data_files.append(info)
            elif suffix == ".zip":
                report.skipped.append(SkippedItem(where, "a zip inside the zip; unpack it and import it separately"))
            else:
                reason = "not a .txt or .md file; only text files in an archive become documents"
                report.skipped.append(SkippedItem(where, reason))

        budget = _ZipBudget(name, len(data))
        wanted = documents or data_files[:1]
        total = sum(info.file_size for info in wanted if info.file_size <= MAX_ZIP_MEMBER_BYTES)
        if total > MAX_ZIP_TOTAL_BYTES:
            raise CorpusError(
                f"{name} would unpack to {_size(total)}, over the {_size(MAX_ZIP_TOTAL_BYTES)} limit for a whole "
                "archive (a zip bomb?); unpack it yourself and import the files in parts."
            )
        if not documents and len(data_files) == 1:
            return _read_zipped_data_file(archive, data_files[0], name, report, options, budget)
        for info in data_files:
            reason = ("a data file; when an archive holds .txt/.md documents only they are read"
                      if documents else "one of several data files; unpack the archive and import one file")
            report.skipped.append(SkippedItem(f"archive member {info.filename}", reason))
        if not documents:
            raise CorpusError(
                f"{name} holds no .txt or .md documents{' and several data files' if data_files else ''} "
                f"({_skipped_summary(report.skipped)}); "
                "put the texts in .txt files, or import one data file on its own."
            )
        files, texts, encodings = [], [], []
        for info in documents:
            raw = _zip_member_bytes(archive, info, report, budget)
            if raw is None:
                continue
            problem = _binary_problem(raw)
            if problem:
                report.skipped.append(SkippedItem(f"archive member {info.filename}", f"{problem}, not text"))
                continue
            try:
                text, codec, notes = _decode(raw, info.filename, options.get("encoding"))
            except CorpusError as exc:  # a chosen encoding that does not fit this file
                report.skipped.append(SkippedItem(f"archive member {info.filename}", _brief(exc)))
                continue
            report.warnings.extend(f"{info.filename}: {note}" for note in notes)
            files.append(info.filename)
            texts.append(text)
            encodings.append(codec)
    if not files:
        raise CorpusError(f"{name}: none of its .txt/.md files could be read ({_skipped_summary(report.skipped)}).")
    used = sorted(set(encodings))
    report.encoding = used[0] if len(used) == 1 else f"mixed ({', '.join(used)})"
    return pd.DataFrame({"file": files, "text": texts})


class _ZipBudget:
    """Bytes unpacked so far from one archive, against MAX_ZIP_TOTAL_BYTES."""

    def __init__(self, name: str, archive_bytes: int) -> None:
        self.name = name
        self.archive_bytes = archive_bytes
        self.unpacked = 0


def _zip_member_bytes(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, report: ImportReport, budget: _ZipBudget
) -> bytes | None:
    """A member's bytes, unpacked in chunks so that a zip bomb stops at a limit instead of
    filling the memory; None (and a skipped item) when it is encrypted, damaged or too big.

    The sizes in the headers are checked first, then what is really unpacked (the headers
    may lie). Going over the archive's total limit refuses the whole archive.
    """
    where = f"archive member {info.filename}"
    if info.flag_bits & 0x1:
        report.skipped.append(SkippedItem(where, "encrypted (password-protected); unzip it and import it unencrypted"))
        return None
    compressed = max(1, min(info.compress_size, budget.archive_bytes))

    def bomb(reason: str) -> None:
        report.skipped.append(SkippedItem(where, f"{reason} (a zip bomb?); unpack it yourself if it is genuine, "
                                                 "and import it on its own"))

    def too_big(size: str) -> str:
        return f"would unpack to {size}, over the {_size(MAX_ZIP_MEMBER_BYTES)} limit for one file"

    def ratio_too_high(size: int) -> str:
        return (f"expands {size / compressed:,.0f} times ({_size(compressed)} to {_size(size)}), over the "
                f"{MAX_ZIP_RATIO}:1 limit for one file")

    if info.file_size > MAX_ZIP_MEMBER_BYTES:
        bomb(too_big(_size(info.file_size)))
        return None
    if info.file_size > ZIP_RATIO_MIN_BYTES and info.file_size / compressed > MAX_ZIP_RATIO:
        bomb(ratio_too_high(info.file_size))
        return None
    chunks: list[bytes] = []
    unpacked = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_ZIP_CHUNK_BYTES):
                unpacked += len(chunk)
                if unpacked > MAX_ZIP_MEMBER_BYTES:
                    bomb(too_big(f"more than {_size(MAX_ZIP_MEMBER_BYTES)}"))
                    return None
                if unpacked > ZIP_RATIO_MIN_BYTES and unpacked / compressed > MAX_ZIP_RATIO:
                    bomb(ratio_too_high(unpacked))
                    return None
                if budget.unpacked + unpacked > MAX_ZIP_TOTAL_BYTES:
                    raise CorpusError(
                        f"{budget.name} unpacks to more than the {_size(MAX_ZIP_TOTAL_BYTES)} limit for a whole "
                        f"archive (reached at {where}; a zip bomb?). Unpack it yourself and import the files in parts."
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as exc:
        report.skipped.append(SkippedItem(where, f"could not be unpacked ({_brief(exc)})"))
        return None
    budget.unpacked += unpacked
    return b"".join(chunks)


def _read_zipped_data_file(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, report: ImportReport, options: dict[str, Any],
    budget: _ZipBudget,
) -> pd.DataFrame:
    raw = _zip_member_bytes(archive, info, report, budget)
    if raw is None:
        raise CorpusError(f"{name}: its data file {info.filename} could not be read ({report.skipped[-1].reason}).")
    frame, inner = read_file(raw, os.path.basename(info.filename), **options)
    report.source = f"{report.source}/{info.filename}"
    report.format, report.encoding, report.delimiter = inner.format, inner.encoding, inner.delimiter
    report.skipped.extend(inner.skipped)
    report.warnings.append(f"Read the data file {info.filename} from the archive.")
    report.warnings.extend(inner.warnings)
    return frame


def _skipped_summary(skipped: list[SkippedItem]) -> str:
    if not skipped:
        return "nothing else in it"
    shown = "; ".join(f"{item.where}: {item.reason}" for item in skipped[:3])
    return f"skipped {len(skipped)}: {shown}{'; ...' if len(skipped) > 3 else ''}"


def _size(n_bytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes} bytes"


def _brief(exc: Any) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _snippet(text, 200)


def _snippet(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------------------
# Column suggestions

_ID_WORDS = {"id", "ids", "uuid", "guid", "key", "respondent", "resp", "respid", "responseid", "doc", "docid",
             "document", "case", "caseid", "record", "recordid", "participant", "pid"}
_GROUP_WORDS = {"group", "groups", "region", "party", "country", "category", "condition", "treatment", "arm",
                "gender", "sex", "state", "source", "type", "class", "cluster", "wave", "segment", "city",
                "language", "lang", "platform", "channel", "site", "team", "faction", "cohort"}
_DATE_WORDS = {"date", "time", "datetime", "timestamp", "created", "createdat", "published", "posted",
               "submitted", "day", "year", "month", "when", "start", "end", "recorded"}
_TEXT_WORDS = {"text", "texts", "body", "content", "message", "comment", "comments", "answer", "response",
               "review", "post", "tweet", "speech", "transcript", "description", "verbatim", "open", "openended"}
_PROFILE_SAMPLE = 500


@dataclass
class _ColumnProfile:
    name: str
    words: set[str]
    is_string: bool
    is_datetime: bool
    is_integer: bool
    is_categorical: bool
    nonempty: int
    unique: int
    mean_length: float
    spaced_share: float
    numeric_share: float
    date_share: float
    epoch: bool = False  # whole numbers that read as Unix times


def suggest_columns(df: pd.DataFrame) -> ColumnRoles:
    """Suggest the text, id, group and date columns of a table.

    - text: the string column with the longest mean length (doubled for names like
      text/answer/comment), excluding numbers, categories and dates, and ranking id-like
      codes (all unique, no spaces, or named like an id) last;
    - id: a column with unique, non-empty values named like id/respondent/doc, else the
      first column of unique short codes or integers;
    - group: a string column with 2..50 distinct values that repeat, preferring names like
      group/region/party/country/category;
    - date: a datetime column, or one whose values mostly parse as dates, preferring names
      like date/time/created.
    """
    profiles = [_profile(name, df.iloc[:, position]) for position, name in enumerate(df.columns) if isinstance(name, str)]
    roles = ColumnRoles()

    def best(candidates: list[_ColumnProfile], preferred: set[str]) -> str | None:
        if not candidates:
            return None
        return max(candidates, key=lambda p: (bool(p.words & preferred), -profiles.index(p))).name

    dates = [p for p in profiles if p.is_datetime or (p.is_string and p.date_share >= 0.8)
             or (p.is_integer and p.words & {"year"} and p.date_share >= 0.8)
             or (p.epoch and p.words & _DATE_WORDS)]
    roles.date = best(dates, _DATE_WORDS)

    texts = [p for p in profiles
             if p.is_string and not p.is_categorical and p.name != roles.date and p.nonempty
             and p.numeric_share < 0.9 and p.date_share < 0.8]
    if texts:
        roles.text = max(texts, key=lambda p: (not _looks_like_codes(p), _text_score(p), -profiles.index(p))).name

    unique = [p for p in profiles if p.name not in (roles.text, roles.date) and p.nonempty == len(df)
              and p.unique == p.nonempty and len(df) > 1 and not p.is_datetime and (p.is_integer or p.is_string)]
    # The file's own doc_id first: used as the ids it keeps its name (else it is renamed).
    named = sorted((p for p in unique if p.words & _ID_WORDS), key=lambda p: p.name != "doc_id")
    codes = [p for p in unique if p.is_integer or (p.mean_length <= 40 and p.spaced_share == 0)]
    if named or codes:
        roles.id = (named or codes)[0].name

    groups = [p for p in profiles
              if p.is_string and p.name not in (roles.text, roles.date, roles.id) and 2 <= p.unique <= 50
              and p.unique < p.nonempty
              and (p.words & _GROUP_WORDS or (p.numeric_share < 0.5 and p.unique <= 0.5 * p.nonempty))]
    roles.group = best(groups, _GROUP_WORDS)
    return roles


def _looks_like_codes(profile: _ColumnProfile) -> bool:
    """Ids, file names, URLs: unique values without spaces, or a column named like an id."""
    unique_tokens = profile.nonempty > 1 and profile.unique == profile.nonempty and profile.spaced_share < 0.1
    return unique_tokens or bool(profile.words & _ID_WORDS)


def _text_score(profile: _ColumnProfile) -> float:
    # Length decides; a name like "text" or "answer" breaks near-ties in short data.
    return profile.mean_length * (2.0 if profile.words & _TEXT_WORDS else 1.0)


def _name_words(name: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)  # ResponseId -> Response Id
    words = {word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word}
    return words | {re.sub(r"[^a-z0-9]", "", name.lower())}


def _profile(name: str, column: pd.Series) -> _ColumnProfile:
    dtype = column.dtype
    is_datetime = pd.api.types.is_datetime64_any_dtype(dtype)
    is_string = not is_datetime and (
        dtype == object or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype))
    )
    present = column.dropna()
    # SPSS and Excel store whole numbers as floats; 1.0, 2.0 are integers for our purpose.
    is_integer = not pd.api.types.is_bool_dtype(dtype) and (
        pd.api.types.is_integer_dtype(dtype)
        or (pd.api.types.is_float_dtype(dtype) and bool((present % 1 == 0).all()))
    )
    values = present.astype(str)
    if is_string:
        values = values[values.str.strip() != ""]
    nonempty = len(values)
    sample = values.iloc[:: max(1, nonempty // _PROFILE_SAMPLE)].iloc[:_PROFILE_SAMPLE] if nonempty else values
    lengths = values.str.len() if is_string else pd.Series(dtype=float)
    if is_string:
        numeric_share = _share(pd.to_numeric(sample, errors="coerce").notna())
    else:
        numeric_share = float(pd.api.types.is_numeric_dtype(dtype))
    if is_integer:
        date_share = _share(present.between(1000, 2999))  # only used for columns named "year"
    elif is_string:
        date_share = _date_share(sample)
    else:
        date_share = float(is_datetime)
    return _ColumnProfile(
        name=name,
        words=_name_words(name),
        is_string=is_string,
        is_datetime=is_datetime,
        is_integer=is_integer,
        is_categorical=isinstance(dtype, pd.CategoricalDtype),
        nonempty=nonempty,
        unique=int(values.nunique()) if nonempty else 0,
        mean_length=float(lengths.sum() / len(column)) if is_string and len(column) else 0.0,
        spaced_share=_share(sample.str.contains(r"\s", regex=True)) if is_string and nonempty else 0.0,
        numeric_share=numeric_share,
        date_share=date_share,
        epoch=(is_integer or (is_string and numeric_share == 1.0))
        and numbers_as_dates(pd.to_numeric(sample, errors="coerce")) in ("s", "ms"),
    )


def _share(flags: pd.Series) -> float:
    return float(flags.mean()) if len(flags) else 0.0


def _date_share(sample: pd.Series) -> float:
    """Share of values that parse as dates; values without a digit or made of digits only
    (numbers, codes) never count, and long values (texts) are not tried."""
    if not len(sample):
        return 0.0
    candidates = sample[sample.str.contains(r"\d", regex=True) & ~sample.str.fullmatch(r"[+-]?\d+(?:[.,]\d+)?")
                        & (sample.str.len() <= 40)]
    if not len(candidates):
        return 0.0
    return parse_date_strings(candidates).notna().sum() / len(sample)


# --------------------------------------------------------------------------------------
# build_corpus / load_corpus


def build_corpus(
    df: pd.DataFrame,
    text_column: str,
    id_column: str | None = None,
    group_column: str | None = None,
    date_column: str | None = None,
    source: str = "",
    *,
    date_order: str | None = None,
) -> Corpus:
    """Validate the chosen columns and return a Corpus with ``doc_id`` first.

    Without an id column the ids are ``doc-000001``, ... by row position (the same file
    always gets the same ids). With one, its values as strings (integers without ``.0``)
    are the ids; they must be non-empty and unique.

    A table with its own ``doc_id`` column: without an id column chosen, that column holds
    the ids when it is unique and non-empty; otherwise (another id column, ``ROW_IDS``, or
    a ``doc_id`` that cannot be ids) it is kept, renamed ``file_doc_id``. ``Corpus.notes``
    says which happened, and how the date column's dates are read (``date_order``:
    "day-first" or "month-first" for numeric dates; None reads the order the column shows).
    """
    duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if duplicated:
        names = ", ".join(map(repr, duplicated))
        raise CorpusError(f"The table has duplicate column names ({names}); rename them first.")
    for role, column in (("text", text_column), ("id", id_column), ("group", group_column), ("date", date_column)):
        if column is not None and column not in df.columns and not (role == "id" and column == ROW_IDS):
            available = ", ".join(repr(str(c)) for c in df.columns[:30])
            raise CorpusError(f"The {role} column {column!r} is not in the table; the columns are: {available}.")
    notes: list[str] = []
    data = df.reset_index(drop=True).copy(deep=False)  # copy-on-write: the input stays as it is
    if "doc_id" in data.columns and id_column != "doc_id":
        other_role = "doc_id" in (text_column, group_column, date_column)
        problem = _id_problem(data["doc_id"], "doc_id") if id_column is None and not other_role else None
        if id_column is None and problem is None and not other_role:
            id_column = "doc_id"
            notes.append("The file's own 'doc_id' column is unique and non-empty in every row, so it holds the "
                         f"document ids; to number the rows instead, choose no id column ({ROW_IDS!r}).")
        else:
            new_name = FILE_DOC_ID
            while new_name in data.columns:
                new_name += "_"
            data = data.rename(columns={"doc_id": new_name})
            why = (f"it cannot be the ids: {problem}" if problem
                   else "another id column was chosen" if id_column not in (None, ROW_IDS)
                   else "it was chosen for another role" if other_role
                   else "row numbers were chosen as ids")
            notes.append(f"The file's own 'doc_id' column was kept as {new_name!r} because {why}.")
            text_column, group_column, date_column = (
                new_name if column == "doc_id" else column for column in (text_column, group_column, date_column)
            )
    if id_column == ROW_IDS and ROW_IDS not in data.columns:
        id_column = None
    _check_textual(data, text_column)
    if id_column is None:
        width = max(DOC_ID_MIN_WIDTH, len(str(len(data))))
        doc_ids = [f"doc-{position:0{width}d}" for position in range(1, len(data) + 1)]
    else:
        doc_ids = _checked_ids(data[id_column], id_column)
    if id_column == "doc_id":
        data = data.drop(columns="doc_id")
    data.insert(0, "doc_id", doc_ids)
    if date_column is not None:
        note = date_note(data[date_column], date_column, date_order)
        if note:
            notes.append(note)
    return Corpus(data=data, text_column=text_column, id_column=id_column, group_column=group_column,
                  date_column=date_column, source=source, notes=notes, date_order=date_order)


def _check_textual(df: pd.DataFrame, column: str) -> None:
    values = df[column]
    dtype = values.dtype
    kind = None
    if values.isna().all():  # an all-NaN column is float, but it holds nothing, not numbers
        raise CorpusError(
            f"The text column {column!r} is empty in every row; choose the column that holds the texts."
        )
    if pd.api.types.is_bool_dtype(dtype):
        kind = "true/false values"
    elif pd.api.types.is_numeric_dtype(dtype):
        kind = "only numbers"
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        kind = "dates"
    else:
        present = values.dropna().astype(str).str.strip()
        present = present[present != ""]
        if present.empty:
            raise CorpusError(
                f"The text column {column!r} is empty in every row; choose the column that holds the texts."
            )
        if pd.to_numeric(present, errors="coerce").notna().all():
            kind = "only numbers"
    if kind:
        suggestion = suggest_columns(df.drop(columns=[column])).text
        hint = f" (perhaps {suggestion!r})" if suggestion else ""
        raise CorpusError(f"The column {column!r} holds {kind}, not text; choose the column with the texts{hint}.")


def _id_values(column: pd.Series) -> list[str]:
    ids = []
    for value, is_missing in zip(column.tolist(), column.isna().tolist()):
        if is_missing:
            ids.append("")
        elif isinstance(value, float) and value.is_integer():
            ids.append(str(int(value)))  # integer ids stored as floats (because of a gap) lose the ".0"
        else:
            ids.append(str(value))
    return ids


def _id_problem(column: pd.Series, name: str, ids: list[str] | None = None) -> str | None:
    """Why the column cannot hold document ids (empty or repeated values), or None."""
    ids = _id_values(column) if ids is None else ids
    empty_rows = [row for row, value in enumerate(ids, start=1) if not value.strip()]
    if empty_rows:
        shown = ", ".join(map(str, empty_rows[:_MAX_LISTED]))
        return (f"the id column {name!r} is empty on {len(empty_rows)} row(s) (data rows {shown}"
                f"{', ...' if len(empty_rows) > _MAX_LISTED else ''})")
    rows_of: dict[str, list[int]] = {}
    for row, value in enumerate(ids, start=1):
        rows_of.setdefault(value, []).append(row)
    repeated = {value: rows for value, rows in rows_of.items() if len(rows) > 1}
    if repeated:
        examples = "; ".join(
            f"{value!r} on data rows {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}"
            for value, rows in itertools.islice(repeated.items(), 5)
        )
        return f"the id column {name!r} has {len(repeated)} repeated value(s), e.g. {examples}"
    return None


def _checked_ids(column: pd.Series, name: str) -> list[str]:
    ids = _id_values(column)
    problem = _id_problem(column, name, ids)
    if problem and "is empty on" in problem:
        raise CorpusError(
            f"{problem[0].upper()}{problem[1:]}; fill in the ids, or choose no id column "
            "and Textlab numbers the rows."
        )
    if problem:
        raise CorpusError(
            f"{problem[0].upper()}{problem[1:]}. Ids must be unique: "
            "fix them, or choose another id column or none (Textlab then numbers the rows)."
        )
    return ids


def load_corpus(
    source: Any,
    name: str | None = None,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    group_column: str | None = None,
    date_column: str | None = None,
    date_order: str | None = None,
    **read_kwargs: Any,
) -> tuple[Corpus, ImportReport]:
    """Read a file and build a corpus in one step.

    ``text_column`` None (or "auto") uses the suggested text column. ``id_column`` None (or
    "auto") uses the suggested id column, as the app does, when its values are unique and
    non-empty, else row numbers; ``ROW_IDS`` ("none") always numbers the rows
    (``doc-000001``, ...). ``group_column`` and ``date_column`` None leave the role unused;
    "auto" uses the suggestion (which may be None). Which id column was used, and why, is
    noted in ``report.warnings``, and so is how the dates are read (``date_order``).
    """
    frame, report = read_file(source, name, **read_kwargs)
    id_column = "auto" if id_column is None else id_column
    wanted = (text_column, id_column, group_column, date_column)
    suggested = suggest_columns(frame) if text_column is None or "auto" in wanted else ColumnRoles()
    if text_column in (None, "auto"):
        text_column = suggested.text
        if text_column is None:
            columns = ", ".join(map(repr, frame.columns[:30]))
            raise CorpusError(
                f"No column of {report.source} looks like text (columns: {columns}); choose the text column."
            )
    if id_column == "auto":
        id_column = suggested.id if suggested.id != text_column else None
        problem = _id_problem(frame[id_column], id_column) if id_column is not None else None
        if problem:
            report.warnings.append(f"Numbered the rows as ids (doc-000001, ...) because {problem}.")
            id_column = None
        elif id_column is not None:
            report.warnings.append(
                f"Used the column {id_column!r} as document ids (suggested: unique and non-empty in every row); "
                f"choose another id column, or {ROW_IDS!r} to number the rows (doc-000001, ...)."
            )
    group_column = suggested.group if group_column == "auto" else group_column
    date_column = suggested.date if date_column == "auto" else date_column
    corpus = build_corpus(frame, text_column, id_column, group_column, date_column, source=report.source,
                          date_order=date_order)
    report.warnings.extend(corpus.notes)
    return corpus, report


# --------------------------------------------------------------------------------------
# Quality report


QUALITY_CHUNK = 50_000  # texts per pass of the quality report: bounded memory at a million rows


def quality_report(corpus: Corpus, long_threshold_tokens: int = 512) -> QualityReport:
    """Empty texts, duplicates, length distributions and texts longer than a model reads.

    A duplicate is a row whose stripped text equals an earlier non-empty row's; each
    example counts all rows with that text.

    One pass over the text column in chunks of :data:`QUALITY_CHUNK`: duplicates are counted
    by a 16-byte digest of each stripped text (not the text itself), so besides the column the
    report holds two integers per row and one digest per distinct text; a million short texts
    need about 100 MB more, not a second copy of the corpus.
    """
    column = corpus.data[corpus.text_column]
    doc_ids = corpus.data["doc_id"]
    n = len(column)
    first_row: dict[bytes, int] = {}  # digest of a distinct stripped text -> its first row
    counts: Counter = Counter()
    empty_positions: list[int] = []
    n_empty = 0
    words = np.zeros(n, dtype=np.int64)
    tokens = np.zeros(n, dtype=np.int64)
    filled_mask = np.zeros(n, dtype=bool)
    for start in range(0, n, QUALITY_CHUNK):
        part = column.iloc[start:start + QUALITY_CHUNK]
        values = ["" if missing else str(v) for v, missing in zip(part.tolist(), part.isna().tolist())]
        filled_here: list[int] = []
        for offset, text in enumerate(values):
            stripped = text.strip()
            if not stripped:
                n_empty += 1
                if len(empty_positions) < _MAX_IDS:
                    empty_positions.append(start + offset)
                continue
            filled_here.append(offset)
            digest = hashlib.blake2b(stripped.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            counts[digest] += 1
            first_row.setdefault(digest, start + offset)
        kept = [values[i] for i in filled_here]
        rows = np.asarray(filled_here, dtype=np.int64) + start
        filled_mask[rows] = True
        words[rows] = word_counts(kept)
        tokens[rows] = token_counts(kept)
    words, tokens = words[filled_mask], tokens[filled_mask]
    filled = np.flatnonzero(filled_mask)
    duplicate_examples = []
    for digest, count in counts.most_common(10):
        if count > 1:
            text = column.iloc[first_row[digest]]
            duplicate_examples.append((_snippet(str(text).strip()), count))
    long_positions = filled[np.flatnonzero(tokens > long_threshold_tokens)]
    return QualityReport(
        rows=n,
        empty=n_empty,
        empty_ids=[str(doc_ids.iloc[i]) for i in empty_positions],
        duplicates=sum(count - 1 for count in counts.values()),
        duplicate_examples=duplicate_examples,
        words=_distribution(words),
        tokens=_distribution(tokens),
        long_texts=len(long_positions),
        long_ids=[str(doc_ids.iloc[i]) for i in long_positions[:_MAX_IDS]],
        long_threshold=long_threshold_tokens,
        word_lengths=words,
        token_lengths=tokens,
    )


def _distribution(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {key: 0 for key in ("min", "p25", "median", "mean", "p75", "p95", "max")}
    p25, median, p75, p95 = np.percentile(values, [25, 50, 75, 95])
    return {
        "min": int(values.min()), "p25": float(p25), "median": float(median), "mean": float(values.mean()),
        "p75": float(p75), "p95": float(p95), "max": int(values.max()),
    }
