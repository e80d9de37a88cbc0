"""Topic clustering over the shared embeddings: BERTopic fit, keywords, views.

Pipeline (BERTopic): the documents' all-MiniLM-L6-v2 embeddings (``analysis.embeddings``,
cached in the project) -> UMAP to 5 dimensions with a fixed ``random_state`` -> HDBSCAN
with a minimum topic size (optionally merged into broader topics) -> c-TF-IDF keywords
(English stop words removed). When the researcher sets the number of topics, KMeans runs
on the embeddings themselves (UMAP does not help KMeans there). The same data and
settings give the same topics.

What Textlab adds around BERTopic, and why:

- **Scale.** UMAP and HDBSCAN on 100,000 documents need more memory and time than a
  laptop has to spare, so above ``max_fit_docs`` documents (20,000 by default) the model is
  fitted on a seeded random sample and every other document goes to the topic whose
  centroid (mean embedding of its fitted documents) is most similar. The manifest says
  how many documents were fitted and how many assigned.
- **Outliers in the open.** HDBSCAN leaves documents that fit no topic as outliers (topic
  -1). Their share is always reported. With ``reduce_outliers`` each outlier goes to its
  most similar topic centroid when the cosine similarity is at least
  ``outlier_threshold``; the rest stay outliers.
- **One definition of topic_prob.** ``topic_prob`` is the cosine similarity (clipped to
  0..1) of a document to its topic's centroid: how typical it is of the topic, comparable
  across fitted, assigned and reassigned documents. For outliers it is the similarity to
  the nearest topic.
- **Keywords from the final assignment.** After sampling, outlier reduction or hand edits,
  the c-TF-IDF keywords are computed again over all documents with BERTopic's
  ``ClassTfidfTransformer``, so keywords always describe the topics as exported.
- **Representative documents** are the ones closest to the centroid (deterministic),
  not a random draw.
- **Edits** (rename, merge, re-split) are applied to a stored run and logged in its
  manifest; the original fit stays reproducible from the logged settings.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import models
from ...errors import TextlabError
from ..base import Predictor, RunContext

if TYPE_CHECKING:
    from . import TopicsConfig

log = logging.getLogger(__name__)
# UMAP says that a fixed random_state makes it single-threaded: that is the deliberate price
# of reproducible topics, not something the user can act on.
_UMAP_SEED_WARNING = "n_jobs value .* overridden"

OUTLIER = -1
OUTLIER_LABEL = "Outliers"
N_KEYWORDS = 10
N_REPRESENTATIVE = 3
MAP_MAX_POINTS = 20_000


@dataclass
class TopicModelResult:
    topic_ids: np.ndarray          # int per document, -1 = outlier
    topic_probs: np.ndarray        # float per document (cosine to the centroid, 0..1)
    table: pd.DataFrame            # topic_id, topic_label, size, share, keywords, representative (row indices)
    centroids: dict[int, np.ndarray]
    info: dict[str, Any]           # fitted/assigned counts, outliers before/after, timings


# ---------------------------------------------------------------------- fitting


def cuml_available() -> bool:
    """cuML (RAPIDS) GPU versions of UMAP and HDBSCAN, used on CUDA when installed."""
    try:
        import cuml  # noqa: F401
    except Exception:  # not installed, or installed without a usable GPU
        return False
    return True


def umap_model(n_docs: int, seed: int, n_components: int = 5, n_neighbors: int = 15, gpu: bool = False):
    """The seeded UMAP (cosine, ``min_dist=0``) that ``fit_topics`` and ``document_map`` use for ``n_docs`` documents."""
    if gpu:
        from cuml.manifold import UMAP as CumlUMAP

        return CumlUMAP(n_neighbors=min(n_neighbors, max(2, n_docs - 1)), n_components=n_components, min_dist=0.0,
                        metric="cosine", random_state=seed)
    from umap import UMAP

    # random_state makes UMAP deterministic (and single-threaded: the price of reproducibility).
    return UMAP(n_neighbors=min(n_neighbors, max(2, n_docs - 1)), n_components=min(n_components, max(1, n_docs - 2)),
                min_dist=0.0, metric="cosine", random_state=seed, low_memory=True)


def cluster_model(n_topics: int | None, min_topic_size: int, seed: int, gpu: bool = False):
    """The clusterer ``fit_topics`` uses: KMeans with ``n_topics``, else HDBSCAN with ``min_topic_size``."""
    if gpu and not n_topics:
        from cuml.cluster import HDBSCAN as CumlHDBSCAN

        return CumlHDBSCAN(min_cluster_size=min_topic_size, min_samples=max(1, min_topic_size // 2))
    if n_topics:
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_topics, random_state=seed, n_init=10)
    from sklearn.cluster import HDBSCAN

    # scikit-learn's HDBSCAN: no extra compiled dependency, deterministic.
    return HDBSCAN(min_cluster_size=min_topic_size, min_samples=max(1, min_topic_size // 2), metric="euclidean")


def fit_topics(texts: list[str], embeddings: np.ndarray, *, n_topics: int | None = None,
               min_topic_size: int | None = None, reduce_outliers: bool = True, outlier_threshold: float = 0.3,
               merge_topics: bool = False, merge_similarity: float = 0.3, max_fit_docs: int = 20_000,
               seed: int = 0,
               stop_words: str | list[str] | None = "english", progress=None, gpu: bool = False,
               reducer=None, clusterer=None) -> TopicModelResult:
    """Fit topics on ``texts`` with their (L2-normalised) ``embeddings``.

    ``n_topics`` given: KMeans on the embeddings themselves, no UMAP (on AG News UMAP
    before KMeans lost NMI 0.006 and ARI 0.03 against KMeans alone, and took 50 s more;
    see docs/validity.md). ``merge_topics`` (HDBSCAN only): merge HDBSCAN's fine topics
    whose centres are at least ``merge_similarity`` similar (:func:`merge_similar_topics`).
    ``gpu=True`` uses cuML's UMAP and HDBSCAN (when installed): much faster on large
    corpora, but cuML's UMAP is not bit-for-bit reproducible across runs.

    ``reducer`` and ``clusterer`` (for experiments, e.g. benchmarks/topics_benchmark.py)
    replace the reduction and the clustering step: by default :func:`umap_model` (none
    when ``n_topics`` is given) and :func:`cluster_model` with this call's settings. A
    replacement sees the fitted documents (the sample, above ``max_fit_docs``); a
    clusterer must set ``labels_`` when fitted, as scikit-learn's do.
    """
    from bertopic import BERTopic
    from bertopic.dimensionality import BaseDimensionalityReduction
    from sklearn.feature_extraction.text import CountVectorizer

    n = len(texts)
    if n != len(embeddings):
        raise TextlabError(f"{n} texts but {len(embeddings)} embeddings.")
    if n_topics is not None and n_topics < 2:
        raise TextlabError(f"The number of topics must be at least 2, not {n_topics}.")
    # The default follows the documents HDBSCAN sees (the fitted sample), not the corpus:
    # 100,000 / 500 = 200 on a 20,000 sample made most of the sample outliers.
    min_topic_size = min_topic_size or default_min_topic_size(min(n, max_fit_docs))
    if n < max(10, 2 * (n_topics or min_topic_size)):
        raise TextlabError(
            f"{n} texts are too few for topic clustering with "
            + (f"{n_topics} topics" if n_topics else f"a minimum topic size of {min_topic_size}")
            + ": use fewer topics or a smaller minimum size, or more texts."
        )
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, max_fit_docs, replace=False)) if n > max_fit_docs else np.arange(n)

    gpu = gpu and cuml_available()
    cluster = clusterer if clusterer is not None else cluster_model(n_topics, min_topic_size, seed, gpu=gpu)
    reduction = reducer
    if reduction is None:
        reduction = BaseDimensionalityReduction() if n_topics else umap_model(len(fit_idx), seed, gpu=gpu)
    model = BERTopic(
        umap_model=reduction,
        hdbscan_model=cluster,  # BERTopic reads labels_ after fit: KMeans and HDBSCAN of scikit-learn both have it
        vectorizer_model=CountVectorizer(stop_words=stop_words, min_df=1),
        min_topic_size=min_topic_size,
        calculate_probabilities=False,
        verbose=False,
    )
    fit_texts = [texts[i] for i in fit_idx]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UMAP_SEED_WARNING, category=UserWarning)
        fitted, _ = model.fit_transform(fit_texts, embeddings=embeddings[fit_idx])
    topic_ids = np.full(n, OUTLIER, dtype=np.int64)
    topic_ids[fit_idx] = np.asarray(fitted, dtype=np.int64)
    if progress:
        progress(0.7)
    outliers_fit = int((topic_ids[fit_idx] == OUTLIER).sum())
    merge_info = None
    if merge_topics and not n_topics:
        merged, merge_info = merge_similar_topics(embeddings[fit_idx], topic_ids[fit_idx],
                                                  similarity=merge_similarity)
        topic_ids[fit_idx] = merged

    centroids = topic_centroids(embeddings, topic_ids)
    assigned = 0
    if len(fit_idx) < n:
        rest = np.setdiff1d(np.arange(n), fit_idx)
        topic_ids[rest] = _nearest(embeddings[rest], centroids)
        assigned = len(rest)
    outliers_before = int((topic_ids == OUTLIER).sum())
    if reduce_outliers and outliers_before and centroids:
        out = np.flatnonzero(topic_ids == OUTLIER)
        best, sim = _nearest(embeddings[out], centroids, with_similarity=True)
        ok = sim >= outlier_threshold
        topic_ids[out[ok]] = best[ok]
        centroids = topic_centroids(embeddings, topic_ids)
    topic_ids = _renumber(topic_ids)
    centroids = topic_centroids(embeddings, topic_ids)
    probs = typicality(embeddings, topic_ids, centroids)
    table = topic_table(texts, embeddings, topic_ids, centroids, stop_words=stop_words)
    info = {
        "documents": n,
        "fitted": int(len(fit_idx)),
        "assigned_to_nearest_topic": int(assigned),
        "outliers_after_fit": outliers_fit,
        "outliers_before_reduction": outliers_before,
        "outliers": int((topic_ids == OUTLIER).sum()),
        "outlier_share": float((topic_ids == OUTLIER).mean()),
        "topics": int(len(centroids)),
        "min_topic_size": int(min_topic_size),
        "n_topics_requested": n_topics,
        "clustering": "KMeans on the embeddings" if n_topics else "UMAP + HDBSCAN",
        "gpu_clustering": "cuML" if gpu and not n_topics else None,
        "merged": merge_info,
    }
    replaced = {step: type(m).__name__ for step, m in (("reducer", reducer), ("clusterer", clusterer)) if m is not None}
    if replaced:  # the caller's models, not the ones "clustering" names
        info["replaced"] = replaced
    return TopicModelResult(topic_ids, probs, table, centroids, info)


def merge_similar_topics(embeddings: np.ndarray, topic_ids: np.ndarray, *,
                         similarity: float = 0.3) -> tuple[np.ndarray, dict[str, Any]]:
    """Merge fine topics into broader ones: groups of topics whose centres are similar.

    HDBSCAN with a small minimum size finds many fine, fairly pure topics and splits each
    broad theme over many of them (on AG News: 114 topics for 4 categories). Here the fine
    topics' centres (mean embeddings) are joined by average-linkage clustering on cosine
    distance (scikit-learn), until no two groups have a mean centre similarity of at least
    ``similarity``. The default, 0.3, is the similarity at which an outlier joins a topic:
    topics whose centres are that close count as one. Outliers stay outliers.
    Deterministic (no random step).
    """
    from sklearn.cluster import AgglomerativeClustering

    ids = np.asarray(topic_ids, dtype=np.int64)
    centroids = topic_centroids(embeddings, ids)
    keys = np.array(sorted(centroids), dtype=np.int64)
    info: dict[str, Any] = {"from": int(len(keys)), "to": int(len(keys)), "similarity": float(similarity)}
    if len(keys) < 2:
        return ids.copy(), info
    groups = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=1.0 - similarity).fit_predict(np.stack([centroids[k] for k in keys]))
    mapping = {int(k): int(g) for k, g in zip(keys, groups)}
    mapping[OUTLIER] = OUTLIER
    info["to"] = int(len(set(groups)))
    return np.array([mapping[int(t)] for t in ids], dtype=np.int64), info


def default_min_topic_size(n_docs: int) -> int:
    """10 for small corpora, growing with the corpus so 100,000 texts don't give 2,000 topics."""
    return int(max(10, round(n_docs / 500)))


