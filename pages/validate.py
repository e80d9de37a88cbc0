"""Validate: agreement between model codes and human coders, and blind hand-coding of a sample."""

from __future__ import annotations

import json
import re

import pandas as pd
import streamlit as st

from analysis import charts
from analysis.errors import TextlabError
from analysis.tasks import get_task, label_columns
from analysis.validation import METRICS, agreement, code_options, disagreements
from analysis.workspace import annotation_column, check_coder_name
from ui.estimates import corrected_estimates_tab
from ui.widgets import literal, require_project, show_error

# Column names that suggest human codes (the sample's human_code, hand codes human_<coder>, ...).
HUMAN_HINT = re.compile(r"human|coder|gold|manual|annot", re.IGNORECASE)
METRIC_LABELS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "cohen_kappa": "Cohen's kappa",
                 "krippendorff_alpha": "Krippendorff's alpha"}
SKIP = "(skip)"
# Sample designs (analysis.validation.DESIGNS): the choice, and how the caption names it.
DESIGN_LABELS = {"simple_random": "Simple random (for corrected estimates)",
                 "stratified_equal": "Equal per code (checks rare codes)",
                 "stratified_proportional": "Proportional to code"}
DESIGN_NAMES = {"simple_random": "simple random", "stratified_equal": "equal per code",
                "stratified_proportional": "proportional to code"}
SAMPLE_KEY = "validate_sample"

st.title("Validate")
st.caption("How well do the model's codes agree with human coders? Accuracy, macro-F1, Cohen's kappa and "
           "Krippendorff's alpha with 95% bootstrap intervals, per-code scores, and a form to hand-code a sample.")
project = require_project()
info = project.info

results = project.results_frame()
hand = project.human_codes()
frame = pd.concat([results.drop(columns=[c for c in hand.columns if c in results.columns]), hand], axis=1)

def _may_hold_codes(column: pd.Series) -> bool:
    """Not scores or probabilities: numbers only when whole (1.0, 2.0: numeric codes with gaps)."""
    if not pd.api.types.is_float_dtype(column):
        return True
    values = column.dropna()
    return bool(len(values)) and bool((values == values.round()).all())


# Columns that can hold codes: not the ids or texts, not scores/probabilities.
candidates = [c for c in frame.columns if c not in ("doc_id", info.text_column) and _may_hold_codes(frame[c])]
# Result columns that hold a model's codes, as the tasks declare them; codebook coding's
# first (what is validated most), then in the order the app lists the analyses.
model_task = {c: t for c, t in label_columns(frame.columns).items() if c in candidates}
model_cols = sorted(model_task, key=lambda c: model_task[c] != "coding")
human_cols = [c for c in candidates if HUMAN_HINT.search(str(c)) and c not in model_cols]

if not model_cols and not human_cols:
    st.info(
        "**Nothing to validate yet.** Validation compares a column of model codes with codes that people gave. "
        "This project has neither: run **Codebook coding** first (then hand-code a sample of its results here), "
        "or import a file that has human codes in a column (for example `human_code`).",
        icon=":material/fact_check:",
    )
    st.page_link("pages/coding.py", label="Go to Codebook coding", icon=":material/label:")
    st.page_link("pages/data.py", label="Import a file with human codes", icon=":material/folder_open:")
    st.stop()

options = model_cols + human_cols + [c for c in candidates if c not in model_cols and c not in human_cols]
default_pred = model_cols[0] if model_cols else human_cols[0]


@st.cache_data(max_entries=8, show_spinner="Computing agreement and bootstrap intervals…")
def _agreement(data: pd.DataFrame, pred: str, golds: tuple[str, ...], multi: bool):
    gold = data[golds[0]] if len(golds) == 1 else {g: data[g] for g in golds}
    return agreement(data[pred], gold, multi_label=multi, pred_name=pred)


def _codebook_codes() -> list[str]:
    """Labels of the latest coding run's codebook (with its 'none' label), if there is one."""
    run = project.latest_runs().get("coding")
    book = project.manifest(run.id).get("codebook") if run else None
    if not isinstance(book, dict):
        return []
    labels = [c.get("label") if isinstance(c, dict) else c for c in book.get("codes") or []]
    return [str(x) for x in labels + [book.get("none_label")] if x]


def _ci(lo: float, hi: float) -> str:
    return "–" if pd.isna(lo) or pd.isna(hi) else f"{lo:.2f} to {hi:.2f}"


# ---------------------------------------------------------------------- compare

compare, code_tab, estimates_tab = st.tabs(["Compare", "Hand-code a sample", "Corrected estimates"])

