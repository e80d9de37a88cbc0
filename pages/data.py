"""Data: import a file (or the sample data), map its columns, check its quality, save a project."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from analysis import charts
from analysis.aggregate import text_counts
from analysis.corpus import SUPPORTED_EXTENSIONS, build_corpus, load_corpus, quality_report, read_file, suggest_columns
from analysis.datetimes import DATE_ORDERS, date_note, date_reading
from analysis.errors import TextlabError
from ui import state
from ui.widgets import literal, show_error
from ui.workshop import check_import

st.title("Data")
st.caption("Files are read on this machine and stored in your workspace; no text leaves it.")


@st.cache_data(max_entries=3, show_spinner="Reading the file…")
def _read(upload_key: str, _data: bytes, name: str, sheet, txt_mode: str, encoding: str | None, delimiter: str | None):
    # Keyed by the upload's id, not its bytes: hashing a 1 GB upload on every rerun is slow.
    return read_file(_data, name, sheet=sheet, txt_mode=txt_mode, encoding=encoding, delimiter=delimiter)


@st.cache_data(show_spinner=False)
def _sample_counts(path: str) -> str:
    # Counted from the file with the definition every page uses, not written by hand.
    frame, _ = read_file(path)
    return text_counts(frame["text"]).describe()


def _load_sample() -> None:
    try:
        check_import(n_bytes=state.SAMPLE_CORPUS.stat().st_size)  # workshop mode: the disk quota
        corpus, report = load_corpus(
            state.SAMPLE_CORPUS, text_column="text", id_column="respondent_id",
            group_column="region", date_column="date",
        )
        check_import(rows=len(corpus))
        project = state.workspace().create_project("Policy survey (sample)", corpus, import_report=report.__dict__)
    except TextlabError as exc:
        st.session_state["data_error"] = literal(exc, multiline=True)
        return
    state.set_project(project.id)
    st.session_state["data_notice"] = f"Loaded the sample data: {len(corpus):,} texts. Try Text statistics next."


@st.cache_data(max_entries=4, show_spinner="Checking data quality…")
def _quality_report(key: str, _corpus):
    # Keyed by project id or upload digest + columns: token counts of a big corpus take
    # seconds and must not be redone on every rerun.
    return quality_report(_corpus)


def _quality(corpus, key: str) -> None:
    report = _quality_report(key, corpus)
    cols = st.columns(5)
    cols[0].metric("Rows", f"{report.rows:,}")
    cols[1].metric("Empty texts", f"{report.empty:,}", help="Empty or whitespace-only. Kept, with empty results.")
    cols[2].metric("Exact duplicates", f"{report.duplicates:,}", help="Texts identical to an earlier row (after trimming spaces).")
    cols[3].metric("Median words", f"{report.words['median']:,.0f}")
    cols[4].metric(f"Over {report.long_threshold} tokens", f"{report.long_texts:,}",
                   help="Longer than a typical transformer window; those analyses split such texts.")
    left, right = st.columns(2)
    left.plotly_chart(charts.length_histogram(pd.Series(report.word_lengths), "words"))
    right.plotly_chart(charts.length_histogram(pd.Series(report.token_lengths), "tokens", threshold=report.long_threshold))
    if report.empty:
        st.caption(f"Empty texts (first ids): {literal(', '.join(map(str, report.empty_ids[:20])))}")
    if report.long_texts:
        st.caption(f"Texts over {report.long_threshold} tokens (first ids): "
                   f"{literal(', '.join(map(str, report.long_ids[:20])))}")
    if report.duplicate_examples:
        with st.expander(f"Duplicated texts ({report.duplicates:,} rows)"):
            st.dataframe(pd.DataFrame(report.duplicate_examples, columns=["text", "copies"]), hide_index=True)


def _import_report(report) -> None:
    details = [f"format **{report.format}**"]
    if report.encoding:
        details.append(f"encoding **{literal(report.encoding)}**")
    if report.delimiter:
        details.append(f"delimiter **{literal(repr(report.delimiter))}**")
    st.caption(f"Read {report.rows:,} rows × {len(report.columns)} columns from {literal(report.source, code=True)} · " + " · ".join(details))
    for warning in report.warnings:
        st.warning(literal(warning, multiline=True), icon=":material/warning:")
    if report.skipped:
        st.warning(f"{len(report.skipped):,} item(s) could not be read and were skipped (listed below).", icon=":material/warning:")
        with st.expander("Skipped items"):
            st.dataframe(pd.DataFrame([s.__dict__ for s in report.skipped]), hide_index=True)


_ORDER_LABELS = {"day-first": "day first (04/03/2021 is 4 March)", "month-first": "month first (04/03/2021 is 3 April)"}


@st.cache_data(max_entries=8, show_spinner=False)
def _needs_order(key: str, _column: pd.Series) -> bool:
    # Keyed by upload or project + column: reading a big column on every rerun is slow.
    return date_reading(_column).ambiguous


@st.cache_data(max_entries=8, show_spinner=False)
def _date_note(key: str, _column: pd.Series, name: str, order: str | None) -> str | None:
    return date_note(_column, name, order)


def _date_order_choice(name: str, current: str | None, key: str) -> str | None:
    """The radio for a column whose dates do not show their day/month order; None until chosen."""
    return st.radio(f"Dates are … ({literal(name)} does not show it)", DATE_ORDERS, key=key, horizontal=True,
                    index=DATE_ORDERS.index(current) if current in DATE_ORDERS else None,
                    format_func=_ORDER_LABELS.get,
                    help="No day in the column is above 12, so 04/03/2021 could be 4 March or 3 April. "
                         "Until you choose, its dates stay as text and charts over time ask for the order.")


def _notes(notes: list[str]) -> None:
    for note in notes:
        # What the import decided (ids, dates) is information; an order still to choose is a warning.
        (st.warning if "could be day-first or month-first" in note else st.info)(literal(note), icon=":material/info:")


def _chosen_order_caption(name: str | None, order: str | None) -> None:
    if name is not None and order is not None:
        st.caption(f"Dates in {literal(name)} are read {order}, as chosen.")


for key in ("data_notice", "data_error"):
    if key in st.session_state:
        (st.success if key == "data_notice" else st.error)(st.session_state.pop(key))  # escaped when stored

tab_upload, tab_sample, tab_projects = st.tabs(["Import a file", "Sample data", "Projects"])

with tab_sample:
    st.markdown(
        f"A fictional survey written for Textlab: {_sample_counts(str(state.SAMPLE_CORPUS))}, answers and posts "
        "on housing, transport, health care, climate and the cost of living, with region, age group, date and "
        "two human coders' codes. Good for a workshop: one click and everyone has the same data."
    )
    st.button("Load sample data", type="primary", on_click=_load_sample, key="load_sample")

with tab_upload:
    upload = st.file_uploader(
        "Corpus file", type=[e.lstrip(".") for e in SUPPORTED_EXTENSIONS],
        help="CSV/TSV, Excel, JSON/JSONL, Parquet, Stata, SPSS, plain text, or a ZIP of text files.",
    )
    if upload is not None:
        data = upload.getvalue()
        name = upload.name
        try:
            check_import(n_bytes=len(data))  # workshop mode: a participant's file size and disk quota
        except TextlabError as exc:
            show_error(exc)
            st.stop()
        # A new upload gets fresh column suggestions, cache entries and report.
        digest = getattr(upload, "file_id", None) or hashlib.sha1(data).hexdigest()[:12]
        lower = name.lower()
        with st.expander("Reading options"):
            sheet = st.text_input("Excel sheet (name or number; empty = first)", key="opt_sheet") if lower.endswith((".xlsx", ".xlsm")) else ""
            txt_mode = st.radio("Plain text", ["auto", "line", "file"], horizontal=True, key="opt_txt",
                                help="line: one document per line; file: the whole file is one document.") if lower.endswith(".txt") else "auto"
            encoding = st.text_input("Encoding (empty = detect)", key="opt_encoding") or None
            delimiter = st.text_input("Delimiter (empty = detect)", key="opt_delimiter", max_chars=1) or None
        sheet_arg = (int(sheet) if sheet.isdigit() else sheet) if sheet else None
        try:
            frame, report = _read(digest, data, name, sheet_arg, txt_mode, encoding, delimiter)
        except TextlabError as exc:
            show_error(exc)
            st.stop()
        _import_report(report)

        suggestion = suggest_columns(frame)
        columns = list(frame.columns)
        optional = ["(none)"] + columns

        def _pick(label, suggested, options, key, help_text):
            index = options.index(suggested) if suggested in options else 0
            value = st.selectbox(label, options, index=index, key=key, help=help_text)
            return None if value == "(none)" else value

        c1, c2, c3, c4 = st.columns(4)
        with c1:
            text_col = _pick("Text column", suggestion.text, columns, f"text_{digest}", "Suggested: the column with the longest texts.")
        with c2:
            id_col = _pick("ID column", suggestion.id, optional, f"id_{digest}", "Unique ids; none = stable row ids (doc-000001, …).")
        with c3:
            group_col = _pick("Group column", suggestion.group, optional, f"group_{digest}", "Groups to compare, e.g. region or party.")
        with c4:
            date_col = _pick("Date column", suggestion.date, optional, f"date_{digest}", "Dates for trends over time.")
        date_order = None
        read_key = f"upload-{digest}-{sheet_arg}-{txt_mode}-{encoding}-{delimiter}-{date_col}"
        if date_col is not None and _needs_order(read_key, frame[date_col]):
            date_order = _date_order_choice(date_col, None, f"order_{digest}_{date_col}")
        try:
            corpus = build_corpus(frame, text_col, id_column=id_col, group_column=group_col, date_column=date_col,
                                  source=name, date_order=date_order)
            check_import(rows=len(corpus))
        except TextlabError as exc:
            show_error(exc)
            st.stop()
        if id_col is not None and id_col != "doc_id":
            suggested = " (suggested: unique and non-empty in every row)" if id_col == suggestion.id else ""
            st.caption(f"The column {literal(id_col)} holds the document ids{suggested}; choose (none) as ID column "
                       "to number the rows instead (doc-000001, …).")
        _notes(corpus.notes)
        _chosen_order_caption(date_col, date_order)

        st.subheader("Preview")
        st.dataframe(corpus.data.head(200), hide_index=True)
        st.subheader("Data quality")
        _quality(corpus, f"upload-{digest}-{text_col}-{id_col}")

        st.subheader("Save as a project")
        project_name = st.text_input("Project name", value=name.rsplit(".", 1)[0], key=f"name_{digest}")
        if st.button("Create project", type="primary", key="create_project"):
            try:
                # The stored report says what the page said: read_file's warnings and the corpus notes.
                stored = {**report.__dict__, "warnings": [*report.warnings, *corpus.notes]}
                project = state.workspace().create_project(project_name, corpus, import_report=stored)
            except TextlabError as exc:
                show_error(exc)
            else:
                state.set_project(project.id)
                st.session_state["data_notice"] = f"Project '{literal(project_name)}' saved with {len(corpus):,} texts."
                st.rerun()

with tab_projects:
    projects = state.workspace().list_projects()
    if not projects:
        st.caption("No projects yet.")
    for info in projects:
        with st.container(border=True):
            left, mid, right = st.columns([6, 1, 1])
            left.markdown(f"**{literal(info.name)}** · {info.rows:,} texts · created {info.created[:16].replace('T', ' ')}")
            left.caption(f"{literal(info.source or '')} · text column {literal(info.text_column, code=True)} · "
                         f"id {literal(info.id, code=True)}")
            if mid.button("Open", key=f"open_{info.id}"):
                state.set_project(info.id)
                st.rerun()
            if right.button("Delete", key=f"delete_{info.id}"):
                st.session_state["confirm_delete"] = info.id
            if st.session_state.get("confirm_delete") == info.id:
                st.warning(f"Delete '{literal(info.name)}' and all its results? This cannot be undone.")
                if st.button("Yes, delete", key=f"really_delete_{info.id}"):
                    state.workspace().delete_project(info.id)
                    if st.session_state.get(state.PROJECT_KEY) == info.id:
                        state.forget_project()
                    st.session_state.pop("confirm_delete", None)
                    st.rerun()

project = state.current_project()
if project is not None and upload is None:
    st.divider()
    st.subheader(f"Open project: {literal(project.name)}")
    corpus = project.corpus()
    st.dataframe(corpus.data.head(200), hide_index=True)
    info = project.info
    dated = corpus.date_column
    if dated is not None:
        note = _date_note(f"project-{project.id}-{info.data_hash}-{dated}", corpus.data[dated], dated, corpus.date_order)
        _notes([note] if note else [])
        _chosen_order_caption(dated, corpus.date_order)
    needs_order = dated is not None and corpus.date_order is None and _needs_order(
        f"project-{project.id}-{info.data_hash}-{dated}", corpus.data[dated])
    with st.expander("Group and date columns", expanded=needs_order):
        st.caption("Text and id columns are fixed once analyses exist; groups and dates can change at any time.")
        others = ["(none)"] + [c for c in corpus.data.columns if c not in ("doc_id", corpus.text_column)]
        g1, g2 = st.columns(2)
        group_choice = g1.selectbox("Group column", others, key=f"roles_group_{project.id}",
                                    index=others.index(corpus.group_column) if corpus.group_column in others else 0)
        date_choice = g2.selectbox("Date column", others, key=f"roles_date_{project.id}",
                                   index=others.index(corpus.date_column) if corpus.date_column in others else 0)
        date_choice = None if date_choice == "(none)" else date_choice
        order_kwargs = {}  # left out: set_roles keeps the stored order while the date column stays
        if date_choice is not None and _needs_order(f"project-{project.id}-{info.data_hash}-{date_choice}",
                                                    corpus.data[date_choice]):
            current = corpus.date_order if date_choice == corpus.date_column else None
            order_kwargs["date_order"] = _date_order_choice(date_choice, current, f"roles_order_{project.id}_{date_choice}")
        if st.button("Save columns", key="save_roles"):
            project.set_roles(None if group_choice == "(none)" else group_choice, date_choice, **order_kwargs)
            st.rerun()
    with st.expander("Data quality", expanded=True):
        _quality(corpus, f"project-{project.id}")
