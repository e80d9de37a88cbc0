"""The generative language model of backend llm, as the app shows it.

- the sidebar's **Language model** section: a model server (URL and model name, *Test
  connection* lists the server's models), a local model folder or ``.gguf`` file, or the
  embedded SmolLM2-135M-Instruct (weak, for trying things); a server outside this machine and
  its local network needs an explicit confirmation (``allow_remote``);
- the settings an analysis page adds for backend llm (``task_settings``): the model in use,
  *Explain each answer*, the longest answer;
- the free prompt's preview (``prompt_conversation``, ``check_template``) and the teaching
  view *What the model sees* (``what_the_model_sees``): one text, the exact prompt, the raw
  answer, what was read from it, and the token count of each.

The settings live in the session (every page reads the same ones) and in the open project
(``project.settings("llm")``), so a refresh or a restart comes back to them. The API key is
never asked for: it is read from ``TEXTLAB_LLM_API_KEY`` by the library.

Glue only: the prompts, the backends and the parsing are the library's (``analysis.llm``,
``analysis.tasks.prompting``, the tasks' predictors); nothing here builds a prompt of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from analysis import llm
from analysis.errors import TextlabError
from analysis.tasks import get_task, prompting
from analysis.tasks import prompt as prompt_task
from analysis.tasks.base import RunContext

from . import state
from .widgets import literal, show_error

SOURCES = ("embedded", "server", "local")
SOURCE_LABELS = {
    "embedded": "Embedded (weak, for trying things)",
    "server": "A model server (Ollama, vLLM, llama.cpp, LM Studio)",
    "local": "A local model folder or .gguf file",
}
# Setting -> the widget key that edits it. The settings themselves are kept under STORE: a
# widget that is not drawn on a run (the URL while "embedded" is chosen) loses its state.
FIELDS = {"source": "llm_source", "url": "llm_url", "model": "llm_model", "folder": "llm_folder",
          "allow_remote": "llm_allow_remote"}
DEFAULTS: dict[str, Any] = {"source": "embedded", "url": "", "model": "", "folder": "", "allow_remote": False}
STORE = "textlab_llm"
LOADED_FOR = "textlab_llm_project"     # the project whose saved settings the session holds
TESTED = "textlab_llm_tested"          # the last Test connection: url, models or error
API_KEY_NOTE = ("An API key, if the server needs one, is read from the `TEXTLAB_LLM_API_KEY` environment variable "
                "of the machine that runs Textlab: the app never asks for it and never stores it.")
EXPLAIN_TASKS = {"coding": "code_explanation", "sentiment": "sentiment_explanation", "emotion": "emotion_explanation"}


# ---------------------------------------------------------------------- the settings


def current() -> dict[str, Any]:
    """The language-model settings of this session (what the sidebar shows)."""
    return {**DEFAULTS, **st.session_state.get(STORE, {})}


def _restore(project) -> None:
    """Before the widgets are drawn: a project's saved settings the first time the session
    shows that project (a refresh, a restart, another project), and every widget's value from
    the store."""
    store = current()
    loaded = False
    if project is not None and st.session_state.get(LOADED_FOR) != project.id:
        st.session_state[LOADED_FOR] = project.id
        saved = project.settings("llm")
        if saved:
            store = {**DEFAULTS, **{k: saved[k] for k in DEFAULTS if k in saved}}
            if store["source"] not in SOURCES:
                store["source"] = DEFAULTS["source"]
            loaded = True
    st.session_state[STORE] = store
    for name, key in FIELDS.items():
        if loaded or key not in st.session_state:
            st.session_state[key] = store[name]


def _keep(project) -> None:
    """After the widgets: the store (and the open project) take their values."""
    store = current()
    store.update({name: st.session_state[key] for name, key in FIELDS.items() if key in st.session_state})
    st.session_state[STORE] = store
    if project is not None:
        project.save_settings("llm", store)  # no write when nothing changed


def job_settings() -> dict[str, Any]:
    """The chosen model as an LLM task's settings: llm_url, llm_model and allow_remote for a
    server, model for a local folder or file, nothing for the embedded default."""
    s = current()
    if s["source"] == "server":
        return {"llm_url": s["url"].strip() or None, "llm_model": s["model"].strip() or None,
                "allow_remote": bool(s["allow_remote"])}
    if s["source"] == "local":
        folder = s["folder"].strip()
        return {"model": str(Path(folder).expanduser()) if folder else None}
    return {}


WORKSHOP_SERVER = ("In a workshop the language model server must run on this server (127.0.0.1), so that nobody "
                   "sends the room's texts elsewhere or probes the network from it; ask the facilitator.")
WORKSHOP_FOLDER = ("In a workshop a model folder on the server cannot be chosen (its paths belong to everyone); use the "
                   "embedded model or the facilitator's model server.")


def check_ready() -> None:
    """Refuse a run whose model the sidebar does not name completely yet (an empty server URL
    would otherwise run the embedded model without saying so), and, in a workshop, one whose
    model lies outside what every participant may use."""
    s = current()
    if state.workshop_mode():
        if s["source"] == "local":
            raise TextlabError(WORKSHOP_FOLDER)
        if s["source"] == "server" and s["url"].strip() and _scope(s["url"].strip()) != "loopback":
            raise TextlabError(WORKSHOP_SERVER)
    if s["source"] == "server" and not s["url"].strip():
        raise TextlabError("No model server is set: give its URL (and the model's name) under Language model in "
                           "the sidebar, or choose the embedded model there.")
    if s["source"] == "local" and not s["folder"].strip():
        raise TextlabError("No model folder is set: give a local instruct-model folder or .gguf file under "
                           "Language model in the sidebar, or choose the embedded model there.")


def describe_choice() -> str:
    """The chosen model in a few words, as markdown (user strings shown literally)."""
    s = current()
    if s["source"] == "server":
        if not s["url"].strip():
            return "a model server (no URL yet)"
        model = literal(s["model"].strip(), code=True) if s["model"].strip() else "no model chosen"
        return f"{model} on {literal(s['url'].strip(), code=True)}"
    if s["source"] == "local":
        folder = s["folder"].strip()
        return literal(Path(folder).name or folder, code=True) + " in this process" if folder else "a local model (no folder yet)"
    return "the embedded SmolLM2-135M-Instruct (weak: for trying things)"


@st.cache_data(ttl=300, show_spinner=False, max_entries=64)
def _scope(url: str) -> str:
    # A host name is resolved once every few minutes, not on every rerun of every page.
    return llm.server_scope(url)


def list_server_models(url: str, *, allow_remote: bool = False) -> list[str]:
    """The model names an OpenAI-compatible server lists (ServerUnavailable, RemoteServerRefused
    and the like when it cannot be asked)."""
    return [str(m.get("id")) for m in llm.list_models(url, allow_remote=allow_remote) if m.get("id")]


def _test_connection() -> None:
    url = str(st.session_state.get(FIELDS["url"]) or "").strip()
    try:
        models = list_server_models(url, allow_remote=bool(st.session_state.get(FIELDS["allow_remote"])))
    except Exception as exc:  # shown by show_error: a clear message, never a traceback
        st.session_state[TESTED] = {"url": url, "error": exc}
        return
    st.session_state[TESTED] = {"url": url, "models": models}
    if models and not str(st.session_state.get(FIELDS["model"]) or "").strip():
        st.session_state[FIELDS["model"]] = models[0]


def _url_changed() -> None:
    # A confirmation is for one host: a new URL asks again.
    st.session_state[FIELDS["allow_remote"]] = False


def _pick_model() -> None:
    st.session_state[FIELDS["model"]] = st.session_state["llm_pick"]


# ---------------------------------------------------------------------- the sidebar


def sidebar_section(project) -> None:
    """The sidebar's Language model section (drawn on every page)."""
    _restore(project)
    with st.expander("Language model", icon=":material/smart_toy:"):
        sources = [x for x in SOURCES if x != "local"] if state.workshop_mode() else list(SOURCES)
        if st.session_state.get(FIELDS["source"]) not in sources:
            st.session_state[FIELDS["source"]] = sources[0]
        source = st.radio("Which model", sources, format_func=SOURCE_LABELS.get, key=FIELDS["source"],
                          help="The model that answers when an analysis uses the generative language model "
                               "backend (coding, sentiment, emotion, free prompt).")
        if source == "server":
            _server_settings()
        elif source == "local":
            _folder_settings()
        else:
            _embedded_settings()
        st.caption(API_KEY_NOTE)
    _keep(project)
    st.caption(f"Language model: {describe_choice()}")


