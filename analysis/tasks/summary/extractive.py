"""Summaries of texts.

Extractive (offline default)
----------------------------
Picks whole sentences of a text, so a summary never says anything the text does not, and
every sentence of it points back to where it stands in the source (``Summary.spans``).

1. **Sentences**: :func:`sentences` gives their character spans (rule-based splitter of
   :mod:`analysis.textutil`: abbreviations, decimals and amounts, missing spaces after full
   stops, headings and list items on their own lines).
2. **Vectors**: each sentence is embedded with the shared :class:`~analysis.embeddings.Embedder`
   (all-MiniLM-L6-v2 by default; unit vectors, cached). The document vector is the mean of
   its sentence vectors, normalised again (the *centroid*).
3. **Relevance**: ``score_i = cos(sentence_i, centroid) + position_weight * (1 - i / n)``.
   The centroid term favours sentences about what most of the text is about; the small
   position prior favours earlier ones, because news and open answers front-load their
   point (Lead-3 is a strong baseline on news for that reason).
4. **Selection (MMR)**: the first sentence is the most relevant one; each next one maximises
   ``mmr_lambda * score_i - (1 - mmr_lambda) * max_j cos(sentence_i, chosen_j)``, so a
   sentence that repeats one already chosen loses to one that adds something. A sentence
   nearly identical to a chosen one (cosine >= 0.95) is never taken.
5. **Output**: the chosen sentences in document order, joined by a space (by a line break
   after a sentence without final punctuation, such as a heading).

Length: ``max_sentences`` sentences (default 3), or ``ceil(ratio * n_sentences)`` when
``ratio`` is given. **Short texts pass through unchanged** (``Summary.passthrough``): a text
of fewer than ``min_words`` words (default 40), or with no more sentences than the summary
would have, is its own summary; it is not embedded. Everything is deterministic: ties go to
the earlier sentence.

:func:`extractive_summaries` does a whole corpus with one ``Embedder.encode`` call over all
sentences (one batching pass, one cache lookup). :func:`select_representative` applies the
same centroid + MMR selection to a pool of sentences from many documents (summaries of a
group or a topic), with at most ``max_per_owner`` sentences from any one document.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import models
from ...errors import TextlabError
from ...textutil import sentence_spans, words
from ..base import Predictor, RunContext

if TYPE_CHECKING:
    from . import SummaryConfig

__all__ = ["Summary", "sentences", "extractive_summary", "extractive_summaries", "select_representative"]

# Cosine similarity above which a sentence counts as a near-duplicate of a chosen one and is
# skipped whatever its score: MMR alone only penalises redundancy by (1 - lambda) * cosine,
# which a very central sentence can outweigh (the same sentence quoted twice in a text, the
# same short answer from many respondents in a group).
NEAR_DUPLICATE = 0.95
_FINAL_PUNCTUATION = tuple(".!?…。！？؟।\"'”’»)]")


@dataclass
class Summary:
    """An extractive summary and its evidence.

    ``text``: the chosen sentences in document order (the text itself when ``passthrough``).
    ``spans``: their ``(start, end)`` character offsets in the source text.
    ``scores``: relevance of each (cosine to the document centroid plus the position prior);
    NaN for a passed-through text, which is not scored.
    ``passthrough``: True when the text was short and returned unchanged.
    """

    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    passthrough: bool = False


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text``, in order.

    ``text[start:end]`` is the sentence, without surrounding whitespace; see
    :func:`analysis.textutil.sentence_spans` for the rules.
    """
    if text is None:
        return []
    if not isinstance(text, str):
        raise TextlabError(f"Expected a text (str), not {type(text).__name__}.")
    return sentence_spans(text)


def _check(max_sentences, ratio, mmr_lambda, position_weight, min_words) -> None:
    # Early, clear errors (these come from the UI and the CLI).
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, (int, np.integer)) or max_sentences < 1:
        raise TextlabError(f"max_sentences must be a whole number of at least 1, not {max_sentences!r}.")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))
                              or not 0 < ratio <= 1):
        raise TextlabError(f"ratio must be a share of the sentences between 0 (excluded) and 1, not {ratio!r}.")
    if isinstance(mmr_lambda, bool) or not isinstance(mmr_lambda, (int, float)) or not 0 <= mmr_lambda <= 1:
        raise TextlabError(f"mmr_lambda must be between 0 and 1, not {mmr_lambda!r}.")
    if (isinstance(position_weight, bool) or not isinstance(position_weight, (int, float))
            or not math.isfinite(position_weight) or position_weight < 0):
        raise TextlabError(f"position_weight must be 0 or more, not {position_weight!r}.")
    if isinstance(min_words, bool) or not isinstance(min_words, (int, np.integer)) or min_words < 0:
        raise TextlabError(f"min_words must be a whole number of 0 or more, not {min_words!r}.")


