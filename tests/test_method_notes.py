"""Method notes: figures that match docs/validity.md, the note each run gets, the non-English check."""

import pytest

from analysis import method_notes
from tests.paths import ROOT

GERMAN = "Die Busse kommen jeden Morgen zu spät und niemand kümmert sich darum."
FRENCH = "Les loyers ont encore augmenté, nous ne pouvons plus rester dans cette ville."
SPANISH = "El transporte público es muy malo en mi barrio y nadie hace nada."
ENGLISH = ["The buses are late every single morning and nobody seems to care.",
           "Fix the roads please they are awful", "Great to see the new clinic open! Waiting times are shorter.",
           "ok thanks", "Merci beaucoup", "Danke", "", "12345 67 89 0 11"]


@pytest.mark.parametrize("key", sorted(method_notes.METHOD_NOTES))
def test_every_figure_is_the_one_in_docs_validity(key):
    validity = (ROOT / "docs" / "validity.md").read_text(encoding="utf-8")
    note = method_notes.METHOD_NOTES[key]
    assert note.figures and note.good_at and note.bad_at
    for figure in note.figures:
        assert figure.value in validity, f"{key}: {figure} is not in docs/validity.md"
        assert figure.source in validity, f"{key}: {figure.source} is not in docs/validity.md"


def test_every_note_says_good_bad_figures_and_where_they_come_from():
    text = method_notes.METHOD_NOTES["sentiment/offline"].markdown()
    assert "Good at" in text and "Bad at" in text
    assert "r = 0.43" in text and "movie-review" in text and "r = 0.87" in text and "tweets" in text
    assert "docs/validity.md" in text
    emotion = method_notes.METHOD_NOTES["emotion/offline"].markdown()
    assert "GoEmotions" in emotion and "24.4" in emotion
    coding = method_notes.METHOD_NOTES["coding/zero-shot offline"].markdown()
    assert "AG News" in coding and "0.761" in coding


@pytest.mark.parametrize("manifest, key", [
    ({"task": "sentiment", "backend": "offline"}, "sentiment/offline"),
    ({"task": "emotion", "backend": "offline"}, "emotion/offline"),
    ({"task": "coding", "backend": "offline", "method": "zero-shot (embedding similarity)"}, "coding/zero-shot offline"),
    ({"task": "sentiment", "backend": "transformers"}, None),
    ({"task": "coding", "backend": "offline", "method": "few-shot (logistic regression)"}, None),
    ({"task": "coding", "backend": "transformers", "method": "zero-shot (NLI)"}, None),
    ({}, None),
])
def test_the_note_follows_the_run_manifest(manifest, key):
    note = method_notes.note_for(manifest)
    assert (note is None) if key is None else (note is method_notes.METHOD_NOTES[key])


def test_non_english_texts_are_flagged_and_short_or_english_ones_are_not():
    flags = method_notes.non_english([GERMAN, FRENCH, SPANISH] + ENGLISH)
    assert flags.tolist() == [True, True, True] + [False] * len(ENGLISH)
    assert method_notes.non_english([]).tolist() == []


def test_the_non_english_message_names_the_count_and_the_method():
    message = method_notes.non_english_message(3, method_notes.METHOD_NOTES["sentiment/offline"])
    assert "3 texts" in message and "VADER" in message and "English" in message
    assert "1 text " in method_notes.non_english_message(1, method_notes.METHOD_NOTES["emotion/offline"])
