"""Tests for analysis/export.py: every format read back with its own reader."""

import io
import json
import os
import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from analysis.errors import TextlabError
from analysis.export import (
    EXPORT_FORMATS,
    FORMULA_PREFIXES,
    ExportResult,
    export_table,
    format_from_path,
    manifest_bytes,
    neutralize_formulas,
    unneutralize_text,
    write_table,
)


@pytest.fixture
def results():
    """A small coded table: a shuffled, duplicated index (never written), missing values."""
    return pd.DataFrame(
        {
            "doc_id": ["d3", "d1", "d2", "d4"],
            "text": ["Rents are too high", "Buses late, again", "", "Ça va très bien"],
            "sentiment_label": ["negative", "negative", None, "positive"],
            "sentiment_score": [-0.5, -0.25, np.nan, 0.75],
            "topic_id": [1, 0, -1, 1],
        },
        index=[7, 2, 2, 0],
    )


def _read_back(data: bytes, fmt: str, tmp_path) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    if fmt == "tsv":
        return pd.read_csv(io.BytesIO(data), sep="\t", keep_default_na=False, na_values=[""])
    if fmt == "xlsx":
        return pd.read_excel(io.BytesIO(data), sheet_name="data")
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(data))
    if fmt == "dta":
        return pd.read_stata(io.BytesIO(data), convert_categoricals=True)
    path = tmp_path / "back.sav"
    path.write_bytes(data)
    df, _ = pyreadstat.read_sav(str(path), apply_value_formats=True)
    return df


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_round_trip_keeps_rows_order_values_and_names(results, fmt, tmp_path):
    res = export_table(results, fmt)
    assert isinstance(res, ExportResult)
    assert res.fmt == fmt and res.filename == f"textlab_export.{fmt}" and res.mime
    back = _read_back(res.data, fmt, tmp_path)

    assert len(back) == len(results)
    assert list(back.columns) == list(results.columns)  # all names already valid everywhere
    assert back["doc_id"].tolist() == ["d3", "d1", "d2", "d4"]  # order kept, index not written
    assert back["sentiment_score"].iloc[[0, 1, 3]].tolist() == [-0.5, -0.25, 0.75]
    assert pd.isna(back["sentiment_score"].iloc[2])
    assert back["topic_id"].astype(int).tolist() == [1, 0, -1, 1]
    assert back["text"].iloc[3] == "Ça va très bien"
    labels = back["sentiment_label"].astype(object).tolist()
    assert labels[0] == labels[1] == "negative" and labels[3] == "positive"
    assert pd.isna(labels[2]) or labels[2] == ""  # SPSS has no missing for text labels


def test_name_and_format_aliases(results):
    res = export_table(results, ".XLSX", name="my/results.xlsx")
    assert res.fmt == "xlsx" and res.filename == "my_results.xlsx"
    assert export_table(results, "stata").fmt == "dta"
    with pytest.raises(TextlabError, match="csv, xlsx, parquet, dta, sav"):
        export_table(results, "docx")


def test_empty_table_exports_everywhere(tmp_path):
    empty = pd.DataFrame({"doc_id": pd.Series([], dtype=str), "score": pd.Series([], dtype=float)})
    for fmt in EXPORT_FORMATS:
        back = _read_back(export_table(empty, fmt).data, fmt, tmp_path)
        assert len(back) == 0, fmt


# --------------------------------------------------------------------------- CSV


def test_csv_bom_present_only_when_asked(results):
    with_bom = export_table(results, "csv", bom=True).data
    without = export_table(results, "csv").data
    assert with_bom.startswith(b"\xef\xbb\xbf")
    assert not without.startswith(b"\xef\xbb\xbf")
    assert with_bom[3:] == without
    assert "Ça va très bien".encode() in without  # UTF-8
    assert pd.read_csv(io.BytesIO(with_bom), encoding="utf-8-sig").columns[0] == "doc_id"


def test_csv_missing_values_are_empty_and_no_index(results):
    lines = export_table(results, "csv").data.decode().splitlines()
    assert lines[0] == "doc_id,text,sentiment_label,sentiment_score,topic_id"
    assert lines[3] == "d2,,,,-1"


# --------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_each_formula_prefix_is_neutralised(prefix, fmt, tmp_path):
    value = prefix + "HYPERLINK(\"http://x\")"
    df = pd.DataFrame({"text": [value, "plain"], "n": [1, 2]})
    res = export_table(df, fmt)
    if fmt == "csv":
        back = pd.read_csv(io.BytesIO(res.data))["text"].tolist()
    else:
        back = pd.read_excel(io.BytesIO(res.data), sheet_name="data")["text"].tolist()
    assert back == ["'" + value, "plain"]
    assert any("1 text cells" in w and "neutralize=False" in w for w in res.warnings)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_opt_out_keeps_values_verbatim(fmt):
    df = pd.DataFrame({"text": ["=1+1", "@SUM(A1)", "-x"]})
    res = export_table(df, fmt, neutralize=False)
    assert not any("apostrophe" in w for w in res.warnings)
    if fmt == "csv":
        assert pd.read_csv(io.BytesIO(res.data))["text"].tolist() == ["=1+1", "@SUM(A1)", "-x"]
    else:
        ws = openpyxl.load_workbook(io.BytesIO(res.data))["data"]
        cell = ws["A2"]
        # Verbatim, yet stored as text: an export never creates live formulas.
        assert cell.value == "=1+1" and cell.data_type == "s"
        assert [ws["A3"].value, ws["A4"].value] == ["@SUM(A1)", "-x"]


