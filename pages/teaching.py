"""How models read text: tokenizers, windows of a long text, and the similarity of two texts."""

import pandas as pd
import streamlit as st

from analysis import charts
from analysis.errors import TextlabError
from analysis.reading import similarity, token_summary, tokenize, tokenizers, windows
from ui import state
from ui.language_model import job_settings, what_the_model_sees
from ui.widgets import literal, show_error

EXAMPLE = "Rents in Leipzig went up again 😩 – we can't afford a flat near the Hauptbahnhof anymore."

st.title("How models read text")
st.caption("A model never sees letters or words: a tokenizer first cuts the text into pieces from a fixed vocabulary "
           "and turns each piece into a number. Type a text (a survey answer, a tweet, a word in your language) "
           "and compare how two tokenizers cut it.")

text = st.text_area("Text", EXAMPLE, key="teach_text", height=100, max_chars=20_000)
found = tokenizers()
usable = [t for t in found if t.available]
tables: dict[str, pd.DataFrame] = {}
try:
    for info in usable:
        tables[info.name] = tokenize(info.name, text)
except TextlabError as exc:
    show_error(exc)
    st.stop()

st.subheader("1 · Tokens")
if text.strip():
    st.plotly_chart(charts.tokens_chart(tables), key="teach_tokens_chart")
    st.dataframe(pd.DataFrame([token_summary(name, text) for name in tables]), hide_index=True,
                 column_config={"tokens_per_word": st.column_config.NumberColumn("tokens per word"),
                                "chars_per_token": st.column_config.NumberColumn("characters per token"),
                                "vocabulary": st.column_config.NumberColumn("vocabulary size", format="%d")})
for info in found:
    if info.available:
        with st.expander(f"{info.name}: tokens and ids"):
            st.caption(literal(info.explains))
            st.dataframe(tables[info.name], hide_index=True, key=f"teach_table_{info.kind}")
    else:
        st.caption(f"{literal(info.name)} is not installed here: {literal(info.missing)}")
st.caption("SentencePiece (T5, XLM-R, Llama 2): no installed package ships one, so it is not shown. Rare words, "
           "names, emojis and languages other than English cost more tokens: a model reads them in more, smaller "
           "pieces, and an uncased WordPiece vocabulary writes an emoji as [UNK] (unknown).")

st.subheader("2 · Long texts are read in windows")
long_text = st.text_area("A long text (an interview answer, a speech)", (text + " ") * 30, key="teach_long",
                         height=120, max_chars=200_000)
try:
    parts, window = windows(long_text)
except TextlabError as exc:
    show_error(exc)
else:
    st.markdown(f"The embedding model reads at most **{window} tokens** at once. This text is cut into "
                f"**{len(parts)} window{'s' if len(parts) != 1 else ''}**, each embedded on its own; the text's "
                "vector is their average, weighted by length. Textlab cuts at word boundaries and keeps every word "
                "(many tools silently drop everything after the first window).")
    st.dataframe(pd.DataFrame({"window": range(1, len(parts) + 1), "characters": [len(p) for p in parts],
                               "begins with": [p[:80] for p in parts]}), hide_index=True, key="teach_windows")

st.subheader("3 · Meaning as distance")
st.caption("The embedding model turns each text into a vector; texts about the same thing point the same way. "
           "Cosine similarity: 1 the same direction, 0 unrelated.")
c1, c2, c3 = st.columns(3)
a = c1.text_input("Text 1", "Rents are far too high", key="teach_a")
b = c2.text_input("Text 2", "Housing has become unaffordable", key="teach_b")
c = c3.text_input("Text 3", "The bus never comes on time", key="teach_c")
try:
    st.dataframe(similarity([a, b, c]), key="teach_similarity")
except TextlabError as exc:
    show_error(exc)

st.subheader("4 · What a language model sees")
st.caption("A generative language model gets the text inside a prompt and answers in tokens too. Below: one text of "
           "the open project as the sentiment prompt the model (sidebar: Language model) is sent, its raw answer and "
           "the label read from it. The Codebook coding and Free prompt pages show the same for your own codebook "
           "and prompt.")
project = state.current_project()
if project is None:
    st.info("Open a project (Data page) to send one of its texts to the language model.", icon=":material/folder_open:")
else:
    frame = project.corpus().data
    what_the_model_sees(project, "sentiment", {"backend": "llm", **job_settings()}, frame, project.info.text_column,
                        key="teach_seen")
