"""What the Codebook coding page asks of the library before and after a run.

Before a run: which columns hold human codes (``human_code_columns``, ``human_code_counts``),
a quick cross-validated check of the few-shot model on them (``preview_fewshot``), and
what a SetFit run would cost on this machine (``setfit_estimate``). After a run: which
result columns hold the codes (``code_columns``), the share of texts per code
(``code_shares``) and the uncoded texts the model is least sure about (``next_to_code``).

Each function returns plain data (frames, dataclasses, plain-text messages); the page, a
notebook or a script draws it. Nothing here imports Streamlit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ... import aggregate
from ...textutil import slug
from .fewshot import FewShotModel, check_training_codes, learning_curve, suggest_next, training_rows
from .setfit import CPU_PAIRS_PER_SECOND, setfit_pairs

MAX_CODES_IN_A_COLUMN = 200  # a column with more distinct values holds no codes (ids, free text)


# ---------------------------------------------------------------------- before a run


def human_code_columns(frame: pd.DataFrame, *, exclude: Iterable[str | None] = (),
                       max_codes: int = MAX_CODES_IN_A_COLUMN) -> list[str]:
    """Columns that may hold human codes: some non-empty value, at most ``max_codes`` distinct ones.

    ``exclude``: columns that never hold codes (the text, id and date columns; ``None`` is
    ignored). The order is the frame's.
    """
    skip = {c for c in exclude if c is not None}
    return [c for c in frame.columns if c not in skip
            and frame[c].dropna().astype(str).str.strip().ne("").any()
            and frame[c].nunique(dropna=True) <= max_codes]


def human_code_counts(frame: pd.DataFrame, column: str) -> pd.Series:
    """Coded rows per code in ``column`` (empty and missing values are not codes), most frequent
    first; ``.sum()`` is the number of coded rows."""
    coded = frame[column].dropna().astype(str).str.strip()
    return coded[coded != ""].value_counts()


@dataclass(frozen=True)
class FewShotPreview:
    """A cross-validated check of the few-shot model on the coded rows, before any run.

    ``report``: ``FewShotModel.cross_validate``'s report (``metrics`` with bootstrap
    intervals, ``folds``, ``rows``, ``unseen_codes``). ``curve``: the learning curve
    (``n_train``, ``macro_f1``, ``sd``). ``notes``: plain-text information (too few rows for
    an estimate); ``warnings``: plain-text problems (codes no row has, never predicted).
    """

    column: str
    report: dict[str, Any]
    curve: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(self.report["rows"])

    @property
    def folds(self) -> int:
        return int(self.report["folds"])

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return self.report["metrics"]


def preview_fewshot(texts: list[str], frame: pd.DataFrame, labels_column: str, *, multi_label: bool = False,
                    labels: list[str] | None = None, embedder=None, model: str | None = None,
                    device: str = "auto", cache_dir=None) -> FewShotPreview:
    """Embed the rows of ``frame[labels_column]`` that people coded, cross-validate the few-shot
    model (logistic regression on the embeddings) and draw its learning curve.

    ``texts`` are the corpus texts, row for row with ``frame``. ``labels``: the codebook's
    labels; a code outside them is an error that names it. ``embedder``: anything with
    ``encode(texts) -> array`` (tests pass a fake one); by default the few-shot run's
    embedding model (``model``, else the bundled MiniLM) with its cache in ``cache_dir``.
    Raises a TextlabError that says what to code when there are too few coded rows.
    """
    from ...validation import MIN_SHARED_TEXTS

    idx, codes = training_rows(texts, frame, labels_column, multi_label, labels)
    check_training_codes(codes, multi_label, labels_column)
    if embedder is None:
        from ...embeddings import Embedder

        embedder = (Embedder(model, device=device, cache_dir=cache_dir) if model
                    else Embedder(device=device, cache_dir=cache_dir))
    vectors = embedder.encode([texts[i] for i in idx])
    report = FewShotModel(multi_label=multi_label, labels=labels).cross_validate(vectors, codes)
    curve = learning_curve(vectors, codes, multi_label=multi_label)
    notes, warnings = [], []
    if all(v["value"] is None for v in report["metrics"].values()):
        notes.append(f"{report['rows']:,} coded rows are too few for an estimate of the model's agreement "
                     f"(at least {MIN_SHARED_TEXTS} are needed); code more rows on the Validate page.")
    if report["unseen_codes"]:
        warnings.append("No coded rows for " + ", ".join(map(str, report["unseen_codes"]))
                        + ": these codes are never predicted.")
    return FewShotPreview(column=labels_column, report=report, curve=curve, notes=notes, warnings=warnings)


@dataclass(frozen=True)
class SetFitEstimate:
    """What a SetFit run would cost here: ``pairs`` drawn in all, ``fine_tunings`` (one per fold
    plus the final one), and whether it would run on the CPU, with a rough time there."""

    n_coded: int
    pairs: int
    fine_tunings: int
    on_cpu: bool

    @property
    def cpu_minutes(self) -> int:
        """Rough minutes on a laptop-class CPU (at least 1), from ``CPU_PAIRS_PER_SECOND``."""
        return max(1, round(self.pairs / CPU_PAIRS_PER_SECOND / 60))


def setfit_estimate(n_coded: int, *, device: str = "auto", folds: int = 5, iterations: int = 20,
                    epochs: int = 1) -> SetFitEstimate:
    """The training pairs a SetFit run on ``n_coded`` coded rows draws, and whether ``device``
    resolves to the CPU here (where SetFit takes minutes, logistic regression seconds)."""
    from ...runner import resolve_device

    return SetFitEstimate(n_coded=n_coded, pairs=setfit_pairs(n_coded, folds=folds, iterations=iterations,
                                                             epochs=epochs),
                          fine_tunings=folds + 1, on_cpu=resolve_device(device).type == "cpu")


# ---------------------------------------------------------------------- after a run


@dataclass(frozen=True)
class CodeColumns:
    """The result columns of a coding run: ``label`` (``code_label``, or ``code_labels`` when
    ``multi``) and ``probabilities``, code -> its ``code_<slug>`` column, in the run's order."""

    label: str
    multi: bool
    probabilities: dict[str, str]


