"""Sentiment and emotion with a generative model (backend="llm") in this process.

The model is the tiny random-weight causal LM of tests.tiny_models (its labels mean
nothing); what is checked is that the llm backend writes the columns the other backends
write, one row per input row, empty results for empty texts, probabilities that are a
distribution over the labels, and explanation columns only when asked for. The same
through a real ``transformers serve`` process is in tests/test_llm_server.py.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.tasks import emotion, sentiment
from analysis.tasks.emotion import LLM_EMOTIONS, emotion_columns
from analysis.tasks.sentiment import LABELS

TEXTS = ["The buses are late every single morning and nobody seems to care.", "",
         "Great to see the new clinic open! Waiting times are finally shorter.", None, "ok",
         "   ", "Rents went up again. We cannot afford to stay in this city much longer."]
FILLED = [0, 2, 4, 6]   # the rows with a text
EMPTY = [1, 3, 5]       # "", None and blanks


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


@pytest.fixture(scope="module")
def sentiment_llm(tiny_lm):
    return sentiment.run(TEXTS, {"backend": "llm", "model": str(tiny_lm), "device": "cpu"})


@pytest.fixture(scope="module")
def emotion_llm(tiny_lm):
    return emotion.run(TEXTS, {"backend": "llm", "model": str(tiny_lm), "device": "cpu"})


def test_llm_sentiment_has_the_columns_of_the_transformer_backend(sentiment_llm, tiny_classifier_model):
    out = sentiment_llm
    assert len(out) == len(TEXTS)
    reference = sentiment.run(TEXTS, {"backend": "transformers", "model": str(tiny_classifier_model),
                                      "device": "cpu"})
    assert list(out.columns) == list(reference.columns) == [
        "sentiment_label", "sentiment_score", "sentiment_prob_negative", "sentiment_prob_neutral",
        "sentiment_prob_positive"]
    filled = out.iloc[FILLED]
    assert filled["sentiment_label"].notna().all() and set(filled["sentiment_label"]) <= set(LABELS)
    probs = filled[[f"sentiment_prob_{label}" for label in LABELS]]
    assert ((probs >= 0) & (probs <= 1)).all().all()
    assert ((probs.sum(axis=1) - 1).abs() < 1e-3).all()
    # The label is the most probable class, the score P(positive) - P(negative) in -1..1.
    assert (probs.idxmax(axis=1).str.removeprefix("sentiment_prob_") == filled["sentiment_label"]).all()
    score = filled["sentiment_score"]
    assert score.between(-1, 1).all()
    expected = (filled["sentiment_prob_positive"] - filled["sentiment_prob_negative"]).round(4)
    assert (score - expected).abs().max() < 1e-3
    # Empty texts get empty results: no label, no score, no probabilities.
    assert out.iloc[EMPTY].isna().all().all()


def test_llm_emotion_has_a_label_and_a_share_per_emotion(emotion_llm):
    out = emotion_llm
    assert len(out) == len(TEXTS)
    assert list(out.columns) == ["emotion_label"] + [f"emotion_{name}" for name in LLM_EMOTIONS]
    assert list(emotion_columns(out)) == list(LLM_EMOTIONS)  # what the pages read as the emotions
    filled = out.iloc[FILLED]
    assert filled["emotion_label"].notna().all() and set(filled["emotion_label"]) <= set(LLM_EMOTIONS)
    shares = filled[[f"emotion_{name}" for name in LLM_EMOTIONS]]
    assert ((shares >= 0) & (shares <= 1)).all().all() and ((shares.sum(axis=1) - 1).abs() < 1e-3).all()
    assert (shares.idxmax(axis=1).str.removeprefix("emotion_") == filled["emotion_label"]).all()
    assert out.iloc[EMPTY].isna().all().all()


def test_explanations_come_only_when_asked_for(tiny_lm, sentiment_llm, emotion_llm):
    assert "sentiment_explanation" not in sentiment_llm and "emotion_explanation" not in emotion_llm
    settings = {"backend": "llm", "model": str(tiny_lm), "device": "cpu", "explain": True, "llm_max_tokens": 12}
    mood = sentiment.run(TEXTS, settings)
    feeling = emotion.run(TEXTS, settings)
    assert list(mood.columns) == list(sentiment_llm.columns) + ["sentiment_explanation"]
    assert list(feeling.columns) == list(emotion_llm.columns) + ["emotion_explanation"]
    assert list(emotion_columns(feeling)) == list(LLM_EMOTIONS)  # the explanation is not an emotion
    for frame, task in ((mood, "sentiment"), (feeling, "emotion")):
        assert len(frame) == len(TEXTS)
        explained = frame[f"{task}_explanation"]
        # An explanation is the model's own text (gibberish here) or absent; never the JSON around it.
        assert all(e is None or pd.isna(e) or (isinstance(e, str) and '"' not in e) for e in explained)
        assert explained.iloc[FILLED].notna().any()
        assert frame.iloc[EMPTY].isna().all().all()
        assert frame[f"{task}_label"].iloc[FILLED].notna().all()


def test_the_run_declares_the_llm_columns_for_exports_and_pages():
    """The manifest of a run (here in memory, through the task's declarations) names the
    explanation column, so exports and the Explore page know it is free text, not a code."""
    task = sentiment.TASK
    with_explain = task.output_columns({"parameters": {"backend": "llm", "explain": True}})
    without = task.output_columns({"parameters": {"backend": "llm"}})
    assert "sentiment_explanation" in with_explain and "sentiment_explanation" not in without
    assert "sentiment_explanation" in task.not_for_charts and "emotion_explanation" in emotion.TASK.not_for_charts
    assert task.owns_column("sentiment_prob_positive", {"parameters": {"backend": "llm"}})
