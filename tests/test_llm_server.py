"""The OpenAI-compatible server backend against a real server process on 127.0.0.1.

The server is ``transformers serve`` (the ``transformers[serving]`` extra) with a tiny
Llama that the test builds; nothing is mocked. The model's answers are gibberish: what is
checked is the protocol, order, caching and the messages when something is wrong.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from analysis import llm
from tests.tiny_models import make_tiny_causal_lm

pytestmark = pytest.mark.slow

pytest.importorskip("fastapi", reason="needs transformers[serving] (pip install -e '.[test]')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir, port, log):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir), "--host", "127.0.0.1",
         "--port", str(port), "--device", "cpu"],
        env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def server(shared_tiny_server):
    return shared_tiny_server


CONVERSATIONS = [[{"role": "user", "content": f"Code text number {i}: the buses are late again."}] for i in range(6)]


def test_the_server_lists_its_model_and_a_wrong_name_says_what_it_has(server):
    backend = llm.ServerLLM(server["url"], server["model"])
    assert server["model"] in [m["id"] for m in backend.models()]
    assert backend.describe()["server_scope"] == "loopback" and "key" not in str(backend.describe()).lower()
    with pytest.raises(llm.ServerUnavailable, match="has no model 'no-such-model'.*It lists"):
        llm.ServerLLM(server["url"], "no-such-model")


def test_answers_come_back_in_order_concurrently_and_a_rerun_is_served_from_the_cache(server, tmp_path):
    cache = llm.AnswerCache(tmp_path / "answers.sqlite")
    backend = llm.ServerLLM(server["url"], server["model"], concurrency=3, cache=cache)
    params = llm.GenerationParams(max_tokens=4, logprobs=False)
    seen = []
    first = backend.chat(CONVERSATIONS, params, progress=seen.append)
    assert len(first) == 6 and sorted(seen) == list(range(1, 7))
    assert all(a.text and a.completion_tokens and not a.cached for a in first)
    one_by_one = llm.ServerLLM(server["url"], server["model"], concurrency=1).chat(CONVERSATIONS, params)
    assert [a.text for a in one_by_one] == [a.text for a in first]  # greedy: same answers, same order
    again = llm.ServerLLM(server["url"], server["model"], cache=llm.AnswerCache(tmp_path / "answers.sqlite"))
    repeated = again.chat(CONVERSATIONS, params)
    assert [a.text for a in repeated] == [a.text for a in first]
    assert again.usage.requests == 0 and again.usage.cache_hits == 6


def test_a_server_that_is_down_gets_a_clear_message(tmp_path):
    port = free_port()
    with pytest.raises(llm.ServerUnavailable, match="No model server answers at http://127.0.0.1"):
        llm.ServerLLM(f"http://127.0.0.1:{port}/v1", "any", max_retries=0, timeout=5)


def test_a_server_that_dies_mid_run_keeps_the_answers_already_received(tmp_path):
    model_dir = make_tiny_causal_lm(tmp_path / "tiny-chat")
    port = free_port()
    with open(tmp_path / "server.log", "w") as log:
        process = start_server(model_dir, port, log)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            llm.wait_for_server(url, timeout=120)
            cache = llm.AnswerCache(tmp_path / "answers.sqlite")
            backend = llm.ServerLLM(url, str(model_dir), concurrency=1, cache=cache, max_retries=0, timeout=10)
            params = llm.GenerationParams(max_tokens=3, logprobs=False)
            backend.chat(CONVERSATIONS[:2], params)
        finally:
            process.kill()
            process.wait(30)
        with pytest.raises(llm.ServerUnavailable, match="stopped answering.*kept"):
            backend.chat(CONVERSATIONS, params)
        assert len(cache) == 2  # what arrived before the server died is on disk


def test_coding_through_a_server_never_guesses_a_code_from_an_unusable_answer(server):
    """transformers serve ignores JSON schemas, and the tiny model answers gibberish: every text
    must come back uncoded (and counted), none with an invented code."""
    from analysis.tasks import coding
    from analysis.tasks.execute import MemoryStore, execute
    from tests.paths import ROOT

    texts = ["The buses are late.", "", "Rents are too high."]
    config = coding.CodingConfig.from_dict({
        "codebook": str(ROOT / "sample_data" / "policy_codebook.json"), "backend": "llm",
        "llm_url": server["url"], "llm_model": server["model"], "llm_max_tokens": 4})
    done = execute(coding.TASK, texts, MemoryStore(), config=config)
    assert done.result["code_label"].isna().all()
    assert done.row_flags["unparsed"] == 2
    assert done.description["backend"] == "llm" and done.description["retried_answers"] == 2
    assert done.description["label_probabilities"].startswith("absent")


def test_sentiment_and_emotion_through_a_server_keep_every_row_and_never_guess(server):
    """The llm backend of sentiment and emotion against the real server: one row per input row,
    the same label and score columns as in process (probabilities only where the server sends
    log-probabilities, which transformers serve does not), explanations when asked for, and
    the tiny model's gibberish left unrated and counted, never turned into a label."""
    from analysis.tasks import emotion, sentiment
    from analysis.tasks.emotion import LLM_EMOTIONS
    from analysis.tasks.execute import MemoryStore, execute

    texts = ["The buses are late.", "", "Rents are too high.", None]
    texts = ["" if t is None else t for t in texts]
    base = {"backend": "llm", "llm_url": server["url"], "llm_model": server["model"], "llm_max_tokens": 4}
    for task, labels in ((sentiment.TASK, ["negative", "neutral", "positive"]), (emotion.TASK, list(LLM_EMOTIONS))):
        for explain in (False, True):
            config = task.Config.from_dict({**base, "explain": explain})
            done = execute(task, texts, MemoryStore(), config=config)
            out = done.result.drop(columns="doc_id")
            assert len(out) == len(texts)
            label = f"{task.name}_label"
            assert out.columns[0] == label
            assert (f"{task.name}_explanation" in out) == explain
            assert all(v is None or pd.isna(v) or v in labels for v in out[label])
            assert out.iloc[[1, 3]].isna().all().all()  # empty texts: empty results
            # Every text with an answer that names no label is counted, none is guessed.
            assert done.row_flags["unparsed"] == 2 - out[label].iloc[[0, 2]].notna().sum()
            assert done.description["backend"] == "llm" and done.description["server"] == server["url"]
            if task is sentiment.TASK:
                assert "sentiment_score" in out
                assert out["sentiment_score"].dropna().between(-1, 1).all()
                assert out["sentiment_score"].isna().equals(out[label].isna())
