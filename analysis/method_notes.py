"""What each offline method is good and bad at, with its validity figures, and which texts it cannot read.

The offline defaults are real methods with known blind spots (VADER calls a politely worded
complaint positive; NRC's ties make anticipation a frequent top emotion). The result pages
show these notes next to the results, so the one place to change them is here. Every
figure is copied from ``docs/validity.md`` (written by ``benchmarks/validity.py`` and
``benchmarks/coding_validity.py``) with its dataset; ``tests/test_method_notes.py`` checks
that each still appears there, so a re-run benchmark that changes a number fails the test
until the note follows.

The three offline methods are English-only (an English lexicon, an English embedding model):
``non_english`` flags the texts they scored that are confidently in another language.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .textutil import words

VALIDITY_DOC = "docs/validity.md"


@dataclass(frozen=True)
class Figure:
    what: str     # the measure, e.g. "r =" (with the mean human rating) or "macro-F1"
    value: str    # as printed in docs/validity.md
    data: str     # the dataset, in words
    source: str   # the dataset's name as docs/validity.md gives it (file or benchmark name)

    def __str__(self) -> str:
        return f"{self.what} {self.value} on {self.data}"


@dataclass(frozen=True)
class MethodNote:
    method: str                  # short name used in messages
    good_at: str
    bad_at: str
    figures: tuple[Figure, ...]
    english_only: bool = True

    def markdown(self) -> str:
        """The note as Markdown (no user text in it, so nothing to escape)."""
        figures = "; ".join(str(f) for f in self.figures)
        return (f"**{self.method}.** **Good at:** {self.good_at}  \n**Bad at:** {self.bad_at}  \n"
                f"**Validity** (human-labelled data, {VALIDITY_DOC}): {figures}.")


METHOD_NOTES: dict[str, MethodNote] = {
    "sentiment/offline": MethodNote(
        method="VADER",
        good_at=("short social-media posts and one- or two-sentence answers, and averages over many texts "
                 "(group means, trends) rather than the score of one text."),
        bad_at=("irony, sarcasm and complaints worded politely or hopefully (\"thanks, I'd love some help\" "
                "scores positive), edited or comparative prose, and the neutral class (one valenced word makes "
                "a text positive or negative). English only."),
        figures=(
            Figure("r =", "0.87", "tweets (correlation with the mean human rating; n = 4,200)", "sentiment_vader_tweets.csv"),
            Figure("r =", "0.43", "movie-review snippets (n = 10,605)",
                   "sentiment_vader_movieReviewSnippets.csv"),
            Figure("three-class macro-recall", "59.8", "TweetEval tweets (neutral recall 38.8)",
                   "sentiment_tweeteval_val.csv"),
        ),
    ),
    "emotion/offline": MethodNote(
        method="NRC Emotion Lexicon",
        good_at=("comparing emotion shares (the `emotion_<name>` scores) between large groups of texts or "
                 "over time."),
        bad_at=("the label of a single text: it counts words, with no negation (\"not happy\" counts as joy), "
                "intensity or context; many positive words also carry anticipation and trust, and ties go "
                "to anger or anticipation, so these labels come up often. English only."),
        figures=(
            Figure("macro-F1", "24.4", "GoEmotions Reddit comments, Ekman classes (n = 5,426; a fine-tuned "
                   "model: 62.4)", "GoEmotions"),
            Figure("accuracy", "39.9", "the same comments (always answering \"joy\": 40.9)",
                   "emotion_goemotions_ekman_dev.csv"),
        ),
    ),
    "coding/zero-shot offline": MethodNote(
        method="Embedding similarity (all-MiniLM-L6-v2)",
        good_at=("codes that differ in topic (what a text is about), given a written codebook: definitions, "
                 "include notes and a few examples per code."),
        bad_at=("codes that differ in stance, tone or nuance on the same topic, and bare labels without "
                "definitions. The embedding model is English only. Unvalidated on your texts until compared "
                "with human codes."),
        figures=(
            Figure("macro-F1", "0.761", "AG News headlines, 4 topics, with a written codebook (n = 3,800)",
                   "coding_agnews_dev.csv"),
            Figure("macro-F1", "0.634", "the same headlines with bare labels", "bare labels"),
        ),
    ),
}


def note_for(manifest: dict) -> MethodNote | None:
    """The note for the method a run used (from its manifest), or None where there is none."""
    if manifest.get("backend") != "offline":
        return None
    task = manifest.get("task")
    if task == "coding":
        # Few-shot learns from the corpus's own coded rows and reports its own cross-validation.
        return METHOD_NOTES["coding/zero-shot offline"] if str(manifest.get("method", "")).startswith("zero-shot") else None
    return METHOD_NOTES.get(f"{task}/offline")


# A text is flagged when py3langid is at least this sure of a language other than English and
# the text has at least this many words. On the English files of ../shared/eval (15,426
# tweets, Reddit comments and headlines) these settings flag 2 texts, both really Dutch and
# Spanish; below 5 words ("ok thanks", "Merci beaucoup") the detector guesses.
MIN_CONFIDENCE = 0.9
MIN_WORDS = 5
# The opening of a long text tells its language; the rest only costs time.
_MAX_CHARS = 500


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid import langid

    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def non_english(texts: list[str]) -> np.ndarray:
    """Per text: whether it is confidently in a language other than English (bool array)."""
    identifier = _identifier()
    flags = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        head = text[:_MAX_CHARS]
        if len(words(head)) < MIN_WORDS:
            continue
        language, confidence = identifier.classify(head)
        flags[i] = language != "en" and confidence >= MIN_CONFIDENCE
    return flags


@dataclass(frozen=True)
class NonEnglishNotice:
    message: str
    examples: pd.DataFrame   # doc_id and text of the first flagged rows


def non_english_notice(manifest: dict, frame: pd.DataFrame, text_column: str) -> NonEnglishNotice | None:
    """What a result page shows when an English-only method scored texts in another language.

    ``frame``: the run's results with ``doc_id`` and the text column. The count and example
    ids come from the run manifest (``rows.non_english``, ``row_examples.non_english``).
    """
    note = note_for(manifest)
    n = int((manifest.get("rows") or {}).get("non_english") or 0)
    if note is None or not note.english_only or not n:
        return None
    ids = (manifest.get("row_examples") or {}).get("non_english") or []
    examples = frame.loc[frame["doc_id"].isin(ids), ["doc_id", text_column]].reset_index(drop=True)
    message = non_english_message(n, note)
    if len(examples):
        message += f" {'The first ones are' if len(examples) < n else 'They are'} listed below."
    return NonEnglishNotice(message, examples)


def non_english_message(n: int, note: MethodNote) -> str:
    """What the page says when an English-only method scored ``n`` texts in another language."""
    texts = "1 text looks" if n == 1 else f"{n:,} texts look"
    return (f"{texts} like a language other than English (detected by py3langid). {note.method} is English-only, "
            "so their results say little: read them, leave them out, or use a multilingual model.")
