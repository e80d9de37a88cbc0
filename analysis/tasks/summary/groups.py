"""Summaries per group, code or topic, with the sentences they come from as evidence.

The sentences of all texts of a group (a column value, a code or a topic) are pooled and
the most representative ones chosen by centroid + MMR, at most one per text, so one long
answer cannot dominate. Each chosen sentence keeps its ``doc_id`` and character span: the
evidence a methods section can cite. With a seq2seq model available, an abstractive
summary of those sentences is added.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import TextlabError
from .extractive import select_representative, sentences


def summarize_groups(texts: list[str], doc_ids: list[str], groups, *, k: int = 5, embedder=None,
                     cache_dir=None, abstractive: str | None = None, device: str = "auto",
                     max_groups: int = 200) -> pd.DataFrame:
    """Representative sentences per group, with their sources.

    ``groups``: one value per text (a column, ``code_label``, ``topic_label``); texts with a
    missing group or an empty text are left out. Returns one row per group: ``group``,
    ``texts`` (number of non-empty texts), ``summary`` (the chosen sentences, most
    representative first), ``abstract`` (seq2seq summary of them, when ``abstractive``
    names a model) and ``evidence`` (a list of ``{doc_id, sentence, start, end}``).
    """
    from ...embeddings import Embedder

    groups = pd.Series(list(groups), dtype=object)
    if len(groups) != len(texts) or len(doc_ids) != len(texts):
        raise TextlabError("texts, doc_ids and groups must have the same length.")
    keep = [i for i, t in enumerate(texts) if t and t.strip() and not pd.isna(groups.iloc[i])]
    values = pd.Series([str(groups.iloc[i]) for i in keep])
    if values.nunique() > max_groups:
        raise TextlabError(f"{values.nunique()} groups: summaries are made for at most {max_groups}. Choose a column "
                           "with fewer distinct values (a group, a code or a topic).")
    pool_text, pool_owner, pool_span, pool_group = [], [], [], []
    for i, g in zip(keep, values):
        for start, end in sentences(texts[i]):
            pool_text.append(texts[i][start:end])
            pool_owner.append(i)
            pool_span.append((start, end))
            pool_group.append(g)
    own = embedder is None
    embedder = embedder or Embedder(device=device, cache_dir=cache_dir)
    try:
        vectors = embedder.encode(pool_text) if pool_text else np.zeros((0, 1), dtype=np.float32)
    finally:
        if own:
            embedder.close()
    pool_group_arr = np.array(pool_group, dtype=object)
    rows = []
    for g in sorted(set(values), key=lambda v: (-int((values == v).sum()), v)):
        members = np.flatnonzero(pool_group_arr == g)
        chosen = select_representative([pool_text[j] for j in members], vectors[members], k,
                                       owners=[pool_owner[j] for j in members], max_per_owner=1)
        evidence = [{"doc_id": doc_ids[pool_owner[members[c]]], "sentence": pool_text[members[c]],
                     "start": pool_span[members[c]][0], "end": pool_span[members[c]][1]} for c in chosen]
        rows.append({"group": g, "texts": int((values == g).sum()),
                     "summary": " ".join(e["sentence"] for e in evidence), "abstract": None, "evidence": evidence})
    table = pd.DataFrame(rows, columns=["group", "texts", "summary", "abstract", "evidence"])
    if abstractive and len(table):
        from .abstractive import Seq2SeqSummarizer

        summarizer = Seq2SeqSummarizer(abstractive, device=device)
        try:
            table["abstract"] = summarizer.summarize(table["summary"].tolist())
        finally:
            summarizer.close()
    return table


def group_columns(frame: pd.DataFrame, *, text_column: str, id_column: str | None = None,
                  group_column: str | None = None, max_groups: int = 50) -> list[str]:
    """Columns of a results frame to summarise by: the project's group column, then the codes and
    topics of finished runs (``code_label``, ``topic_label``), then any other text column with
    2 to ``max_groups`` distinct values (never the texts, ids or summaries). Text columns are
    those of dtype object or string (pandas 3 reads text as ``str``)."""
    candidates = [c for c in ([group_column] if group_column else []) + ["code_label", "topic_label"]
                  if c and c in frame.columns]
    candidates += [c for c in frame.columns if c not in candidates
                   and c not in (text_column, id_column, "doc_id", "summary")
                   and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype))
                   and 1 < frame[c].nunique() <= max_groups]
    return candidates


def group_summaries_table(table: pd.DataFrame) -> pd.DataFrame:
    """``summarize_groups``' table flat, for a file: the evidence as ``evidence_doc_ids``
    (the cited texts' ids, ``;``-joined) instead of a list of dicts."""
    return table.assign(evidence_doc_ids=[";".join(e["doc_id"] for e in ev) for ev in table["evidence"]]
                        ).drop(columns="evidence")
