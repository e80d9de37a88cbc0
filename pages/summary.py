"""Summaries: one per text, and per group, code or topic with the sentences they come from."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.errors import TextlabError
from analysis.export import export_table
from analysis.tasks.summary import (abstractive_model_if_available, group_columns, group_summaries_table,
                                    summarize_groups)
from analysis.tasks.prompting import close_backend
from ui.language_model import describe_choice, loaded_backend
from ui.widgets import (analysis_header, fast_toggle, literal, model_settings, run_controls, run_history, run_summary,
                        show_error)


def settings() -> dict:
    config = model_settings("summary")
    if config["backend"] != "transformers":
        c1, c2 = st.columns(2)
        config["max_sentences"] = int(c1.number_input("Extractive: sentences per summary", 1, 20, 3, key="sum_k"))
        config["min_words"] = int(c2.number_input("Texts shorter than this many words pass through unchanged",
                                                  1, 1000, 40, key="sum_min"))
        if fast_toggle("summary"):
            config = {**{k: v for k, v in config.items() if k not in ("model", "device", "batch_size")},
                      "backend": "offline", "fast": True}  # the extractive method on the fast model
    if config["backend"] != "offline":
        c1, c2 = st.columns(2)
        config["max_new_tokens"] = int(c1.number_input("Abstractive: longest summary (tokens)", 10, 512, 80, key="sum_max"))
        config["num_beams"] = int(c2.number_input("Beams (1 = greedy, fastest)", 1, 8, 1, key="sum_beams"))
    return config


project = analysis_header("summary", "A short summary of every text, and summaries of groups, codes and topics that "
                                     "cite their sources.")
info = project.info
run_controls(project, "summary", "Summarise every text", settings)
latest = project.latest_runs().get("summary")

frame = project.results_frame(project.latest_runs())
if latest is not None:
    st.subheader("Per text")
    run_summary(project.manifest(latest.id))
    query = st.text_input("Search the texts", key="sum_query", placeholder="a word or phrase")
    shown = frame[["doc_id", info.text_column, "summary"]]
    if query.strip():
        shown = shown[shown[info.text_column].astype(str).str.contains(query.strip(), case=False, regex=False)]
    st.dataframe(shown.head(500), hide_index=True,
                 column_config={info.text_column: st.column_config.TextColumn(width="large"),
                                "summary": st.column_config.TextColumn(width="large")})
    st.caption(f"{min(len(shown), 500):,} of {len(shown):,} rows shown. All rows are in the export.")
else:
    st.info("No per-text summaries yet: press **Summarise every text**. Group summaries below work without them.")

st.subheader("By group, code or topic")
candidates = group_columns(frame, text_column=info.text_column, id_column=info.id_column,
                           group_column=info.group_column)
if not candidates:
    st.info("Set a group column on the Data page, or run Codebook coding or Topics, to summarise groups.")
    run_history(project, "summary")
    st.stop()
by = st.selectbox("Summarise by", candidates, key="sum_by")
k = st.slider("Sentences per group", 2, 10, 5, key="sum_group_k")
abstract_model = abstractive_model_if_available()
use_abstract = st.toggle(f"Add an abstractive summary ({abstract_model})" if abstract_model
                         else "Abstractive summary (needs `textlab models download distilbart-cnn`)",
                         value=False, disabled=abstract_model is None, key="sum_abstract")
use_llm = st.toggle("Add a summary by the language model, citing the sentences", value=False, key="sum_llm",
                    help="The model chosen under Language model in the sidebar writes a few sentences from the "
                         "representative sentences below and cites them as [1], [2]; citations of sentences it was "
                         "not given are flagged.")
if use_llm:
    st.caption(f"Model: {describe_choice()}.")
key = f"group_summaries_{project.id}"
if st.button("Summarise groups", key="sum_groups"):
    backend = None
    try:
        if use_llm:
            with st.spinner("Loading the language model…"):
                backend = loaded_backend(project)
        with st.spinner("Choosing representative sentences" + (" and asking the language model…" if use_llm else "…")):
            table = summarize_groups(frame[info.text_column].fillna("").astype(str).tolist(), frame["doc_id"].tolist(),
                                     frame[by], k=k, cache_dir=project.embeddings_dir,
                                     abstractive=abstract_model if use_abstract else None, llm_backend=backend)
        st.session_state[key] = {"by": by, "table": table}
    except TextlabError as exc:
        show_error(exc)
    finally:
        if backend is not None:
            close_backend(backend)
saved = st.session_state.get(key)
if saved and saved["by"] == by:
    table: pd.DataFrame = saved["table"]
    texts = dict(zip(frame["doc_id"], frame[info.text_column].astype(str)))
    pick = st.selectbox("Group", table["group"].tolist(), key="sum_pick",
                        format_func=lambda g: f"{g} ({int(table.loc[table['group'] == g, 'texts'].iloc[0]):,} texts)")
    row = table[table["group"] == pick].iloc[0]
    if row["abstract"]:
        st.markdown("**Abstractive summary** (machine-written from the sentences below; check it against them)")
        st.text(row["abstract"])
    if "llm_summary" in table.columns:
        st.markdown("**Language model's summary** (machine-written from the numbered sentences below; check each "
                    "claim against the sentences it cites)")
        st.text(row["llm_summary"] or "(no answer)")
        if row["llm_bad_citations"]:
            st.warning("The model cited sentences it was not given: "
                       + ", ".join(f"[{n}]" for n in row["llm_bad_citations"]) + ". Read this summary with care.")
        elif not row["llm_cited"] and row["llm_summary"]:
            st.warning("The model cited none of the sentences: nothing ties this summary to the evidence.")
    st.markdown("**Representative sentences**, each from a different text (the evidence):")
    for n, item in enumerate(row["evidence"], start=1):
        with st.container(border=True):
            st.text(item["sentence"])
            st.caption(f"\\[{n}\\] text {literal(item['doc_id'], code=True)}, characters {item['start']}–{item['end']}")
            with st.expander("Whole text"):
                st.text(texts.get(item["doc_id"], ""))
    exported = export_table(group_summaries_table(table), "csv", name=f"summaries_by_{by}")  # formulas neutralised, like every export
    st.download_button("Download group summaries (CSV)", exported.data, exported.filename, exported.mime,
                       key="sum_download", on_click="ignore")
run_history(project, "summary")
