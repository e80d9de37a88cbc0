"""models.POOL: a model is loaded once per server and reused by every run; a model retrained
into the same folder is loaded again; the least recently used model goes when the pool is full."""

import os
import time

import pytest

from analysis import models
from analysis.runner import release_model
from tests.tiny_models import make_tiny_classifier


@pytest.fixture
def pool(monkeypatch):
    fresh = models.ModelPool()
    monkeypatch.setattr(models, "POOL", fresh)
    return fresh


def test_a_model_is_loaded_once_and_reused_and_a_retrained_one_is_loaded_again(pool, tmp_path):
    folder = make_tiny_classifier(tmp_path / "clf")
    tok1, net1 = models.load_sequence_classifier(str(folder), device="cpu")
    release_model(net1)  # what a finished run does: the pool keeps it
    tok2, net2 = models.load_sequence_classifier(str(folder), device="cpu")
    assert net2 is net1 and pool.loads == 1 and pool.hits == 1
    assert pool.holds(net1) and pool.summary()[0]["model"] == str(folder)
    time.sleep(0.01)
    make_tiny_classifier(folder, seed=1)  # retrained into the same folder
    os.utime(folder / "model.safetensors")
    _, net3 = models.load_sequence_classifier(str(folder), device="cpu")
    assert net3 is not net1 and pool.loads == 2


def test_the_least_recently_used_model_goes_when_the_pool_is_over_budget(pool, tmp_path, monkeypatch):
    a, b = make_tiny_classifier(tmp_path / "a"), make_tiny_classifier(tmp_path / "b", seed=1)
    _, net_a = models.load_sequence_classifier(str(a), device="cpu")
    size = pool.summary()[0]["gib"] * 2**30
    monkeypatch.setenv("TEXTLAB_MODEL_POOL_GB", str(1.5 * size / 2**30))  # room for one
    _, net_b = models.load_sequence_classifier(str(b), device="cpu")
    assert [m["model"] for m in pool.summary()] == [str(b)] and pool.evictions == 1
    assert not pool.holds(net_a) and pool.holds(net_b)
    monkeypatch.setenv("TEXTLAB_MODEL_POOL_GB", "0")  # off: nothing kept
    _, net_a2 = models.load_sequence_classifier(str(a), device="cpu")
    assert not pool.holds(net_a2)
