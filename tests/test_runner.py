"""Tests for analysis.runner: batching, order, OOM backoff, device/dtype, classifier parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.errors import TextlabError
from analysis.runner import (
    SequenceClassifierRunner,
    device_description,
    resolve_device,
    resolve_dtype,
    run_batched,
    token_budget_batches,
)
from tests.tiny_models import make_tiny_classifier

# --------------------------------------------------------------------------- token budget


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_tokens,max_batch_size", [(64, 8), (500, 32), (10_000, 3), (7, 100)])
def test_token_budget_batches_properties(seed, max_tokens, max_batch_size):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 120, size=200)
    lengths[:5] = 200  # some texts alone over the smaller budgets
    batches = token_budget_batches(lengths, max_tokens, max_batch_size)

    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # every index exactly once
    # Longest first, and stable: equal lengths keep their input order.
    assert flat.tolist() == np.argsort(-lengths, kind="stable").tolist()
    for batch in batches:
        assert 1 <= len(batch) <= max_batch_size
        padded = len(batch) * lengths[batch].max()
        assert padded <= max_tokens or len(batch) == 1


def test_token_budget_batches_edge_cases():
    assert token_budget_batches([], 100, 10) == []
    batches = token_budget_batches([5, 500, 5], max_tokens=100, max_batch_size=10)
    assert [b.tolist() for b in batches] == [[1], [0, 2]]  # the oversized text runs alone
    # Zero-length texts still count as one token, so they cannot make infinite batches.
    assert [len(b) for b in token_budget_batches([0] * 10, 4, 100)] == [4, 4, 2]
    for bad in (0, -1, 2.5, None):
        with pytest.raises(TextlabError):
            token_budget_batches([1, 2], bad, 10)
        with pytest.raises(TextlabError):
            token_budget_batches([1, 2], 10, bad)


# --------------------------------------------------------------------------- run_batched


def test_run_batched_restores_order_and_reports_progress():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, size=97)
    items = [f"item-{i}" for i in range(len(lengths))]
    seen_sizes, progress = [], []

    def forward(batch):
        seen_sizes.append(len(batch))
        return [s.upper() for s in batch]

    out = run_batched(items, lengths, forward, max_tokens=200, max_batch_size=16, on_batch=progress.append)
    assert out == [s.upper() for s in items]
    assert len(seen_sizes) > 1 and max(seen_sizes) <= 16
    assert progress == np.cumsum(seen_sizes).tolist() and progress[-1] == len(items)


def test_run_batched_moves_tensors_to_numpy_rows():
    lengths = [3, 10, 1, 7]

    def forward(batch):
        return torch.tensor([[float(x), -float(x)] for x in batch], dtype=torch.bfloat16)

    out = run_batched([0, 1, 2, 3], lengths, forward, max_tokens=20, max_batch_size=2)
    assert all(isinstance(row, np.ndarray) and row.dtype == np.float32 for row in out)
    np.testing.assert_array_equal(np.stack(out), [[0, 0], [1, -1], [2, -2], [3, -3]])


def test_run_batched_rejects_wrong_result_count():
    with pytest.raises(ValueError, match="results for a batch"):
        run_batched([1, 2, 3], [1, 1, 1], lambda batch: batch[:1], max_tokens=10, max_batch_size=10)


def test_run_batched_empty_and_mismatched_input():
    assert run_batched([], [], lambda b: b) == []
    with pytest.raises(ValueError):
        run_batched([1, 2], [1], lambda b: b)


def test_oom_backoff_halves_and_completes(monkeypatch):
    # empty_cache must be called on OOM even though this machine has no GPU.
    cleared = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: cleared.append(1))
    k = 5
    attempts = []

    def forward(batch):
        attempts.append(len(batch))
        if len(batch) > k:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    n = 70
    out = run_batched(list(range(n)), [8] * n, forward, max_tokens=8 * 32, max_batch_size=64)
    assert out == [x * 10 for x in range(n)]
    assert attempts[:3] == [32, 16, 8]  # halved until it fits
    successes = [a for a in attempts if a <= k]
    assert sum(successes) == n
    # Later batches reuse the smaller budget instead of failing again at full size.
    failures = [a for a in attempts if a > k]
    assert failures == [32, 16, 8]
    assert len(cleared) == len(failures)


def test_oom_on_single_item_is_textlab_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)

    def forward(batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    with pytest.raises(TextlabError, match="batch-size"):
        run_batched(["a", "b", "c"], [100, 2, 3], forward, max_tokens=1000, max_batch_size=8)


def test_mps_style_oom_runtime_error_is_handled():
    calls = []

    def forward(batch):
        calls.append(len(batch))
        if len(batch) > 1:
            raise RuntimeError("MPS backend out of memory (MPS allocated: 9.00 GB)")
        return batch

    assert run_batched([1, 2, 3, 4], [2] * 4, forward, max_tokens=100, max_batch_size=8) == [1, 2, 3, 4]
    assert calls[:2] == [4, 2]


def test_other_errors_propagate_unchanged():
    def forward(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_batched([1, 2], [1, 1], forward)


# --------------------------------------------------------------------------- device and dtype


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_resolve_device_cuda_unavailable_is_clear_error():
    with pytest.raises(TextlabError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(TextlabError):
        resolve_device("cuda:1")


def test_resolve_device_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    with pytest.raises(TextlabError, match="Unknown device"):
        resolve_device("tpu")


def test_resolve_dtype():
    cpu = torch.device("cpu")
    assert resolve_dtype(cpu, "auto") == torch.float32
    assert resolve_dtype("cpu") == torch.float32
    assert resolve_dtype(cpu, "bf16") == torch.bfloat16
    assert resolve_dtype(cpu, "float16") == torch.float16
    assert resolve_dtype(cpu, torch.float32) == torch.float32
    with pytest.raises(TextlabError):
        resolve_dtype(cpu, "int8")
    with pytest.raises(TextlabError):
        resolve_dtype(cpu, torch.int64)


def test_resolve_dtype_auto_on_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype(torch.device("cuda"), "auto") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype(torch.device("cuda"), "auto") == torch.float16
    with pytest.raises(TextlabError, match="bfloat16"):
        resolve_dtype(torch.device("cuda"), "bfloat16")
    assert resolve_dtype(torch.device("mps"), "auto") == torch.float32


def test_device_description_cpu():
    assert device_description("cpu").startswith("CPU (")


# --------------------------------------------------------------------------- classifier parity


def _texts(n=50, seed=0):
    rng = np.random.default_rng(seed)
    words = ("the vote was close and people were angry about taxes but hopeful for the schools "
             "nobody listened great wonderful terrible policy government community !? 2024").split()
    lengths = np.concatenate([[1, 2, 3], rng.integers(1, 300, size=n - 4), [380]])
    texts = [" ".join(rng.choice(words, size=int(k))) for k in lengths]
    texts[0] = ""  # an empty answer still gets probabilities ([CLS] [SEP])
    return texts


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_classifier_matches_pipeline(tmp_path, arch):
    from transformers import pipeline

    from analysis.models import load_sequence_classifier

    path = make_tiny_classifier(tmp_path / arch, arch=arch)
    texts = _texts()
    tokenizer, model = load_sequence_classifier(path, device="cpu", dtype="float32")
    # A small budget forces many batches with different padding.
    runner = SequenceClassifierRunner(tokenizer, model, max_tokens=1500, max_batch_size=16)
    progress = []
    probs = runner.predict_proba(texts, on_batch=progress.append)

    assert probs.dtype == np.float32 and probs.shape == (len(texts), 3)
    assert progress[-1] == len(texts) and len(progress) > 3
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert runner.labels == ["negative", "neutral", "positive"]
    assert runner.n_truncated == 0

    pipe = pipeline("text-classification", model=str(path), top_k=None, device="cpu", dtype=torch.float32)
    expected = np.zeros_like(probs)
    for i, text in enumerate(texts):  # one row at a time: no padding at all
        for entry in pipe([text])[0]:
            expected[i, runner.labels.index(entry["label"])] = entry["score"]
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    assert (probs.argmax(1) == expected.argmax(1)).all()
    assert len(set(probs.argmax(1).tolist())) > 1  # the tiny model does not predict one class only


def test_classifier_truncates_long_texts_and_counts_them(tiny_classifier_model):
    from analysis.models import load_sequence_classifier

    path = tiny_classifier_model
    tokenizer, model = load_sequence_classifier(path, device="cpu")
    runner = SequenceClassifierRunner(tokenizer, model, max_length=32, split_long=False)
    probs = runner.predict_proba(["short", "word " * 100, "word " * 30, "word " * 31])
    assert probs.shape == (4, 3)
    assert runner.truncated.tolist() == [False, True, False, True]  # 30 words + 2 specials fit
    assert runner.n_truncated == 2
    # Truncated text = its first 32 tokens.
    head = runner.predict_proba(["word " * 30])
    np.testing.assert_allclose(probs[1], head[0], atol=1e-5)


def test_classifier_default_window_and_validation(tmp_path):
    from analysis.models import load_sequence_classifier

    path = make_tiny_classifier(tmp_path / "r", arch="roberta")
    tokenizer, model = load_sequence_classifier(path, device="cpu")
    runner = SequenceClassifierRunner(tokenizer, model)
    assert runner.max_length == 512  # 514 RoBERTa positions minus the padding offset
    assert runner.predict_proba([]).shape == (0, 3)
    long_probs = runner.predict_proba(["word " * 2000])  # would index past the table unsplit
    assert runner.n_split == 1 and runner.windows[0] >= 4 and runner.n_truncated == 0
    assert np.isfinite(long_probs).all()
    with pytest.raises(TextlabError):
        runner.predict_proba("a single string")
    with pytest.raises(TextlabError):
        runner.predict_proba(["ok", None])
    with pytest.raises(TextlabError):
        SequenceClassifierRunner(tokenizer, model, max_tokens=0)


def test_classifier_splits_long_texts_into_windows_and_weights_them(tiny_classifier_model):
    """A long text = the length-weighted mean of its windows, each run on its own."""
    from analysis.models import load_sequence_classifier

    path = tiny_classifier_model
    tokenizer, model = load_sequence_classifier(path, device="cpu")
    runner = SequenceClassifierRunner(tokenizer, model, max_length=32, stride=8)
    long_text = " ".join(f"word{i % 17} apple{i % 5}" for i in range(60))
    texts = ["short one", long_text, "another short text"]
    probs = runner.predict_proba(texts)
    assert runner.split.tolist() == [False, True, False] and runner.n_split == 1
    assert runner.n_truncated == 0

    enc = tokenizer([long_text], truncation=True, max_length=32, stride=8, return_overflowing_tokens=True)
    windows = enc["input_ids"]
    assert runner.windows.tolist() == [1, len(windows), 1] and len(windows) > 2
    assert all(len(w) <= 32 for w in windows)
    one_by_one = []
    with torch.inference_mode():
        for ids in windows:
            logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits
            one_by_one.append(torch.softmax(logits.float(), -1)[0].numpy())
    weights = np.array([len(w) for w in windows], dtype=float)
    expected = (np.array(one_by_one) * weights[:, None]).sum(0) / weights.sum()
    np.testing.assert_allclose(probs[1], expected, atol=1e-5)
    # The short texts are unaffected by sharing batches with windows.
    alone = runner.predict_proba(["short one", "another short text"])
    np.testing.assert_allclose(probs[[0, 2]], alone, atol=1e-5)
