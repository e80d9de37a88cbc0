"""AppTest of the Export page with the corrected-estimate settings saved on the Validate page: the
estimates and the methods paragraph are offered (CSV, Markdown, XLSX sheets); settings that no
longer fit the data give a plain message and the data export still works."""

import numpy as np
import pandas as pd
import pytest

from analysis.workspace import Workspace
from tests.test_pages import goto, load_sample, new_app
from tests.test_pages import texts_of as _texts_of

CODES = ["Housing", "Public transport", "Health care", "Cost of living", "Climate and energy"]


def texts_of(elements) -> str:
    return _texts_of(elements).replace("\\", "")


def _coded_project(at):
    """The sample with a finished coding run written straight into the project (code_label right
    for about 70% of the texts), as in the Validate page's tests."""
    project = Workspace().project(at.query_params["project"])
    corpus = project.corpus().data
    rng = np.random.default_rng(0)
    known = corpus["human_code"].where(corpus["human_code"].fillna("").ne(""))  # the sample's hand codes
    label = known.where(rng.random(len(corpus)) < 0.7, rng.choice(CODES, len(corpus)))
    label = label.fillna(pd.Series(rng.choice(CODES, len(corpus))))
    run = project.create_run("coding", {"backend": "offline"}, n_total=len(corpus), status="done")
    project.write_result(run.id, pd.DataFrame({"doc_id": corpus["doc_id"], "code_label": label}), {
        "task": "coding", "backend": "offline", "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_revision": "0123456789abcdef0123456789abcdef01234567", "columns": ["code_label"],
        "rows": {"in": len(corpus), "coded": len(corpus), "empty": 0, "failed": 0},
        "codebook": {"name": "Policy", "version": "2", "codes": [{"label": c} for c in CODES]},
        "codebook_version": "2 (abcdef012345)"})
    return project


def test_saved_estimate_settings_give_the_estimates_and_the_methods_paragraph(home):
    at = load_sample(new_app())
    project = _coded_project(at)
    at = goto(at, "pages/export.py")
    assert "Validate > Corrected estimates" in texts_of(at.caption)  # nothing saved yet: a pointer
    assert len(at.get("download_button")) == 2 and not at.get("code")
    project.save_settings("estimates", {"pred": "code_label", "gold": ["human_code", "human_code_2"], "by": "region",
                                        "formula": None, "regression": "ols", "level": 0.95, "multi_label": False})
    at = goto(at, "pages/export.py")
    assert not at.error
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Corrected estimates (CSV)" in labels and "Methods paragraph (Markdown)" in labels
    paragraph = at.get("code")[0].proto.code_text
    assert "sentence-transformers/all-MiniLM-L6-v2, revision 0123456789abcdef0123456789abcdef01234567" in paragraph
    assert "fingerprint abcdef012345" in paragraph and "prediction-powered inference" in paragraph
    assert "Cohen's kappa = " in paragraph and "95% CI [" in paragraph  # agreement from the hand codes
    assert "assumed to be a simple random sample" in paragraph and "References" in paragraph
    assert at.checkbox(key="export_estimates").value
    for fmt in ("xlsx", "csv", "dta"):
        at.radio(key="export_format").set_value(fmt).run()
        assert not at.exception and not at.error, fmt
        assert at.checkbox(key="export_estimates").disabled == (fmt != "xlsx")
    at.radio(key="export_format").set_value("xlsx").run()
    at.checkbox(key="export_estimates").uncheck().run()
    assert not at.exception and not at.error


def test_settings_that_no_longer_fit_the_data_give_a_message_not_a_traceback(home):
    at = load_sample(new_app())
    project = _coded_project(at)
    project.save_settings("estimates", {"pred": "code_label", "gold": ["human_gone"], "by": None, "formula": None,
                                        "regression": "ols", "level": 0.95, "multi_label": False})
    at = goto(at, "pages/export.py")
    assert not at.exception
    assert "No column 'human_gone'" in texts_of(at.error)
    assert len(at.get("download_button")) == 2  # the data and the manifest are still there
    assert not at.get("code")


def test_a_recorded_stratified_sample_is_in_the_paragraph(home):
    at = load_sample(new_app())
    project = _coded_project(at)
    if not hasattr(project, "new_sample"):
        pytest.skip("the workspace has no recorded samples yet (Project.new_sample)")
    frame = project.results_frame()
    draw = project.new_sample(frame, 30, design="stratified_equal", by="code_label", seed=3)
    ids = list(draw.doc_ids)
    truth = frame.set_index("doc_id")["code_label"]
    project.save_annotations("Ann", {d: truth[d] for d in ids[:25]})  # 25 of the 30 drawn texts coded
    outside = [d for d in frame["doc_id"] if d not in set(ids)][:2]
    project.save_annotations("Ann", {d: "Housing" for d in outside})  # and two chosen by hand
    project.save_settings("estimates", {"pred": "code_label", "gold": ["human_ann"], "by": None, "formula": None,
                                        "regression": "ols", "level": 0.95, "multi_label": False})
    at = goto(at, "pages/export.py")
    assert not at.error
    paragraph = at.get("code")[0].proto.code_text
    assert "stratified random sample with equal allocation" in paragraph and "“code_label”" in paragraph
    assert f"30 texts drawn from {len(frame):,} (seed 3)" in paragraph
    assert "each of the 25 hand-coded texts of the sample weighs N_s/n_s" in paragraph
    assert "2 further hand-coded texts were not drawn in the recorded sample" in paragraph
    assert "assumed" not in paragraph
