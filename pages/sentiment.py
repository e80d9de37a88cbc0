"""Sentiment page (planned: issue #3)."""

from ui.widgets import planned_page

planned_page("Sentiment", "sentiment", "Sentiment of every text (VADER offline, or a transformer model such as cardiffnlp/twitter-roberta-base-sentiment-latest), with charts by group and over time.", "issue #3")
