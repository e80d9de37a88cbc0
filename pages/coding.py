"""Codebook coding: write or load a codebook, code zero-shot or from coded rows, read the result."""

from __future__ import annotations

import streamlit as st

from analysis import aggregate, charts
from analysis.codebook import Codebook, codebook_bytes, codes_table, read_codebook
from analysis.errors import TextlabError
from analysis.tasks.coding import (code_columns, code_shares, human_code_columns, human_code_counts, next_to_code,
                                   preview_fewshot, require_setfit, setfit_estimate)
from analysis.textutil import slug
from ui.language_model import estimate_button, stability_panel, stability_settings, what_the_model_sees
from ui.widgets import (analysis_header, close_reading, dates_readable, fast_toggle, job_status, latest_results,
                        literal, method_caveats, model_settings, run_history, run_summary, show_error, submit_button)
from ui import state
from ui.state import SAMPLE_CODEBOOK

project = analysis_header("coding", "Code every text into your own codebook: zero-shot from the codebook, or learned "
                                    "from rows people coded.")
info = project.info
corpus = project.corpus()

# ---------------------------------------------------------------------- codebook

# The codebook being written and the method settings live in the project (not only in this
# browser session): a refresh, a closed tab or a restart reopens them as they were.
saved = project.settings("coding")
coding_runs = project.runs("coding")
book_key = f"codebook_{project.id}"
if book_key not in st.session_state:
    start = saved.get("codebook")
    if start is None:  # the newest run's codebook, finished or not
        start = next((r.config.get("codebook") for r in coding_runs if r.config.get("codebook")), None)
    if start is None and info.source and "policy_survey" in str(info.source):
        start = read_codebook(SAMPLE_CODEBOOK).to_dict()
    st.session_state[book_key] = start or {"codes": [{"label": ""}, {"label": ""}]}
    for widget, setting in (("coding_method", "method"), ("coding_classifier", "classifier")):
        if saved.get(setting) is not None:
            st.session_state[widget] = saved[setting]


def _set_book(data: dict) -> None:
    st.session_state[book_key] = data
    for key in (f"editor_{project.id}", f"fewshot_{project.id}", f"cb_name_{project.id}", f"cb_multi_{project.id}",
                f"cb_none_{project.id}", f"cb_template_{project.id}"):
        st.session_state.pop(key, None)


st.subheader("1 · Codebook")
with st.expander("Load a codebook", expanded=False):
    c1, c2 = st.columns([3, 1])
    upload = c1.file_uploader("Codebook file (JSON, YAML or CSV)", type=["json", "yaml", "yml", "csv"], key="cb_upload")
    if upload is not None and c1.button("Use this file", key="cb_use_upload"):
        try:
            _set_book(read_codebook(upload.getvalue(), name=upload.name).to_dict())
            st.rerun()
        except TextlabError as exc:
            show_error(exc)
    if c2.button("Sample codebook", key="cb_sample", help="The policy-issues codebook that goes with the sample data."):
        _set_book(read_codebook(SAMPLE_CODEBOOK).to_dict())
        st.rerun()
    st.caption("Format: JSON or YAML with name, multi_label, hypothesis_template, none_label and codes "
               "(label, definition, include, exclude, examples); CSV with one row per code and at least a "
               "`label` column. See the README.")
    shared = state.workshop().broadcasts("codebook") if state.workshop() else []
    for item in shared:  # workshop mode: codebooks the facilitator sent to everyone
        if st.button(f"Use “{literal(item.name)}” from the facilitator", key=f"cb_shared_{item.id}"):
            _set_book(read_codebook(state.workshop().broadcast_path(item)).to_dict())
            st.rerun()
    with_books = [r for r in coding_runs if r.config.get("codebook")]
    if with_books:
        r1, r2 = st.columns([3, 1])
        reopen = r1.selectbox(
            "Or reopen the codebook of a run", [r.id for r in with_books], key="cb_run_pick",
            format_func=lambda rid: next(f"{r.status} · {r.started or r.created} · {r.id}" for r in with_books
                                         if r.id == rid))
        if r2.button("Use this run's codebook", key="cb_use_run"):
            _set_book(next(r.config["codebook"] for r in with_books if r.id == reopen))
            st.rerun()

