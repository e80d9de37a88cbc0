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

from typing import Any

import numpy as np
import pandas as pd

from .errors import TextlabError

MIN_PER_CODE = 2
CLASSIFIERS = ("logistic", "setfit")


def _flat(codes: list) -> list[str]:
    return [c for row in codes for c in (row if isinstance(row, list) else [row])]


def check_training_codes(codes: list, multi_label: bool, column: str | None = None) -> None:
    """Enough coded rows per code to learn anything? Raise a TextlabError that says what to code."""
    where = f" in column '{column}'" if column else ""
    if not codes:
        raise TextlabError(f"No row has a human code{where}. Code some rows first (at least {MIN_PER_CODE} per code).")
    counts = pd.Series(_flat(codes)).value_counts()
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
        seen = sorted(set(_flat(codes)))
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

    def _folds(self, codes: list, folds: int) -> int:
        counts = pd.Series(_flat(codes)).value_counts()
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
        k = self._folds(codes, folds)
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
        from .validation import agreement

        report = agreement(predicted, gold, n_boot=n_boot, seed=self.seed, multi_label=self.multi_label)
        summary = report.summary
        main = summary[summary["metric"].isin(["accuracy", "macro_f1", "cohen_kappa", "krippendorff_alpha"])]
        return {
            "folds": k,
            "rows": len(codes),
            "per_code": {str(c): int(n) for c, n in pd.Series(_flat(codes)).value_counts().items()},
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
    k = model._folds(codes, folds)
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


# ---------------------------------------------------------------------- SetFit


# Training pairs per second of SetFit on all-MiniLM-L6-v2 on a 2-core laptop-class CPU
# (benchmarks/coding_validity.py --setfit --device cpu: 4-6): for a rough warning only.
CPU_PAIRS_PER_SECOND = 5.0


def setfit_pairs(n_coded: int, folds: int = 5, iterations: int = 20, epochs: int = 1) -> int:
    """Training pairs SetFit draws for a run: each fold's model trains on (folds-1)/folds of
    the coded rows, the final model on all; each row gives two pairs per iteration."""
    rows = n_coded * (folds - 1) + n_coded
    return int(2 * iterations * epochs * rows)


def require_setfit():
    """The setfit package, or a TextlabError that says how to install it."""
    try:
        import setfit
    except ImportError as exc:
        raise TextlabError(
            "SetFit fine-tuning needs the optional package 'setfit', which is not installed. Install it with "
            "pip install \"textlab[setfit]\" (or pip install setfit), or use the logistic-regression classifier."
        ) from exc
    return setfit


def finetune_setfit(base_model, texts: list[str], codes: list, out_dir, *, labels: list[str] | None = None,
                    multi_label: bool = False, seed: int = 0, epochs: int = 1, iterations: int = 20,
                    batch_size: int = 16, device: str = "auto", on_step=None):
    """Fine-tune a sentence-transformers model on coded rows with SetFit; save it to ``out_dir``.

    ``base_model``: a local sentence-transformers folder. ``codes``: one code per text (a list
    of codes per text when ``multi_label``). ``iterations``: pairs drawn per coded row and
    epoch (SetFit's ``num_iterations``). ``on_step(step, total)`` is called after each
    optimiser step; an exception it raises (a cancelled job) stops the training. Only the
    embedding model is trained here: the classifier on top is :class:`FewShotModel`.
    Returns ``out_dir``, holding the tuned model in safetensors (no model card, no pickles).
    Nothing is fetched from the network: the model comes from disk and no Hub lookups run.
    """
    import tempfile
    from pathlib import Path

    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    from .runner import release_model, resolve_device

    setfit = require_setfit()
    from setfit.model_card import ModelCardCallback

    torch_device = resolve_device(device)
    order = list(labels or sorted(set(_flat(codes))))
    if multi_label:
        targets = [[int(label in row) for label in order] for row in codes]
    else:
        targets = [order.index(c) for c in codes]
    body = SentenceTransformer(str(base_model), device=str(torch_device), local_files_only=True,
                               trust_remote_code=False, model_kwargs={"use_safetensors": True})
    # Built directly, not with SetFitModel.from_pretrained: that looks the model id up on the Hub.
    model = setfit.SetFitModel(model_body=body, multi_target_strategy="one-vs-rest" if multi_label else None,
                               labels=order)

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(int(state.global_step), int(state.max_steps))

    out = Path(out_dir)
    # The model leaves the accelerator however training ends (done, cancelled, failed):
    # the server outlives the job.
    try:
        with tempfile.TemporaryDirectory(prefix="textlab-setfit-") as scratch:
            args = setfit.TrainingArguments(
                output_dir=scratch, batch_size=int(batch_size), num_epochs=int(epochs),
                num_iterations=int(iterations), seed=int(seed), report_to="none", save_strategy="no",
                logging_strategy="no", show_progress_bar=False, use_amp=torch_device.type == "cuda",
            )
            trainer = setfit.Trainer(model=model, args=args)
            trainer.pop_callback(ModelCardCallback)  # it queries the Hub for model and dataset ids
            trainer.add_callback(Progress())
            try:
                trainer.train_embeddings(list(texts), targets, args=args)
            except torch.OutOfMemoryError as exc:
                raise TextlabError(
                    f"The GPU ran out of memory while fine-tuning SetFit with {batch_size} pairs per step. Run "
                    "again with a smaller setfit_batch_size (e.g. 8), close other jobs on the GPU, or use the "
                    "logistic-regression classifier."
                ) from exc
        out.mkdir(parents=True, exist_ok=True)
        body.save(str(out), safe_serialization=True, create_model_card=False)
    finally:
        release_model(body)
        del model, body
    return out
