"""Tests for analysis.abstractive: batched seq2seq summaries, map-reduce for long texts.

The models are tiny random-weight BARTs (tests/tiny_models.py), so the summaries are word
salad: the tests check shapes, order, determinism, agreement with plain per-text
``model.generate`` calls and the long-text handling, never content.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.tasks.summary.abstractive import Seq2SeqSummarizer
from analysis.errors import ModelNotAvailable, TextlabError
from analysis.textutil import split_sentences
from tests.tiny_models import make_tiny_seq2seq

_ENV = ("TEXTLAB_MODELS", "TEXTLAB_HOME", "TEXTLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
        "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")

FAST = dict(device="cpu", max_new_tokens=8, min_new_tokens=2)


def _make_model(path, max_positions=512):
    """The tiny BART of tiny_models with wider random weights, so summaries differ between texts.

    With BART's default init (std 0.02) a 2-layer random model writes the same tokens for
    every input, which would make "batched == per-text" hold trivially.
    """
    from transformers import BartForConditionalGeneration, GenerationConfig

    make_tiny_seq2seq(path, max_positions=max_positions)
    generation = GenerationConfig.from_pretrained(path)
    model = BartForConditionalGeneration.from_pretrained(path)
    config = model.config
    config.init_std = 0.5
    torch.manual_seed(1)
    wide = BartForConditionalGeneration(config)
    wide.generation_config = generation
    wide.eval()
    wide.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine two threads fighting
    for two cores make each generate step 10x slower; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _make_model(tmp_path_factory.mktemp("seq2seq") / "tiny")


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory):
    """A tiny BART whose window is 64 tokens: long texts are cheap."""
    return _make_model(tmp_path_factory.mktemp("seq2seq64") / "tiny64", max_positions=64)


_WORDS = ("budget housing rents transport buses clinic waiting doctors school teachers energy bills winter "
          "council parking streets safety police parks library jobs wages prices market farmers water").split()


def _text(n_sentences: int, seed: int, words_per_sentence: int = 9) -> str:
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n_sentences):
        words = rng.choice(_WORDS, size=words_per_sentence)
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def _per_text(summarizer: Seq2SeqSummarizer, text: str) -> str:
    """The reference: one plain model.generate call on one unpadded text."""
    enc = summarizer.tokenizer(text, return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.inference_mode():
        out = summarizer.model.generate(**enc, **summarizer.generation_kwargs())
    return summarizer.tokenizer.decode(out[0], skip_special_tokens=True, clean_up_tokenization_spaces=True).strip()


# --------------------------------------------------------------------------- batched == per text


def test_summaries_in_order_deterministic_and_equal_to_per_text_generate(tiny):
    texts = [_text(k, seed=k) for k in (4, 12, 5, 25, 8, 4)]
    summarizer = Seq2SeqSummarizer(str(tiny), batch_size=3, **FAST)
    seen = []
    first = summarizer.summarize(texts, progress=seen.append)
    second = summarizer.summarize(texts)
    assert len(first) == len(texts) and all(isinstance(s, str) and s for s in first)
    assert first == second
    reference = [_per_text(summarizer, t) for t in texts]
    assert first == reference
    # Random weights still give different summaries for different texts, so order matters.
    assert len(set(first)) >= 3
    assert summarizer.n_chunked == 0 and not summarizer.chunked.any()
    assert seen == sorted(seen) and seen[-1] == len(texts)
    # Batches of several rows (padding on the right), cut by length.
    assert max(summarizer.batch_rows) > 1 and sum(summarizer.batch_rows) == len(texts)


def test_beam_search_batched_equals_per_text(tiny):
    texts = [_text(k, seed=10 + k) for k in (4, 9, 15)]
    summarizer = Seq2SeqSummarizer(str(tiny), num_beams=2, length_penalty=1.5, **FAST)
    assert summarizer.generation_kwargs()["num_beams"] == 2
    assert summarizer.summarize(texts) == [_per_text(summarizer, t) for t in texts]


def test_padding_side_of_the_tokenizer_does_not_change_results(tiny):
    texts = [_text(k, seed=20 + k) for k in (4, 11, 6)]
    summarizer = Seq2SeqSummarizer(str(tiny), **FAST)
    right = summarizer.summarize(texts)
    summarizer.tokenizer.padding_side = "left"  # encoder inputs are padded on the right regardless
    assert summarizer.summarize(texts) == right


def test_model_length_settings_do_not_override_ours(tmp_path):
    """distilbart-cnn ships max_length 142 / min_length 56; max/min_new_tokens decide."""
    from transformers import GenerationConfig

    path = _make_model(tmp_path / "m")
    generation = GenerationConfig.from_pretrained(path)
    generation.max_length, generation.min_length = 142, 56
    generation.save_pretrained(path)
    summarizer = Seq2SeqSummarizer(str(path), device="cpu", max_new_tokens=6, min_new_tokens=6,
                                   no_repeat_ngram_size=0)
    (summary,) = summarizer.summarize([_text(5, seed=3)])
    enc = summarizer.tokenizer(summary, add_special_tokens=False)
    assert 1 <= len(enc["input_ids"]) <= 6


# --------------------------------------------------------------------------- long texts


def test_text_longer_than_the_window_is_chunked_and_summarised(tiny64):
    long_text = _text(30, seed=1)  # ~300 tokens, the window is 64
    short_text = _text(4, seed=2)  # ~40 tokens: fits
    summarizer = Seq2SeqSummarizer(str(tiny64), **FAST)
    assert summarizer.window == 64 and summarizer.chunk_tokens == 62
    content = summarizer.tokenizer(long_text, add_special_tokens=False)["input_ids"]
    assert len(content) > 4 * summarizer.window
    chunks = summarizer._chunks(long_text)
    # Every token once, in order; no chunk over the limit; balanced, no stub at the end.
    assert [t for c in chunks for t in c] == list(content)
    assert all(len(c) <= summarizer.chunk_tokens for c in chunks)
    assert min(len(c) for c in chunks) >= summarizer.chunk_tokens // 2
    # Cuts fall at sentence ends: every chunk decodes to whole sentences.
    sentences = {s.lower() for s in split_sentences(long_text)}
    for chunk in chunks:
        decoded = summarizer.tokenizer.decode(chunk)
        assert all(s in sentences for s in split_sentences(decoded))

    seen = []
    out = summarizer.summarize([short_text, long_text], progress=seen.append)
    assert len(out) == 2 and all(out)
    assert summarizer.n_chunked == 1
    assert summarizer.chunked.tolist() == [False, True]
    assert summarizer.rounds[0] == 1 and summarizer.rounds[1] >= 2
    assert summarizer.n_unreduced == 0  # 8-token chunk summaries fit the window after one round
    assert out[0] == _per_text(summarizer, short_text)
    assert seen == sorted(seen) and seen[-1] == 2
    assert summarizer.describe()["n_chunked"] == 1


def test_sentence_longer_than_a_chunk_is_cut_into_token_windows(tiny64):
    summarizer = Seq2SeqSummarizer(str(tiny64), **FAST)
    run_on = " ".join(_text(20, seed=4).replace(".", "").split())  # one 180-word sentence
    content = summarizer.tokenizer(run_on, add_special_tokens=False)["input_ids"]
    chunks = summarizer._chunks(run_on)
    assert len(chunks) > 1 and [t for c in chunks for t in c] == list(content)
    assert all(len(c) <= summarizer.chunk_tokens for c in chunks)
    assert len(summarizer.summarize([run_on])) == 1 and summarizer.n_chunked == 1


def test_no_position_beyond_the_window_even_with_long_outputs(tiny64):
    """max_new_tokens over the window is capped; rounds stay bounded; nothing is cut off."""
    # min = max: every summary is as long as the window allows, so chunk summaries never
    # shrink the text and map-reduce has to stop after max_rounds.
    summarizer = Seq2SeqSummarizer(str(tiny64), device="cpu", max_new_tokens=80, min_new_tokens=80)
    assert summarizer.max_new_tokens == 62 and summarizer.min_new_tokens == 62
    assert any("max_new_tokens lowered" in note for note in summarizer.describe()["notes"])
    texts = [_text(15, seed=5), _text(4, seed=6)]
    out = summarizer.summarize(texts)
    assert len(out) == 2 and all(out)
    assert summarizer.chunked.tolist() == [True, False]
    assert summarizer.rounds.tolist() == [3, 1]
    # The last round's chunk summaries are joined: the text is covered, not truncated.
    assert summarizer.n_unreduced == 1
    assert len(summarizer.tokenizer(out[0])["input_ids"]) > summarizer.window


# --------------------------------------------------------------------------- short and empty texts


def test_short_texts_pass_through_unchanged(tiny):
    summarizer = Seq2SeqSummarizer(str(tiny), **FAST)
    short = "The buses are late every single morning and nobody seems to care."  # 12 words
    exactly = " ".join(["word"] * 29) + " end"  # 30 words: summarised
    long = _text(5, seed=7)
    out = summarizer.summarize([short, exactly, long])
    assert out[0] == short
    assert out[1] != exactly and out[2] != long
    assert summarizer.n_passthrough == 1
    everything = Seq2SeqSummarizer(str(tiny), passthrough_words=0, **FAST).summarize([short])
    assert everything[0] != short and everything[0] == _per_text(summarizer, short)


def test_empty_strings(tiny):
    summarizer = Seq2SeqSummarizer(str(tiny), **FAST)
    seen = []
    out = summarizer.summarize(["", "   \n", _text(4, seed=8), ""], progress=seen.append)
    assert out[0] == "" and out[1] == "" and out[3] == "" and out[2]
    assert seen[-1] == 4
    assert summarizer.summarize([]) == [] and summarizer.n_chunked == 0
    with pytest.raises(TextlabError, match="list of texts"):
        summarizer.summarize("one text")
    with pytest.raises(TextlabError, match="strings"):
        summarizer.summarize(["fine", None])


# --------------------------------------------------------------------------- models and settings


def test_missing_model_names_the_download_command(tmp_path, monkeypatch):
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailable, match="textlab models download distilbart-cnn"):
        Seq2SeqSummarizer("distilbart-cnn", device="cpu")
    with pytest.raises(ModelNotAvailable, match="textlab models download bart-large-cnn"):
        Seq2SeqSummarizer("facebook/bart-large-cnn", device="cpu")
    with pytest.raises(TextlabError, match="textlab models download"):
        Seq2SeqSummarizer("someone/some-summariser", device="cpu")


def test_a_classifier_folder_is_refused(tiny_classifier_model):
    path = tiny_classifier_model
    with pytest.raises(TextlabError, match="not a seq2seq"):
        Seq2SeqSummarizer(str(path), device="cpu")
    with pytest.raises(TextlabError, match="not a seq2seq"):
        Seq2SeqSummarizer("twitter-roberta-sentiment", device="cpu")  # refused before any lookup


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(max_new_tokens=5, min_new_tokens=6), "min_new_tokens"),
    (dict(num_beams=0), "num_beams"),
    (dict(batch_size=0), "batch_size"),
    (dict(passthrough_words=-1), "passthrough_words"),
    (dict(no_repeat_ngram_size=1.5), "no_repeat_ngram_size"),
    (dict(length_penalty="long"), "length_penalty"),
])
def test_bad_settings_fail_before_loading(kwargs, message):
    with pytest.raises(TextlabError, match=message):
        Seq2SeqSummarizer("no/such-model-anywhere", device="cpu", **kwargs)


def test_describe_and_close(tiny):
    summarizer = Seq2SeqSummarizer(str(tiny), dtype="float32", **FAST)
    summarizer.summarize([_text(4, seed=9)])
    info = summarizer.describe()
    assert info["backend"] == "transformers" and info["model"] == str(tiny)
    assert info["dtype"] == "float32" and info["device"].startswith("CPU")
    assert info["window"] == 512 and info["decoding"] == "greedy"
    assert info["generation"]["max_new_tokens"] == 8 and info["generation"]["do_sample"] is False
    assert "model_revision" in info and "map-reduce" in info["long_texts"]
    summarizer.close()
    assert summarizer.model is None
    with pytest.raises(TextlabError, match="closed"):
        summarizer.summarize(["x"])
    summarizer.close()  # twice is fine
