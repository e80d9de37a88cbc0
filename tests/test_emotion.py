"""Emotion task: the NRC lexicon on texts of known emotion; the transformer path with a tiny model."""

import numpy as np
import pandas as pd
import pytest
from transformers import pipeline

from analysis.tasks import emotion
from analysis.tasks.emotion import NRC_EMOTIONS, EmotionConfig, lexicon_form, top_emotion
from tests.tiny_models import make_tiny_classifier

EKMAN = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


@pytest.fixture(autouse=True)
def no_hub_models(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))


def test_nrc_labels_hand_written_texts():
    texts = ["I am furious, this makes me so angry!", "What a happy, joyful celebration with friends",
             "I am terrified and afraid of the dark", "The table is brown.", ""]
    out = emotion.run(texts, EmotionConfig(backend="offline"))
    assert out["emotion_label"].tolist()[:4] == ["anger", "joy", "fear", "none"]
    assert out["emotion_label"].isna().tolist() == [False] * 4 + [True]
    columns = [f"emotion_{e}" for e in NRC_EMOTIONS] + ["emotion_positive", "emotion_negative"]
    assert columns == [c for c in out.columns if c != "emotion_label"]
    assert ((out[columns].fillna(0) >= 0) & (out[columns].fillna(0) <= 1)).all().all()
    assert out.loc[3, columns].sum() == 0


def test_nrc_scores_are_shares_of_words():
    out = emotion.run(["angry angry calm table"], EmotionConfig(backend="offline"))
    assert out.loc[0, "emotion_anger"] == pytest.approx(0.5)


def test_inflected_words_are_found_by_their_base_form():
    from analysis.tasks.emotion import nrc_lexicon

    lexicon = nrc_lexicon()
    assert "hated" not in lexicon and lexicon_form("hated", lexicon) == "hate"
    assert lexicon_form("table", lexicon) == "table"
    out = emotion.run(["They hated it"], EmotionConfig(backend="offline"))
    assert out.loc[0, "emotion_label"] in {"anger", "disgust", "fear", "sadness"}


def test_ties_follow_the_polarity_balance():
    assert top_emotion({"anger": 1, "joy": 1, "positive": 2, "negative": 1}) == "joy"
    assert top_emotion({"anger": 1, "joy": 1, "positive": 0, "negative": 2}) == "anger"
    assert top_emotion({"positive": 3}) == "none"


def test_transformer_emotion_keeps_all_probabilities(tmp_path):
    path = make_tiny_classifier(tmp_path / "emo", labels=EKMAN)
    texts = ["I am so happy today", "This is disgusting", "What?!", "a much longer text " * 10]
    out = emotion.run(texts, EmotionConfig(backend="transformers", model=str(path), device="cpu"))
    assert list(out.columns) == ["emotion_label"] + [f"emotion_{e}" for e in EKMAN]
    assert np.allclose(out[[f"emotion_{e}" for e in EKMAN]].sum(axis=1), 1, atol=1e-3)
    reference = pipeline("text-classification", model=str(path), top_k=None, device="cpu")
    for i, text in enumerate(texts):
        scores = {d["label"]: d["score"] for d in reference([text])[0]}
        assert out.loc[i, "emotion_label"] == max(scores, key=scores.get)
        for label, p in scores.items():
            assert out.loc[i, f"emotion_{label}"] == pytest.approx(p, abs=0.02)


def test_nrc_flags_texts_that_are_not_in_english_without_a_new_result_column():
    from tests.test_sentiment import MIXED

    predictor = emotion.TASK.load(EmotionConfig(backend="offline"))
    out = predictor.predict([t for t in MIXED if t])
    assert out["non_english"].tolist() == [False, False, True, True, False, False]
    assert "_non_english" not in emotion.run(MIXED, EmotionConfig(backend="offline")).columns


@pytest.mark.slow
def test_emotion_page_shows_the_lexicon_note_the_validate_link_and_the_non_english_count(home):
    from tests.test_sentiment import assert_honest_offline_page, offline_result_page

    at, project, run = offline_result_page("emotion", {}, "pages/emotion.py")
    assert_honest_offline_page(at, project, run, note=["GoEmotions", "24.4"], method="NRC")


def test_emotion_columns_are_the_emotions_not_the_label_or_the_polarities():
    frame = pd.DataFrame(columns=["doc_id", "emotion_label", "emotion_anger", "emotion_joy", "emotion_positive",
                                  "emotion_negative", "text"])
    assert emotion.emotion_columns(frame) == {"anger": "emotion_anger", "joy": "emotion_joy"}