def _n_chosen(n: int, max_sentences: int, ratio: float | None) -> int:
    if ratio is None:
        return max_sentences
    return max(1, math.ceil(ratio * n - 1e-9))  # 0.4 * 10 is 4, not 5, despite rounding


def _mmr(vectors: np.ndarray, relevance: np.ndarray, k: int, mmr_lambda: float,
         allowed: Callable[[int, list[int]], bool] | None = None,
         available: np.ndarray | None = None) -> list[int]:
    """Indices chosen by maximal marginal relevance, in the order they were chosen.

    Ties go to the lower index (``argmax`` takes the first maximum), so the result is
    deterministic for given vectors.
    """
    n = len(relevance)
    chosen: list[int] = []
    available = np.ones(n, dtype=bool) if available is None else available.copy()
    redundancy = np.full(n, -np.inf)  # max cosine to a chosen sentence (none chosen yet)
    while len(chosen) < k and available.any():
        if chosen:
            gain = mmr_lambda * relevance - (1 - mmr_lambda) * redundancy
        else:
            gain = relevance.astype(np.float64)
        gain = np.where(available, gain, -np.inf)
        best = int(np.argmax(gain))
        available[best] = False
        if allowed is not None and not allowed(best, chosen):
            continue
        chosen.append(best)
        sims = vectors @ vectors[best]
        redundancy = np.maximum(redundancy, sims)
        available &= sims < NEAR_DUPLICATE
    return chosen


def _centroid(vectors: np.ndarray) -> np.ndarray:
    centroid = vectors.mean(axis=0, dtype=np.float64)
    norm = np.linalg.norm(centroid)
    return centroid / norm if norm > 0 else centroid


def _join(text: str, spans: Sequence[tuple[int, int]]) -> str:
    parts = []
    for i, (a, b) in enumerate(spans):
        piece = text[a:b]
        if i:
            parts.append(" " if parts[-1].endswith(_FINAL_PUNCTUATION) else "\n")
        parts.append(piece)
    return "".join(parts)


def _passthrough(text: str, spans: list[tuple[int, int]]) -> Summary:
    return Summary(text=text, spans=list(spans), scores=[float("nan")] * len(spans), passthrough=True)


def _is_short(text: str, spans, k: int, min_words: int) -> bool:
    return len(spans) <= k or len(words(text)) < min_words


def _summarize(text: str, spans: list[tuple[int, int]], vectors: np.ndarray, k: int,
               mmr_lambda: float, position_weight: float) -> Summary:
    n = len(spans)
    vectors = np.asarray(vectors, dtype=np.float32)
    # Centroid: what the text as a whole is about. Position prior: earlier is slightly better.
    relevance = vectors @ _centroid(vectors).astype(np.float32)
    relevance = relevance.astype(np.float64) + position_weight * (1 - np.arange(n) / n)
    chosen = sorted(_mmr(vectors, relevance, k, mmr_lambda))  # document order
    chosen_spans = [spans[i] for i in chosen]
    return Summary(text=_join(text, chosen_spans), spans=chosen_spans,
                   scores=[float(relevance[i]) for i in chosen], passthrough=False)


def extractive_summary(text: str, embedder, *, max_sentences: int = 3, ratio: float | None = None,
                       mmr_lambda: float = 0.7, position_weight: float = 0.1, min_words: int = 40) -> Summary:
    """Extractive summary of one text (centroid + position prior + MMR; see the module doc).

    ``embedder``: anything with ``encode(list_of_texts) -> unit vectors``, normally an
    :class:`~analysis.embeddings.Embedder`.
    """
    return extractive_summaries([text], embedder, max_sentences=max_sentences, ratio=ratio,
                                mmr_lambda=mmr_lambda, position_weight=position_weight, min_words=min_words)[0]


