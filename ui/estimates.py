"""The Validate page's "Corrected estimates" tab: model-only vs corrected shares and regressions.

Glue only: the estimates, the design weights and the planner are ``analysis.inference``'s.
The settings are kept in the project (``project.settings("estimates")``), so a refresh comes
back to them and the Export page writes the same estimates and methods paragraph.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import streamlit as st

from analysis import charts
from analysis.errors import TextlabError
from analysis.export import export_table
from analysis.inference import (
    MIN_HUMAN,
    assumed_correlation,
    disagreements_beyond_intervals,
    estimate_report,
    needed_for_width,
    width_curve,
)
from analysis.validation import code_options
from ui.widgets import literal, show_error

NO_GROUP = "(overall only)"
SHARES, REGRESSION = "Shares of each code", "Regression on metadata"
_COEF_TITLE = "How many hand codes? Expected 95% interval (±) of the coefficient"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _term(name: str) -> str:
    """A column or code in a patsy formula: bare when it is an identifier, else Q("...")."""
    return name if _IDENTIFIER.match(name) else f"Q({json.dumps(str(name), ensure_ascii=False)})"


@st.cache_data(max_entries=8, show_spinner="Computing corrected estimates…")
def _report(data: pd.DataFrame, settings: dict, membership: pd.DataFrame | None, design: dict | None):
    return estimate_report(data, settings, membership, design)


def _design_caption(design: dict | None, n_coded: int) -> None:
    if not design:
        st.warning("No random sample has been drawn in **Hand-code a sample**, so the hand codes are taken as a simple "
                   "random sample of all texts. If they were chosen another way, the corrected estimates are not "
                   "valid: draw a simple random sample and code it for estimates you can defend.",
                   icon=":material/warning:")
        return
    kind = {"simple_random": "simple random sample", "stratified_equal": "stratified sample, equal per code",
            "stratified_proportional": "stratified sample, proportional to code"}.get(design.get("design"),
                                                                                      str(design.get("design")))
    by = f" by {literal(design.get('by'), code=True)}" if design.get("by") else ""
    st.caption(f"Hand codes from the recorded {kind}{by}: {design.get('total_drawn', design.get('drawn', '?'))} texts "
               f"drawn, {n_coded} hand-coded. Each stratum's texts count for the stratum's size, so the correction "
               "stays unbiased.")


def corrected_estimates_tab(project, frame: pd.DataFrame, options: list[str], model_cols: list[str],
                            human_cols: list[str]) -> None:
    info = project.info
    saved = project.settings("estimates")
    st.caption("Researchers publish estimates, not codes. Model codes taken as true give biased shares and "
               "intervals that are too narrow, even for an accurate model; a **random** sample of hand codes corrects "
               "both (prediction-powered inference, Angelopoulos et al. 2023). Below: the model-only and the corrected "
               "estimate of each share, side by side.")
    if not human_cols:
        st.info("No hand codes yet. Draw a simple random sample in **Hand-code a sample** and code it, or import a "
                "file with a column of human codes.", icon=":material/person:")
        return
    c1, c2 = st.columns([2, 3])
    pred_default = saved.get("pred") if saved.get("pred") in options else (model_cols or options)[0]
    pred = c1.selectbox("Model codes or score", options, index=options.index(pred_default), key="est_pred",
                        help="Any result column: codes from coding, sentiment or emotion labels, topics, or a score.")
    gold_default = [g for g in saved.get("gold") or [] if g in options and g != pred] or [
        c for c in human_cols if c != pred]
    # A coder who starts hand-coding after the tab was first shown joins the selection (a widget
    # keeps its value across reruns, so the new human_<name> column would otherwise stay out).
    seen = saved.get("human_columns")
    fresh = [c for c in human_cols if seen is not None and c not in seen and c != pred]
    if fresh:
        kept = [g for g in st.session_state.get("est_gold", gold_default) if g in options]
        st.session_state["est_gold"] = list(dict.fromkeys(kept + fresh))
    golds = c2.multiselect("Human codes (several coders: their majority)", [o for o in options if o != pred],
                           default=gold_default if "est_gold" not in st.session_state else None, key="est_gold",
                           help="A tie between coders counts half a text for each tied code.")
    kind = st.radio("Estimate", [SHARES, REGRESSION], horizontal=True, key="est_kind",
                    index=1 if saved.get("formula") else 0)
    meta = [c for c in frame.columns if c not in ("doc_id", info.text_column, pred, *golds)
            and not str(c).startswith(("human_", "code_", "emotion_", "sentiment_prob_", "topic_prob"))]
    settings: dict[str, Any] = {"pred": pred, "gold": golds, "human_columns": list(human_cols), "level": 0.95,
                                "by": None, "formula": None,
                                "regression": "ols", "multi_label": bool(frame[pred].astype(str).str.contains(";").any())}
    if kind == SHARES:
        groups = [NO_GROUP] + meta
        by_default = saved.get("by") if saved.get("by") in meta else (info.group_column if info.group_column in meta
                                                                       else NO_GROUP)
        by = st.selectbox("By group", groups, index=groups.index(by_default), key="est_by",
                          help="Also estimate each group of this column (region, party, wave).")
        settings["by"] = None if by == NO_GROUP else by
    else:
        codes = code_options(frame[pred], multi_label=settings["multi_label"])
        r1, r2, r3 = st.columns([2, 3, 1])
        target = r1.selectbox("Code (1 when the text has it)", codes or ["(no codes)"], key="est_code")
        covariates = r2.multiselect("Explained by", meta, default=[c for c in [info.group_column] if c in meta],
                                    key="est_covariates")
        model = r3.radio("Model", ["ols", "logistic"], key="est_model",
                         help="ols: linear probability model (coefficients in shares); logistic: log-odds.")
        if not covariates:
            st.info("Choose at least one metadata column to explain the code with.", icon=":material/tune:")
            return
        settings.update(formula=f"{_term(str(target))} ~ " + " + ".join(_term(str(c)) for c in covariates),
                        regression=model)
        st.caption(f"Formula: {literal(settings['formula'], code=True)}")
    if not golds:
        st.info("Choose at least one column of human codes.", icon=":material/person:")
        return
    project.save_settings("estimates", settings)  # the Export page writes the same estimates

    design = project.sample_design()
    membership = project.sample_membership() if design else None
    try:
        report = _report(frame, settings, membership, design)
    except TextlabError as exc:
        show_error(exc)
        return
    table = report.table
    n_human = int(table["n_human"].max()) if len(table) else 0
    _design_caption(design, n_human)
    if n_human < MIN_HUMAN:
        st.warning(f"{n_human} hand-coded text(s): at least {MIN_HUMAN} are needed to correct the estimates (fewer give "
                   "intervals that cannot be trusted). Hand-code more of the sample.",
                   icon=":material/info:")
    apart = disagreements_beyond_intervals(table)
    if len(apart):
        shown = ", ".join(f"{literal(r.code)}{' in ' + literal(r.group) if r.group else ''}"
                          + ("" if r.estimand in ("share", "mean") else f" ({literal(r.estimand)})")
                          + f": {r.model_only:.3f} vs {r.corrected:.3f}" for r in apart.head(6).itertuples())
        st.warning(f"**The model's codes mislead here**: the model-only and corrected intervals do not overlap for "
                   f"{len(apart)} estimate(s) ({shown}{', …' if len(apart) > 6 else ''}). Report the corrected ones.",
                   icon=":material/report:")
    st.plotly_chart(charts.estimates_chart(table), key="est_chart")
    shown = table.assign(**{"95% CI": [("–" if pd.isna(lo) else f"{lo:.3f} to {hi:.3f}")
                                       for lo, hi in zip(table["ci_low"], table["ci_high"])]})
    st.dataframe(shown[["estimand", "code", "group", "estimator", "estimate", "95% CI", "n_human", "n_model"]],
                 hide_index=True, column_config={"estimate": st.column_config.NumberColumn(format="%.3f")})
    for note in report.notes:
        st.caption(f"Note: {literal(note)}")
    st.download_button("Download the estimates (CSV, long format for Stata/R)",
                       export_table(table, "csv", name="corrected_estimates").data,  # formulas neutralised
                       file_name="corrected_estimates.csv", mime="text/csv", key="est_dl_csv", on_click="ignore")
    _planner(report, n_human, regression=kind == REGRESSION)


def _planner(report, n_human: int, *, regression: bool) -> None:
    st.subheader("How many hand codes?")
    st.caption("The corrected interval narrows with every random hand code, faster when the model agrees with "
               "the coders. Planned from the agreement so far, or, before any coding, from an assumed one.")
    p1, p2, p3 = st.columns(3)
    more = int(p1.number_input("More hand codes", 10, 5000, 50, step=10, key="est_more"))
    target = float(p2.number_input("Target ± (half-width)", 0.005, 0.5, 0.03, step=0.005, format="%.3f",
                                   key="est_target"))
    try:
        plans = report.plans(more) if n_human >= MIN_HUMAN else []
    except TextlabError as exc:
        show_error(exc)
        return
    if regression and not plans:
        _planner_before_coding_regression(report, more, target)
    elif plans:
        names = [p.code for p in plans]
        pick = p3.selectbox("For the coefficient of" if regression else "For the share of", names,
                            key="est_plan_code")
        plan = plans[names.index(pick)]
        st.markdown(literal(plan.describe()))
        need = needed_for_width(2 * target, plan.total, sd=plan.sd, rho=plan.rho)
        st.caption(f"For ±{target:.3f}: " + (f"about {need:,} random hand codes in all "
                                            f"({max(need - plan.n_human, 0):,} more)." if need else
                                            "not reachable even with every text hand-coded.")
                   + (f" Agreement (correlation of the model's and the coders' contributions to {literal(pick)}): "
                      if regression else f" Agreement (correlation of model and human codes of {literal(pick)}): ")
                   + f"{plan.rho:.2f}.")
        st.plotly_chart(charts.plan_chart(plan.curve, now=plan.n_human, target=target,
                                          title=_COEF_TITLE if regression else None), key="est_plan_chart")
    else:
        st.caption("Before any coding: plan from an assumed share and accuracy.")
        a1, a2, a3 = st.columns(3)
        share = float(a1.number_input("Assumed share", 0.01, 0.99, 0.3, step=0.05, key="est_assume_share"))
        accuracy = float(a2.number_input("Assumed accuracy on the code", 0.5, 1.0, 0.85, step=0.05,
                                         key="est_assume_acc"))
        total = int(a3.number_input("Texts", 10, 10_000_000, int(report.table["n_model"].max() or 1000),
                                    key="est_assume_total"))
        rho, sd = assumed_correlation(share, accuracy), (share * (1 - share)) ** 0.5
        need = needed_for_width(2 * target, total, sd=sd, rho=rho)
        st.caption(f"For ±{target:.3f}: " + (f"about {need:,} random hand codes." if need else "not reachable."))
        sizes = sorted({int(x) for x in pd.Series(range(1, 41)).map(lambda i: 10 * (total / 10) ** (i / 40))})
        st.plotly_chart(charts.plan_chart(width_curve(sizes, total, sd=sd, rho=rho), target=target),
                        key="est_plan_chart")


def _planner_before_coding_regression(report, more: int, target: float) -> None:
    st.caption("Before enough coding: plan from an assumed accuracy of the model on the code (the spread of each "
               "coefficient comes from the model-only regression of every text).")
    accuracy = float(st.number_input("Assumed accuracy on the code", 0.5, 1.0, 0.85, step=0.05,
                                     key="est_assume_acc_reg"))
    try:
        plans = report.plans(more, assumed_accuracy=accuracy)
    except TextlabError as exc:
        show_error(exc)
        return
    names = [p.code for p in plans]
    pick = st.selectbox("For the coefficient of", names, key="est_plan_code_assumed")
    plan = plans[names.index(pick)]
    st.markdown(literal(plan.describe()))
    need = needed_for_width(2 * target, plan.total, sd=plan.sd, rho=plan.rho)
    st.caption(f"For ±{target:.3f}: " + (f"about {need:,} random hand codes." if need else "not reachable."))
    st.plotly_chart(charts.plan_chart(plan.curve, target=target, title=_COEF_TITLE), key="est_plan_chart")
