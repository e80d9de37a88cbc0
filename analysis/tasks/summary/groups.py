"""Summaries per group, code or topic, with the sentences they come from as evidence.

The sentences of all texts of a group (a column value, a code or a topic) are pooled and
the most representative ones chosen by centroid + MMR, at most one per text, so one long
answer cannot dominate. Each chosen sentence keeps its ``doc_id`` and character span: the
evidence a methods section can cite. With a seq2seq model available, an abstractive
summary of those sentences is added.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ...errors import TextlabError
from .extractive import select_representative, sentences


def summarize_groups(texts: list[str], doc_ids: list[str], groups, *, k: int = 5, embedder=None,
                     cache_dir=None, abstractive: str | None = None, device: str = "auto",
                     max_groups: int = 200, llm_backend=None, progress=None) -> pd.DataFrame:
    """Representative sentences per group, with their sources.

    ``groups``: one value per text (a column, ``code_label``, ``topic_label``); texts with a
    missing group or an empty text are left out. Returns one row per group: ``group``,
    ``texts`` (number of non-empty texts), ``summary`` (the chosen sentences, most
    representative first), ``abstract`` (seq2seq summary of them, when ``abstractive``
    names a model) and ``evidence`` (a list of ``{doc_id, sentence, start, end}``).

    With ``llm_backend`` (a loaded ``analysis.llm`` ServerLLM or LocalLLM), a generative
    model also writes ``llm_summary`` from the numbered evidence sentences, citing them as
    [1], [2] ...; ``llm_cited`` lists the doc ids of the sentences it cited and
    ``llm_bad_citations`` the numbers it cited that are not evidence (never dropped
    silently: a summary citing sentences it was not given needs reading with care).
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
    if llm_backend is not None:
        written = [llm_group_summary(llm_backend, row["group"], row["evidence"]) for _, row in table.iterrows()]
        table["llm_summary"] = [w["summary"] for w in written]
        table["llm_cited"] = [w["cited"] for w in written]
        table["llm_bad_citations"] = [w["bad_citations"] for w in written]
    return table


LLM_SUMMARY_SYSTEM = ("You summarise what people wrote, for a social-science report. Use only the numbered "
                      "sentences given; do not add facts or opinions of your own.")
LLM_SUMMARY_PROMPT = ("These sentences are the most representative ones from {n} texts of the group \"{group}\":\n\n"
                      "{sentences}\n\nWrite a summary of two or three sentences of what they say. After each claim, "
                      "cite the numbers of the sentences it rests on in square brackets, like [1] or [2, 3].")
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def llm_group_summary(backend, group: str, evidence: list[dict], *, max_tokens: int = 200, seed: int = 0) -> dict:
    """A generative model's summary of one group's evidence sentences, with its citations
    checked against them: the cited doc ids, and any cited number that is not a sentence."""
    from ... import llm
    from ..prompting import conversation

    if not evidence:
        return {"summary": None, "cited": [], "bad_citations": []}
    numbered = "\n".join(f"[{n}] {item['sentence']}" for n, item in enumerate(evidence, start=1))
    prompt = LLM_SUMMARY_PROMPT.format(n=len(evidence), group=group, sentences=numbered)
    answer = backend.chat([conversation(LLM_SUMMARY_SYSTEM, prompt)],
                          llm.GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=seed))[0]
    good, bad = citations(answer.text, len(evidence))
    return {"summary": answer.text.strip() or None, "cited": [evidence[n - 1]["doc_id"] for n in good],
            "bad_citations": bad}


def citations(text: str, n: int) -> tuple[list[int], list[int]]:
    """The sentence numbers a summary cites ([2], [1, 3]), in order of first citation: those
    among 1..n, and those that are not."""
    # A number at the start of a line is a list marker (a model echoing the numbered sentences), not a citation.
    found = [m.group(1) for m in _CITATION.finditer(text) if text[:m.start()].rsplit("\n", 1)[-1].strip()]
    numbers = [int(x) for group in found for x in re.split(r"\s*[,;]\s*", group)]
    unique = list(dict.fromkeys(numbers))
    return [k for k in unique if 1 <= k <= n], [k for k in unique if not 1 <= k <= n]


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
    flat = table.assign(evidence_doc_ids=[";".join(e["doc_id"] for e in ev) for ev in table["evidence"]])
    for column in ("llm_cited", "llm_bad_citations"):
        if column in flat.columns:
            flat[column] = [";".join(map(str, v)) for v in flat[column]]
    return flat.drop(columns="evidence")