def _server_settings() -> None:
    url = st.text_input("Server URL", key=FIELDS["url"], placeholder="http://127.0.0.1:11434/v1",
                        on_change=_url_changed,
                        help="The OpenAI-compatible address of a server you run: Ollama `http://127.0.0.1:11434/v1`, "
                             "vLLM `http://127.0.0.1:8000/v1`, llama.cpp `http://127.0.0.1:8080/v1`.").strip()
    model = st.text_input("Model name on the server", key=FIELDS["model"], placeholder="llama3.1:8b",
                          help="Test connection lists the models the server has.").strip()
    if not url:
        st.caption("Ollama: `http://127.0.0.1:11434/v1` · vLLM: `http://127.0.0.1:8000/v1`")
        return
    try:
        scope = _scope(url)
    except TextlabError as exc:
        show_error(exc)
        return
    if state.workshop_mode() and scope != "loopback":
        st.error(WORKSHOP_SERVER, icon=":material/block:")
        return
    if scope == "remote":
        host = urlsplit(url).hostname or url
        st.warning(f"{literal(host, code=True)} is not on this machine or its local network.",
                   icon=":material/public:")
        st.checkbox(f"Every text will be sent to {literal(host)}: I agree", key=FIELDS["allow_remote"],
                    help="Without this, a server outside this machine and its local network is refused. Only agree "
                         "if your data may leave the machine (consent, data protection).")
    else:
        st.caption("On this machine: the texts stay here." if scope == "loopback"
                   else "On your local network: the texts go to that machine, not beyond it.")
    st.button("Test connection", key="llm_test", on_click=_test_connection)
    tested = st.session_state.get(TESTED)
    if not tested or tested["url"] != url:
        return
    if tested.get("error") is not None:
        show_error(tested["error"])
        return
    models = tested["models"]
    if not models:
        st.warning("The server answers but lists no model: load or pull one on the server first.")
        return
    st.success(f"Connected: the server lists {len(models)} model{'s' if len(models) != 1 else ''}.",
               icon=":material/check_circle:")
    if st.session_state.get("llm_pick") not in models:
        st.session_state["llm_pick"] = model if model in models else models[0]
    st.selectbox("Models on the server", models, key="llm_pick", on_change=_pick_model)
    if model and model not in models:
        st.warning(f"{literal(model, code=True)} is not among them: pick one above.")


