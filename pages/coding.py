"""Codebook coding: write or load a codebook, code zero-shot or from coded rows, read the result."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis import aggregate, charts
from analysis.codebook import Codebook, codebook_bytes, read_codebook
from analysis.errors import TextlabError
from analysis.textutil import slug
from ui.widgets import (close_reading, dates_readable, job_status, literal, method_caveats, model_settings,
                        require_project, run_history, run_summary, show_error, submit_button)
from ui.state import SAMPLE_CODEBOOK

st.title("Codebook coding")
st.caption("Code every text into your own codebook: zero-shot from the codebook, or learned from rows people coded.")
project = require_project()
info = project.info
corpus = project.corpus()
latest = project.latest_runs().get("coding")

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
codes_frame = Codebook(codes=[]).to_frame() if not current.get("codes") else pd.DataFrame(
    [{"label": c.get("label", "") if isinstance(c, dict) else str(c),
      "definition": (c.get("definition") or "") if isinstance(c, dict) else "",
      "include": (c.get("include") or "") if isinstance(c, dict) else "",
      "exclude": (c.get("exclude") or "") if isinstance(c, dict) else "",
      "examples": "\n".join(c.get("examples") or []) if isinstance(c, dict) else ""} for c in current["codes"]])
edited = st.data_editor(
    codes_frame, num_rows="dynamic", width="stretch", hide_index=True, key=f"editor_{project.id}",
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
candidates = [c for c in frame_all.columns if c not in (info.text_column, info.id_column, info.date_column)
              and frame_all[c].dropna().astype(str).str.strip().ne("").any()
              and frame_all[c].nunique(dropna=True) <= 200]
method = st.radio(
    "How to code", ["zero-shot", "few-shot"], horizontal=True, key="coding_method",
    format_func={"zero-shot": "Zero-shot (from the codebook)", "few-shot": "Few-shot (learn from coded rows)"}.get,
    help="Zero-shot needs only the codebook. Few-shot learns from rows that people coded (a column of the data, "
         "or rows coded on the Validate page) and is usually much more accurate.",
)
config: dict = {}
if method == "zero-shot":
    config = model_settings("coding")
else:
    default = candidates.index(saved["labels_column"]) if saved.get("labels_column") in candidates else (
        candidates.index("human_code") if "human_code" in candidates else 0)
    if not candidates:
        st.info("No column with human codes. Import data with a column of codes, or hand-code rows on the "
                "Validate page.", icon=":material/info:")
        labels_column = None
    else:
        labels_column = st.selectbox("Column with human codes", candidates, index=default, key="coding_labels_col")
        coded = frame_all[labels_column].dropna().astype(str).str.strip()
        coded = coded[coded != ""]
        st.caption(f"{len(coded):,} coded rows: "
                   + ", ".join(f"{literal(k)} ({v})" for k, v in coded.value_counts().items()))
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
    if classifier == "setfit":
        from analysis.runner import resolve_device

        try:
            from analysis.fewshot import require_setfit

            require_setfit()
        except TextlabError as exc:
            show_error(exc)
        from analysis.fewshot import CPU_PAIRS_PER_SECOND, setfit_pairs

        n_coded = len(coded) if labels_column else 0
        pairs = setfit_pairs(n_coded)
        if resolve_device("auto").type == "cpu":
            st.warning(
                f"No GPU here: SetFit's {pairs:,} training pairs (6 fine-tunings on {n_coded:,} coded rows) take "
                f"roughly {max(1, round(pairs / CPU_PAIRS_PER_SECOND / 60)):,} min on a CPU. Logistic regression "
                "takes seconds.",
                icon=":material/hourglass:",
            )

    fs_key = f"fewshot_{project.id}"
    if labels_column and st.button("Check the few-shot model (cross-validation)", key="coding_check"):
        from analysis import fewshot
        from analysis.embeddings import Embedder
        from analysis.tasks.coding import training_rows

        try:
            with st.spinner("Embedding the coded rows and cross-validating…"):
                idx, codes = training_rows(corpus.texts, frame_all, labels_column, multi,
                                           book.output_labels if book else None)
                fewshot.check_training_codes(codes, multi, labels_column)
                embedder = Embedder(device="auto", cache_dir=project.folder / "embeddings")
                vectors = embedder.encode([corpus.texts[i] for i in idx])
                model = fewshot.FewShotModel(multi_label=multi, labels=book.output_labels if book else None)
                report = model.cross_validate(vectors, codes)
                curve = fewshot.learning_curve(vectors, codes, multi_label=multi)
            st.session_state[fs_key] = {"report": report, "curve": curve, "column": labels_column}
        except TextlabError as exc:
            show_error(exc)
    checked = st.session_state.get(fs_key)
    if checked and checked["column"] == labels_column:
        report = checked["report"]
        metrics = report["metrics"]
        if all(v["value"] is None for v in metrics.values()):
            from analysis.validation import MIN_SHARED_TEXTS

            st.info(f"{report['rows']:,} coded rows are too few for an estimate of the model's agreement "
                    f"(at least {MIN_SHARED_TEXTS} are needed); code more rows on the Validate page.",
                    icon=":material/info:")
        cols = st.columns(len(metrics))
        for col, (metric, v) in zip(cols, metrics.items()):
            if v["value"] is not None:
                col.metric(metric.replace("_", " "), f"{v['value']:.2f}",
                           help=f"95% bootstrap CI {v['ci_low']:.2f} to {v['ci_high']:.2f}" if v["ci_low"] is not None else None)
        st.caption(f"{report['folds']}-fold cross-validation on {report['rows']:,} coded rows: every row predicted by a "
                   "model that did not see it. Intervals: hover the figures."
                   + (" This check uses logistic regression (seconds); a SetFit run reports its own "
                      "cross-validation, usually higher with few coded rows." if classifier == "setfit" else ""))
        if report["unseen_codes"]:
            st.warning("No coded rows for " + ", ".join(map(literal, report["unseen_codes"]))
                       + ": these codes are never predicted.")
        st.plotly_chart(charts.learning_curve_chart(checked["curve"]), key="coding_curve")

if book is not None and method == "zero-shot":
    config["codebook"] = book.to_dict()
elif book is not None and book.codes and all(c.label for c in book.codes):
    config["codebook"] = book.to_dict()
config["method"] = method
config["multi_label"] = multi
project.save_settings("coding", {**project.settings("coding"), "method": method,
                                 "labels_column": config.get("labels_column"), "classifier": config.get("classifier")})
submit_button(project, "coding", "Run coding", lambda: config)
job_status(project, "coding")

# ---------------------------------------------------------------------- results

if latest is None:
    st.info("No coding results yet: write or load a codebook, choose the method and press **Run coding**.")
    run_history(project, "coding")
    st.stop()

st.subheader("3 · Results")
frame = project.results_frame({"coding": latest})
manifest = project.manifest(latest.id)
run_summary(manifest)
run_book = manifest.get("codebook")
if book is not None and run_book and Codebook.from_dict(run_book).version_tag() != book.version_tag():
    st.warning(f"These results were coded with codebook version `{Codebook.from_dict(run_book).version_tag()}`; "
               f"the editor above holds version `{book.version_tag()}`, which has not been run. Press **Run coding** "
               "to code with it, or reopen the run's codebook under *Load a codebook*.", icon=":material/history:")
labels: list[str] = manifest.get("labels") or []
is_multi = "code_labels" in frame.columns
label_col = "code_labels" if is_multi else "code_label"
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


def shares(group: str | None = None) -> pd.DataFrame:
    if is_multi:
        return aggregate.multi_label_shares(frame, label_col, labels, group)
    return aggregate.label_shares(frame, label_col, group)


st.plotly_chart(charts.label_distribution(shares(), label_col, order=labels,
                                          title="Share of texts per code (95% CI)"), key="coding_dist")
if info.group_column:
    st.plotly_chart(charts.label_distribution(shares(info.group_column), label_col, order=labels,
                                              title=f"Codes by {info.group_column} (95% CI)"), key="coding_by_group")
if info.date_column and not is_multi and dates_readable(info, frame):
    freq = aggregate.auto_freq(frame[info.date_column], date_order=info.date_order)
    table = aggregate.label_shares_over_time(frame, label_col, info.date_column, freq=freq, date_order=info.date_order)
    st.plotly_chart(charts.shares_over_time(table, label_col, order=labels,
                                            title="Codes over time (share of texts, 95% CI)"), key="coding_time")

st.subheader("Examples per code")
probability_columns = {label: f"code_{slug(label)}" for label in labels if f"code_{slug(label)}" in frame.columns}
if probability_columns:
    chosen = st.selectbox("Code", list(probability_columns), key="coding_pick")
    st.caption("Texts with the highest probability for this code; filter by the assigned code to see "
               "borderline cases.")
    close_reading(frame, info.text_column, probability_columns[chosen], label_column=label_col,
                  group_column=info.group_column, extra=[], key="coding_read")

    st.subheader("Code next")
    from analysis.fewshot import suggest_next

    probs = frame[list(probability_columns.values())].to_numpy(dtype=float)
    coded_mask = frame[info.text_column].astype(str).str.strip().eq("").to_numpy()
    if manifest.get("labels_column") and manifest["labels_column"] in frame_all.columns:
        # Not "|=": to_numpy() can hand back a read-only view of the frame.
        coded_mask = coded_mask | frame_all[manifest["labels_column"]].notna().to_numpy()
    picks = suggest_next(probs, k=20, exclude=coded_mask, multi_label=is_multi)
    st.caption("The 20 uncoded texts the model is least sure about (smallest gap between its two most probable "
               "codes). Coding these next teaches a few-shot model the most per row.")
    st.dataframe(frame.iloc[picks][["doc_id", info.text_column, label_col, *probability_columns.values()]],
                 hide_index=True, column_config={info.text_column: st.column_config.TextColumn(width="large")})
st.page_link("pages/validate.py", label="Check the codes against human coders", icon=":material/fact_check:")
run_history(project, "coding")
