"""Export: the corpus with every result column, and the provenance manifest."""

import streamlit as st

from analysis.errors import TextlabError
from analysis.export import EXPORT_FORMATS, export_table, manifest_bytes
from ui.widgets import literal, require_project, show_error

FORMAT_NAMES = {
    "csv": "CSV (UTF-8)", "xlsx": "Excel (.xlsx: data, codebook, runs sheets)", "parquet": "Parquet",
    "dta": "Stata (.dta, value labels)", "sav": "SPSS (.sav, value labels)", "tsv": "TSV (UTF-8)",
}

st.title("Export")
project = require_project()
latest = project.latest_runs()
frame = project.results_frame(latest)
n_coders = len(project.human_codes().columns)
frame = project.with_human_codes(frame)  # hand codes from the Validate page, one human_<coder> column each
manifests = project.manifests()
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
try:
    info = project.info
    date_column = info.date_column  # written as real dates to Stata, SPSS and Excel
    result = export_table(frame, fmt, name=project.name, bom=bom, neutralize=neutralize, runs=manifests,
                          codebook=codebook, date_columns=[date_column] if date_column else None,
                          date_order=info.date_order)
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