current = st.session_state[book_key]
c1, c2, c3 = st.columns([2, 1, 2])
name = c1.text_input("Name", value=current.get("name") or "Codebook", key=f"cb_name_{project.id}")
multi = c2.toggle("Multi-label", value=bool(current.get("multi_label")), key=f"cb_multi_{project.id}",
                  help="Several codes per text (each code decided on its own) instead of exactly one.")
none_label = c3.text_input("'None of these' label (empty: every text gets a code)", value=current.get("none_label") or "",
                           key=f"cb_none_{project.id}")
template = st.text_input("Hypothesis template (transformer NLI models)", key=f"cb_template_{project.id}",
                         value=current.get("hypothesis_template") or "This text is about {}.")
edited = st.data_editor(
    codes_table(current.get("codes")), num_rows="dynamic", width="stretch", hide_index=True, key=f"editor_{project.id}",
    column_config={
        "label": st.column_config.TextColumn("Label", required=True, width="small"),
        "definition": st.column_config.TextColumn("Definition", width="large"),
        "include": st.column_config.TextColumn("Include", width="medium"),
        "exclude": st.column_config.TextColumn("Exclude", width="medium"),
        "examples": st.column_config.TextColumn("Examples (one per line)", width="large"),
    },
)
book: Codebook | None = None
if not edited["label"].fillna("").astype(str).str.strip().ne("").any():
    st.info("Write your codes in the table (a label and a definition each), or load a codebook above.",
            icon=":material/edit_note:")
else:
    try:
        book = Codebook.from_frame(edited, "The codebook table", name=name, multi_label=multi,
                                   none_label=none_label or None, hypothesis_template=template,
                                   version=current.get("version") or "")
    except TextlabError as exc:
        show_error(exc)
if book is not None:
    project.save_settings("coding", {**project.settings("coding"), "codebook": book.to_dict()})
    st.caption(f"{len(book.codes)} codes · version `{book.version_tag()}` (a fingerprint of the content; "
               "each run records it)")
    d1, d2, d3, _ = st.columns([1, 1, 1, 3])
    base = slug(book.name) or "codebook"
    d1.download_button("JSON", codebook_bytes(book, "json"), f"{base}.json", "application/json", key="cb_dl_json")
    d2.download_button("YAML", codebook_bytes(book, "yaml"), f"{base}.yaml", "text/yaml", key="cb_dl_yaml")
    d3.download_button("CSV", codebook_bytes(book, "csv"), f"{base}.csv", "text/csv", key="cb_dl_csv")

# ---------------------------------------------------------------------- method

st.subheader("2 · Method")
frame_all = project.with_human_codes(corpus.data.reset_index(drop=True))
candidates = human_code_columns(frame_all, exclude=(info.text_column, info.id_column, info.date_column))
method = st.radio(
    "How to code", ["zero-shot", "few-shot"], horizontal=True, key="coding_method",
    format_func={"zero-shot": "Zero-shot (from the codebook)", "few-shot": "Few-shot (learn from coded rows)"}.get,
    help="Zero-shot needs only the codebook. Few-shot learns from rows that people coded (a column of the data, "
         "or rows coded on the Validate page) and is usually much more accurate.",
)
config: dict = {}
if method == "zero-shot":
    config = model_settings("coding")
    if config.get("backend") in ("auto", "offline") and fast_toggle("coding"):
        config = {"backend": "offline", "fast": True}  # the embedding method on the fast model, no other model
