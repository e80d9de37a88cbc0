"""Codebook coding: zero-shot from a codebook, or few-shot from rows that humans coded.

Columns (design contract): ``code_label`` (single-label) or ``code_labels`` (multi-label,
``;``-joined), and ``code_<slug>`` (0..1) for each code of the codebook (and for the
"none of these" label when the codebook has one).

Methods
-------
**Zero-shot, offline** (embedding similarity with the bundled all-MiniLM-L6-v2). Each code
is described by up to three kinds of text: its label, its description (label, definition
and include notes; exclude notes are left out, since embedding "not X" moves a vector
towards X) and its examples. A text's similarity to a code is the cosine similarity to
the code's prototype: the normalised mean of the label vector, the description vector and
the mean example vector (each present part counts once). Single-label probabilities are a
softmax of similarity / ``temperature`` (0.05 by default: cosine similarities of one text
to different codes differ by a few hundredths, and dividing by 0.05 turns a 0.1 gap into
odds of e^2, about 7:1). A "none of these" label enters the softmax with a fixed
similarity ``none_similarity`` (0.15: on the sample survey, answers coded 'none' by people
have a median best-code similarity of about 0.17, topical answers 0.35 to 0.5). Multi-label
probabilities are sigmoid((similarity - ``multi_similarity``) / temperature), each code on
its own. These are scores ordered like probabilities, not calibrated probabilities:
validate them against human codes before reporting shares.

**Zero-shot, transformers** (NLI; default MoritzLaurer/deberta-v3-base-zeroshot-v2.0).
Every (text, hypothesis) pair, with the hypothesis built from the codebook's template
("This text is about {label}."), goes through the model in length-sorted token-budget
batches (``analysis.runner``), texts tokenised once and joined to each hypothesis by the
tokenizer's own special-token rule. Single-label: softmax over the codes' entailment
logits; multi-label: for each code, softmax over its (entailment, contradiction) logits,
as transformers' zero-shot pipeline does. A text longer than the model window is split
into overlapping windows; a code's logits are taken from the window where entailment is
strongest (a code present anywhere in the text counts). With a "none of these" label in
single-label mode, ``code_<none>`` = 1 - the highest independent entailment probability,
and a text whose every code is below 0.5 gets the none label.

**Few-shot** (logistic regression on the embeddings of human-coded rows). The human codes
come from a column (``labels_column``). Rows used for training get out-of-fold predictions
(5-fold, or fewer when a code has fewer rows), so the model never predicts a row whose
code it has seen and agreement measured on those rows is honest. The run's manifest
holds the cross-validated accuracy and macro-F1 with bootstrap intervals.

**Few-shot, SetFit** (``classifier="setfit"``, needs the ``setfit`` package; meant for a
GPU). The embedding model is first fine-tuned contrastively on pairs of coded rows, then
the same logistic regression is fitted on the tuned embeddings. The out-of-fold
predictions of coded rows come from a model fine-tuned on the other folds only (one
fine-tuning per fold plus the final one), so the reported agreement stays honest. The
tuned model is kept in the run folder (safetensors) and reused when the run resumes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import models
from ..codebook import Codebook, as_codebook
from ..errors import CodebookError, TextlabError
from ..fewshot import CLASSIFIERS
from ..method_notes import non_english
from ..textutil import slug
from .base import BaseConfig, Predictor, RunContext, Task, column_fingerprint, setting
from .classifier import choose_backend

METHODS = ("auto", "zero-shot", "few-shot")
MIN_PER_CODE = 2           # a code needs at least this many human-coded rows for few-shot
MULTI_SEPARATOR = ";"


@dataclass
class CodingConfig(BaseConfig):
    codebook: dict | None = setting(None, help="codebook file (JSON, YAML or CSV); the run stores the codebook itself",
                                    flag="--codebook", metavar="FILE")
    method: str = setting("auto", help="auto (few-shot when labels_column is set, else zero-shot), zero-shot or "
                                       "few-shot", choices=METHODS)
    labels_column: str | None = setting(None, help="column of human codes for few-shot coding",
                                        flag="--labels-column", metavar="COL")
    multi_label: bool | None = setting(None, help="several codes per text (default: the codebook's setting)")
    threshold: float = setting(0.5, help="multi-label: a code is given at this probability")
    temperature: float = setting(0.05, help="offline zero-shot: similarity scale of the softmax")
    none_similarity: float = setting(0.15, help='offline zero-shot: similarity given to "none of these"')
    multi_similarity: float = setting(0.3, help="offline zero-shot, multi-label: similarity at probability 0.5")
    regularization: float = setting(1.0, help="few-shot: inverse regularisation C of the logistic regression")
    cv_folds: int = setting(5, help="few-shot: folds of the out-of-fold predictions for coded rows")
    classifier: str = setting("logistic", help="few-shot classifier: logistic regression on embeddings (default, "
                                               "fast) or setfit (fine-tunes the embedding model on the coded rows "
                                               "first; use a GPU; needs textlab[setfit])",
                              flag="--classifier", choices=("logistic", "setfit"))
    setfit_epochs: int = setting(1, help="SetFit: passes over the drawn pairs")
    setfit_iterations: int = setting(20, help="SetFit: pairs drawn per coded row and epoch")
    setfit_batch_size: int = setting(16, help="SetFit: pairs per optimiser step")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CodingConfig":
        data = dict(data or {})
        # A run stores the codebook itself, not a path that may change or vanish.
        if data.get("codebook") is not None and not isinstance(data["codebook"], dict):
            data["codebook"] = as_codebook(data["codebook"]).to_dict()
        return super().from_dict(data)  # type: ignore[return-value]


def _method(config: CodingConfig) -> str:
    if config.method == "auto":
        return "few-shot" if config.labels_column else "zero-shot"
    return config.method


def _codebook(config: CodingConfig) -> Codebook | None:
    return None if config.codebook is None else as_codebook(config.codebook)


def _multi(config: CodingConfig, book: Codebook | None) -> bool:
    if config.multi_label is not None:
        return bool(config.multi_label)
    return bool(book.multi_label) if book else False


def split_codes(value) -> list[str]:
    """Codes of one cell: ';'-joined for multi-label; empty or missing -> []."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return []
    return [p.strip() for p in str(value).split(MULTI_SEPARATOR) if p.strip()]


