"""analysis.tasks.topics.overview: the tables the Topics page draws from a finished run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tasks.topics import OTHER_TOPICS, map_points, top_topics, topic_overview, topic_similarity
from analysis.tasks.topics.fit import save_centroids


def topics_table():
    return pd.DataFrame({"topic_id": [-1, 0, 1, 2], "topic_label": ["Outliers", "rent", "bus", "doctor"],
                         "size": [3, 10, 6, 2], "share": [0.142857, 0.47619, 0.285714, 0.095238],
                         "keywords": [[], ["rent", "landlord"], ["bus", "train"], ["doctor"]]})


def test_topic_overview_is_the_table_to_read():
    shown = topic_overview(topics_table())
    assert list(shown.columns) == ["topic_id", "topic_label", "size", "share", "keywords"]
    assert shown["share"].tolist() == [14.3, 47.6, 28.6, 9.5] and shown["keywords"].tolist()[1] == "rent, landlord"


def test_topic_similarity_is_the_labelled_cosine_of_the_centroids(tmp_path):
    assert topic_similarity(tmp_path, topics_table()).empty  # no centroids kept
    centroids = {0: np.array([1.0, 0.0]), 1: np.array([0.6, 0.8]), 2: np.array([0.0, 1.0])}
    save_centroids(tmp_path, centroids, lambda path, data: path.write_bytes(data))
    similarity = topic_similarity(tmp_path, topics_table())
    assert similarity.index.tolist() == ["0: rent", "1: bus", "2: doctor"] == similarity.columns.tolist()
    assert similarity.index.name == "topic"
    np.testing.assert_allclose(similarity.to_numpy(), [[1, 0.6, 0], [0.6, 1, 0.8], [0, 0.8, 1]], atol=1e-6)
    assert topic_similarity(tmp_path, topics_table(), limit=2).shape == (2, 2)
    save_centroids(tmp_path, {0: np.array([1.0, 0.0])}, lambda path, data: path.write_bytes(data))
    assert topic_similarity(tmp_path, topics_table()).empty  # one topic: nothing to compare


def test_map_points_carry_the_topic_and_a_snippet(tmp_path):
    frame = pd.DataFrame({"doc_id": ["a", "b"], "answer": ["x" * 200, "short"], "topic_label": ["rent", "bus"]})
    assert map_points(tmp_path, frame, "answer") is None
    pd.DataFrame({"doc_id": ["b", "a"], "x": [0.0, 1.0], "y": [1.0, 0.0]}).to_parquet(tmp_path / "map.parquet")
    points = map_points(tmp_path, frame, "answer")
    assert points["doc_id"].tolist() == ["b", "a"] and points["topic_label"].tolist() == ["bus", "rent"]
    assert points["snippet"].tolist() == ["short", "x" * 160]


def test_top_topics_name_the_largest_and_group_the_rest():
    frame = pd.DataFrame({"topic_label": ["rent", "bus", "doctor", "Outliers", None]})
    grouped, order = top_topics(frame, topics_table(), top=2)
    assert order == ["rent", "bus", OTHER_TOPICS, "Outliers"]
    assert grouped["topic"].tolist()[:4] == ["rent", "bus", OTHER_TOPICS, "Outliers"]
    assert pd.isna(grouped["topic"].iloc[4]) and grouped["topic_label"].tolist()[2] == "doctor"