else:
    default = candidates.index(saved["labels_column"]) if saved.get("labels_column") in candidates else (
        candidates.index("human_code") if "human_code" in candidates else 0)
    if not candidates:
        st.info("No column with human codes. Import data with a column of codes, or hand-code rows on the "
                "Validate page.", icon=":material/info:")
        labels_column = None
    else:
        labels_column = st.selectbox("Column with human codes", candidates, index=default, key="coding_labels_col")
        coded = human_code_counts(frame_all, labels_column)
        st.caption(f"{coded.sum():,} coded rows: " + ", ".join(f"{literal(k)} ({v})" for k, v in coded.items()))
    config = {"labels_column": labels_column, "backend": "offline"}
    classifier = st.radio(
        "Classifier", ["logistic", "setfit"], horizontal=True, key="coding_classifier",
        format_func={"logistic": "Logistic regression on embeddings (fast)",
                     "setfit": "SetFit: fine-tune the embedding model first (GPU)"}.get,
        help="SetFit tunes the embedding model on pairs of coded rows before the logistic regression; with few "
             "coded rows per code it is often more accurate. An honest cross-validated report needs one "
             "fine-tuning per fold plus the final one.",
    )
    config["classifier"] = classifier
    if fast_toggle("coding_fewshot", disabled=classifier == "setfit"):
        config["fast"] = classifier != "setfit"
    if classifier == "setfit":
        try:
            require_setfit()
        except TextlabError as exc:
            show_error(exc)
        estimate = setfit_estimate(int(coded.sum()) if labels_column else 0)
        if estimate.on_cpu:
            st.warning(
                f"No GPU here: SetFit's {estimate.pairs:,} training pairs ({estimate.fine_tunings} fine-tunings on "
                f"{estimate.n_coded:,} coded rows) take roughly {estimate.cpu_minutes:,} min on a CPU. Logistic "
                "regression takes seconds.",
                icon=":material/hourglass:",
            )

    fs_key = f"fewshot_{project.id}"
    if labels_column and st.button("Check the few-shot model (cross-validation)", key="coding_check"):
        try:
            with st.spinner("Embedding the coded rows and cross-validating…"):
                st.session_state[fs_key] = preview_fewshot(corpus.texts, frame_all, labels_column, multi_label=multi,
                                                           labels=book.output_labels if book else None,
                                                           cache_dir=project.embeddings_dir)
        except TextlabError as exc:
            show_error(exc)
    preview = st.session_state.get(fs_key)
    if preview is not None and preview.column == labels_column:
        for note in preview.notes:
            st.info(literal(note), icon=":material/info:")
        cols = st.columns(len(preview.metrics))
        for col, (metric, v) in zip(cols, preview.metrics.items()):
            if v["value"] is not None:
                col.metric(metric.replace("_", " "), f"{v['value']:.2f}",
                           help=f"95% bootstrap CI {v['ci_low']:.2f} to {v['ci_high']:.2f}" if v["ci_low"] is not None else None)
        st.caption(f"{preview.folds}-fold cross-validation on {preview.rows:,} coded rows: every row predicted by a "
                   "model that did not see it. Intervals: hover the figures."
                   + (" This check uses logistic regression (seconds); a SetFit run reports its own "
                      "cross-validation, usually higher with few coded rows." if classifier == "setfit" else ""))
        for warning in preview.warnings:
            st.warning(literal(warning))
        st.plotly_chart(charts.learning_curve_chart(preview.curve), key="coding_curve")

if book is not None and method == "zero-shot":
    config["codebook"] = book.to_dict()
elif book is not None and book.codes and all(c.label for c in book.codes):
    config["codebook"] = book.to_dict()
config["method"] = method
config["multi_label"] = multi
project.save_settings("coding", {**project.settings("coding"), "method": method,
                                 "labels_column": config.get("labels_column"), "classifier": config.get("classifier")})
if config.get("backend") == "llm" and book is not None:
    # One text through the model before a run: the prompt built from this codebook, the answer, the code.
    what_the_model_sees(project, "coding", config, frame_all, info.text_column, key="coding_seen")
    config.update(stability_settings(multi, len(corpus)))
    estimate_button(project, "coding", config, key="coding_estimate")
