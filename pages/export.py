"""Export: the corpus with every result column, the provenance manifest, and the corrected
estimates with a methods paragraph (from the settings saved on Validate > Corrected estimates)."""

import pandas as pd
import streamlit as st

from analysis.errors import TextlabError
from analysis.export import EXPORT_FORMATS, export_table, manifest_bytes
from analysis.inference import estimate_report, with_sample_columns
from analysis.provenance import REFERENCES, hand_coding_manifest, methods_paragraph
from analysis.validation import agreement
from ui.widgets import literal, require_project, show_error

FORMAT_NAMES = {
    "csv": "CSV (UTF-8)", "xlsx": "Excel (.xlsx: data, codebook, runs sheets)", "parquet": "Parquet",
    "dta": "Stata (.dta, value labels)", "sav": "SPSS (.sav, value labels)", "tsv": "TSV (UTF-8)",
}



@st.cache_data(max_entries=8, show_spinner="Computing corrected estimates…")
def _report(data: pd.DataFrame, settings: dict, membership: pd.DataFrame | None, design: dict | None):
    return estimate_report(data, settings, membership, design)


@st.cache_data(max_entries=8, show_spinner="Computing agreement for the methods paragraph…")
def _agreement(data: pd.DataFrame, pred: str, golds: tuple[str, ...], multi: bool) -> dict | None:
    gold = data[golds[0]] if len(golds) == 1 else {g: data[g] for g in golds}
    try:
        return agreement(data[pred], gold, multi_label=multi, pred_name=pred, n_boot=500).to_dict()
    except TextlabError:  # nothing to compare (no shared texts): the paragraph leaves agreement out
        return None


def _estimates(project, frame: pd.DataFrame, manifests: list[dict], design: dict | None,
               membership: pd.DataFrame | None):
    """The report and methods paragraph of the saved estimate settings, or (None, None)."""
    settings = project.settings("estimates")
    if not settings:
        st.caption("No corrected estimates yet: choose them in **Validate > Corrected estimates**, and the export "
                   "adds them with a methods paragraph.")
        return None, None
    try:
        report = _report(frame, settings, membership, design)
    except TextlabError as exc:
        st.markdown("**Corrected estimates** (from the settings saved on Validate > Corrected estimates):")
        show_error(exc)
        return None, None
    pred, golds = report.settings["pred"], tuple(g for g in report.settings.get("gold") or [] if g)
    is_mean = report.table["estimand"].eq("mean").any() or (
        bool(report.settings.get("formula")) and report.table["code"].astype(str).eq(str(pred)).all())
    found = None if is_mean else _agreement(frame[[pred, *golds]], pred, golds,
                                            bool(frame[pred].astype(str).str.contains(";", regex=False).any()))
    text = methods_paragraph(manifests=manifests, n_texts=len(frame), agreement=found, report=report,
                             design=design, references=REFERENCES)
    return report, text


st.title("Export")
project = require_project()
latest = project.latest_runs()
frame = project.results_frame(latest)
human = project.human_codes()
n_coders = len(human.columns)
frame = project.with_human_codes(frame)  # hand codes from the Validate page, one human_<coder> column each
manifests = project.manifests()
design = project.sample_design()
membership = project.sample_membership() if design else None
codebook = project.manifest(latest["coding"].id).get("codebook") if "coding" in latest else None

st.markdown(
    f"**{len(frame):,} rows × {len(frame.columns)} columns**: every input column and row, plus the results of "
    + (", ".join(f"`{t}`" for t in latest) if latest else "no analysis yet")
    + (f", and {n_coders} column(s) of hand codes" if n_coders else "")
    + "."
)
fmt = st.radio("Format", [f for f in EXPORT_FORMATS], format_func=lambda f: FORMAT_NAMES.get(f, f), horizontal=True, key="export_format")
col1, col2 = st.columns(2)
bom = col1.checkbox("Byte-order mark for Excel", value=False, disabled=fmt not in ("csv", "tsv"), key="export_bom",
                    help="Excel guesses the encoding of a CSV wrongly without it; other tools don't need it.")
