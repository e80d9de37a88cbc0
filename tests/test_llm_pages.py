"""AppTest of the app's generative-model UI (issue 13): the sidebar's Language model section,
backend llm on the analysis pages, the Prompt page and the "What the model sees" view.

Models: the tiny random-weight chat model of tests/tiny_models.py as a local model folder (its
answers are gibberish; their path through the app is what is checked), and a stub
OpenAI-compatible server that only lists models. No test needs the embedded model.
"""

from __future__ import annotations

import socket
import time

import pytest
from streamlit.testing.v1 import AppTest

from analysis.workspace import Workspace
from tests.paths import ROOT
from tests.test_pages import goto, load_sample, new_app, texts_of

REMOTE = "http://93.184.216.34:8000/v1"  # a public address: never contacted by these tests


@pytest.fixture(scope="module")
def tiny_lm(shared_tiny_server):
    from pathlib import Path

    return Path(shared_tiny_server["model"])


@pytest.fixture(scope="module")
def model_server(shared_tiny_server):
    """A real ``transformers serve`` process on 127.0.0.1 serving the tiny chat model (shared
    with tests/test_llm_server.py)."""
    return shared_tiny_server["url"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def sidebar_app(project_id: str | None = None) -> AppTest:
    """The sidebar's Language model section on its own, drawn on every run.

    (An AppTest of app.py runs the router, and so the sidebar, on its first run only: later
    runs execute the page alone. The pages read the settings the section keeps in the session.)"""

    def script(project_id):
        import streamlit as st

        from ui import state
        from ui.language_model import sidebar_section

        if project_id:
            state.set_project(project_id)
        with st.sidebar:
            sidebar_section(state.current_project())

    at = AppTest.from_function(script, args=(project_id,), default_timeout=60)
    return ok(at.run())


def use_server(at: AppTest, url: str, model: str = "") -> AppTest:
    at.radio(key="llm_source").set_value("server").run()
    at.text_input(key="llm_url").input(url).run()
    if model:
        at.text_input(key="llm_model").input(model).run()
    return ok(at)


def choose_model(at: AppTest, **settings) -> AppTest:
    """What the sidebar keeps once a model is chosen (source, url, model, folder, allow_remote)."""
    from ui.language_model import DEFAULTS, STORE

    at.session_state[STORE] = {**DEFAULTS, **settings}
    return at


def use_folder(at: AppTest, folder) -> AppTest:
    return choose_model(at, source="local", folder=str(folder))


def wait_for(at: AppTest, done, timeout: float = 240) -> AppTest:
    deadline = time.time() + timeout
    while time.time() < deadline:
        ok(at.run())
        if done(at):
            return at
        time.sleep(0.5)
    raise AssertionError(f"not there after {timeout} s: " + texts_of(at.error))


def small_sample(n: int = 24) -> AppTest:
    """The app on a project of the sample's first ``n`` rows (the sample codebook opens with it):
    a generative model, even a tiny one, takes a while per text on a CPU."""
    import pandas as pd

    from analysis.corpus import build_corpus
    from tests.paths import SAMPLE_CSV

    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).head(n)
    corpus = build_corpus(frame, "text", id_column="respondent_id", group_column="region", date_column="date",
                          source=str(SAMPLE_CSV))
    project = Workspace().create_project("Sample head", corpus)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["project"] = project.id
    return ok(at.run())


def project_of(at: AppTest):
    return Workspace().project(at.query_params["project"])


# ---------------------------------------------------------------------- the sidebar


def test_a_remote_server_needs_an_explicit_confirmation(home):
    project_id = load_sample(new_app()).query_params["project"]
    at = use_server(sidebar_app(project_id), REMOTE, "some-model")
    assert "93.184.216.34" in texts_of(at.warning) and "not on this machine" in texts_of(at.warning)
    (agree,) = [c for c in at.checkbox if c.key == "llm_allow_remote"]
    assert "Every text will be sent to 93" in agree.label and agree.value is False
    assert "TEXTLAB_LLM_API_KEY" in texts_of(at.caption)  # the key is never asked for
    settings = Workspace().project(project_id).settings("llm")
    assert settings["url"] == REMOTE and settings["allow_remote"] is False
    at.checkbox(key="llm_allow_remote").check().run()
    assert Workspace().project(project_id).settings("llm")["allow_remote"] is True
    # Another URL asks again.
    at.text_input(key="llm_url").input("http://93.184.216.35:8000/v1").run()
    assert ok(at).checkbox(key="llm_allow_remote").value is False