def test_numbers_are_never_touched():
    df = pd.DataFrame(
        {
            "sentiment_score": [-0.5, 0.25],
            "count": [-3, 4],
            "as_text": ["-0.5", "+3e2"],  # plain numbers held as text: left alone
            "when": pd.to_datetime(["2024-01-01", "2024-02-01"]),
        }
    )
    out, n = neutralize_formulas(df)
    assert n == 0
    pd.testing.assert_frame_equal(out, df)
    ws = openpyxl.load_workbook(io.BytesIO(export_table(df, "xlsx").data))["data"]
    assert ws["A2"].value == -0.5 and isinstance(ws["A2"].value, float)
    assert ws["B2"].value == -3
    assert ws["C2"].value == "-0.5"


def test_neutralize_formulas_copies_and_counts():
    df = pd.DataFrame(
        {
            "a": ["=cmd", "ok", None, "- bullet"],
            "topic_label": pd.Categorical(["-1_outliers", "-1_outliers", "1_rent", None]),
            "mixed": ["+x", 5, None, "y"],
        }
    )
    before = df.copy()
    out, n = neutralize_formulas(df)
    assert n == 2 + 2 + 1
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert out["a"].tolist()[:2] == ["'=cmd", "ok"] and out["a"].iloc[3] == "'- bullet"
    assert pd.isna(out["a"].iloc[2])
    assert isinstance(out["topic_label"].dtype, pd.CategoricalDtype)
    assert out["topic_label"].astype(object).tolist()[:3] == ["'-1_outliers", "'-1_outliers", "1_rent"]
    assert out["mixed"].tolist()[:2] == ["'+x", 5]


def test_formula_headers_are_neutralised_and_reported():
    df = pd.DataFrame({"=evil()": ["a"], "ok": ["b"]})
    res = export_table(df, "csv")
    assert res.data.decode().splitlines()[0] == "'=evil(),ok"
    assert res.renamed == {"=evil()": "'=evil()"}


def test_verbatim_formats_keep_formula_text(tmp_path):
    df = pd.DataFrame({"text": ["=1+1", "-x", "@y"]})
    for fmt in ("parquet", "dta", "sav"):
        back = _read_back(export_table(df, fmt).data, fmt, tmp_path)
        assert back["text"].tolist() == ["=1+1", "-x", "@y"], fmt


# --------------------------------------------------------------------------- XLSX limits


def test_xlsx_cuts_long_cells_with_warning_csv_keeps_them():
    long_text = "x" * 40_000
    df = pd.DataFrame({"text": [long_text, "short"], "summary": ["s", "t"]})
    res = export_table(df, "xlsx")
    back = pd.read_excel(io.BytesIO(res.data), sheet_name="data")
    assert len(back.loc[0, "text"]) == 32_767 and back.loc[1, "text"] == "short"
    cut = [w for w in res.warnings if "32,767" in w]
    assert len(cut) == 1 and "text (1)" in cut[0] and "CSV or Parquet" in cut[0]

    csv = export_table(df, "csv")
    assert pd.read_csv(io.BytesIO(csv.data))["text"].iloc[0] == long_text
    assert not any("32,767" in w for w in csv.warnings)


def test_xlsx_removes_control_characters_then_neutralises():
    df = pd.DataFrame({"text": ["bell\x07 and\x0b tab\tok", "\x01=cmd()", "clean\nline"]})
    res = export_table(df, "xlsx")
    back = pd.read_excel(io.BytesIO(res.data), sheet_name="data")["text"].tolist()
    assert back == ["bell and tab\tok", "'=cmd()", "clean\nline"]
    assert any("control characters" in w and "text (2)" in w for w in res.warnings)


def test_xlsx_too_many_rows_is_a_clear_error():
    df = pd.DataFrame({"n": np.zeros(1_048_576, dtype=np.int8)})
    with pytest.raises(TextlabError, match="1,048,575.*CSV or Parquet"):
        export_table(df, "xlsx")


def test_xlsx_layout_codebook_and_runs_sheets():
    df = pd.DataFrame({"doc_id": ["a"], "text": ["word " * 200], "code_label": ["cost"]})
    codebook = {
        "name": "Housing",
        "multi_label": False,
        "codes": [
            {"label": "cost", "definition": "Rent or prices", "include": "rent", "exclude": "taxes",
             "examples": ["Rents are too high", "Cannot afford"]},
            {"label": "-other", "definition": "Anything else", "examples": []},
        ],
    }
    runs = [
        {"task": "sentiment", "backend": "vader", "parameters": {"threshold": 0.05},
         "started": datetime(2026, 1, 2, 3, 4, 5), "rows": {"in": 1, "coded": 1}},
        {"task": "coding", "model": "all-MiniLM-L6-v2", "seed": 42},
    ]
    res = export_table(df, "xlsx", codebook=codebook, runs=runs)
    wb = openpyxl.load_workbook(io.BytesIO(res.data))
    assert wb.sheetnames == ["data", "codebook", "runs"]
    ws = wb["data"]
    assert ws.freeze_panes == "A2"
    assert 30 < ws.column_dimensions["B"].width <= 62  # long text: wide but capped
    assert ws.column_dimensions["A"].width < ws.column_dimensions["B"].width

    cb = pd.read_excel(io.BytesIO(res.data), sheet_name="codebook", keep_default_na=False)
    assert list(cb.columns) == ["label", "definition", "include", "exclude", "examples"]
    assert cb["label"].tolist() == ["cost", "'-other"]  # neutralised there too
    assert cb.loc[0, "examples"] == "Rents are too high | Cannot afford"
    assert cb.loc[0, "exclude"] == "taxes"

    rn = pd.read_excel(io.BytesIO(res.data), sheet_name="runs")
    assert len(rn) == 2 and rn["task"].tolist() == ["sentiment", "coding"]
    assert json.loads(rn.loc[0, "parameters"]) == {"threshold": 0.05}
    assert json.loads(rn.loc[0, "rows"]) == {"in": 1, "coded": 1}
    assert rn.loc[1, "seed"] == 42