neutralize = col2.checkbox(
    "Neutralise spreadsheet formulas", value=True, disabled=fmt not in ("csv", "tsv", "xlsx"), key="export_neutralize",
    help="Cells starting with = + - @ (or a tab/carriage return) get a leading ' so Excel or LibreOffice never runs "
         "them as formulas (CSV injection). Turn off only for data you will not open in a spreadsheet.",
)
report, methods = _estimates(project, frame, manifests, design, membership)
# The hand-coding design travels with the data: each text's stratum and the weight its code carried,
# and in the manifest the design, every draw and the estimate settings.
columns_before = set(frame.columns)
frame = with_sample_columns(frame, membership, report)
hand = hand_coding_manifest(records=project.sample_records(), design=design,
                            coders={c: int(human[c].notna().sum()) for c in human.columns},
                            estimates=report.settings if report is not None else None, report=report)
manifests = manifests + [hand] if hand else manifests
added = [c for c in frame.columns if c not in columns_before]
if added:
    st.caption("Also " + " and ".join(f"`{c}`" for c in added) + ": the stratum each text was drawn in for hand "
               "coding and the weight its hand code carried in the corrected estimates "
               "(`textlab estimate --sampling-weights sample_weight` on this file gives the same estimates).")
include = report is not None and st.checkbox(
    "Include corrected estimates and the methods paragraph", value=True, key="export_estimates",
    disabled=fmt != "xlsx",
    help="Adds the sheets 'estimates' (the long table) and 'methods' (the paragraph) to the Excel file. Other "
         "formats hold one table: download the estimates and the paragraph below.",
)
try:
    info = project.info
    date_column = info.date_column  # written as real dates to Stata, SPSS and Excel
    result = export_table(frame, fmt, name=project.name, bom=bom, neutralize=neutralize, runs=manifests,
                          codebook=codebook, date_columns=[date_column] if date_column else None,
                          date_order=info.date_order, estimates=report.table if include else None,
                          methods=methods if include else None)
except TextlabError as exc:
    show_error(exc)
    st.stop()
for warning in result.warnings:
    st.warning(literal(warning, multiline=True), icon=":material/warning:")
if result.renamed:
    with st.expander(f"{len(result.renamed)} column name(s) changed for {fmt}"):
        st.dataframe([{"column": k, "in the file": v} for k, v in result.renamed.items()], hide_index=True)
st.download_button(f"Download {literal(result.filename)}", result.data, file_name=result.filename, mime=result.mime,
                   type="primary", key="download_data", on_click="ignore")
st.download_button("Download the provenance manifest (JSON)", manifest_bytes(manifests),
                   file_name=f"{result.filename.rsplit('.', 1)[0]}.manifest.json", mime="application/json",
                   key="download_manifest", on_click="ignore", disabled=not manifests)
if manifests:
    with st.expander("What the manifest records"):
        st.json(manifests, expanded=False)
if report is not None:
    stem = result.filename.rsplit(".", 1)[0]
    st.subheader("Corrected estimates and methods paragraph")
    st.caption(f"From the settings saved on Validate > Corrected estimates: {literal(report.settings['pred'], code=True)}"
               f" corrected by {', '.join(literal(g, code=True) for g in report.settings.get('gold') or [])}"
               f" ({len(report.table):,} estimates; sample: {literal(report.design)}).")
    c1, c2 = st.columns(2)
    c1.download_button("Corrected estimates (CSV)", export_table(report.table, "csv", name=f"{stem}.estimates",
                                                                  neutralize=neutralize).data,
                       file_name=f"{stem}.estimates.csv", mime="text/csv", key="download_estimates", on_click="ignore")
    c2.download_button("Methods paragraph (Markdown)", methods.encode("utf-8"), file_name=f"{stem}.methods.md",
                       mime="text/markdown", key="download_methods", on_click="ignore")
    st.code(methods, language=None, wrap_lines=True)