# ---------------------------------------------------------------------- shared output


def _output_frame(probs: np.ndarray, labels: list[str], multi: bool, threshold: float,
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


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------- zero-shot, offline


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


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SimilarityCoder(Predictor):
    """Zero-shot coding by embedding similarity to the codebook (offline default)."""

    def __init__(self, config: CodingConfig, book: Codebook, reason: str, context: RunContext | None):
        from ..embeddings import Embedder

        self.config, self.book, self.reason = config, book, reason
        self.multi = _multi(config, book)
        self.embedder = Embedder(models.DEFAULTS["coding"]["offline"], device=config.device,
                                 batch_size=config.batch_size, cache_dir=context.cache_dir if context else None)
        self.prototypes = code_prototypes(self.embedder, book)
        self.n_split = 0

    def scores(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        sims = vectors @ self.prototypes.T
        t = self.config.temperature
        if self.multi:
            return _sigmoid((sims - self.config.multi_similarity) / t), None
        if self.book.none_label:
            full = _softmax(np.column_stack([sims, np.full(len(sims), self.config.none_similarity)]) / t)
            return full[:, :-1], full[:, -1]
        return _softmax(sims / t), None

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        vectors = self.embedder.encode(texts, progress)
        self.n_split += int(self.embedder.n_split)
        probs, none = self.scores(vectors)
        frame = _output_frame(probs, self.book.labels, self.multi, self.config.threshold, self.book.none_label, none)
        frame["_split"] = self.embedder.split
        # all-MiniLM-L6-v2 is an English model: the manifest counts the texts it could not read.
        frame["_non_english"] = non_english(texts)
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
        self.embedder.close()


# ---------------------------------------------------------------------- zero-shot, NLI


def _entailment_ids(config) -> tuple[int, int | None]:
    """Indices of the entailment and contradiction (or not-entailment) classes."""
    labels = {i: str(label).lower() for i, label in config.id2label.items()}
    entail = [i for i, name in labels.items() if name.startswith("entail")]
    if not entail:
        raise TextlabError(
            f"The model's labels {sorted(labels.values())} have no 'entailment' class, so it cannot do NLI "
            "zero-shot coding. Choose an NLI model (e.g. deberta-v3-zeroshot or bart-large-mnli)."
        )
    contra = [i for i, name in labels.items() if name.startswith("contradict") or name.startswith("not_entail")
              or name.startswith("not entail")]
    return entail[0], (contra[0] if contra else None)


class NliRunner:
    """Entailment logits for every (text, hypothesis) pair, batched by token budget."""

    def __init__(self, tokenizer, model, *, max_tokens=None, max_batch_size=None, stride=64):
        from ..runner import (
            DEFAULT_MAX_BATCH_SIZE,
            DEFAULT_MAX_TOKENS,
            SequenceClassifierRunner,
            _model_window,
        )

        self.tokenizer, self.model = tokenizer, model
        self.window = _model_window(tokenizer, model)
        self.max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self.max_batch_size = max_batch_size or DEFAULT_MAX_BATCH_SIZE
        self.stride = stride
        # Padding, device placement and the forward pass are the classifier runner's.
        self._inner = SequenceClassifierRunner(tokenizer, model, max_tokens=self.max_tokens,
                                               max_batch_size=self.max_batch_size)
        self.entail, self.contra = _entailment_ids(model.config)
        self.split = np.zeros(0, dtype=bool)

    def pair_features(self, texts: list[str], hypotheses: list[str]):
        """Token features of every (text window, hypothesis) pair and the (text, hypothesis) each belongs to.

        Returns ``(features, lengths, owner)``: per model input its ``input_ids`` (and
        ``token_type_ids`` where the tokenizer makes them), its token count, and the
        ``(text index, hypothesis index)`` it belongs to. Sets ``self.split``: True for each
        text that overflowed into more than one window.

        The tokenizer joins each pair itself (truncation="only_first", as transformers'
        zero-shot pipeline does), so special tokens and token types are the model's own; a
        text longer than the window overflows into further windows instead of being cut.
        """
        tok = self.tokenizer
        n_h = len(hypotheses)
        features, lengths, owner = [], [], []
        self.split = np.zeros(len(texts), dtype=bool)
        step = max(1, 4096 // max(n_h, 1))
        for start in range(0, len(texts), step):
            part = texts[start:start + step]
            enc = tok([t for t in part for _ in hypotheses], hypotheses * len(part), truncation="only_first",
                      max_length=self.window, stride=self.stride, return_overflowing_tokens=True,
                      return_attention_mask=False, padding=False)
            mapping = enc["overflow_to_sample_mapping"]
            columns = [c for c in ("input_ids", "token_type_ids") if c in enc]
            seen = np.zeros(len(part) * n_h, dtype=np.int64)
            for row, pair in enumerate(mapping):
                features.append({c: enc[c][row] for c in columns})
                lengths.append(len(enc["input_ids"][row]))
                owner.append((start + pair // n_h, pair % n_h))
                seen[pair] += 1
            self.split[start:start + len(part)] = (seen.reshape(len(part), n_h) > 1).any(axis=1)
        return features, lengths, owner

    def logits(self, texts: list[str], hypotheses: list[str], on_batch=None) -> np.ndarray:
        """float32 (n_texts, n_hypotheses, n_classes): per pair, the logits of the window with
        the strongest entailment."""
        import torch

        from ..runner import run_batched

        features, lengths, owner = self.pair_features(list(texts), list(hypotheses))

        def forward(batch):
            inputs = self._inner._collate(batch)
            with torch.inference_mode():
                return self.model(**inputs).logits.float()

        n_pairs = len(hypotheses)
        report = None if on_batch is None else (lambda k: on_batch(min(len(texts), k // max(n_pairs, 1))))
        rows = run_batched(features, lengths, forward, max_tokens=self.max_tokens,
                           max_batch_size=self.max_batch_size, on_batch=report)
        n_classes = self.model.config.num_labels
        out = np.full((len(texts), n_pairs, n_classes), -np.inf, dtype=np.float32)
        for (i, k), row in zip(owner, rows):
            row = np.asarray(row, dtype=np.float32)
            if not np.isfinite(out[i, k, self.entail]) or row[self.entail] > out[i, k, self.entail]:
                out[i, k] = row
        return out


class NliCoder(Predictor):
    """Zero-shot coding with a local NLI model."""

    def __init__(self, config: CodingConfig, book: Codebook, model: str, reason: str):
        from ..runner import DEFAULT_MAX_TOKENS

        self.config, self.book, self.reason = config, book, reason
        self.multi = _multi(config, book)
        self.spec = models.get_spec(model, task="coding")
        self.path = models.require(self.spec)
        tokenizer, net = models.load_sequence_classifier(self.spec, device=config.device)
        kwargs: dict[str, Any] = {}
        if config.batch_size:
            kwargs = {"max_batch_size": config.batch_size,
                      "max_tokens": max(DEFAULT_MAX_TOKENS, config.batch_size * (net.config.max_position_embeddings or 512))}
        self.runner = NliRunner(tokenizer, net, **kwargs)
        self.hypotheses = [book.hypothesis_template.format(label) for label in book.labels]

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        logits = self.runner.logits(texts, self.hypotheses, on_batch=progress)
        entail = logits[:, :, self.runner.entail]
        independent = self._independent(logits)
        none = None
        if self.multi:
            probs = independent
        else:
            probs = _softmax(entail, axis=1)
            if self.book.none_label:
                none = 1.0 - independent.max(axis=1)
        frame = _output_frame(probs, self.book.labels, self.multi, self.config.threshold, self.book.none_label, none)
        if none is not None:
            # The none label goes to texts where no code is more likely entailed than not;
            # otherwise the most probable code (the softmax and the none score are on different scales).
            best = np.array(self.book.labels, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
            frame["code_label"] = np.where(none > 0.5, self.book.none_label, best)
        frame["_split"] = self.runner.split
        return frame

    def _independent(self, logits: np.ndarray) -> np.ndarray:
        e = logits[:, :, self.runner.entail]
        if self.runner.contra is None:
            return _sigmoid(e)
        c = logits[:, :, self.runner.contra]
        return _softmax(np.stack([e, c], axis=-1), axis=-1)[..., 0]

    def describe(self) -> dict[str, Any]:
        from ..runner import device_description

        net = self.runner.model
        return {
            "backend": "transformers",
            "method": "zero-shot (NLI)",
            "model": self.spec.display_id,
            "model_revision": models.resolved_revision(self.path) or self.spec.revision,
            "model_license": self.spec.license,
            "model_citation": self.spec.citation,
            "backend_choice": self.reason,
            "device": device_description(self.runner._inner.device),
            "dtype": str(next(net.parameters()).dtype).replace("torch.", ""),
            "max_length": self.runner.window,
            "labels": self.book.output_labels,
            "multi_label": self.multi,
            "hypotheses": self.hypotheses,
            "codebook_version": self.book.version_tag(),
            "codebook": self.book.to_dict(),
        }

    def close(self) -> None:
        from ..runner import release_model

        release_model(self.runner.model)


# ---------------------------------------------------------------------- few-shot


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
        from .. import fewshot
        from ..embeddings import Embedder

        self.config, self.book = config, book
        self.multi = _multi(config, book)
        allowed = book.output_labels if book else None
        idx, codes = training_rows(context.texts, context.frame, config.labels_column, self.multi, allowed)
        fewshot.check_training_codes(codes, self.multi, config.labels_column)
        base = config.model or models.DEFAULTS["coding"]["offline"]
        train_texts = [context.texts[i] for i in idx]
        self.model = fewshot.FewShotModel(multi_label=self.multi, C=config.regularization, seed=config.seed,
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
        self._oof = {_text_key(t): np.asarray(p, dtype=np.float64) for t, p in zip(train_texts, oof)}
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

        from .. import fewshot
        from ..embeddings import Embedder, model_folder

        config = self.config
        setfit = fewshot.require_setfit()
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
            return fewshot.finetune_setfit(
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
        k = self.model._folds(codes, config.cv_folds)

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
        from ..workspace import atomic_write_bytes

        atomic_write_bytes(state_path, json.dumps({"training": training, "tuning": self.tuning, "report": report,
                                                   "oof": oof.tolist()}).encode("utf-8"))
        return embedder(folder / "model"), report, oof

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        vectors = self.embedder.encode(texts, progress)
        probs = self.model.predict_proba(vectors)
        for row, text in enumerate(texts):
            oof = self._oof.get(_text_key(text))
            if oof is not None:
                probs[row] = oof
        none_label = None
        if self.book is not None and self.book.none_label and self.book.none_label in self.labels:
            none_label = self.book.none_label
        frame = _output_frame(probs, self.labels, self.multi, self.config.threshold, None, None)
        if self.multi and none_label is not None:
            # "None of these" is a class the regression learned, not a code to combine.
            frame["code_labels"] = [v if v else none_label for v in frame["code_labels"]]
        frame["_split"] = self.embedder.split
        frame["_trained_on"] = [(_text_key(t) in self._oof) for t in texts]
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


# ---------------------------------------------------------------------- task


class CodingTask(Task):
    name = "coding"
    title = "Codebook coding"
    description = "Codes from your codebook, zero-shot or learned from coded examples."
    Config = CodingConfig
    chunk_size = 2048
    columns = ("code_label", "code_labels")
    column_prefixes = ("code_",)  # code_<slug> (0..1) for each code of the codebook (and its none label)
    label_columns = ("code_label", "code_labels")
    multi_label_columns = ("code_labels",)

    def validate(self, config: CodingConfig) -> None:
        super().validate(config)
        if config.method not in METHODS:
            raise TextlabError(f"Unknown coding method '{config.method}': use {', '.join(METHODS)}.")
        method = _method(config)
        book = _codebook(config)
        if method == "zero-shot":
            if book is None:
                raise CodebookError(
                    "Zero-shot coding needs a codebook (--codebook FILE, or write one in the app). "
                    "To learn codes from coded rows instead, give --labels-column."
                )
            choose_backend("coding", config.backend, config.model)
        elif not config.labels_column:
            raise TextlabError("Few-shot coding needs a column of human codes (--labels-column COL).")
        if not 0 < config.threshold < 1:
            raise TextlabError(f"threshold must be between 0 and 1, not {config.threshold}.")
        if config.temperature <= 0:
            raise TextlabError(f"temperature must be positive, not {config.temperature}.")
        if config.cv_folds < 2:
            raise TextlabError("cv_folds must be at least 2.")
        if config.classifier not in CLASSIFIERS:
            raise TextlabError(f"Unknown few-shot classifier '{config.classifier}': use {', '.join(CLASSIFIERS)}.")
        if config.classifier == "setfit":
            if method != "few-shot":
                raise TextlabError("The SetFit classifier learns from coded rows: it needs few-shot coding "
                                   "(--labels-column COL).")
            for name in ("setfit_epochs", "setfit_iterations", "setfit_batch_size"):
                value = getattr(config, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise TextlabError(f"{name} must be a positive whole number, not {value!r}.")
            from ..fewshot import require_setfit

            require_setfit()
        if method == "few-shot" and config.backend == "transformers" and not config.model:
            raise TextlabError(
                "Few-shot coding trains on sentence embeddings (backend offline/auto); set --model to a "
                "sentence-transformers model to use a stronger embedding model."
            )

    def check(self, config: CodingConfig, context: RunContext) -> None:
        if _method(config) != "few-shot":
            return
        from .. import fewshot

        book = _codebook(config)
        multi = _multi(config, book)
        idx, codes = training_rows(context.texts, context.frame, config.labels_column, multi,
                                   book.output_labels if book else None)
        fewshot.check_training_codes(codes, multi, config.labels_column)

    def input_fingerprint(self, config: CodingConfig, context: RunContext) -> str | None:
        # Few-shot results depend on the human codes: new or corrected codes mean a new run.
        if _method(config) != "few-shot":
            return None
        return column_fingerprint(context.frame, [config.labels_column])

    def load(self, config: CodingConfig, context: RunContext | None = None) -> Predictor:
        book = _codebook(config)
        if _method(config) == "few-shot":
            if context is None or context.frame is None:
                raise TextlabError("Few-shot coding needs the corpus with its column of human codes.")
            return FewShotCoder(config, book, context)
        choice = choose_backend("coding", config.backend, config.model)
        if choice.backend == "offline":
            return SimilarityCoder(config, book, choice.reason, context)
        return NliCoder(config, book, choice.model, choice.reason)

    def empty_row(self) -> dict[str, Any]:
        return {}

    def output_columns(self, manifest: dict[str, Any] | None = None) -> list[str]:
        # code_label for one code per text, code_labels for sets; unknown before the run when
        # the codebook decides.
        multi = (manifest or {}).get("multi_label")
        if multi is None:
            parameters = (manifest or {}).get("parameters") or {}
            multi = parameters.get("multi_label")
            if multi is None and isinstance(parameters.get("codebook"), dict):
                multi = parameters["codebook"].get("multi_label")
        if multi is None:
            return super().output_columns(manifest)
        return ["code_labels" if multi else "code_label", "code_*"]

    def main_column(self, manifest: dict[str, Any]) -> str | None:
        return "code_labels" if manifest.get("multi_label") else "code_label"

    def label_sets(self, manifest: dict[str, Any]) -> dict[str, list[str]]:
        if manifest.get("multi_label"):
            return {}  # code_labels joins several codes: no single label per text
        book = manifest.get("codebook") or {}
        none_label = str(book.get("none_label") or "").strip()
        # Codebook order, then the none label, then labels the run has beyond them (few-shot
        # codes learned from a column without a codebook: the classifier's sorted classes).
        ordered = [code.get("label") for code in book.get("codes") or [] if isinstance(code, dict)]
        ordered += [none_label] + list(manifest.get("labels") or [])
        return {"code_label": list(dict.fromkeys(str(label) for label in ordered if label))}


TASK = CodingTask()


def run(texts: list[str], config: CodingConfig | dict | None = None, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Code a list of texts in-process (notebooks, tests). ``frame`` holds the human codes for few-shot."""
    from ..jobs import run_in_memory

    if not isinstance(config, CodingConfig):
        config = CodingConfig.from_dict(config)
    return run_in_memory(TASK, texts, config, frame=frame)
