"""AppTest of the Codebook coding page: codebook editor, zero-shot and few-shot runs, results."""

import time

import pytest

from analysis.codebook import read_codebook
from tests.test_pages import goto, load_sample, new_app, texts_of
from ui.state import SAMPLE_CODEBOOK


def wait_for_chart(at, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if at.get("plotly_chart"):
            return at
        time.sleep(0.5)
    raise AssertionError(f"no chart after {timeout} s")


@pytest.mark.slow
def test_sample_codebook_is_loaded_and_a_zero_shot_run_shows_results(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    assert "No coding results yet" in texts_of(at.info)
    captions = texts_of(at.caption)
    book = read_codebook(SAMPLE_CODEBOOK)
    assert f"{len(book.codes)} codes" in captions and book.fingerprint() in captions
    at.radio(key="coding_backend").set_value("offline").run()
    at.button(key="submit_coding").click().run()
    at = wait_for_chart(at)
    assert not at.exception
    assert "unvalidated" in texts_of(at.caption)
    at.selectbox(key="coding_pick").set_value("Health care").run()
    assert not at.exception and at.dataframe


def test_few_shot_check_shows_cross_validated_metrics(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    at.radio(key="coding_method").set_value("few-shot").run()
    assert at.selectbox(key="coding_labels_col").value == "human_code"
    assert "80 coded rows" in texts_of(at.caption)
    at.button(key="coding_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "macro f1" in labels and "accuracy" in labels
    assert "5-fold cross-validation on 80 coded rows" in texts_of(at.caption)


def test_a_broken_codebook_shows_the_problem_and_the_run_is_refused(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    template = next(t for t in at.text_input if t.label.startswith("Hypothesis template"))
    template.set_value("no placeholder here").run()
    assert "exactly once" in texts_of(at.error)
    at.button(key="submit_coding").click().run()
    assert not at.exception and "exactly once" in texts_of(at.error)


def test_setfit_option_warns_about_cpu_time_and_reaches_the_run_config(home):
    at = goto(load_sample(new_app()), "pages/coding.py")
    at.radio(key="coding_method").set_value("few-shot").run()
    at.radio(key="coding_classifier").set_value("setfit").run()
    assert not at.exception, [e.value for e in at.exception]
    warning = texts_of(at.warning)
    assert "No GPU here" in warning and "80 coded rows" in warning
    at.button(key="submit_coding").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from analysis.workspace import Workspace

    runs = Workspace().list_projects()[0]
    project = Workspace().project(runs.id)
    manager_runs = project.runs("coding")
    assert manager_runs and manager_runs[0].config["classifier"] == "setfit"
    from ui import state

    manager = state.job_manager()
    manager.cancel(manager_runs[0].id)  # no need to fine-tune MiniLM six times here
    assert manager.wait(120)
    assert project.runs("coding")[0].status == "cancelled"


def test_offline_zero_shot_results_show_the_method_note_and_count_non_english_texts(home):
    from tests.test_sentiment import assert_honest_offline_page, offline_result_page

    book = {"codes": [{"label": "Transport", "definition": "Buses, trains, roads and traffic."},
                      {"label": "Housing", "definition": "Rents, landlords and homes."}]}
    at, project, run = offline_result_page("coding", {"method": "zero-shot", "codebook": book}, "pages/coding.py")
    assert_honest_offline_page(at, project, run, note=["AG News", "0.761"], method="MiniLM")


def test_the_page_draws_the_few_shot_preview_the_library_returns(home, monkeypatch):
    """The page gathers the inputs, calls the service and draws its answer; it builds no model
    (the service is patched here, as in mkuthan/example-streamlit's page tests)."""
    import pandas as pd

    from analysis.tasks import coding

    calls = []

    def preview_fewshot(texts, frame, labels_column, **settings):
        calls.append({"texts": len(texts), "rows": len(frame), "column": labels_column, **settings})
        return coding.FewShotPreview(
            column=labels_column,
            report={"folds": 3, "rows": 42, "unseen_codes": ["Climate"],
                    "metrics": {"accuracy": {"value": 0.81, "ci_low": 0.7, "ci_high": 0.9},
                                "macro_f1": {"value": None, "ci_low": None, "ci_high": None}}},
            curve=pd.DataFrame({"n_train": [10, 20, 30], "macro_f1": [0.5, 0.6, 0.7], "sd": [0.1, 0.1, 0.05]}),
            notes=["A note from the library."], warnings=["No coded rows for Climate: these codes are never predicted."])

    monkeypatch.setattr(coding, "preview_fewshot", preview_fewshot)
    monkeypatch.setattr(coding, "setfit_estimate",
                        lambda n_coded, **_: coding.SetFitEstimate(n_coded=n_coded, pairs=1234, fine_tunings=6, on_cpu=True))
    at = goto(load_sample(new_app()), "pages/coding.py")
    at.radio(key="coding_method").set_value("few-shot").run()
    at.button(key="coding_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (call,) = calls
    book = read_codebook(SAMPLE_CODEBOOK)
    assert call["column"] == "human_code" and call["multi_label"] is False and call["labels"] == book.output_labels
    assert call["texts"] == call["rows"] and str(call["cache_dir"]).endswith("embeddings")
    assert {m.label: m.value for m in at.metric} == {"accuracy": "0.81"}  # no figure for what has none
    assert "3-fold cross-validation on 42 coded rows" in texts_of(at.caption)
    assert "A note from the library" in texts_of(at.info)
    assert "Climate" in texts_of(at.warning) and "never predicted" in texts_of(at.warning)
    assert len(at.get("plotly_chart")) == 1  # the learning curve
    at.radio(key="coding_classifier").set_value("setfit").run()
    assert not at.exception and "1,234 training pairs (6 fine-tunings on 80 coded rows)" in texts_of(at.warning)
    assert "This check uses logistic regression" in texts_of(at.caption)  # the preview is kept
    assert len(calls) == 1


def test_fast_path_switch_reaches_the_run_and_its_manifest(home):
    """The Fast CPU path switch: the run is made with fast=True (offline method) and its
    manifest names the static model; a tiny one stands in for the distilled model."""
    from analysis.embeddings import FAST_MODEL
    from analysis.workspace import Workspace
    from tests.test_fastpath import write_tiny_static
    from ui import state

    write_tiny_static(home / "models" / FAST_MODEL)
    at = goto(load_sample(new_app()), "pages/coding.py")
    at.radio(key="coding_backend").set_value("auto").run()
    at.toggle(key="coding_fast").set_value(True).run()
    at.button(key="submit_coding").click().run()
    assert not at.exception, [e.value for e in at.exception]
    project = Workspace().project(Workspace().list_projects()[0].id)
    run = project.runs("coding")[0]
    assert run.config["fast"] is True and run.config["backend"] == "offline"
    assert state.job_manager().wait(120)
    assert project.manifest(project.runs("coding")[0].id)["model"] == FAST_MODEL
