"""Emotion: the NRC Emotion Lexicon offline, or any local emotion classifier.

Columns (design contract): ``emotion_label`` and ``emotion_<name>`` (0..1) for each
emotion of the backend.

Offline (NRC Emotion Lexicon, Mohammad & Turney 2013, as shipped in ``nrclex``): each text
is split into words (``analysis.textutil.words``), lower-cased, and passed to
``NRCLex.load_token_list`` (TextBlob's tokenizer would need NLTK data that cannot be
downloaded here). The lexicon lists base forms and many inflections; a word it lacks is
looked up once more without a regular English suffix (-s, -es, -ed, -ing, -ly, ...), so
"hated" counts like "hate". ``emotion_<name>`` is the share of the text's words associated
with that emotion (as in LIWC-style dictionaries: comparable across texts of different
length), for the eight emotions anger, anticipation, disgust, fear, joy, sadness,
surprise, trust, plus ``emotion_positive`` and ``emotion_negative``. ``emotion_label`` is
the emotion with the most associated words, or ``none`` when no word matched any of the
eight. Ties go to the emotion whose polarity agrees with the text's positive/negative
word balance, then to the first in alphabetical order. The lexicon knows no negation or
context ("not happy" counts as joy): for anything subtle, use a transformer model.

Transformers: default j-hartmann/emotion-english-distilroberta-base (anger, disgust,
fear, joy, neutral, sadness, surprise); every class probability is kept and the label is
the most probable class (``neutral`` included).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TextlabError
from ..method_notes import non_english
from ..textutil import slug, words
from .base import LLMConfig, Predictor, Task
from . import execute
from .classifier import TransformerClassifier, choose_backend

NRC_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
NRC_POLARITIES = ("positive", "negative")
_POSITIVE_EMOTIONS = {"anticipation", "joy", "surprise", "trust"}
# Tried in order when a word is not in the lexicon as written.
_SUFFIXES = (("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""),
             ("s", ""), ("ly", ""), ("d", ""))


@dataclass
class EmotionConfig(LLMConfig):
    pass


@functools.lru_cache(maxsize=1)
def _nrc():
    from nrclex import NRCLex

    return NRCLex()


def nrc_lexicon() -> dict[str, list[str]]:
    """The NRC Emotion Lexicon as shipped in nrclex: word -> its emotions and polarities (do not modify)."""
    return _nrc().__lexicon__


def lexicon_form(word: str, lexicon: dict) -> str:
    """The word itself if the lexicon has it, else its form without a regular suffix."""
    if word in lexicon:
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            candidate = word[: -len(suffix)] + replacement
            if candidate in lexicon:
                return candidate
    return word


def nrc_counts(text: str) -> tuple[dict[str, int], int]:
    """NRC association counts of a text and its number of words."""
    nrc = _nrc()
    lexicon = nrc_lexicon()
    tokens = [lexicon_form(w, lexicon) for w in words(text.lower())]
    nrc.load_token_list(tokens)
    return dict(nrc.raw_emotion_scores), len(tokens)


def top_emotion(counts: dict[str, int]) -> str:
    best = max((counts.get(e, 0) for e in NRC_EMOTIONS), default=0)
    if best == 0:
        return "none"
    tied = [e for e in NRC_EMOTIONS if counts.get(e, 0) == best]
    if len(tied) > 1:
        balance = counts.get("positive", 0) - counts.get("negative", 0)
        if balance:
            agreeing = [e for e in tied if (e in _POSITIVE_EMOTIONS) == (balance > 0)]
            tied = agreeing or tied
    return tied[0]


class NrcPredictor(Predictor):
    columns = [f"emotion_{e}" for e in NRC_EMOTIONS + NRC_POLARITIES]

    def __init__(self, reason: str):
        self.reason = reason
        _nrc()

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        scores = np.zeros((len(texts), len(self.columns)))
        labels = []
        for i, text in enumerate(texts):
            counts, n_words = nrc_counts(text)
            if n_words:
                scores[i] = [counts.get(name, 0) / n_words for name in NRC_EMOTIONS + NRC_POLARITIES]
            labels.append(top_emotion(counts))
        frame = pd.DataFrame(scores.round(4), columns=self.columns)
        frame.insert(0, "emotion_label", labels)
        # The NRC lexicon is English: the manifest counts the texts it could not read.
        frame["non_english"] = non_english(texts)
        return frame

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "offline",
            "model": "NRC Emotion Lexicon (nrclex)",
            "model_revision": f"nrclex {version('nrclex')}",
            "backend_choice": self.reason,
            "labels": list(NRC_EMOTIONS) + ["none"],
            "device": "cpu",
            "scoring": "share of the text's words associated with each emotion; label = most associated "
                       "emotion (ties: polarity balance, then alphabetical), 'none' without matches",
            "citation": "Mohammad & Turney (2013), Computational Intelligence 29(3)",
        }


class TransformerEmotionPredictor(Predictor):
    def __init__(self, config: EmotionConfig, model: str, reason: str):
        self.classifier = TransformerClassifier(model, "emotion", device=config.device, batch_size=config.batch_size)
        self.reason = reason
        self.names = [slug(label) for label in self.classifier.labels]
        if len(set(self.names)) != len(self.names) or "label" in self.names:
            raise TextlabError(f"The model's labels {self.classifier.labels} do not give distinct emotion column names.")

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        probs, split = self.classifier.predict_proba(texts, progress)
        frame = pd.DataFrame(probs.round(4), columns=[f"emotion_{n}" for n in self.names])
        frame.insert(0, "emotion_label", np.array(self.names)[probs.argmax(axis=1)])
        frame["split"] = split
        return frame

    def describe(self) -> dict[str, Any]:
        return {**self.classifier.describe(), "backend_choice": self.reason}

    def close(self) -> None:
        self.classifier.close()


# The emotions the LLM backend asks about: those of the default transformer model (Ekman's
# six and neutral), so that the two backends' results can be compared label for label.
LLM_EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


def llm_emotion_predictor(config: "EmotionConfig", context=None) -> Predictor:
    """The primary emotion asked of a generative model ("identify the primary emotion and explain")."""
    from .prompting import LabelPrompter

    return LabelPrompter(config, context, task="emotion", labels=list(LLM_EMOTIONS), prob_prefix="emotion_",
                         question="Identify the primary emotion the text expresses (neutral if it expresses none).")


class EmotionTask(Task):
    name = "emotion"
    title = "Emotion"
    description = "Emotion profile of every text and its top emotion."
    Config = EmotionConfig
    chunk_size = 4096
    columns = ("emotion_label", "emotion_explanation")
    column_prefixes = ("emotion_",)  # emotion_<name> (0..1) for each emotion of the backend
    label_columns = ("emotion_label",)
    not_for_charts = ("emotion_explanation",)  # free text: read in close reading
    row_flags = {
        "non_english": "probably not English, which this English-only method cannot read",
        "split": "longer than the model window: read in overlapping windows",
        "unparsed": "the language model's answer named no emotion (after one retry): not rated",
    }
    llm_backend = True

    def validate(self, config: EmotionConfig) -> None:
        super().validate(config)
        # A missing model is reported when the run is asked for, not minutes later in the worker.
        if config.backend != "llm":  # the LLM settings are checked by Task.validate
            choose_backend("emotion", config.backend, config.model)

    def load(self, config: EmotionConfig, context=None) -> Predictor:
        if config.backend == "llm":
            return llm_emotion_predictor(config, context)
        choice = choose_backend("emotion", config.backend, config.model)
        if choice.backend == "offline":
            return NrcPredictor(choice.reason)
        return TransformerEmotionPredictor(config, choice.model, choice.reason)

    def empty_row(self) -> dict[str, Any]:
        return {"emotion_label": None}

    def label_sets(self, manifest: dict[str, Any]) -> dict[str, list[str]]:
        # The backend's emotions as emotion_label writes them (slugs; NRC: its eight and "none").
        return {"emotion_label": [slug(label) for label in manifest.get("labels") or []]}


TASK = EmotionTask()


def run(texts: list[str], config: EmotionConfig | dict | None = None, **settings) -> pd.DataFrame:
    """Emotion of each text, in order (empty texts get empty results)."""
    return execute.run(TASK, texts, config, **settings)


def emotion_columns(frame: pd.DataFrame) -> dict[str, str]:
    """The emotion score columns of a result frame: emotion name -> ``emotion_<name>``, in the
    frame's order. ``emotion_label`` and the NRC polarities (``emotion_positive``,
    ``emotion_negative``) are not emotions."""
    skip = {"emotion_label", "emotion_explanation", *(f"emotion_{p}" for p in NRC_POLARITIES)}
    return {c.removeprefix("emotion_"): c for c in frame.columns if c.startswith("emotion_") and c not in skip}