def _renumber(topic_ids: np.ndarray) -> np.ndarray:
    """Topics numbered 0, 1, ... by size (largest first, ties by old id); -1 stays."""
    ids, counts = np.unique(topic_ids[topic_ids != OUTLIER], return_counts=True)
    order = sorted(zip(ids, counts), key=lambda x: (-x[1], x[0]))
    mapping = {old: new for new, (old, _) in enumerate(order)}
    mapping[OUTLIER] = OUTLIER
    return np.array([mapping[t] for t in topic_ids], dtype=np.int64)


def topic_centroids(embeddings: np.ndarray, topic_ids: np.ndarray) -> dict[int, np.ndarray]:
    out = {}
    for t in np.unique(topic_ids):
        if t == OUTLIER:
            continue
        c = embeddings[topic_ids == t].mean(axis=0)
        out[int(t)] = (c / max(np.linalg.norm(c), 1e-12)).astype(np.float32)
    return out


def _nearest(vectors: np.ndarray, centroids: dict[int, np.ndarray], with_similarity: bool = False):
    ids = np.array(sorted(centroids), dtype=np.int64)
    if len(ids) == 0:
        best = np.full(len(vectors), OUTLIER, dtype=np.int64)
        return (best, np.zeros(len(vectors))) if with_similarity else best
    matrix = np.stack([centroids[i] for i in ids])
    best_sim = np.empty(len(vectors), dtype=np.float32)
    best = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), 8192):  # bounded memory at 100k x many topics
        sims = vectors[start:start + 8192] @ matrix.T
        arg = sims.argmax(axis=1)
        best[start:start + 8192] = ids[arg]
        best_sim[start:start + 8192] = sims[np.arange(len(arg)), arg]
    return (best, best_sim) if with_similarity else best


