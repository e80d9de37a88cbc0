"""`textlab llm serve` starts a real OpenAI-compatible server that `textlab llm list` and coding use."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from analysis import llm
from analysis.cli import main
from tests.paths import ROOT
from tests.test_llm_server import free_port
from tests.tiny_models import make_tiny_causal_lm


def test_the_serve_command_is_offline_and_local_by_default(tmp_path, capsys):
    model = make_tiny_causal_lm(tmp_path / "tiny-chat")
    assert main(["llm", "serve", str(model), "--engine", "transformers", "--port", "8123", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "transformers.cli.transformers serve " + str(model.resolve()) in out.out
    assert "--host 127.0.0.1 --port 8123" in out.out
    assert f"--llm-url http://127.0.0.1:8123/v1 --llm-model {model.resolve()}" in out.err
    from analysis.cli import build_parser, llm_server_command

    _, url, env = llm_server_command(build_parser().parse_args(["llm", "serve", str(model), "--engine",
                                                                 "transformers", "--host", "0.0.0.0"]))
    assert env["HF_HUB_OFFLINE"] == "1" and url == "http://127.0.0.1:8000/v1"


def test_vllm_missing_and_a_down_server_get_clear_messages(capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        assert main(["llm", "serve", "some/model", "--engine", "vllm", "--dry-run"]) == 2
        assert "vLLM is not installed: pip install vllm" in capsys.readouterr().err
    assert main(["llm", "list", f"http://127.0.0.1:{free_port()}/v1"]) == 2
    assert "No model server answers at" in capsys.readouterr().err
    assert main(["llm", "list", "http://8.8.8.8/v1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.slow
def test_a_served_model_is_listed_and_answers(tmp_path):
    model = make_tiny_causal_lm(tmp_path / "tiny-chat")
    port = free_port()
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "analysis.cli", "llm", "serve", str(model), "--engine",
                                    "transformers", "--port", str(port), "--device", "cpu"],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            llm.wait_for_server(url, timeout=120)
            listed = subprocess.run([sys.executable, "-m", "analysis.cli", "llm", "list", url], cwd=ROOT,
                                    capture_output=True, text=True, timeout=60)
            assert listed.returncode == 0 and str(model.resolve()) in listed.stdout.splitlines()
            backend = llm.ServerLLM(url, str(model.resolve()))
            answer = backend.chat([[{"role": "user", "content": "Say hi."}]], llm.GenerationParams(max_tokens=3))[0]
            assert isinstance(answer.text, str) and answer.completion_tokens
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
