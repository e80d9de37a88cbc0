"""Summaries page (planned: issue #6)."""

from ui.widgets import planned_page

planned_page("Summaries", "summary", "Summaries per document and per group, code or topic, with the sentences they come from.", "issue #6")
