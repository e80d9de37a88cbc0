"""Zero-shot coding offline: cosine similarity of each text to each code's prototype
(the method is described in ``analysis.tasks.coding``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import models
from ...codebook import Codebook
from ...method_notes import non_english
from ..base import Predictor, RunContext
from .labels import multi_label_of, output_frame, sigmoid, softmax

if TYPE_CHECKING:
    from . import CodingConfig


def code_prototypes(embedder, book: Codebook) -> np.ndarray:
    """One unit vector per code: the mean of its label, description and example vectors."""
    parts: list[str] = []
    owners: list[tuple[int, str]] = []
    for j, code in enumerate(book.codes):
        parts.append(code.label.strip())
        owners.append((j, "label"))
        description = code.description()
        if description.rstrip(".") != code.label.strip().rstrip("."):
            parts.append(description)
            owners.append((j, "description"))
        for example in code.examples:
            parts.append(example)
            owners.append((j, "example"))
    vectors = embedder.encode(parts)
    protos = np.zeros((len(book.codes), vectors.shape[1]), dtype=np.float64)
    for j in range(len(book.codes)):
        kinds = {}
        for (owner, kind), vec in zip(owners, vectors):
            if owner == j:
                kinds.setdefault(kind, []).append(vec)
        # Each kind counts once, whatever the number of examples: ten examples should not
        # drown the definition the researcher wrote.
        means = [np.mean(v, axis=0) for v in kinds.values()]
        protos[j] = np.mean(means, axis=0)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True).clip(1e-12)
    return protos.astype(np.float32)


class SimilarityCoder(Predictor):
    """Zero-shot coding by embedding similarity to the codebook (offline default)."""

    def __init__(self, config: CodingConfig, book: Codebook, reason: str, context: RunContext | None,
                 embedder=None):
        """``embedder``: an Embedder to score with instead of loading the default model (the
        caller keeps it and closes it; the benchmarks score precomputed vectors this way)."""
        from ...embeddings import Embedder

        self.config, self.book, self.reason = config, book, reason
        self.multi = multi_label_of(config, book)
        self._owns_embedder = embedder is None
        from ...embeddings import task_embedding_model

        model = None if embedder else task_embedding_model({"fast": config.fast}, models.DEFAULTS["coding"]["offline"],
                                                           context.stage if context else None)
        self.embedder = embedder or Embedder(model, device=config.device,
                                             batch_size=config.batch_size,
                                             cache_dir=context.cache_dir if context else None)
        self.prototypes = code_prototypes(self.embedder, book)
        self.n_split = 0

    def scores(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        sims = vectors @ self.prototypes.T
        t = self.config.temperature
        if self.multi:
            return sigmoid((sims - self.config.multi_similarity) / t), None
        if self.book.none_label:
            full = softmax(np.column_stack([sims, np.full(len(sims), self.config.none_similarity)]) / t)
            return full[:, :-1], full[:, -1]
        return softmax(sims / t), None

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        vectors = self.embedder.encode(texts, progress)
        self.n_split += int(self.embedder.n_split)
        probs, none = self.scores(vectors)
        frame = output_frame(probs, self.book.labels, self.multi, self.config.threshold, self.book.none_label, none)
        frame["split"] = self.embedder.split
        # all-MiniLM-L6-v2 is an English model: the manifest counts the texts it could not read.
        frame["non_english"] = non_english(texts)
        return frame

    def describe(self) -> dict[str, Any]:
        return {
            **self.embedder.describe(),
            "backend": "offline",
            "method": "zero-shot (embedding similarity)",
            "backend_choice": self.reason,
            "labels": self.book.output_labels,
            "multi_label": self.multi,
            "codebook_version": self.book.version_tag(),
            "codebook": self.book.to_dict(),
            "scoring": ("softmax(cosine similarity to the code prototype / temperature)" if not self.multi else
                        "sigmoid((cosine similarity - multi_similarity) / temperature) per code"),
        }

    def close(self) -> None:
        if self._owns_embedder:
            self.embedder.close()

