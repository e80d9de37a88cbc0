"""Emotion page (planned: issue #3)."""

from ui.widgets import planned_page

planned_page("Emotion", "emotion", "Emotion profiles (NRC lexicon offline, or j-hartmann/emotion-english-distilroberta-base).", "issue #3")