def _folder_settings() -> None:
    folder = st.text_input("Model folder or .gguf file", key=FIELDS["folder"],
                           placeholder="~/models/SmolLM2-1.7B-Instruct",
                           help="An instruct (chat) model on this machine: a Hugging Face folder with config.json "
                                "and safetensors weights, or a .gguf file (needs pip install gguf).").strip()
    if not folder:
        return
    path = Path(folder).expanduser()
    if not path.exists():
        st.warning(f"Nothing at {literal(str(path), code=True)}.", icon=":material/folder_off:")
    elif path.is_dir() and not (path / "config.json").is_file():
        st.warning(f"{literal(str(path), code=True)} has no config.json: it is not a model folder.",
                   icon=":material/folder_off:")
    else:
        st.caption("Runs in this process (a GPU helps); no text leaves the machine.")


def _embedded_settings() -> None:
    st.caption(literal(llm.EMBEDDED_NOTE))
    try:
        llm.embedded_gguf()
    except TextlabError as exc:
        show_error(exc)


# ---------------------------------------------------------------------- on an analysis page


def model_notice() -> None:
    """Which model will answer, and plainly that the embedded one is weak."""
    s = current()
    if s["source"] == "embedded":
        st.warning(literal(llm.EMBEDDED_NOTE) + " Set a model server under **Language model** in the sidebar "
                   "for real work.", icon=":material/science:")
        try:
            llm.embedded_gguf()
        except TextlabError as exc:
            show_error(exc)
        return
    try:
        check_ready()
    except TextlabError as exc:
        st.warning(literal(exc), icon=":material/settings:")
        return
    where = ""
    if s["source"] == "server":
        try:
            scope = _scope(s["url"].strip())
        except TextlabError:
            scope = None
        if scope == "remote" and not s["allow_remote"]:
            st.warning(f"{describe_choice()} is outside this machine and its local network: a run is refused until "
                       "you agree under **Language model** in the sidebar that every text is sent there.",
                       icon=":material/public:")
            return
        where = {"loopback": " (this machine)", "lan": " (your local network)",
                 "remote": " (outside this machine and its network: every text is sent there)"}.get(scope, "")
    st.info(f"Language model: {describe_choice()}{where}. Change it under **Language model** in the sidebar.",
            icon=":material/smart_toy:")


