"""analysis.tasks.summary.groups: the columns to summarise by and the table to download."""

from __future__ import annotations

import pandas as pd

from analysis.tasks.summary import group_columns, group_summaries_table


def test_group_columns_put_the_group_codes_and_topics_first():
    frame = pd.DataFrame({
        "doc_id": ["d1", "d2", "d3"], "rid": ["r1", "r2", "r3"], "answer": ["a", "b", "c"], "summary": ["a", "b", "c"],
        "party": ["x", "y", "x"], "topic_label": ["t1", "t2", "t1"], "code_label": ["c1", "c1", "c2"],
        "constant": ["k", "k", "k"], "score": [1, 2, 3], "region": ["n", "s", "s"],
    })
    assert group_columns(frame, text_column="answer", id_column="rid", group_column="region") == [
        "region", "code_label", "topic_label", "party"]
    assert group_columns(frame, text_column="answer", id_column="rid", max_groups=1) == ["code_label", "topic_label"]


def test_group_summaries_table_lists_the_cited_texts():
    table = pd.DataFrame({"group": ["North"], "texts": [2], "summary": ["One. Two."], "abstract": [None],
                          "evidence": [[{"doc_id": "d1", "sentence": "One.", "start": 0, "end": 4},
                                        {"doc_id": "d7", "sentence": "Two.", "start": 5, "end": 9}]]})
    flat = group_summaries_table(table)
    assert list(flat.columns) == ["group", "texts", "summary", "abstract", "evidence_doc_ids"]
    assert flat["evidence_doc_ids"].tolist() == ["d1;d7"] and "evidence" in table.columns  # the input is kept
