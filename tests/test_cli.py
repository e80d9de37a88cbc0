import json
import subprocess
import sys

import pandas as pd
import pytest

from analysis.cli import main
from tests.paths import ROOT, SAMPLE_CSV


def test_analyze_sample_to_xlsx_keeps_every_row_and_column(home, tmp_path, capsys):
    out = tmp_path / "out.xlsx"
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "wrote" in err
    sample = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    data = pd.read_excel(out, sheet_name="data", dtype=str, keep_default_na=False)
    assert len(data) == len(sample)
    assert set(sample.columns) <= set(data.columns)
    assert {"doc_id", "stats_words", "stats_tokens", "stats_language"} <= set(data.columns)
    assert data["respondent_id"].tolist() == sample["respondent_id"].tolist()
    pd.testing.assert_series_equal(data["text"], sample["text"].where(~sample["text"].str.match(r"^[=+\-@\t\r]"), "'" + sample["text"]), check_names=False)
    runs = pd.read_excel(out, sheet_name="runs")
    assert runs["task"].tolist() == ["stats"]
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest[0]["rows"]["in"] == len(sample)


def test_second_identical_run_is_reused(home, tmp_path, capsys, small_csv):
    assert main(["analyze", str(small_csv), "-o", str(tmp_path / "a.csv")]) == 0
    capsys.readouterr()
    assert main(["analyze", str(small_csv), "-o", str(tmp_path / "b.csv")]) == 0
    assert "reusing the finished run" in capsys.readouterr().err
    a = pd.read_csv(tmp_path / "a.csv")
    b = pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 6 and a.loc[2, "stats_words"] == 0  # the empty text has an empty result


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "{csv}", "-o", "{tmp}/x.csv", "--task", "nonsense"], "Unknown task 'nonsense'"),
        (["analyze", "{csv}", "-o", "{tmp}/x.docx"], ".docx"),
        (["analyze", "{tmp}/missing.csv", "-o", "{tmp}/x.csv"], "missing.csv"),
        (["analyze", "{csv}", "-o", "{tmp}/x.csv", "--text-column", "nope"], "nope"),
        (["analyze", "{csv}", "-o", "{tmp}/x.csv", "--batch-size", "0"], "batch-size"),
        (["analyze", "{csv}", "-o", "{tmp}/x.csv", "--device", "tpu"], "Unknown device"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(home, tmp_path, capsys, small_csv, argv, message):
    argv = [a.format(csv=small_csv, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("textlab: error:") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_info_reports_suggestions_and_quality(capsys, small_csv):
    assert main(["info", str(small_csv), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["suggested_columns"]["text"] == "answer"
    assert info["suggested_columns"]["date"] == "date"
    assert info["quality"]["rows"] == 6 and info["quality"]["empty"] == 1 and info["quality"]["duplicates"] == 1
    # The suggested id column is used, as in the app, and the report says so.
    assert info["used_columns"]["id"] == "rid"
    assert any("'rid' as document ids" in warning for warning in info["warnings"])


def test_info_prints_a_readable_summary_by_default(capsys, small_csv):
    assert main(["info", str(small_csv)]) == 0
    out = capsys.readouterr().out
    assert not out.lstrip().startswith("{")
    for words in ("CSV, utf-8, comma-separated: 6 rows, 4 columns", "suggested   text: answer", "ids         from column rid (r1 … r6)",
                  "Warnings (1)", "texts             6, 1 empty (r3)", "exact duplicates  1", "tokens per text", "--json"):
        assert words in out, out
    assert main(["info", str(small_csv), "--id-column", "none"]) == 0
    assert "from row numbers (doc-000001 … doc-000006)" in capsys.readouterr().out


def test_info_loads_no_model_library(small_csv):
    """`textlab info` took 20 s loading transformers and torch for its token counts; the
    bundled tokenizer is read with `tokenizers` alone."""
    code = ("import sys; from analysis.cli import main; code = main(['info', sys.argv[1]]); "
            "heavy = {'torch', 'transformers', 'sentence_transformers'} & set(sys.modules); "
            "sys.exit(f'imported {sorted(heavy)}' if heavy else code)")
    proc = subprocess.run([sys.executable, "-c", code, str(small_csv)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Data quality" in proc.stdout


def test_models_list_and_offline_download(capsys, monkeypatch):
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "all-MiniLM-L6-v2" in listing or "minilm" in listing.lower()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "download", "cardiffnlp/twitter-roberta-base-sentiment-latest", "--to", "/tmp/textlab-none"]) == 2
    assert "textlab: error:" in capsys.readouterr().err


def test_console_script_entry_point(home, tmp_path, small_csv):
    """`python -m analysis.cli` behaves like the installed `textlab` command."""
    out = tmp_path / "o.parquet"
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "analyze", str(small_csv), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # progress and messages go to stderr
    assert len(pd.read_parquet(out)) == 6


def test_few_shot_and_topic_options_reach_their_task_config():
    from analysis.cli import _task_config, build_parser
    from analysis.tasks import get_task

    args = build_parser().parse_args(["analyze", "in.csv", "-o", "out.csv", "--labels-column", "code",
                                      "--classifier", "setfit", "--merge-topics"])
    coding_config = _task_config(get_task("coding"), args)
    assert coding_config["classifier"] == "setfit" and "merge_topics" not in coding_config
    topics_config = _task_config(get_task("topics"), args)
    assert topics_config["merge_topics"] is True and "classifier" not in topics_config
    plain = build_parser().parse_args(["analyze", "in.csv", "-o", "out.csv"])
    assert "merge_topics" not in _task_config(get_task("topics"), plain)


def test_rerun_on_edited_metadata_exports_the_file_given(home, tmp_path, capsys):
    """Same ids and texts, corrected region and a new column: the output is the new file."""
    first = tmp_path / "first.csv"
    first.write_text("id,region,text\nA1,North,Buses are late.\nA2,South,Rents are high.\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text("id,region,text,coder\nA1,East,Buses are late.,ann\nA2,South,Rents are high.,bob\n",
                      encoding="utf-8")
    assert main(["analyze", str(first), "-o", str(tmp_path / "a.csv"), "--id-column", "id"]) == 0
    capsys.readouterr()
    assert main(["analyze", str(second), "-o", str(tmp_path / "b.csv"), "--id-column", "id"]) == 0
    err = capsys.readouterr().err
    assert "reusing the finished run" in err  # the texts did not change: the stats are reused
    assert "'coder'" in err and "'region'" in err  # and the user is told what changed
    out = pd.read_csv(tmp_path / "b.csv", dtype=str)
    assert out["region"].tolist() == ["East", "South"]
    assert out["coder"].tolist() == ["ann", "bob"]
    assert "stats_words" in out.columns
    # The first file again: its own columns, not the second's.
    assert main(["analyze", str(first), "-o", str(tmp_path / "c.csv"), "--id-column", "id"]) == 0
    again = pd.read_csv(tmp_path / "c.csv", dtype=str)
    assert again["region"].tolist() == ["North", "South"] and "coder" not in again.columns


def test_few_shot_run_is_not_reused_when_the_human_codes_change(home, tmp_path, capsys):
    rows = [("Rents went up again this year", "Housing"), ("The landlord will not fix the heating", "Housing"),
            ("Buses are always late", "Transport"), ("The tram line was cut", "Transport")] * 3
    codes = [c for _, c in rows]
    book = tmp_path / "book.json"
    book.write_text(json.dumps({"name": "b", "codes": [{"label": "Housing"}, {"label": "Transport"}]}))

    def write(path, labels):
        pd.DataFrame({"id": [f"r{i}" for i in range(len(rows))], "text": [f"{t} ({i})" for i, (t, _) in enumerate(rows)],
                      "human": labels}).to_csv(path, index=False)

    write(tmp_path / "one.csv", codes)
    changed = list(codes)
    changed[0] = "Transport"
    write(tmp_path / "two.csv", changed)
    argv = ["--task", "coding", "--codebook", str(book), "--labels-column", "human", "--id-column", "id"]
    assert main(["analyze", str(tmp_path / "one.csv"), "-o", str(tmp_path / "a.csv"), *argv]) == 0
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "two.csv"), "-o", str(tmp_path / "b.csv"), *argv]) == 0
    assert "reusing the finished run" not in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "two.csv"), "-o", str(tmp_path / "c.csv"), *argv]) == 0
    assert "reusing the finished run" in capsys.readouterr().err