def typicality(embeddings: np.ndarray, topic_ids: np.ndarray, centroids: dict[int, np.ndarray]) -> np.ndarray:
    probs = np.zeros(len(topic_ids), dtype=np.float64)
    if not centroids:
        return probs
    for t, c in centroids.items():
        mask = topic_ids == t
        probs[mask] = embeddings[mask] @ c
    out = topic_ids == OUTLIER
    if out.any():
        _, sim = _nearest(embeddings[out], centroids, with_similarity=True)
        probs[out] = sim
    return np.clip(probs, 0.0, 1.0).round(4)


# ---------------------------------------------------------------------- keywords and table


def topic_keywords(texts: list[str], topic_ids: np.ndarray, *, n_words: int = N_KEYWORDS,
                   stop_words: str | list[str] | None = "english") -> dict[int, list[str]]:
    """c-TF-IDF keywords per topic (BERTopic's ClassTfidfTransformer over one document per topic)."""
    from bertopic.vectorizers import ClassTfidfTransformer
    from sklearn.feature_extraction.text import CountVectorizer

    ids = [int(t) for t in np.unique(topic_ids) if t != OUTLIER]
    if not ids:
        return {}
    joined = [" ".join(texts[i] for i in np.flatnonzero(topic_ids == t)) for t in ids]
    try:
        counts = CountVectorizer(stop_words=stop_words).fit(joined)
    except ValueError:  # only stop words: fall back to all words
        counts = CountVectorizer().fit(joined)
    matrix = counts.transform(joined)
    weights = ClassTfidfTransformer().fit_transform(matrix).toarray()
    vocab = counts.get_feature_names_out()
    out = {}
    for row, t in enumerate(ids):
        top = np.argsort(-weights[row], kind="stable")[:n_words]
        out[t] = [str(vocab[j]) for j in top if weights[row, j] > 0]
    return out