def test_xlsx_timezones_and_odd_objects():
    df = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01 10:00"]).tz_localize("Europe/Berlin"),
            "extra": [{"a": [1, 2]}],
        }
    )
    res = export_table(df, "xlsx")
    back = pd.read_excel(io.BytesIO(res.data), sheet_name="data")
    assert back.loc[0, "when"] == pd.Timestamp("2024-01-01 10:00")
    assert json.loads(back.loc[0, "extra"]) == {"a": [1, 2]}
    assert any("Europe/Berlin" in w for w in res.warnings)


# --------------------------------------------------------------------------- Parquet


def test_parquet_mixed_object_column_becomes_text():
    df = pd.DataFrame({"mixed": [1, "two", 3.5, None], "ok": [1, 2, 3, 4]})
    res = export_table(df, "parquet")
    back = pd.read_parquet(io.BytesIO(res.data))
    assert back["mixed"].tolist()[:3] == ["1", "two", "3.5"] and pd.isna(back["mixed"].iloc[3])
    assert back["ok"].tolist() == [1, 2, 3, 4]
    assert any("mixed" in w for w in res.warnings)


def test_parquet_keeps_types_metadata_and_makes_duplicate_names_unique():
    df = pd.DataFrame([[1, "a", True]], columns=["x", "x", "flag"])
    df["topic_label"] = pd.Categorical(["rent"])
    res = export_table(df, "parquet", codebook={"name": "cb", "codes": [{"label": "rent"}]},
                       runs=[{"task": "topics", "when": datetime(2026, 1, 1)}])
    table = pq.read_table(io.BytesIO(res.data))
    assert table.column_names == ["x", "x_2", "flag", "topic_label"]
    assert res.renamed == {"x": "x_2"}
    back = table.to_pandas()
    assert back["flag"].dtype == bool and isinstance(back["topic_label"].dtype, pd.CategoricalDtype)
    meta = table.schema.metadata
    assert json.loads(meta[b"textlab.codebook"])["codes"][0]["label"] == "rent"
    assert json.loads(meta[b"textlab.runs"])[0]["when"].startswith("2026-01-01")


# --------------------------------------------------------------------------- Stata


def test_stata_names_labels_and_types():
    df = pd.DataFrame(
        {
            "doc id": ["a", "b", "c"],
            "2020 wave": [1, 2, 3],
            "long": [1.5, 2.5, 3.5],  # a Stata reserved word
            "a" * 40: [0, 0, 1],
            "Réponse": ["x", "y", "z"],
            "sentiment_label": ["negative", None, "positive"],
            "emotion": pd.Categorical(["joy", "anger", "joy"]),
            "flag": [True, False, True],
            "score": [0.5, np.nan, -0.5],
            "when": pd.to_datetime(["2024-01-01 10:30", None, "2024-03-01 00:00"]),
            "day": [date(2024, 1, 1), None, date(2024, 1, 3)],
            "essay": ["w" * 3000, "short", None],
        }
    )
    res = export_table(df, "dta")
    assert res.renamed == {
        "doc id": "doc_id",
        "2020 wave": "v2020_wave",
        "long": "long_",
        "a" * 40: "a" * 32,
        "Réponse": "Reponse",
    }
    back = pd.read_stata(io.BytesIO(res.data), convert_categoricals=True)
    assert len(back) == 3
    assert list(back.columns) == [res.renamed.get(c, c) for c in df.columns]
    assert back["sentiment_label"].tolist()[0] == "negative" and pd.isna(back["sentiment_label"][1])
    assert isinstance(back["sentiment_label"].dtype, pd.CategoricalDtype)
    assert back["emotion"].tolist() == ["joy", "anger", "joy"]
    assert back["flag"].tolist() == [1, 0, 1]
    assert pd.isna(back["score"][1]) and back["score"][2] == -0.5
    assert back["when"][0] == pd.Timestamp("2024-01-01 10:30") and pd.isna(back["when"][1])
    assert back["day"][2] == pd.Timestamp("2024-01-03") and pd.isna(back["day"][1])
    assert len(back["essay"][0]) == 3000  # strL
    assert back["doc_id"].tolist() == ["a", "b", "c"]

    raw = pd.read_stata(io.BytesIO(res.data), convert_categoricals=False)
    assert pd.api.types.is_numeric_dtype(raw["sentiment_label"])
    with pd.io.stata.StataReader(io.BytesIO(res.data)) as reader:
        labels = reader.variable_labels()
        value_labels = reader.value_labels()
    assert labels["doc_id"] == "doc id" and labels["Reponse"] == "Réponse"
    # Codes start at 1; without a run that declares the labels, in sorted order (and said so).
    assert value_labels["sentiment_label"] == {1: "negative", 2: "positive"}
    assert value_labels["emotion"] == {1: "anger", 2: "joy"}
    assert any("sentiment_label, emotion" in w and "sorted" in w for w in res.warnings)


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_huge_integer_ids_survive_as_text(fmt, tmp_path):
    df = pd.DataFrame({"post_id": [1790000000000000001, 2], "n": [1, 2]})
    res = export_table(df, fmt)
    back = _read_back(res.data, fmt, tmp_path)
    assert back["post_id"].tolist() == ["1790000000000000001", "2"]
    assert back["n"].tolist() == [1, 2]
    assert any("post_id" in w and "text" in w for w in res.warnings)


