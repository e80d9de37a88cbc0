"""Topics: planted topics are recovered, runs are deterministic, the embedding cache is used,
edits work end to end, the CLI writes the topics table, and bad settings are refused."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

from analysis.tasks.topics import fit as topics
from analysis.corpus import build_corpus
from analysis.errors import TextlabError
from analysis.jobs import JobManager
from analysis.tasks import topics as topics_task
from analysis.workspace import Workspace

THEMES = {
    "football": ["goal", "match", "striker", "league", "coach", "penalty", "stadium", "referee", "season", "fans"],
    "cooking": ["recipe", "oven", "garlic", "bake", "flour", "sauce", "onion", "pasta", "kitchen", "butter"],
    "finance": ["bank", "interest", "rates", "inflation", "loan", "mortgage", "savings", "stocks", "market", "bonds"],
}


def planted(n_per_topic=40, seed=0):
    rng = np.random.default_rng(seed)
    texts, truth = [], []
    for theme, words in THEMES.items():
        for _ in range(n_per_topic):
            w = rng.choice(words, 6, replace=False)
            texts.append(f"The {w[0]} and the {w[1]} came up, with {w[2]}, {w[3]} and {w[4]} {w[5]}.")
            truth.append(theme)
    return texts, truth


@pytest.fixture(scope="module")
def corpus_texts():
    return planted()


def test_planted_topics_are_recovered_and_runs_are_deterministic(corpus_texts):
    texts, truth = corpus_texts
    first = topics_task.run(texts, {"min_topic_size": 10})
    second = topics_task.run(texts, {"min_topic_size": 10})
    assert normalized_mutual_info_score(truth, first["topic_id"]) > 0.95
    pd.testing.assert_frame_equal(first, second)
    assert first["topic_prob"].between(0, 1).all()
    # Keywords come from the planted vocabularies: each topic's label words belong to one theme.
    for label in first["topic_label"].unique():
        words = [w.strip() for w in label.split(",")]
        assert any(set(words) <= set(v) for v in THEMES.values()), label


def test_a_given_number_of_topics_uses_kmeans_without_outliers(corpus_texts):
    texts, truth = corpus_texts
    out = topics_task.run(texts, {"n_topics": 3})
    assert sorted(out["topic_id"].unique()) == [0, 1, 2]
    assert normalized_mutual_info_score(truth, out["topic_id"]) > 0.95


def test_with_k_given_topics_equal_kmeans_on_the_embeddings(corpus_texts):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from analysis.embeddings import Embedder

    texts, _ = corpus_texts
    vectors = Embedder().encode(texts)
    result = topics.fit_topics(texts, vectors, n_topics=4, seed=0)
    reference = KMeans(n_clusters=4, random_state=0, n_init=10).fit_predict(vectors)
    assert adjusted_rand_score(reference, result.topic_ids) == 1.0  # same partition, renumbered by size
    assert result.info["clustering"] == "KMeans on the embeddings" and result.info["outliers"] == 0



def test_the_reduction_and_clustering_steps_can_be_replaced(corpus_texts):
    """reducer= and clusterer= (for experiments) replace umap_model / cluster_model, and the
    info says so; the factories build what fit_topics uses by default."""
    from bertopic.dimensionality import BaseDimensionalityReduction
    from sklearn.cluster import HDBSCAN, KMeans
    from sklearn.metrics import adjusted_rand_score

    from analysis.embeddings import Embedder

    texts, _ = corpus_texts
    vectors = Embedder().encode(texts)
    result = topics.fit_topics(texts, vectors, reducer=BaseDimensionalityReduction(),
                               clusterer=KMeans(n_clusters=3, random_state=0, n_init=10))
    reference = KMeans(n_clusters=3, random_state=0, n_init=10).fit_predict(vectors)
    assert adjusted_rand_score(reference, result.topic_ids) == 1.0
    assert result.info["replaced"] == {"reducer": "BaseDimensionalityReduction", "clusterer": "KMeans"}
    assert "replaced" not in topics.fit_topics(texts, vectors, n_topics=3).info
    hdbscan = topics.cluster_model(None, 10, seed=0)
    assert isinstance(hdbscan, HDBSCAN) and hdbscan.min_cluster_size == 10
    assert topics.umap_model(len(texts), seed=0, n_neighbors=50).n_neighbors == 50

def test_fine_topics_are_merged_back_into_the_planted_themes():
    """Three themes, each split into three fine topics: merging finds the three themes."""
    rng = np.random.default_rng(0)
    themes = rng.normal(size=(3, 32))
    vectors, fine, theme = [], [], []
    for t in range(3):
        for f in range(3):
            center = themes[t] + 0.35 * rng.normal(size=32)
            vectors.append(center + 0.1 * rng.normal(size=(40, 32)))
            fine += [3 * t + f] * 40
            theme += [t] * 40
    vectors = np.vstack(vectors)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    fine = np.array(fine)
    fine[::25] = topics.OUTLIER  # outliers stay outliers
    merged, info = topics.merge_similar_topics(vectors, fine)
    assert info["from"] == 9 and info["to"] == 3
    keep = fine != topics.OUTLIER
    assert (merged[~keep] == topics.OUTLIER).all()
    assert normalized_mutual_info_score(np.array(theme)[keep], merged[keep]) == 1.0
    # A stricter threshold keeps the fine topics apart.
    kept, info = topics.merge_similar_topics(vectors, fine, similarity=0.99)
    assert info["to"] == 9 and normalized_mutual_info_score(fine, kept) == 1.0 and (kept[fine == -1] == -1).all()


def test_merge_option_only_joins_fine_topics(corpus_texts):
    from analysis.embeddings import Embedder

    texts, truth = corpus_texts
    vectors = Embedder().encode(texts)
    fine = topics.fit_topics(texts, vectors, min_topic_size=5, seed=0, reduce_outliers=False)
    broad = topics.fit_topics(texts, vectors, min_topic_size=5, seed=0, reduce_outliers=False, merge_topics=True)
    merged = broad.info["merged"]
    assert merged["from"] == fine.info["topics"] and merged["to"] == broad.info["topics"] <= fine.info["topics"]
    # Broader topics only join fine ones: each fine topic lies inside one broad topic.
    pairs = pd.crosstab(fine.topic_ids, broad.topic_ids)
    assert ((pairs > 0).sum(axis=1) == 1).all()
    out = topics_task.run(texts, {"min_topic_size": 5, "merge_topics": True})
    assert out["topic_id"].nunique() == broad.info["topics"]
    with pytest.raises(TextlabError, match="Merging topics applies"):
        topics_task.run(texts, {"n_topics": 3, "merge_topics": True})


def test_fit_on_a_sample_assigns_the_rest_to_the_nearest_topic(corpus_texts):
    from analysis.embeddings import Embedder

    texts, truth = corpus_texts
    vectors = Embedder().encode(texts)
    result = topics.fit_topics(texts, vectors, n_topics=3, max_fit_docs=60, seed=0)
    assert result.info["fitted"] == 60 and result.info["assigned_to_nearest_topic"] == 60
    assert normalized_mutual_info_score(truth, result.topic_ids) > 0.9
    assert list(result.table["size"]) == sorted(result.table["size"], reverse=True)  # numbered by size


def test_outliers_are_counted_and_reduced_only_when_similar_enough():
    rng = np.random.default_rng(0)
    centers = np.eye(8)[:2]
    vectors = np.vstack([centers[0] + 0.05 * rng.normal(size=(30, 8)), centers[1] + 0.05 * rng.normal(size=(30, 8)),
                         rng.normal(size=(4, 8))])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.array([0] * 30 + [1] * 30 + [-1] * 4)
    centroids = topics.topic_centroids(vectors, ids)
    best, sim = topics._nearest(vectors[-4:], centroids, with_similarity=True)
    assert set(best) <= {0, 1} and (sim < 1).all()
    probs = topics.typicality(vectors, ids, centroids)
    assert (probs[:60] > 0.9).all()


def test_topics_job_uses_the_embedding_cache_and_edits_reach_the_export(home, corpus_texts, monkeypatch):
    texts, _ = corpus_texts
    ws = Workspace()
    project = ws.create_project("p", build_corpus(pd.DataFrame({"text": texts + [""]}), "text"))
    manager = JobManager(ws)
    first = manager.submit(project, "topics", {"n_topics": 3})
    assert manager.wait(300)
    m1 = project.manifest(first.id)
    assert m1["topics_info"]["topics"] == 3 and len(m1["topics"]) == 3
    assert (project.run_folder(first.id) / "map.parquet").exists()
    # A run resumed with every chunk checkpointed describes itself without fitting again.
    from analysis.tasks.base import RunContext

    fresh = topics_task.TASK.load(topics_task.TopicsConfig.from_dict({"n_topics": 3}),
                                  RunContext(texts=texts + [""], run_folder=project.run_folder(first.id)))
    described = fresh.describe()
    fresh.close()
    assert described["topics"] == m1["topics"] and described["topics_info"]["topics"] == 3
    result = project.result(first.id)
    assert len(result) == len(texts) + 1 and pd.isna(result["topic_id"].iloc[-1])
    second = manager.submit(project, "topics", {"n_topics": 4})
    assert manager.wait(300)
    m2 = project.manifest(second.id)
    assert m2["cache"]["hits"] == len(texts) and m2["cache"]["computed"] == 0

    # Rename, merge and split one run; every edit is logged and shows in the results.
    import analysis.embeddings

    real_embedder = analysis.embeddings.Embedder
    monkeypatch.setattr(analysis.embeddings, "Embedder", None)  # a rename needs no model
    renamed = topics_task.edit_topics(project, first.id, {"op": "rename", "topic": 0, "label": "Sport talk"})
    monkeypatch.setattr(analysis.embeddings, "Embedder", real_embedder)
    assert [r["topic_label"] for r in renamed["topics"] if r["topic_id"] == 0] == ["Sport talk"]
    renamed_rows = project.result(first.id)
    assert set(renamed_rows.loc[renamed_rows["topic_id"] == 0, "topic_label"]) == {"Sport talk"}
    assert "Sport talk" not in set(renamed_rows.loc[renamed_rows["topic_id"] != 0, "topic_label"].dropna())
    topics_task.edit_topics(project, first.id, {"op": "merge", "topics": [1, 2]})
    merged = project.result(first.id)
    assert sorted(merged["topic_id"].dropna().unique()) == [0, 1]
    manifest = topics_task.edit_topics(project, first.id, {"op": "split", "topic": 1, "into": 2})
    assert [e["op"] for e in manifest["edits"]] == ["rename", "merge", "split"]
    assert sorted(project.result(first.id)["topic_id"].dropna().unique()) == [0, 1, 2]  # the new part gets the next free id
    assert "Sport talk" in set(project.results_frame({"topics": ws.run(first.id)})["topic_label"])
    with pytest.raises(TextlabError, match="does not exist"):
        topics_task.edit_topics(project, first.id, {"op": "rename", "topic": 42, "label": "x"})


def test_cli_writes_the_topics_table_beside_the_output(home, tmp_path, corpus_texts):
    from analysis.cli import main

    texts, _ = corpus_texts
    src = tmp_path / "posts.csv"
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(src, index=False)
    out = tmp_path / "topics.csv"
    assert main(["analyze", str(src), "-o", str(out), "--task", "topics", "--n-topics", "3"]) == 0
    coded = pd.read_csv(out)
    assert {"topic_id", "topic_label", "topic_prob"} <= set(coded.columns) and len(coded) == len(texts)
    table = pd.read_csv(tmp_path / "topics.topics.csv")
    assert len(table) == 3 and table["size"].sum() == len(texts)
    assert {"keywords", "representative_texts"} <= set(table.columns)


def test_bad_topic_settings_are_refused(home):
    with pytest.raises(TextlabError, match="at least 2"):
        topics_task.run(["a"] * 50, {"n_topics": 1})
    with pytest.raises(TextlabError, match="at least"):
        topics_task.run(["a text"] * 5, {})
    with pytest.raises(TextlabError, match="sentence-embedding"):
        topics_task.run(["a text"] * 50, {"model": "vader"})
