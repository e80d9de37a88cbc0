"""Tests for analysis.models: registry, offline availability, download errors, loading."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from analysis import models
from analysis.errors import ModelNotAvailable, TextlabError
from analysis.models import (
    BACKENDS,
    DEFAULTS,
    KINDS,
    REGISTRY,
    TASKS,
    ModelSpec,
    bundled_embedding_path,
    download,
    get_spec,
    is_available,
    list_models,
    load_sequence_classifier,
    local_path,
    model_dirs,
    network_allowed,
    require,
    resolved_revision,
)
from tests.tiny_models import make_tiny_classifier

_ENV = ("TEXTLAB_MODELS", "TEXTLAB_HOME", "TEXTLAB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
        "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """An empty Textlab model folder and an empty HF cache: nothing but bundled models."""
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


# --------------------------------------------------------------------------- registry


def test_registry_integrity():
    names = [spec.name for spec in REGISTRY.values()]
    assert len(names) == len(set(names)) and all(REGISTRY[n].name == n for n in names)
    hf_ids = [spec.hf_id.lower() for spec in REGISTRY.values() if spec.hf_id]
    assert len(hf_ids) == len(set(hf_ids))
    for spec in REGISTRY.values():
        assert spec.task in TASKS and spec.kind in KINDS and spec.backend in BACKENDS
        assert spec.license and spec.description and spec.citation
        assert re.fullmatch(r"[a-z0-9-]+", spec.name)
        # A pinned revision is a full commit sha, never a branch name or a short form.
        assert spec.revision is None or re.fullmatch(r"[0-9a-f]{40}", spec.revision)
        if spec.kind == "lexicon":
            assert spec.backend == "offline" and spec.hf_id is None
        else:
            assert spec.hf_id and "/" in spec.hf_id
        if spec.kind in ("sequence-classification", "zero-shot-nli"):
            assert spec.labels
        if spec.kind == "zero-shot-nli":
            assert "entailment" in spec.labels
    for task, choice in DEFAULTS.items():
        assert task in TASKS and set(choice) == {"offline", "transformers"}
        assert all(name in REGISTRY for name in choice.values())


def test_registry_has_the_design_models():
    ids = {spec.hf_id for spec in REGISTRY.values()}
    assert {
        "sentence-transformers/all-MiniLM-L6-v2",
        "cardiffnlp/twitter-roberta-base-sentiment-latest",
        "cardiffnlp/twitter-xlm-roberta-base-sentiment",
        "j-hartmann/emotion-english-distilroberta-base",
        "MoritzLaurer/deberta-v3-base-zeroshot-v2.0",
        "facebook/bart-large-mnli",
        "sshleifer/distilbart-cnn-12-6",
        "facebook/bart-large-cnn",
    } <= ids
    assert {"vader", "nrc"} <= set(REGISTRY)


def test_get_spec_by_name_and_id():
    spec = get_spec("twitter-roberta-sentiment")
    assert spec.hf_id == "cardiffnlp/twitter-roberta-base-sentiment-latest"
    assert get_spec("cardiffnlp/twitter-roberta-base-sentiment-latest") is spec
    assert get_spec("Facebook/BART-large-MNLI") is REGISTRY["bart-large-mnli"]  # Hub ids ignore case
    assert get_spec(spec) is spec
    assert get_spec("all-minilm-l6-v2", task="topics").task == "embedding"  # task does not filter


def test_get_spec_unknown_id_gets_generic_spec():
    spec = get_spec("someone/unknown-model", task="sentiment")
    assert (spec.hf_id, spec.revision, spec.task, spec.kind, spec.backend) == (
        "someone/unknown-model", None, "sentiment", "sequence-classification", "transformers")
    assert get_spec("someone/nli", task="coding").kind == "zero-shot-nli"
    assert get_spec("someone/summ", task="summary").kind == "seq2seq"
    assert get_spec("someone/emb", task="topics").backend == "sentence-transformers"


def test_get_spec_errors():
    with pytest.raises(TextlabError, match="Unknown model"):
        get_spec("not a model")
    with pytest.raises(TextlabError):
        get_spec("")
    with pytest.raises(TextlabError, match="Unknown task"):
        get_spec("vader", task="nonsense")


def test_get_spec_local_folder(tmp_path):
    path = make_tiny_classifier(tmp_path / "my-coder", labels=("a", "b"))
    spec = get_spec(str(path), task="emotion")
    assert spec.path == str(path.resolve()) and spec.hf_id is None
    assert spec.name == "my-coder" and spec.labels == ("a", "b") and spec.task == "emotion"
    assert spec.kind == "sequence-classification" and spec.backend == "transformers"
    nli = make_tiny_classifier(tmp_path / "nli", labels=("entailment", "neutral", "contradiction"))
    assert get_spec(nli).kind == "zero-shot-nli"
    assert get_spec(bundled_embedding_path()).backend == "sentence-transformers"
    assert local_path(spec) == path.resolve()


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize("var,value,expected", [
    (None, None, True),
    ("HF_HUB_OFFLINE", "1", False),
    ("HF_HUB_OFFLINE", "true", False),
    ("HF_HUB_OFFLINE", "0", True),
    ("TRANSFORMERS_OFFLINE", "1", False),
    ("TEXTLAB_OFFLINE", "1", False),
])
def test_network_allowed(offline_env, monkeypatch, var, value, expected):
    if var:
        monkeypatch.setenv(var, value)
    assert network_allowed() is expected


def test_model_dirs(offline_env, monkeypatch):
    assert model_dirs() == [offline_env / "models", offline_env / "hf" / "hub"]
    monkeypatch.delenv("TEXTLAB_MODELS")
    monkeypatch.setenv("TEXTLAB_HOME", str(offline_env / "home"))
    assert model_dirs()[0] == offline_env / "home" / "models"
    monkeypatch.delenv("TEXTLAB_HOME")
    assert str(model_dirs()[0]) == "workspace/models"


# --------------------------------------------------------------------------- availability


def test_local_path_finds_bundled_minilm(offline_env):
    path = local_path(get_spec("all-minilm-l6-v2"))
    assert path == bundled_embedding_path()
    assert (path / "model.safetensors").is_file()
    assert is_available("all-minilm-l6-v2")


def test_lexicons_are_available_from_their_packages(offline_env):
    assert is_available("vader") and is_available("nrc")
    assert download("vader") == local_path("vader")  # nothing to fetch


def test_local_path_finds_model_in_textlab_models(offline_env):
    spec = get_spec("twitter-roberta-sentiment")
    assert local_path(spec) is None
    folder = offline_env / "models" / "cardiffnlp--twitter-roberta-base-sentiment-latest"
    make_tiny_classifier(folder)
    assert local_path(spec) == folder and is_available(spec)


def test_local_path_finds_model_in_hf_cache(offline_env):
    spec = get_spec("emotion-english-distilroberta")
    repo = offline_env / "hf" / "hub" / "models--j-hartmann--emotion-english-distilroberta-base"
    snapshot = repo / "snapshots" / spec.revision
    make_tiny_classifier(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(spec.revision)
    assert local_path(spec) == snapshot
    assert resolved_revision(local_path(spec)) == spec.revision


def test_hf_cache_falls_back_to_main_and_records_it(offline_env):
    # A copy fetched by plain transformers (another commit on `main`) is still used, and
    # resolved_revision reports the commit actually loaded, not the registry pin.
    spec = get_spec("twitter-xlm-roberta-sentiment")
    other = "b" * 40
    repo = offline_env / "hf" / "hub" / "models--cardiffnlp--twitter-xlm-roberta-base-sentiment"
    make_tiny_classifier(repo / "snapshots" / other)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(other)
    path = local_path(spec)
    assert path == repo / "snapshots" / other
    assert resolved_revision(path) == other


def test_pickle_only_folder_is_not_available(offline_env):
    spec = get_spec("twitter-roberta-sentiment")
    folder = offline_env / "models" / "cardiffnlp--twitter-roberta-base-sentiment-latest"
    make_tiny_classifier(folder)
    for weights in folder.glob("*.safetensors"):
        weights.rename(folder / "pytorch_model.bin")
    assert not is_available(spec)
    with pytest.raises(ModelNotAvailable, match="safetensors"):
        require(spec)


def test_absent_model_is_not_available(offline_env):
    spec = get_spec("bart-large-mnli")
    assert not is_available(spec)
    assert local_path(spec) is None
    rows = {row["name"]: row for row in list_models()}
    assert rows["bart-large-mnli"]["available"] is False
    assert rows["all-minilm-l6-v2"]["available"] is True
    assert set(rows["vader"]) >= {"name", "task", "backend", "hf_id", "revision", "available", "license"}


def test_require_message_says_how_to_get_it(offline_env):
    with pytest.raises(ModelNotAvailable) as info:
        require("deberta-v3-zeroshot")
    message = str(info.value)
    assert "textlab models download deberta-v3-zeroshot" in message
    assert "MoritzLaurer/deberta-v3-base-zeroshot-v2.0" in message and "TEXTLAB_MODELS" in message
    assert require("all-minilm-l6-v2") == bundled_embedding_path()


def test_require_local_folder_without_weights(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match="config.json"):
        require(str(tmp_path / "empty"))


# --------------------------------------------------------------------------- download


def test_download_with_network_disabled_is_clear_error(offline_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TextlabError, match="switched off") as info:
        download("twitter-roberta-sentiment")
    assert "\n" not in str(info.value)
    assert not (offline_env / "models").exists()  # nothing half-written


def test_download_failure_is_textlab_error(offline_env, monkeypatch):
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise OSError("Failed to resolve 'huggingface.co'\nsecond line")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(TextlabError, match="Could not download 'bart-large-cnn'.*resolve") as info:
        download("bart-large-cnn", to=offline_env / "dl")
    assert "second line" not in str(info.value)


def test_download_passes_pin_and_patterns(offline_env, monkeypatch):
    import huggingface_hub

    calls = {}

    def fake_snapshot_download(repo_id, **kwargs):
        calls.update(kwargs, repo_id=repo_id)
        make_tiny_classifier(kwargs["local_dir"])
        return str(kwargs["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    folder = download("twitter-roberta-sentiment", to=offline_env / "dl")
    spec = REGISTRY["twitter-roberta-sentiment"]
    assert folder == offline_env / "dl" / "cardiffnlp--twitter-roberta-base-sentiment-latest"
    assert calls["repo_id"] == spec.hf_id and calls["revision"] == spec.revision
    patterns = calls["allow_patterns"]
    assert "*.safetensors" in patterns and "*.json" in patterns
    assert not any(p.endswith((".bin", ".pt", ".pth", ".h5", ".ckpt", ".msgpack")) for p in patterns)
    assert json.loads((folder / "textlab_source.json").read_text())["revision"] == spec.revision
    assert resolved_revision(folder) == spec.revision


def test_download_without_safetensors_is_refused(offline_env, monkeypatch):
    import huggingface_hub

    def pickles_only(repo_id, **kwargs):
        make_tiny_classifier(kwargs["local_dir"])
        for weights in kwargs["local_dir"].glob("*.safetensors"):
            weights.unlink()
        return str(kwargs["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", pickles_only)
    with pytest.raises(TextlabError, match="no safetensors"):
        download("distilbart-cnn", to=offline_env / "dl")


# --------------------------------------------------------------------------- revisions


def test_resolved_revision(tmp_path):
    sha = "a" * 40
    plain = make_tiny_classifier(tmp_path / "plain")
    assert resolved_revision(plain) is None
    assert resolved_revision(bundled_embedding_path()) is None
    meta = plain / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text(f"{sha}\netag\n0\n")
    assert resolved_revision(plain) == sha  # huggingface_hub local_dir download record


# --------------------------------------------------------------------------- loading


def test_load_sequence_classifier_from_path(tmp_path):
    path = make_tiny_classifier(tmp_path / "m", arch="roberta")
    tokenizer, model = load_sequence_classifier(path, device="cpu", dtype="float32")
    assert tokenizer.is_fast
    assert not model.training
    param = next(model.parameters())
    assert param.device.type == "cpu" and param.dtype == torch.float32
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    _, half = load_sequence_classifier(str(path), device="cpu", dtype="bfloat16")
    assert next(half.parameters()).dtype == torch.bfloat16


def test_load_sequence_classifier_from_textlab_models(offline_env):
    make_tiny_classifier(offline_env / "models" / "j-hartmann--emotion-english-distilroberta-base",
                         labels=REGISTRY["emotion-english-distilroberta"].labels)
    _, model = load_sequence_classifier("emotion-english-distilroberta", device="cpu")
    assert model.config.num_labels == 7


def test_load_refuses_base_model_without_head(tmp_path, tiny_classifier_model):
    from transformers import AutoModel

    path = tiny_classifier_model
    base = tmp_path / "base"
    AutoModel.from_pretrained(path).save_pretrained(base, safe_serialization=True)
    shutil.copy(path / "tokenizer.json", base)
    shutil.copy(path / "tokenizer_config.json", base)
    with pytest.raises(TextlabError, match="classification head"):
        load_sequence_classifier(base, device="cpu")


def test_load_refuses_wrong_kind_and_missing(offline_env):
    with pytest.raises(TextlabError, match="not a sequence classifier"):
        load_sequence_classifier("distilbart-cnn", device="cpu")
    with pytest.raises(ModelNotAvailable, match="textlab models download"):
        load_sequence_classifier("twitter-roberta-sentiment", device="cpu")


def test_spec_is_frozen():
    with pytest.raises(Exception):
        REGISTRY["vader"].name = "x"  # type: ignore[misc]
    assert isinstance(REGISTRY["vader"], ModelSpec)


def test_models_module_does_not_import_streamlit():
    source = open(models.__file__, encoding="utf-8").read()
    assert "streamlit" not in source and "trust_remote_code=True" not in source