def task_settings(task: str) -> dict[str, Any]:
    """An analysis's settings for backend llm: the sidebar's model, *Explain each answer* and
    the longest answer; returns the run's config."""
    model_notice()
    c1, c2 = st.columns(2)
    column = EXPLAIN_TASKS.get(task)
    explain = c1.toggle("Explain each answer", key=f"{task}_explain",
                        help="The model adds one sentence on why it chose its answer"
                             + (f" (the {column} column, shown beside the text in close reading)" if column else "")
                             + ". Slower: a sentence per text instead of a label.")
    automatic = prompting.MAX_TOKENS_EXPLAINED if explain else prompting.MAX_TOKENS_LABEL
    tokens = c2.number_input("Longest answer in tokens (0 = automatic)", 0, 4096, 0, step=16, key=f"{task}_max_tokens",
                             help=f"Automatic: {prompting.MAX_TOKENS_LABEL} for a label, "
                                  f"{prompting.MAX_TOKENS_EXPLAINED} with an explanation (now {automatic}).")
    config: dict[str, Any] = {"backend": "llm", **job_settings(), "explain": bool(explain)}
    if tokens:
        config["llm_max_tokens"] = int(tokens)
    return config


# ---------------------------------------------------------------------- the free prompt


def check_template(template: str, frame: pd.DataFrame | None) -> None:
    """Raise TextlabError when the template cannot be filled for this corpus: bad braces, no
    {text}, or a {field} the corpus has no column for (the message lists the columns)."""
    fields = prompt_task.template_fields(template or "")
    if "text" not in fields:
        raise TextlabError("The prompt template must say where the text goes: put {text} in it.")
    task = get_task("prompt")
    task.check(task.Config(template=template), RunContext(texts=[], frame=frame))


def prompt_conversation(template: str, system: str | None, text: str, row: dict | None = None) -> llm.Conversation:
    """The exact messages the free prompt sends for one text and its row of metadata: the
    library's own pieces (``render`` and the conversation builder), so a preview is the prompt."""
    return prompting.conversation(system or prompt_task.DEFAULT_SYSTEM, prompt_task.render(template, text, row))


def default_system() -> str:
    return prompt_task.DEFAULT_SYSTEM


# ---------------------------------------------------------------------- what the model sees


def _conversation_of(task: str, predictor, text: str, row: dict | None) -> llm.Conversation:
    """The conversation the task's own predictor sends for one text."""
    if task == "prompt":
        return predictor.conversation(text, row)
    if task == "coding":
        from analysis.tasks.coding import generative

        return generative.conversation(predictor.instructions, text)
    prompter = getattr(predictor, "prompter", predictor)  # sentiment wraps a LabelPrompter
    return prompter.conversation(text)


def _count(tokenizer, text: str | None) -> int | None:
    if tokenizer is None or not text:
        return None
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def ask_one(project, task: str, config: dict[str, Any], text: str, row: dict | None = None) -> dict[str, Any]:
    """Run one text through the task's own predictor (the backend the settings name) and say
    what happened: the exact prompt, the raw answer, what was read from it, token counts.

    The answer goes through the project's answer cache, so the run later reuses it."""
    task_ = get_task(task)
    cfg = task_.Config.from_dict(config)
    task_.validate(cfg)
    predictor = task_.load(cfg, RunContext(texts=[text], project=project))
    try:
        prompter = getattr(predictor, "prompter", predictor)
        backend, params = prompter.backend, prompter.params
        conversation = _conversation_of(task, predictor, text, row)
        retried = 0
        explanation = None
        if task == "prompt":
            (answer,) = backend.chat([conversation], params)
            parsed: str | None = answer.text.strip() or None
        else:
            answers, found, explanations, retried = prompting.choose(backend, [conversation], params,
                                                                     list(params.choices))
            answer, explanation = answers[0], explanations[0]
            parsed = None if found[0] is None else "; ".join(found[0]) if found[0] else "(no code)"
        tokenizer = getattr(backend, "tokenizer", None)  # in process: the model's own tokenizer
        return {
            "text": text, "conversation": conversation, "raw": answer.text, "parsed": parsed,
            "explanation": explanation, "retried": retried, "cached": answer.cached,
            "probabilities": answer.choice_probs, "in_process": tokenizer is not None,
            "tokens": {"prompt": answer.prompt_tokens, "answer": answer.completion_tokens,
                       "parsed": _count(tokenizer, parsed)},
            "model": backend.describe().get("model"),
        }
    finally:
        predictor.close()


