"""Corpus import: formats round-trip, encodings, delimiters, suggestions, ids, quality."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pyreadstat
import pytest

from analysis.corpus import (
    ROW_IDS,
    SUPPORTED_EXTENSIONS,
    ColumnRoles,
    Corpus,
    build_corpus,
    load_corpus,
    quality_report,
    read_file,
    suggest_columns,
)
from analysis.errors import CorpusError
from analysis.textutil import bundled_tokenizer, split_sentences, token_counts, word_counts
from tests.paths import SAMPLE_CSV

SURVEY = pd.DataFrame(
    {
        "respondent_id": ["007", "008", "009", "010"],
        "region": ["North", "South", "North", "East"],
        "text": ["I like the new policy.", "Taxes are too high!", "", "Schools need more money, e.g. teachers."],
    }
)


class Upload(io.BytesIO):
    """Stands in for Streamlit's UploadedFile: a name and getvalue()."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


# --------------------------------------------------------------------------------------
# formats round-trip


def test_supported_extensions_are_the_documented_ones():
    assert set(SUPPORTED_EXTENSIONS) == {
        ".csv", ".tsv", ".tab", ".txt", ".xlsx", ".xlsm", ".json", ".jsonl", ".ndjson",
        ".parquet", ".dta", ".sav", ".zip",
    }


def test_csv_round_trip_keeps_strings_and_empty_cells(tmp_path):
    path = tmp_path / "survey.csv"
    SURVEY.to_csv(path, index=False)
    frame, report = read_file(path)
    assert frame.to_dict("list") == SURVEY.to_dict("list")  # "007" keeps its zeros; empty is ""
    assert isinstance(frame.index, pd.RangeIndex)
    assert (report.format, report.encoding, report.delimiter, report.rows) == ("csv", "utf-8", ",", 4)
    assert report.columns == ["respondent_id", "region", "text"]
    assert report.source == str(path)
    assert report.skipped == [] and report.warnings == []


@pytest.mark.parametrize("source_kind", ["path", "str", "bytes", "bytesio", "upload"])
def test_sources_path_bytes_and_file_objects(tmp_path, source_kind):
    data = SURVEY.to_csv(index=False).encode()
    path = tmp_path / "survey.csv"
    path.write_bytes(data)
    sources = {
        "path": (path, None),
        "str": (str(path), None),
        "bytes": (data, "survey.csv"),
        "bytesio": (io.BytesIO(data), "survey.csv"),
        "upload": (Upload(data, "uploads/survey.csv"), None),
    }
    source, name = sources[source_kind]
    frame, report = read_file(source, name)
    assert frame["respondent_id"].tolist() == ["007", "008", "009", "010"]
    assert report.source.endswith("survey.csv")


def test_bytes_without_a_name_is_a_programming_error():
    with pytest.raises(ValueError, match="name"):
        read_file(b"a,b\n1,2\n")


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(CorpusError, match="File not found"):
        read_file(tmp_path / "nope.csv")
    with pytest.raises(CorpusError, match="is a folder"):
        read_file(tmp_path)


def test_tsv_round_trip(tmp_path):
    path = tmp_path / "survey.tsv"
    SURVEY.to_csv(path, sep="\t", index=False)
    frame, report = read_file(path)
    assert report.delimiter == "\t"
    assert frame.to_dict("list") == SURVEY.to_dict("list")


