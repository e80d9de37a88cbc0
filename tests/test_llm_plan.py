"""The size of an LLM run is said before it starts, and its speed is measured in the manifest."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import llm
from analysis.tasks import coding
from analysis.tasks.execute import MemoryStore, execute
from tests.paths import ROOT, SAMPLE_CSV

BOOK = ROOT / "sample_data" / "policy_codebook.json"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_the_planned_prompt_tokens_are_the_tokens_sent_and_the_speed_is_recorded(tiny_lm):
    texts = pd.read_csv(SAMPLE_CSV)["text"].head(9).tolist() + ["", "  "]
    config = coding.CodingConfig.from_dict({"codebook": str(BOOK), "backend": "llm", "model": str(tiny_lm),
                                            "device": "cpu"})
    stages = []
    done = execute(coding.TASK, texts, MemoryStore(), config=config, stage=stages.append)
    plan, usage = done.description["planned"], done.description["usage"]
    assert plan["texts"] == 9 and plan["exact"] is True
    assert plan["prompt_tokens"] == usage["prompt_tokens"]  # counted by the model's own tokenizer
    assert any(f"9 texts: {plan['prompt_tokens']:,} prompt tokens to send" in s for s in stages)
    assert usage["requests"] == 9 and usage["seconds"] > 0
    # seconds is rounded to the millisecond in the manifest
    assert usage["prompt_tokens_per_s"] == pytest.approx(usage["prompt_tokens"] / usage["seconds"], rel=0.01, abs=1)


def test_a_server_count_is_an_estimate_and_says_so():
    counts, exact = llm.ServerLLM.count_tokens(None, ["abcdefgh", "", "x"])
    assert counts == [2, 0, 1] and exact is False


def test_a_prompt_longer_than_the_models_window_is_refused_with_what_to_do(tiny_lm):
    from analysis.errors import TextlabError

    model = llm.LocalLLM(tiny_lm, device="cpu")
    try:
        window = model.model.config.max_position_embeddings
        long = [[{"role": "user", "content": "word " * (window + 10) + "the end of it"}]]
        with pytest.raises(TextlabError, match=f"does not fit the model's window of {window:,} tokens"):
            model.chat(long, llm.GenerationParams(choices=("a", "b")))
        short = model.chat([[{"role": "user", "content": "Short."}]], llm.GenerationParams(choices=("a", "b")))
        assert len(short) == 1
    finally:
        model.close()


def test_a_free_prompt_refuses_explain():
    from analysis.errors import TextlabError
    from analysis.tasks import get_task

    task = get_task("prompt")
    with pytest.raises(TextlabError, match="ask for the reason in the template"):
        task.validate(task.Config.from_dict({"template": "Who is named? {text}", "explain": True}))


def test_an_estimate_before_a_run_measures_a_probe_whose_answers_the_run_reuses(tiny_lm, tmp_path, capsys):
    from analysis.cli import main

    small = tmp_path / "small.csv"
    pd.read_csv(SAMPLE_CSV).head(12).to_csv(small, index=False)
    args = ["analyze", str(small), "-o", str(tmp_path / "out.csv"), "--task", "coding", "--codebook", str(BOOK),
            "--backend", "llm", "--model", str(tiny_lm), "--device", "cpu", "--workspace", str(tmp_path / "ws")]
    assert main(args + ["--estimate"]) == 0
    said = capsys.readouterr().err
    assert "textlab: coding: 12 texts, " in said and " prompt tokens; about " in said and "measured on 3 texts" in said
    assert not (tmp_path / "out.csv").exists()  # an estimate runs nothing
    assert main(args) == 0
    import json

    (run,) = json.loads((tmp_path / "out.manifest.json").read_text())
    assert run["usage"]["cache_hits"] == 3 and run["usage"]["requests"] == 9  # the probe's answers are reused
    from analysis.workspace import Workspace
    from ui.widgets import progress_text

    workspace = Workspace(tmp_path / "ws")
    (info,) = workspace.list_projects()
    (record,) = workspace.project(info.id).runs("coding")
    assert record.tokens_per_text == run["planned"]["prompt_tokens_per_text"] > 100  # for tokens/s while it runs
    record.status, record.docs_per_s = "running", 2.0
    assert f"{2 * record.tokens_per_text:,.0f} prompt tokens/s" in progress_text(record)
    assert main(["analyze", str(small), "-o", str(tmp_path / "x.csv"), "--task", "stats", "--estimate",
                 "--workspace", str(tmp_path / "ws")]) == 2
    assert "use it with --backend llm" in capsys.readouterr().err
