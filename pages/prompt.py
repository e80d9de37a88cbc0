"""Free prompt: your own question to a language model, one answer per text, with a preview of
the exact prompt and the texts beside their answers."""

from __future__ import annotations

import streamlit as st

from analysis.errors import TextlabError
from ui.language_model import (check_template, default_system, estimate_button, job_settings, model_notice, pick_text,
                               prompt_conversation, prompt_tokens, show_conversation, what_the_model_sees)
from ui.widgets import (analysis_header, job_status, latest_results, literal, run_history, run_summary, show_error,
                        submit_button)

DEFAULT_TEMPLATE = ("Which politician, party or public body does the text name? Answer with the names, separated by "
                    "commas, or with none.\n\nText: {text}")
DEFAULT_MAX_TOKENS = 48

project = analysis_header("prompt", "Ask a language model your own question about every text (extraction, open "
                                    "questions the codebook does not cover): one answer per text.")
info = project.info
frame_all = project.with_human_codes(project.corpus().data.reset_index(drop=True))

# The prompt being written lives in the project: a refresh or a restart reopens it as it was.
saved = project.settings("prompt")
keys = {"template": f"prompt_template_{project.id}", "system": f"prompt_system_{project.id}",
        "stop": f"prompt_stop_{project.id}", "max_tokens": f"prompt_tokens_{project.id}"}
defaults = {"template": DEFAULT_TEMPLATE, "system": default_system(), "stop": "", "max_tokens": DEFAULT_MAX_TOKENS}
for name, key in keys.items():
    if key not in st.session_state:
        st.session_state[key] = saved.get(name, defaults[name])

st.subheader("1 · Prompt")
template = st.text_area("Prompt template", key=keys["template"], height=140,
                        help="Put {text} where the text goes. Any column of the corpus can be named in braces too "
                             "({region}); write literal braces as {{ and }}.")
columns = [str(c) for c in frame_all.columns if c != info.text_column]  # the text itself is {text}
st.caption("Fields: `{text}` and any column in braces: " + ", ".join(literal("{" + c + "}", code=True) for c in columns))
system = st.text_area("System message", key=keys["system"], height=70,
                      help="The model's standing instruction, sent before the prompt.")
c1, c2 = st.columns(2)
stop = c1.text_input("Stop sequence (optional)", key=keys["stop"], placeholder="\\n",
                     help="The answer ends before it; \\n for the end of the first line.")
max_tokens = c2.number_input("Longest answer in tokens", 1, 4096, step=16, key=keys["max_tokens"],
                             help="Generation stops here: short answers keep a run fast.")
project.save_settings("prompt", {"template": template, "system": system, "stop": stop, "max_tokens": int(max_tokens)})

problem = None
try:
    check_template(template, frame_all)
except TextlabError as exc:
    problem = exc
    show_error(exc)

config = {"backend": "llm", **job_settings(), "template": template, "system": system.strip() or None,
          "stop": stop or None, "llm_max_tokens": int(max_tokens)}

st.subheader("2 · Preview")
model_notice()
position = pick_text(frame_all, info.text_column, key=f"prompt_row_{project.id}")
if problem is None and position is not None:
    row = frame_all.iloc[position].to_dict()
    text = str(frame_all[info.text_column].iloc[position])
    conversation = prompt_conversation(template, config["system"], text, row)
    st.caption("The exact messages the model gets for this text, with its fields filled in:")
    show_conversation(conversation)
    n = prompt_tokens(conversation)
    if n is not None:
        st.caption(f"{n:,} tokens of the model, plus at most {int(max_tokens):,} for the answer.")
    what_the_model_sees(project, "prompt", config, frame_all, info.text_column, key=f"prompt_seen_{project.id}",
                        show_prompt=False, row_position=position)

st.subheader("3 · Run")
if problem is None:
    estimate_button(project, "prompt", config, key=f"prompt_estimate_{project.id}")
submit_button(project, "prompt", "Run the prompt on every text", lambda: config)
job_status(project, "prompt")

results = latest_results(project, "prompt", "No answers yet: write the prompt, check the preview and press "
                                            "**Run the prompt on every text**.")
frame, manifest = results.frame, results.manifest
st.subheader("4 · Answers")
run_summary(manifest)
if manifest.get("prompt", {}).get("user") not in (None, template):
    st.info("These answers come from another template than the one above (it is in the run manifest below).",
            icon=":material/history:")
texts = frame[info.text_column].fillna("").astype(str).str.strip()
answers = frame["prompt_answer"]
asked = texts.ne("")
empty = asked & answers.isna()
m1, m2, m3 = st.columns(3)
m1.metric("Texts answered", f"{int((asked & answers.notna()).sum()):,}")
m2.metric("Empty answers", f"{int(empty.sum()):,}", help="The model answered nothing for these texts.")
m3.metric("Empty texts (not asked)", f"{int((~asked).sum()):,}")
only_empty = st.toggle("Only the texts with an empty answer", key="prompt_only_empty", disabled=not empty.any())
shown = frame[empty] if only_empty else frame[asked]
columns = ["doc_id", info.text_column, "prompt_answer"] + ([info.group_column] if info.group_column else [])
st.dataframe(shown[list(dict.fromkeys(columns))], hide_index=True,
             column_config={info.text_column: st.column_config.TextColumn(width="large"),
                            "prompt_answer": st.column_config.TextColumn("answer", width="large")})
st.caption("The answers are a column of the export (`prompt_answer`). Read a sample against the texts before "
           "counting anything.")
run_history(project, "prompt")