def test_a_run_on_a_remote_server_is_refused_without_the_confirmation(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    choose_model(at, source="server", url=REMOTE, model="some-model")
    at.radio(key="coding_backend").set_value("llm").run()
    at.button(key="submit_coding").click().run()
    assert "not on this machine or its local network" in texts_of(ok(at).error)
    assert not project_of(at).runs("coding")


def test_a_server_that_is_down_gives_a_clear_message(home):
    at = use_server(sidebar_app(), f"http://127.0.0.1:{free_port()}/v1")
    assert "On this machine" in texts_of(at.caption)
    at.button(key="llm_test").click().run()
    errors = texts_of(ok(at).error)
    assert "No model server answers at" in errors and "Traceback" not in errors


@pytest.mark.slow
def test_test_connection_lists_the_servers_models_and_fills_in_the_first(home, model_server, tiny_lm):
    from analysis import llm

    listed = [m["id"] for m in llm.list_models(model_server)]
    at = use_server(sidebar_app(), model_server)
    at.button(key="llm_test").click().run()
    assert f"the server lists {len(listed)} model" in texts_of(ok(at).success)
    assert at.text_input(key="llm_model").value == listed[0]
    pick = at.selectbox(key="llm_pick")
    assert pick.options == listed and str(tiny_lm) in listed
    pick.set_value(str(tiny_lm)).run()
    assert ok(at).text_input(key="llm_model").value == str(tiny_lm)


def test_the_settings_survive_a_refresh(home, tiny_lm):
    project_id = load_sample(new_app()).query_params["project"]
    at = sidebar_app(project_id)
    at.radio(key="llm_source").set_value("local").run()
    at.text_input(key="llm_folder").input(str(tiny_lm)).run()
    assert "in this process" in texts_of(ok(at).caption)
    # A refresh is a new session: the whole app (router, sidebar) from the project in the URL.
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    fresh.query_params["project"] = project_id
    ok(fresh.run())
    assert fresh.radio(key="llm_source").value == "local"
    assert fresh.text_input(key="llm_folder").value == str(tiny_lm)
    assert "tiny-chat" in texts_of(fresh.sidebar.caption)


# ---------------------------------------------------------------------- analysis pages


def test_the_embedded_model_is_said_to_be_weak_on_the_coding_page(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    at.radio(key="coding_backend").set_value("llm").run()
    warnings = texts_of(ok(at).warning)
    assert "weak at coding" in warnings and "model server" in warnings
    assert any(t.label == "Explain each answer" for t in at.toggle)


def test_an_empty_server_url_is_refused_not_run_on_the_embedded_model(home):
    at = choose_model(goto(load_sample(new_app()), "pages/coding.py"), source="server")
    at.radio(key="coding_backend").set_value("llm").run()
    at.button(key="submit_coding").click().run()
    assert "No model server is set" in texts_of(ok(at).error)
    assert not project_of(at).runs("coding")


@pytest.mark.timeout(600)
def test_coding_with_the_llm_backend_runs_a_job_and_shows_explanations(home, tiny_lm):
    at = use_folder(goto(small_sample(), "pages/coding.py"), tiny_lm)
    at.radio(key="coding_backend").set_value("llm").run()
    assert "tiny-chat" in texts_of(ok(at).info)
    at.toggle(key="coding_explain").set_value(True).run()
    at.number_input(key="coding_max_tokens").set_value(4).run()
    # What the model sees: the prompt built from the codebook, then one answer.
    expander = next(e for e in at.expander if e.label == "What the model sees")
    shown = texts_of(expander.code)
    assert "Codebook: " in shown and "Housing" in shown and '"explanation"' in shown
    at.button(key="coding_seen_ask").click().run()
    labels = {m.label: m.value for m in ok(at).metric}
    assert labels["Prompt tokens"].replace(",", "").isdigit() and labels["Code tokens"] != "—"
    assert "every label is scored" in texts_of(at.caption)
    at.button(key="submit_coding").click().run()
    (run,) = project_of(ok(at)).runs("coding")
    assert run.config["backend"] == "llm" and run.config["model"] == str(tiny_lm)
    assert run.config["explain"] is True and run.config["llm_max_tokens"] == 4
    assert run.config["llm_url"] is None and run.config["allow_remote"] is False
    at = wait_for(at, lambda a: any("Share of texts per code" in str(c.proto.spec) for c in a.get("plotly_chart")))
    assert "texts coded" in texts_of(at.caption)
    (reading,) = [d.value for d in at.dataframe if "code_explanation" in d.value.columns]  # close reading
    assert list(reading.columns[:3]) == ["doc_id", "text", "code_explanation"]
    assert reading["code_explanation"].notna().any()


@pytest.mark.timeout(600)
def test_sentiment_and_emotion_offer_the_llm_backend(home, tiny_lm):
    at = use_folder(goto(small_sample(), "pages/sentiment.py"), tiny_lm)
    at.radio(key="sentiment_backend").set_value("llm").run()
    assert not any("VADER" in n.label for n in ok(at).number_input)  # no VADER thresholds for a model
    at.toggle(key="sentiment_explain").set_value(True).run()
    at.number_input(key="sentiment_max_tokens").set_value(4).run()
    at.button(key="submit_sentiment").click().run()
    (run,) = project_of(ok(at)).runs("sentiment")
    assert run.config["backend"] == "llm" and run.config["explain"] is True
    at = wait_for(at, lambda a: any(m.label == "Mean score" for m in a.metric))
    (reading,) = [d.value for d in at.dataframe if "sentiment_score" in d.value.columns]  # close reading
    assert list(reading.columns[:3]) == ["doc_id", "text", "sentiment_explanation"]
    at = goto(at, "pages/emotion.py")
    at.radio(key="emotion_backend").set_value("llm").run()
    at.button(key="submit_emotion").click().run()
    (run,) = project_of(ok(at)).runs("emotion")
    assert run.config["backend"] == "llm" and run.config["model"] == str(tiny_lm)


# ---------------------------------------------------------------------- the Prompt page


def test_the_prompt_page_previews_the_exact_prompt_with_metadata_fields(home):
    at = goto(load_sample(new_app()), "pages/prompt.py")
    assert [t.value for t in at.title] == ["Free prompt"]
    template = next(t for t in at.text_area if t.label == "Prompt template")
    assert "{text}" in template.value
    template.input("Region {region}, answered {date}: {text}\nWho is named?").run()
    codes = [c.value for c in ok(at).code]
    assert codes[0].startswith("You are a careful research assistant")  # the system message
    assert codes[1].startswith("Region West, answered 2026-01-01: We need to stop building on flood plains.")
    assert "No answers yet" in texts_of(at.info)
    # The settings are the project's: a new session (a refresh) reopens them.
    assert project_of(at).settings("prompt")["template"].startswith("Region {region}")


def test_an_unknown_field_lists_the_corpus_columns(home):
    at = goto(load_sample(new_app()), "pages/prompt.py")
    next(t for t in at.text_area if t.label == "Prompt template").input("{colour}: {text}").run()
    error = texts_of(ok(at).error)
    assert "colour" in error and "respondent" in error and "region" in error
    at.button(key="submit_prompt").click().run()
    assert not project_of(ok(at)).runs("prompt")
    next(t for t in at.text_area if t.label == "Prompt template").input("Summarise: the text").run()
    assert "must say where the text goes" in texts_of(ok(at).error)


@pytest.mark.timeout(600)
def test_a_prompt_run_shows_texts_beside_their_answers(home, tiny_lm):
    at = use_folder(goto(small_sample(), "pages/prompt.py"), tiny_lm).run()
    assert any("tokens of the model" in c.value for c in ok(at).caption)  # the tiny model's tokenizer counted
    at.number_input(key=f"prompt_tokens_{at.query_params['project']}").set_value(3).run()
    at.button(key=f"prompt_seen_{at.query_params['project']}_ask").click().run()
    labels = {m.label: m.value for m in ok(at).metric}
    assert labels["Prompt tokens"].replace(",", "").isdigit()
    at.button(key="submit_prompt").click().run()
    (run,) = project_of(ok(at)).runs("prompt")
    assert run.config["backend"] == "llm" and run.config["template"].endswith("{text}")
    assert run.config["llm_max_tokens"] == 3 and run.config["model"] == str(tiny_lm)
    at = wait_for(at, lambda a: any(m.label == "Empty answers" for m in a.metric))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Empty texts (not asked)"] == "0"
    answered, empty = (int(metrics[k].replace(",", "")) for k in ("Texts answered", "Empty answers"))
    assert answered + empty == 24
    (table,) = [d.value for d in at.dataframe if "prompt_answer" in d.value.columns]
    assert list(table.columns[:3]) == ["doc_id", "text", "prompt_answer"] and len(table) == 24


def test_the_prompt_stability_check_runs_with_coding_and_its_panel_shows_alpha(home, tiny_lm):
    at = use_folder(goto(small_sample(12), "pages/coding.py"), tiny_lm)
    at.radio(key="coding_backend").set_value("llm").run()
    at.toggle(key="stability_on").set_value(True).run()
    at.number_input(key="stability_n").set_value(5).run()
    at.number_input(key="stability_repeats").set_value(2).run()
    at.text_area(key="stability_paraphrases_0").input("Say which code fits.\nName the best code.").run()
    assert "more answers" in texts_of(ok(at).caption)
    at.button(key="submit_coding").click().run()
    (run,) = project_of(ok(at)).runs("coding")
    assert run.config["stability_sample"] == 5 and run.config["stability_repeats"] == 2
    assert run.config["paraphrases"] == ["Say which code fits.", "Name the best code."]
    at = wait_for(at, lambda a: any(h.value == "Prompt stability" for h in a.subheader))
    shown = texts_of(at.markdown)
    assert "same prompt, repeated" in shown and "paraphrased instructions" in shown and "over 3 runs of 5 texts" in shown
    prompts = next(d.value for d in at.dataframe if "instruction" in d.value.columns)
    assert prompts["instruction"].tolist()[1:] == ["Say which code fits.", "Name the best code."]
    runs = next(d.value for d in at.dataframe if "distinct_codes" in d.value.columns)
    assert len(runs) == 5 and {"repeat_1", "repeat_2", "original", "paraphrase_1", "paraphrase_2"} <= set(runs.columns)


def test_group_summaries_by_the_language_model_cite_the_evidence(home, tiny_lm):
    at = use_folder(goto(small_sample(12), "pages/summary.py"), tiny_lm)
    at.selectbox(key="sum_by").set_value("region").run()
    at.toggle(key="sum_llm").set_value(True).run()
    assert "tiny-chat" in texts_of(ok(at).caption)
    at.button(key="sum_groups").click().run()
    shown = texts_of(ok(at).markdown)
    assert "Language model's summary" in shown and "Representative sentences" in shown
    # A summary that cites nothing it was given is flagged, never passed over in silence.
    table = at.session_state[f"group_summaries_{project_of(at).id}"]["table"]
    row = table[table["group"] == at.selectbox(key="sum_pick").value].iloc[0]
    flagged = "cited none" in texts_of(at.warning) or "not given" in texts_of(at.warning)
    assert flagged == bool(row["llm_bad_citations"] or (row["llm_summary"] and not row["llm_cited"]))


def test_the_estimate_says_tokens_and_time_before_a_run_and_the_run_reuses_the_probe(home, tiny_lm):
    at = use_folder(goto(small_sample(12), "pages/coding.py"), tiny_lm)
    at.radio(key="coding_backend").set_value("llm").run()
    at.button(key="coding_estimate").click().run()
    said = texts_of(ok(at).info)
    assert "12 texts, " in said and "prompt tokens; about " in said and "measured on 3 texts" in said
    assert not project_of(at).runs("coding")  # an estimate starts no run
