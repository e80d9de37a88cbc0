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
    # The data carries each text's stratum and weight, and the manifest the design and its draws.
    assert "`sample_stratum` and `sample_weight`" in texts_of(at.caption)
    import json
    manifest = json.loads(at.get("json")[0].proto.body)
    hand = next(m for m in manifest if m["task"] == "hand_coding")
    assert hand["design"]["design"] == "stratified_equal" and hand["design"]["seeds"] == [3]
    assert [s["sample_id"] for s in hand["samples"]] == [draw.record["sample_id"]]
    assert hand["coders"] == {"human_ann": 27} and hand["estimates"]["convenience_codes_left_out"] == 2


def test_the_exported_design_columns_and_manifest_give_the_apps_estimates_on_the_command_line(home, tmp_path, capsys):
    """What the Export page writes (data with sample_stratum/sample_weight, manifest with the hand-coding
    entry) reproduces the app's corrected estimates in `textlab estimate`, and its paragraph names the design."""
    import json

    from analysis.cli import main
    from analysis.export import export_table, manifest_bytes
    from analysis.inference import estimate_report, with_sample_columns
    from analysis.provenance import hand_coding_manifest

    at = load_sample(new_app())
    project = _coded_project(at)
    frame = project.results_frame()
    draw = project.new_sample(frame, 60, design="stratified_equal", by="code_label", seed=5)
    indexed = frame.set_index("doc_id")
    truth = indexed["human_code"].where(indexed["human_code"].fillna("").ne(""), indexed["code_label"])
    project.save_annotations("Ann", {d: truth[d] for d in list(draw.doc_ids)[:50]})
    settings = {"pred": "code_label", "gold": ["human_ann"], "by": "region", "formula": None, "regression": "ols",
                "level": 0.95, "multi_label": False}
    data = project.with_human_codes(frame)
    design, membership = project.sample_design(), project.sample_membership()
    report = estimate_report(data, settings, membership, design)
    assert report.weights  # equal allocation over unequal codes: unequal weights
    exported = with_sample_columns(data, membership, report)
    assert exported["sample_stratum"].notna().sum() == 60 and exported["sample_weight"].notna().sum() == 50
    assert list(exported.columns[:len(data.columns)]) == list(data.columns)  # every column kept, in order
    path, manifest_path = tmp_path / "coded.csv", tmp_path / "coded.manifest.json"
    path.write_bytes(export_table(exported, "csv", name="coded").data)
    hand = hand_coding_manifest(records=project.sample_records(), design=design, coders={"human_ann": 50},
                                estimates=settings, report=report)
    manifest_path.write_bytes(manifest_bytes(project.manifests() + [hand]))
    out, methods = tmp_path / "estimates.csv", tmp_path / "methods.md"
    assert main(["estimate", str(path), "--pred", "code_label", "--gold", "human_ann", "--by", "region",
                 "--sampling-weights", "sample_weight", "--out", str(out), "--manifest", str(manifest_path),
                 "--methods", str(methods)]) == 0
    cli = pd.read_csv(out, keep_default_na=False)
    app = report.table.astype({"group": str})
    key = ["estimand", "code", "group", "estimator"]
    merged = app.merge(cli.astype({"group": str}), on=key, suffixes=("_app", "_cli"))
    assert len(merged) == len(app) == len(cli)
    for column in ("estimate", "ci_low", "ci_high"):
        a, c = pd.to_numeric(merged[f"{column}_app"]), pd.to_numeric(merged[f"{column}_cli"], errors="coerce")
        assert np.allclose(a, c, equal_nan=True, atol=1e-9), column
    paragraph = methods.read_text("utf-8")
    assert "stratified random sample with equal allocation" in paragraph and "(seed 5)" in paragraph
    assert "weighs N_s/n_s" in paragraph
    assert json.loads(manifest_path.read_text("utf-8"))[-1]["design"]["n_excluded"] == 0
