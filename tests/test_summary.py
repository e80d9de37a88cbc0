"""Summary task: per-text summaries (extractive offline, abstractive with a tiny seq2seq model),
group summaries with their evidence, the CLI and the page."""

import time

import pandas as pd
import pytest

from analysis.corpus import build_corpus
from analysis.jobs import JobManager
from analysis.tasks import summary
from analysis.workspace import Workspace
from tests.paths import SAMPLE_CSV
from tests.test_pages import goto, load_sample, new_app, texts_of
from tests.tiny_models import make_tiny_seq2seq

LONG = ("The council approved a new budget on Monday. It raises spending on buses by ten percent. "
        "Critics say the money should go to housing instead. The mayor defended the plan at a press conference. "
        "Bus users welcomed the extra routes. A final vote is expected next month after a public consultation. "
        "Officials said fares would not rise this year.")


def test_extractive_summaries_are_sentences_of_the_text_and_short_texts_pass_through():
    out = summary.run([LONG, "Too short to summarise.", ""], {"backend": "offline", "max_sentences": 2})
    assert len(out) == 3 and pd.isna(out.loc[2, "summary"])
    chosen = out.loc[0, "summary"]
    assert chosen != LONG and len(chosen) < len(LONG)
    assert all(part.strip(" .") in LONG for part in chosen.split(". ") if part)
    assert out.loc[1, "summary"] == "Too short to summarise."


def test_abstractive_run_counts_passthrough_and_chunked_texts(home, tmp_path):
    model = make_tiny_seq2seq(tmp_path / "s2s")
    ws = Workspace()
    project = ws.create_project("p", build_corpus(pd.DataFrame({"text": [LONG, "short text", ""]}), "text"))
    manager = JobManager(ws)
    run = manager.submit(project, "summary", {"backend": "transformers", "model": str(model), "device": "cpu",
                                              "max_new_tokens": 12, "min_new_tokens": 2})
    assert manager.wait(120)
    manifest = project.manifest(run.id)
    assert manifest["rows"]["passthrough"] == 1 and manifest["rows"]["empty"] == 1
    result = project.result(run.id)
    assert result.loc[1, "summary"] == "short text" and isinstance(result.loc[0, "summary"], str)


def test_group_summaries_cite_one_sentence_per_text():
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).head(80)
    table = summary.summarize_groups(frame["text"].tolist(), frame["respondent_id"].tolist(), frame["region"], k=3)
    assert set(table["group"]) == set(frame["region"]) and table["texts"].sum() == (frame["text"].str.strip() != "").sum()
    texts = dict(zip(frame["respondent_id"], frame["text"]))
    for evidence, group in zip(table["evidence"], table["group"]):
        assert 1 <= len(evidence) <= 3
        assert len({e["doc_id"] for e in evidence}) == len(evidence)  # at most one sentence per text
        for e in evidence:
            assert texts[e["doc_id"]][e["start"]:e["end"]] == e["sentence"]
            assert frame.loc[frame["respondent_id"] == e["doc_id"], "region"].iloc[0] == group


@pytest.mark.slow
def test_cli_summary_with_group_summaries(home, tmp_path):
    from analysis.cli import main

    out = tmp_path / "s.csv"
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(out), "--task", "summary", "--summary-by", "region"]) == 0
    coded = pd.read_csv(out)
    assert len(coded) == 467 and "summary" in coded.columns
    groups = pd.read_csv(tmp_path / "s.summaries.csv")
    assert set(groups["region"]) == set(coded["region"].dropna())
    assert groups["evidence_doc_ids"].str.len().gt(0).all()


@pytest.mark.slow
def test_summary_page_runs_and_shows_a_group_summary_with_sources(home):
    at = goto(load_sample(new_app()), "pages/summary.py")
    at.radio(key="summary_backend").set_value("offline").run()
    at.button(key="submit_summary").click().run()
    deadline = time.time() + 240
    while time.time() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if any(getattr(t, "key", None) == "sum_query" for t in at.text_input):
            break
        time.sleep(1)
    assert at.dataframe
    at.selectbox(key="sum_by").set_value("region").run()
    at.button(key="sum_groups").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Representative sentences" in texts_of(at.markdown)
    assert "text `R" in texts_of(at.caption)
