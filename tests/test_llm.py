"""analysis.llm: where texts may go, the answer cache, constrained choices, log-probabilities."""

from __future__ import annotations

import math

import pytest

from analysis import llm
from analysis.errors import TextlabError


@pytest.mark.parametrize("url, scope", [
    ("http://127.0.0.1:11434/v1", "loopback"),
    ("http://localhost:8000", "loopback"),
    ("http://[::1]:8000/v1", "loopback"),
    ("http://192.168.1.20:8000/v1", "lan"),
    ("http://10.0.0.5:11434", "lan"),
    ("http://169.254.10.1:8000", "lan"),
    ("https://8.8.8.8/v1", "remote"),
])
def test_the_scope_of_a_server_comes_from_its_addresses(url, scope):
    assert llm.server_scope(url) == scope


def test_a_remote_server_needs_an_explicit_opt_in_and_the_url_gets_v1():
    assert llm.check_server_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434/v1"
    assert llm.check_server_url("http://192.168.1.20:8000/v1/") == "http://192.168.1.20:8000/v1"
    with pytest.raises(llm.RemoteServerRefused, match="sends every text"):
        llm.check_server_url("https://8.8.8.8/v1")
    assert llm.check_server_url("https://8.8.8.8/v1", allow_remote=True) == "https://8.8.8.8/v1"
    for bad in ("", "127.0.0.1:8000", "ftp://127.0.0.1/v1"):
        with pytest.raises(TextlabError, match="not a server URL"):
            llm.check_server_url(bad)


def test_the_api_key_comes_from_the_environment_only(monkeypatch):
    for name in llm.API_KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert llm.api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-b")
    monkeypatch.setenv("TEXTLAB_LLM_API_KEY", "sk-a")
    assert llm.api_key() == "sk-a"


def test_answers_are_cached_by_model_conversation_and_parameters(tmp_path):
    cache = llm.AnswerCache(tmp_path / "answers.sqlite")
    conversation = [{"role": "user", "content": "Code this: the buses are late."}]
    params = llm.GenerationParams(choices=("Transport", "Housing"))
    key = llm.answer_key({"model": "m"}, conversation, params.key())
    assert cache.get(key) is None
    cache.put(key, llm.Answer('{"code": "Transport"}', prompt_tokens=40, completion_tokens=6,
                              choice_probs={"Transport": 0.9, "Housing": 0.1}, constrained=True))
    again = llm.AnswerCache(tmp_path / "answers.sqlite")  # another process, later
    got = again.get(key)
    assert got.cached and got.text == '{"code": "Transport"}' and got.choice_probs["Transport"] == 0.9
    other_params = llm.GenerationParams(choices=("Transport", "Housing"), temperature=0.7)
    assert key != llm.answer_key({"model": "m"}, conversation, other_params.key())
    assert key != llm.answer_key({"model": "m2"}, conversation, params.key())
    assert len(again) == 1


def test_the_choice_schema_allows_exactly_the_labels():
    schema = llm.choice_schema(["Economy", "Health"])
    assert schema["properties"]["code"]["enum"] == ["Economy", "Health"] and schema["required"] == ["code"]
    multi = llm.choice_schema(["Economy", "Health"], multi=True)
    assert multi["properties"]["codes"]["items"]["enum"] == ["Economy", "Health"]


def _choice(tokens):
    """A chat-completion choice as the openai client parses it from a server's JSON."""
    from openai.types.chat.chat_completion import Choice

    content = [{"token": t, "logprob": lp, "bytes": None,
                "top_logprobs": [{"token": a, "logprob": alp, "bytes": None} for a, alp in alts]}
               for t, lp, alts in tokens]
    return Choice.model_validate({"index": 0, "finish_reason": "stop", "logprobs": {"content": content},
                                  "message": {"role": "assistant", "content": "".join(t for t, _, _ in tokens)}})


def test_label_probabilities_come_from_the_token_where_the_label_starts():
    json_answer = _choice([('{"', -0.01, []), ("code", -0.01, []), ('":', -0.01, []), (' "', -0.01, []),
                           ("Econ", math.log(0.6), [("Econ", math.log(0.6)), ("Health", math.log(0.3)),
                                                    ("x", math.log(0.1))]),
                           ("omy", -0.01, []), ('"}', -0.01, [])])
    probs = llm._choice_probs(json_answer, ("Economy", "Health", "Housing"))
    assert probs == {"Economy": pytest.approx(0.6667, abs=1e-4), "Health": pytest.approx(0.3333, abs=1e-4),
                     "Housing": 0.0}
    plain = _choice([(" Health", math.log(0.8), [(" Health", math.log(0.8)), (" Economy", math.log(0.2))])])
    assert llm._choice_probs(plain, ("Economy", "Health")) == {"Economy": 0.2, "Health": 0.8}
    shared_prefix = _choice([("Econ", -0.1, [("Econ", -0.1)]), ("omy", -0.1, [])])
    assert llm._choice_probs(shared_prefix, ("Economy", "Economics")) is None  # cannot be split
    no_logprobs = _choice([])
    assert llm._choice_probs(no_logprobs, ("Economy",)) is None