def auto_label(keywords: list[str], n: int = 3) -> str:
    return ", ".join(keywords[:n]) if keywords else "(no keywords)"


def topic_table(texts: list[str], embeddings: np.ndarray, topic_ids: np.ndarray,
                centroids: dict[int, np.ndarray], labels: dict[int, str] | None = None,
                stop_words: str | list[str] | None = "english") -> pd.DataFrame:
    """One row per topic (outliers last): id, label, size, share, keywords, representative rows."""
    keywords = topic_keywords(texts, topic_ids, stop_words=stop_words)
    n = len(topic_ids)
    rows = []
    for t in sorted(centroids):
        members = np.flatnonzero(topic_ids == t)
        sims = embeddings[members] @ centroids[t]
        rep = members[np.argsort(-sims, kind="stable")[:N_REPRESENTATIVE]]
        kw = keywords.get(t, [])
        rows.append({"topic_id": t, "topic_label": (labels or {}).get(t) or auto_label(kw), "size": len(members),
                     "share": len(members) / n, "keywords": kw, "representative": [int(i) for i in rep]})
    outliers = int((topic_ids == OUTLIER).sum())
    if outliers:
        rows.append({"topic_id": OUTLIER, "topic_label": OUTLIER_LABEL, "size": outliers, "share": outliers / n,
                     "keywords": [], "representative": []})
    return pd.DataFrame(rows, columns=["topic_id", "topic_label", "size", "share", "keywords", "representative"])


