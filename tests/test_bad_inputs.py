"""Malformed and hostile input files: each gets a specific, useful outcome.

One table: a file (name + bytes, built lazily), options for ``load_corpus``, and either the
words the CorpusError must contain or what the import must produce (rows, skipped items,
warnings, and a check on the corpus).
"""

from __future__ import annotations

import codecs
import decimal
import io
import tempfile
import zipfile
from pathlib import Path
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest

from analysis import corpus as corpus_module
from analysis.corpus import Corpus, ImportReport, load_corpus
from analysis.errors import CorpusError
from analysis.workspace import parquet_safe


@dataclass
class Case:
    id: str
    file: str  # the file name, which picks the format
    make: Callable[[], bytes]
    options: dict[str, Any] = field(default_factory=dict)
    error: tuple[str, ...] = ()  # words the error message must contain
    rows: int | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # (where, words in the reason)
    warnings: tuple[str, ...] = ()  # words that some warning must contain
    check: Callable[[Corpus, ImportReport], None] | None = None
    limits: dict[str, int] = field(default_factory=dict)  # corpus module constants to lower


def text(content: str, encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: content.encode(encoding)


def raw(content: bytes) -> Callable[[], bytes]:
    return lambda: content


def zipped(members: dict[str, bytes | str]) -> Callable[[], bytes]:
    def make() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path, content in members.items():
                archive.writestr(path, content)
        return buffer.getvalue()

    return make


def workbook(rows: list[list[Any]] | None) -> Callable[[], bytes]:
    def make() -> bytes:
        book = openpyxl.Workbook()
        for row in rows or []:
            book.active.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()

    return make


def parquet(columns: dict[str, Any]) -> Callable[[], bytes]:
    def make() -> bytes:
        buffer = io.BytesIO()
        pq.write_table(pa.table(columns), buffer)
        return buffer.getvalue()

    return make


def stats_file(kind: str, frame: dict[str, list[Any]], **options: Any) -> Callable[[], bytes]:
    """A Stata (.dta) or SPSS (.sav) file written by pyreadstat (which writes to paths only)."""
    def make() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"data.{kind}"
            writer = pyreadstat.write_dta if kind == "dta" else pyreadstat.write_sav
            writer(pd.DataFrame(frame), str(path), **options)
            return path.read_bytes()

    return make


def column_is(name: str, *expected: Any) -> Callable[[Corpus, ImportReport], None]:
    def check(corpus: Corpus, report: ImportReport) -> None:
        values = [None if pd.isna(v) else v for v in corpus.data[name].tolist()]
        assert values == list(expected), values

    return check


def ids_are(*expected: str, id_column: str | None) -> Callable[[Corpus, ImportReport], None]:
    def check(corpus: Corpus, report: ImportReport) -> None:
        assert corpus.doc_ids == list(expected) and corpus.id_column == id_column

    return check


def wide_header(columns: int) -> Callable[[], bytes]:
    return lambda: (",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("x" * columns) + "\n").encode()


def texts_are(*expected: str) -> Callable[[Corpus, ImportReport], None]:
    def check(corpus: Corpus, report: ImportReport) -> None:
        assert corpus.texts == list(expected)

    return check


def encoding_is(*names: str, texts: tuple[str, ...]) -> Callable[[Corpus, ImportReport], None]:
    def check(corpus: Corpus, report: ImportReport) -> None:
        assert report.encoding in names
        assert corpus.texts == list(texts)

    return check


def huge_cell() -> bytes:
    return b'id,text\n1,"' + b"x" * 100_000_000 + b'"\n'


def huge_cell_check(corpus: Corpus, report: ImportReport) -> None:
    assert len(corpus.data.loc[0, "text"]) == 100_000_000


LONG_LINE = "word " * 400_000  # 2 MB, and the file has no final newline

CASES = [
    Case("cp1252-euro", "data.csv", text("id;text\n1;Le café coûte 5 €\n2;Très bien\n", "cp1252"), rows=2,
         check=encoding_is("cp1252", texts=("Le café coûte 5 €", "Très bien"))),
    Case("latin-1", "data.csv", text("id;text\n1;Grüße aus München\n2;Die Straße ist groß\n", "latin-1"), rows=2,
         check=encoding_is("cp1252", "iso8859-1", texts=("Grüße aus München", "Die Straße ist groß"))),
    Case("utf-16-le-bom", "data.csv", raw(codecs.BOM_UTF16_LE + "id,text\n1,Ünïcödé ✓\n".encode("utf-16-le")), rows=1,
         check=encoding_is("utf-16-le", texts=("Ünïcödé ✓",))),
    Case("utf-16-be-bom", "data.csv", raw(codecs.BOM_UTF16_BE + "id,text\n1,Привет мир\n".encode("utf-16-be")), rows=1,
         check=encoding_is("utf-16-be", texts=("Привет мир",))),
    Case("utf-16-le-no-bom", "data.csv", text("id,text\n1,hello there\n", "utf-16-le"), rows=1,
         check=encoding_is("utf-16-le", texts=("hello there",))),
    Case("utf-8-bom", "data.csv", raw(codecs.BOM_UTF8 + "id,text\n1,naïve\n".encode()), rows=1,
         check=lambda c, r: (r.columns == ["id", "text"] and c.texts == ["naïve"]) or pytest.fail(str(r))),
    Case("utf-8-few-bad-bytes", "data.csv", raw("id,text\n1,ça va très bien merci\n".encode() + b"2,bad \xff byte\n"),
         rows=2, warnings=("not valid UTF-8",), check=encoding_is("utf-8", texts=("ça va très bien merci", "bad \ufffd byte"))),
    Case("mixed-delimiters", "data.csv", text("id;text\n1;hello, world\n2;fine\n3,oops\n"), rows=3,
         warnings=("padded", "line 4"),
         check=lambda c, r: (r.delimiter == ";" and c.texts == ["hello, world", "fine", ""]) or pytest.fail(str(r))),
    Case("ragged-rows", "data.csv", text("id,text\n1,ok\n2,too,many\n3,fine\n4,trailing empty,,\n"), rows=3,
         skipped=(("line 3", "3 fields where the header has 2"),), check=texts_are("ok", "fine", "trailing empty")),
    Case("empty-file", "data.csv", raw(b""), error=("data.csv", "is empty")),
    Case("whitespace-only", "data.csv", text("  \n\t\n   \n"), error=("data.csv", "only whitespace")),
    Case("header-only", "data.csv", text("id,text\n"), error=("has column names but no rows", "id, text")),
    Case("binary-named-csv", "data.csv", raw(bytes(range(256)) * 40), error=("binary file (NUL bytes at byte 0)", "export it as CSV")),
    Case("xlsx-named-csv", "data.csv", workbook([["id", "text"], [1, "a"]]), error=("Excel workbook", "not text")),
    Case("huge-cell-100mb", "data.csv", huge_cell, rows=1, check=huge_cell_check),
    Case("duplicate-column-names", "data.csv", text("text,text,id\nfirst,second,1\n"), options={"text_column": "text"}, rows=1,
         warnings=("Duplicate column names", "'text' (2x)", "text.1"),
         check=lambda c, r: (r.columns == ["text", "text.1", "id"] and c.texts == ["first"]) or pytest.fail(str(r))),
    Case("formula-injection", "data.csv", text("id,text\n1,\"=cmd|' /C calc'!A0\"\n2,+SUM(A1:A9)\n3,@HYPERLINK(\"http://x\")\n"),
         options={"text_column": "text"}, rows=3,
         check=texts_are("=cmd|' /C calc'!A0", "+SUM(A1:A9)", '@HYPERLINK("http://x")')),
    Case("html-and-script", "data.csv", text('id,text\n1,<script>alert("x")</script>\n2,<b>bold</b> &amp; <img src=x onerror=alert(1)>\n'),
         rows=2, check=texts_are('<script>alert("x")</script>', "<b>bold</b> &amp; <img src=x onerror=alert(1)>")),
    Case("zip-nested-and-non-text", "data.zip", zipped({
        "interviews/2023/a.txt": "First interview.", "interviews/b.md": "Second, in *markdown*.",
        "img/photo.png": b"\x89PNG\r\n\x1a\n" + bytes(200), "__MACOSX/interviews/._a.txt": b"\x00\x05\x16\x07",
        ".hidden.txt": "secret", "notes/binary.txt": bytes(range(256)) * 4}),
         options={"txt_mode": "file"}, rows=2,
         skipped=(("archive member img/photo.png", "not a .txt or .md"), ("archive member __MACOSX/interviews/._a.txt", "macOS"),
                  ("archive member .hidden.txt", "hidden"), ("archive member notes/binary.txt", "binary")),
         check=lambda c, r: (c.data["file"].tolist() == ["interviews/2023/a.txt", "interviews/b.md"]) or pytest.fail(str(c.data))),
    Case("empty-zip", "data.zip", zipped({}), error=("empty zip archive",)),
    Case("corrupt-zip", "data.zip", lambda: zipped({"a.txt": "hello " * 100})()[:60], error=("not a valid zip archive", "damaged")),
    Case("zip-bomb", "data.zip", zipped({"big.txt": "a" * 5000, "ok.txt": "fine"}), rows=1, limits={"MAX_ZIP_MEMBER_BYTES": 1000},
         skipped=(("archive member big.txt", "zip bomb"),), check=texts_are("fine")),
    Case("corrupt-xlsx", "data.xlsx", raw(b"this is not a workbook at all"), error=("could not be opened as an Excel workbook",)),
    Case("xlsx-zip-but-not-workbook", "data.xlsx", zipped({"hello.txt": "hi"}), error=("could not be opened as an Excel workbook",)),
    Case("xlsx-no-data", "data.xlsx", workbook(None), error=("has no data", "empty")),
    Case("xlsx-header-only", "data.xlsx", workbook([["id", "text"]]), error=("has column names but no rows",)),
    Case("xlsx-missing-sheet", "data.xlsx", workbook([["text"], ["a"]]), options={"sheet": "Answers"},
         error=("no sheet named 'Answers'", "'Sheet'")),
    Case("json-scalar", "data.json", text("42"), error=("single JSON number", "list of records")),
    Case("json-malformed", "data.json", text('[{"text": "a"},\n {"text": "b"'), error=("not valid JSON", "line 2")),
    Case("json-not-records", "data.json", text('{"a": 1, "b": "two"}'), error=("without a list of records",)),
    Case("jsonl-bad-line", "data.jsonl", text('{"text": "one"}\n{"text": "two",,}\n[1, 2]\n{"text": "three"}\n'), rows=2,
         skipped=(("line 2", "not valid JSON"), ("line 3", "not a record")), check=texts_are("one", "three")),
    Case("unsupported-extension", "report.docx", raw(b"PK\x03\x04"), error=("'.docx' files are not supported", ".csv", ".zip")),
    Case("text-column-of-numbers", "data.csv", text("score,answer\n1,I agree\n2,No\n"), options={"text_column": "score"},
         error=("'score' holds only numbers", "'answer'")),
    Case("text-column-missing", "data.csv", text("id,answer\n1,yes\n"), options={"text_column": "text"},
         error=("'text' is not in the table", "'answer'")),
    Case("text-column-empty", "data.csv", text("id,answer,other\n1,,x\n2,  ,y\n"), options={"text_column": "answer"},
         error=("empty in every row",)),
    Case("duplicate-ids", "data.csv", text("id,text\n1,a\n2,b\n1,c\n"), options={"id_column": "id"},
         error=("repeated", "'1' on data rows 1, 3")),
    Case("empty-ids", "data.csv", text("id,text\n1,a\n,b\n3,c\n"), options={"id_column": "id"}, error=("empty on 1 row", "data rows 2")),
    # Finding 2: a file's own doc_id is used as the ids when it can be, and kept (renamed) when not.
    Case("doc-id-column-is-used", "data.csv", text("doc_id,text\nA,a\nB,b\n"), options={"text_column": "text"}, rows=2,
         warnings=("'doc_id' as document ids",), check=ids_are("A", "B", id_column="doc_id")),
    Case("doc-id-column-repeated", "data.csv", text("doc_id,text\nA,a\nA,b\n"), options={"text_column": "text"}, rows=2,
         warnings=("kept as 'file_doc_id'", "repeated"),
         check=lambda c, r: (c.doc_ids == ["doc-000001", "doc-000002"] and c.data["file_doc_id"].tolist() == ["A", "A"])
         or pytest.fail(str(c.data))),
    Case("doc-id-column-and-other-id", "data.csv", text("doc_id,rid,text\nA,r1,a\nB,r2,b\n"),
         options={"text_column": "text", "id_column": "rid"}, rows=2, warnings=("kept as 'file_doc_id'", "another id column"),
         check=ids_are("r1", "r2", id_column="rid")),
    Case("suggested-id-by-default", "data.csv", text("respondent,text\nR1,hello there\nR2,fine thanks\n"), rows=2,
         warnings=("'respondent' as document ids",), check=ids_are("R1", "R2", id_column="respondent")),
    Case("row-ids-on-request", "data.csv", text("respondent,text\nR1,hello there\nR2,fine thanks\n"),
         options={"id_column": "none"}, rows=2, check=ids_are("doc-000001", "doc-000002", id_column=None)),
    # Finding 16: crashes and hangs become clear refusals.
    Case("json-nested-100k-deep", "data.json", text("[" * 100_000 + "]" * 100_000), error=("too deeply", "flat list")),
    Case("json-record-nested-deep", "data.json", text('[{"text": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}]"),
         error=("too deeply",)),
    Case("jsonl-line-nested-deep", "data.jsonl", text('{"text": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + '}\n{"text": "b"}\n'),
         rows=1, skipped=(("line 1", "too deeply"),), check=texts_are("b")),
    Case("csv-million-columns", "data.csv", wide_header(1_000_000), error=("1,000,000 columns", "at most 10,000", "delimiter")),
    Case("csv-too-wide", "data.csv", wide_header(60), limits={"MAX_COLUMNS": 50}, error=("60 columns", "at most 50")),
    Case("jsonl-too-many-keys", "data.jsonl", text('{"text": "a", "k1": 1}\n{"text": "b", "k2": 1, "k3": 2}\n'),
         limits={"MAX_COLUMNS": 3}, error=("more than 3 different keys", "line 2")),
    Case("parquet-too-wide", "data.parquet", parquet({f"c{i}": ["x"] for i in range(6)}), limits={"MAX_COLUMNS": 5},
         error=("6 columns", "at most 5")),
    Case("zip-bomb-ratio", "data.zip", zipped({"bomb.txt": "a" * 3_000_000, "ok.txt": "fine"}), rows=1,
         skipped=(("archive member bomb.txt", "over the 100:1 limit"),), check=texts_are("fine")),
    Case("zip-bomb-total", "data.zip", zipped({f"part{i}.txt": "word " * 200 for i in range(5)}),
         limits={"MAX_ZIP_TOTAL_BYTES": 3000}, error=("over the 2.9 KB limit for a whole archive", "in parts")),
    Case("zip-bomb-data-file", "data.zip", zipped({"big.csv": "id,text\n" + "1,aaaa\n" * 500_000}),
         error=("big.csv could not be read", "100:1 limit")),
    # Finding 17: nothing changes silently on import.
    Case("parquet-nested-and-decimal", "data.parquet", parquet({
        "text": ["a", "b"], "tags": [[1, 2], None], "meta": [{"x": 1, "y": "z"}, {"x": 2, "y": None}],
        "pairs": pa.array([[("k", 1)], []], type=pa.map_(pa.string(), pa.int64())),
        "price": pa.array([decimal.Decimal("1.50"), None], type=pa.decimal128(5, 2)),
        "big": pa.array([decimal.Decimal("12345678901234567890.1"), None], type=pa.decimal128(30, 1))}),
         options={"text_column": "text"}, rows=2, warnings=("read as JSON text: 'tags', 'meta', 'pairs'", "floats", "every digit"),
         check=lambda c, r: (c.data.loc[0, ["tags", "meta", "pairs", "price", "big"]].tolist()
                             == ["[1, 2]", '{"x": 1, "y": "z"}', '{"k": 1}', 1.5, "12345678901234567890.1"])
         or pytest.fail(str(c.data.loc[0].tolist()))),
    Case("spss-user-missing", "data.sav",
         stats_file("sav", {"text": ["a", "b", "c"], "q": [1.0, 99.0, 99.0]},
                    variable_value_labels={"q": {1: "agree", 99: "refused"}}, missing_ranges={"q": [99]}),
         rows=3, warnings=("user-missing", "99 'refused' (2 rows)"), check=column_is("q", "agree", "refused", "refused")),
    Case("jsonl-bom-lines", "data.jsonl", raw(codecs.BOM_UTF8 + b'{"text": "one"}\n' + codecs.BOM_UTF8 + b'{"text": "two"}\n'),
         rows=2, warnings=("byte-order mark", "line 2"), check=texts_are("one", "two")),
    Case("json-duplicate-keys-and-infinity", "data.json", text('[{"text": "a", "text": "b", "n": Infinity}, {"text": "c", "n": NaN}]'),
         rows=2, warnings=("repeat a key ('text')", "Infinity (1x), NaN (1x)"), check=texts_are("b", "c")),
    Case("title-line-above-header", "data.csv", text("Survey export March 2024\nid,text\n1,hello there\n2,fine\n"), rows=2,
         warnings=("Skipped 1 title line(s)", "line 1: 'Survey export March 2024'", "header is line 2"),
         check=lambda c, r: (r.columns == ["id", "text"] and c.texts == ["hello there", "fine"]) or pytest.fail(str(r))),
    Case("title-line-with-empty-cells", "data.csv", text("Survey export;;\n\nid;text;region\n1;hello;N\n2;fine;S\n"), rows=2,
         warnings=("title line", "header is line 3"), check=texts_are("hello", "fine")),
    Case("pandas-index-header-is-not-a-title", "data.csv", text(",text\n0,hello there\n1,fine thanks\n"), rows=2,
         check=lambda c, r: (r.columns == ["Unnamed: 0", "text"] and c.texts == ["hello there", "fine thanks"])
         or pytest.fail(str(r))),
    Case("bom-in-the-middle", "data.csv", raw("id,text\n1,first file\n".encode() + codecs.BOM_UTF8 + "id,text\n2,second file\n".encode()),
         rows=2, warnings=("byte-order mark starts line 3", "header row is repeated on line 3", "dropped"),
         check=texts_are("first file", "second file")),
    Case("repeated-header-row", "data.csv", text("id,text\n1,a\nid,text\n2,b\n"), rows=2,
         warnings=("header row is repeated on line 3",), check=texts_are("a", "b")),
    Case("bare-cr-in-unquoted-cell", "data.csv", text("id,text\n1,first part\rsecond part\n2,fine\n"), rows=2,
         warnings=("carriage return", "line 2", "kept inside its cell"), check=texts_are("first part\rsecond part", "fine")),
    Case("utf-8-and-cp1252-lines", "data.csv",
         raw("id;text\n1;Grüße aus München\n".encode() + "2;Très bien, café\n".encode("cp1252") + "3;naïve ✓\n".encode()),
         rows=3, warnings=("mixes UTF-8 with Windows-1252", "line 3"),
         check=encoding_is("mixed (utf-8, cp1252)", texts=("Grüße aus München", "Très bien, café", "naïve ✓"))),
    Case("dates-day-first-from-the-column", "data.csv", text("date,text\n04.03.2021,a\n13.03.2021,b\n2021-03-20,c\n"),
         options={"text_column": "text", "date_column": "date"}, rows=3, warnings=("read day-first", "'13.03.2021' has no month 13"),
         check=lambda c, r: (c.dates().tolist() == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-13"), pd.Timestamp("2021-03-20")])
         or pytest.fail(str(c.dates().tolist()))),
    Case("dates-with-dots-are-day-first", "data.csv", text("date,text\n04.03.2021,a\n05.03.2021,b\n"),
         options={"text_column": "text", "date_column": "date"}, rows=2, warnings=("read day-first", "written with dots"),
         check=lambda c, r: (c.dates().tolist() == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-05")]) or pytest.fail("")),
    Case("dates-ambiguous-order", "data.csv", text("date,text\n04/03/2021,a\n05/03/2021,b\n"),
         options={"text_column": "text", "date_column": "date"}, rows=2, warnings=("could be day-first or month-first", "choose the order"),
         check=lambda c, r: (c.data["date"].tolist() == ["04/03/2021", "05/03/2021"]
                             and pytest.raises(CorpusError, c.dates)) or pytest.fail("")),
    Case("dates-as-unix-time", "data.csv", text("created_at,text\n1614816000,hello there\n1614902400,fine thanks\n"),
         options={"text_column": "text", "date_column": "auto"}, rows=2, warnings=("Unix time in seconds",),
         check=lambda c, r: (c.date_column == "created_at"
                             and c.dates().tolist() == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-05")]) or pytest.fail("")),
    Case("xlsx-formulas-without-values", "data.xlsx", workbook([["id", "text"], [1, "plain"], [2, '=CONCATENATE("a","b")'], [3, "=A3&A4"]]),
         options={"text_column": "text"}, rows=3, warnings=("2 formula cell(s)", "no saved value", "B3, B4", "save it again"),
         check=texts_are("plain", "", "")),
    Case("xlsx-title-row-above-header", "data.xlsx", workbook([["Survey results 2024"], [], ["id", "text", "region"],
                                                               [1, "hello there", "N"], [2, "fine thanks", None]]),
         options={"text_column": "text"}, rows=2, warnings=("Skipped 1 title row(s)", "'Survey results 2024'"),
         check=lambda c, r: (r.columns == ["id", "text", "region"] and c.texts == ["hello there", "fine thanks"])
         or pytest.fail(str(r))),
    # Finding 18: messages say what really happened.
    Case("unit-separator-in-one-column-csv", "data.csv", text("text\nhello\x1fworld\nfine\n"), rows=2,
         check=texts_are("hello\x1fworld", "fine")),
    Case("zip-member-outside-archive", "data.zip", zipped({"../evil.txt": "x", "/etc/passwd.txt": "y", "ok.txt": "fine"}),
         rows=1, skipped=(("archive member ../evil.txt", "unsafe path outside the archive"),
                          ("archive member /etc/passwd.txt", "unsafe path outside the archive")), check=texts_are("fine")),
    Case("xlsx-named-zip", "data.zip", workbook([["id", "text"], [1, "from a workbook"]]), rows=1,
         warnings=("is an Excel workbook",), check=texts_are("from a workbook")),
    Case("parquet-all-missing-text-column", "data.parquet", parquet({"id": [1, 2], "text": pa.array([None, None], pa.float64())}),
         options={"text_column": "text"}, error=("'text' is empty in every row",)),
    Case("dta-some-values-labelled", "data.dta",
         stats_file("dta", {"text": ["a", "b", "c", "d"], "q": [1.0, 2.0, 5.0, None]},
                    variable_value_labels={"q": {1: "agree", 2: "disagree"}}),
         rows=4, warnings=("'q' has value labels for only some values", "(5)"),
         check=column_is("q", "agree", "disagree", "5", None)),
    Case("nul-bytes-in-csv", "data.csv", raw(b"id,text\n1,hel\x00lo\n2,wor\x00ld\n"), rows=2, warnings=("Removed 2 NUL", "byte 13"),
         check=texts_are("hello", "world")),
    Case("long-line-no-newline", "data.csv", text("id,text\n1," + LONG_LINE), rows=1, check=texts_are(LONG_LINE)),
    Case("unbalanced-quote", "data.csv", text('id,text\n1,"hello\n2,world\n3,again\n'), error=("never closed", "line 2", "lines 2-4")),
    Case("crlf-line-endings", "data.csv", text('id,text\r\n1,"two\r\nlines"\r\n2,plain\r\n'), rows=2, check=texts_are("two\r\nlines", "plain")),
    Case("cr-only-line-endings", "data.csv", text("id,text\r1,old mac\r2,line endings\r"), rows=2, check=texts_are("old mac", "line endings")),
    Case("emoji", "data.csv", text("id,text\n1,Love it 😍🔥\n2,👍🏽\n3,👨‍👩‍👧 family\n"), rows=3,
         check=texts_are("Love it 😍🔥", "👍🏽", "👨‍👩‍👧 family")),
    Case("right-to-left", "data.csv", text("id,text\n1,مرحبا بالعالم\n2,\u200fשלום עולם\u200f\n"), rows=2,
         check=texts_are("مرحبا بالعالم", "\u200fשלום עולם\u200f")),
    Case("excel-sep-line", "data.csv", text("sep=;\nid;text\n1;a, b\n"), rows=1, check=texts_are("a, b")),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    for constant, value in case.limits.items():
        monkeypatch.setattr(corpus_module, constant, value)
    data = case.make()
    name = case.file
    if case.error:
        with pytest.raises(CorpusError) as caught:
            load_corpus(data, name, **case.options)
        message = str(caught.value)
        for words in case.error:
            assert words in message, message
        return
    corpus, report = load_corpus(data, name, **case.options)
    assert len(corpus) == report.rows == case.rows
    for where, reason in case.skipped:
        assert any(item.where == where and reason in item.reason for item in report.skipped), report.skipped
    if not case.skipped:
        assert report.skipped == []
    for words in case.warnings:
        assert any(words in warning for warning in report.warnings), report.warnings
    if case.check:
        case.check(corpus, report)
    # Every corpus that imports can be stored in a project (workspace.parquet_safe -> Parquet).
    if len(data) < 10_000_000:  # (the 100 MB cell would only cost time)
        parquet_safe(corpus.data).to_parquet(io.BytesIO())