def test_stata_value_label_columns_parameter_and_all_missing_text():
    df = pd.DataFrame({"party": ["A", "B", "A"], "code_label": ["x", "y", "x"],
                       "summary": pd.Series([None, None, None], dtype=object)})
    back = pd.read_stata(io.BytesIO(export_table(df, "dta", value_label_columns=["party"]).data))
    assert isinstance(back["party"].dtype, pd.CategoricalDtype)
    assert not isinstance(back["code_label"].dtype, pd.CategoricalDtype)  # not listed now
    assert back["summary"].isna().all()


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_label_columns_a_run_declares_get_value_labels(fmt, tmp_path):
    """A run's manifest names its label columns (from its task's declaration): a new analysis's
    label column is labelled without a list in export; a ';'-joined set of codes is not."""
    df = pd.DataFrame({"stance_label": ["pro", "con", "pro"], "code_labels": ["a;b", "a", "b"]})
    runs = [{"task": "stance", "label_columns": ["stance_label"], "label_sets": {"stance_label": ["con", "pro"]}},
            {"task": "coding", "label_columns": ["code_labels"], "multi_label_columns": ["code_labels"]}]
    res = export_table(df, fmt, runs=runs)
    assert res.value_labels == {"stance_label": {1: "con", 2: "pro"}}
    back = _read_back(res.data, fmt, tmp_path)
    assert back["stance_label"].astype(str).tolist() == ["pro", "con", "pro"]
    assert back["code_labels"].tolist() == ["a;b", "a", "b"]
    assert not export_table(df, fmt).value_labels  # without the manifests: only the built-in columns


# --------------------------------------------------------------------------- SPSS


def test_spss_names_value_labels_and_column_labels(tmp_path):
    df = pd.DataFrame(
        {
            "doc id": ["a", "b", "c"],
            "_private": [1, 2, 3],
            "x" * 70: [1.0, 2.0, 3.0],
            "sentiment_label": ["negative", None, "positive"],
            "topic_label": pd.Categorical(["rent", "rent", "buses"]),
            "flag": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
        }
    )
    res = export_table(df, "sav")
    assert res.renamed == {"doc id": "doc_id", "_private": "private", "x" * 70: "x" * 64}
    path = tmp_path / "out.sav"
    path.write_bytes(res.data)
    raw, meta = pyreadstat.read_sav(str(path))
    assert len(raw) == 3
    assert meta.column_names == ["doc_id", "private", "x" * 64, "sentiment_label", "topic_label",
                                 "flag", "when"]
    assert meta.column_names_to_labels["doc_id"] == "doc id"
    assert meta.column_names_to_labels["x" * 64] == "x" * 70
    assert meta.variable_value_labels["sentiment_label"] == {1.0: "negative", 2.0: "positive"}
    assert meta.variable_value_labels["topic_label"] == {1.0: "buses", 2.0: "rent"}
    assert raw["sentiment_label"].tolist()[0] == 1.0 and pd.isna(raw["sentiment_label"][1])
    assert raw["flag"].tolist() == [1, 0, 1]
    assert pd.Timestamp(raw["when"][0]) == pd.Timestamp("2024-01-01") and pd.isna(raw["when"][1])
    assert meta.original_variable_types["when"].startswith("DATE")  # dates only: DATE, not DATETIME

    labelled, _ = pyreadstat.read_sav(str(path), apply_value_formats=True)
    assert labelled["topic_label"].tolist() == ["rent", "rent", "buses"]


def test_spss_cuts_strings_over_32767_bytes(tmp_path):
    df = pd.DataFrame({"text": ["é" * 20_000, "ok"]})
    res = export_table(df, "sav")
    path = tmp_path / "long.sav"
    path.write_bytes(res.data)
    back, _ = pyreadstat.read_sav(str(path))
    assert len(back["text"][0].encode()) <= 32_767 and back["text"][1] == "ok"
    assert any("32,767 bytes" in w and "text (1)" in w for w in res.warnings)


# --------------------------------------------------------------------------- files