def test_xlsx_round_trip_keeps_types(tmp_path):
    path = tmp_path / "survey.xlsx"
    table = SURVEY.assign(age=[34, 45, 23, 51], when=pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-04"]))
    table.to_excel(path, index=False)
    frame, report = read_file(path)
    assert report.format == "xlsx" and report.encoding is None and report.rows == 4
    assert frame["respondent_id"].tolist() == ["007", "008", "009", "010"]  # stored as text in Excel
    assert frame["age"].tolist() == [34, 45, 23, 51]
    assert pd.api.types.is_datetime64_any_dtype(frame["when"])
    assert pd.isna(frame.loc[2, "text"])  # an empty cell is missing; Corpus.texts makes it ""


def test_xlsx_sheets_by_name_index_and_first_with_data(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame().to_excel(writer, sheet_name="Cover")
        pd.DataFrame({"text": ["a", "b"]}).to_excel(writer, sheet_name="Wave 1", index=False)
        pd.DataFrame({"text": ["c"]}).to_excel(writer, sheet_name="Wave 2", index=False)
    frame, report = read_file(path)
    assert frame["text"].tolist() == ["a", "b"]
    assert any("3 sheets" in w and "'Wave 1'" in w and "skipped empty sheets 'Cover'" in w for w in report.warnings)
    assert read_file(path, sheet="Wave 2")[0]["text"].tolist() == ["c"]
    assert read_file(path, sheet=2)[0]["text"].tolist() == ["c"]
    with pytest.raises(CorpusError, match="no sheet number 5.*'Cover', 'Wave 1', 'Wave 2'"):
        read_file(path, sheet=5)


def test_xlsx_header_below_blank_rows_and_xlsm_extension(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([])
    sheet.append(["id", "text"])
    sheet.append(["a1", "hello"])
    path = tmp_path / "macro.xlsm"
    book.save(path)
    frame, report = read_file(path)
    assert report.format == "xlsx"
    assert frame.to_dict("list") == {"id": ["a1"], "text": ["hello"]}


def test_json_records_nested_values_become_json_strings(tmp_path):
    records = [
        {"id": 1, "text": "first", "meta": {"lang": "en", "tags": ["a", "b"]}},
        {"id": 2, "text": "second", "extra": True},
    ]
    path = tmp_path / "posts.json"
    path.write_text(json.dumps(records))
    frame, report = read_file(path)
    assert report.format == "json" and report.rows == 2
    assert frame.columns.tolist() == ["id", "text", "meta", "extra"]
    assert frame["id"].tolist() == [1, 2]
    assert json.loads(frame.loc[0, "meta"]) == {"lang": "en", "tags": ["a", "b"]}


def test_json_object_holding_one_list_of_records_and_list_of_strings():
    frame, report = read_file(b'{"count": 2, "data": [{"text": "a"}, {"text": "b"}]}', "export.json")
    assert frame["text"].tolist() == ["a", "b"]
    assert any("'data'" in w for w in report.warnings)
    frame, _ = read_file('["one", "two", "trois é"]'.encode(), "texts.json")
    assert frame.to_dict("list") == {"text": ["one", "two", "trois é"]}
    with pytest.raises(CorpusError, match="several lists of records"):
        read_file(b'{"a": [{"x": 1}], "b": [{"x": 2}]}', "two.json")


def test_json_lines_in_a_json_file_are_read_as_json_lines():
    frame, report = read_file(b'{"text": "a"}\n{"text": "b"}\n', "lines.json")
    assert frame["text"].tolist() == ["a", "b"]
    assert any("JSON Lines" in w for w in report.warnings)


@pytest.mark.parametrize("extension", [".jsonl", ".ndjson"])
def test_jsonl_round_trip(tmp_path, extension):
    path = tmp_path / f"posts{extension}"
    SURVEY.to_json(path, orient="records", lines=True)
    frame, report = read_file(path)
    assert report.format == "jsonl"
    assert frame.to_dict("list") == SURVEY.to_dict("list")


def test_parquet_round_trip_with_named_index(tmp_path):
    path = tmp_path / "survey.parquet"
    SURVEY.set_index("respondent_id").to_parquet(path)
    frame, report = read_file(path)
    assert report.format == "parquet"
    assert frame.to_dict("list") == SURVEY.to_dict("list")
    assert isinstance(frame.index, pd.RangeIndex)


def test_stata_round_trip_applies_value_labels(tmp_path):
    path = tmp_path / "survey.dta"
    table = pd.DataFrame({"id": [101, 102, 103], "answer": ["yes please", "no", "maybe"],
                          "party": pd.Categorical(["Left", "Right", "Left"])})
    table.to_stata(path, write_index=False)
    frame, report = read_file(path)
    assert report.format == "dta"
    assert frame["id"].tolist() == [101, 102, 103]
    assert frame["party"].astype(str).tolist() == ["Left", "Right", "Left"]
    corpus = build_corpus(frame, "answer", "id")
    assert corpus.doc_ids == ["101", "102", "103"]


def test_spss_round_trip_applies_value_labels(tmp_path):
    path = tmp_path / "survey.sav"
    table = pd.DataFrame({"id": [1.0, 2.0, 3.0], "answer": ["good", "bad idea", "fine"], "party": [1.0, 2.0, 1.0]})
    pyreadstat.write_sav(table, str(path), variable_value_labels={"party": {1.0: "Left", 2.0: "Right"}})
    frame, report = read_file(path)
    assert report.format == "sav"
    assert frame["party"].astype(str).tolist() == ["Left", "Right", "Left"]
    assert suggest_columns(frame) == ColumnRoles(text="answer", id="id", group="party", date=None)
    corpus = build_corpus(frame, "answer", "id")
    assert corpus.doc_ids == ["1", "2", "3"]  # SPSS stores numbers as floats; no "1.0"


def test_txt_modes():
    content = "First answer\n\nSecond answer\r\nThird answer\n".encode()
    frame, report = read_file(content, "answers.txt", txt_mode="line")
    assert frame.to_dict("list") == {"line": [1, 3, 4], "text": ["First answer", "Second answer", "Third answer"]}
    assert report.format == "txt" and report.warnings == []
    frame, _ = read_file(content, "answers.txt", txt_mode="file")
    assert frame.to_dict("list") == {"file": ["answers.txt"], "text": [content.decode()]}
    with pytest.raises(CorpusError, match="Unknown txt mode"):
        read_file(content, "answers.txt", txt_mode="paragraph")


def test_txt_auto_mode_lines_unless_paragraphs():
    frame, report = read_file(b"one per line\nanother one\nand a third\n", "tweets.txt")
    assert frame["text"].tolist() == ["one per line", "another one", "and a third"]
    assert any("3 non-empty lines as one document" in w for w in report.warnings)
    essay = b"An essay with a paragraph\nthat wraps.\n\nA second paragraph.\n"
    frame, report = read_file(essay, "essay.txt")
    assert frame["text"].tolist() == [essay.decode()]
    assert any("whole file as one document" in w for w in report.warnings)
    frame, report = read_file(b"just one line", "one.txt")
    assert frame["text"].tolist() == ["just one line"] and report.warnings == []


def test_zip_of_text_files_in_nested_folders():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("speeches/2020/b.txt", "Second speech.")
        archive.writestr("speeches/2019/a.txt", "First speech.".encode("cp1252"))
        archive.writestr("speeches/notes.md", "# Notes\n\nSome *notes*.")
        archive.writestr("speeches/", "")  # a folder entry
    frame, report = read_file(buffer.getvalue(), "speeches.zip")
    assert frame.to_dict("list") == {
        "file": ["speeches/2019/a.txt", "speeches/2020/b.txt", "speeches/notes.md"],
        "text": ["First speech.", "Second speech.", "# Notes\n\nSome *notes*."],
    }
    assert report.format == "zip" and report.skipped == [] and report.encoding == "utf-8"


def test_zip_holding_one_csv_is_read_as_that_csv():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("export/survey.csv", SURVEY.to_csv(index=False, sep=";"))
        archive.writestr("__MACOSX/export/._survey.csv", b"\x00\x05")
    frame, report = read_file(buffer.getvalue(), "export.zip")
    assert frame.to_dict("list") == SURVEY.to_dict("list")
    assert (report.format, report.delimiter) == ("csv", ";")
    assert report.source == "export.zip/export/survey.csv"
    assert any("export/survey.csv" in w for w in report.warnings)


# --------------------------------------------------------------------------------------
# encodings


@pytest.mark.parametrize(
    ("content", "encoding", "expected"),
    [
        ("Le café coûte 5 €, très cher. Où est la gare?", "cp1252", "cp1252"),
        ("Não sei se a situação vai melhorar. Ação!", "cp1252", "cp1252"),
        ("Grüße aus München, die Straße ist groß.", "latin-1", "cp1252"),  # same bytes for these letters
        ("Zażółć gęślą jaźń. Dziękuję bardzo, Łódź.", "cp1250", "cp1250"),
        ("Привет, как дела? Всё хорошо, спасибо большое.", "cp1251", "cp1251"),
        ("Ünïcödé and emoji 😀", "utf-8", "utf-8"),
        ("Ünïcödé and emoji 😀", "utf-8-sig", "utf-8"),
        ("Ünïcödé and emoji 😀", "utf-16", "utf-16-le"),
    ],
)
def test_encodings_are_detected(content, encoding, expected):
    data = f"id|text\n1|{content}\n".encode(encoding)
    frame, report = read_file(data, "data.csv")
    assert frame["text"].tolist() == [content]
    assert report.encoding == expected
    assert frame.columns.tolist() == ["id", "text"]


def test_encoding_can_be_chosen():
    data = "id,text\n1,Straße\n".encode("cp1252")
    frame, report = read_file(data, "data.csv", encoding="latin-1")
    assert frame["text"].tolist() == ["Straße"] and report.encoding == "iso8859-1"
    with pytest.raises(CorpusError, match="not valid utf-8"):
        read_file(data, "data.csv", encoding="utf-8")
    with pytest.raises(CorpusError, match="Unknown encoding"):
        read_file(data, "data.csv", encoding="klingon")


# --------------------------------------------------------------------------------------
# delimiters


@pytest.mark.parametrize(
    ("content", "delimiter", "texts"),
    [
        ('id,text\n1,"Hello, world; fine"\n2,plain\n', ",", ["Hello, world; fine", "plain"]),
        ("id;text\n1;Hello, world, again\n2;Yes, fine\n", ";", ["Hello, world, again", "Yes, fine"]),
        ("id\ttext\n1\tHello, world; x\n", "\t", ["Hello, world; x"]),
        ("id|text\n1|a, b; c\n2|d\n", "|", ["a, b; c", "d"]),
        ("text\nno delimiter here\nnor here\n", None, ["no delimiter here", "nor here"]),
        ('text\nHello, world; a|b\n"quoted, ""cell""\nwith a line break"\n', None,
         ["Hello, world; a|b", 'quoted, "cell"\nwith a line break']),
        ("sep=|\nid|text\n1|a,b\n", "|", ["a,b"]),
    ],
)
def test_delimiter_sniffing(content, delimiter, texts):
    frame, report = read_file(content.encode(), "data.csv")
    assert report.delimiter == delimiter
    assert frame["text"].tolist() == texts


def test_delimiter_can_be_chosen():
    frame, report = read_file(b"a;b,c\n1;2,3\n", "data.csv", delimiter=";")
    assert frame.columns.tolist() == ["a", "b,c"] and report.delimiter == ";"
    with pytest.raises(CorpusError, match="one character"):
        read_file(b"a;b\n", "data.csv", delimiter=";;")


def test_sniffing_sees_past_a_huge_first_cell():
    content = 'id;text\n1;"' + "long text, with commas, " * 10_000 + '"\n2;short\n'
    frame, report = read_file(content.encode(), "data.csv")
    assert report.delimiter == ";" and len(frame) == 2


# --------------------------------------------------------------------------------------
# suggestions


def test_suggest_columns_on_a_survey_export():
    table = pd.DataFrame(
        {
            "ResponseId": ["R_1", "R_2", "R_3", "R_4", "R_5", "R_6"],
            "age": ["34", "45", "23", "51", "38", "29"],
            "party": ["Left", "Right", "Left", "Green", "Right", "Left"],
            "submitted": ["2024-01-03", "2024-01-04 10:00", "2024-01-05", "", "2024-02-01", "2024-02-02"],
            "answer": ["I think it is good", "Not sure at all", "Too expensive for most", "Yes", "No idea", "Fine by me"],
        }
    )
    assert suggest_columns(table) == ColumnRoles(text="answer", id="ResponseId", group="party", date="submitted")


def test_suggest_columns_with_typed_columns_and_nothing_textual():
    table = pd.DataFrame(
        {
            "case": [3, 1, 2],
            "created": pd.to_datetime(["2021-01-01", "2021-06-01", "2022-01-01"]),
            "body": ["A long post about the elections.", "Another post.", "Short."],
        }
    )
    assert suggest_columns(table) == ColumnRoles(text="body", id="case", group=None, date="created")
    numbers = pd.DataFrame({"x": [1.5, 2.5], "y": [3, 3]})
    assert suggest_columns(numbers) == ColumnRoles(text=None, id=None, group=None, date=None)


def test_text_suggestion_ranks_codes_and_urls_last():
    table = pd.DataFrame(
        {
            "url": ["https://example.org/a/very/long/path/1", "https://example.org/a/very/long/path/2"],
            "comment": ["nice one", "not so"],
        }
    )
    assert suggest_columns(table).text == "comment"


# --------------------------------------------------------------------------------------
# build_corpus and load_corpus


def test_build_corpus_generates_stable_ids_and_keeps_every_column():
    table = SURVEY.set_index(pd.Index([10, 20, 30, 40]))
    corpus = build_corpus(table, "text", source="survey.csv")
    assert corpus.data.columns.tolist() == ["doc_id", "respondent_id", "region", "text"]
    assert corpus.doc_ids == ["doc-000001", "doc-000002", "doc-000003", "doc-000004"]
    assert isinstance(corpus.data.index, pd.RangeIndex)
    assert corpus.data["respondent_id"].tolist() == SURVEY["respondent_id"].tolist()
    assert len(corpus) == 4 and corpus.source == "survey.csv"
    assert "doc_id" not in table.columns  # the input is not modified
    assert build_corpus(table, "text").doc_ids == corpus.doc_ids


def test_generated_ids_widen_for_big_corpora():
    table = pd.DataFrame({"text": ["x"] * 1_000_001})
    ids = build_corpus(table, "text").doc_ids
    assert ids[0] == "doc-0000001" and ids[-1] == "doc-1000001"


def test_id_column_values_become_strings():
    table = pd.DataFrame({"id": [1.0, 2.0, 30.0], "num": [7, 8, 9], "text": ["a", "b", "c"]})
    assert build_corpus(table, "text", "id").doc_ids == ["1", "2", "30"]
    assert build_corpus(table, "text", "num").doc_ids == ["7", "8", "9"]
    corpus = build_corpus(SURVEY, "text", "respondent_id")
    assert corpus.doc_ids == ["007", "008", "009", "010"]
    assert corpus.data.columns.tolist() == ["doc_id", "respondent_id", "region", "text"]


def test_existing_doc_id_column_can_be_the_id():
    table = pd.DataFrame({"text": ["a", "b"], "doc_id": ["x1", "x2"]})
    corpus = build_corpus(table, "text", "doc_id")
    assert corpus.data.columns.tolist() == ["doc_id", "text"]
    assert corpus.doc_ids == ["x1", "x2"]


def test_a_files_own_doc_id_is_the_id_when_it_can_be_and_kept_when_not():
    table = pd.DataFrame({"doc_id": ["x1", "x2"], "rid": ["r1", "r2"], "text": ["a", "b"]})
    corpus = build_corpus(table, "text")
    assert corpus.id_column == "doc_id" and corpus.doc_ids == ["x1", "x2"]
    assert corpus.data.columns.tolist() == ["doc_id", "rid", "text"]
    assert "unique and non-empty" in corpus.notes[0]
    for id_column, ids in (("rid", ["r1", "r2"]), (ROW_IDS, ["doc-000001", "doc-000002"])):
        corpus = build_corpus(table, "text", id_column)
        assert corpus.doc_ids == ids
        assert corpus.data.columns.tolist() == ["doc_id", "file_doc_id", "rid", "text"]
        assert corpus.data["file_doc_id"].tolist() == ["x1", "x2"] and "kept as 'file_doc_id'" in corpus.notes[0]
    empty = build_corpus(table.assign(doc_id=["x1", ""]), "text")
    assert empty.doc_ids == ["doc-000001", "doc-000002"] and "empty on 1 row" in empty.notes[0]
    as_text = build_corpus(table.assign(doc_id=["long text one", "long text two"]), "doc_id")
    assert as_text.text_column == "file_doc_id" and as_text.texts == ["long text one", "long text two"]


def test_load_corpus_on_the_sample_uses_its_respondent_ids():
    """The CLI (load_corpus without an id column) gets the ids the app suggests."""
    corpus, report = load_corpus(SAMPLE_CSV)
    assert corpus.id_column == "respondent_id" and corpus.doc_ids[0] == "R0001"
    assert any("'respondent_id' as document ids" in w for w in report.warnings)


def test_texts_turn_missing_values_into_empty_strings():
    table = pd.DataFrame({"text": ["a", None, np.nan, 5, "b"]}, dtype=object)
    assert build_corpus(table, "text").texts == ["a", "", "", "5", "b"]


def test_dates_are_parsed_with_nat_for_bad_values():
    table = pd.DataFrame(
        {"text": list("abcde"), "when": ["2024-01-03", "03/02/2024", "not a date", "", "2024-01-05T10:00:00+02:00"]}
    )
    # "03/02/2024" alone does not say its order: the corpus asks for it, then uses it.
    with pytest.raises(CorpusError, match="could be day-first or month-first"):
        build_corpus(table, "text", date_column="when").dates()
    dates = build_corpus(table, "text", date_column="when", date_order="month-first").dates()
    assert pd.api.types.is_datetime64_any_dtype(dates) and dates.name == "when"
    assert dates.tolist()[:2] == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-03-02")]
    day_first = build_corpus(table, "text", date_column="when", date_order="day-first").dates()
    assert day_first.tolist()[:2] == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-02-03")]  # ISO stays ISO
    assert dates.isna().tolist() == [False, False, True, True, False]
    years = build_corpus(pd.DataFrame({"text": ["a", "b"], "year": [2019, 2020]}), "text", date_column="year")
    assert years.dates().tolist() == [pd.Timestamp("2019-01-01"), pd.Timestamp("2020-01-01")]
    with pytest.raises(CorpusError, match="No date column"):
        build_corpus(table, "text").dates()


AMBIGUOUS = pd.DataFrame({"text": ["a", "b", "c"], "when": ["04/03/2021", "05/03/2021", "04/05/2021"]})


def test_a_project_keeps_its_date_order(home):
    """The order chosen at import is the project's: after reopening the workspace, the
    corpus reads its dates in it, and it can be changed later with the other roles."""
    from analysis.workspace import Workspace

    corpus = build_corpus(AMBIGUOUS, "text", date_column="when", date_order="day-first")
    project = Workspace().create_project("dates", corpus)
    again = Workspace().project(project.id)
    assert again.info.date_order == "day-first"
    stored = again.corpus()
    assert stored.date_order == "day-first"
    assert stored.dates().tolist() == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-05"), pd.Timestamp("2021-05-04")]
    again.set_roles(None, "when", date_order="month-first")
    assert Workspace().project(project.id).corpus().dates().tolist()[0] == pd.Timestamp("2021-04-03")
    again.set_roles("text", "when")  # other roles saved: the order of the same date column stays
    assert Workspace().project(project.id).info.date_order == "month-first"
    again.set_roles(None, None)  # another date column (here none): its order is not the old one's
    assert Workspace().project(project.id).info.date_order is None
    again.set_roles(None, "when", date_order=None)  # back to the order the column shows: none
    with pytest.raises(CorpusError, match="could be day-first or month-first"):
        Workspace().project(project.id).corpus().dates()
    with pytest.raises(CorpusError, match="Unknown date order"):
        again.set_roles(None, "when", date_order="year-first")


def test_a_workspace_from_before_date_orders_opens_and_reads_the_columns_order(home):
    import sqlite3

    from analysis.workspace import Workspace

    table = pd.DataFrame({"text": ["a", "b"], "when": ["04.03.2021", "13.03.2021"]})
    project = Workspace().create_project("old", build_corpus(table, "text", date_column="when"))
    with sqlite3.connect(home / "textlab.sqlite") as con:  # the projects table as an older Textlab made it
        con.execute("ALTER TABLE projects DROP COLUMN date_order")
    ws = Workspace()
    assert ws.project(project.id).info.date_order is None
    assert ws.project(project.id).corpus().dates().tolist() == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-13")]
    ws.project(project.id).set_roles(None, "when", date_order="day-first")
    assert Workspace().project(project.id).info.date_order == "day-first"


@pytest.mark.parametrize("role", ["id_column", "group_column", "date_column"])
def test_unknown_role_columns_are_named(role):
    with pytest.raises(CorpusError, match=f"The {role.split('_')[0]} column 'nope' is not in the table"):
        build_corpus(SURVEY, "text", **{role: "nope"})


def test_load_corpus_defaults_and_auto_roles():
    data = SURVEY.to_csv(index=False).encode()
    corpus, report = load_corpus(data, "survey.csv")
    # The suggested id column is used by default (as in the app), and the report says so.
    assert (corpus.text_column, corpus.id_column, corpus.group_column, corpus.date_column) == (
        "text", "respondent_id", None, None)
    assert corpus.doc_ids[0] == "007" and report.rows == 4
    assert any("'respondent_id' as document ids" in w for w in report.warnings), report.warnings
    corpus, report = load_corpus(data, "survey.csv", id_column=ROW_IDS)  # row numbers, when wanted
    assert corpus.id_column is None and corpus.doc_ids[0] == "doc-000001"
    corpus, _ = load_corpus(data, "survey.csv", id_column="auto", group_column="auto", date_column="auto")
    assert (corpus.id_column, corpus.group_column, corpus.date_column) == ("respondent_id", "region", None)
    assert corpus.doc_ids == ["007", "008", "009", "010"]
    corpus, _ = load_corpus(data, "survey.csv", text_column="region", delimiter=",")
    assert corpus.text_column == "region"


def test_load_corpus_without_any_text_column():
    with pytest.raises(CorpusError, match="No column of numbers.csv looks like text"):
        load_corpus(b"a,b\n1,2\n3,4\n", "numbers.csv")


# --------------------------------------------------------------------------------------
# quality report


def test_quality_report_counts():
    texts = [
        "Hello world.",  # 2 words
        "  ",  # empty
        "Hello world.",  # duplicate of row 1
        "A much longer answer, with several words in it!",  # 9 words
        "",  # empty
        " Hello world. ",  # duplicate after stripping
        "Unique text here",  # 3 words
        "a b",  # duplicate pair
        "a b",
    ]
    corpus = build_corpus(pd.DataFrame({"text": texts, "id": [f"r{i}" for i in range(1, 10)]}), "text", "id")
    report = quality_report(corpus, long_threshold_tokens=5)
    assert report.rows == 9
    assert report.empty == 2 and report.empty_ids == ["r2", "r5"]
    assert report.duplicates == 3
    assert report.duplicate_examples == [("Hello world.", 3), ("a b", 2)]
    # non-empty word counts: 2, 2, 9, 2, 3, 2, 2
    assert report.words == pytest.approx({"min": 2, "p25": 2, "median": 2, "mean": 22 / 7, "p75": 2.5, "p95": 7.2, "max": 9})
    token_lengths = token_counts([t for t in texts if t.strip()])
    assert report.tokens["max"] == int(token_lengths.max())
    assert report.tokens["mean"] == pytest.approx(token_lengths.mean())
    assert report.long_texts == 1 and report.long_ids == ["r4"] and report.long_threshold == 5
    as_dict = report.to_dict()
    assert as_dict["duplicate_examples"] == [["Hello world.", 3], ["a b", 2]]
    json.dumps(as_dict)  # JSON-ready


def test_quality_report_of_empty_texts_only():
    corpus = build_corpus(pd.DataFrame({"text": ["x", ""]}), "text")
    corpus.data.loc[0, "text"] = " "
    report = quality_report(corpus)
    assert report.empty == 2 and report.duplicates == 0 and report.long_texts == 0
    assert report.words["max"] == 0 and report.tokens["mean"] == 0


# --------------------------------------------------------------------------------------
# textutil


def test_word_counts():
    counts = word_counts(
        ["Hello, world!", "don't stop: 3.5 well-known", "😀 🎉 !!!", "", "हिन्दी भाषा", "مرحبا بالعالم", "___ --- snake_case"]
    )
    assert counts.tolist() == [2, 4, 0, 0, 2, 2, 1]
    assert counts.dtype.kind == "i"


def test_token_counts_match_the_bundled_tokenizer_without_special_tokens():
    texts = ["Hello world!", "", "unbelievable 😀"] + [f"text number {i}" for i in range(2500)]
    counts = token_counts(texts)
    tokenizer = bundled_tokenizer()
    assert counts[:3].tolist() == [3, 0, 2]
    assert counts[-1] == len(tokenizer("text number 2499", add_special_tokens=False)["input_ids"])
    assert token_counts([]).tolist() == []
    assert token_counts(["word " * 1000])[0] == 1000  # no truncation


def test_token_counts_are_the_bundled_tokenizers_and_bounded_in_memory(monkeypatch):
    """Tokens are counted with `tokenizers` directly (fast, no transformers import, flat
    memory); the counts are those of the transformers tokenizer, also for texts cut into
    pieces."""
    from analysis import textutil

    texts = ["Ünïcödé café naïve", "日本語のテキストです。中文", "emoji 😍🔥 👨‍👩‍👧", "Hello\u00a0world\u2003again",
             "word " * 3000 + "end", "Straße ÆØÅ, e.g. U.S. 3.5%", "x" * 150, ""]
    tokenizer = bundled_tokenizer()
    expected = [len(tokenizer(t, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]) for t in texts]
    assert token_counts(texts).tolist() == expected
    monkeypatch.setattr(textutil, "_TOKEN_PIECE_CHARS", 2000)  # long texts go in pieces,
    monkeypatch.setattr(textutil, "_TOKEN_BATCH_CHARS", 5000)  # batches are bounded
    assert token_counts(texts).tolist() == expected


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith arrived. He was late.", ["Dr. Smith arrived.", "He was late."]),
        ("We use e.g. apples. And U.S. law applies.", ["We use e.g. apples.", "And U.S. law applies."]),
        ("It costs 3.5 dollars. Really?! Yes.", ["It costs 3.5 dollars.", "Really?!", "Yes."]),
        ("Wait... what? I think... maybe not. OK.", ["Wait... what?", "I think... maybe not.", "OK."]),
        ("J. Smith wrote it. Fine.", ["J. Smith wrote it.", "Fine."]),
        ('He said "Go." Then left.', ['He said "Go."', "Then left."]),
        ("Para one\n\nPara two", ["Para one", "Para two"]),
        ("lol. this is fine", ["lol.", "this is fine"]),
        ("你好。我很好！谢谢？", ["你好。", "我很好！", "谢谢？"]),
        ("", []),
        ("   ", []),
        ("No final stop", ["No final stop"]),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_corpus_is_a_plain_dataclass():
    corpus = Corpus(data=pd.DataFrame({"doc_id": ["a"], "text": ["x"]}), text_column="text")
    assert (corpus.id_column, corpus.group_column, corpus.date_column, corpus.source) == (None, None, None, "")
    assert corpus.texts == ["x"] and corpus.doc_ids == ["a"]


def test_csv_read_in_batches_equals_one_batch_and_report_streams(monkeypatch):
    """Big files are read in columnar batches and the quality report runs over chunks: the
    frame and the report must not depend on the batch sizes (repeated header names, padded
    rows and duplicates spanning batches included)."""
    import analysis.corpus as corpus_module

    rows = [f'{i},"answer {i % 4}, with a comma",x{i}' if i % 5 else f"{i},,y" for i in range(23)]
    data = ("id,text,text\n" + "\n".join(rows) + "\n5,short\n").encode("utf-8")
    whole, whole_report = read_file(data, "batches.csv")
    monkeypatch.setattr(corpus_module, "_RECORD_BATCH", 4)
    monkeypatch.setattr(corpus_module, "QUALITY_CHUNK", 3)
    batched, batched_report = read_file(data, "batches.csv")
    pd.testing.assert_frame_equal(batched, whole)
    assert batched_report.warnings == whole_report.warnings
    corpus = build_corpus(batched, "text", None)
    small = quality_report(corpus).to_dict()
    monkeypatch.setattr(corpus_module, "QUALITY_CHUNK", 10_000)
    assert quality_report(corpus).to_dict() == small
    assert small["rows"] == 24 and small["empty"] == 5
    assert small["duplicates"] == sum(n - 1 for _, n in small["duplicate_examples"]) > 0
