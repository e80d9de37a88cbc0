"""Hand edits of a finished topics run: rename, merge, re-split.

An edit rewrites the run's result, topics table and centroids and is logged in its
manifest (``edits``); the original fit stays reproducible from the logged settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import models
from ...errors import TextlabError
from .fit import OUTLIER, OUTLIER_LABEL, save_centroids, table_records, topic_centroids, topic_table, typicality


def apply_edit(texts: list[str], embeddings: np.ndarray, topic_ids: np.ndarray, labels: dict[int, str],
               edit: dict[str, Any], seed: int = 0) -> tuple[np.ndarray, dict[int, str]]:
    """One hand edit on a topic assignment; returns new ids and labels (renamed topics keep their name).

    - ``{"op": "rename", "topic": 3, "label": "Rent and landlords"}``
    - ``{"op": "merge", "topics": [3, 7], "label": optional}``: all into the first
    - ``{"op": "split", "topic": 2, "into": 3}``: KMeans on the topic's embeddings; the parts get new ids
    """
    op = edit.get("op")
    ids = np.asarray(topic_ids, dtype=np.int64).copy()
    labels = dict(labels)
    existing = {int(t) for t in np.unique(ids) if t != OUTLIER}

    def need(topic) -> int:
        if topic is None or int(topic) not in existing:
            raise TextlabError(f"Topic {topic} does not exist; topics are {', '.join(map(str, sorted(existing)))}.")
        return int(topic)

    if op == "rename":
        t = need(edit.get("topic"))
        label = str(edit.get("label") or "").strip()
        if not label:
            raise TextlabError("A topic needs a non-empty name.")
        labels[t] = label
    elif op == "merge":
        topics = [need(t) for t in edit.get("topics") or []]
        if len(set(topics)) < 2:
            raise TextlabError("Choose at least two different topics to merge.")
        keep = topics[0]
        ids[np.isin(ids, topics[1:])] = keep
        for t in topics[1:]:
            labels.pop(t, None)
        if edit.get("label"):
            labels[keep] = str(edit["label"]).strip()
        else:
            labels.pop(keep, None)  # the merged topic gets fresh keywords and label
    elif op == "split":
        t = need(edit.get("topic"))
        into = int(edit.get("into") or 2)
        members = np.flatnonzero(ids == t)
        if into < 2 or into > len(members):
            raise TextlabError(f"Topic {t} has {len(members)} texts; it can be split into 2 to {len(members)} parts.")
        from sklearn.cluster import KMeans

        parts = KMeans(n_clusters=into, random_state=seed, n_init=10).fit_predict(embeddings[members])
        next_id = max(existing) + 1
        for p in range(1, into):  # part 0 keeps the id
            ids[members[parts == p]] = next_id
            next_id += 1
        labels.pop(t, None)
    else:
        raise TextlabError(f"Unknown topic edit '{op}': use rename, merge or split.")
    return ids, labels


def edit_topics(project, run_id: str, edit: dict[str, Any]) -> dict:
    """Apply a hand edit (rename, merge, split; see ``apply_edit``) to a finished
    topics run of the project: its result, topics table and centroids are rewritten and the
    edit is appended to the manifest's ``edits``. Returns the new manifest."""
    from datetime import datetime, timezone

    from ...embeddings import Embedder
    from ...fileio import atomic_write_bytes

    manifest = project.manifest(run_id)
    if manifest.get("task") != "topics":
        raise TextlabError(f"Run {run_id} is not a topics run.")
    result = project.result(run_id).copy()
    renamed = {int(k): v for k, v in (manifest.get("renamed_topics") or {}).items()}
    stamp = {**edit, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if edit.get("op") == "rename":
        # A new name changes no assignment, keyword or centroid: no vectors needed, no model loaded.
        ids = result["topic_id"].dropna().astype("int64").to_numpy()
        _, renamed = apply_edit([], np.zeros((len(ids), 0), dtype=np.float32), ids, renamed, edit)
        topic, label = int(edit["topic"]), renamed[int(edit["topic"])]
        result.loc[result["topic_id"] == topic, "topic_label"] = label
        records = [{**r, "topic_label": label} if int(r["topic_id"]) == topic else r
                   for r in manifest.get("topics", [])]
        manifest = {**manifest, "topics": records, "renamed_topics": {str(k): v for k, v in renamed.items()},
                    "edits": [*manifest.get("edits", []), stamp]}
        project.write_result(run_id, result, manifest)
        return manifest

    corpus = project.corpus()
    keep = [i for i, t in enumerate(corpus.texts) if t.strip()]
    texts = [corpus.texts[i] for i in keep]
    ids = result["topic_id"].iloc[keep].astype("int64").to_numpy()
    params = manifest.get("parameters", {})
    from ...embeddings import task_embedding_model

    with Embedder(task_embedding_model(params, models.DEFAULTS["topics"]["offline"]), device=params.get("device", "auto"),
                  cache_dir=project.embeddings_dir) as embedder:
        vectors = embedder.encode(texts)  # from the project's cache: the run embedded these texts
    new_ids, renamed = apply_edit(texts, vectors, ids, renamed, edit, seed=int(params.get("seed", 0)))
    centroids = topic_centroids(vectors, new_ids)
    table = topic_table(texts, vectors, new_ids, centroids, labels=renamed)
    labels = dict(zip(table["topic_id"], table["topic_label"]))
    probs = typicality(vectors, new_ids, centroids)

    result["topic_id"] = result["topic_id"].astype("Int64")
    result.loc[result.index[keep], "topic_id"] = new_ids
    result.loc[result.index[keep], "topic_label"] = [labels.get(int(t), OUTLIER_LABEL) for t in new_ids]
    result.loc[result.index[keep], "topic_prob"] = probs
    doc_ids = [corpus.doc_ids[i] for i in keep]
    manifest = {
        **manifest,
        "topics": table_records(table, doc_ids),
        "renamed_topics": {str(k): v for k, v in renamed.items()},
        "edits": [*manifest.get("edits", []), stamp],
    }
    info = dict(manifest.get("topics_info", {}))
    info.update(topics=len(centroids), outliers=int((new_ids == OUTLIER).sum()),
                outlier_share=float((new_ids == OUTLIER).mean()))
    manifest["topics_info"] = info
    project.write_result(run_id, result, manifest)
    save_centroids(project.run_folder(run_id), centroids, atomic_write_bytes)
    return manifest