@st.cache_resource(show_spinner=False, max_entries=4)
def _tokenizer(folder: str):
    from transformers import AutoTokenizer

    path = Path(folder)
    if path.is_file():  # a .gguf file
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def prompt_tokens(conversation: llm.Conversation) -> int | None:
    """The prompt's length in the in-process model's tokens (its chat template applied), or
    None when no tokenizer is at hand without loading a model (a server; the embedded model
    before its one-time conversion)."""
    s = current()
    folder = None
    if s["source"] == "local" and s["folder"].strip():
        folder = Path(s["folder"].strip()).expanduser()
    elif s["source"] == "embedded":
        from analysis.models import textlab_models_dir

        converted = textlab_models_dir() / llm.EMBEDDED_MODEL
        folder = converted if (converted / "config.json").is_file() else None
    if folder is None or not folder.exists():
        return None
    try:
        tokenizer = _tokenizer(str(folder))
        ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
    except Exception:  # no chat template, an unreadable folder: the run will say what is wrong
        return None
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def show_conversation(conversation: llm.Conversation) -> None:
    """The messages as they are sent (code blocks: shown exactly, nothing rendered; a long one
    scrolls)."""
    for message in conversation:
        st.caption(f"**{literal(message['role'])}**")
        long = message["content"].count("\n") > 14 or len(message["content"]) > 1500
        st.code(message["content"], language=None, wrap_lines=True, height=360 if long else "content")


def what_the_model_sees(project, task: str, config: dict[str, Any], frame: pd.DataFrame, text_column: str, *,
                        key: str, show_prompt: bool = True, row_position: int | None = None) -> None:
    """The teaching view: one text, the exact prompt, the model's raw answer, what was read from
    it and the token count of each. ``row_position``: the text (a row of ``frame``) when the
    page has picked one; otherwise a picker of the first texts."""
    with st.expander("What the model sees", icon=":material/visibility:"):
        if row_position is None:
            row_position = pick_text(frame, text_column, key=f"{key}_pick")
            if row_position is None:
                return
        text = str(frame[text_column].iloc[row_position])
        row = frame.iloc[row_position].to_dict()
        st.caption("One text, sent exactly as a run sends it; **Ask the model** runs it now (the answer is kept in "
                   "the project's answer cache, so the run reuses it).")
        if show_prompt:
            try:
                preview = preview_conversation(task, config, text, row)
            except TextlabError as exc:
                show_error(exc)
                return
            show_conversation(preview)
            n = prompt_tokens(preview)
            if n is not None:
                st.caption(f"The prompt is {n:,} tokens of the model.")
        if st.button("Ask the model about this text", key=f"{key}_ask"):
            try:
                check_ready()
                with st.spinner(_spinner_text()):
                    st.session_state[f"{key}_seen"] = ask_one(project, task, config, text, row)
            except Exception as exc:  # a clear message, never a traceback
                st.session_state.pop(f"{key}_seen", None)
                show_error(exc)
        seen = st.session_state.get(f"{key}_seen")
        if seen is None or seen["text"] != text:
            return
        _show_answer(task, seen, show_prompt)


def _spinner_text() -> str:
    if current()["source"] == "embedded":
        from analysis.models import textlab_models_dir

        if not (textlab_models_dir() / llm.EMBEDDED_MODEL / "config.json").is_file():
            return "Preparing the embedded model (converted once: a minute or two) and reading the text…"
    return "The model is reading the text…"


