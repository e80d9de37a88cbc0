"""The ray engine (analysis.engines.ray) on a real local Ray instance: the same rows, columns
and values as the local engine, the manifest's engine entry, resume across engines from the
same checkpoints, and the refusals. One Ray instance (2 CPUs) for the module."""

from __future__ import annotations

import json
import os
import sys

import pandas as pd
import pytest

from analysis.cli import main
from analysis.engines import Engine
from analysis.engines.ray import INSTALL, refuse
from analysis.errors import TextlabError
from analysis.tasks import get_task
from analysis.tasks.execute import MemoryStore, execute
from tests.paths import ROOT, SAMPLE_CSV

CODEBOOK = ROOT / "sample_data" / "policy_codebook.json"
CHUNK = 40  # small chunks, so that a small corpus makes several blocks over two workers


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    # Coding runs on the fast path with a tiny static model (the MiniLM took 30 s here); the
    # variable is set before Ray starts, so its workers see the same models folder.
    from analysis.embeddings import FAST_MODEL
    from tests.test_fastpath import write_tiny_static

    models = tmp_path_factory.mktemp("ray-models")
    write_tiny_static(models / FAST_MODEL)
    old = os.environ.get("TEXTLAB_MODELS")
    os.environ["TEXTLAB_MODELS"] = str(models)
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
    if old is None:
        os.environ.pop("TEXTLAB_MODELS", None)
    else:
        os.environ["TEXTLAB_MODELS"] = old


@pytest.fixture
def corpus(tmp_path):
    """150 rows of the sample survey with one text emptied (empty texts get empty results)."""
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).head(150)
    frame.loc[7, "text"] = ""
    path = tmp_path / "survey.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def small_chunks(monkeypatch):
    for name in ("sentiment", "coding"):
        monkeypatch.setattr(get_task(name), "chunk_size", CHUNK)


