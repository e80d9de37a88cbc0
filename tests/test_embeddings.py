"""Embeddings: the bundled MiniLM on the CPU, a tiny sentence-transformers folder, the cache."""

from __future__ import annotations

import logging
import os
import shutil
import threading

import numpy as np
import pytest
import torch

from analysis import embeddings
from analysis.embeddings import Embedder, cache_size, clear_cache, embed, text_key
from analysis.errors import ModelNotAvailable, TextlabError
from tests.tiny_models import make_tiny_sentence_transformer

FOOTBALL_A = "The striker scored twice in the last ten minutes and the home side won the football match."
FOOTBALL_B = "Our goalkeeper saved a penalty, and the team climbed to second place in the league."
RATES = "The central bank raised interest rates by half a percentage point to fight inflation."
TEXTS = [
    FOOTBALL_A,
    "Rents went up again. We cannot afford to stay in this city much longer.",
    RATES,
    "Great to see the new clinic open! Waiting times are finally shorter.",
    FOOTBALL_B,
    "ok",
    "Energy bills are crazy this winter, and the heating is still broken in half the flats on our street.",
]


@pytest.fixture(scope="module")
def minilm():
    emb = Embedder(device="cpu")
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def tiny_folder(tiny_sentence_transformer):
    return tiny_sentence_transformer


@pytest.fixture
def tiny(tiny_folder, tmp_path):
    """A tiny model with a fresh cache folder."""
    emb = Embedder(str(tiny_folder), device="cpu", cache_dir=tmp_path / "cache")
    yield emb
    emb.close()


def _spy(monkeypatch, emb):
    """Record the inputs the model is asked to embed."""
    seen: list[str] = []
    real = emb.model.encode

    def encode(inputs, **kwargs):
        seen.extend(inputs)
        return real(inputs, **kwargs)

    monkeypatch.setattr(emb.model, "encode", encode)
    return seen


def _forbid(monkeypatch, emb):
    def encode(*args, **kwargs):
        raise AssertionError("the model was called although every text is cached")

    monkeypatch.setattr(emb.model, "encode", encode)


def _n_tokens(emb, text):
    return len(emb.tokenizer(text, add_special_tokens=False)["input_ids"])


# --------------------------------------------------------------------------- bundled MiniLM


def test_minilm_shapes_normalised_and_empty_rows(minilm):
    texts = TEXTS + ["", "   \n\t"]
    vectors = minilm.encode(texts)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    assert minilm.dim == 384 and minilm.max_seq_length == 256
    assert minilm.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    np.testing.assert_allclose(np.linalg.norm(vectors[: len(TEXTS)], axis=1), 1.0, atol=1e-5)
    assert not vectors[-2:].any()  # empty and whitespace-only texts: zero rows
    assert minilm.split.tolist() == [False] * len(texts) and minilm.n_split == 0


def test_minilm_order_preserved_and_matches_sentence_transformers(minilm):
    vectors = minilm.encode(TEXTS)
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = minilm.encode([TEXTS[i] for i in perm])
    np.testing.assert_allclose(shuffled, vectors[perm], atol=1e-6)
    # Same vectors as sentence-transformers itself gives for texts that fit in one window.
    reference = minilm.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-6)


def test_minilm_semantic_sanity(minilm):
    a, b, rates = minilm.encode([FOOTBALL_A, FOOTBALL_B, RATES])
    assert a @ b > a @ rates + 0.1
    assert b @ a > b @ rates + 0.1


def test_cpu_recomputation_is_bit_identical(minilm):
    again = Embedder(device="cpu")
    try:
        np.testing.assert_array_equal(again.encode(TEXTS), minilm.encode(TEXTS))
    finally:
        again.close()


