"""Group summaries written by a generative model, citing the evidence sentences they rest on."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import llm
from analysis.tasks.summary import group_summaries_table, summarize_groups
from analysis.tasks.summary.groups import citations, llm_group_summary
from tests.paths import SAMPLE_CSV


def test_citations_are_read_in_order_and_numbers_beyond_the_evidence_are_kept_apart():
    text = "Rents are too high [2]. Buses are late [1, 3]; some want trams [3][7]. Year [2024] aside."
    assert citations(text, 4) == ([2, 1, 3], [7, 2024])
    assert citations("No citation at all.", 3) == ([], [])
    assert citations("The sentences are:\n[1] Housing.\n  [2] Buses [3].", 3) == ([3], [])  # list markers are not citations


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_each_group_gets_a_model_summary_whose_citations_are_evidence(tiny_lm, tiny_sentence_transformer):
    from analysis.embeddings import Embedder

    frame = pd.read_csv(SAMPLE_CSV).head(30)
    backend = llm.LocalLLM(tiny_lm, device="cpu")
    embedder = Embedder(str(tiny_sentence_transformer), device="cpu")
    try:
        table = summarize_groups(frame["text"].tolist(), frame["respondent_id"].astype(str).tolist(), frame["region"],
                                 k=3, embedder=embedder, llm_backend=backend)
    finally:
        backend.close()
        embedder.close()
    assert set(table["group"]) == set(frame["region"].dropna())
    for _, row in table.iterrows():
        assert row["llm_summary"] is None or isinstance(row["llm_summary"], str)
        assert set(row["llm_cited"]) <= {e["doc_id"] for e in row["evidence"]}
        good, bad = citations(row["llm_summary"] or "", len(row["evidence"]))
        assert row["llm_bad_citations"] == bad and len(row["llm_cited"]) == len(good)
    flat = group_summaries_table(table)
    assert {"llm_summary", "llm_cited", "llm_bad_citations", "evidence_doc_ids"} <= set(flat.columns)
    assert "evidence" not in flat.columns


def test_a_group_without_evidence_gets_no_summary_and_asks_nothing(tiny_lm):
    backend = llm.LocalLLM(tiny_lm, device="cpu")
    try:
        assert llm_group_summary(backend, "North", []) == {"summary": None, "cited": [], "bad_citations": []}
        assert backend.usage.requests == 0
    finally:
        backend.close()
