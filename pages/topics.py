"""Topics page (planned: issue #5)."""

from ui.widgets import planned_page

planned_page("Topics", "topics", "Topic clustering with BERTopic over shared embeddings, by group and over time, with editing.", "issue #5")
