import os
import sys
from pathlib import Path

import pytest

# Fixtures only: constants and helpers that tests import live in plain modules (tests/paths.py,
# tests/tiny_models.py), since conftest is pytest's to load, not an importable module.
_ROOT = Path(__file__).resolve().parent.parent

# No test may reach the network: the hub libraries see offline mode from the start.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
# Pages re-raise unexpected errors instead of showing a short message, so tests see them.
os.environ.setdefault("TEXTLAB_DEBUG", "1")
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests need CUDA: without it they are skipped, so the default run stays green."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
        for item in gpu:
            item.add_marker(skip)


# Tiny models with random weights, built once per test session and shared read-only (a test
# that changes a model folder builds its own with tests.tiny_models).


@pytest.fixture(scope="session")
def tiny_sentence_transformer(tmp_path_factory):
    """A 2-layer sentence-transformers model (max_seq_length 16) with the bundled MiniLM tokenizer."""
    from tests.tiny_models import make_tiny_sentence_transformer

    return make_tiny_sentence_transformer(tmp_path_factory.mktemp("shared-st") / "tiny-st", max_seq_length=16)


@pytest.fixture(scope="session")
def tiny_nli_model(tmp_path_factory):
    """A tiny BERT NLI classifier (entailment, neutral, contradiction)."""
    from tests.tiny_models import make_tiny_nli

    return make_tiny_nli(tmp_path_factory.mktemp("shared-nli") / "nli")


@pytest.fixture(scope="session")
def tiny_classifier_model(tmp_path_factory):
    """A tiny BERT sequence classifier with the labels negative, neutral, positive."""
    from tests.tiny_models import make_tiny_classifier

    return make_tiny_classifier(tmp_path_factory.mktemp("shared-clf") / "clf")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty workspace folder used as TEXTLAB_HOME."""
    folder = tmp_path / "workspace"
    monkeypatch.setenv("TEXTLAB_HOME", str(folder))
    return folder


@pytest.fixture
def small_csv(tmp_path):
    """A small corpus with an empty text, a duplicate, groups and dates."""
    path = tmp_path / "small.csv"
    path.write_text(
        "rid,region,date,answer\n"
        "r1,North,2026-01-05,The buses are late every single morning and nobody seems to care.\n"
        "r2,South,2026-02-11,Rents went up again. We cannot afford to stay in this city much longer.\n"
        "r3,North,2026-03-20,\n"
        "r4,East,2026-04-02,Great to see the new clinic open! Waiting times are finally shorter.\n"
        "r5,South,2026-05-15,Rents went up again. We cannot afford to stay in this city much longer.\n"
        "r6,East,2026-06-30,Energy bills are crazy this winter.\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def shared_tiny_server(tmp_path_factory):
    """One real ``transformers serve`` of a tiny chat model for the session (it takes 15 s
    to start): tests/test_llm_server.py and tests/test_llm_pages.py share it."""
    from analysis import llm
    from tests.test_llm_server import free_port, start_server
    from tests.tiny_models import make_tiny_causal_lm

    folder = tmp_path_factory.mktemp("served")
    model_dir = make_tiny_causal_lm(folder / "tiny-chat")
    port = free_port()
    log = open(folder / "server.log", "w")
    process = start_server(model_dir, port, log)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        llm.wait_for_server(url, timeout=120)
        yield {"url": url, "model": str(model_dir), "process": process, "folder": folder}
    finally:
        process.terminate()
        process.wait(30)
        log.close()