def code_columns(frame: pd.DataFrame, labels: Iterable[str] = ()) -> CodeColumns:
    """Which columns of a result frame hold the codes; ``labels``: the run's labels (its manifest's
    ``labels``), for the probability columns (those the frame lacks are left out)."""
    multi = "code_labels" in frame.columns
    probabilities = {label: f"code_{slug(label)}" for label in labels if f"code_{slug(label)}" in frame.columns}
    return CodeColumns(label="code_labels" if multi else "code_label", multi=multi, probabilities=probabilities)


def code_shares(frame: pd.DataFrame, codes: CodeColumns, labels: list[str], group: str | None = None) -> pd.DataFrame:
    """Share of texts per code (per ``group`` value when given), with 95% intervals; a multi-label
    text counts for each of its codes."""
    if codes.multi:
        return aggregate.multi_label_shares(frame, codes.label, labels, group)
    return aggregate.label_shares(frame, codes.label, group)


def next_to_code(frame: pd.DataFrame, text_column: str, codes: CodeColumns, *,
                 human_codes: pd.Series | None = None, k: int = 20) -> pd.DataFrame:
    """The ``k`` uncoded texts the model is least sure about (uncertainty sampling, ``suggest_next``):
    coding these next teaches a few-shot model the most per row.

    ``frame``: a coding run's results; ``human_codes``: the column of human codes, row for row
    with ``frame`` (rows with a non-blank code are not suggested; nor are empty texts). Returns the
    rows with ``doc_id``, the text, the assigned code(s) and the code probabilities.
    """
    shown = ["doc_id", text_column, codes.label, *codes.probabilities.values()]
    if not codes.probabilities:
        return frame.iloc[:0][shown]
    probs = frame[list(codes.probabilities.values())].to_numpy(dtype=float)
    exclude = frame[text_column].astype(str).str.strip().eq("").to_numpy()
    if human_codes is not None:
        # A blank code is no code (a CSV column reads "" for uncoded rows). Not "|=": to_numpy()
        # can hand back a read-only view of the frame.
        exclude = exclude | pd.Series(human_codes).fillna("").astype(str).str.strip().ne("").to_numpy()
    picks = suggest_next(probs, k=k, exclude=exclude, multi_label=codes.multi)
    return frame.iloc[picks][shown]


__all__ = [
    "human_code_columns",
    "human_code_counts",
    "FewShotPreview",
    "preview_fewshot",
    "SetFitEstimate",
    "setfit_estimate",
    "CodeColumns",
    "code_columns",
    "code_shares",
    "next_to_code",
]
