"""`import analysis` is the library's face: one import gives a notebook what it needs."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import analysis as tl
from tests.paths import ROOT, SAMPLE_CSV


def test_the_readme_notebook_example_runs_on_the_sample_data(tmp_path):
    corpus, report = tl.load_corpus(SAMPLE_CSV)
    texts = corpus.texts[:40]
    stats = tl.run("stats", texts)
    sentiment = tl.run("sentiment", texts, backend="offline")
    coded = tl.run("coding", texts, codebook=str(ROOT / "sample_data" / "policy_codebook.json"))
    for result in (stats, sentiment, coded):
        assert len(result) == len(texts)  # one row per text, in order
    assert set(sentiment["sentiment_label"].dropna()) <= {"negative", "neutral", "positive"}
    book = tl.read_codebook(ROOT / "sample_data" / "policy_codebook.json")
    assert isinstance(book, tl.Codebook) and set(coded["code_label"].dropna()) <= set(book.output_labels)

    workspace = tl.Workspace(tmp_path / "ws")
    project = workspace.create_project("sample", corpus)
    jobs = tl.JobManager(workspace).start()
    run = jobs.submit(project, "stats")
    assert jobs.wait(timeout=120)
    done = workspace.run(run.id)
    assert done.status == "done"
    assert len(project.result(run.id)) == len(corpus.texts)


def test_a_run_takes_a_config_dict_or_keywords_and_refuses_unknown_settings():
    texts = ["I love this.", "", "This is terrible."]
    by_keywords = tl.run("sentiment", texts, backend="offline", positive_threshold=0.5)
    by_dict = tl.run(tl.get_task("sentiment"), texts, {"backend": "offline", "positive_threshold": 0.5})
    pd.testing.assert_frame_equal(by_keywords, by_dict)
    assert pd.isna(by_keywords.loc[1, "sentiment_label"])  # the empty text gets an empty result
    with pytest.raises(tl.TextlabError, match="Unknown setting"):
        tl.run("sentiment", texts, positive_treshold=0.5)


def test_every_public_name_resolves_and_importing_the_package_stays_light():
    for name in tl.__all__:
        assert getattr(tl, name) is not None
    code = ("import sys, analysis; heavy = [m for m in ('pandas', 'torch', 'streamlit', 'transformers') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
