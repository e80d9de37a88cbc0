"""Tasks describe themselves (issue 12, item 4): the command line's options come from the
Config settings, and the column pickers find result columns through the Task declarations."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pandas as pd
import pytest

from analysis.cli import _task_config, build_parser, main, task_flags
from analysis.tasks import available_tasks, column_task, get_task, label_columns, register, unregister
from analysis.tasks.base import BaseConfig, Predictor, Task, setting
from tests.paths import ROOT


@dataclasses.dataclass
class EchoConfig(BaseConfig):
    backend: str = "offline"
    shout: bool = setting(False, help="upper-case the echo", flag="--shout")
    echo_words: int | None = setting(None, help="words of each text to echo back", flag="--echo-words",
                                     metavar="N")
    prefix: str = setting("", help="put before each echo (no flag: not on the command line)")


class EchoPredictor(Predictor):
    def __init__(self, config: EchoConfig):
        self.config = config

    def predict(self, texts, progress=None):
        words = [t.split()[: self.config.echo_words] for t in texts]
        echoes = [self.config.prefix + " ".join(w) for w in words]
        return pd.DataFrame({"echo_label": [e.upper() if self.config.shout else e for e in echoes],
                             "echo_len_words": [len(w) for w in words]})

    def describe(self):
        return {"backend": "offline", "model": "echo"}


class EchoTask(Task):
    name = "echo"
    title = "Echo"
    description = "Each text back (a test task)."
    Config = EchoConfig
    columns = ("echo_label",)
    column_prefixes = ("echo_len_",)
    label_columns = ("echo_label",)

    def load(self, config, context=None):
        return EchoPredictor(config)


@pytest.fixture
def echo_task():
    register(EchoTask())
    yield get_task("echo")
    unregister("echo")
    assert "echo" not in available_tasks()


def test_setting_carries_help_and_flag_and_settings_lists_them():
    fields = {f.name: f for f in dataclasses.fields(EchoConfig)}
    assert fields["shout"].metadata["help"] == "upper-case the echo" and fields["shout"].metadata["flag"] == "--shout"
    listed = {s.name: s for s in EchoConfig.settings()}
    assert list(listed) == ["backend", "model", "device", "batch_size", "seed", "shout", "echo_words", "prefix"]
    assert listed["echo_words"].type == int | None and listed["echo_words"].value_type is int
    assert listed["echo_words"].default is None and listed["prefix"].flag is None
    # An override of the default only keeps the help and flag of BaseConfig's field.
    assert listed["backend"].default == "offline" and listed["backend"].flag == "--backend" and listed["backend"].help
    with pytest.raises(ValueError, match="help"):
        setting(1, help=" ")
    with pytest.raises(ValueError, match="long option"):
        setting(1, help="x", flag="-x")


def test_a_flag_added_to_a_config_appears_in_analyze_help_in_its_tasks_group(echo_task, capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    out = capsys.readouterr().out
    group = out[out.index("--task echo (Echo):"):]
    assert "--shout, --no-shout" in group and "upper-case the echo" in group
    assert "--echo-words N" in group and "words of each text to echo back" in group
    assert "--prefix" not in out  # no flag: not an option
    assert "--n-topics N" in out[out.index("--task topics (Topics):"):]
    assert "--backend" in out[out.index("options of every analysis"):out.index("--task coding")]


def test_generated_options_reach_the_config_of_the_tasks_they_belong_to(echo_task, capsys):
    args = build_parser().parse_args(["analyze", "in.csv", "-o", "out.csv", "--shout", "--echo-words", "2",
                                      "--n-topics", "3"])
    assert _task_config(echo_task, args) == {"shout": True, "echo_words": 2}
    assert "--n-topics does not apply to --task echo" in capsys.readouterr().err
    assert _task_config(get_task("topics"), args) == {"n_topics": 3}
    plain = build_parser().parse_args(["analyze", "in.csv", "-o", "out.csv"])
    assert _task_config(echo_task, plain) == {}  # not given: the Config's defaults
    assert _task_config(get_task("coding"), build_parser().parse_args(
        ["analyze", "in.csv", "-o", "out.csv", "--model", "m"])) == {"model": "m", "backend": "transformers"}


def test_the_test_task_runs_from_the_command_line(echo_task, home, tmp_path, small_csv):
    out = tmp_path / "echo.csv"
    assert main(["analyze", str(small_csv), "-o", str(out), "--task", "echo", "--shout", "--echo-words", "2"]) == 0
    frame = pd.read_csv(out)
    assert frame.loc[0, "echo_label"] == "THE BUSES" and frame.loc[0, "echo_len_words"] == 2
    assert pd.isna(frame.loc[2, "echo_label"])  # the empty text
    manifest = json.loads((tmp_path / "echo.manifest.json").read_text("utf-8"))[0]
    assert manifest["parameters"]["shout"] is True and manifest["parameters"]["echo_words"] == 2
    assert manifest["label_columns"] == ["echo_label"] and manifest["multi_label_columns"] == []


def test_every_existing_task_flag_maps_to_a_config_field():
    flags = task_flags()
    expected = {"--backend": "backend", "--model": "model", "--device": "device", "--batch-size": "batch_size",
                "--codebook": "codebook", "--labels-column": "labels_column", "--classifier": "classifier",
                "--n-topics": "n_topics", "--min-topic-size": "min_topic_size", "--merge-topics": "merge_topics",
                "--llm-url": "llm_url", "--llm-model": "llm_model", "--allow-remote": "allow_remote",
                "--llm-max-tokens": "llm_max_tokens", "--explain": "explain", "--prompt-file": "prompt_file",
                "--stop": "stop", "--stability": "stability_sample", "--stability-repeats": "stability_repeats",
                "--stability-temperature": "stability_temperature", "--paraphrase-file": "paraphrases",
                "--generate-paraphrases": "generate_paraphrases", "--fast": "fast"}
    assert {flag: owners[0][1].name for flag, owners in flags.items()} == expected
    assert [name for name, _ in flags["--merge-topics"]] == ["topics"]
    assert [name for name, _ in flags["--fast"]] == ["coding", "summary", "topics"]  # every task that embeds
    assert [name for name, _ in flags["--backend"]] == available_tasks()


def test_help_lists_options_per_task_without_importing_model_libraries():
    code = ("import sys; from analysis.cli import main\n"
            "try: main(['analyze', '--help'])\nexcept SystemExit: pass\n"
            "heavy = {'torch', 'transformers', 'sentence_transformers', 'sklearn'} & set(sys.modules)\n"
            "sys.exit(f'imported {sorted(heavy)}' if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for heading in ("options of every analysis", "--task coding (Codebook coding)", "--task topics (Topics)",
                    "--task summary (Summaries)"):
        assert heading in proc.stdout


def test_label_columns_and_column_owners_come_from_the_declarations(echo_task):
    columns = ["doc_id", "text", "human_code", "code_housing", "code_label", "sentiment_label", "sentiment_score",
               "topic_label", "topic_id", "emotion_label", "emotion_joy", "echo_label", "stats_words"]
    assert label_columns(columns) == {"sentiment_label": "sentiment", "emotion_label": "emotion",
                                      "code_label": "coding", "topic_label": "topics", "echo_label": "echo"}
    assert column_task("code_housing") == "coding" and column_task("code_label") == "coding"
    assert column_task("emotion_label") == "emotion" and column_task("echo_len_words") == "echo"
    assert column_task("human_code") is None and column_task("code_") is None
    sentiment = get_task("sentiment")
    assert sentiment.output_columns({"backend": "offline"}) == ["sentiment_label", "sentiment_score"]
    assert "sentiment_prob_*" in sentiment.output_columns({"backend": "transformers"})
    coding = get_task("coding")
    assert coding.output_columns({"multi_label": True}) == ["code_labels", "code_*"]
    assert coding.output_columns({"parameters": {"codebook": {"multi_label": False}}}) == ["code_label", "code_*"]


def test_registering_over_a_built_in_task_and_unregistering_brings_it_back():
    built_in = get_task("stats")

    class Other(EchoTask):
        name = "stats"

    register(Other())
    try:
        assert isinstance(get_task("stats"), Other) and available_tasks()[0] == "stats"
    finally:
        unregister("stats")
    assert get_task("stats") is built_in
