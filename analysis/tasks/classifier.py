"""What the sentiment and emotion tasks share: backend choice and the transformer classifier.

``choose_backend`` implements the design's rule: ``auto`` takes the transformer model
when it is on this machine, else the offline default, and says which it used and why.
``TransformerClassifier`` runs any local sequence-classification model through
``analysis.runner`` (length-sorted token-budget batches, bf16 on CUDA, long texts split
into windows) and returns class probabilities with the model's own labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import models
from ..errors import TextlabError


@dataclass
class BackendChoice:
    backend: str          # "offline" or "transformers"
    model: str | None     # registry name, HF id or folder for transformers
    reason: str           # one line for the manifest and the UI


def choose_backend(task: str, backend: str, model: str | None) -> BackendChoice:
    """Resolve auto/offline/transformers and the model into one concrete choice.

    ``transformers`` with a missing model raises ModelNotAvailable (with the download
    command); ``auto`` falls back to the offline default instead, and says so (the CLI
    turns ``--model`` under auto into ``transformers``, as naming a model means wanting it).
    """
    if backend not in ("auto", "offline", "transformers"):
        raise TextlabError(f"Unknown backend '{backend}': use auto, offline or transformers.")
    default_offline, default_transformer = models.DEFAULTS[task]["offline"], models.DEFAULTS[task]["transformers"]
    if backend == "offline":
        if model and model != default_offline:
            raise TextlabError(
                f"--model {model} needs the transformers backend; the offline {task} backend is "
                f"'{default_offline}'. Leave out --model or use --backend transformers."
            )
        return BackendChoice("offline", default_offline, "offline backend requested")
    wanted = model or default_transformer
    spec = models.get_spec(wanted, task=task)
    if spec.backend == "offline":
        return BackendChoice("offline", spec.name, f"{spec.name} is the offline lexicon")
    if models.is_available(spec):
        return BackendChoice("transformers", wanted, f"{spec.display_id} is on this machine")
    if backend == "transformers":
        models.require(spec)  # raises ModelNotAvailable with the fix
    return BackendChoice(
        "offline", default_offline,
        f"auto: {spec.display_id} is not on this machine, so the offline default {default_offline} was used "
        f"(`textlab models download {spec.name}` to use the transformer model)",
    )


class TransformerClassifier:
    """A local sequence classifier, loaded once and run in batches."""

    def __init__(self, model: str, task: str, *, device: str = "auto", batch_size: int | None = None,
                 dtype: str = "auto"):
        from ..runner import DEFAULT_MAX_TOKENS, SequenceClassifierRunner

        self.spec = models.get_spec(model, task=task)
        tokenizer, net = models.load_sequence_classifier(self.spec, device=device, dtype=dtype)
        self.path = models.require(self.spec)
        window = net.config.max_position_embeddings or 512
        kwargs: dict[str, Any] = {}
        if batch_size is not None:
            # An explicit batch size caps the rows; the token budget then allows full windows.
            kwargs = {"max_batch_size": batch_size, "max_tokens": max(DEFAULT_MAX_TOKENS, batch_size * window)}
        self.runner = SequenceClassifierRunner(tokenizer, net, **kwargs)
        self.labels = self.runner.labels

    def predict_proba(self, texts: list[str], progress=None) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and, per text, whether it was split into windows."""
        probs = self.runner.predict_proba(texts, on_batch=progress)
        return probs, self.runner.split.copy()

    def close(self) -> None:
        from ..runner import release_model

        release_model(self.runner.model)

    def describe(self) -> dict[str, Any]:
        from ..runner import device_description

        net = self.runner.model
        return {
            "backend": "transformers",
            "model": self.spec.display_id,
            "model_revision": models.resolved_revision(self.path) or self.spec.revision,
            "model_license": self.spec.license,
            "model_citation": self.spec.citation,
            "labels": self.labels,
            "device": device_description(self.runner.device),
            "dtype": str(next(net.parameters()).dtype).replace("torch.", ""),
            "max_length": self.runner.max_length,
            "long_texts": f"split into windows of {self.runner.max_length} tokens with {self.runner.stride} "
                          "tokens overlap; probabilities averaged, weighted by window length (count: rows.split)",
        }
