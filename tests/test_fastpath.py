"""The fast CPU path (--fast): a static embedding model in place of the fp32 MiniLM.

Most tests use a tiny static model with random vectors, put where the real one is built
(TEXTLAB_MODELS/textlab-fast-static-minilm), so they test the plumbing without the
distillation; one test builds the real model from the bundled MiniLM.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import embeddings
from analysis.cli import main as cli_main
from analysis.embeddings import FAST_MODEL, Embedder, fast_model_path
from analysis.errors import TextlabError
from analysis.tasks import execute
from tests.paths import ROOT, SAMPLE_CSV

CODEBOOK = ROOT / "sample_data" / "policy_codebook.json"
TEXTS = ["Rents went up again and we cannot afford to stay.", "", "The buses are late every single morning.",
         "Great to see the new clinic open! " * 200]


def write_tiny_static(folder, dim: int = 24, seed: int = 0):
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import StaticEmbedding
    from tokenizers import Tokenizer

    from analysis.models import bundled_embedding_path

    tokenizer = Tokenizer.from_file(str(bundled_embedding_path() / "tokenizer.json"))
    weights = np.random.default_rng(seed).normal(size=(tokenizer.get_vocab_size(), dim)).astype(np.float32)
    SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)]).save(str(folder))
    # Recorded as built from the bundled MiniLM (fast_model_path rebuilds one built from another source).
    source = {"fingerprint": embeddings.folder_fingerprint(bundled_embedding_path()), "note": "tiny test model"}
    (folder / "textlab_fastpath.json").write_text(json.dumps({"source": source}), encoding="utf-8")
    return folder


@pytest.fixture
def tiny_fast(tmp_path, monkeypatch):
    models_dir = tmp_path / "models"
    monkeypatch.setenv("TEXTLAB_MODELS", str(models_dir))
    return write_tiny_static(models_dir / FAST_MODEL)


def test_static_embedder_reads_whole_texts_and_keeps_its_own_cache(tiny_fast, tmp_path):
    assert fast_model_path() == tiny_fast  # present: used as it is, not built again
    cache = tmp_path / "cache"
    with Embedder(str(tiny_fast), device="cpu", cache_dir=cache) as fast:
        vectors = fast.encode(TEXTS)
        assert fast.static and fast.n_split == 0  # a 1,400-token text is one piece: nothing cut
        assert np.allclose(np.linalg.norm(vectors[[0, 2, 3]], axis=1), 1) and not vectors[1].any()
        assert fast.describe()["max_seq_length"] is None and "static" in fast.describe()["long_texts"]
        folder = fast.cache_folder()
    with Embedder(device="cpu", cache_dir=cache) as minilm:
        assert minilm.cache_folder() != folder  # vectors of the two paths never share a cache entry
    assert folder.name.endswith("-static")


def test_fast_coding_topics_summary_use_the_static_model(tiny_fast, tmp_path):
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    texts = frame["text"].tolist()
    coded = execute.run("coding", texts, codebook=str(CODEBOOK), fast=True)
    filled = [bool(t.strip()) for t in texts]
    assert len(coded) == len(texts) and coded["code_label"][filled].notna().all()
    fewshot = execute.run("coding", texts, frame=frame, labels_column="human_code", fast=True, cv_folds=2)
    assert len(fewshot) == len(texts)
    summary = execute.run("summary", texts, fast=True, min_words=5)
    assert summary["summary"][filled].str.len().gt(0).all()

    from analysis.tasks import get_task
    from analysis.tasks.base import RunContext

    task = get_task("coding")
    config = task.Config.from_dict({"codebook": str(CODEBOOK), "fast": True})
    predictor = task.load(config, RunContext(texts=texts, doc_ids=[str(i) for i in range(len(texts))]))
    try:
        assert predictor.describe()["model"] == FAST_MODEL
    finally:
        predictor.close()


@pytest.mark.parametrize("task_name, settings, message", [
    ("coding", {"fast": True, "backend": "transformers"}, "fast embedding path"),
    ("coding", {"fast": True, "backend": "llm"}, "fast embedding path"),
    ("topics", {"fast": True, "model": "all-minilm-l6-v2"}, "leave out --model"),
    ("summary", {"fast": True, "backend": "transformers"}, "extractive summaries"),
])
def test_fast_refuses_what_it_cannot_speed_up(task_name, settings, message, tiny_fast):
    from analysis.tasks import get_task

    task = get_task(task_name)
    extra = {"codebook": str(CODEBOOK)} if task_name == "coding" else {}
    with pytest.raises(TextlabError, match=message):
        task.validate(task.Config.from_dict({**extra, **settings}))


def test_cli_fast_is_recorded_in_the_manifest(tiny_fast, tmp_path):
    out = tmp_path / "coded.csv"
    code = cli_main(["analyze", str(SAMPLE_CSV), "-o", str(out), "--task", "coding", "--codebook", str(CODEBOOK),
                     "--fast", "--workspace", str(tmp_path / "ws")])
    assert code == 0
    manifest = json.loads(out.with_name("coded.manifest.json").read_text("utf-8"))
    run = manifest[0] if isinstance(manifest, list) else manifest
    assert run["parameters"]["fast"] is True
    assert FAST_MODEL in json.dumps(run)
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(written) == len(pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False))


def test_building_the_fast_model_connects_nowhere(tiny_sentence_transformer, tmp_path):
    """The distillation (model2vec, skeletoken, transformers) runs with the Hugging Face
    offline switches removed, under the network audit hook of tests/test_network.py."""
    import subprocess
    import sys

    from tests.test_network import AUDITED, LOCAL, clean_env, outside

    log = tmp_path / "outside.log"
    script = AUDITED.format(root=str(ROOT), log=str(log), local=LOCAL, argv=[]).replace(
        "from ui.launch import main  # the `textlab` command: app here, the rest in analysis.cli\nsys.exit(main([]))",
        "from analysis.fastpath import build_static_model\n"
        f"build_static_model({str(tiny_sentence_transformer)!r}, {str(tmp_path / 'fast')!r}, pca_dims=8)")
    assert "build_static_model" in script
    done = subprocess.run([sys.executable, "-c", script], env=clean_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "fast" / "textlab_fastpath.json").is_file() and outside(log) == []


def test_the_fast_model_is_distilled_locally_and_found(tiny_sentence_transformer, tmp_path, monkeypatch):
    """The build runs the distillation (model2vec) on a local folder, offline, and writes a
    safetensors sentence-transformers folder the fast path then finds. A tiny random BERT
    stands in for the bundled MiniLM (whose build takes a minute or more on 2 cores; its
    quality is measured in benchmarks/fast_path.py)."""
    from analysis import models
    from analysis.fastpath import build_static_model

    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "bundled_embedding_path", lambda: tiny_sentence_transformer)
    path = fast_model_path()
    assert path == tmp_path / "models" / FAST_MODEL and embeddings.fast_model_ready(path)
    assert list(path.rglob("*.safetensors")) and not list(path.rglob("*.bin")) and not list(path.rglob("*.pkl"))
    meta = json.loads((path / "textlab_fastpath.json").read_text("utf-8"))
    assert meta["source"]["path"] == str(tiny_sentence_transformer) and meta["settings"]["pca_dims"] == 256
    with Embedder(str(path), device="cpu") as fast:
        vectors = fast.encode(TEXTS)
        assert fast.static and vectors.shape[0] == len(TEXTS) and fast.n_split == 0
        assert np.allclose(np.linalg.norm(vectors[[0, 2, 3]], axis=1), 1, atol=1e-5)
    again = build_static_model(tiny_sentence_transformer, path, pca_dims=8)  # a rebuild replaces it in place
    assert json.loads((again / "textlab_fastpath.json").read_text("utf-8"))["dim"] == 8


def test_manifest_counts_the_vectors_of_every_chunk(tiny_fast, monkeypatch):
    """A run embeds chunk by chunk: the manifest's figures are the run's, not the last chunk's."""
    from analysis.tasks import get_task
    from analysis.tasks.execute import MemoryStore, execute as run_chunks

    task = get_task("coding")
    monkeypatch.setattr(task, "chunk_size", 100)
    texts = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)["text"].tolist()
    done = run_chunks(task, texts, MemoryStore(), config=task.Config.from_dict({"codebook": str(CODEBOOK), "fast": True}))
    distinct = len({t for t in texts if t.strip()})
    # Every distinct text at least once (plus the codes' definitions; without a cache a text
    # repeated in another chunk is embedded again); the last chunk alone holds 64 texts.
    assert done.n_items > 300 and done.description["cache"]["computed"] >= distinct


def test_a_fast_model_built_from_another_source_is_built_again(tiny_sentence_transformer, tmp_path, monkeypatch):
    """An upgraded bundled MiniLM makes the fast model stale: it is distilled again, not reused."""
    from analysis import models

    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))
    stale = write_tiny_static(tmp_path / "models" / FAST_MODEL)  # recorded as built from the real MiniLM
    monkeypatch.setattr(models, "bundled_embedding_path", lambda: tiny_sentence_transformer)
    path = fast_model_path()
    meta = json.loads((path / "textlab_fastpath.json").read_text("utf-8"))
    assert path == stale and meta["source"]["path"] == str(tiny_sentence_transformer)