def test_long_text_split_into_windows_weighted_mean(minilm):
    rng = np.random.default_rng(1)
    words = ("council housing budget transport school hospital tax bus rent energy climate park library "
             "police street job wage price family child market river bridge").split()
    long_text = " ".join(rng.choice(words, size=800)) + "."
    n_tokens = _n_tokens(minilm, long_text)
    assert n_tokens > 3 * minilm.max_seq_length
    texts = [FOOTBALL_A, long_text, RATES]
    vectors = minilm.encode(texts)
    assert minilm.split.tolist() == [False, True, False] and minilm.n_split == 1

    windows = minilm.windows(long_text)
    assert len(windows) == 4
    assert "".join(windows) == long_text  # consecutive slices: every word in exactly one window
    counts = np.array([_n_tokens(minilm, w) for w in windows])
    assert counts.max() <= minilm.max_seq_length - 2 and counts.sum() == n_tokens  # nothing truncated
    for left, right in zip(windows, windows[1:]):  # cut at word boundaries
        assert left.endswith(" ") or right.startswith(" ")

    window_vectors = minilm.model.encode(windows, normalize_embeddings=True, convert_to_numpy=True)
    expected = (window_vectors * counts[:, None]).sum(axis=0) / counts.sum()
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(vectors[1], expected, atol=1e-5)
    # Not what silent truncation would give.
    truncated = minilm.model.encode([long_text], normalize_embeddings=True, convert_to_numpy=True)[0]
    assert not np.allclose(vectors[1], truncated, atol=1e-3)
    assert minilm.describe()["n_split"] == 1


def test_describe_for_manifests(minilm, tmp_path):
    info = minilm.describe()
    assert info["backend"] == "embedding"
    assert info["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["model_revision"] is None  # the bundled copy records no Hub commit
    assert info["device"].startswith("CPU") and info["dtype"] == "float32"
    assert info["dim"] == 384 and info["max_seq_length"] == 256
    assert "never truncated" in info["long_texts"]
    assert info["cache"]["dir"] is None


# --------------------------------------------------------------------------- tiny folder, splitting


def test_tiny_folder_loads_through_the_same_path(tiny, tiny_folder):
    assert tiny.model_id == "tiny-st" and tiny.revision is None
    assert tiny.dim == 32 and tiny.max_seq_length == 16 and tiny.window_tokens == 14
    folder = tiny.cache_folder()
    assert folder.parent.name.startswith("tiny-st@local-") and folder.name == "float32-win16"
    vectors = tiny.encode(["a short text", "another one"])
    assert vectors.shape == (2, 32)


def test_tiny_split_every_word_in_exactly_one_window(tiny):
    texts = [
        "short",
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen",
        "Antidisestablishmentarianism " * 6 + "end",
        "x" * 100,  # one word of 50 tokens, far longer than a window: cut inside it
        "  leading and trailing spaces around a sentence that is a bit too long for sixteen tokens  ",
    ]
    vectors = tiny.encode(texts)
    assert tiny.split.tolist() == [False, True, True, True, True] and tiny.n_split == 4
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for text in texts[1:]:
        windows = tiny.windows(text)
        assert len(windows) > 1 and "".join(windows) == text
        assert all(_n_tokens(tiny, w) <= tiny.window_tokens for w in windows)


def test_tiny_split_vector_is_weighted_mean(tiny):
    text = " ".join(f"word{i}" for i in range(30))
    vector = tiny.encode([text])[0]
    windows = tiny.windows(text)
    counts = np.array([_n_tokens(tiny, w) for w in windows], dtype=np.float64)
    assert counts.sum() == _n_tokens(tiny, text)
    window_vectors = tiny.model.encode(windows, normalize_embeddings=True, convert_to_numpy=True)
    expected = (window_vectors * counts[:, None]).sum(axis=0) / counts.sum()
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_progress_reports_texts_done(tiny):
    texts = [f"text number {i} " * (1 + i % 7) for i in range(300)] + [""]
    seen: list[int] = []
    tiny.encode(texts[:100])  # cached: reported as done at once
    tiny.batch_size = 8  # several model calls, so progress moves in steps
    tiny.encode(texts, progress=seen.append)
    assert seen[0] == 101  # 100 cached + 1 empty
    assert seen == sorted(seen) and seen[-1] == len(texts)
    assert len(set(seen)) > 2


def test_progress_comes_after_every_batch_not_every_few_batches(tiny):
    """A job's bar must move within seconds on a CPU: one report per batch of the model."""
    texts = [f"distinct text {i} " * (1 + i % 5) for i in range(200)]
    tiny.batch_size = 8
    seen: list[int] = []
    tiny.encode(texts, progress=seen.append)
    steps = sorted(set(seen) - {0})
    assert len(steps) >= 200 // 8  # 25 batches of 8
    assert steps[0] <= 8 and steps[-1] == 200


def test_duplicates_are_computed_once(tiny, monkeypatch):
    seen = _spy(monkeypatch, tiny)
    vectors = tiny.encode(["same text", "other", "same text", "same text"])
    assert sorted(seen) == ["other", "same text"]
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert tiny.cache_hits == 0


def test_bad_inputs(tiny):
    with pytest.raises(TextlabError, match="list of texts"):
        tiny.encode("just one string")
    with pytest.raises(TextlabError, match="strings"):
        tiny.encode(["ok", None])
    assert tiny.encode([]).shape == (0, 32)
    with pytest.raises(TextlabError, match="batch_size"):
        Embedder(tiny.path, device="cpu", batch_size=0)


def test_bfloat16_is_close_and_cached_apart(tiny_folder, tmp_path):
    texts = ["a short text", "word " * 40]
    cache = tmp_path / "cache"
    fp32 = Embedder(str(tiny_folder), device="cpu", cache_dir=cache)
    bf16 = Embedder(str(tiny_folder), device="cpu", cache_dir=cache, dtype="bfloat16")
    assert bf16.model.dtype == torch.bfloat16 and bf16.describe()["dtype"] == "bfloat16"
    pooled = []
    bf16.model[1].register_forward_hook(lambda module, args, out: pooled.append(out["sentence_embedding"].dtype))
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert pooled and set(pooled) == {torch.float32}  # pooling and normalisation run in float32
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)  # normalised in float32
    assert ((a * b).sum(axis=1) > 0.99).all()
    assert bf16.cache_hits == 0 and bf16.cache_folder() != fp32.cache_folder()


