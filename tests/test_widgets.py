"""The job progress widget (AppTest) and the server settings that keep a running job fast."""

from __future__ import annotations

import re
import time
import tomllib

import pandas as pd
from streamlit.testing.v1 import AppTest

from analysis.corpus import build_corpus
from analysis.workspace import Workspace
from tests.paths import ROOT


def _running_run(**fields):
    ws = Workspace()
    project = ws.create_project("p", build_corpus(pd.DataFrame({"text": ["a", "b", "c"]}), "text", source="mem"))
    run = project.create_run("stats", {}, n_total=3)
    ws.update_run(run.id, status="running", **fields)
    return ws, run


def _progress_app(run_id: str) -> AppTest:
    def script(run_id):
        from ui import widgets

        widgets._poll_run(run_id)

    return AppTest.from_function(script, args=(run_id,), default_timeout=30)


def _bar_text(at: AppTest) -> str:
    assert not at.exception, [e.value for e in at.exception]
    (bar,) = at.get("progress")
    return bar.proto.text


def test_a_stage_shows_its_name_and_elapsed_time_not_a_time_left(home):
    ws, run = _running_run(stage="Loading the model", n_done=0, docs_per_s=None)
    at = _progress_app(run.id)
    at.run()
    assert re.fullmatch(r"Loading the model · \d+ s", _bar_text(at))
    time.sleep(1.1)
    at.run()
    seconds = int(re.search(r"(\d+) s$", _bar_text(at)).group(1))
    assert seconds >= 1  # the clock runs while the stage lasts
    # Another stage starts its own clock; numbers inside a stage (steps) do not restart it.
    ws.update_run(run.id, stage="SetFit fine-tuning: step 1 of 9")
    at.run()
    assert _bar_text(at) == "SetFit fine-tuning: step 1 of 9 · 0 s"
    time.sleep(1.1)
    ws.update_run(run.id, stage="SetFit fine-tuning: step 2 of 9")
    at.run()
    assert re.fullmatch(r"SetFit fine-tuning: step 2 of 9 · [1-9]\d* s", _bar_text(at))


def test_all_texts_done_but_still_running_says_so_instead_of_zero_seconds_left(home):
    _, run = _running_run(n_done=3, docs_per_s=25.0)
    at = _progress_app(run.id)
    at.run()
    text = _bar_text(at)
    assert "0 s left" not in text
    assert text == "3 of 3 texts · 25 texts/s · writing the results"


def test_slow_rates_keep_a_decimal(home):
    _, run = _running_run(n_done=1, docs_per_s=0.6)
    at = _progress_app(run.id)
    at.run()
    assert _bar_text(at) == "1 of 3 texts · 0.6 texts/s · 3 s left"


def test_the_server_runs_no_full_garbage_collection_after_each_rerun():
    """Streamlit's default gc.collect(2) after every script run took 0.5 s with torch loaded; the
    progress fragment reruns every second, so a running job lost about half of its CPU to it."""
    from ui.launch import APP_FLAGS

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text("utf-8"))
    assert config["runner"]["postScriptGC"] is False
    assert APP_FLAGS["runner.postScriptGC"] == "false"  # `textlab app` from any folder


def _analysis_page_app(project_id: str) -> AppTest:
    def script(project_id):
        import streamlit as st

        from ui import state, widgets

        state.set_project(project_id)

        def settings():
            return {"backend": "offline", "positive_threshold": st.number_input("Positive at", 0.0, 1.0, 0.3, key="t_hi")}

        results = widgets.analysis_page("sentiment", caption="A caption.", run_label="Run it", settings=settings,
                                        empty="Nothing yet.")
        st.markdown(f"after: {len(results.frame)} rows, run {results.run.id}, {results.info.text_column}")

    return AppTest.from_function(script, args=(project_id,), default_timeout=60)


def test_analysis_page_runs_with_the_settings_and_returns_the_latest_results(home):
    project = Workspace().create_project(
        "p", build_corpus(pd.DataFrame({"text": ["I love it.", "I hate it.", ""]}), "text", source="mem"))
    at = _analysis_page_app(project.id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Sentiment"] and "A caption." in [c.value for c in at.caption]
    (expander,) = at.expander
    assert expander.label == "Settings" and expander.proto.expanded  # open until the first run
    assert [i.value for i in at.info] == ["Nothing yet."]
    assert not any(m.value.startswith("after") for m in at.markdown)  # the page stopped there
    at.number_input(key="t_hi").set_value(0.5).run()
    at.button(key="submit_sentiment").click().run()
    deadline = time.time() + 60
    while time.time() < deadline and not any(m.value.startswith("after") for m in at.markdown):
        time.sleep(0.5)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    (run,) = project.runs("sentiment")
    assert run.config["positive_threshold"] == 0.5 and run.config["backend"] == "offline"
    assert f"after: 3 rows, run {run.id}, text" in [m.value for m in at.markdown]
    assert any("texts coded" in c.value for c in at.caption)  # run_summary: what produced the results
    assert [e.label for e in at.expander] == ["Settings", "Provenance (run manifest)"]
    assert not at.expander[0].proto.expanded  # closed once the task has a run


def test_a_waiting_run_says_how_many_are_ahead_and_about_how_long():
    from analysis.workspace import Run
    from ui.widgets import queue_text

    run = Run(id="r", project_id="p", task="sentiment", config={}, config_hash="", status="queued", created="")
    assert queue_text(run, 0, None) == "Waiting for the worker: next in line…"
    assert queue_text(run, 1, None) == "Waiting for the worker: 1 analysis ahead of yours…"
    assert queue_text(run, 3, 125) == "Waiting for the worker: 3 analyses ahead of yours, about 2 min 05 s…"
    paused = Run(id="r", project_id="p", task="sentiment", config={}, config_hash="", status="queued", created="",
                 stage="Paused so that other participants' analyses get a turn; it resumes by itself")
    assert queue_text(paused, 2, 30).startswith("Paused so that others' analyses get a turn: 2 analyses ahead")
