"""Prompt stability of LLM coding: alpha between runs, sampled repeats, paraphrases, manifest."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import krippendorff
import numpy as np
import pandas as pd
import pytest

from analysis import llm
from analysis.errors import TextlabError
from analysis.tasks import coding
from analysis.tasks.coding.stability import (BUILTIN_PARAPHRASES, alpha_with_interval, runs_frame, sample_rows,
                                             summary_frame, verdict)
from analysis.tasks.execute import MemoryStore, execute
from tests.paths import ROOT, SAMPLE_CSV

BOOK = ROOT / "sample_data" / "policy_codebook.json"
LABELS = ["Housing", "Transport", "Health care"]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_alpha_between_runs_is_the_krippendorff_value_with_an_interval_around_it():
    rng = np.random.default_rng(3)
    runs = [[LABELS[k] for k in rng.integers(0, 3, 40)] for _ in range(3)]
    runs[1][:25] = runs[0][:25]  # some agreement
    runs[2][5] = None            # an unparsed answer is missing, not a code
    out = alpha_with_interval(runs, LABELS, multi=False, n_boot=300)
    data = np.array([[np.nan if c is None else LABELS.index(c) for c in run] for run in runs], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert out["alpha"] == pytest.approx(expected, abs=1e-4)
    assert out["ci_low"] <= out["alpha"] <= out["ci_high"] and out["ci_high"] - out["ci_low"] > 0.01
    assert out["n_texts"] == 40 and out["n_complete"] == 39 and out["runs"] == 3
    same = alpha_with_interval([runs[0], runs[0]], LABELS, multi=False, n_boot=50)
    assert same["alpha"] == 1.0 and same["agreement"] == 1.0
    one_code = alpha_with_interval([["Housing"] * 5, ["Housing"] * 5], LABELS, multi=False, n_boot=20)
    assert one_code["alpha"] is None and one_code["agreement"] == 1.0 and "undefined" in verdict(one_code["alpha"])
    assert verdict(0.85).startswith("stable") and verdict(0.7).startswith("tentative") and verdict(0.2).startswith("unstable")
    assert "despite high raw agreement" in verdict(0.0, 0.92) and "despite" not in verdict(0.2, 0.5)


def test_multi_label_alpha_is_the_mean_of_each_codes_binary_alpha():
    runs = [["Housing;Transport", "", "Health care", "Housing"], ["Housing", "", "Health care", "Housing;Health care"]]
    out = alpha_with_interval(runs, LABELS, multi=True, n_boot=50)
    values = []
    for label in LABELS:
        data = np.array([[float(label in c.split(";")) for c in run] for run in runs])
        if len(np.unique(data)) > 1:
            values.append(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    assert out["alpha"] == pytest.approx(float(np.mean(values)), abs=1e-4)


def test_the_sample_is_seeded_skips_empty_texts_and_keeps_corpus_order():
    texts = ["a", "", "b", None, "c", "d", "  ", "e"]
    rows = sample_rows(texts, 3, seed=1)
    assert rows == sorted(rows) and len(rows) == 3 and all(texts[i] and texts[i].strip() for i in rows)
    assert sample_rows(texts, 3, seed=1) == rows
    assert sample_rows(texts, 50, seed=0) == [0, 2, 4, 5, 7]
    with pytest.raises(TextlabError, match="every text is empty"):
        sample_rows(["", None], 3)


def test_in_process_sampling_follows_the_label_distribution_and_is_reproducible(tiny_lm):
    model = llm.LocalLLM(tiny_lm, device="cpu")
    try:
        conversations = [[{"role": "user", "content": f"Text number {k}: which code?"}] for k in range(24)]
        greedy = model.chat(conversations, llm.GenerationParams(choices=tuple(LABELS)))
        hot = llm.GenerationParams(choices=tuple(LABELS), temperature=5.0, seed=7)
        drawn = model.chat(conversations, hot)
        assert [a.text for a in model.chat(conversations, hot)] == [a.text for a in drawn]  # same seed, same draws
        other = model.chat(conversations, llm.GenerationParams(choices=tuple(LABELS), temperature=5.0, seed=8))
        picked = [json.loads(a.text)["code"] for a in drawn + other]
        assert set(picked) <= set(LABELS)
        # A random tiny model spreads its probability: at a high temperature the draws differ
        # from the most probable label for some texts, at temperature 0 never.
        assert any(a.text != g.text for a, g in zip(drawn + other, greedy + greedy))
        for answer in greedy:
            assert json.loads(answer.text)["code"] == max(answer.choice_probs, key=answer.choice_probs.get)
        # One text's draw does not depend on the batch it is in.
        alone = model.chat(conversations[5:6], hot)
        assert alone[0].text == drawn[5].text
    finally:
        model.close()


def test_a_coding_run_with_the_check_reports_both_alphas_in_its_manifest(tiny_lm):
    texts = pd.read_csv(SAMPLE_CSV)["text"].head(14).tolist() + [""]
    config = coding.CodingConfig.from_dict({"codebook": str(BOOK), "backend": "llm", "model": str(tiny_lm),
                                            "device": "cpu", "stability_sample": 6, "stability_repeats": 2,
                                            "stability_temperature": 1.0})
    stages = []
    done = execute(coding.TASK, texts, MemoryStore(), config=config, stage=stages.append)
    report = done.description["prompt_stability"]
    assert report["n_texts"] == 6 and len(report["rows"]) == 6 and 14 not in report["rows"]
    assert set(report["runs"]) == {"repeat_1", "repeat_2", "original"} | {f"paraphrase_{k + 1}" for k in range(4)}
    assert list(report["prompts"].values())[1:] == list(BUILTIN_PARAPHRASES[False])
    for part in ("intra_prompt", "inter_prompt"):
        assert report[part]["runs"] == (2 if part == "intra_prompt" else 5) and report[part]["n_texts"] == 6
        alpha = report[part]["alpha"]
        assert alpha is None or -1 <= alpha <= 1
    # The temperature-0 run with the original instruction is the coding run itself.
    assert report["runs"]["original"] == [done.result["code_label"].iloc[i] for i in report["rows"]]
    assert any("Prompt stability" in s for s in stages)
    table = summary_frame(report)
    assert list(table["check"].str.split(" ").str[0]) == ["same", "paraphrased"]
    assert runs_frame(report, texts)["text"].isin(texts).all()


def test_a_paraphrase_file_is_read_into_the_run_and_the_cli_writes_the_report(tiny_lm, tmp_path):
    small = tmp_path / "small.csv"
    pd.read_csv(SAMPLE_CSV).head(8).to_csv(small, index=False)
    wordings = tmp_path / "paraphrases.txt"
    wordings.write_text("Say which code fits.\n\nName the best code for this answer.\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "analyze", str(small), "-o", str(out), "--task", "coding",
         "--codebook", str(BOOK), "--backend", "llm", "--model", str(tiny_lm), "--device", "cpu",
         "--stability", "5", "--stability-repeats", "0", "--paraphrase-file", str(wordings),
         "--workspace", str(tmp_path / "ws")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    run = next(r for r in manifest if r["task"] == "coding")
    report = run["prompt_stability"]
    assert report["prompts"] == {"original": "Choose the one code that fits the text best.",
                                 "paraphrase_1": "Say which code fits.",
                                 "paraphrase_2": "Name the best code for this answer."}
    assert report["intra_prompt"] is None and "Intra-prompt check skipped" in report["notes"][0]
    assert run["parameters"]["paraphrases"] == ["Say which code fits.", "Name the best code for this answer."]


@pytest.mark.parametrize("settings, message", [
    ({"backend": "offline", "model": None, "stability_sample": 10}, "needs zero-shot coding with --backend llm"),
    ({"backend": "llm", "stability_sample": 1}, "at least 2 texts"),
    ({"backend": "llm", "stability_sample": 10, "stability_temperature": 3.0}, "between 0 and 2"),
    ({"backend": "llm", "stability_sample": 10, "paraphrases": [], "stability_repeats": 0}, "nothing to compare"),
    ({"backend": "llm", "stability_sample": -1}, "whole number"),
    ({"backend": "llm", "stability_sample": 5, "paraphrases": "/no/such/file.txt"}, "Cannot read the paraphrase file"),
])
def test_stability_settings_that_cannot_work_are_refused_before_a_run(tiny_lm, settings, message):
    with pytest.raises(TextlabError, match=message):
        config = coding.CodingConfig.from_dict({"codebook": str(BOOK), "model": str(tiny_lm), **settings})
        coding.TASK.validate(config)


def test_undefined_alpha_is_none_not_nan_in_the_json_report():
    out = alpha_with_interval([["Housing"] * 3, ["Housing"] * 3], LABELS, multi=False, n_boot=10)
    assert json.loads(json.dumps(out))["alpha"] is None and not any(
        isinstance(v, float) and math.isnan(v) for v in out.values())