def test_write_table_is_atomic_and_replaces(results, tmp_path):
    target = tmp_path / "coded.csv"
    target.write_text("old content")
    res = write_table(results, target, bom=True)
    assert res.filename == "coded.csv"
    assert target.read_bytes() == export_table(results, "csv", bom=True).data  # streamed: the same bytes
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coded.csv"]  # no temp file left

    xlsx = write_table(results, tmp_path / "coded.xlsx", codebook={"codes": [{"label": "a"}]})
    assert xlsx.fmt == "xlsx"
    assert openpyxl.load_workbook(tmp_path / "coded.xlsx").sheetnames == ["data", "codebook"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coded.csv", "coded.xlsx"]


def test_write_table_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "big.xlsx"
    target.write_bytes(b"previous")
    with pytest.raises(TextlabError):
        write_table(pd.DataFrame({"n": np.zeros(1_048_576, dtype=np.int8)}), target)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["big.xlsx"]


def test_write_table_new_file_is_not_private(results, tmp_path):
    path = tmp_path / "out.parquet"
    write_table(results, path)
    assert os.stat(path).st_mode & 0o044  # not mkstemp's 0600
    assert len(pd.read_parquet(path)) == len(results)


def test_unknown_extension_and_missing_folder(results, tmp_path):
    with pytest.raises(TextlabError) as err:
        write_table(results, tmp_path / "out.docx")
    msg = str(err.value)
    assert ".docx" in msg and all("." + f in msg for f in EXPORT_FORMATS)
    with pytest.raises(TextlabError, match="no extension"):
        format_from_path("results")
    with pytest.raises(TextlabError, match="does not exist"):
        write_table(results, tmp_path / "nope" / "out.csv")
    assert format_from_path("A/B/Results.SAV") == "sav"
    assert format_from_path("x.pq") == "parquet"


def test_manifest_bytes():
    data = manifest_bytes([{"task": "sentiment", "model": "café", "started": datetime(2026, 1, 2, 3, 4),
                            "n": np.int64(5), "score": float("nan"), "tags": {"b", "a"}}])
    text = data.decode("utf-8")
    assert "café" in text and "\n  " in text  # UTF-8, not escaped; indented
    parsed = json.loads(text)
    assert parsed == [{"task": "sentiment", "model": "café", "started": "2026-01-02T03:04:00",
                       "n": 5, "score": None, "tags": ["a", "b"]}]


# --------------------------------------------------------------------------- dates (issue 10, finding 12)


def _sav_back(data: bytes, tmp_path, name="back.sav"):
    path = tmp_path / name
    path.write_bytes(data)
    return pyreadstat.read_sav(str(path))


def _dta_back(data: bytes, tmp_path, name="back.dta"):
    path = tmp_path / name
    path.write_bytes(data)
    return pyreadstat.read_dta(str(path))


@pytest.fixture
def dated():
    """A recognised date column held as text (as imported from CSV), one with times, one
    datetime64 column whose values are all midnight (dates), and a text column."""
    return pd.DataFrame(
        {
            "doc_id": ["a", "b", "c"],
            "day": ["2024-03-04", None, "2024-12-31"],
            "stamp": ["2024-03-04 10:30:00", "2024-03-05 08:00:00", None],
            "created": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "text": ["one", "two", "three"],
        }
    )


def test_date_columns_are_real_dates_in_stata(dated, tmp_path):
    res = export_table(dated, "dta", date_columns=["day", "stamp"])
    back, meta = _dta_back(res.data, tmp_path)
    kinds = meta.original_variable_types
    assert kinds["day"] == "%td" and kinds["stamp"].startswith("%tc") and kinds["created"] == "%td"
    assert kinds["text"].startswith("%") and kinds["text"].endswith("s")  # text stays text
    pdback = pd.read_stata(io.BytesIO(res.data))
    assert pdback["day"].tolist()[0] == pd.Timestamp("2024-03-04") and pd.isna(pdback["day"][1])
    assert pdback["stamp"][0] == pd.Timestamp("2024-03-04 10:30") and pd.isna(pdback["stamp"][2])
    assert pdback["created"][1] == pd.Timestamp("2024-01-02")


def test_date_columns_are_real_dates_in_spss(dated, tmp_path):
    res = export_table(dated, "sav", date_columns=["day", "stamp"])
    back, meta = _sav_back(res.data, tmp_path)
    kinds = meta.original_variable_types
    assert kinds["day"].startswith("DATE") and not kinds["day"].startswith("DATETIME")
    assert kinds["stamp"].startswith("DATETIME")
    assert kinds["created"].startswith("DATE") and not kinds["created"].startswith("DATETIME")
    assert pd.Timestamp(back["day"][0]) == pd.Timestamp("2024-03-04") and pd.isna(back["day"][1])
    assert pd.Timestamp(back["stamp"][0]) == pd.Timestamp("2024-03-04 10:30")
    assert back["text"].tolist() == ["one", "two", "three"]


def test_date_columns_are_real_dates_in_xlsx(dated):
    res = export_table(dated, "xlsx", date_columns=["day", "stamp"])
    ws = openpyxl.load_workbook(io.BytesIO(res.data))["data"]
    header = {c.value: c.column for c in ws[1]}
    day, stamp, created = (ws.cell(row=2, column=header[n]) for n in ("day", "stamp", "created"))
    assert day.is_date and day.value == datetime(2024, 3, 4)
    assert "h" not in day.number_format.lower()  # a date format, no time
    assert stamp.is_date and stamp.value == datetime(2024, 3, 4, 10, 30)
    assert "h" in stamp.number_format.lower()
    assert created.is_date and "h" not in created.number_format.lower()
    assert ws.cell(row=3, column=header["day"]).value is None  # missing stays empty


def test_date_column_stays_text_in_csv_and_parquet(dated):
    res = export_table(dated, "csv", date_columns=["day", "stamp"])
    back = pd.read_csv(io.BytesIO(res.data), dtype=str, keep_default_na=False)
    assert back["day"].tolist() == ["2024-03-04", "", "2024-12-31"]  # as the user gave it
    assert back["stamp"][0] == "2024-03-04 10:30:00"
    pq_back = pd.read_parquet(io.BytesIO(export_table(dated, "parquet", date_columns=["day"]).data))
    assert pq_back["day"].tolist()[0] == "2024-03-04"


@pytest.mark.parametrize("fmt", ["dta", "sav", "xlsx"])
def test_date_column_with_non_dates_stays_text_with_warning(fmt, tmp_path):
    df = pd.DataFrame({"day": ["2024-03-04", "soon", "2024-03-06"], "n": [1, 2, 3]})
    res = export_table(df, fmt, date_columns=["day", "not_there"])
    back = _read_back(res.data, fmt, tmp_path)
    assert back["day"].tolist() == ["2024-03-04", "soon", "2024-03-06"]  # nothing lost
    assert any("day" in w and "1" in w and "soon" in w for w in res.warnings), res.warnings


def test_day_first_dates_are_written_to_stata_as_the_corpus_reads_them(tmp_path):
    """04.03.2021 is 4 March in the export as in the corpus and the charts (issue 10, finding 17)."""
    df = pd.DataFrame({"day": ["04.03.2021", "13.03.2021", None], "text": ["a", "b", "c"]})
    back = pd.read_stata(io.BytesIO(export_table(df, "dta", date_columns=["day"]).data))
    assert back["day"].tolist()[:2] == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-13")]
    assert pd.isna(back["day"][2])


def test_the_projects_date_order_is_used_for_a_column_that_does_not_show_one(tmp_path):
    df = pd.DataFrame({"day": ["04/03/2021", "05/03/2021"], "text": ["a", "b"]})
    path = tmp_path / "out.dta"
    res = write_table(df, path, date_columns=["day"], date_order="day-first")
    assert not res.warnings
    back = pd.read_stata(path)
    assert back["day"].tolist() == [pd.Timestamp("2021-03-04"), pd.Timestamp("2021-03-05")]
    month_first = pd.read_stata(io.BytesIO(export_table(df, "dta", date_columns=["day"], date_order="month-first").data))
    assert month_first["day"].tolist() == [pd.Timestamp("2021-04-03"), pd.Timestamp("2021-05-03")]
    sav = export_table(df, "sav", date_columns=["day"], date_order="day-first")
    assert pd.Timestamp(_sav_back(sav.data, tmp_path)[0]["day"][0]) == pd.Timestamp("2021-03-04")


# --------------------------------------------------------------------------- lossless text (issue 10, finding 20)


def _with_bare_cr(n: int = 32) -> pd.DataFrame:
    texts = [f"row {i}" for i in range(n)]
    texts[3] = "first line\rsecond line"      # a lone CR: old Mac line end, pasted text
    texts[10] = "ends with CR\r"
    texts[20] = "\rstarts with CR"
    return pd.DataFrame({"id": [f"r{i:02d}" for i in range(n)], "text": texts,
                         "note": ["x\ry" if i == 5 else "plain" for i in range(n)]})


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_bare_cr_is_quoted_and_rows_survive_pandas_and_textlab_reader(fmt, tmp_path):
    from analysis.corpus import load_corpus

    df = _with_bare_cr()
    res = export_table(df, fmt, neutralize=False)
    sep = "," if fmt == "csv" else "\t"
    back = pd.read_csv(io.BytesIO(res.data), sep=sep, dtype=str, keep_default_na=False)
    assert len(back) == 32
    assert back["text"].tolist() == df["text"].tolist() and back["note"].tolist() == df["note"].tolist()

    path = tmp_path / f"export.{fmt}"
    path.write_bytes(res.data)
    corpus, _ = load_corpus(path, text_column="text", id_column="id")
    assert len(corpus) == 32
    assert corpus.texts[3] == "first line\rsecond line" and corpus.texts[4] == "row 4"


def test_bare_cr_quoting_keeps_neutralised_cells_and_other_fields():
    df = pd.DataFrame({"a": ["\rcmd", 'say "hi"\r', "x,y"], "b": [1.5, None, 3.0]})
    res = export_table(df, "csv")
    back = pd.read_csv(io.BytesIO(res.data), keep_default_na=False, na_values=[""])
    assert back["a"].tolist() == ["'\rcmd", 'say "hi"\r', "x,y"]
    assert back["b"].tolist()[0] == 1.5 and pd.isna(back["b"][1])
    assert res.data.decode().splitlines()[0] == "a,b"


def test_xlsx_keeps_crlf_bare_cr_and_empty_strings():
    df = pd.DataFrame({"text": ["two\r\nlines", "old\rmac", "", None, "plain"], "n": [1, 2, 3, 4, 5]})
    res = export_table(df, "xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(res.data))["data"]
    values = [ws.cell(row=r, column=1).value for r in range(2, 7)]
    assert values[:2] == ["two\r\nlines", "old\rmac"]
    assert values[2] == "" and values[3] is None  # an empty text is not a missing value
    assert values[4] == "plain" and ws.cell(row=6, column=2).value == 5
    back = pd.read_excel(io.BytesIO(res.data), sheet_name="data", keep_default_na=False)
    assert back["text"].tolist()[:3] == ["two\r\nlines", "old\rmac", ""]


def test_spss_warns_about_trailing_spaces(tmp_path):
    df = pd.DataFrame({"text": ["padded  ", "fine", "also ", None], "other": ["x", "y ", "z", "w"]})
    res = export_table(df, "sav")
    back, _ = _sav_back(res.data, tmp_path)
    assert back["text"].tolist()[:3] == ["padded", "fine", "also"]  # the format strips them
    warning = [w for w in res.warnings if "trailing spaces" in w]
    assert len(warning) == 1 and "text (2)" in warning[0] and "other (1)" in warning[0]
    assert not any("trailing spaces" in w for w in export_table(df, "dta").warnings)  # Stata keeps them


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_missing_and_empty_text_merge_is_reported(fmt, tmp_path):
    df = pd.DataFrame({"text": ["a", "", None, None], "only_missing": ["a", None, "b", "c"],
                       "only_empty": ["a", "", "b", "c"]})
    res = export_table(df, fmt)
    back = _read_back(res.data, fmt, tmp_path)
    assert back["text"].tolist() == ["a", "", "", ""]  # the format cannot tell them apart
    warning = [w for w in res.warnings if "missing" in w and "empty" in w]
    assert len(warning) == 1, res.warnings
    assert "text (2 missing, 1 empty)" in warning[0]
    assert "only_empty" not in warning[0]
    assert "only_missing (1 missing" in warning[0]
    assert not any("missing" in w and "empty" in w for w in export_table(df, "parquet").warnings)


def finished(manifest: dict) -> dict:
    """A manifest as a finished run writes it: with the label sets its task declares."""
    from analysis.tasks import get_task

    return {**manifest, "label_sets": get_task(manifest["task"]).label_sets(manifest)}


SENTIMENT_RUN = finished({"task": "sentiment", "backend": "offline", "labels": ["negative", "neutral", "positive"]})


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_value_label_codes_are_fixed_by_the_declared_label_set(fmt, tmp_path):
    # Two exports with different labels present: the same code must mean the same label.
    one = pd.DataFrame({"sentiment_label": ["neutral", "positive", None]})
    two = pd.DataFrame({"sentiment_label": ["negative", "neutral", "neutral"]})
    maps, codes = [], []
    for k, df in enumerate((one, two)):
        res = export_table(df, fmt, runs=[SENTIMENT_RUN])
        if fmt == "dta":
            raw, meta = _dta_back(res.data, tmp_path, f"{k}.dta")
        else:
            raw, meta = _sav_back(res.data, tmp_path, f"{k}.sav")
        labels = meta.variable_value_labels["sentiment_label"]
        maps.append({int(c): v for c, v in labels.items()})
        codes.append(raw["sentiment_label"].tolist())
        assert res.value_labels["sentiment_label"] == {1: "negative", 2: "neutral", 3: "positive"}
        assert not any("sentiment_label" in w and "sorted" in w for w in res.warnings)
    assert maps[0] == maps[1] == {1: "negative", 2: "neutral", 3: "positive"}
    assert codes[0][:2] == [2, 3] and pd.isna(codes[0][2])
    assert codes[1] == [1, 2, 2]


def test_value_labels_follow_codebook_order_and_emotion_backend_labels(tmp_path):
    df = pd.DataFrame({"code_label": ["transport", "none", "transport"],
                       "emotion_label": ["joy", "neutral", "joy"],
                       "topic_label": ["1_rent", "0_buses", "1_rent"]})
    runs = [
        finished({"task": "coding", "multi_label": False, "labels": ["rent", "transport", "none"],
                  "codebook": {"codes": [{"label": "rent"}, {"label": "transport"}], "none_label": "none"}}),
        finished({"task": "emotion", "backend": "transformers", "labels": ["Anger", "Joy", "Neutral"]}),
    ]
    res = export_table(df, "sav", runs=runs)
    _, meta = _sav_back(res.data, tmp_path)
    assert meta.variable_value_labels["code_label"] == {1.0: "rent", 2.0: "transport", 3.0: "none"}
    assert meta.variable_value_labels["emotion_label"] == {1.0: "anger", 2.0: "joy", 3.0: "neutral"}
    # No task declares topic labels: sorted values, and the export says so.
    assert meta.variable_value_labels["topic_label"] == {1.0: "0_buses", 2.0: "1_rent"}
    assert any("topic_label" in w and "sorted" in w for w in res.warnings)
    assert not any("code_label" in w and "sorted" in w for w in res.warnings)


def test_values_outside_the_declared_set_keep_a_code_and_a_warning(tmp_path):
    df = pd.DataFrame({"sentiment_label": ["positive", "mixed", "negative"]})
    res = export_table(df, "dta", runs=[SENTIMENT_RUN])
    back = pd.read_stata(io.BytesIO(res.data))
    assert back["sentiment_label"].tolist() == ["positive", "mixed", "negative"]
    assert res.value_labels["sentiment_label"] == {1: "negative", 2: "neutral", 3: "positive", 4: "mixed"}
    assert any("mixed" in w and "sentiment_label" in w for w in res.warnings)


@pytest.mark.parametrize("name", ["sentiment", "emotion"])
def test_offline_tasks_declare_every_label_they_write(name):
    # The declaration and the predictor must agree, or exports would number labels "after" it.
    from analysis.tasks import get_task

    task = get_task(name)
    config = task.Config.from_dict({"backend": "offline"})
    predictor = task.load(config)
    try:
        texts = ["I love this, wonderful news", "This is terrible and I am angry", "The bus is at nine",
                 "zzz qqq"]
        written = set(predictor.predict(texts)[f"{name}_label"])
        declared = task.label_sets(predictor.describe())
    finally:
        predictor.close()
    assert list(declared) == [f"{name}_label"]
    assert written <= set(declared[f"{name}_label"])


def test_date_column_the_parser_refuses_stays_text():
    # No day above 12 and no order given: the reader asks for one, the export keeps the text.
    df = pd.DataFrame({"day": ["04/03/2021", "05/03/2021"]})
    res = export_table(df, "xlsx", date_columns=["day"])
    assert pd.read_excel(io.BytesIO(res.data), sheet_name="data")["day"].tolist() == ["04/03/2021", "05/03/2021"]
    assert any("day-first" in w and "as text" in w and "'day'" in w for w in res.warnings)


def test_unneutralize_text_removes_exactly_the_exporters_apostrophe():
    for value in ["=cmd|' /C calc'!A0", "-rent too high", "+1 for buses", "@SUM(A1)", "\tx"]:
        guarded = neutralize_formulas(pd.DataFrame({"t": [value]}))[0]["t"].iloc[0]
        assert guarded == "'" + value and unneutralize_text(guarded) == value
    # Apostrophes the exporter never adds stay: before text, before a plain number, alone.
    for value in ["'quoted'", "'-0.5", "'", "plain", "it's =1", ""]:
        assert unneutralize_text(value) == value
    assert unneutralize_text(None) is None


def test_every_spreadsheet_writer_goes_through_export():
    """CSV/TSV/XLSX bytes are made in analysis.export only (formula neutralisation and its
    opt-out in one place); the codebook, the validation report, the CLI and the pages call it.
    A new `to_csv(` elsewhere would write formulas unprefixed."""
    root = Path(__file__).resolve().parents[1]
    sources = [*root.glob("analysis/**/*.py"), *root.glob("pages/*.py"), *root.glob("ui/**/*.py"), root / "app.py"]
    writers = re.compile(r"\.to_csv\(|\.to_excel\(|ExcelWriter|csv\.(Dict)?[wW]riter|Workbook\(")
    found = []
    for path in sources:
        if path.name == "export.py" and path.parent.name == "analysis":
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            # The workspace hashes a frame's CSV text to fingerprint it: never written to a file.
            if writers.search(line) and not ("digest.update" in line and path.name == "workspace.py"):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not found, "spreadsheet bytes made outside analysis.export:\n" + "\n".join(found)


def _estimates_table() -> pd.DataFrame:
    from analysis.inference import COLUMNS

    return pd.DataFrame([
        ["share", '=HYPERLINK("http://evil.example","click")', "", "model_only", 0.25, 0.2, 0.3, 40, 400],
        ["share", '=HYPERLINK("http://evil.example","click")', "", "corrected", 0.31, -0.02, 0.6, 40, 400],
        ["region[T.@north]", "Housing", "+group", "corrected", -0.5, -0.9, -0.1, 40, 400],
    ], columns=COLUMNS)


def test_xlsx_adds_the_estimates_and_methods_sheets_neutralised():
    df = pd.DataFrame({"doc_id": ["a"], "code_label": ["Housing"]})
    methods = "We coded 1 text.\n\n=cmd|' /C calc'!A0\nReferences\n\nTextlab (version 0.1.0).\n"
    res = export_table(df, "xlsx", runs=[{"task": "coding"}], estimates=_estimates_table(), methods=methods)
    wb = openpyxl.load_workbook(io.BytesIO(res.data))
    assert wb.sheetnames == ["data", "runs", "estimates", "methods"]
    est = pd.read_excel(io.BytesIO(res.data), sheet_name="estimates", keep_default_na=False)
    assert list(est.columns) == list(_estimates_table().columns)
    assert est["code"].tolist()[:2] == ["'" + '=HYPERLINK("http://evil.example","click")'] * 2
    assert est["estimand"].tolist()[2] == "region[T.@north]" and est["group"].tolist()[2] == "'+group"
    assert est["estimate"].tolist() == [0.25, 0.31, -0.5] and est["ci_low"].tolist()[1] == -0.02  # numbers stay
    assert all(c.data_type != "f" for row in wb["estimates"].iter_rows() for c in row)
    lines = [c.value for (c,) in wb["methods"].iter_rows(min_row=2)]
    assert lines == ["We coded 1 text.", None, "'=cmd|' /C calc'!A0", "References", None, "Textlab (version 0.1.0)."]
    assert wb["methods"]["A2"].alignment.wrap_text
    assert any("estimates" in w and "apostrophe" in w for w in res.warnings)
    # Opted out of neutralising: verbatim, yet stored as text, never as a formula.
    raw = export_table(df, "xlsx", neutralize=False, estimates=_estimates_table(), methods=methods)
    wb = openpyxl.load_workbook(io.BytesIO(raw.data))
    assert wb["estimates"]["B2"].value.startswith("=HYPERLINK") and wb["estimates"]["B2"].data_type == "s"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "dta", "sav"])
