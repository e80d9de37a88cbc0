"""The free prompt task through the command line (--task prompt --prompt-file F --backend llm).

The model is the tiny random-weight causal LM (its answers are gibberish). Checked: every
row gets its answer in ``prompt_answer`` (empty texts none), a ``{region}`` field is filled
from each row's own metadata (the answers equal those of the model asked directly with the
rendered prompt), ``--stop`` cuts each answer before the stop string, the manifest keeps the
template, and template mistakes are one-line errors before anything runs.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import llm
from analysis.cli import main
from analysis.tasks.prompt import DEFAULT_SYSTEM

TEMPLATE = ("Where does this answer come from? Region: {region}\nAnswer: {text}\n"
            "Reply with one word, as in {{\"word\": ...}}.")
ROWS = [("r1", "North", "The buses are late every single morning and nobody seems to care."),
        ("r2", "South", "Rents went up again. We cannot afford to stay in this city much longer."),
        ("r3", "North", ""),
        ("r4", "East", "Great to see the new clinic open! Waiting times are finally shorter."),
        ("r5", "West", "Rents went up again. We cannot afford to stay in this city much longer."),
        ("r6", "East", "Energy bills are crazy this winter.")]
MAX_TOKENS = 10


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tests.tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


@pytest.fixture
def survey(tmp_path):
    path = tmp_path / "survey.csv"
    pd.DataFrame(ROWS, columns=["rid", "region", "answer"]).to_csv(path, index=False)
    return path


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def analyze(survey, out, prompt_file, tiny_lm, workspace, *extra):
    return main(["analyze", str(survey), "-o", str(out), "--task", "prompt", "--prompt-file", str(prompt_file),
                 "--backend", "llm", "--model", str(tiny_lm), "--device", "cpu", "--workspace", str(workspace),
                 "--llm-max-tokens", str(MAX_TOKENS), *extra])


def direct_answers(tiny_lm, stop: tuple[str, ...] = ()) -> list[str]:
    """The model asked directly, with the template rendered by hand for each non-empty row."""
    model = llm.LocalLLM(tiny_lm, device="cpu")
    conversations = [[{"role": "system", "content": DEFAULT_SYSTEM},
                      {"role": "user", "content": TEMPLATE.replace("{region}", region).replace("{text}", text)
                                                          .replace("{{", "{").replace("}}", "}")}]
                     for _, region, text in ROWS if text]
    answers = model.chat(conversations, llm.GenerationParams(max_tokens=MAX_TOKENS, stop=stop))
    model.close()
    return [a.text for a in answers]


def test_the_prompt_task_answers_every_row_with_its_metadata_and_cuts_at_the_stop(tiny_lm, survey, tmp_path,
                                                                                   capsys):
    prompt_file = write(tmp_path / "prompt.txt", TEMPLATE)
    out = tmp_path / "answers.csv"
    assert analyze(survey, out, prompt_file, tiny_lm, tmp_path / "ws") == 0, capsys.readouterr().err
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == len(ROWS) and table["rid"].tolist() == [r[0] for r in ROWS]
    filled = table[table["answer"] != ""]
    assert (filled["prompt_answer"] != "").all()             # every row with a text has an answer
    assert table.loc[table["answer"] == "", "prompt_answer"].tolist() == [""]  # the empty one has none
    # {region} was filled from each row: the answers are those of the prompts rendered by hand.
    free = direct_answers(tiny_lm)
    assert filled["prompt_answer"].tolist() == free
    manifest = json.loads(out.with_name("answers.manifest.json").read_text())[0]
    assert manifest["task"] == "prompt" and manifest["prompt"]["user"] == TEMPLATE
    assert manifest["template_fields"] == ["text", "region"]
    assert manifest["rows"]["empty_answer"] == 0

    # A stop string the model writes in the middle of an answer: every answer ends before it.
    words = [w for answer in free for w in answer.split()[1:-1] if len(w) > 2]
    stop = max(words, key=lambda w: sum(w in answer for answer in free))
    assert any(stop in answer for answer in free)
    stopped_out = tmp_path / "stopped.csv"
    assert analyze(survey, stopped_out, prompt_file, tiny_lm, tmp_path / "ws", "--stop", stop) == 0
    stopped = pd.read_csv(stopped_out, keep_default_na=False)
    assert len(stopped) == len(ROWS)
    answers = stopped.loc[stopped["answer"] != "", "prompt_answer"].tolist()
    assert all(stop not in answer for answer in answers)
    assert answers == [answer.split(stop)[0].strip() for answer in free]  # cut there, the same before it
    manifest = json.loads(stopped_out.with_name("stopped.manifest.json").read_text())[0]
    assert manifest["parameters_generation"]["stop"] == [stop]
    assert manifest["rows"]["empty_answer"] == sum(not a for a in answers)


def nothing_ran(workspace) -> bool:
    """No run was made (and so no model loaded): the workspace holds no run of any project."""
    from analysis.workspace import Workspace

    return not workspace.exists() or not Workspace(workspace).runs_with_status(
        "queued", "running", "interrupted", "failed", "done", "cancelled")


@pytest.mark.parametrize("template, message", [
    ("Which region? {region}", "put {text} in it"),
    ("Text: {text} and an unclosed { brace", "cannot be read"),
    ("Text: {text!r}", "cannot fill"),
    ("Text: {text:>40}", "cannot fill"),
])
def test_a_template_mistake_is_one_line_before_anything_runs(tiny_lm, survey, tmp_path, capsys, template, message):
    prompt_file = write(tmp_path / "prompt.txt", template)
    out = tmp_path / "x.csv"
    assert analyze(survey, out, prompt_file, tiny_lm, tmp_path / "ws") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("textlab: error:") and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and nothing_ran(tmp_path / "ws")


def test_a_missing_prompt_file_is_one_line(tiny_lm, survey, tmp_path, capsys):
    assert analyze(survey, tmp_path / "x.csv", tmp_path / "missing.txt", tiny_lm, tmp_path / "ws") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("textlab: error: Cannot read the prompt file") and len(err.splitlines()) == 1
    assert nothing_ran(tmp_path / "ws")


def test_a_field_the_corpus_lacks_is_a_clear_error_before_anything_runs(tiny_lm, survey, tmp_path, capsys):
    prompt_file = write(tmp_path / "prompt.txt", "Region {region}, town {town}: {text}")
    out = tmp_path / "x.csv"
    assert analyze(survey, out, prompt_file, tiny_lm, tmp_path / "ws") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("textlab: error:")
    assert "{town}" in err and "the corpus does not have" in err and "region" in err  # names it, lists columns
    assert "Unexpected" not in err and "Loading" not in capsys.readouterr().err
    assert not out.exists() and nothing_ran(tmp_path / "ws")