with compare:
    c1, c2, c3 = st.columns([2, 3, 1])
    pred_col = c1.selectbox("Model codes", options, index=options.index(default_pred), key="val_pred",
                            help="The column of codes to check, usually `code_label` from Codebook coding.")
    gold_default = [c for c in human_cols if c != pred_col]
    gold_cols = c2.multiselect("Human codes (one column per coder)", options, default=gold_default, key="val_gold",
                               help="Columns of codes that people gave, including your hand codes (`human_<name>`).")
    sample_values = frame[pred_col].dropna().astype(str).head(500)
    declared_multi = pred_col in model_task and pred_col in get_task(model_task[pred_col]).multi_label_columns
    multi = c3.checkbox("Multi-label", value=declared_multi or sample_values.str.contains(";").any(),
                        key=f"val_multi_{pred_col}", help="Codes are ';'-joined sets, e.g. 'Housing;Health care'.")
    golds = [g for g in gold_cols if g != pred_col]
    report = None
    if pred_col in gold_cols:
        st.caption(f"{literal(pred_col)} is the model column, so it is not compared with itself.")
    if not golds:
        st.info("Choose at least one column of human codes to compare with. No human codes yet? "
                "Hand-code a sample in the next tab.", icon=":material/person:")
    else:
        try:
            report = _agreement(frame[[pred_col, *golds]], pred_col, tuple(golds), multi)
        except TextlabError as exc:
            show_error(exc)

    if report is not None:
        main = report.main_comparison
        st.markdown(f"**{literal(main)}**: {report.n_compared:,} texts compared"
                    + (f", {report.n_missing:,} of {report.n_rows:,} left out" if report.n_missing else ""))
        # Below the minimum the report has counts only: say so instead of showing "–" bare.
        too_few = report.n_compared < report.min_shared
        if too_few:
            st.warning(f"Only {report.n_compared:,} text{'' if report.n_compared == 1 else 's'} coded by both: "
                       f"too few for an estimate (at least {report.min_shared:,} are needed), so no agreement "
                       "values or intervals are shown. Hand-code more texts in the next tab.", icon=":material/info:")
        cols = st.columns(4)
        rows = report.summary[report.summary["comparison"] == main].set_index("metric")
        for col, metric in zip(cols, METRICS):
            value, lo, hi = rows.loc[metric, ["value", "ci_low", "ci_high"]]
            interval = (f"too few texts (n = {report.n_compared:,})" if too_few else f"95% CI {_ci(lo, hi)}")
            col.metric(METRIC_LABELS[metric], "–" if pd.isna(value) else f"{value:.2f}",
                       help=f"{interval}, n = {report.n_compared:,} texts")
            col.caption(interval)
        for note in report.notes:
            st.caption(f"Note: {literal(note)}")

        table = report.summary.assign(
            metric=report.summary["metric"].map(METRIC_LABELS),
            **{"95% CI": [_ci(lo, hi) for lo, hi in zip(report.summary["ci_low"], report.summary["ci_high"])]},
        )[["comparison", "metric", "value", "95% CI", "n", "note"]]
        st.dataframe(table, hide_index=True, column_config={"value": st.column_config.NumberColumn(format="%.3f")})
        st.caption("Intervals: percentile bootstrap over texts (1,000 resamples, seed 0). Kappa and alpha correct "
                   "for chance agreement; 0.8 or more is commonly read as good agreement, below 0.67 as poor.")

        st.subheader("Per code")
        per_code = report.per_code.assign(**{"F1 95% CI": [_ci(lo, hi) for lo, hi in
                                                            zip(report.per_code["f1_ci_low"], report.per_code["f1_ci_high"])]})
        st.dataframe(per_code[["code", "precision", "recall", "f1", "F1 95% CI", "support", "predicted"]], hide_index=True,
                     column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("precision", "recall", "f1")})
        st.caption(f"{literal(main)}. Support: texts with the code from the humans; predicted: from the model.")
        left, right = st.columns(2)
        left.plotly_chart(charts.confusion_heatmap(
            report.confusion,
            title="Co-occurrence of codes: human (rows) vs model (columns)" if report.multi_label else None))
        right.plotly_chart(charts.prevalence_chart(report.prevalence))
        if report.summary["comparison"].nunique() > 1:
            st.plotly_chart(charts.agreement_chart(report.summary))

        st.subheader("Disagreements")
        st.caption("Texts where the model's code differs from a human code: read them to see what the model gets wrong.")
        # The scores beside the codes (code_<code>: the probability of each code) of the task that
        # wrote the model column (or of the default model column's, when two people are compared).
        score_task = get_task(model_task.get(pred_col) or model_task[model_cols[0]]) if model_cols else None
        p_cols = [c for c in frame.columns if score_task is not None and c not in model_task
                  and score_task.owns_column(str(c)) and pd.api.types.is_numeric_dtype(frame[c])]
        d1, d2 = st.columns([4, 1])
        picked = d1.multiselect("Only texts involving these codes", report.labels, key="val_dis_codes")
        limit = d2.number_input("Rows", 5, 1000, 50, step=5, key="val_dis_n")
        try:
            wrong = disagreements(frame, pred_col, golds, multi_label=multi, codes=picked or None)
        except TextlabError as exc:
            show_error(exc)
        else:
            shown = ["doc_id", info.text_column, pred_col, *golds, *p_cols]
            st.caption(f"{len(wrong):,} texts disagree" + (f"; showing the first {int(limit):,}" if len(wrong) > limit else ""))
            st.dataframe(wrong[list(dict.fromkeys(shown))].head(int(limit)), hide_index=True,
                         column_config={info.text_column: st.column_config.TextColumn(width="large")})

        d1, d2 = st.columns(2)
        d1.download_button("Download the report (CSV)", report.to_csv_bytes(),  # formulas neutralised
                           file_name="validation_report.csv", mime="text/csv", key="val_dl_csv")
        d2.download_button("Download the report (JSON)",
                           json.dumps(report.to_dict(), indent=2, ensure_ascii=False).encode("utf-8"),
                           file_name="validation_report.json", mime="application/json", key="val_dl_json")

