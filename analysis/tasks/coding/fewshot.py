"""Few-shot coding: learn the codebook from rows that humans coded.

Default: a logistic regression (scikit-learn) on sentence embeddings. With a few dozen
coded rows per code it comes close to fine-tuning a small transformer on them, trains in
a second on a laptop, and its probabilities are reasonably calibrated. Everything here
follows scikit-learn's estimator conventions and uses its cross-validation; what Textlab
adds is the report a methods section needs (out-of-fold accuracy and macro-F1 with
bootstrap intervals, a learning curve) and the choice of rows to code next.

Option: SetFit (Tunstall et al. 2022, the ``setfit`` package) first fine-tunes the
sentence-embedding model contrastively on pairs of coded rows (same code: pull together,
different codes: push apart), then fits the same logistic regression on the tuned
embeddings. It is worth it on a GPU (seconds to a minute); on a CPU it takes minutes per
fine-tuning, and an honest cross-validated report needs one fine-tuning per fold.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import models
from ...codebook import Codebook
from ...errors import TextlabError
from ..base import Predictor, RunContext
from .labels import MULTI_SEPARATOR, multi_label_of, output_frame, split_codes, text_key

if TYPE_CHECKING:
    from . import CodingConfig

MIN_PER_CODE = 2           # a code needs at least this many human-coded rows for few-shot
CLASSIFIERS = ("logistic", "setfit")


def flat_codes(codes: list) -> list[str]:
    return [c for row in codes for c in (row if isinstance(row, list) else [row])]


def check_training_codes(codes: list, multi_label: bool, column: str | None = None) -> None:
    """Enough coded rows per code to learn anything? Raise a TextlabError that says what to code."""
    where = f" in column '{column}'" if column else ""
    if not codes:
        raise TextlabError(f"No row has a human code{where}. Code some rows first (at least {MIN_PER_CODE} per code).")
    counts = pd.Series(flat_codes(codes)).value_counts()
    if not multi_label and len(counts) < 2:
        raise TextlabError(
            f"All {len(codes)} coded rows{where} have the same code ('{counts.index[0]}'); few-shot coding "
            "needs coded rows of at least two codes."
        )
    thin = counts[counts < MIN_PER_CODE]
    if len(thin):
        listed = ", ".join(f"'{c}' ({n})" for c, n in thin.items())
        raise TextlabError(
            f"Too few coded rows{where} for {listed}: each code needs at least {MIN_PER_CODE}, and 8 or more "
            "give usable results. Code more rows of these codes or merge them into others."
        )


class FewShotModel:
    """Logistic regression on embeddings; ``labels`` fixes the output columns' order.

    Codes in ``labels`` without training rows get probability 0 (the model cannot learn a
    code it never saw) and are named in ``unseen_labels_``.
    """

    def __init__(self, *, multi_label: bool = False, C: float = 1.0, seed: int = 0, labels: list[str] | None = None):
        self.multi_label = multi_label
        self.C = C
        self.seed = seed
        self.labels = labels

    def _estimator(self):
        from sklearn.linear_model import LogisticRegression

        # class_weight="balanced": researchers often code more rows of the common codes;
        # without it a rare code is under-predicted and its prevalence biased down.
        return LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced", random_state=self.seed)

    def _targets(self, codes: list):
        seen = sorted(set(flat_codes(codes)))
        order = [label for label in (self.labels or []) if label in seen] + [c for c in seen if c not in (self.labels or [])]
        self.labels_ = list(self.labels or []) + [c for c in order if c not in (self.labels or [])]
        self.fitted_labels_ = order
        self.unseen_labels_ = [label for label in self.labels_ if label not in seen]
        if self.multi_label:
            from sklearn.preprocessing import MultiLabelBinarizer

            return MultiLabelBinarizer(classes=order).fit_transform(codes)
        return np.array([order.index(c) for c in codes])

    def _model(self):
        if self.multi_label:
            from sklearn.multiclass import OneVsRestClassifier

            return OneVsRestClassifier(self._estimator())
        return self._estimator()

    def _expand(self, proba: np.ndarray) -> np.ndarray:
        """Probabilities over fitted labels -> over all labels (unseen ones are 0)."""
        out = np.zeros((len(proba), len(self.labels_)), dtype=np.float64)
        for j, label in enumerate(self.fitted_labels_):
            out[:, self.labels_.index(label)] = proba[:, j]
        return out

    def fit(self, X: np.ndarray, codes: list) -> "FewShotModel":
        y = self._targets(codes)
        self.model_ = self._model().fit(X, y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, len(self.labels_)))
        return self._expand(self.model_.predict_proba(X))

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> list:
        return self.decode(self.predict_proba(X), threshold)

    def decode(self, proba: np.ndarray, threshold: float = 0.5) -> list:
        labels = np.array(self.labels_, dtype=object)
        if self.multi_label:
            return [";".join(labels[row >= threshold]) for row in proba]
        return list(labels[proba.argmax(axis=1)])

    def n_folds(self, codes: list, folds: int) -> int:
        counts = pd.Series(flat_codes(codes)).value_counts()
        return int(max(2, min(folds, counts.min() if not self.multi_label else folds, len(codes))))

    def cross_validate(self, X: np.ndarray | None, codes: list, folds: int = 5, n_boot: int = 1000,
                       fold_features=None) -> dict[str, Any]:
        """Out-of-fold predictions for every coded row, and agreement with the human codes.

        Sets ``oof_proba_`` (rows in the order of ``codes``) and returns a JSON-able report:
        folds, rows, per-code counts and the agreement summary with 95% bootstrap intervals.
        ``fold_features(fold, train, test) -> (X_train, X_test)``: features made per fold
        (SetFit tunes the embedding model on the fold's training rows only, so held-out rows
        never shape their own features); default: rows of ``X``.
        """
        from sklearn.model_selection import KFold, StratifiedKFold

        y = self._targets(codes)
        k = self.n_folds(codes, folds)
        rows = np.zeros((len(codes), 1))
        if self.multi_label:
            splitter = KFold(n_splits=k, shuffle=True, random_state=self.seed)
            splits = splitter.split(rows)
        else:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.seed)
            splits = splitter.split(rows, y)
        oof = np.zeros((len(codes), len(self.fitted_labels_)))
        for fold, (train, test) in enumerate(splits):
            X_train, X_test = (X[train], X[test]) if fold_features is None else fold_features(fold, train, test)
            model = self._model().fit(X_train, y[train])
            proba = model.predict_proba(X_test)
            if not self.multi_label and proba.shape[1] != len(self.fitted_labels_):
                # A fold whose training part lacks a code: put its columns where they belong.
                full = np.zeros((len(test), len(self.fitted_labels_)))
                full[:, model.classes_] = proba
                proba = full
            oof[test] = proba
        self.oof_proba_ = self._expand(oof)
        predicted = self.decode(self.oof_proba_)
        gold = [";".join(c) if isinstance(c, list) else c for c in codes]
        from ...validation import agreement

        report = agreement(predicted, gold, n_boot=n_boot, seed=self.seed, multi_label=self.multi_label)
        summary = report.summary
        main = summary[summary["metric"].isin(["accuracy", "macro_f1", "cohen_kappa", "krippendorff_alpha"])]
        return {
            "folds": k,
            "rows": len(codes),
            "per_code": {str(c): int(n) for c, n in pd.Series(flat_codes(codes)).value_counts().items()},
            "metrics": {r["metric"]: {"value": _num(r["value"]), "ci_low": _num(r["ci_low"]), "ci_high": _num(r["ci_high"])}
                        for r in main.to_dict("records")},
            "per_code_f1": {str(r["code"]): _num(r["f1"]) for r in report.per_code.to_dict("records")},
            "unseen_codes": list(self.unseen_labels_),
        }


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)


def learning_curve(X: np.ndarray, codes: list, *, multi_label: bool = False, C: float = 1.0, seed: int = 0,
                   steps: int = 5, folds: int = 5) -> pd.DataFrame:
    """Cross-validated macro-F1 when training on growing shares of the coded rows.

    Columns: ``n_train`` (rows per training fold), ``macro_f1`` (mean over folds), ``sd``.
    A curve still rising at the right says that coding more rows will pay off.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, learning_curve as sk_learning_curve

    model = FewShotModel(multi_label=multi_label, C=C, seed=seed)
    y = model._targets(codes)
    k = model.n_folds(codes, folds)
    cv = (KFold(k, shuffle=True, random_state=seed) if multi_label
          else StratifiedKFold(k, shuffle=True, random_state=seed))
    n_classes = len(model.fitted_labels_)
    # The smallest share must still hold two codes; below that the curve means nothing.
    smallest = min(1.0, max(2 * n_classes / (len(codes) * (k - 1) / k), 0.1))
    sizes = np.unique(np.linspace(smallest, 1.0, steps))
    n_train, train_scores, test_scores = sk_learning_curve(
        model._model(), X, y, train_sizes=sizes, cv=cv, scoring="f1_macro", shuffle=True,
        random_state=seed, error_score=np.nan,
    )
    return pd.DataFrame({"n_train": n_train, "macro_f1": np.nanmean(test_scores, axis=1),
                         "sd": np.nanstd(test_scores, axis=1)})


