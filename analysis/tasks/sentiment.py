"""Sentiment: VADER offline, or any local sequence-classification model.

Columns (design contract): ``sentiment_label`` (negative, neutral, positive),
``sentiment_score`` (-1..1) and, for transformer backends, ``sentiment_prob_<label>`` for
every class of the model.

Offline (VADER, Hutto & Gilbert 2014): ``sentiment_score`` is VADER's compound score and
the label follows the thresholds (compound >= 0.05 positive, <= -0.05 negative, else
neutral; configurable). **Multi-sentence texts.** VADER sums word valences over the text
and squashes the sum into -1..1, so the compound of a long text drifts towards ±1 with
length alone. Scored per sentence and averaged, it loses the cross-sentence cues that
make it good on tweets (r with the human mean on the VADER tweets falls from 0.872 to
0.801). So ``multi_sentence="auto"`` (the default) scores a text whole up to
``whole_text_max_words`` words (80: tweets, survey answers, short posts; this is how
VADER was validated; words here are whitespace-separated) and longer texts as the mean
of their sentences' compounds, each sentence weighted by its word count. ``"whole"`` and ``"sentences"`` force one rule.

Transformers: ``sentiment_score`` = P(positive) - P(negative); the label is the most
probable class mapped to negative/neutral/positive. Texts longer than the model's window
are split into overlapping windows (see ``analysis.runner``) and the run reports how
many were split.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TextlabError
from ..method_notes import non_english
from ..textutil import slug, split_sentences
from .base import LLMConfig, Predictor, Task, cpu_count, exit_with_parent, setting
from . import execute
from .classifier import TransformerClassifier, choose_backend

LABELS = ("negative", "neutral", "positive")

# Model label spellings that mean the same three classes.
_SYNONYMS = {
    "negative": "negative", "neg": "negative",
    "neutral": "neutral", "neu": "neutral",
    "positive": "positive", "pos": "positive",
}
_STARS = re.compile(r"^([1-5])\s*stars?$")


@dataclass
class SentimentConfig(LLMConfig):
    positive_threshold: float = setting(0.05, help="VADER: a compound score at least this is positive")
    negative_threshold: float = setting(-0.05, help="VADER: a compound score at most this is negative")
    multi_sentence: str = setting("auto", help="VADER: score a text whole or as the mean of its sentences: "
                                               "auto (whole up to whole_text_max_words), whole or sentences",
                                  choices=("auto", "whole", "sentences"))
    whole_text_max_words: int = setting(80, help="VADER, multi_sentence auto: texts up to this many words are "
                                                 "scored whole")


def map_labels(labels: list[str], registry_labels: tuple[str, ...] = ()) -> list[str]:
    """Map a model's class labels to negative/neutral/positive, or say why not.

    Handles the usual spellings (negative/NEG/LABEL_0 with a registry label list, star
    ratings 1-5). A model whose classes cannot be mapped is refused: a wrong mapping would
    flip results silently.
    """
    mapped = []
    for i, raw in enumerate(labels):
        key = str(raw).strip().lower()
        if key.startswith("label_") and registry_labels and i < len(registry_labels):
            key = registry_labels[i].lower()
        star = _STARS.match(key)
        if star:
            mapped.append({1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}[int(star.group(1))])
        elif key in _SYNONYMS:
            mapped.append(_SYNONYMS[key])
        else:
            mapped.append("")
    if "" in mapped or "positive" not in mapped or "negative" not in mapped:
        raise TextlabError(
            f"The model's classes {list(labels)} cannot be read as negative/neutral/positive. "
            "Use a sentiment model whose labels name the classes (negative, neutral, positive, or 1-5 stars)."
        )
    return mapped


@functools.lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _is_short(text: str, max_words: int) -> bool:
    # A word takes at least two characters with its separator: most texts are decided
    # without splitting them at all.
    return len(text) <= 2 * max_words or len(text.split()) <= max_words


def vader_compound(text: str, multi_sentence: str = "auto", whole_text_max_words: int = 80) -> float:
    analyzer = _vader()
    if multi_sentence == "whole" or (multi_sentence == "auto" and _is_short(text, whole_text_max_words)):
        return analyzer.polarity_scores(text)["compound"]
    sentences = split_sentences(text) or [text]
    weights = np.array([max(len(s.split()), 1) for s in sentences], dtype=float)
    scores = np.array([analyzer.polarity_scores(s)["compound"] for s in sentences])
    return float((scores * weights).sum() / weights.sum())


def vader_compounds(texts: list[str], multi_sentence: str, whole_text_max_words: int) -> np.ndarray:
    return np.fromiter((vader_compound(t, multi_sentence, whole_text_max_words) for t in texts),
                       dtype=float, count=len(texts))


def _labels_from_scores(scores: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where(scores >= hi, "positive", np.where(scores <= lo, "negative", "neutral"))


class VaderPredictor(Predictor):
    """VADER is pure Python: on several cores the texts are scored by a pool of processes.

    The pool starts from a fork server (never by forking the Streamlit server or a process
    holding torch threads) and lives as long as the predictor, so its start-up is paid once
    per run, not per chunk.
    """

    PARALLEL_MIN_TEXTS = 2000

    def __init__(self, config: SentimentConfig, reason: str):
        self.config = config
        self.reason = reason
        self.workers = cpu_count()
        self._pool = None
        _vader()  # load the lexicon now, not inside the first chunk's timing

    def _scores(self, texts: list[str]) -> np.ndarray:
        c = self.config
        if self.workers < 2 or len(texts) < self.PARALLEL_MIN_TEXTS:
            return vader_compounds(texts, c.multi_sentence, c.whole_text_max_words)
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                             initializer=exit_with_parent, initargs=(os.getpid(),))
        step = -(-len(texts) // (self.workers * 2))
        parts = [texts[i:i + step] for i in range(0, len(texts), step)]
        futures = [self._pool.submit(vader_compounds, part, c.multi_sentence, c.whole_text_max_words) for part in parts]
        try:
            return np.concatenate([f.result() for f in futures])
        except BrokenProcessPool:
            # A worker died (killed for memory, say): score in this process rather than fail the run.
            logging.getLogger(__name__).warning("A VADER worker process stopped; scoring the rest in one process.")
            self.close()
            self.workers = 1
            return vader_compounds(texts, c.multi_sentence, c.whole_text_max_words)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        c = self.config
        scores = self._scores(texts)
        return pd.DataFrame({
            "sentiment_label": _labels_from_scores(scores, c.negative_threshold, c.positive_threshold),
            "sentiment_score": scores.round(4),
            # VADER's lexicon is English: the manifest counts the texts it could not read.
            "non_english": non_english(texts),
        })

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "backend": "offline",
            "model": "VADER (vaderSentiment)",
            "model_revision": f"vaderSentiment {version('vaderSentiment')}",
            "backend_choice": self.reason,
            "labels": list(LABELS),
            "device": "cpu",
            "scoring": (
                f"compound score; positive >= {c.positive_threshold}, negative <= {c.negative_threshold}; "
                f"multi-sentence texts: {c.multi_sentence} (whole text up to {c.whole_text_max_words} words, "
                "else the word-weighted mean of sentence compounds)"
            ),
            "citation": "Hutto & Gilbert (2014), ICWSM-14",
        }


class TransformerSentimentPredictor(Predictor):
    def __init__(self, config: SentimentConfig, model: str, reason: str):
        self.classifier = TransformerClassifier(model, "sentiment", device=config.device, batch_size=config.batch_size)
        self.reason = reason
        self.mapped = map_labels(self.classifier.labels, self.classifier.spec.labels)
        self.columns = [f"sentiment_prob_{slug(label)}" for label in self.classifier.labels]
        if len(set(self.columns)) != len(self.columns):
            raise TextlabError(f"The model's labels {self.classifier.labels} give duplicate column names.")

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        probs, split = self.classifier.predict_proba(texts, progress)
        mapped = np.array(self.mapped)
        positive = probs[:, mapped == "positive"].sum(axis=1)
        negative = probs[:, mapped == "negative"].sum(axis=1)
        frame = pd.DataFrame({
            "sentiment_label": mapped[probs.argmax(axis=1)],
            "sentiment_score": (positive - negative).round(4),
        })
        for j, column in enumerate(self.columns):
            frame[column] = probs[:, j].round(4)
        frame["split"] = split
        return frame

    def describe(self) -> dict[str, Any]:
        return {**self.classifier.describe(), "backend_choice": self.reason,
                "label_mapping": dict(zip(self.classifier.labels, self.mapped))}

    def close(self) -> None:
        self.classifier.close()


class LLMSentimentPredictor(Predictor):
    """Sentiment asked of a generative model ("classify the sentiment of this text and explain why").

    ``sentiment_score`` = P(positive) - P(negative) where the backend gives label
    probabilities (in process: every label scored); without them the score is the label's
    sign (-1, 0, 1) and the manifest says so."""

    QUESTION = "Classify the sentiment of the text: is it negative, neutral or positive?"

    def __init__(self, config: SentimentConfig, context=None):
        from .prompting import LabelPrompter

        self.prompter = LabelPrompter(config, context, task="sentiment", labels=list(LABELS),
                                      question=self.QUESTION, prob_prefix="sentiment_prob_")

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        frame = self.prompter.predict(texts, progress)
        if "sentiment_prob_positive" in frame:
            score = frame["sentiment_prob_positive"] - frame["sentiment_prob_negative"]
        else:
            score = frame["sentiment_label"].map({"negative": -1.0, "neutral": 0.0, "positive": 1.0})
        frame.insert(1, "sentiment_score", score.astype(float).round(4))
        return frame

    def describe(self) -> dict[str, Any]:
        return {**self.prompter.describe(),
                "scoring": ("P(positive) - P(negative) from the label probabilities" if self.prompter.has_probs
                            else "the label's sign (-1, 0, 1): the backend gave no probabilities")}

    def close(self) -> None:
        self.prompter.close()


class SentimentTask(Task):
    name = "sentiment"
    title = "Sentiment"
    description = "Negative, neutral or positive, with a score from -1 to 1."
    Config = SentimentConfig
    chunk_size = 4096
    columns = ("sentiment_label", "sentiment_score", "sentiment_explanation")
    column_prefixes = ("sentiment_prob_",)  # transformers: P(class) for each class of the model
    label_columns = ("sentiment_label",)
    not_for_charts = ("sentiment_explanation",)  # free text: read in close reading
    row_flags = {
        "non_english": "probably not English, which this English-only method cannot read",
        "split": "longer than the model window: read in overlapping windows",
        "unparsed": "the language model's answer named no sentiment label (after one retry): not rated",
    }
    llm_backend = True

    def validate(self, config: SentimentConfig) -> None:
        super().validate(config)
        if config.multi_sentence not in ("auto", "whole", "sentences"):
            raise TextlabError(f"multi_sentence must be auto, whole or sentences, not '{config.multi_sentence}'.")
        if not -1 <= config.negative_threshold <= config.positive_threshold <= 1:
            raise TextlabError(
                "Thresholds must satisfy -1 <= negative_threshold <= positive_threshold <= 1 "
                f"(got {config.negative_threshold} and {config.positive_threshold})."
            )
        if config.whole_text_max_words < 1:
            raise TextlabError("whole_text_max_words must be at least 1.")
        # A missing model is reported when the run is asked for, not minutes later in the worker.
        if config.backend != "llm":  # the LLM settings are checked by Task.validate
            choose_backend("sentiment", config.backend, config.model)

    def load(self, config: SentimentConfig, context=None) -> Predictor:
        if config.backend == "llm":
            return LLMSentimentPredictor(config, context)
        choice = choose_backend("sentiment", config.backend, config.model)
        if choice.backend == "offline":
            return VaderPredictor(config, choice.reason)
        return TransformerSentimentPredictor(config, choice.model, choice.reason)

    def empty_row(self) -> dict[str, Any]:
        return {"sentiment_label": None, "sentiment_score": np.nan}

    def output_columns(self, manifest: dict[str, Any] | None = None) -> list[str]:
        # VADER gives a label and a score; a model adds the probability of each of its classes.
        manifest = manifest or {}
        parameters = manifest.get("parameters") or {}
        backend = manifest.get("backend") or parameters.get("backend")
        fixed = ["sentiment_label", "sentiment_score"]
        probabilities = [f"{prefix}*" for prefix in self.column_prefixes]
        if backend == "offline":
            return fixed
        if backend == "transformers":
            return fixed + probabilities
        if backend == "llm":
            return fixed + probabilities + (["sentiment_explanation"] if parameters.get("explain") else [])
        return super().output_columns(manifest)

    def label_sets(self, manifest: dict[str, Any]) -> dict[str, list[str]]:
        return {"sentiment_label": list(LABELS)}  # every backend maps its classes to these


TASK = SentimentTask()


def run(texts: list[str], config: SentimentConfig | dict | None = None, **settings) -> pd.DataFrame:
    """Sentiment of each text, in order (empty texts get empty results)."""
    return execute.run(TASK, texts, config, **settings)