# ---------------------------------------------------------------------- in process


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


CONVERSATIONS = [[{"role": "system", "content": "Code the text."}, {"role": "user", "content": text}]
                 for text in ("The buses are late every morning.", "Rents went up again, we cannot stay.",
                              "ok", "The new clinic shortened waiting times a lot, finally some good news.")]


def test_in_process_choices_are_scored_exactly_and_always_a_label(tiny_lm, tmp_path):
    model = llm.LocalLLM(tiny_lm, device="cpu", batch_size=3, cache=llm.AnswerCache(tmp_path / "a.sqlite"))
    params = llm.GenerationParams(choices=("Transport", "Housing", "Health"))
    answers = model.chat(CONVERSATIONS, params)
    assert len(answers) == 4
    import json

    for answer in answers:
        code = json.loads(answer.text)["code"]
        assert code in params.choices and answer.constrained
        assert sum(answer.choice_probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert max(answer.choice_probs, key=answer.choice_probs.get) == code
    # One at a time gives the same answers as batched and length-sorted (padding changes nothing).
    alone = llm.LocalLLM(tiny_lm, device="cpu", batch_size=1).chat(CONVERSATIONS, params)
    for one, batched in zip(alone, answers):
        assert one.text == batched.text
        assert one.choice_probs == pytest.approx(batched.choice_probs, abs=1e-3)


def test_in_process_generation_is_greedy_reproducible_and_cached(tiny_lm, tmp_path):
    cache = llm.AnswerCache(tmp_path / "a.sqlite")
    model = llm.LocalLLM(tiny_lm, device="cpu", batch_size=2, cache=cache)
    params = llm.GenerationParams(max_tokens=6)
    seen = []
    first = model.chat(CONVERSATIONS, params, progress=seen.append)
    assert seen[-1] == 4 and all(a.completion_tokens <= 6 and not a.cached for a in first)
    again = model.chat(CONVERSATIONS, params)
    assert [a.text for a in again] == [a.text for a in first] and all(a.cached for a in again)
    assert model.usage.requests == 4 and model.usage.cache_hits == 4
    assert model.describe()["backend"] == "llm" and "usage" in model.describe()


def test_a_missing_model_or_one_without_a_chat_template_is_refused(tmp_path, tiny_lm):
    import shutil

    with pytest.raises(TextlabError, match="No model folder"):
        llm.LocalLLM(tmp_path / "missing", device="cpu")
    plain = tmp_path / "plain-lm"
    shutil.copytree(tiny_lm, plain)
    for name in ("chat_template.jinja",):
        (plain / name).unlink(missing_ok=True)
    config = plain / "tokenizer_config.json"
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    with pytest.raises(TextlabError, match="no chat template"):
        llm.LocalLLM(plain, device="cpu")


def test_two_model_folders_of_the_same_name_never_share_cached_answers(tmp_path):
    from tests.tiny_models import make_tiny_causal_lm

    a = make_tiny_causal_lm(tmp_path / "a" / "model", seed=0)
    b = make_tiny_causal_lm(tmp_path / "b" / "model", seed=1)
    assert llm.weights_fingerprint(a) != llm.weights_fingerprint(b)
    assert llm.weights_fingerprint(a) == llm.weights_fingerprint(make_tiny_causal_lm(tmp_path / "c" / "model"))


# ---------------------------------------------------------------------- packed scoring = plain scoring


def _reference_probs(model, tokenizer, conversation, labels, answer=lambda label: label):
    """Each label scored from scratch: the full prompt followed by the label's tokens (those of
    ``answer(label)``: the label itself, or the whole answer text that names it) through a
    plain forward pass (no cache, no packing, no mask), the label's log-probability the sum of
    its tokens' log-probabilities (logits - logsumexp), then a softmax over the labels.

    The labels' sequences go through as one batch padded on the right: in a causal model a
    position never sees the padding after it, so each row is exactly its sequence alone."""
    import torch

    prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
    label_ids = [tokenizer(answer(label), add_special_tokens=False)["input_ids"] for label in labels]
    width = len(prompt) + max(len(ids) for ids in label_ids)
    rows = [prompt + ids + [tokenizer.pad_token_id] * (width - len(prompt) - len(ids)) for ids in label_ids]
    with torch.no_grad():
        logits = model(torch.tensor(rows)).logits[:, len(prompt) - 1:].double()
    logprobs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    scores = [sum(float(logprobs[k, j, token]) for j, token in enumerate(ids)) for k, ids in enumerate(label_ids)]
    probs = torch.tensor(scores, dtype=torch.float64).softmax(0)
    return dict(zip(labels, probs.tolist()))


def test_packed_label_scoring_equals_scoring_each_label_from_scratch(tiny_lm):
    """LocalLLM reads the prompts' shared head once, then each text's tail and every label in
    one packed forward pass with a block mask. The probabilities must be those of scoring each
    label after the whole prompt on its own: for short and long texts, single- and
    multi-token labels, batches that reuse the head and calls that must rebuild it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, local_files_only=True, dtype=torch.float32).eval()
    local = llm.LocalLLM(tiny_lm, device="cpu", batch_size=2)  # no answer cache: every call scores
    texts = ["ok", "The buses are late every morning.",
             "Rents went up again, we cannot stay in this city any longer and the landlord does not care.",
             "words " * 60, "The buses are late every morning and the trains too."]

    def conversations(system, texts):
        return [[{"role": "system", "content": system}, {"role": "user", "content": t}] for t in texts]

    label_sets = [tuple(["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]),  # one token each
                  ("public transport", "health care", "housing market", "climate change")]   # several
    informative = 0  # probabilities strictly between 0.01 and 0.99: where a wrong mask would show

    import json

    def check(convs, labels):
        nonlocal informative
        answers = local.chat(convs, llm.GenerationParams(choices=labels))
        for conversation, answer in zip(convs, answers):
            expected = _reference_probs(model, tokenizer, conversation, labels,
                                        answer=lambda label: json.dumps({"code": label}))
            assert answer.choice_probs == pytest.approx(expected, abs=1.5e-4), conversation[-1]["content"][:40]
            assert json.loads(answer.text)["code"] == max(expected, key=expected.get)
            informative += sum(0.01 < p < 0.99 for p in expected.values())

    for labels in label_sets:
        check(conversations("Code the text.", texts), labels)
    head = local._head[0]
    # Another system message: the kept head no longer fits and is rebuilt.
    check(conversations("Classify the text, please.", texts[:3]), label_sets[0])
    assert local._head[0] != head
    # Texts that share their first words make a head that reaches into the texts; a shorter
    # prompt afterwards no longer holds that head, which must be rebuilt, not reused.
    shared = ["The buses are late every morning and the trains too.", "The buses are late every morning, again."]
    check(conversations("Code the text.", shared), label_sets[0])
    long_head = local._head[0]
    check(conversations("Code the text.", ["The"]), label_sets[0])
    assert len(local._head[0]) < len(long_head)
    # Retries (the conversation, the model's answer and a reminder) share the whole first
    # prompt as their head; that prompt alone afterwards must not be scored from its own end.
    first = conversations("Code the text.", texts[1:2])[0]
    retries = [first + [{"role": "assistant", "content": answer}, {"role": "user", "content": "Only a label."}]
               for answer in ("maybe buses", "something else")]
    check(retries, label_sets[0])
    check([first], label_sets[0])
    # One text at a time, each another: every call stands on its own head.
    for text in texts[:3]:
        check(conversations("Code the text.", [text]), label_sets[1])
    assert informative >= 40  # the comparison is not decided by probabilities of 0 and 1 alone


def test_a_label_that_begins_another_does_not_take_its_probability(tiny_lm):
    """The probability of each label must be that of the answer the model is said to give,
    ``{"code": "<label>"}``: then a label that is the start of another competes with it fairly."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, local_files_only=True, dtype=torch.float32).eval()
    labels = ("Housing", "Housing issues")
    texts = ["ok", "The buses are late every morning.", "Rents went up again, we cannot stay.",
             "The new clinic shortened waiting times a lot.", "Energy bills are crazy this winter.", "words " * 20]
    convs = [[{"role": "system", "content": "Code the text."}, {"role": "user", "content": t}] for t in texts]
    answers = llm.LocalLLM(tiny_lm, device="cpu").chat(convs, llm.GenerationParams(choices=labels))
    expected = [_reference_probs(model, tokenizer, c, labels, answer=lambda label: json.dumps({"code": label}))
                for c in convs]
    assert any(e["Housing issues"] > 0.5 for e in expected)  # the random model prefers the longer label somewhere
    assert any(json.loads(a.text)["code"] == "Housing issues" for a in answers)
    for answer, reference in zip(answers, expected):
        assert answer.choice_probs == pytest.approx(reference, abs=1e-3)
