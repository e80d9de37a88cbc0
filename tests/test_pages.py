"""AppTest for every page: renders without exceptions; the Data -> stats -> Export path works."""

import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.paths import ROOT

PAGES = ["pages/data.py", "pages/stats.py", "pages/sentiment.py", "pages/emotion.py", "pages/coding.py",
         "pages/prompt.py", "pages/summary.py", "pages/topics.py", "pages/explore.py", "pages/validate.py", "pages/export.py"]


def new_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts_of(elements) -> str:
    return " ".join(str(e.value) for e in elements)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_a_project(home, page):
    at = goto(new_app(), page)
    if page != "pages/data.py":
        assert "No project is open" in texts_of(at.info)


def load_sample(at: AppTest) -> AppTest:
    at.button(key="load_sample").click().run()
    assert not at.exception
    assert "Loaded the sample data" in texts_of(at.success)
    return at


def wait_for_metric(at: AppTest, label: str, timeout: float = 90) -> AppTest:
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if any(m.label == label for m in at.metric):
            return at
        time.sleep(0.5)
    raise AssertionError(f"results ({label}) did not appear: " + texts_of(at.error))


def wait_for_stats(at: AppTest, timeout: float = 90) -> AppTest:
    return wait_for_metric(at, "Median tokens", timeout)


def test_sample_data_stats_explore_and_export(home):
    at = load_sample(new_app())
    assert at.dataframe, "the preview of the open project is shown"
    at = goto(at, "pages/stats.py")
    at.button(key="submit_stats").click().run()
    at = wait_for_stats(at)
    assert at.get("plotly_chart")
    at = goto(at, "pages/explore.py")
    assert at.get("plotly_chart")
    at = goto(at, "pages/export.py")
    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    assert f"{len(sample):,} rows" in texts_of(at.markdown)
    assert len(at.get("download_button")) == 2
    for fmt in ("xlsx", "dta", "sav", "parquet"):
        at.radio(key="export_format").set_value(fmt).run()
        assert not at.exception and not at.error, fmt


def test_upload_preview_quality_and_project(home, small_csv):
    at = new_app()
    at.file_uploader[0].upload("small.csv", small_csv.read_bytes(), "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox[1].value == "answer" or any(s.value == "answer" for s in at.selectbox)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Rows"] == "6" and labels["Empty texts"] == "1" and labels["Exact duplicates"] == "1"
    at.button(key="create_project").click().run()
    assert "saved with 6 texts" in texts_of(at.success)
    assert at.query_params.get("project")


def test_bad_upload_shows_a_message_not_a_traceback(home):
    at = new_app()
    at.file_uploader[0].upload("broken.csv", b"\x00\x01\x02binary\x00" * 100, "text/csv").run()
    assert not at.exception
    assert "binary" in texts_of(at.error).lower()


def test_project_survives_a_new_session(home):
    """A browser refresh is a new session: the project comes back from the URL and the disk."""
    at = load_sample(new_app())
    project_id = at.query_params["project"]
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    fresh.query_params["project"] = project_id
    fresh.run()
    assert not fresh.exception
    assert "Policy survey (sample)" in texts_of(fresh.subheader)


def test_group_and_date_columns_can_change_after_import(home):
    at = load_sample(new_app())
    project_id = at.query_params["project"]
    at.selectbox(key=f"roles_group_{project_id}").set_value("age_group").run()
    at.button(key="save_roles").click().run()
    assert not at.exception
    from analysis.workspace import Workspace

    assert Workspace().project(project_id).info.group_column == "age_group"


def test_sentiment_page_runs_offline_and_shows_uncertainty_charts(home):
    at = goto(load_sample(new_app()), "pages/sentiment.py")
    at.radio(key="sentiment_backend").set_value("offline").run()
    at.button(key="submit_sentiment").click().run()
    at = wait_for_metric(at, "Mean score")
    figures = at.get("plotly_chart")
    assert len(figures) >= 4  # distribution, by group (2), trend
    assert "VADER" in texts_of(at.caption)
    assert at.dataframe  # close reading
    at.radio(key="sent_order").set_value("most negative").run()
    assert not at.exception
    at = goto(at, "pages/export.py")
    assert "sentiment" in texts_of(at.markdown)


def test_emotion_page_runs_offline(home):
    at = goto(load_sample(new_app()), "pages/emotion.py")
    at.radio(key="emotion_backend").set_value("offline").run()
    at.button(key="submit_emotion").click().run()
    deadline = time.time() + 90
    while time.time() < deadline and not at.get("plotly_chart"):
        at.run()
        time.sleep(0.5)
    assert not at.exception and len(at.get("plotly_chart")) >= 3
    at.selectbox(key="emo_pick").set_value("fear").run()
    assert not at.exception


def test_transformers_backend_without_model_shows_the_download_command(home, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TEXTLAB_MODELS", str(tmp_path / "models"))
    at = goto(load_sample(new_app()), "pages/sentiment.py")
    at.radio(key="sentiment_backend").set_value("transformers").run()
    assert "textlab models download twitter-roberta-sentiment" in texts_of(at.warning)
    at.button(key="submit_sentiment").click().run()
    assert not at.exception
    assert "textlab models download" in texts_of(at.error)


def test_one_count_of_texts_on_every_page_and_in_the_sample_readme(home):
    """467 rows, 3 of them empty: the Data page's sample tab, Text statistics and the sample's
    README say the same thing, and length figures are over the non-empty texts everywhere."""
    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    empty = int((sample["text"].str.strip() == "").sum())
    expected = f"{len(sample):,} texts ({len(sample) - empty:,} non-empty, {empty:,} empty)"
    assert expected == "467 texts (464 non-empty, 3 empty)"
    at = new_app()
    assert expected in texts_of(at.markdown), "the sample tab"
    assert "420+" not in texts_of(at.markdown)
    assert expected in (ROOT / "sample_data" / "README.md").read_text("utf-8")
    at = load_sample(at)
    quality = {m.label: m.value for m in at.metric}
    at = goto(at, "pages/stats.py")
    at.button(key="submit_stats").click().run()
    at = wait_for_stats(at)
    stats = {m.label: m.value for m in at.metric}
    assert stats["Texts"] == quality["Rows"] == f"{len(sample):,}"
    assert expected in texts_of(at.caption)
    assert stats["Median words"] == quality["Median words"]  # both over the non-empty texts
    histogram = at.get("plotly_chart")[0]
    assert f"n = {len(sample) - empty:,}" in histogram.proto.spec
