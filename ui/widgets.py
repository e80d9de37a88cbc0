"""Widgets shared by the pages. No analysis here: they call ``analysis`` and show the result."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from analysis import models
from analysis.errors import TextlabError
from analysis.workspace import ACTIVE_STATUSES, Project, Run

from . import state

# Markdown escaping of user strings (see literal()). Parentheses are left alone: they only act
# after "]" (links, images), and "[" "]" are always escaped.
_MD_ACTIVE = re.compile(r"([\\`*_{}\[\]#+\-.!|<>~$:/&=^])")
_WJ = "\u2060"  # WORD JOINER: invisible, breaks patterns Streamlit matches in the already-unescaped text
# Streamlit rewrites these after markdown escapes are resolved, so a backslash does not stop them:
# emoji shortcodes, :streamlit:, :material/ icons and colour directives (":" then a name), bare
# URLs and e-mail addresses turned into links, and "->" "<-" "--" turned into arrows and dashes.
_MD_REWRITTEN = re.compile(r"(?<=:)(?=[\w+\-/])|(?<=\bwww)(?=\.)|(?<=@)(?=\w)|(?<=-)(?=[->])|(?<=<)(?=-)",
                           re.IGNORECASE)


def literal(text, *, code: bool = False, multiline: bool = False) -> str:
    """A user string (a name, a value, a text) for any Streamlit markdown: body, caption, alert, label, help.

    Shown as it is: no formatting, link, image, icon, colour or emoji comes from it. ``code``: as an
    inline code span. One line unless ``multiline`` (labels and headings must stay one line).
    """
    text = "" if text is None else str(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if code:
        text = text.replace("\n", " ")
        # Inside a code span nothing is markdown, except Streamlit's ":material/" rewrite of the source.
        text = text.replace(":material/", ":" + _WJ + "material/")
        fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
        pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
        return f"{fence}{pad}{text}{pad}{fence}"
    text = _MD_ACTIVE.sub(r"\\\1", _MD_REWRITTEN.sub(_WJ, text))
    if not multiline:
        return re.sub(r"[ \t]*\n[ \t]*", " ", text)
    # Hard line breaks; leading spaces as no-break spaces, or four of them would start a code block.
    return "  \n".join(re.sub(r"^[ \t]+", lambda m: "\u00a0" * len(m.group()), line) for line in text.split("\n"))


STATUS_ICONS = {
    "queued": "⏳", "running": "▶️", "done": "✅", "failed": "❌", "cancelled": "⏹️", "interrupted": "⏸️",
}


def sidebar(pages: dict[str, list] | None = None) -> None:
    """Page links, project picker, corpus summary, device and model-download status."""
    ws = state.workspace()
    projects = ws.list_projects()
    current = state.current_project()
    with st.sidebar:
        if state.workshop_mode():
            from .workshop import sidebar_card

            sidebar_card()
        for section, entries in (pages or {}).items():
            st.caption(section)
            for page in entries:
                st.page_link(page, label=page.title, icon=page.icon, query_params=state.url_params())
        st.markdown("### Project")
        if projects:
            ids = [p.id for p in projects]
            names = {p.id: f"{p.name} · {p.rows:,} rows" for p in projects}
            # The browser tells the server which entry was picked by its label: two equal labels
            # made it switch to the other project on every rerun (and swallow button clicks).
            seen: dict[str, int] = {}
            for label in names.values():
                seen[label] = seen.get(label, 0) + 1
            names = {p.id: names[p.id] + (f" · imported {p.created[:16].replace('T', ' ')} · {p.id[-6:]}"
                                          if seen[names[p.id]] > 1 else "") for p in projects}
            index = ids.index(current.id) if current and current.id in ids else None
            chosen = st.selectbox("Project", ids, index=index, format_func=names.get, key="sidebar_project",
                                  placeholder="Choose a project", label_visibility="collapsed")
            if chosen and (current is None or chosen != current.id):
                state.set_project(chosen)
                st.rerun()
        else:
            st.caption("No project yet: import a file on the Data page.")
        if current is not None:
            info = current.info
            roles = [f"text: {literal(info.text_column, code=True)}"]
            roles += [f"{k}: {literal(v, code=True)}" for k, v in (("id", info.id_column), ("group", info.group_column), ("date", info.date_column)) if v]
            st.caption(f"**{info.rows:,}** rows · " + " · ".join(roles))
        from .language_model import sidebar_section

        sidebar_section(current)
        st.divider()
        st.caption(f"Device: {state.device_summary()}")
        st.caption(
            "Model downloads: allowed (only when you ask)" if models.network_allowed()
            else "Model downloads: off (offline mode)"
        )
        st.caption("Workspace: your own (private)" if state.workshop_mode()
                   else f"Workspace: {literal(ws.root, code=True)}")


def method_caveats(manifest: dict, frame: pd.DataFrame, text_column: str, key: str) -> None:
    """What the run's method is good and bad at (with its validity figures), and the texts
    an English-only method scored that are not in English."""
    from analysis import method_notes

    note = method_notes.note_for(manifest)
    if note is not None:
        st.info(note.markdown(), icon=":material/rule:")
    notice = method_notes.non_english_notice(manifest, frame, text_column)
    if notice is not None:
        st.warning(notice.message, icon=":material/translate:")
        st.dataframe(notice.examples, hide_index=True, key=key,
                     column_config={text_column: st.column_config.TextColumn(width="large")})


def dates_readable(info, frame: pd.DataFrame) -> bool:
    """Whether charts over time can read the project's date column. When they cannot (the
    day/month order is not known yet), say so and where to choose it, and let the rest of
    the page render instead of stopping it."""
    from analysis.datetimes import parse_dates

    try:
        parse_dates(frame[info.date_column], info.date_order, info.date_column)
    except TextlabError as exc:
        st.warning(f"Charts over time are left out: {literal(exc)}", icon=":material/event_busy:")
        st.page_link("pages/data.py", label="Choose the date order on the Data page", icon=":material/folder_open:")
        return False
    return True


def require_project() -> Project:
    """The current project, or a pointer to the Data page and a stop."""
    project = state.current_project()
    if project is None:
        st.info("No project is open. Import a file or load the sample data on the Data page first.")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/folder_open:")
        st.stop()
    return project


def show_error(exc: Exception) -> None:
    """User errors as they are; anything else as a short message without a traceback.

    Messages quote file, column and code names, so the whole message is escaped (shown literally).
    """
    if isinstance(exc, TextlabError):
        st.error(literal(exc, multiline=True), icon=":material/warning:")
    else:
        st.error(
            f"Something went wrong ({type(exc).__name__}: {literal(exc)}). Your data and finished results are safe on disk. "
            "Reload the page; if it happens again, the server log has the details for a bug report.",
            icon=":material/warning:",
        )


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _format_eta(seconds: float | None) -> str:
    # Under a second left means the texts are done and the results are being written:
    # "0 s left" there looked like a hang.
    if seconds is None or seconds < 1:
        return ""
    return f"{_format_duration(seconds)} left"


def progress_text(run: Run) -> str:
    parts = [f"{run.n_done:,} of {run.n_total:,} texts"]
    if run.docs_per_s:
        parts.append(f"{run.docs_per_s:,.1f} texts/s" if run.docs_per_s < 10 else f"{run.docs_per_s:,.0f} texts/s")
        if run.tokens_per_text:  # a generative model: what a prompt-bound run is limited by
            parts.append(f"{run.docs_per_s * run.tokens_per_text:,.0f} prompt tokens/s")
    eta = _format_eta(run.eta_s)
    if eta:
        parts.append(eta)
    elif run.status == "running" and run.n_total and run.n_done >= run.n_total:
        parts.append("writing the results")
    return " · ".join(parts)


def stage_text(run: Run, now: float | None = None) -> str:
    """A stage without per-text progress (loading, clustering, fine-tuning) and how long it has run.

    The run record holds no start time for a stage, so the widget notes when it first saw
    it (per run, in the session); stages that differ only in their numbers ("step 3 of 10")
    count as one, so the time covers the whole fine-tuning, not the last step.
    """
    now = time.monotonic() if now is None else now
    key = f"_stage_clock_{run.id}"
    kind = re.sub(r"\d[\d,.]*", "#", run.stage or "")
    seen = st.session_state.get(key)
    if not seen or seen[0] != kind:
        seen = st.session_state[key] = (kind, now)
    return f"{run.stage} · {_format_duration(now - seen[1])}"


def queue_text(run: Run, ahead: int, seconds: float | None) -> str:
    """Where a waiting run stands: the analyses before it and about how long they take."""
    if run.stage and run.stage.startswith("Paused"):
        head = "Paused so that others' analyses get a turn"
    else:
        head = "Waiting for the worker"
    if ahead <= 0:
        return f"{head}: next in line…"
    wait = "" if seconds is None else f", about {_format_duration(seconds)}"
    return f"{head}: {ahead} analys{'i' if ahead == 1 else 'e'}s ahead of yours{wait}…"


def job_status(project: Project, task: str) -> Run | None:
    """Progress of the task's active run, polled once a second; returns the newest run.

    The polling fragment reruns only itself; when the run ends it reruns the whole page so
    the results appear without the user doing anything.
    """
    runs = project.runs(task)
    if not runs:
        return None
    newest = runs[0]
    if newest.status in ACTIVE_STATUSES or newest.status == "interrupted":
        _poll_run(newest.id)
    elif newest.status == "failed":
        st.error(f"The last run failed: {literal(newest.error, multiline=True)}", icon=":material/error:")
        if st.button("Retry from the last checkpoint", key=f"retry_{task}"):
            state.job_manager().retry(newest.id)
            st.rerun()
    elif newest.status == "cancelled":
        st.warning("The last run was cancelled. Finished batches are kept.", icon=":material/stop_circle:")
        if st.button("Resume it", key=f"resume_{task}"):
            state.job_manager().retry(newest.id)
            st.rerun()
    return newest


@st.fragment(run_every=1.0)
def _poll_run(run_id: str) -> None:
    run = state.workspace().run(run_id)
    if run.status not in ACTIVE_STATUSES and run.status != "interrupted":
        st.rerun()
    label = {"queued": "Waiting for the worker…", "interrupted": "Resuming after a restart…"}.get(run.status)
    if run.status == "queued":
        label = queue_text(run, *state.job_manager().waiting(run.id))
    elif label is None and run.stage:
        label = stage_text(run)
    st.progress(run.fraction, text=label or progress_text(run))
    if st.button("Cancel", key=f"cancel_{run_id}"):
        state.job_manager().cancel(run_id)
        st.toast("Cancelling after the current batch…")


def run_history(project: Project, task: str) -> None:
    runs = project.runs(task)
    if not runs:
        return
    with st.expander(f"Run history ({len(runs)})"):
        st.dataframe(
            pd.DataFrame(
                {
                    "status": [f"{STATUS_ICONS.get(r.status, '')} {r.status}" for r in runs],
                    "started": [r.started or r.created for r in runs],
                    "finished": [r.finished for r in runs],
                    "texts": [r.n_total for r in runs],
                    "backend": [r.backend for r in runs],
                    "model": [r.model for r in runs],
                    "error": [r.error for r in runs],
                    "run": [r.id for r in runs],
                }
            ),
            hide_index=True,
        )


def submit_button(project: Project, task: str, label: str, config_factory: Callable[[], dict] | None = None) -> None:
    runs = project.runs(task)
    busy = bool(runs) and runs[0].status in ACTIVE_STATUSES
    if st.button(label, type="primary", disabled=busy, key=f"submit_{task}"):
        try:
            config = config_factory() if config_factory else {}
            if config.get("backend") == "llm":
                from .language_model import check_ready

                check_ready()  # the sidebar names a model completely (an empty URL is not "embedded")
            state.job_manager().submit(project, task, config)
        except TextlabError as exc:
            show_error(exc)
        else:
            st.rerun()


@dataclass(frozen=True)
class TaskResults:
    """The latest finished run of a task, as an analysis page shows it."""

    project: Project
    run: Run
    frame: pd.DataFrame
    manifest: dict

    @property
    def info(self):
        return self.project.info


def analysis_header(task: str, caption: str) -> Project:
    """An analysis page's title (the task's title) and caption, and the open project (or a
    pointer to the Data page and a stop)."""
    from analysis.tasks import get_task

    st.title(get_task(task).title)
    st.caption(caption)
    return require_project()


def run_controls(project: Project, task: str, label: str, settings: Callable[[], dict] | None = None) -> Run | None:
    """The task's settings in an expander (open until its first run), the run button and the
    progress of the active run; returns the newest run.

    ``settings`` draws the settings widgets and returns the run's config; without it the
    task runs with its defaults and there is no expander.
    """
    config: dict = {}
    if settings is not None:
        with st.expander("Settings", expanded=not project.runs(task)):
            config = settings()
    submit_button(project, task, label, lambda: config)
    return job_status(project, task)


def latest_results(project: Project, task: str, empty: str) -> TaskResults:
    """The latest finished run of the task with its results frame and manifest. Without one the
    page says ``empty``, shows the run history and stops there."""
    latest = project.latest_runs().get(task)
    if latest is None:
        st.info(empty)
        run_history(project, task)
        st.stop()
    return TaskResults(project=project, run=latest, frame=project.results_frame({task: latest}),
                       manifest=project.manifest(latest.id))


def analysis_page(task: str, *, caption: str, run_label: str, empty: str,
                  settings: Callable[[], dict] | None = None) -> TaskResults:
    """The skeleton the analysis pages share: title, caption and open project; settings, run
    button and progress (``run_controls``); then the latest results with what produced them
    (``run_summary``), or ``empty``, the run history and a stop when there are none yet.

    The page draws its charts and texts from the returned results and ends with
    ``run_history(project, task)``.
    """
    project = analysis_header(task, caption)
    run_controls(project, task, run_label, settings)
    results = latest_results(project, task, empty)
    run_summary(results.manifest)
    return results


BACKEND_LABELS = {"auto": "auto", "offline": "offline", "transformers": "transformers",
                  "llm": "Generative language model"}


def model_settings(task: str) -> dict:
    """Backend, model, device and batch size for a model task; returns the config dict."""
    from analysis.models import DEFAULTS, list_models
    from analysis.tasks import get_task

    offline, transformer = DEFAULTS[task]["offline"], DEFAULTS[task]["transformers"]
    registered = [m for m in list_models() if m["task"] == task and m["backend"] == "transformers"]
    available = {m["name"]: m["available"] for m in registered}
    generative = get_task(task).llm_backend
    backend = st.radio(
        "Backend", ["auto", "offline", "transformers"] + (["llm"] if generative else []), horizontal=True,
        key=f"{task}_backend", format_func=BACKEND_LABELS.get,
        help=f"auto: the transformer model when it is on this machine, else the offline {offline}. "
             f"offline: {offline} (fast, transparent, English). transformers: a local model (more accurate, a GPU helps)."
             + (" Generative language model: the model chosen under Language model in the sidebar is asked about "
                "each text (it can explain each answer)." if generative else ""),
    )
    if backend == "llm":
        from .language_model import task_settings

        return task_settings(task)
    config: dict = {"backend": backend}
    if backend == "offline":
        return config
    # In a workshop a free model id or folder would let a participant name paths on the server.
    names = [m["name"] for m in registered] + ([] if state.workshop_mode() else ["other (Hugging Face id or folder)"])
    labels = {m["name"]: f"{m['name']} · {m['hf_id']} · {'on this machine' if m['available'] else 'not downloaded'}"
              for m in registered}
    choice = st.selectbox("Model", names, index=names.index(transformer) if transformer in names else 0,
                          format_func=lambda n: labels.get(n, n), key=f"{task}_model")
    model = st.text_input("Model id or local folder", key=f"{task}_model_other").strip() if choice.startswith("other") else choice
    if model and model in available and not available[model]:
        note = (f"`{model}` is not on this machine. Download it once with `textlab models download {model}` "
                "(needs internet), or copy a downloaded model folder into the models folder.")
        (st.warning if backend == "transformers" else st.info)(
            note + (" With **auto**, the offline backend is used meanwhile." if backend == "auto" else ""),
            icon=":material/download:",
        )
    c1, c2 = st.columns(2)
    device = c1.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key=f"{task}_device",
                          help="auto: a CUDA GPU, then Apple MPS, then the CPU.")
    batch = c2.number_input("Batch size (0 = automatic token budget)", min_value=0, max_value=4096, value=0, step=8,
                            key=f"{task}_batch")
    if model:
        config["model"] = model
    config["device"] = device
    if batch:
        config["batch_size"] = int(batch)
    return config


def fast_toggle(task: str, disabled: bool = False) -> bool:
    """The fast CPU path (``--fast``) for an analysis that embeds texts."""
    return bool(st.toggle(
        "Fast CPU path (static embeddings)", value=False, key=f"{task}_fast", disabled=disabled,
        help="Embeds with a static model distilled here from the bundled MiniLM: many times faster on a laptop, "
             "a little less accurate (speed and task figures: docs/benchmarks.md and docs/validity.md). Built once "
             "on first use; nothing is downloaded. The run's manifest records it."))


def run_summary(manifest: dict) -> None:
    """What produced the results on screen: backend, model, counts; the manifest in full on demand."""
    rows = manifest.get("rows", {})
    parts = [f"**{literal(manifest.get('model', manifest.get('backend', '')))}**"]  # a model id can be typed in
    if manifest.get("model_revision"):
        parts.append(f"revision {literal(str(manifest['model_revision'])[:40], code=True)}")
    parts.append(f"{rows.get('coded', 0):,} texts coded, {rows.get('empty', 0):,} empty")
    if rows.get("split"):
        parts.append(f"{rows['split']:,} long texts split into windows")
    if rows.get("unparsed"):
        parts.append(f"**{rows['unparsed']:,} answers named no label** (asked again once, then left uncoded: "
                     "never guessed)")
    if rows.get("empty_answer"):
        parts.append(f"**{rows['empty_answer']:,} empty answers**")
    if manifest.get("device"):
        parts.append(str(manifest["device"]))
    st.caption(" · ".join(parts))
    if manifest.get("model_note"):  # the embedded language model says it is weak
        st.warning(literal(manifest["model_note"]), icon=":material/science:")
    if manifest.get("backend_choice", "").startswith("auto:"):
        st.info(literal(manifest["backend_choice"]), icon=":material/info:")
    with st.expander("Provenance (run manifest)"):
        st.json(manifest, expanded=False)


def close_reading(frame: pd.DataFrame, text_column: str, score_column: str | None, *, label_column: str | None,
                  group_column: str | None, extra: list[str], key: str, highest_first: bool = True) -> None:
    """The texts behind the numbers: sorted by a score, filterable by group and label.

    Without a score (a language model that gave no probabilities) the texts keep their order.
    A generative model's explanations (``*_explanation`` columns) are shown beside the text."""
    c1, c2, c3 = st.columns([2, 2, 1])
    if score_column:
        data = frame.dropna(subset=[score_column])
    else:
        data = frame[frame[label_column].notna()] if label_column else frame
    if label_column:
        labels = sorted(data[label_column].dropna().astype(str).unique())
        picked = c1.multiselect("Label", labels, key=f"{key}_labels")
        if picked:
            data = data[data[label_column].astype(str).isin(picked)]
    if group_column:
        groups = sorted(data[group_column].dropna().astype(str).unique())
        chosen = c2.multiselect(literal(group_column), groups, key=f"{key}_groups")
        if chosen:
            data = data[data[group_column].astype(str).isin(chosen)]
    n = c3.number_input("Rows", 5, 500, 20, step=5, key=f"{key}_n")
    if score_column:
        data = data.sort_values(score_column, ascending=not highest_first)
    data = data.head(int(n))
    explanations = [c for c in frame.columns if str(c).endswith("_explanation")]
    columns = ["doc_id", text_column, *explanations] + [c for c in [label_column, score_column, group_column] + extra if c]
    st.dataframe(data[list(dict.fromkeys(columns))], hide_index=True,
                 column_config={text_column: st.column_config.TextColumn(width="large"),
                                **{c: st.column_config.TextColumn(width="large") for c in explanations}})
