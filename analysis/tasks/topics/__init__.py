"""Topics: BERTopic clusters over the shared embeddings (the method: ``.fit``; hand edits: ``.edit``).

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

import pandas as pd

from ...errors import TextlabError
from ..base import FAST_HELP, BaseConfig, Predictor, RunContext, Task, setting
from .. import execute
from .edit import apply_edit, edit_topics
from .overview import OTHER_TOPICS, map_points, top_topics, topic_overview, topic_similarity
from .fit import (OUTLIER, OUTLIER_LABEL, TopicModelResult, TopicsPredictor, default_min_topic_size, document_map,
                  embedding_model, fit_topics, load_centroids, merge_similar_topics, similarity_matrix, topic_centroids,
                  topic_keywords, topic_table, typicality, umap_model, cluster_model)
from ... import models

__all__ = [  # the public names of this analysis
    "TopicsConfig",
    "TopicsTask",
    "TASK",
    "run",
    "OUTLIER",
    "OUTLIER_LABEL",
    "TopicModelResult",
    "TopicsPredictor",
    "fit_topics",
    "merge_similar_topics",
    "default_min_topic_size",
    "topic_centroids",
    "typicality",
    "umap_model",
    "cluster_model",
    "topic_keywords",
    "topic_table",
    "document_map",
    "similarity_matrix",
    "load_centroids",
    "embedding_model",
    "apply_edit",
    "edit_topics",
    "OTHER_TOPICS",
    "topic_overview",
    "topic_similarity",
    "map_points",
    "top_topics",
]


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
    fast: bool = setting(False, help=FAST_HELP, flag="--fast")



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
        if config.fast and config.model:
            raise TextlabError("--fast uses Textlab's own fast embedding model; leave out --model (or --fast).")
        spec = None if config.fast else models.get_spec(embedding_model(config), task="topics")
        if spec is not None and spec.kind != "sentence-embedding":
            raise TextlabError(f"Topics need a sentence-embedding model; '{spec.name}' is a {spec.kind} model.")

    def check(self, config: TopicsConfig, context: RunContext) -> None:
        n = sum(1 for t in context.texts if t.strip())
        size = config.min_topic_size or default_min_topic_size(min(n, config.max_fit_docs))
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


def run(texts: list[str], config: TopicsConfig | dict | None = None, **settings) -> pd.DataFrame:
    """Topics for a list of texts in-process (notebooks, tests)."""
    return execute.run(TASK, texts, config, **settings)