def test_other_formats_ignore_the_estimates_and_methods(fmt, results):
    plain = export_table(results, fmt)
    extra = export_table(results, fmt, estimates=_estimates_table(), methods="A paragraph.")
    assert extra.data == plain.data  # one table per file: download the estimates and the paragraph apart
    assert extra.warnings == plain.warnings


def test_the_estimates_csv_is_neutralised_through_export_table():
    data = export_table(_estimates_table(), "csv").data.decode("utf-8")
    back = pd.read_csv(io.StringIO(data), keep_default_na=False)
    assert back["code"].tolist()[0] == "'" + '=HYPERLINK("http://evil.example","click")'
    assert back["ci_low"].tolist()[1] == -0.02


def test_streamed_csv_equals_the_one_piece_file(monkeypatch, tmp_path):
    """write_table writes CSV in pieces of rows: the file, the renamed headers and the
    neutralisation warning (counts summed over pieces) are those of one piece."""
    import analysis.export as export_module

    df = pd.DataFrame({"=head": [f"=cmd{i}" if i % 3 == 0 else f"line\r{i}" for i in range(10)],
                       "n": range(10)})
    whole = export_table(df, "csv")
    monkeypatch.setattr(export_module, "CSV_CHUNK_ROWS", 3)
    monkeypatch.setattr(export_module._delimited_pieces, "__defaults__", (3,))
    res = write_table(df, tmp_path / "pieces.csv")
    assert (tmp_path / "pieces.csv").read_bytes() == whole.data
    assert res.warnings == whole.warnings and "4 text cells" in res.warnings[0]
    assert res.renamed == whole.renamed == {"=head": "'=head"}
    empty, expected = write_table(df.iloc[:0], tmp_path / "empty.csv"), export_table(df.iloc[:0], "csv")
    assert (tmp_path / "empty.csv").read_bytes() == expected.data and empty.warnings == expected.warnings
