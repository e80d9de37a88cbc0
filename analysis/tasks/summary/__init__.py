"""Summaries: one per text (``summary`` column), and per group, code or topic with evidence.

Per text: the offline default is extractive (``.extractive``: centroid + MMR over
the text's sentences with a position prior, on the shared MiniLM embeddings); the
transformer backend is abstractive (``.abstractive``: distilbart-cnn by default,
map-reduce for texts longer than the model window). Short texts pass through unchanged in
both; the run counts them (``rows.passthrough``) and the texts summarised in chunks
(``rows.split``).

Per group (``.groups.summarize_groups``): the sentences of all texts of a group (a column value, a
code or a topic) are pooled and the most representative ones chosen by centroid + MMR,
at most one per text, so one long answer cannot dominate. Each chosen sentence keeps its
``doc_id`` and character span: the evidence a methods section can cite. With a seq2seq
model available, an abstractive summary of those sentences is added.
"""

from __future__ import annotations

from dataclasses import dataclass


import pandas as pd

from ... import models
from ...errors import TextlabError
from ..base import FAST_HELP, BaseConfig, Predictor, RunContext, Task, setting
from .. import execute
from ..classifier import choose_backend
from .extractive import ExtractivePredictor, Summary, extractive_summaries, extractive_summary, select_representative, sentences
from .groups import group_columns, group_summaries_table, summarize_groups

__all__ = [  # the public names of this analysis
    "SummaryConfig",
    "SummaryTask",
    "TASK",
    "run",
    "Summary",
    "ExtractivePredictor",
    "extractive_summary",
    "extractive_summaries",
    "select_representative",
    "sentences",
    "summarize_groups",
    "group_columns",
    "group_summaries_table",
    "abstractive_model_if_available",
    "Seq2SeqSummarizer",
    "AbstractivePredictor",
]


@dataclass
class SummaryConfig(BaseConfig):
    max_sentences: int = setting(3, help="extractive: sentences per summary")
    ratio: float | None = setting(None, help="extractive: share of the sentences instead of max_sentences (0 to 1)")
    min_words: int = setting(40, help="extractive: shorter texts pass through unchanged")
    max_new_tokens: int = setting(80, help="abstractive: longest summary, in model tokens")
    min_new_tokens: int = setting(10, help="abstractive: shortest summary, in model tokens")
    num_beams: int = setting(1, help="abstractive: beams of the beam search (1: greedy decoding)")
    passthrough_words: int = setting(30, help="abstractive: shorter texts pass through unchanged")
    fast: bool = setting(False, help="extractive: " + FAST_HELP, flag="--fast")



class SummaryTask(Task):
    name = "summary"
    title = "Summaries"
    description = "A summary of every text; summaries of groups, codes and topics with their sources."
    Config = SummaryConfig
    chunk_size = 1024
    row_flags = {
        "split": "longer than the model window: summarised in chunks (map-reduce)",
        "passthrough": "too short to summarise: passed through unchanged",
    }
    columns = ("summary",)
    not_for_charts = ("summary",)  # free text: read on the Summaries page

    def validate(self, config: SummaryConfig) -> None:
        super().validate(config)
        if config.max_sentences < 1:
            raise TextlabError(f"max_sentences must be at least 1, not {config.max_sentences}.")
        if config.ratio is not None and not 0 < config.ratio <= 1:
            raise TextlabError(f"ratio must be between 0 and 1, not {config.ratio}.")
        if config.fast and config.backend != "offline" and (config.backend != "auto" or config.model):
            raise TextlabError("--fast speeds up the extractive summaries (backend offline); the abstractive "
                               "summaries run a seq2seq model. Use --backend offline with --fast, or leave out --fast.")
        choose_backend("summary", config.backend, config.model)

    def load(self, config: SummaryConfig, context: RunContext | None = None) -> Predictor:
        choice = choose_backend("summary", config.backend, config.model)
        if choice.backend == "offline" or config.fast:  # --fast: the extractive method on the fast model
            return ExtractivePredictor(config, choice.reason, context)
        from .abstractive import AbstractivePredictor  # imports torch: only when a seq2seq model is used

        return AbstractivePredictor(config, choice.model, choice.reason)


TASK = SummaryTask()


def run(texts: list[str], config: SummaryConfig | dict | None = None, **settings) -> pd.DataFrame:
    """A summary per text, in-process (notebooks, tests)."""
    return execute.run(TASK, texts, config, **settings)




def abstractive_model_if_available(model: str | None = None) -> str | None:
    """The seq2seq model to use for group abstracts, when it is on this machine."""
    name = model or models.DEFAULTS["summary"]["transformers"]
    try:
        return name if models.is_available(models.get_spec(name, task="summary")) else None
    except TextlabError:
        return None


def __getattr__(name: str):
    # The abstractive module imports torch; importing this package must not (the offline
    # default and the pages never need it).
    if name in ("Seq2SeqSummarizer", "AbstractivePredictor"):
        from . import abstractive

        return getattr(abstractive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
