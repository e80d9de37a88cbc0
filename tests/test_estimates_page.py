"""AppTest of the Validate page's Corrected estimates tab: model-only vs corrected shares by region
and a regression, on the sample survey with a coding run written into the project."""

import numpy as np
import pandas as pd

from analysis.workspace import Workspace
from tests.test_pages import goto, load_sample, new_app
from tests.test_validate_page import texts_of

CODES = ["Housing", "Public transport", "Health care", "Cost of living", "Climate and energy"]


def _coded_sample():
    """The sample survey with a coding run whose codes are the first coder's, a third of them wrong."""
    at = load_sample(new_app())
    project = Workspace().project(at.query_params["project"])
    corpus = project.corpus().data
    rng = np.random.default_rng(1)
    truth = corpus["human_code"].fillna(pd.Series(rng.choice(CODES, len(corpus))))
    label = truth.where(rng.random(len(corpus)) < 0.67, "Housing")  # a model that over-calls Housing
    run = project.create_run("coding", {"backend": "offline"}, n_total=len(corpus), status="done")
    project.write_result(run.id, pd.DataFrame({"doc_id": corpus["doc_id"], "code_label": label}),
                         {"task": "coding", "codebook": {"codes": [{"label": c} for c in CODES], "none_label": None}})
    return at, project


def _tab(at):
    return next(t for t in at.tabs if t.label == "Corrected estimates")


def test_shares_by_region_model_only_beside_corrected_and_the_settings_are_kept(home):
    at, project = _coded_sample()
    at = goto(at, "pages/validate.py")
    assert not at.exception
    tab = _tab(at)
    assert at.selectbox(key="est_pred").value == "code_label"
    assert at.multiselect(key="est_gold").value == ["human_code", "human_code_2"]
    at.selectbox(key="est_by").set_value("region").run()
    assert not at.exception and not at.error
    tab = _tab(at)
    table = next(d.value for d in tab.dataframe)
    assert set(table["estimator"]) == {"model_only", "corrected"}
    assert set(table["group"]) - {""} == set(project.corpus().data["region"].dropna().astype(str))
    assert "No random sample has been drawn" in texts_of(tab.warning)  # the 80 coded rows are assumed random
    assert "majority of the coders (2 columns)" in texts_of(tab.caption)
    assert any(c.proto.spec for c in tab.get("plotly_chart"))
    assert project.settings("estimates")["by"] == "region"
    assert project.settings("estimates")["gold"] == ["human_code", "human_code_2"]
    # A refresh (a new session) comes back to the saved settings.
    from streamlit.testing.v1 import AppTest

    from tests.paths import ROOT

    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    fresh.query_params["project"] = project.id
    fresh.run()
    fresh = goto(fresh, "pages/validate.py")
    assert fresh.selectbox(key="est_by").value == "region"


def test_a_regression_of_a_code_on_region(home):
    at, project = _coded_sample()
    at = goto(at, "pages/validate.py")
    at.radio(key="est_kind").set_value("Regression on metadata").run()
    at.selectbox(key="est_code").set_value("Housing").run()
    at.multiselect(key="est_covariates").set_value(["region"]).run()
    assert not at.exception and not at.error
    tab = _tab(at)
    table = next(d.value for d in tab.dataframe)
    assert "Intercept" in set(table["estimand"]) and any(str(e).startswith("region[T.") for e in table["estimand"])
    assert "Formula: " in texts_of(tab.caption)
    assert project.settings("estimates")["formula"] == "Housing ~ region"
    # The planner plans each coefficient from the agreement of the 80 hand-coded texts.
    plan_for = at.selectbox(key="est_plan_code")
    assert plan_for.label == "For the coefficient of" and "Intercept" in plan_for.options
    plan_for.set_value(next(o for o in plan_for.options if o.startswith("region[T."))).run()
    assert not at.exception
    described = " ".join(m.value for m in _tab(at).markdown)
    assert "random hand codes the corrected 95% interval is about ±" in described and "50 more would make it" in described


def test_a_regression_planned_before_coding_from_an_assumed_accuracy(home):
    at, project = _coded_sample()
    project.save_annotations("Late", {project.corpus().data["doc_id"].iloc[0]: "Housing"})  # 1 code: too few
    at = goto(at, "pages/validate.py")
    at.multiselect(key="est_gold").set_value(["human_late"]).run()
    at.radio(key="est_kind").set_value("Regression on metadata").run()
    at.selectbox(key="est_code").set_value("Housing").run()
    at.multiselect(key="est_covariates").set_value(["region"]).run()
    assert not at.exception and not at.error
    described = lambda: " ".join(m.value for m in _tab(at).markdown)  # noqa: E731
    assert "before coding, with an assumed agreement" in described()
    weak = described()
    at.number_input(key="est_assume_acc_reg").set_value(0.95).run()
    assert described() != weak  # a better model needs fewer codes for the same interval


def test_a_coder_who_starts_after_the_tab_was_shown_joins_the_human_codes(home):
    at, project = _coded_sample()
    at = goto(at, "pages/validate.py")
    assert at.multiselect(key="est_gold").value == ["human_code", "human_code_2"]
    first = project.corpus().data["doc_id"].iloc[0]
    project.save_annotations("Late", {first: "Housing"})
    at.run()
    assert not at.exception
    assert at.multiselect(key="est_gold").value == ["human_code", "human_code_2", "human_late"]
    at.multiselect(key="est_gold").set_value(["human_late"]).run()  # a choice the user makes is kept
    at.run()
    assert at.multiselect(key="est_gold").value == ["human_late"]
