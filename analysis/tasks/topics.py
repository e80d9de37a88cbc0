"""Topics: BERTopic clusters over the shared embeddings (see ``analysis.topics`` for the method).

Columns (design contract): ``topic_id`` (int, -1 = outlier), ``topic_label`` and
``topic_prob`` (cosine similarity of the text to its topic's centroid, 0..1). The topics
table (id, label, size, keywords, representative documents) goes into the run manifest;
the 2D document map and the topic centroids are kept in the run folder for the page.

Topic clustering needs every document at once, so the whole corpus is one chunk: the
embedding pass (cached in the project, so a resumed or repeated run skips it) reports
progress, then the topics are fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import models, topics
from ..errors import TextlabError
from .base import BaseConfig, Predictor, RunContext, Task, setting

EMBED_SHARE = 0.8  # share of the progress bar for the embedding pass


@dataclass
class TopicsConfig(BaseConfig):
    n_topics: int | None = setting(None, help="number of topics (default: found automatically by HDBSCAN; a "
                                              "number: KMeans)", flag="--n-topics", metavar="N")
    min_topic_size: int | None = setting(None, help="smallest topic (default: 10, more for big corpora)",
                                         flag="--min-topic-size", metavar="N")
    reduce_outliers: bool = setting(True, help="move each outlier to its most similar topic when their "
                                               "cosine similarity is at least outlier_threshold")
    outlier_threshold: float = setting(0.3, help="reduce_outliers: similarity to a topic's centre at which an outlier joins it")
    merge_topics: bool = setting(False, help="without --n-topics: merge fine topics whose centres have a cosine "
                                             "similarity of at least merge_similarity (0.3) into broader ones",
                                 flag="--merge-topics")
    merge_similarity: float = setting(0.3, help="merge_topics: cosine similarity (average linkage) at which "
                                                "topics merge")
    max_fit_docs: int = setting(20_000, help="texts the topics are fitted on (a sample of larger corpora; every "
                                             "text gets a topic)")


def embedding_model(config: BaseConfig) -> str:
    return config.model or models.DEFAULTS["topics"]["offline"]


class TopicsPredictor(Predictor):
    def __init__(self, config: TopicsConfig, context: RunContext | None):
        from ..embeddings import Embedder

        self.config = config
        self.context = context
        self.embedder = Embedder(embedding_model(config), device=config.device, batch_size=config.batch_size,
                                 cache_dir=context.cache_dir if context else None)
        self.result: topics.TopicModelResult | None = None
        self.doc_ids: list[str] = []

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        n = len(texts)
        vectors = self.embedder.encode(texts, None if progress is None else (lambda k: progress(int(k * EMBED_SHARE))))
        # The fit and the map report no per-text progress: say what runs (the page adds the time).
        self._stage(f"Clustering {n:,} texts into topics")
        result = topics.fit_topics(
            texts, vectors, n_topics=self.config.n_topics, min_topic_size=self.config.min_topic_size,
            reduce_outliers=self.config.reduce_outliers, outlier_threshold=self.config.outlier_threshold,
            merge_topics=self.config.merge_topics, merge_similarity=self.config.merge_similarity,
            max_fit_docs=self.config.max_fit_docs, seed=self.config.seed,
            gpu=self._on_cuda(),
        )
        self.result = result
        self.doc_ids = self._doc_ids(texts)
        labels = dict(zip(result.table["topic_id"], result.table["topic_label"]))
        frame = pd.DataFrame({
            "topic_id": result.topic_ids.astype("int64"),
            "topic_label": [labels.get(int(t), topics.OUTLIER_LABEL) for t in result.topic_ids],
            "topic_prob": result.topic_probs,
        })
        self._stage("Drawing the document map")
        self._write_artifacts(vectors)
        if progress:
            progress(n)
        return frame

    def _stage(self, message: str) -> None:
        if self.context is not None:
            self.context.stage(message)

    def _on_cuda(self) -> bool:
        from ..runner import resolve_device

        return resolve_device(self.config.device).type == "cuda"

    def _doc_ids(self, texts: list[str]) -> list[str]:
        """Doc ids of the texts: the task gets every non-empty text of the corpus in order."""
        ctx = self.context
        if ctx is None or ctx.doc_ids is None:
            return [str(i) for i in range(len(texts))]
        ids = [d for d, t in zip(ctx.doc_ids, ctx.texts) if t.strip()]
        if len(ids) != len(texts):
            raise TextlabError("Topic clustering expects the whole corpus in one piece; got a part of it.")
        return ids

    def _write_artifacts(self, vectors: np.ndarray) -> None:
        folder = None if self.context is None else self.context.run_folder
        if folder is None:
            return
        from ..workspace import atomic_write_bytes, atomic_write_parquet

        import json

        # The description goes into the manifest; a run resumed after its only chunk was
        # checkpointed has no fit in memory and reads it back from here.
        atomic_write_bytes(folder / "topics.json", json.dumps(
            {"topics_info": self.result.info, "topics": table_records(self.result.table, self.doc_ids)},
            default=_json_default).encode("utf-8"))
        rows, xy = topics.document_map(vectors, seed=self.config.seed)
        atomic_write_parquet(folder / "map.parquet", pd.DataFrame(
            {"doc_id": [self.doc_ids[i] for i in rows], "x": xy[:, 0], "y": xy[:, 1]}))
        save_centroids(folder, self.result.centroids, atomic_write_bytes)

    def describe(self) -> dict[str, Any]:
        out = {
            **self.embedder.describe(),
            "backend": "offline",
            "method": "BERTopic: "
                      + ("KMeans on the embeddings" if self.config.n_topics else
                         "UMAP (5 dims, cosine, seeded) + HDBSCAN"
                         + (f" + fine topics merged (average linkage of centres, similarity >= "
                            f"{self.config.merge_similarity})"
                            if self.config.merge_topics else ""))
                      + " + c-TF-IDF keywords",
        }
        if self.result is not None:
            out["topics_info"] = self.result.info
            out["topics"] = table_records(self.result.table, self.doc_ids)
        elif self.context is not None and self.context.run_folder is not None:
            import json

            saved = self.context.run_folder / "topics.json"
            if saved.exists():
                out.update(json.loads(saved.read_text("utf-8")))
        return out

    def close(self) -> None:
        self.embedder.close()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def table_records(table: pd.DataFrame, doc_ids: list[str]) -> list[dict]:
    """The topics table for the manifest: representative rows as doc ids (texts stay in the corpus)."""
    records = []
    for row in table.to_dict("records"):
        records.append({
            "topic_id": int(row["topic_id"]), "topic_label": row["topic_label"], "size": int(row["size"]),
            "share": round(float(row["share"]), 4), "keywords": list(row["keywords"]),
            "representative_doc_ids": [doc_ids[i] for i in row["representative"]],
        })
    return records


def save_centroids(folder, centroids: dict[int, np.ndarray], writer) -> None:
    import io

    ids = np.array(sorted(centroids), dtype=np.int64)
    matrix = np.stack([centroids[i] for i in ids]) if len(ids) else np.zeros((0, 0), dtype=np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, ids=ids, centroids=matrix)
    writer(folder / "centroids.npz", buffer.getvalue())


def load_centroids(folder) -> dict[int, np.ndarray]:
    path = folder / "centroids.npz"
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {int(i): data["centroids"][k] for k, i in enumerate(data["ids"])}


class TopicsTask(Task):
    name = "topics"
    title = "Topics"
    description = "Topics found in the texts (BERTopic), with keywords and example texts."
    Config = TopicsConfig
    chunk_size = 10**9  # one chunk: clustering needs all documents at once
    columns = ("topic_id", "topic_label", "topic_prob")
    label_columns = ("topic_label",)
    not_for_charts = ("topic_id",)  # topic_label names the same topic

    def validate(self, config: TopicsConfig) -> None:
        super().validate(config)
        if config.n_topics is not None and config.n_topics < 2:
            raise TextlabError(f"--n-topics must be at least 2, not {config.n_topics}.")
        if config.n_topics and config.merge_topics:
            raise TextlabError("Merging topics applies when their number is found automatically; with "
                               f"--n-topics {config.n_topics} there are exactly that many. Drop one of the two.")
        if config.min_topic_size is not None and config.min_topic_size < 2:
            raise TextlabError(f"--min-topic-size must be at least 2, not {config.min_topic_size}.")
        if not 0 < config.merge_similarity < 1:
            raise TextlabError(f"merge_similarity must be between 0 and 1, not {config.merge_similarity}.")
        if not 0 <= config.outlier_threshold <= 1:
            raise TextlabError(f"outlier_threshold must be between 0 and 1, not {config.outlier_threshold}.")
        if config.max_fit_docs < 100:
            raise TextlabError("max_fit_docs must be at least 100.")
        spec = models.get_spec(embedding_model(config), task="topics")
        if spec.kind != "sentence-embedding":
            raise TextlabError(f"Topics need a sentence-embedding model; '{spec.name}' is a {spec.kind} model.")

    def check(self, config: TopicsConfig, context: RunContext) -> None:
        n = sum(1 for t in context.texts if t.strip())
        size = config.min_topic_size or topics.default_min_topic_size(min(n, config.max_fit_docs))
        needed = max(10, 2 * (config.n_topics or size))
        if n < needed:
            raise TextlabError(
                f"The corpus has {n} non-empty texts; topic clustering with these settings needs at least {needed}."
            )

    def load(self, config: TopicsConfig, context: RunContext | None = None) -> Predictor:
        return TopicsPredictor(config, context)

    def empty_row(self) -> dict[str, Any]:
        return {}  # no topic, label or probability: missing values


TASK = TopicsTask()


def run(texts: list[str], config: TopicsConfig | dict | None = None) -> pd.DataFrame:
    """Topics for a list of texts in-process (notebooks, tests)."""
    from ..jobs import run_in_memory

    if not isinstance(config, TopicsConfig):
        config = TopicsConfig.from_dict(config)
    return run_in_memory(TASK, texts, config)


def edit_topics(project, run_id: str, edit: dict[str, Any]) -> dict:
    """Apply a hand edit (rename, merge, split; see ``analysis.topics.apply_edit``) to a finished
    topics run of the project: its result, topics table and centroids are rewritten and the
    edit is appended to the manifest's ``edits``. Returns the new manifest."""
    from datetime import datetime, timezone

    from ..embeddings import Embedder
    from ..workspace import atomic_write_bytes

    manifest = project.manifest(run_id)
    if manifest.get("task") != "topics":
        raise TextlabError(f"Run {run_id} is not a topics run.")
    result = project.result(run_id).copy()
    renamed = {int(k): v for k, v in (manifest.get("renamed_topics") or {}).items()}
    stamp = {**edit, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if edit.get("op") == "rename":
        # A new name changes no assignment, keyword or centroid: no vectors needed, no model loaded.
        ids = result["topic_id"].dropna().astype("int64").to_numpy()
        _, renamed = topics.apply_edit([], np.zeros((len(ids), 0), dtype=np.float32), ids, renamed, edit)
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
    with Embedder(params.get("model") or models.DEFAULTS["topics"]["offline"], device=params.get("device", "auto"),
                  cache_dir=project.folder / "embeddings") as embedder:
        vectors = embedder.encode(texts)  # from the project's cache: the run embedded these texts
    new_ids, renamed = topics.apply_edit(texts, vectors, ids, renamed, edit, seed=int(params.get("seed", 0)))
    centroids = topics._centroids(vectors, new_ids)
    table = topics.topic_table(texts, vectors, new_ids, centroids, labels=renamed)
    labels = dict(zip(table["topic_id"], table["topic_label"]))
    probs = topics._typicality(vectors, new_ids, centroids)

    result["topic_id"] = result["topic_id"].astype("Int64")
    result.loc[result.index[keep], "topic_id"] = new_ids
    result.loc[result.index[keep], "topic_label"] = [labels.get(int(t), topics.OUTLIER_LABEL) for t in new_ids]
    result.loc[result.index[keep], "topic_prob"] = probs
    doc_ids = [corpus.doc_ids[i] for i in keep]
    manifest = {
        **manifest,
        "topics": table_records(table, doc_ids),
        "renamed_topics": {str(k): v for k, v in renamed.items()},
        "edits": [*manifest.get("edits", []), stamp],
    }
    info = dict(manifest.get("topics_info", {}))
    info.update(topics=len(centroids), outliers=int((new_ids == topics.OUTLIER).sum()),
                outlier_share=float((new_ids == topics.OUTLIER).mean()))
    manifest["topics_info"] = info
    project.write_result(run_id, result, manifest)
    save_centroids(project.run_folder(run_id), centroids, atomic_write_bytes)
    return manifest
