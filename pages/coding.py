"""Codebook coding page (planned: issue #4)."""

from ui.widgets import planned_page

planned_page("Codebook coding", "coding", "Code texts into your own codebook, zero-shot or from a few coded examples, and check the result against human coders.", "issue #4")
