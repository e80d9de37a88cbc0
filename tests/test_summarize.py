"""Extractive summaries: sentence spans, centroid + position prior + MMR, batching, pools."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from analysis.embeddings import Embedder
from analysis.errors import TextlabError
from analysis.tasks.summary.extractive import (Summary, extractive_summaries, extractive_summary, select_representative,
                                sentences)
from analysis.textutil import split_sentences

# --------------------------------------------------------------------------- sentences


def texts_of(text):
    return [text[a:b] for a, b in sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith met the U.S. envoy, e.g. at lunch. They talked.",
         ["Dr. Smith met the U.S. envoy, e.g. at lunch.", "They talked."]),
        ("Mr. and Mrs. Jones arrived at 5 p.m. on Tuesday. Prof. Lee did not.",
         ["Mr. and Mrs. Jones arrived at 5 p.m. on Tuesday.", "Prof. Lee did not."]),
        ("Profits jumped 76% to $1.13bn (£600m) from $639m. Sales rose 3.5% to 11.1bn.",
         ["Profits jumped 76% to $1.13bn (£600m) from $639m.", "Sales rose 3.5% to 11.1bn."]),
        # missing spaces after full stops
        ("Profits rose.The company said it was pleased.",
         ["Profits rose.", "The company said it was pleased."]),
        ("Sales rose 2% to $11.1bn from $10.9bn.For the full year, profit was up 27%.",
         ["Sales rose 2% to $11.1bn from $10.9bn.", "For the full year, profit was up 27%."]),
        ('The focus was "more for all".Given that, taxes rose.Is it fair?Nobody knows.',
         ['The focus was "more for all".', "Given that, taxes rose.", "Is it fair?", "Nobody knows."]),
        # ...but not inside abbreviations, initials, numbers or addresses
        ("The U.S.A and the U.K. agreed. It rose 3.5 points to 1.13bn.",
         ["The U.S.A and the U.K. agreed.", "It rose 3.5 points to 1.13bn."]),
        ("We use e.g.The tool and Mr.Smith's notes from www.bbc.Co today.",
         ["We use e.g.The tool and Mr.Smith's notes from www.bbc.Co today."]),
        ('"Why not?" he asked. She left.', ['"Why not?" he asked.', "She left."]),
        # line breaks: a heading, list items, a short answer per line; hard-wrapped prose stays whole
        ("Ad sales boost Time Warner profit\nQuarterly profits at US media giant TimeWarner jumped 76% to $1.13bn "
         "for the three months to December.",
         ["Ad sales boost Time Warner profit",
          "Quarterly profits at US media giant TimeWarner jumped 76% to $1.13bn for the three months to December."]),
        ("Title\n\nFirst paragraph here. Second sentence.\n\nSecond paragraph",
         ["Title", "First paragraph here.", "Second sentence.", "Second paragraph"]),
        ("Pros:\n- fast\n- cheap\nCons:\n1. slow service\n2. Rude staff",
         ["Pros:", "- fast", "- cheap", "Cons:", "1. slow service", "2. Rude staff"]),
        ("Great product\nWould buy again", ["Great product", "Would buy again"]),
        ("This is hard-wrapped prose that goes on and on across\nSeveral lines of text which are about equally "
         "long and\nshould not be split at every line break of course.",
         ["This is hard-wrapped prose that goes on and on across\nSeveral lines of text which are about equally "
          "long and\nshould not be split at every line break of course."]),
        ("", []),
        ("  \n ", []),
    ],
)
def test_sentences(text, expected):
    assert texts_of(text) == expected
    assert split_sentences(text) == expected  # one splitter for counting and for summaries


@pytest.mark.parametrize("text", [
    "  Lead. Next one!  Third?\n\nHeading\nBody text that follows it, at some length.  ",
    "profits rose.The company said.\r\nAnd more\t here.",
    "A ... B. C", "“Quoted.” Then this. ", "...", "你好。我很好！谢谢？",
])
def test_sentence_spans_cover_the_text_exactly(text):
    spans = sentences(text)
    last = 0
    covered = np.zeros(len(text), dtype=bool)
    for a, b in spans:
        assert last <= a < b <= len(text)
        piece = text[a:b]
        assert piece == piece.strip() and piece
        assert text[last:a].strip() == ""  # only whitespace between sentences
        covered[a:b] = True
        last = b
    assert text[last:].strip() == ""
    assert all(ch.isspace() for ch, c in zip(text, covered) if not c)


# --------------------------------------------------------------------------- extractive


@pytest.fixture(scope="module")
def embedder():
    emb = Embedder(device="cpu")
    yield emb
    emb.close()


class CountingEmbedder:
    """Wraps an embedder and records what it is asked to encode."""

    def __init__(self, inner=None):
        self.inner = inner
        self.calls: list[list[str]] = []

    def encode(self, texts, progress=None):
        self.calls.append(list(texts))
        if self.inner is None:
            raise AssertionError("this text should not have been embedded")
        return self.inner.encode(texts, progress)


ARTICLE = (
    "The city council approved a new budget for public transport on Monday. "
    "Bus fares will fall by ten percent from next spring under the plan. "
    "Councillors backed a budget increase for public transport at Monday's meeting. "
    "The mayor said cheaper buses would help families with low incomes. "
    "Critics argued that the plan does not say how the cuts will be paid for. "
    "Local football club Rovers won their third match in a row at the weekend. "
    "Tram services will also run more often in the evenings. "
    "The changes take effect in April, the council said."
)


def test_extractive_summary_picks_sentences_in_document_order(embedder):
    summary = extractive_summary(ARTICLE, embedder)
    assert isinstance(summary, Summary) and not summary.passthrough
    assert len(summary.spans) == len(summary.scores) == 3
    assert summary.spans == sorted(summary.spans)
    chosen = [ARTICLE[a:b] for a, b in summary.spans]
    assert all((a, b) in sentences(ARTICLE) for a, b in summary.spans)
    assert summary.text == " ".join(chosen)
    assert "Rovers" not in summary.text  # the off-topic sentence is not representative
    assert all(np.isfinite(summary.scores))


def test_extractive_summary_is_deterministic(embedder):
    first = extractive_summary(ARTICLE, embedder, max_sentences=4)
    again = extractive_summary(ARTICLE, embedder, max_sentences=4)
    assert first == again


def test_mmr_avoids_near_duplicates(embedder):
    spans = sentences(ARTICLE)
    vectors = embedder.encode([ARTICLE[a:b] for a, b in spans])
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    relevance = vectors @ centroid
    # Sentences 0 and 2 say the same thing in other words, and both are among the most central ones ...
    assert 0.75 < float(vectors[0] @ vectors[2]) < 0.95
    assert {0, 2} <= set(np.argsort(-relevance)[:3].tolist())
    # ... so pure relevance would take both; MMR takes one and adds something new instead.
    summary = extractive_summary(ARTICLE, embedder, max_sentences=3, position_weight=0.0)
    chosen = {spans.index(s) for s in summary.spans}
    assert len(chosen & {0, 2}) == 1
    greedy = extractive_summary(ARTICLE, embedder, max_sentences=3, position_weight=0.0, mmr_lambda=1.0)
    assert {0, 2} <= {spans.index(s) for s in greedy.spans}


def test_exact_duplicate_sentence_is_never_chosen_twice(embedder):
    text = ARTICLE + " The city council approved a new budget for public transport on Monday."
    summary = extractive_summary(text, embedder, max_sentences=4, mmr_lambda=1.0)
    chosen = [text[a:b] for a, b in summary.spans]
    assert len(set(chosen)) == len(chosen)
    assert chosen[0] == "The city council approved a new budget for public transport on Monday."


def test_position_prior_favours_earlier_sentences(embedder):
    spans = sentences(ARTICLE)
    plain = extractive_summary(ARTICLE, embedder, max_sentences=1, position_weight=0.0)
    strong = extractive_summary(ARTICLE, embedder, max_sentences=1, position_weight=5.0)
    assert strong.spans == [spans[0]]
    assert strong.scores[0] > plain.scores[0]


def test_short_texts_pass_through_unchanged():
    never = CountingEmbedder()  # raises if asked to embed
    short = "  The service was fine. Staff were friendly.\nWould come back!  "
    summary = extractive_summary(short, never)
    assert summary.passthrough and summary.text == short
    assert [short[a:b] for a, b in summary.spans] == ["The service was fine.", "Staff were friendly.",
                                                      "Would come back!"]
    assert len(summary.scores) == 3 and all(math.isnan(s) for s in summary.scores)
    # Many words but no more sentences than the summary would have: also unchanged.
    long_three = " ".join(["word"] * 30 + ["one."] + ["word"] * 30 + ["two."] + ["word"] * 30 + ["three."])
    assert extractive_summary(long_three, never).passthrough
    # Empty and missing texts give empty passthroughs.
    assert extractive_summaries(["", None], never) == [Summary("", [], [], True), Summary("", [], [], True)]
    assert never.calls == []
    # min_words=0 and one sentence to keep: a four-sentence text is summarised.
    assert not extractive_summary(short + " Yes.", CountingEmbedder(_FakeEmbedder()), max_sentences=1,
                                  min_words=0).passthrough


class _FakeEmbedder:
    """Deterministic hashed bag-of-words vectors: enough for the selection logic."""

    def encode(self, texts, progress=None):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, t in enumerate(texts):
            for word in t.lower().split():
                out[i, zlib.crc32(word.encode()) % 256] += 1
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        if progress is not None:
            progress(len(texts))
        return out


def numbered_text(n):
    return " ".join(f"Sentence number {i} talks about topic {'abcdefghijklmnopqrstuvwxyz'[i % 26]} here." for i in
                    range(n))


def test_ratio_sets_the_number_of_sentences():
    fake = _FakeEmbedder()
    text = numbered_text(10)
    assert len(sentences(text)) == 10
    assert len(extractive_summary(text, fake, ratio=0.4).spans) == 4
    assert len(extractive_summary(text, fake, ratio=0.25).spans) == 3  # ceil(2.5)
    assert len(extractive_summary(text, fake, ratio=0.01).spans) == 1  # at least one
    assert extractive_summary(text, fake, ratio=1.0).passthrough
    assert len(extractive_summary(text, fake, max_sentences=5).spans) == 5
    assert len(extractive_summary(text, fake).spans) == 3


@pytest.mark.parametrize("kwargs", [{"ratio": 0}, {"ratio": 1.5}, {"max_sentences": 0}, {"mmr_lambda": 2},
                                    {"position_weight": -1}, {"min_words": -1}])
def test_bad_settings_are_clear_errors(kwargs):
    with pytest.raises(TextlabError):
        extractive_summary(numbered_text(5), _FakeEmbedder(), **kwargs)


def test_batch_embeds_all_sentences_in_one_call(embedder):
    texts = [ARTICLE, "Too short to summarise.", numbered_text(6)]
    counting = CountingEmbedder(embedder)
    done = []
    batch = extractive_summaries(texts, counting, progress=done.append)
    assert len(counting.calls) == 1
    assert counting.calls[0] == [t[a:b] for t in (texts[0], texts[2]) for a, b in sentences(t)]
    assert [s.passthrough for s in batch] == [False, True, False]
    single = [extractive_summary(t, embedder) for t in texts]
    assert [(s.text, s.spans, s.passthrough) for s in batch] == [(s.text, s.spans, s.passthrough) for s in single]
    assert np.allclose(batch[0].scores, single[0].scores) and np.allclose(batch[2].scores, single[2].scores)
    assert done[0] == 1 and done[-1] == 3 and done == sorted(done)


# --------------------------------------------------------------------------- pools


def _pool():
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    vectors, owners = [], []
    # Document "a" has five sentences close to the common theme, "b", "c", "d" one or two each.
    for owner, count, spread in (("a", 5, 0.35), ("b", 2, 0.7), ("c", 1, 0.7), ("d", 1, 0.9)):
        for _ in range(count):
            vectors.append(base + spread * rng.normal(size=16))
            owners.append(owner)
    vectors = np.array(vectors, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [f"s{i}" for i in range(len(owners))], vectors, owners


def test_select_representative_respects_k_and_max_per_owner():
    texts, vectors, owners = _pool()
    free = select_representative(texts, vectors, 3, owners=owners, max_per_owner=None)
    assert len(free) == 3 and sum(owners[i] == "a" for i in free) >= 2  # the long document dominates
    one_each = select_representative(texts, vectors, 3, owners=owners)
    assert len(one_each) == 3 and len({owners[i] for i in one_each}) == 3
    two_each = select_representative(texts, vectors, 6, owners=owners, max_per_owner=2)
    assert len(two_each) == 6 and max(sum(owners[i] == o for i in two_each) for o in "abcd") <= 2
    # Four documents, one sentence each: the pool runs out after four.
    assert sorted(owners[i] for i in select_representative(texts, vectors, 10, owners=owners)) == list("abcd")
    assert select_representative(texts, vectors, 0) == []
    assert len(select_representative(texts, vectors, 4)) == 4  # no owners: no limit
    # Most representative first, deterministic.
    assert select_representative(texts, vectors, 3, owners=owners) == one_each
    relevance = vectors @ (vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0)))
    assert one_each[0] == int(np.argmax(relevance))


def test_select_representative_skips_duplicates_and_empty_sentences():
    texts = ["Good service.", "Good service.", "Good service.", "Slow delivery.", ""]
    vectors = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0.6, 0.8, 0], [0, 0, 0]], dtype=np.float32)
    chosen = select_representative(texts, vectors, 5, owners=[1, 2, 3, 4, 5])
    assert chosen == [0, 3]
    with pytest.raises(TextlabError):
        select_representative(texts, vectors[:3], 2)
    with pytest.raises(TextlabError):
        select_representative(texts, vectors, 2, owners=[1, 2])


def test_a_chosen_heading_is_followed_by_a_line_break():
    text = "Budget approved\nThe council approved the budget on Monday. Fares will fall. Trams run later."
    summary = extractive_summary(text, _FakeEmbedder(), max_sentences=2, position_weight=5.0, min_words=0)
    assert summary.text == "Budget approved\nThe council approved the budget on Monday."
    assert summary.spans == [(0, 15), (16, 58)]
