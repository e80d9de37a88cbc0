"""What every coding method shares: reading the settings, and codes to result columns."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...codebook import Codebook, as_codebook
from ...textutil import slug

if TYPE_CHECKING:
    from . import CodingConfig

MULTI_SEPARATOR = ";"


def method_of(config: CodingConfig) -> str:
    if config.method == "auto":
        return "few-shot" if config.labels_column else "zero-shot"
    return config.method


def codebook_of(config: CodingConfig) -> Codebook | None:
    return None if config.codebook is None else as_codebook(config.codebook)


def multi_label_of(config: CodingConfig, book: Codebook | None) -> bool:
    if config.multi_label is not None:
        return bool(config.multi_label)
    return bool(book.multi_label) if book else False


def split_codes(value) -> list[str]:
    """Codes of one cell: ';'-joined for multi-label; empty or missing -> []."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return []
    return [p.strip() for p in str(value).split(MULTI_SEPARATOR) if p.strip()]


# ---------------------------------------------------------------------- shared output


def output_frame(probs: np.ndarray, labels: list[str], multi: bool, threshold: float,
                  none_label: str | None, none_probs: np.ndarray | None = None) -> pd.DataFrame:
    """Result columns from per-code probabilities (rows = texts, columns = codes)."""
    frame = pd.DataFrame(probs.round(4), columns=[f"code_{slug(label)}" for label in labels])
    if none_label is not None and none_probs is not None:
        frame[f"code_{slug(none_label)}"] = np.round(none_probs, 4)
    if multi:
        chosen = [[labels[j] for j in np.flatnonzero(row >= threshold)] for row in probs]
        fallback = none_label or ""
        frame.insert(0, "code_labels", [MULTI_SEPARATOR.join(c) if c else fallback for c in chosen])
    else:
        names = np.array(labels + ([none_label] if none_label and none_probs is not None else []), dtype=object)
        full = probs if none_probs is None or none_label is None else np.column_stack([probs, none_probs])
        frame.insert(0, "code_label", names[full.argmax(axis=1)] if len(full) else [])
    return frame


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))