def test_oom_halves_the_batch(tiny, monkeypatch):
    texts = [f"text {i}" for i in range(50)]
    expected = Embedder(tiny.path, device="cpu").encode(texts)
    real = tiny.model.encode
    sizes = []

    def encode(inputs, batch_size, **kwargs):
        sizes.append(batch_size)
        if batch_size > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(inputs, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(tiny.model, "encode", encode)
    vectors = tiny.encode(texts)
    assert sizes[:3] == [64, 32, 16] and tiny.batch_size == 16
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_retrained_folder_gets_a_new_cache_folder(tiny_folder, tmp_path):
    other = make_tiny_sentence_transformer(tmp_path / "tiny-st", max_seq_length=16, seed=1)
    a = Embedder(str(tiny_folder), device="cpu", cache_dir=tmp_path / "c")
    b = Embedder(str(other), device="cpu", cache_dir=tmp_path / "c")
    assert a.model_id == b.model_id == "tiny-st"
    assert a.cache_folder() != b.cache_folder()


# --------------------------------------------------------------------------- cache


def test_second_encode_computes_nothing(tiny, monkeypatch):
    texts = ["alpha beta", "gamma delta", "", "word " * 40]
    first = tiny.encode(texts)
    assert tiny.cache_hits == 0 and tiny.n_computed == 3
    _forbid(monkeypatch, tiny)
    second = tiny.encode(texts)
    assert tiny.cache_hits == 3 and tiny.n_computed == 0  # the empty text is not a cache hit
    np.testing.assert_array_equal(first, second)
    assert tiny.split.tolist() == [False, False, False, True]  # split flags come from the cache too


def test_partial_overlap_computes_only_misses(tiny, monkeypatch):
    tiny.encode(["alpha", "beta", "gamma"])
    seen = _spy(monkeypatch, tiny)
    vectors = tiny.encode(["beta", "delta", "alpha", "epsilon"])
    assert sorted(seen) == ["delta", "epsilon"]
    assert tiny.cache_hits == 2
    fresh = Embedder(tiny.path, device="cpu").encode(["beta", "delta", "alpha", "epsilon"])
    np.testing.assert_allclose(vectors, fresh, atol=1e-6)


def test_new_embedder_reads_the_shards(tiny, tiny_folder, monkeypatch):
    texts = [f"sentence {i}" for i in range(20)]
    first = tiny.encode(texts)
    other = Embedder(str(tiny_folder), device="cpu", cache_dir=tiny.cache_dir)
    _forbid(monkeypatch, other)
    np.testing.assert_array_equal(other.encode(texts[::-1]), first[::-1])
    assert other.cache_hits == 20


def test_one_shard_per_slice(tiny, monkeypatch):
    monkeypatch.setattr(embeddings, "SLICE_SIZE", 7)
    tiny.encode([f"t{i}" for i in range(20)])
    folder = tiny.cache_folder()
    assert len(list(folder.glob("*.keys.npy"))) == 3 and len(list(folder.glob("*.npy"))) == 6
    assert not list(folder.glob(".*.tmp"))


def _shards(folder):
    keys = sorted(folder.glob("*.keys.npy"))
    return [(k, k.with_name(k.name[: -len(".keys.npy")] + ".npy")) for k in keys]


@pytest.mark.parametrize("damage", ["keys without vectors", "truncated vectors", "garbage keys", "wrong dim"])
def test_damaged_shard_is_skipped_with_a_warning(tiny, tiny_folder, caplog, damage):
    good = tiny.encode(["kept one", "kept two"])
    tiny.encode(["lost one", "lost two"])
    (keys, vectors), = [s for s in _shards(tiny.cache_folder())
                        if text_key("lost one") in np.load(s[0])["key"].tobytes()]
    if damage == "keys without vectors":
        vectors.unlink()
    elif damage == "truncated vectors":
        data = vectors.read_bytes()
        vectors.write_bytes(data[: len(data) // 2])
    elif damage == "garbage keys":
        keys.write_bytes(b"not a numpy file")
    else:
        np.save(vectors, np.zeros((2, 5), dtype=np.float32))
    other = Embedder(str(tiny_folder), device="cpu", cache_dir=tiny.cache_dir)
    with caplog.at_level(logging.WARNING, logger="analysis.embeddings"):
        vectors_now = other.encode(["kept one", "kept two", "lost one", "lost two"])
    assert "unreadable shard" in caplog.text
    assert other.cache_hits == 2 and other.n_computed == 2
    np.testing.assert_array_equal(vectors_now[:2], good)
    np.testing.assert_allclose(np.linalg.norm(vectors_now, axis=1), 1.0, atol=1e-5)


def test_crash_between_vectors_and_keys_leaves_no_keys(tiny, tiny_folder, monkeypatch, caplog):
    real = embeddings.atomic_write_bytes

    def crash_on_keys(path, data):
        if path.name.endswith(".keys.npy"):
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(embeddings, "atomic_write_bytes", crash_on_keys)
    with caplog.at_level(logging.WARNING, logger="analysis.embeddings"):
        vectors = tiny.encode(["first text", "second text"])
    assert "could not write a shard" in caplog.text and vectors.shape == (2, 32)
    folder = tiny.cache_folder()
    assert len(list(folder.glob("*.npy"))) == 1 and not list(folder.glob("*.keys.npy"))
    monkeypatch.setattr(embeddings, "atomic_write_bytes", real)
    other = Embedder(str(tiny_folder), device="cpu", cache_dir=tiny.cache_dir)
    np.testing.assert_array_equal(other.encode(["first text", "second text"]), vectors)
    assert other.cache_hits == 0


def test_old_leftovers_are_removed(tiny, tiny_folder):
    tiny.encode(["kept"])
    folder = tiny.cache_folder()
    orphan_old, orphan_new = folder / "orphan-old.npy", folder / "orphan-new.npy"
    tmp_old = folder / ".x.keys.npy.abc.tmp"
    for path in (orphan_old, orphan_new, tmp_old):
        path.write_bytes(b"partial")
    for path in (orphan_old, tmp_old):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001: long dead writer
    other = Embedder(str(tiny_folder), device="cpu", cache_dir=tiny.cache_dir)
    other.encode(["kept"])
    assert other.cache_hits == 1
    assert orphan_new.exists() and not orphan_old.exists() and not tmp_old.exists()


def test_closed_embedder_refuses(tiny_folder):
    emb = Embedder(str(tiny_folder), device="cpu")
    emb.close()
    with pytest.raises(TextlabError, match="closed"):
        emb.encode(["text"])
    assert emb.describe()["model"] == "tiny-st"


def test_concurrent_embedders_share_a_folder(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "SLICE_SIZE", 5)
    cache = tmp_path / "shared"
    a = Embedder(str(tiny_folder), device="cpu", cache_dir=cache)
    b = Embedder(str(tiny_folder), device="cpu", cache_dir=cache)
    texts = [f"concurrent text {i}" for i in range(40)]
    results, errors = {}, []

    def run(name, emb, chunk):
        try:
            results[name] = emb.encode(chunk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("a", a, texts[:30])),
               threading.Thread(target=run, args=("b", b, texts[10:]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    reader = Embedder(str(tiny_folder), device="cpu", cache_dir=cache)
    _forbid(monkeypatch, reader)
    together = reader.encode(texts)
    assert reader.cache_hits == 40
    np.testing.assert_allclose(together[:30], results["a"], atol=1e-6)
    np.testing.assert_allclose(together[10:], results["b"], atol=1e-6)


def test_many_small_shards_are_merged(tiny, tiny_folder, monkeypatch):
    monkeypatch.setattr(embeddings, "_MERGE_AT", 5)
    texts = [f"codebook label {i}" for i in range(6)]
    for text in texts:  # one tiny shard per call, like a codebook embedded at each run
        tiny.encode([text])
    folder = tiny.cache_folder()
    keys, vectors = _shards(folder)[0]  # the same text in two shards (two Embedders raced)
    shutil.copy(vectors, folder / "copy.npy")
    shutil.copy(keys, folder / "copy.keys.npy")
    assert len(list(folder.glob("*.keys.npy"))) == 7
    expected = tiny.encode(texts)
    other = Embedder(str(tiny_folder), device="cpu", cache_dir=tiny.cache_dir)
    _forbid(monkeypatch, other)
    np.testing.assert_array_equal(other.encode(texts), expected)
    assert other.cache_hits == 6
    assert len(list(folder.glob("*.keys.npy"))) == len(list(folder.glob("*.npy"))) // 2 == 1
    assert cache_size(tiny.cache_dir)["vectors"] == 6


def test_cache_size_and_clear(tiny, tiny_folder, minilm, tmp_path):
    assert cache_size(tmp_path / "nothing") == {"vectors": 0, "bytes": 0, "models": {}}
    tiny.encode(["one", "two", "three"])
    tiny.encode(["four"])
    size = cache_size(tiny.cache_dir)
    assert size["vectors"] == 4 and size["bytes"] > 4 * 32 * 4
    (name, entry), = size["models"].items()
    assert name.startswith("tiny-st@") and entry["vectors"] == 4
    assert clear_cache(tiny.cache_dir, "all-minilm-l6-v2")["vectors"] == 0  # another model: kept
    removed = clear_cache(tiny.cache_dir, str(tiny_folder))
    assert removed["vectors"] == 4
    assert cache_size(tiny.cache_dir)["vectors"] == 0
    assert tiny.encode(["one"]).shape == (1, 32)  # an open Embedder still works
    clear_cache(tiny.cache_dir)
    assert cache_size(tiny.cache_dir)["vectors"] == 0


def test_embed_into_the_project_cache(tiny_folder, tmp_path):
    import pandas as pd

    from analysis.corpus import build_corpus
    from analysis.workspace import Workspace

    project = Workspace(tmp_path / "ws").create_project("p", build_corpus(pd.DataFrame({"text": ["a"]}), "text"))
    cache = project.embeddings_dir
    assert cache == project.folder / "embeddings"
    vectors = embed(["hello there", ""], model=str(tiny_folder), cache_dir=cache, device="cpu")
    assert vectors.shape == (2, 32) and not vectors[1].any()
    assert cache_size(cache)["vectors"] == 1


# --------------------------------------------------------------------------- missing or wrong models


def test_missing_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailable, match="textlab models download some/unknown-model"):
        Embedder("some/unknown-model", device="cpu")


def test_not_an_embedding_model(tmp_path):
    with pytest.raises(TextlabError, match="not a sentence-embedding model"):
        Embedder("vader")
    with pytest.raises(TextlabError, match="not an existing folder"):
        Embedder(str(tmp_path / "no-such-folder"))