# ---------------------------------------------------------------------- hand-code

with code_tab:
    st.caption("Draw a sample of texts and code them yourself. Coding is **blind**: the model's code is not shown, "
               "because seeing it first pulls a coder's judgement towards it (anchoring) and makes agreement look "
               "better than it is. The sample comes in random order for the same reason.")
    coder = st.text_input("Coder name", key="val_coder", max_chars=60,
                          help="Your name or initials. Your codes become the column `human_<name>`.").strip()
    c1, c2, c3, c4 = st.columns([1, 2, 2, 1])
    size = c1.number_input("Sample size", 1, max(len(frame), 1), min(50, len(frame)), key="val_size")
    design = c2.radio("Design", list(DESIGN_LABELS), format_func=DESIGN_LABELS.get, key="val_design",
                      help="Simple random: every text equally likely; the hand codes can then correct the model's "
                           "estimates. Equal per code: about as many texts per code, so rare codes are checked too. "
                           "Proportional: as often as the codes occur. Every design is recorded with its "
                           "probabilities, so stratified samples can correct estimates too.")
    by = None
    if design != "simple_random":
        by = c3.selectbox("Stratify by", options, index=options.index(pred_col), key=f"val_by_{pred_col}",
                          help="Usually the model's code.")
    seed = c4.number_input("Seed", 0, 2**31 - 1, 0, key="val_seed",
                           help="The same settings and seed draw the same texts. Adding to a sample uses a seed "
                                "not used in it yet.")
    mine: dict[str, str] = {}
    if coder:
        notes = project.annotations()
        mine = dict(zip(notes.loc[notes["coder"] == coder, "doc_id"], notes.loc[notes["coder"] == coder, "code"]))
    try:
        current = project.sample_design()
    except TextlabError as exc:
        show_error(exc)
        current = None
    if st.button("Draw sample", key="val_draw",
                 help="The same design (and column) adds texts not drawn yet to the current sample; another design "
                      "starts a new sample from all texts (the earlier one stays in the project's history)."):
        before = len(project.current_sample_ids()) if current else 0
        try:
            draw = project.new_sample(frame, int(size), design=design, by=by, seed=int(seed))
        except TextlabError as exc:
            show_error(exc)
        else:
            added = draw.record["continues"]
            st.session_state["val_pos"] = before if added else 0
            if added:
                st.success(f"Added {draw.record['n']:,} texts to the current sample (seed {draw.record['seed']}).")
            elif current:
                st.info("Started a new sample design. The earlier sample is kept in the project's history but is no "
                        "longer current: texts coded only there count as a convenience sample for corrected estimates.",
                        icon=":material/info:")
            current = project.sample_design()

    in_frame = set(frame["doc_id"].astype(str))
    ids = [d for d in (project.current_sample_ids() if current else []) if d in in_frame]
    st.session_state[SAMPLE_KEY] = {"project": project.id, "doc_ids": ids}
    if current:
        how = DESIGN_NAMES.get(current["design"], current["design"])
        if current["by"]:
            how += f" by {literal(current['by'], code=True)}"
        coded_here = sum(d in mine for d in ids)
        outside = len(set(mine) - set(ids))
        st.caption(f"Current sample: {how}, {current['n']:,} drawn of {current['population']:,}"
                   + (f"; {coded_here:,} coded by you" if coder else "")
                   + (f" ({outside:,} more of your hand-coded texts are outside it)" if outside else "")
                   + f". Drawn {len(current['samples'])} time{'' if len(current['samples']) == 1 else 's'}, seed"
                   + f"{'' if len(current['seeds']) == 1 else 's'} {', '.join(map(str, current['seeds']))}.")
        if current["by"]:
            with st.expander("Strata of the current sample"):
                strata = pd.DataFrame([{"stratum": name, "drawn": v["drawn"], "size": v["size"],
                                        "share drawn": v["drawn"] / v["size"] if v["size"] else float("nan")}
                                       for name, v in current["strata"].items()])
                if coder:
                    stratum_of = project.sample_membership().set_index(frame["doc_id"].astype(str))["sample_stratum"]
                    coded_by = pd.Series([stratum_of.get(d) for d in ids if d in mine], dtype=object).value_counts()
                    strata["coded by you"] = strata["stratum"].map(coded_by).fillna(0).astype(int)
                st.dataframe(strata, hide_index=True,
                             column_config={"share drawn": st.column_config.NumberColumn(format="%.2f")})
                st.caption("Size: texts of the stratum when the sample was first drawn. Each text of a stratum had "
                           "the same chance to be drawn, so the hand codes can be weighted back to the whole corpus.")
    else:
        st.caption("No sample drawn yet. A simple random sample lets the hand codes correct the model's estimates.")
    st.caption("Only texts drawn in the current recorded sample can correct estimates. Texts coded outside a recorded "
               "random sample (picked by hand, an earlier design, uploaded codes) are a convenience sample: fine for "
               "checking agreement, but they cannot correct estimates.")

    if ids:
        codes = code_options(frame[pred_col], multi_label=multi, extra=_codebook_codes())
        done = sum(d in mine for d in ids)
        st.progress(done / max(len(ids), 1), text=f"{done} of {len(ids)} coded" + ("" if coder else " (enter your name to save)"))
        # Where the coder was (this session); after a refresh, the first text not coded yet.
        pos = st.session_state.get("val_pos")
        if pos is None:
            pos = next((i for i, d in enumerate(ids) if d not in mine), len(ids))
        pos = min(max(int(pos), 0), len(ids))
        if pos >= len(ids):
            st.success(f"End of the sample: {done} of {len(ids)} texts coded. Compare "
                       f"{literal(annotation_column(coder) if coder else 'human_<name>', code=True)} with the model's codes in the Compare tab.")
            if st.button("Back to the first text", key="val_restart"):
                st.session_state["val_pos"] = 0
                st.rerun()
        else:
            doc = ids[pos]
            row = frame.loc[frame["doc_id"] == doc].iloc[0]
            st.caption(f"Text {pos + 1} of {len(ids)} · doc_id {literal(doc)}" + (" · coded" if doc in mine else ""))
            with st.container(border=True):
                text = row[info.text_column]
                st.text("" if pd.isna(text) else str(text))  # plain text: no markdown, no HTML
            existing = mine.get(doc)
            if multi:
                already = [c for c in (existing or "").split(";") if c in codes]
                choice = st.multiselect("Codes (none: leave the text uncoded)", codes, default=already, key=f"val_codes_{doc}")
                value = ";".join(choice) or None
            else:
                choices = [SKIP] + codes
                choice = st.selectbox("Code", choices, index=choices.index(existing) if existing in choices else 0,
                                      key=f"val_code_{doc}", help="(skip) leaves the text uncoded.")
                value = None if choice == SKIP else choice
            if not codes:
                st.warning("There are no codes to choose from: the model column is empty and no codebook is known.")
            b1, b2, b3 = st.columns(3)
            if b1.button("Previous", disabled=pos == 0, key="val_prev"):
                st.session_state["val_pos"] = pos - 1
                st.rerun()
            if b2.button("Save and next", type="primary", key="val_save"):
                try:
                    project.save_annotations(check_coder_name(coder), {doc: value})
                except TextlabError as exc:
                    show_error(exc)
                else:
                    st.session_state["val_pos"] = pos + 1
                    st.rerun()
            if b3.button("Next without saving", key="val_next"):
                st.session_state["val_pos"] = pos + 1
                st.rerun()

# ---------------------------------------------------------------------- corrected estimates

with estimates_tab:
    corrected_estimates_tab(project, frame, options, model_cols, human_cols)
