"""Summaries: one per text (``summary`` column), and per group, code or topic with evidence.

Per text: the offline default is extractive (``analysis.summarize``: centroid + MMR over
the text's sentences with a position prior, on the shared MiniLM embeddings); the
transformer backend is abstractive (``analysis.abstractive``: distilbart-cnn by default,
map-reduce for texts longer than the model window). Short texts pass through unchanged in
both; the run counts them (``rows.passthrough``) and the texts summarised in chunks
(``rows.split``).

Per group (``summarize_groups``): the sentences of all texts of a group (a column value, a
code or a topic) are pooled and the most representative ones chosen by centroid + MMR,
at most one per text, so one long answer cannot dominate. Each chosen sentence keeps its
``doc_id`` and character span: the evidence a methods section can cite. With a seq2seq
model available, an abstractive summary of those sentences is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import models
from ..errors import TextlabError
from .base import BaseConfig, Predictor, RunContext, Task, setting
from .classifier import choose_backend


@dataclass
class SummaryConfig(BaseConfig):
    max_sentences: int = setting(3, help="extractive: sentences per summary")
    ratio: float | None = setting(None, help="extractive: share of the sentences instead of max_sentences (0 to 1)")
    min_words: int = setting(40, help="extractive: shorter texts pass through unchanged")
    max_new_tokens: int = setting(80, help="abstractive: longest summary, in model tokens")
    min_new_tokens: int = setting(10, help="abstractive: shortest summary, in model tokens")
    num_beams: int = setting(1, help="abstractive: beams of the beam search (1: greedy decoding)")
    passthrough_words: int = setting(30, help="abstractive: shorter texts pass through unchanged")


class ExtractivePredictor(Predictor):
    def __init__(self, config: SummaryConfig, reason: str, context: RunContext | None):
        from ..embeddings import Embedder

        self.config, self.reason = config, reason
        self.embedder = Embedder(models.DEFAULTS["summary"]["offline"], device=config.device,
                                 batch_size=config.batch_size, cache_dir=context.cache_dir if context else None)

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        from ..summarize import extractive_summaries

        found = extractive_summaries(texts, self.embedder, max_sentences=self.config.max_sentences,
                                     ratio=self.config.ratio, min_words=self.config.min_words, progress=progress)
        return pd.DataFrame({"summary": [s.text for s in found], "_passthrough": [s.passthrough for s in found]})

    def describe(self) -> dict[str, Any]:
        return {**self.embedder.describe(), "backend": "offline", "backend_choice": self.reason,
                "method": "extractive: centroid + MMR over sentence embeddings, position prior"}

    def close(self) -> None:
        self.embedder.close()


class AbstractivePredictor(Predictor):
    def __init__(self, config: SummaryConfig, model: str, reason: str):
        from ..abstractive import Seq2SeqSummarizer

        self.reason = reason
        self.passthrough_words = config.passthrough_words
        self.summarizer = Seq2SeqSummarizer(
            model, device=config.device, batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
            min_new_tokens=config.min_new_tokens, num_beams=config.num_beams,
            passthrough_words=config.passthrough_words)

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        from ..textutil import words

        out = self.summarizer.summarize(texts, progress)
        return pd.DataFrame({"summary": out, "_split": self.summarizer.chunked.copy(),
                             "_passthrough": [len(words(t)) < self.passthrough_words for t in texts]})

    def describe(self) -> dict[str, Any]:
        return {**self.summarizer.describe(), "backend_choice": self.reason, "method": "abstractive (seq2seq)"}

    def close(self) -> None:
        self.summarizer.close()


class SummaryTask(Task):
    name = "summary"
    title = "Summaries"
    description = "A summary of every text; summaries of groups, codes and topics with their sources."
    Config = SummaryConfig
    chunk_size = 1024
    columns = ("summary",)
    not_for_charts = ("summary",)  # free text: read on the Summaries page

    def validate(self, config: SummaryConfig) -> None:
        super().validate(config)
        if config.max_sentences < 1:
            raise TextlabError(f"max_sentences must be at least 1, not {config.max_sentences}.")
        if config.ratio is not None and not 0 < config.ratio <= 1:
            raise TextlabError(f"ratio must be between 0 and 1, not {config.ratio}.")
        choose_backend("summary", config.backend, config.model)

    def load(self, config: SummaryConfig, context: RunContext | None = None) -> Predictor:
        choice = choose_backend("summary", config.backend, config.model)
        if choice.backend == "offline":
            return ExtractivePredictor(config, choice.reason, context)
        return AbstractivePredictor(config, choice.model, choice.reason)


TASK = SummaryTask()


def run(texts: list[str], config: SummaryConfig | dict | None = None) -> pd.DataFrame:
    """A summary per text, in-process (notebooks, tests)."""
    from ..jobs import run_in_memory

    if not isinstance(config, SummaryConfig):
        config = SummaryConfig.from_dict(config)
    return run_in_memory(TASK, texts, config)


# ---------------------------------------------------------------------- group summaries


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
    from ..embeddings import Embedder
    from ..summarize import select_representative, sentences

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
        from ..abstractive import Seq2SeqSummarizer

        summarizer = Seq2SeqSummarizer(abstractive, device=device)
        try:
            table["abstract"] = summarizer.summarize(table["summary"].tolist())
        finally:
            summarizer.close()
    return table


def abstractive_model_if_available(model: str | None = None) -> str | None:
    """The seq2seq model to use for group abstracts, when it is on this machine."""
    name = model or models.DEFAULTS["summary"]["transformers"]
    try:
        return name if models.is_available(models.get_spec(name, task="summary")) else None
    except TextlabError:
        return None