def analyze(corpus, out, workspace, *extra):
    return main(["analyze", str(corpus), "-o", str(out), "--id-column", "respondent_id", "--workspace",
                 str(workspace), "--backend", "offline", *extra])


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sentiment", "coding"])
def test_ray_engine_gives_the_local_engines_output(ray_cluster, corpus, small_chunks, tmp_path, capsys, task):
    extra = ["--task", task] + (["--codebook", str(CODEBOOK), "--fast"] if task == "coding" else [])
    assert analyze(corpus, tmp_path / "local.csv", tmp_path / "ws-local", *extra) == 0
    workers = 2 if task == "sentiment" else 1  # two MiniLM workers on two cores: slow to start, nothing new to test
    assert analyze(corpus, tmp_path / "ray.csv", tmp_path / "ws-ray", *extra, "--engine", "ray",
                   "--ray-workers", str(workers)) == 0
    local, ray = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "ray.csv")
    assert list(ray.columns) == list(local.columns) and len(ray) == len(local) == 150
    pd.testing.assert_frame_equal(ray, local, check_exact=False, rtol=1e-5, atol=1e-6)
    assert ray.loc[7].filter(like="sentiment_label" if task == "sentiment" else "code_label").isna().all()

    manifest = json.loads((tmp_path / "ray.manifest.json").read_text())[0]
    local_manifest = json.loads((tmp_path / "local.manifest.json").read_text())[0]
    engine = manifest["engine"]
    assert engine["name"] == "ray" and engine["ray_version"] == ray_cluster.__version__
    assert engine["workers"] == workers and engine["blocks"] == 4 and engine["blocks_computed"] == 4
    assert engine["blocks_from_checkpoints"] == 0
    assert local_manifest["engine"] == {"name": "local"}
    # The predictor's description as the local engine records it.
    for key in ("backend", "model", "model_revision", "method", "codebook_version", "labels", "rows", "columns",
                "parameters", "label_sets"):
        assert manifest.get(key) == local_manifest.get(key), key

    # The engine is not a setting: the finished ray run is reused by the local engine.
    capsys.readouterr()
    assert analyze(corpus, tmp_path / "again.csv", tmp_path / "ws-ray", *extra) == 0
    assert "reusing the finished run" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_cut_off_on_one_engine_resumes_on_the_other(ray_cluster):
    from analysis.engines.ray import execute_ray

    task = get_task("sentiment")
    texts = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)["text"].head(200).tolist()
    texts[3] = "   "
    config = task.Config(backend="offline")
    n = sum(1 for t in texts if t.strip())
    n_chunks = -(-n // CHUNK)
    whole = execute(task, texts, MemoryStore(stored_plan={"chunk_size": CHUNK, "n_items": n}), config=config).result

    def crash_after_one_chunk(store):
        def progress(done, total, rate):
            if store.chunks:  # the driver dies once a chunk is checkpointed
                raise KeyboardInterrupt
        return progress

    # Local, cut off after its first chunk; then Ray computes only the others.
    store = MemoryStore(stored_plan={"chunk_size": CHUNK, "n_items": n})
    with pytest.raises(KeyboardInterrupt):
        execute(task, texts, store, config=config, progress=crash_after_one_chunk(store))
    assert set(store.chunks) == {0}
    done = execute_ray(task, texts, store, config=config, workers=2)
    assert done.engine["blocks_computed"] == n_chunks - 1 and done.engine["blocks_from_checkpoints"] == 1
    assert done.resumed_from == CHUNK and done.n_items == n
    assert done.description["backend"] == "offline"
    pd.testing.assert_frame_equal(done.result, whole, check_exact=False, rtol=1e-9)

    # Ray, cut off once a chunk is saved; then the local engine computes only the rest.
    store = MemoryStore(stored_plan={"chunk_size": CHUNK, "n_items": n})
    with pytest.raises(KeyboardInterrupt):
        execute_ray(task, texts, store, config=config, workers=2, progress=crash_after_one_chunk(store))
    kept = set(store.chunks)
    assert 1 <= len(kept) < n_chunks
    done = execute(task, texts, store, config=config)
    assert done.resumed_from == sum(min(CHUNK, n - i * CHUNK) for i in kept)
    pd.testing.assert_frame_equal(done.result, whole, check_exact=False, rtol=1e-9)

    # Everything checkpointed: nothing computed, the manifest still describes the predictor.
    done = execute_ray(task, texts, store, config=config)
    assert done.engine["blocks_computed"] == 0 and done.engine["blocks_from_checkpoints"] == n_chunks
    assert done.description["backend"] == "offline" and done.resumed_from == n
    pd.testing.assert_frame_equal(done.result, whole, check_exact=False, rtol=1e-9)


def test_topics_and_whole_run_methods_are_refused_with_what_to_do(tmp_path, capsys):
    pytest.importorskip("ray")
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(tmp_path / "t.csv"), "--task", "topics", "--engine", "ray",
                 "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "whole corpus" in err and "--engine local" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ws").exists()  # refused before the corpus is read
    coding = get_task("coding")
    for settings in ({"backend": "llm"}, {"classifier": "setfit", "labels_column": "human_code"}):
        with pytest.raises(TextlabError, match="--engine local"):
            refuse(coding, coding.Config(codebook=None, **settings))


def test_ray_not_installed_is_one_line_saying_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(tmp_path / "s.csv"), "--task", "sentiment", "--engine", "ray",
                 "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and INSTALL in err


def test_ray_options_need_the_ray_engine(tmp_path, capsys):
    assert main(["analyze", str(SAMPLE_CSV), "-o", str(tmp_path / "s.csv"), "--ray-workers", "2",
                 "--workspace", str(tmp_path / "ws")]) == 2
    assert "--engine ray" in capsys.readouterr().err
    with pytest.raises(TextlabError, match="at least 1"):
        Engine("ray", workers=0)