def extractive_summaries(texts: list[str], embedder, *, max_sentences: int = 3, ratio: float | None = None,
                         mmr_lambda: float = 0.7, position_weight: float = 0.1, min_words: int = 40,
                         progress: Callable[[int], None] | None = None) -> list[Summary]:
    """:func:`extractive_summary` of each text, with one ``embedder.encode`` call for all.

    All sentences of all texts that need a summary go to the embedder at once, so its
    batching and its cache work across the corpus; each text's centroid is computed from
    its own sentence vectors. ``progress(k)``: how many texts are done so far. Empty or
    missing texts give an empty passthrough summary.
    """
    if isinstance(texts, str):
        raise TextlabError("extractive_summaries expects a list of texts, not a single string.")
    _check(max_sentences, ratio, mmr_lambda, position_weight, min_words)
    texts = ["" if t is None or (isinstance(t, float) and math.isnan(t)) else t for t in texts]
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TextlabError(f"Texts must be strings; item {bad} is {type(texts[bad]).__name__}.")

    results: list[Summary | None] = [None] * len(texts)
    all_spans = [sentences(t) for t in texts]
    todo = []
    for i, (text, spans) in enumerate(zip(texts, all_spans)):
        if _is_short(text, spans, _n_chosen(len(spans), max_sentences, ratio), min_words):
            results[i] = _passthrough(text, spans)
        else:
            todo.append(i)
    n_done = len(texts) - len(todo)
    if progress is not None:
        progress(n_done)

    if todo:
        pool = [texts[i][a:b] for i in todo for a, b in all_spans[i]]
        ends = np.cumsum([len(all_spans[i]) for i in todo])  # sentences up to each text
        if progress is not None:
            def report(k_sentences: int) -> None:
                progress(n_done + int(np.searchsorted(ends, k_sentences, side="right")))
            vectors = embedder.encode(pool, progress=report)
        else:
            vectors = embedder.encode(pool)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape[0] != len(pool):
            raise TextlabError(f"The embedder returned {vectors.shape[0]} vectors for {len(pool)} sentences.")
        start = 0
        for i, end in zip(todo, ends):
            spans = all_spans[i]
            k = _n_chosen(len(spans), max_sentences, ratio)
            results[i] = _summarize(texts[i], spans, vectors[start:end], k, mmr_lambda, position_weight)
            start = end
        if progress is not None:
            progress(len(texts))
    return results  # type: ignore[return-value]


def select_representative(sentences: list[str], vectors: np.ndarray, k: int, *, mmr_lambda: float = 0.7,
                          owners: list | None = None, max_per_owner: int | None = 1) -> list[int]:
    """Indices of ``k`` sentences that represent a pool of sentences, most representative first.

    Centroid + MMR over the pool (no position prior: the pool has no order). ``owners``:
    the document each sentence comes from; with ``max_per_owner`` (default 1) no document
    gives more than that many sentences, so one long text cannot dominate a group's or a
    topic's summary (None: no limit). Near-duplicates of a chosen sentence (cosine >= 0.95,
    e.g. the same short answer from several people) are skipped. Fewer than ``k`` indices
    come back when the pool runs out.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(sentences):
        raise TextlabError(f"Expected one vector per sentence ({len(sentences)}), got shape {vectors.shape}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise TextlabError(f"k must be a whole number of 0 or more, not {k!r}.")
    if isinstance(mmr_lambda, bool) or not isinstance(mmr_lambda, (int, float)) or not 0 <= mmr_lambda <= 1:
        raise TextlabError(f"mmr_lambda must be between 0 and 1, not {mmr_lambda!r}.")
    if owners is not None and len(owners) != len(sentences):
        raise TextlabError(f"owners has {len(owners)} entries for {len(sentences)} sentences.")
    if max_per_owner is not None and (isinstance(max_per_owner, bool) or not isinstance(max_per_owner, (int, np.integer))
                                      or max_per_owner < 1):
        raise TextlabError(f"max_per_owner must be a whole number of at least 1 or None, not {max_per_owner!r}.")
    # Empty sentences (zero vectors) are never representative.
    usable = np.array([bool(str(s).strip()) for s in sentences], dtype=bool) & (np.abs(vectors).sum(axis=1) > 0)
    if k == 0 or not usable.any():
        return []
    relevance = (vectors @ _centroid(vectors[usable]).astype(np.float32)).astype(np.float64)

    allowed = None
    if owners is not None and max_per_owner is not None:
        counts: dict = {}

        def allowed(i: int, chosen: list[int]) -> bool:
            if counts.get(owners[i], 0) >= max_per_owner:
                return False
            counts[owners[i]] = counts.get(owners[i], 0) + 1
            return True

    return _mmr(vectors, relevance, k, mmr_lambda, allowed, available=usable)


# ---------------------------------------------------------------------- the predictor


class ExtractivePredictor(Predictor):
    def __init__(self, config: SummaryConfig, reason: str, context: RunContext | None):
        from ...embeddings import Embedder

        self.config, self.reason = config, reason
        from ...embeddings import task_embedding_model

        model = task_embedding_model({"fast": config.fast}, models.DEFAULTS["summary"]["offline"],
                                     context.stage if context else None)
        self.embedder = Embedder(model, device=config.device,
                                 batch_size=config.batch_size, cache_dir=context.cache_dir if context else None)

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        found = extractive_summaries(texts, self.embedder, max_sentences=self.config.max_sentences,
                                     ratio=self.config.ratio, min_words=self.config.min_words, progress=progress)
        return pd.DataFrame({"summary": [s.text for s in found], "passthrough": [s.passthrough for s in found]})

    def describe(self) -> dict[str, Any]:
        return {**self.embedder.describe(), "backend": "offline", "backend_choice": self.reason,
                "method": "extractive: centroid + MMR over sentence embeddings, position prior"}

    def close(self) -> None:
        self.embedder.close()