def document_map(embeddings: np.ndarray, seed: int = 0, max_points: int = MAP_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """2D UMAP coordinates for a seeded sample of at most ``max_points`` documents: (rows, xy)."""
    n = len(embeddings)
    rows = np.arange(n) if n <= max_points else np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    if len(rows) < 4:
        return rows, np.zeros((len(rows), 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UMAP_SEED_WARNING, category=UserWarning)
        xy = umap_model(len(rows), seed, n_components=2).fit_transform(embeddings[rows])
    return rows, np.asarray(xy, dtype=np.float32)


def similarity_matrix(centroids: dict[int, np.ndarray]) -> pd.DataFrame:
    ids = sorted(centroids)
    if not ids:
        return pd.DataFrame()
    matrix = np.stack([centroids[i] for i in ids])
    return pd.DataFrame(matrix @ matrix.T, index=ids, columns=ids)


# ---------------------------------------------------------------------- edits


# ---------------------------------------------------------------------- the predictor

EMBED_SHARE = 0.8  # share of the progress bar for the embedding pass


def embedding_model(config, stage=None) -> str:
    from ...embeddings import task_embedding_model

    return task_embedding_model(config, models.DEFAULTS["topics"]["offline"], stage)


class TopicsPredictor(Predictor):
    def __init__(self, config: TopicsConfig, context: RunContext | None):
        from ...embeddings import Embedder

        self.config = config
        self.context = context
        self.embedder = Embedder(embedding_model(config, context.stage if context else None), device=config.device, batch_size=config.batch_size,
                                 cache_dir=context.cache_dir if context else None)
        self.result: TopicModelResult | None = None
        self.doc_ids: list[str] = []

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        n = len(texts)
        vectors = self.embedder.encode(texts, None if progress is None else (lambda k: progress(int(k * EMBED_SHARE))))
        # The fit and the map report no per-text progress: say what runs (the page adds the time).
        self._stage(f"Clustering {n:,} texts into topics")
        result = fit_topics(
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
            "topic_label": [labels.get(int(t), OUTLIER_LABEL) for t in result.topic_ids],
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
        from ...runner import resolve_device

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
        from ...fileio import atomic_write_bytes, atomic_write_parquet

        import json

        # The description goes into the manifest; a run resumed after its only chunk was
        # checkpointed has no fit in memory and reads it back from here.
        atomic_write_bytes(folder / "topics.json", json.dumps(
            {"topics_info": self.result.info, "topics": table_records(self.result.table, self.doc_ids)},
            default=_json_default).encode("utf-8"))
        rows, xy = document_map(vectors, seed=self.config.seed)
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