def test_analyze_to_stata_writes_real_dates_and_fixed_label_codes(home, tmp_path):
    import pyreadstat

    source = tmp_path / "dated.csv"
    source.write_text("id,date,text\na,2026-01-05,What a lovely day in the park.\n"
                      "b,2026-02-11,It is fine I suppose.\n", encoding="utf-8")
    out = tmp_path / "out.dta"
    assert main(["analyze", str(source), "-o", str(out), "--id-column", "id", "--date-column", "date",
                 "--task", "sentiment"]) == 0
    data, meta = pyreadstat.read_dta(out)
    assert meta.original_variable_types["date"].startswith("%td")
    # No text is negative here, and still negative = 1: the codes come from the task's label set.
    assert meta.variable_value_labels["sentiment_label"] == {1: "negative", 2: "neutral", 3: "positive"}
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest[0]["label_sets"] == {"sentiment_label": ["negative", "neutral", "positive"]}


def test_validate_out_csv_neutralises_formulas_with_opt_out(tmp_path, capsys):
    hostile = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://127.0.0.1:8599/x","click")', "-rent too high", "+1 for buses"]
    codes = hostile * 10
    path = tmp_path / "codes.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(len(codes))], "model": codes, "coder": codes[1:] + codes[:1],
                  }).to_csv(path, index=False)
    out = tmp_path / "report.csv"
    assert main(["validate", str(path), "--pred", "model", "--gold", "coder", "--out", str(out), "--n-boot", "20"]) == 0
    cells = pd.read_csv(out, dtype=str, keep_default_na=False).to_numpy().ravel().tolist()
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:2].isdigit())], cells
    assert "'-rent too high" in cells and "'=cmd|' /C calc'!A0" in cells
    # --no-neutralize keeps the codes verbatim, as for `textlab analyze`.
    assert main(["validate", str(path), "--pred", "model", "--gold", "coder", "--out", str(out), "--n-boot", "20",
                 "--no-neutralize"]) == 0
    assert set(hostile) <= set(pd.read_csv(out, dtype=str, keep_default_na=False)["code"])
