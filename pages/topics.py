"""Topics: find topics with BERTopic, read them, compare them across groups and time, edit them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis import aggregate, charts
from analysis.errors import TextlabError
from analysis.tasks.topics import edit_topics, map_points, top_topics, topic_overview, topic_similarity
from ui.widgets import analysis_page, close_reading, dates_readable, fast_toggle, run_history, show_error

TOP_IN_CHARTS = 10  # topics shown by name in the group and time charts; the rest are "Other topics"


def settings() -> dict:
    c1, c2, c3 = st.columns(3)
    n_topics = c1.number_input("Number of topics (0 = find automatically)", 0, 500, 0, key="topics_n",
                               help="0: HDBSCAN finds the topics and leaves texts that fit none as outliers. "
                                    "A number: KMeans makes exactly that many topics, without outliers.")
    min_size = c2.number_input("Minimum topic size (0 = automatic)", 0, 10_000, 0, key="topics_min",
                               help="Automatic: 10, or the number of texts / 500 for large corpora.")
    device = c3.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="topics_device")
    reduce = st.toggle("Reassign outliers to their most similar topic (when similar enough)", value=True,
                       key="topics_reduce")
    merge = st.toggle("Merge fine topics into broader themes (number found automatically)", value=False,
                      key="topics_merge_broader", disabled=bool(n_topics),
                      help="HDBSCAN often splits one theme over many small topics. This joins topics whose centres "
                           "are similar (cosine similarity 0.3 or more, average linkage). Only when the number of "
                           "topics is found automatically.")
    config = {"device": device, "reduce_outliers": bool(reduce), "merge_topics": bool(merge and not n_topics)}
    if fast_toggle("topics"):
        config["fast"] = True
    if n_topics:
        config["n_topics"] = int(n_topics)
    if min_size:
        config["min_topic_size"] = int(min_size)
    return config


results = analysis_page(
    "topics", caption="Topics found in the texts (BERTopic over sentence embeddings), with keywords, example texts "
                      "and a map.",
    run_label="Find topics", settings=settings,
    empty="No topics yet: choose the settings and press **Find topics**. The embedding pass is the slow part "
          "and is cached, so later runs with other settings are quick.")
project, info, frame, manifest, latest = results.project, results.info, results.frame, results.manifest, results.run
folder = project.run_folder(latest.id)
table = pd.DataFrame(manifest.get("topics", []))
tinfo = manifest.get("topics_info", {})
cols = st.columns(4)
cols[0].metric("Topics", f"{tinfo.get('topics', len(table)):,}")
cols[1].metric("Outliers", f"{tinfo.get('outlier_share', 0):.1%}",
               help="Texts that fit no topic (topic -1). Always reported; reassignment is a setting.")
cols[2].metric("Texts", f"{tinfo.get('documents', 0):,}")
cols[3].metric("Fitted on", f"{tinfo.get('fitted', 0):,}",
               help="Above 20,000 texts the model is fitted on a random sample and the rest go to the nearest topic.")
if (tinfo.get("merged") or {}).get("to"):
    merged = tinfo["merged"]
    st.caption(f"HDBSCAN found {merged['from']:,} fine topics; they were merged into {merged['to']:,} broader ones "
               f"(centres with a similarity of at least {merged.get('similarity', 0.3)}).")
if tinfo.get("assigned_to_nearest_topic"):
    st.caption(f"{tinfo['assigned_to_nearest_topic']:,} texts were assigned to the nearest topic after fitting on a "
               f"sample of {tinfo['fitted']:,}.")

if table.empty:
    st.warning("This run found no topics.")
    run_history(project, "topics")
    st.stop()

tab_overview, tab_map, tab_compare, tab_read, tab_edit = st.tabs(
    ["Overview", "Document map", "By group and time", "Close reading", "Edit"])

with tab_overview:
    st.plotly_chart(charts.topic_sizes(table), key="topic_sizes")
    st.dataframe(topic_overview(table), hide_index=True,
                 column_config={"share": st.column_config.NumberColumn("share %", format="%.1f"),
                                "keywords": st.column_config.TextColumn(width="large")})
    similarity = topic_similarity(folder, table)
    if not similarity.empty:
        st.plotly_chart(charts.profile_heatmap(similarity, title="Topic similarity (cosine of the topic centroids)"),
                        key="topic_similarity")

with tab_map:
    points = map_points(folder, frame, info.text_column)
    if points is not None:
        st.plotly_chart(charts.document_map(points), key="topic_map")
        st.caption(f"{len(points):,} texts shown" + (" (a random sample)" if len(points) < tinfo.get("documents", 0) else "")
                   + ". Hover a point to read the text; click legend entries to hide topics.")
    else:
        st.info("This run has no document map.")

with tab_compare:
    grouped, order = top_topics(frame, table, TOP_IN_CHARTS)
    if info.group_column:
        st.plotly_chart(charts.label_distribution(aggregate.label_shares(grouped, "topic", info.group_column), "topic",
                                                  order=order, title=f"Topics by {info.group_column} (share of texts, 95% CI)"),
                        key="topics_group")
    if info.date_column and dates_readable(info, frame):
        freq = aggregate.auto_freq(frame[info.date_column], date_order=info.date_order)
        st.plotly_chart(charts.shares_over_time(aggregate.label_shares_over_time(grouped, "topic", info.date_column, freq=freq,
                                                                                 date_order=info.date_order),
                                                "topic", order=order,
                                                title="Topics over time (share of the period's texts, 95% CI)"),
                        key="topics_time")
    if not info.group_column and not info.date_column:
        st.info("Set a group or date column on the Data page to compare topics across groups and time.")

with tab_read:
    labels = table["topic_label"].tolist()
    pick = st.selectbox("Topic", labels, key="topics_pick")
    st.caption("Texts of this topic, most typical first (topic_prob: similarity to the topic's centre).")
    close_reading(frame[frame["topic_label"] == pick], info.text_column, "topic_prob", label_column=None,
                  group_column=info.group_column, extra=[], key="topics_read")

with tab_edit:
    st.caption("Edits change this run's topics everywhere (charts, export) and are logged in its manifest.")
    ids = [int(t) for t in table["topic_id"] if int(t) >= 0]
    names = dict(zip(table["topic_id"].astype(int), table["topic_label"]))
    fmt = lambda t: f"{t}: {names.get(t, t)}"  # noqa: E731
    edit = None
    r1, r2, r3 = st.columns(3)
    with r1:
        st.markdown("**Rename**")
        t = st.selectbox("Topic", ids, format_func=fmt, key="topics_rename_id")
        new = st.text_input("New name", key="topics_rename_label")
        if st.button("Rename", key="topics_rename", disabled=not new.strip()):
            edit = {"op": "rename", "topic": t, "label": new.strip()}
    with r2:
        st.markdown("**Merge**")
        chosen = st.multiselect("Topics (into the first)", ids, format_func=fmt, key="topics_merge_ids")
        if st.button("Merge", key="topics_merge", disabled=len(chosen) < 2):
            edit = {"op": "merge", "topics": chosen}
    with r3:
        st.markdown("**Split**")
        s = st.selectbox("Topic", ids, format_func=fmt, key="topics_split_id")
        parts = st.number_input("Into", 2, 20, 2, key="topics_split_n")
        if st.button("Split", key="topics_split"):
            edit = {"op": "split", "topic": s, "into": int(parts)}
    if edit is not None:
        try:
            with st.spinner("Applying the edit…"):
                edit_topics(project, latest.id, edit)
            st.rerun()
        except TextlabError as exc:
            show_error(exc)
    if manifest.get("edits"):
        st.dataframe(pd.DataFrame(manifest["edits"]).astype(str), hide_index=True)
run_history(project, "topics")
