"""The facilitator's view of a workshop: participants, the queue, the GPU, broadcasts, the
classroom's agreement exercise, and a reset. Only with the facilitator code."""

import pandas as pd
import streamlit as st

from analysis.codebook import codebook_bytes, read_codebook
from analysis.errors import TextlabError
from analysis.jobs import manager_for, shared_scheduler
from analysis.workshop import agreement_between_participants, code_agreement_table, server_resources
from ui import state
from ui.widgets import literal, show_error
from ui.workshop import reset_workshop

st.title("Facilitator")
workshop = state.workshop()
if workshop is None:
    st.info("This server is not in workshop mode. Start it with `textlab app --workshop` to give each participant "
            "a private workspace and get this view.", icon=":material/groups:")
    st.stop()
if not st.session_state.get("_facilitator"):
    with st.form("facilitator_login"):
        code = st.text_input("Facilitator code", type="password", key="facilitator_code")
        if st.form_submit_button("Open the facilitator view", type="primary"):
            if workshop.is_facilitator(code):
                st.session_state["_facilitator"] = True
                st.rerun()
            st.error("That is not the facilitator code (it was printed when the server started).",
                     icon=":material/key_off:")
    st.stop()

overview = workshop.overview()
active = workshop.active_runs()
resources = server_resources()
memory = resources["gpu"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Participants", f"{len(overview):,}")
c2.metric("Analyses waiting", sum(1 for _, r in active if r.status != "running"))
c3.metric("Running", sum(1 for _, r in active if r.status == "running"))
if memory:
    c4.metric("GPU memory", f"{memory['used'] / 2**30:,.1f} / {memory['total'] / 2**30:,.0f} GiB",
              help=f"{memory['device']}; Textlab holds {memory['by_textlab'] / 2**30:,.1f} GiB of it.")
else:
    c4.metric("Server memory (peak)", f"{resources['peak_rss_bytes'] / 2**30:,.1f} GiB", help="No GPU on this server: every analysis runs on the CPU.")

tab_people, tab_queue, tab_send, tab_compare, tab_reset = st.tabs(
    ["Participants", "Queue", "Send to everyone", "Compare codes", "Reset"])

with tab_people:
    if overview.empty:
        st.caption("Nobody has joined yet. Participants open this server's address and type the join code.")
    else:
        st.dataframe(overview.drop(columns="id"), hide_index=True,
                     column_config={"disk_mb": st.column_config.NumberColumn("disk (MB)", format="%.1f")})
    lim = workshop.limits
    loaded = resources["models"]
    st.caption("Models loaded once for everyone: " + (", ".join(f"{literal(m['model'].rsplit('/', 1)[-1])} "
                                                              f"({m['device']}, {m['gib']:.2f} GiB)" for m in loaded)
                                                    if loaded else "none yet") + ". The least recently used one "
               "is let go when they outgrow the pool (TEXTLAB_MODEL_POOL_GB; default 40% of the GPU, 2 GB on "
               "the CPU).")
    st.caption(f"Limits per participant: files up to {lim.upload_mb:g} MB, {lim.rows_per_project:,} texts per project, "
               f"{lim.quota_mb:g} MB on disk, {lim.queued_jobs} analyses at once ({lim.max_participants} participants "
               "at most). Set them when starting: `textlab app --workshop --max-upload-mb … --max-rows … --quota-mb … "
               "--max-queued …`.")

with tab_queue:
    if not active:
        st.caption("No analysis is waiting or running.")
    scheduler = shared_scheduler()
    for person, run in active:
        manager = manager_for(workshop.workspace_root(person.id), scheduler=scheduler,
                              queue_limit=workshop.limits.queued_jobs)
        left, right = st.columns([6, 1])
        where = "running" if run.status == "running" else "waiting"
        if run.status != "running":
            ahead, seconds = manager.waiting(run.id)
            where += f" ({ahead} ahead" + (f", about {seconds / 60:,.1f} min" if seconds is not None else "") + ")"
        left.markdown(f"**{literal(person.name)}** · {literal(run.task)} · {run.n_done:,} of {run.n_total:,} texts · "
                      f"{where}" + (f" · {literal(run.stage)}" if run.stage else ""))
        if right.button("Cancel", key=f"fac_cancel_{person.id}_{run.id}"):
            manager.cancel(run.id)
            st.toast(f"Cancelling {person.name}'s {run.task} run after its current batch.")
            st.rerun()

with tab_send:
    st.caption("A dataset sent here becomes a project in every participant's workspace, now and for those who join "
               "later (e.g. the exercise corpus); a codebook is offered on everyone's Codebook coding page.")
    kind = st.radio("What", ["dataset", "codebook"], horizontal=True, key="fac_send_kind")
    upload = st.file_uploader("File", key=f"fac_send_file_{kind}")
    name = st.text_input("Name shown to participants", key="fac_send_name",
                         value=(upload.name.rsplit(".", 1)[0] if upload else ""))
    text_column = st.text_input("Text column (empty: the suggested one)", key="fac_send_text",
                                disabled=kind != "dataset")
    if st.button("Send to everyone", type="primary", disabled=upload is None, key="fac_send"):
        try:
            data = upload.getvalue()
            if kind == "codebook":
                book = read_codebook(data, name=upload.name)  # refuse a broken codebook here, not on 30 laptops
                item = workshop.broadcast("codebook", name or book.name, codebook_bytes(book, "json"),
                                          f"{upload.name.rsplit('.', 1)[0]}.json")
                delivered = len(workshop.participants())
            else:
                options = {"text_column": text_column.strip()} if text_column.strip() else {}
                item = workshop.broadcast("dataset", name, data, upload.name, options)
                delivered = 0
                for person in workshop.participants():
                    delivered += len(workshop.deliver(person.id))
        except TextlabError as exc:
            show_error(exc)
        else:
            st.success(f"Sent {literal(item.name)} to {delivered} participant(s); those who join later get it too.",
                       icon=":material/send:")
    sent = workshop.broadcasts()
    if sent:
        st.dataframe(pd.DataFrame([{"sent": b.sent.replace("T", " "), "what": b.kind, "name": b.name}
                                   for b in sent]), hide_index=True)

with tab_compare:
    st.caption("The inter-coder reliability exercise: everyone hand-codes the same texts of a dataset you sent "
               "(Validate > Hand-code a sample), and here is how far they agree.")
    datasets = workshop.broadcasts("dataset")
    if not datasets:
        st.caption("Send a dataset to everyone first.")
    else:
        pick = st.selectbox("Dataset", datasets, format_func=lambda b: b.name, key="fac_compare")
        table, notes = code_agreement_table(workshop.codes_of(pick.id))
        for note in notes:
            st.caption(literal(note))
        if len(table):
            pairs, alpha = agreement_between_participants(table)
            st.metric("Krippendorff's alpha (all participants)", "–" if alpha is None else f"{alpha:.2f}",
                      help="Agreement beyond chance: 1 perfect, 0 chance; 0.667 is the usual lowest acceptable, "
                           "0.8 good.")
            st.dataframe(pairs, hide_index=True, column_config={
                "agreement": st.column_config.NumberColumn(format="%.2f"),
                "cohen_kappa": st.column_config.NumberColumn("Cohen's kappa", format="%.2f")})
            st.dataframe(table, key="fac_codes")

with tab_reset:
    st.warning("A reset removes every participant, their workspaces, projects and results, and what you sent. Every "
               "browser's sign-in ends. The codes and limits stay.", icon=":material/delete_forever:")
    sure = st.checkbox("I understand: delete everything of this workshop", key="fac_reset_sure")
    if st.button("Reset the workshop", disabled=not sure, key="fac_reset"):
        gone = reset_workshop()
        st.session_state.pop("fac_reset_sure", None)
        st.success(f"Reset: {gone} participant(s) removed.", icon=":material/restart_alt:")
