"""Codebooks: reading, writing, checking, fingerprints."""

import io
import json

import pandas as pd
import pytest

from analysis.codebook import Code, Codebook, as_codebook, codebook_bytes, read_codebook, write_codebook
from analysis.errors import CodebookError
from tests.paths import ROOT

SAMPLE_BOOK = ROOT / "sample_data" / "policy_codebook.json"


def small_book(**kwargs) -> Codebook:
    return Codebook(codes=[
        Code("Housing", "Homes and rent.", "landlords", "energy bills", ["Rent is up.", "No flats to buy."]),
        Code("Transport", "Buses and trains.", examples=["The bus was late."]),
    ], **kwargs).validate()


def test_sample_codebook_reads_with_its_settings():
    book = read_codebook(SAMPLE_BOOK)
    assert book.labels == ["Housing", "Public transport", "Health care", "Climate and energy", "Cost of living"]
    assert book.none_label == "None of these" and not book.multi_label
    assert book.output_labels[-1] == "None of these"
    assert all(len(c.examples) >= 3 and c.definition for c in book.codes)


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv"])
def test_round_trip_through_every_format(tmp_path, fmt):
    book = small_book(version="2", hypothesis_template="The answer is about {}.")
    path = write_codebook(book, tmp_path / f"book.{fmt}")
    back = read_codebook(path)
    assert [c.__dict__ for c in back.codes] == [c.__dict__ for c in book.codes]
    if fmt != "csv":  # CSV holds the codes only
        assert back.hypothesis_template == book.hypothesis_template and back.version == "2"
        assert back.fingerprint() == book.fingerprint()


def test_csv_examples_split_on_newlines_or_bars(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text('Label,Definition,Examples\nA,first,"one | two"\nB,second,"x\ny"\n', encoding="utf-8")
    book = read_codebook(path)
    assert book.codes[0].examples == ["one", "two"] and book.codes[1].examples == ["x", "y"]


def test_fingerprint_changes_with_content_not_name():
    a = small_book()
    b = small_book(name="Renamed", version="9")
    assert a.fingerprint() == b.fingerprint()
    c = small_book()
    c.codes[0].definition = "Homes, rent and mortgages."
    assert c.fingerprint() != a.fingerprint()
    assert b.version_tag() == f"9 ({b.fingerprint()})"


def test_editor_table_round_trip_ignores_blank_rows():
    book = small_book()
    frame = pd.concat([book.to_frame(), pd.DataFrame([{"label": "", "definition": None}])], ignore_index=True)
    back = Codebook.from_frame(frame)
    assert back.labels == book.labels and back.codes[0].examples == book.codes[0].examples


def test_bare_label_list_is_a_codebook():
    book = as_codebook(["World", "Sports", "Business"])
    assert book.labels == ["World", "Sports", "Business"] and book.codes[0].definition == ""


@pytest.mark.parametrize("data, message", [
    ({"codes": []}, "no codes"),
    ({"codes": [{"label": "A"}, {"label": " "}]}, "Code 2 has an empty label"),
    ({"codes": [{"label": "Housing"}, {"label": "housing"}]}, "appears twice"),
    ({"codes": [{"label": "Health care"}, {"label": "Health-care"}]}, "same column name"),
    ({"codes": [{"label": "A"}, {"label": "B"}], "hypothesis_template": "About this."}, "exactly once"),
    ({"codes": [{"label": "A"}, {"label": "B"}], "hypothesis_template": "{} and {}"}, "exactly once"),
    ({"codes": [{"label": "A"}, {"label": "B"}], "hypothesis_template": "{x} is {}"}, "other braces"),
    ({"codes": [{"label": f"code {i}"} for i in range(150)]}, "at most 100"),
    ({"codes": [{"label": "A"}]}, "at least two codes"),
    ({"codes": [{"label": "A;B"}, {"label": "C"}]}, "contains ';'"),
    ({"codes": [{"label": "Label"}, {"label": "C"}]}, "clash"),
    ({"codes": [{"label": "A", "colour": "red"}, {"label": "B"}]}, "unknown field(s) colour"),
    ({"codes": [{"label": "A"}, {"label": "B"}], "multi_label": "yes"}, "true or false"),
    ({"codes": [{"label": "A"}, {"label": "B"}], "none_label": "a"}, "clashes"),
    ({"labels": ["A"]}, "unknown field(s) labels"),
])
def test_bad_codebooks_get_clear_errors(data, message):
    with pytest.raises(CodebookError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Codebook.from_dict(data)


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    bad_json = tmp_path / "book.json"
    bad_json.write_text('{"codes": [', encoding="utf-8")
    with pytest.raises(CodebookError, match=r"book.json is not valid JSON: .* line 1"):
        read_codebook(bad_json)
    bad_yaml = tmp_path / "book.yaml"
    bad_yaml.write_text("codes: [a, b\n  - c: :", encoding="utf-8")
    with pytest.raises(CodebookError, match="book.yaml is not valid YAML"):
        read_codebook(bad_yaml)
    with pytest.raises(CodebookError, match="needs a 'label' column"):
        (tmp_path / "b.csv").write_text("name,definition\nA,x\n", encoding="utf-8")
        read_codebook(tmp_path / "b.csv")
    with pytest.raises(CodebookError, match="not '.docx'"):
        read_codebook(b"x", name="book.docx")
    with pytest.raises(CodebookError, match="does not exist"):
        read_codebook(tmp_path / "missing.json")


def test_bytes_for_download_are_readable_again():
    book = read_codebook(SAMPLE_BOOK)
    for fmt in ("json", "yaml"):
        assert read_codebook(codebook_bytes(book, fmt), name=f"x.{fmt}").to_dict() == book.to_dict()
    assert json.loads(codebook_bytes(book, "json"))["none_label"] == "None of these"


# Texts a spreadsheet would run as formulas (OWASP "CSV injection").
HOSTILE = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://127.0.0.1:8599/x","click")', "-rent too high", "+1 for buses",
           "@SUM(A1)"]


def test_codebook_csv_neutralises_formulas_and_round_trips(tmp_path):
    book = Codebook(codes=[Code(label="Housing", definition=HOSTILE[2], include=HOSTILE[0], exclude=HOSTILE[3],
                                examples=[HOSTILE[1], "ok"]),
                           Code(label="Transport", definition=HOSTILE[4], examples=["-0.5"])]).validate()
    data = codebook_bytes(book, "csv")
    cells = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False).to_numpy().ravel().tolist()
    # Every formula-like cell starts with ' (a plain number such as -0.5 is left alone).
    assert not [c for c in cells if c and c[0] in "=+-@" and c != "-0.5"], cells
    assert "'-rent too high" in cells and "'=cmd|' /C calc'!A0" in cells
    # Our own file reads back as the same codebook (the reader drops the apostrophes it added).
    back = read_codebook(data, name="book.csv")
    assert [c.__dict__ for c in back.codes] == [c.__dict__ for c in book.codes]
    path = write_codebook(book, tmp_path / "book.csv")
    assert read_codebook(path).fingerprint() == book.fingerprint()
    # The opt-out writes the cells verbatim; they read back the same too.
    raw = codebook_bytes(book, "csv", neutralize=False)
    assert b"\n=cmd" in raw or b",=cmd" in raw or b'"=cmd' in raw
    assert [c.__dict__ for c in read_codebook(raw, name="b.csv").codes] == [c.__dict__ for c in book.codes]