def _show_answer(task: str, seen: dict[str, Any], prompt_shown: bool) -> None:
    if not prompt_shown:
        st.markdown("**The exact prompt**")
        show_conversation(seen["conversation"])
    tokens = seen["tokens"]
    what = "Answer" if task == "prompt" else "Code"
    c1, c2, c3 = st.columns(3)
    c1.metric("Prompt tokens", "—" if tokens["prompt"] is None else f"{tokens['prompt']:,}")
    c2.metric("Raw answer tokens", "—" if tokens["answer"] is None else f"{tokens['answer']:,}")
    c3.metric(f"{what} tokens", "—" if tokens["parsed"] is None else f"{tokens['parsed']:,}",
              help=None if seen["in_process"] else "A server reports the prompt and answer tokens only.")
    st.markdown("**The raw answer**")
    st.code(seen["raw"] or "(empty)", language=None, wrap_lines=True)
    if task == "prompt":
        st.markdown("**The answer kept** (`prompt_answer`: trimmed, cut at the stop sequence)")
    else:
        st.markdown("**The code read from it**")
    if seen["parsed"] is None:
        st.warning("Nothing could be read from this answer: the text gets no "
                   + ("answer (counted as an empty answer)." if task == "prompt"
                      else "code (counted as unparsed; a code is never guessed)."), icon=":material/help:")
    else:
        st.code(seen["parsed"], language=None, wrap_lines=True)
    if seen.get("explanation"):
        st.markdown("**The explanation**")
        st.code(seen["explanation"], language=None, wrap_lines=True)
    notes = []
    if seen.get("probabilities"):
        probs = pd.DataFrame({"label": list(seen["probabilities"]), "probability": list(seen["probabilities"].values())})
        st.dataframe(probs.sort_values("probability", ascending=False), hide_index=True)
        if seen["in_process"]:
            notes.append("In process every label is scored as the prompt's continuation: the answer is the most "
                         "probable label, never one outside the codebook.")
    if seen.get("retried"):
        notes.append("The first answer named no label: the model was asked once more with a reminder.")
    if seen.get("cached"):
        notes.append("This answer came from the project's answer cache.")
    if seen.get("model"):
        notes.append(f"Model: {literal(seen['model'], code=True)}.")
    if notes:
        st.caption(" ".join(notes))


def preview_conversation(task: str, config: dict[str, Any], text: str, row: dict | None = None) -> llm.Conversation:
    """The conversation a run sends for one text, built without loading a model."""
    if task == "prompt":
        return prompt_conversation(config.get("template") or "", config.get("system"), text, row)
    if task == "coding":
        from analysis.tasks.coding import codebook_of, generative, multi_label_of

        cfg = get_task("coding").Config.from_dict(config)
        book = codebook_of(cfg)
        if book is None:
            raise TextlabError("Write or load a codebook first: the prompt is built from it.")
        return generative.conversation(generative.codebook_prompt(book, multi_label_of(cfg, book), cfg.explain), text)
    raise TextlabError(f"No prompt preview for the {task} analysis.")


def pick_text(frame: pd.DataFrame, text_column: str, *, key: str, limit: int = 200) -> int | None:
    """A picker of one non-empty text among the first ``limit``; returns its row position."""
    texts = frame[text_column].fillna("").astype(str)
    positions = [i for i, t in enumerate(texts.tolist()) if t.strip()][:limit]
    if not positions:
        st.info("The corpus has no non-empty text.")
        return None
    ids = frame["doc_id"].astype(str).tolist() if "doc_id" in frame.columns else [str(i) for i in range(len(frame))]

    def label(i: int) -> str:
        short = " ".join(texts.iloc[i].split())
        return f"{ids[i]} · {short[:70]}{'…' if len(short) > 70 else ''}"

    return st.selectbox(f"Text (one of the first {len(positions)})", positions, format_func=label, key=key)


# ---------------------------------------------------------------------- prompt stability


def stability_settings(multi: bool, n_texts: int) -> dict[str, Any]:
    """The Coding page's prompt-stability check, run with the coding job on a random sample:
    the same prompt repeated with sampling on, and paraphrases of its instruction. Returns
    the config entries (none when the check is off)."""
    from analysis.tasks.coding.stability import BUILTIN_PARAPHRASES

    with st.expander("Prompt stability check", expanded=False):
        st.caption("Does a code depend on chance or on the wording of the prompt? After coding, a random sample "
                   "is coded again several times with sampling on (intra-prompt) and once per paraphrase of the "
                   "instruction (inter-prompt); the page reports Krippendorff's alpha between the runs with a 95% "
                   "interval (Barrie, Palaiologou & Törnberg's Prompt Stability Score). Alpha of 0.8 or more is "
                   "the usual bar for reliable coding.")
        on = st.toggle("Check prompt stability after coding", key="stability_on")
        c1, c2, c3 = st.columns(3)
        sample = c1.number_input("Texts in the sample", 2, max(2, n_texts), min(30, max(2, n_texts)), key="stability_n",
                                 disabled=not on, help="Drawn at random (seeded); 30 or more give a usable interval.")
        repeats = c2.number_input("Repeats with sampling on", 0, 10, 3, key="stability_repeats", disabled=not on,
                                  help="0 skips the intra-prompt check.")
        temperature = c3.number_input("Sampling temperature", 0.0, 2.0, 0.7, step=0.1, key="stability_temperature",
                                      disabled=not on)
        wordings = st.text_area("Paraphrases of the instruction, one per line", "\n".join(BUILTIN_PARAPHRASES[multi]),
                                key=f"stability_paraphrases_{int(multi)}", disabled=not on, height=120,
                                help="The sentence of the prompt that says what to do; the codebook part stays "
                                     "as it is. Empty: no inter-prompt check.")
        generated = st.number_input("Also have the model write this many paraphrases", 0, 10, 0,
                                    key="stability_generate", disabled=not on)
        if on:
            st.caption(f"Costs about {int(sample) * (int(repeats) + len(wordings.splitlines()) + int(generated)):,} "
                       "more answers (the run's own answers come from the cache).")
    if not on:
        return {}
    return {"stability_sample": int(sample), "stability_repeats": int(repeats),
            "stability_temperature": float(temperature),
            "paraphrases": [line.strip() for line in wordings.splitlines() if line.strip()],
            "generate_paraphrases": int(generated)}