def suggest_next(proba: np.ndarray, k: int = 20, exclude: np.ndarray | None = None,
                 multi_label: bool = False) -> np.ndarray:
    """Row indices to code next: the ones the model is least sure about (uncertainty sampling).

    Single-label: smallest margin between the two most probable codes. Multi-label: the
    code probability closest to 0.5. ``exclude``: a boolean mask of rows not to suggest
    (already coded, empty). Ties are broken by row order, so the suggestion is stable.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) == 0:
        return np.zeros(0, dtype=int)
    if multi_label:
        uncertainty = -np.abs(proba - 0.5).min(axis=1)
    elif proba.shape[1] == 1:
        uncertainty = -np.abs(proba[:, 0] - 0.5)
    else:
        top2 = np.sort(proba, axis=1)[:, -2:]
        uncertainty = -(top2[:, 1] - top2[:, 0])
    valid = np.isfinite(uncertainty)
    if exclude is not None:
        valid &= ~np.asarray(exclude, dtype=bool)
    candidates = np.flatnonzero(valid)
    order = np.argsort(-uncertainty[candidates], kind="stable")
    return candidates[order[:k]]



# ---------------------------------------------------------------------- the predictor


def training_rows(texts: list[str], frame: pd.DataFrame | None, column: str, multi: bool,
                  allowed: list[str] | None) -> tuple[list[int], list]:
    """Indices of rows with a text and a human code, and their codes (checked against the codebook)."""
    if frame is None or column not in frame.columns:
        have = ", ".join(map(str, frame.columns)) if frame is not None else "none"
        raise TextlabError(f"Column '{column}' with human codes is not in the corpus (columns: {have}).")
    values = frame[column].tolist()
    idx, codes = [], []
    for i, (text, value) in enumerate(zip(texts, values)):
        found = split_codes(value)
        if not found or not str(text).strip():
            continue
        idx.append(i)
        codes.append(found if multi else found[0] if len(found) == 1 else MULTI_SEPARATOR.join(found))
    if allowed is not None:
        flat = [c for row in codes for c in (row if isinstance(row, list) else [row])]
        unknown = sorted(set(flat) - set(allowed))
        if unknown:
            counts = pd.Series(flat).value_counts()
            listed = ", ".join(f"'{u}' ({counts[u]} rows)" for u in unknown[:8])
            raise TextlabError(
                f"Column '{column}' has codes that are not in the codebook: {listed}. Codebook labels: "
                f"{', '.join(allowed)}. Fix the spelling in the data or add the codes to the codebook."
            )
    return idx, codes


class FewShotCoder(Predictor):
    """Logistic regression on embeddings of the human-coded rows (scikit-learn); with
    ``classifier="setfit"`` the embedding model is first fine-tuned on those rows (SetFit)."""

    def __init__(self, config: CodingConfig, book: Codebook | None, context: RunContext):
        from ...embeddings import Embedder

        self.config, self.book = config, book
        self.multi = multi_label_of(config, book)
        allowed = book.output_labels if book else None
        idx, codes = training_rows(context.texts, context.frame, config.labels_column, self.multi, allowed)
        check_training_codes(codes, self.multi, config.labels_column)
        from ...embeddings import task_embedding_model

        base = task_embedding_model(config, models.DEFAULTS["coding"]["offline"], context.stage)
        train_texts = [context.texts[i] for i in idx]
        self.model = FewShotModel(multi_label=self.multi, C=config.regularization, seed=config.seed,
                                          labels=(book.output_labels if book else None))
        self.tuning: dict[str, Any] | None = None
        self._scratch = None  # a temporary folder for the tuned model when there is no run folder
        if config.classifier == "setfit":
            self.embedder, self.report, oof = self._setfit(base, train_texts, codes, context)
            vectors = self.embedder.encode(train_texts)
        else:
            self.embedder = Embedder(base, device=config.device, batch_size=config.batch_size,
                                     cache_dir=context.cache_dir)
            # Training happens while the model "loads": name it, so a long wait is explained.
            context.stage(f"Embedding the {len(train_texts):,} coded rows")
            vectors = self.embedder.encode(train_texts)
            context.stage("Cross-validating the few-shot model")
            self.report = self.model.cross_validate(vectors, codes, folds=config.cv_folds)
            oof = self.model.oof_proba_
        self.model.fit(vectors, codes)
        self.labels = list(self.model.labels_)
        # Out-of-fold probabilities for the training rows (see the module docstring).
        self._oof = {text_key(t): np.asarray(p, dtype=np.float64) for t, p in zip(train_texts, oof)}
        self.n_train = len(idx)

    def _setfit(self, base: str, texts: list[str], codes: list, context: RunContext):
        """Fine-tune (once per fold, then on all rows) and return the tuned embedder, the
        cross-validated report and the out-of-fold probabilities.

        The tuned model and the report are kept in the run folder, so a run resumed after a
        crash or restart goes on coding with them instead of fine-tuning again (unless the
        hand codes changed meanwhile).
        """
        import json
        import shutil
        import tempfile
        from pathlib import Path

        from ...embeddings import Embedder, model_folder
        from .setfit import finetune_setfit, require_setfit

        config = self.config
        setfit = require_setfit()
        base_path = model_folder(base)
        folder = Path(context.run_folder) / "setfit" if context.run_folder is not None else \
            Path(tempfile.mkdtemp(prefix="textlab-setfit-"))
        self._scratch = None if context.run_folder is not None else folder
        settings = {"base_model": str(base), "epochs": config.setfit_epochs, "iterations": config.setfit_iterations,
                    "batch_size": config.setfit_batch_size, "seed": config.seed, "folds": config.cv_folds}
        training = hashlib.sha256(json.dumps([settings, texts, codes], default=str).encode("utf-8")).hexdigest()
        state_path = folder / "state.json"

        def embedder(path):
            # No cache: these vectors belong to this run's tuned model only.
            return Embedder(path, device=config.device, batch_size=config.batch_size, cache_dir=None)

        def tune(where, rows_texts, rows_codes, what):
            def on_step(step, total):
                context.stage(f"SetFit fine-tuning, {what}: step {step} of {total}")
            return finetune_setfit(
                base_path, rows_texts, rows_codes, where, labels=self.model.labels, multi_label=self.multi,
                seed=config.seed, epochs=config.setfit_epochs, iterations=config.setfit_iterations,
                batch_size=config.setfit_batch_size, device=config.device, on_step=on_step,
            )

        if state_path.exists():
            state = json.loads(state_path.read_text("utf-8"))
            if state.get("training") == training and (folder / "model" / "modules.json").exists():
                self.tuning = state["tuning"]
                return embedder(folder / "model"), state["report"], np.asarray(state["oof"], dtype=np.float64)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        k = self.model.n_folds(codes, config.cv_folds)

        def fold_features(fold, train, test):
            where = folder / f"fold{fold}"
            tune(where, [texts[i] for i in train], [codes[i] for i in train], f"fold {fold + 1} of {k}")
            with embedder(where) as tuned:
                out = tuned.encode([texts[i] for i in train]), tuned.encode([texts[i] for i in test])
            shutil.rmtree(where, ignore_errors=True)
            return out

        report = self.model.cross_validate(None, codes, folds=config.cv_folds, fold_features=fold_features)
        oof = self.model.oof_proba_
        tune(folder / "model", texts, codes, "final model on all coded rows")
        self.tuning = {**settings, "folds": k, "package": f"setfit {setfit.__version__}"}
        from ...fileio import atomic_write_bytes

        atomic_write_bytes(state_path, json.dumps({"training": training, "tuning": self.tuning, "report": report,
                                                   "oof": oof.tolist()}).encode("utf-8"))
        return embedder(folder / "model"), report, oof

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        vectors = self.embedder.encode(texts, progress)
        probs = self.model.predict_proba(vectors)
        for row, text in enumerate(texts):
            oof = self._oof.get(text_key(text))
            if oof is not None:
                probs[row] = oof
        none_label = None
        if self.book is not None and self.book.none_label and self.book.none_label in self.labels:
            none_label = self.book.none_label
        frame = output_frame(probs, self.labels, self.multi, self.config.threshold, None, None)
        if self.multi and none_label is not None:
            # "None of these" is a class the regression learned, not a code to combine.
            frame["code_labels"] = [v if v else none_label for v in frame["code_labels"]]
        frame["split"] = self.embedder.split
        frame["trained_on"] = [(text_key(t) in self._oof) for t in texts]
        return frame

    def describe(self) -> dict[str, Any]:
        out = {
            **self.embedder.describe(),
            "backend": "offline",
            "method": "few-shot (logistic regression on embeddings)" if self.tuning is None else
                      "few-shot (SetFit: embedding model fine-tuned on the coded rows, then logistic regression)",
            "labels_column": self.config.labels_column,
            "labels": self.labels,
            "multi_label": self.multi,
            "training_rows": self.n_train,
            "cross_validation": self.report,
            "note": "rows with a human code get out-of-fold predictions",
        }
        if self.tuning is not None:
            out.update(model=self.tuning["base_model"], setfit=self.tuning,
                       note=out["note"] + "; their fold's model was fine-tuned without them")
        if self.book is not None:
            out.update(codebook_version=self.book.version_tag(), codebook=self.book.to_dict())
        return out

    def close(self) -> None:
        import shutil

        self.embedder.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

