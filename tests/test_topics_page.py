"""AppTest of the Topics page: run, overview, map, comparison, close reading and an edit."""

import time

import pytest

from tests.test_pages import goto, load_sample, new_app, texts_of


@pytest.mark.slow
def test_topics_page_runs_shows_the_views_and_renames_a_topic(home):
    at = goto(load_sample(new_app()), "pages/topics.py")
    assert "No topics yet" in texts_of(at.info)
    at.number_input(key="topics_n").set_value(5).run()
    at.button(key="submit_topics").click().run()
    deadline = time.time() + 300
    while time.time() < deadline and not any(m.label == "Topics" for m in at.metric):
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Topics"] == "5" and metrics["Outliers"] == "0.0%"
    assert len(at.get("plotly_chart")) >= 4  # sizes, similarity, map, by group, over time
    at.text_input(key="topics_rename_label").set_value("Renamed by hand").run()
    at.button(key="topics_rename").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Renamed by hand" in " ".join(at.selectbox(key="topics_pick").options)