def stability_panel(manifest: dict[str, Any], texts: list[str], *, key: str) -> None:
    """A finished run's prompt-stability report: alpha with intervals, a verdict, the prompts
    compared and the texts whose codes changed most."""
    from analysis import charts
    from analysis.tasks.coding.stability import runs_frame, summary_frame

    report = manifest.get("prompt_stability")
    if not report:
        return
    st.subheader("Prompt stability")
    summary = summary_frame(report)
    for _, row in summary.iterrows():
        alpha = "undefined" if row["alpha"] is None or pd.isna(row["alpha"]) else f"{row['alpha']:.2f}"
        interval = ("" if row["ci_low"] is None or pd.isna(row["ci_low"])
                    else f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]")
        share = "" if row["all_runs_agree"] is None else f"; every run agreed on {row['all_runs_agree']:.0%} of the texts"
        st.markdown(f"**{literal(row['check'])}**: alpha {alpha}{interval} over {row['runs']} runs of "
                    f"{row['texts']} texts{share}: {literal(row['verdict'])}")
    if not summary.empty:
        st.plotly_chart(charts.stability_chart(summary), key=f"{key}_chart")
    for note in report.get("notes", []):
        st.caption(literal(note))
    if report.get("prompts"):
        st.markdown("Instructions compared (the rest of the prompt is the same):")
        st.dataframe(pd.DataFrame({"run": list(report["prompts"]), "instruction": list(report["prompts"].values())}),
                     hide_index=True, key=f"{key}_prompts")
    st.caption("The sampled texts, those whose code changed between runs first:")
    st.dataframe(runs_frame(report, texts), hide_index=True, key=f"{key}_runs",
                 column_config={"text": st.column_config.TextColumn(width="large")})


def loaded_backend(project):
    """The sidebar's model, loaded for a step that runs in the page (group summaries), with the
    project's answer cache: a repeated request asks nothing twice. Close with
    ``prompting.close_backend``."""
    from analysis.tasks.base import LLMConfig

    check_ready()
    config = LLMConfig(backend="llm", **job_settings())
    prompting.validate_llm(config)
    return prompting.load_backend(config, RunContext(texts=[], project=project))


def estimate_button(project, task: str, config: dict[str, Any], *, key: str) -> None:
    """*Estimate size and time*: the prompt tokens a run will send and its time, from a probe of
    three texts (their answers are kept for the run), before the run is started."""
    from analysis.jobs import run_context

    if st.button("Estimate size and time", key=key,
                 help="Counts the prompt tokens of every text and times the model on 3 of them; their answers are "
                      "kept, so the run does not ask them again."):
        try:
            check_ready()
            task_object = get_task(task)
            settings = task_object.Config.from_dict(config)
            task_object.validate(settings)
            context = run_context(project, project.corpus())
            task_object.check(settings, context)
            with st.spinner("Loading the model and timing 3 texts…"):
                found = prompting.estimate(task_object, settings, context)
            st.session_state[f"{key}_said"] = prompting.describe_estimate(found)
        except TextlabError as exc:
            show_error(exc)
    said = st.session_state.get(f"{key}_said")
    if said:
        st.info(literal(said), icon=":material/timer:")