submit_button(project, "coding", "Run coding", lambda: config)
job_status(project, "coding")

# ---------------------------------------------------------------------- results

results = latest_results(project, "coding", "No coding results yet: write or load a codebook, choose the method and "
                                           "press **Run coding**.")
frame, manifest = results.frame, results.manifest
st.subheader("3 · Results")
run_summary(manifest)
stability_panel(manifest, corpus.texts, key="coding_stability")
run_book = manifest.get("codebook")
if book is not None and run_book and Codebook.from_dict(run_book).version_tag() != book.version_tag():
    st.warning(f"These results were coded with codebook version `{Codebook.from_dict(run_book).version_tag()}`; "
               f"the editor above holds version `{book.version_tag()}`, which has not been run. Press **Run coding** "
               "to code with it, or reopen the run's codebook under *Load a codebook*.", icon=":material/history:")
labels: list[str] = manifest.get("labels") or []
codes = code_columns(frame, labels)
label_col = codes.label
if manifest.get("cross_validation"):
    cv = manifest["cross_validation"]["metrics"]
    f1 = cv.get("macro_f1", {})
    if f1.get("value") is not None:
        st.caption(f"Few-shot model: cross-validated macro-F1 {f1['value']:.2f} "
                   f"[{f1['ci_low']:.2f}, {f1['ci_high']:.2f}] on {manifest.get('training_rows', 0):,} coded rows; "
                   "those rows carry out-of-fold predictions.")
elif manifest.get("method", "").startswith("zero-shot"):
    st.caption("Zero-shot codes are unvalidated until compared with human codes: hand-code a sample on the "
               "Validate page and report the agreement with the shares.")
method_caveats(manifest, frame, info.text_column, key="coding_non_english")

st.plotly_chart(charts.label_distribution(code_shares(frame, codes, labels), label_col, order=labels,
                                          title="Share of texts per code (95% CI)"), key="coding_dist")
if info.group_column:
    st.plotly_chart(charts.label_distribution(code_shares(frame, codes, labels, info.group_column), label_col,
                                              order=labels, title=f"Codes by {info.group_column} (95% CI)"),
                    key="coding_by_group")
if info.date_column and not codes.multi and dates_readable(info, frame):
    freq = aggregate.auto_freq(frame[info.date_column], date_order=info.date_order)
    table = aggregate.label_shares_over_time(frame, label_col, info.date_column, freq=freq, date_order=info.date_order)
    st.plotly_chart(charts.shares_over_time(table, label_col, order=labels,
                                            title="Codes over time (share of texts, 95% CI)"), key="coding_time")

st.subheader("Examples per code")
if codes.probabilities:
    chosen = st.selectbox("Code", list(codes.probabilities), key="coding_pick")
    st.caption("Texts with the highest probability for this code; filter by the assigned code to see "
               "borderline cases.")
    close_reading(frame, info.text_column, codes.probabilities[chosen], label_column=label_col,
                  group_column=info.group_column, extra=[], key="coding_read")

    st.subheader("Code next")
    st.caption("The 20 uncoded texts the model is least sure about (smallest gap between its two most probable "
               "codes). Coding these next teaches a few-shot model the most per row.")
    human = frame_all.get(manifest["labels_column"]) if manifest.get("labels_column") else None
    st.dataframe(next_to_code(frame, info.text_column, codes, human_codes=human, k=20),
                 hide_index=True, column_config={info.text_column: st.column_config.TextColumn(width="large")})
elif label_col in frame.columns:  # a language model on a server that gave no probabilities
    st.caption("The model's codes (the server gave no probabilities to sort them by); filter by code.")
    close_reading(frame, info.text_column, None, label_column=label_col, group_column=info.group_column,
                  extra=[], key="coding_read")
st.page_link("pages/validate.py", label="Check the codes against human coders", icon=":material/fact_check:")
run_history(project, "coding")
