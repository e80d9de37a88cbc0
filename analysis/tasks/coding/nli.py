"""Zero-shot coding with a local NLI model (the method is described in ``analysis.tasks.coding``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import models
from ...codebook import Codebook
from ...errors import TextlabError
from ..base import Predictor
from .labels import multi_label_of, output_frame, sigmoid, softmax

if TYPE_CHECKING:
    from . import CodingConfig


def entailment_ids(config) -> tuple[int, int | None]:
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
        from ...runner import (
            DEFAULT_MAX_BATCH_SIZE,
            DEFAULT_MAX_TOKENS,
            SequenceClassifierRunner,
            model_window,
        )

        self.tokenizer, self.model = tokenizer, model
        self.window = model_window(tokenizer, model)
        self.max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self.max_batch_size = max_batch_size or DEFAULT_MAX_BATCH_SIZE
        self.stride = stride
        # Padding, device placement and the forward pass are the classifier runner's.
        self.classifier = SequenceClassifierRunner(tokenizer, model, max_tokens=self.max_tokens,
                                               max_batch_size=self.max_batch_size)
        self.entail, self.contra = entailment_ids(model.config)
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

        from ...runner import run_batched

        features, lengths, owner = self.pair_features(list(texts), list(hypotheses))

        def forward(batch):
            inputs = self.classifier.collate(batch)
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
        from ...runner import DEFAULT_MAX_TOKENS

        self.config, self.book, self.reason = config, book, reason
        self.multi = multi_label_of(config, book)
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
            probs = softmax(entail, axis=1)
            if self.book.none_label:
                none = 1.0 - independent.max(axis=1)
        frame = output_frame(probs, self.book.labels, self.multi, self.config.threshold, self.book.none_label, none)
        if none is not None:
            # The none label goes to texts where no code is more likely entailed than not;
            # otherwise the most probable code (the softmax and the none score are on different scales).
            best = np.array(self.book.labels, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
            frame["code_label"] = np.where(none > 0.5, self.book.none_label, best)
        frame["split"] = self.runner.split
        return frame

    def _independent(self, logits: np.ndarray) -> np.ndarray:
        e = logits[:, :, self.runner.entail]
        if self.runner.contra is None:
            return sigmoid(e)
        c = logits[:, :, self.runner.contra]
        return softmax(np.stack([e, c], axis=-1), axis=-1)[..., 0]

    def describe(self) -> dict[str, Any]:
        from ...runner import device_description

        net = self.runner.model
        return {
            "backend": "transformers",
            "method": "zero-shot (NLI)",
            "model": self.spec.display_id,
            "model_revision": models.resolved_revision(self.path) or self.spec.revision,
            "model_license": self.spec.license,
            "model_citation": self.spec.citation,
            "backend_choice": self.reason,
            "device": device_description(self.runner.classifier.device),
            "dtype": str(next(net.parameters()).dtype).replace("torch.", ""),
            "max_length": self.runner.window,
            "labels": self.book.output_labels,
            "multi_label": self.multi,
            "hypotheses": self.hypotheses,
            "codebook_version": self.book.version_tag(),
            "codebook": self.book.to_dict(),
        }

    def close(self) -> None:
        from ...runner import release_model

        release_model(self.runner.model)

