"""What the Topics page shows of a finished run, as plain tables.

The topics table (``topic_table``, kept in the run manifest), the topic centroids and the
document map (kept in the run folder) become the frames the page charts: the table for
reading (``topic_overview``), the labelled similarity of the topics (``topic_similarity``),
the map's points with a snippet of each text (``map_points``) and the texts grouped into
the largest topics and the rest (``top_topics``). Nothing here imports Streamlit.
"""

from __future__ import annotations

import pandas as pd

from .fit import OUTLIER, OUTLIER_LABEL, load_centroids, similarity_matrix

OTHER_TOPICS = "Other topics"  # the topics beyond the largest ones, in charts by group and time


def topic_overview(table: pd.DataFrame) -> pd.DataFrame:
    """The topics table to read: id, label, size, share in percent (one decimal) and the
    keywords as one comma-separated string."""
    shown = table.assign(keywords=table["keywords"].map(", ".join), share=(table["share"] * 100).round(1))
    return shown[["topic_id", "topic_label", "size", "share", "keywords"]]


def topic_similarity(folder, table: pd.DataFrame, limit: int = 30) -> pd.DataFrame:
    """Cosine similarity of the run's topic centroids (kept in the run ``folder``), rows and
    columns named "id: label", at most ``limit`` topics; empty when the run has fewer than two."""
    matrix = similarity_matrix(load_centroids(folder))
    if len(matrix) < 2:
        return pd.DataFrame()
    names = dict(zip(table["topic_id"], table["topic_label"]))
    labels = [f"{i}: {names.get(i, i)}" for i in matrix.index]
    similarity = pd.DataFrame(matrix.to_numpy(), index=labels, columns=labels).iloc[:limit, :limit]
    similarity.index.name = "topic"
    return similarity


def map_points(folder, frame: pd.DataFrame, text_column: str, snippet: int = 160) -> pd.DataFrame | None:
    """The run's 2D document map (kept in the run ``folder``) with each point's ``topic_label``
    and the first ``snippet`` characters of its text; None when the run has no map."""
    path = folder / "map.parquet"
    if not path.exists():
        return None
    points = pd.read_parquet(path).merge(frame[["doc_id", "topic_label"]], on="doc_id", how="left")
    snippets = dict(zip(frame["doc_id"], frame[text_column].astype(str).str.slice(0, snippet)))
    points["snippet"] = points["doc_id"].map(snippets)
    return points


def top_topics(frame: pd.DataFrame, table: pd.DataFrame, top: int = 10) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with a ``topic`` column for charts: the ``top`` largest topics by name, the others
    as "Other topics", outliers as "Outliers", texts without a topic missing; and the order
    of those values (largest first)."""
    names = table[table["topic_id"] != OUTLIER].nlargest(top, "size")["topic_label"].tolist()
    labels = frame["topic_label"]
    grouped = frame.assign(topic=labels.where(labels.isin(names + [OUTLIER_LABEL]),
                                              labels.where(labels.isna(), OTHER_TOPICS)))
    return grouped, names + [OTHER_TOPICS, OUTLIER_LABEL]


__all__ = ["OTHER_TOPICS", "topic_overview", "topic_similarity", "map_points", "top_topics"]
