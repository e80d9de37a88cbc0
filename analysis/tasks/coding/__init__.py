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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ...codebook import as_codebook
from ...errors import CodebookError, TextlabError
from ..base import FAST_HELP, LLMConfig, Predictor, RunContext, Task, column_fingerprint, setting
from .. import execute
from ..classifier import choose_backend
from .fewshot import (CLASSIFIERS, MIN_PER_CODE, FewShotCoder, FewShotModel, check_training_codes, learning_curve,
                      suggest_next, training_rows)
from .labels import MULTI_SEPARATOR, codebook_of, method_of, multi_label_of, output_frame, split_codes
from .nli import NliCoder, NliRunner
from .preview import (CodeColumns, FewShotPreview, SetFitEstimate, code_columns, code_shares, human_code_columns,
                      human_code_counts, next_to_code, preview_fewshot, setfit_estimate)
from .setfit import CPU_PAIRS_PER_SECOND, finetune_setfit, require_setfit, setfit_pairs
from .similarity import SimilarityCoder, code_prototypes

__all__ = [  # the public names of this analysis
    "CodingConfig",
    "CodingTask",
    "TASK",
    "run",
    "METHODS",
    "MIN_PER_CODE",
    "MULTI_SEPARATOR",
    "CLASSIFIERS",
    "split_codes",
    "output_frame",
    "training_rows",
    "check_training_codes",
    "FewShotModel",
    "FewShotCoder",
    "learning_curve",
    "suggest_next",
    "SimilarityCoder",
    "code_prototypes",
    "NliCoder",
    "NliRunner",
    "CPU_PAIRS_PER_SECOND",
    "setfit_pairs",
    "require_setfit",
    "finetune_setfit",
    "method_of",
    "codebook_of",
    "multi_label_of",
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

METHODS = ("auto", "zero-shot", "few-shot")


@dataclass
class CodingConfig(LLMConfig):
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
    stability_sample: int = setting(0, help="backend llm: after coding, check prompt stability on this many "
                                            "randomly drawn texts (0: no check)", flag="--stability", metavar="N")
    stability_repeats: int = setting(3, help="prompt stability: repeats of the same prompt with sampling on",
                                     flag="--stability-repeats", metavar="K")
    stability_temperature: float = setting(0.7, help="prompt stability: the sampling temperature of the repeats",
                                           flag="--stability-temperature", metavar="T")
    paraphrases: list | None = setting(None, help="prompt stability: paraphrases of the instruction sentence, one "
                                                  "per line of FILE (default: four built-in ones)",
                                       flag="--paraphrase-file", metavar="FILE")
    generate_paraphrases: int = setting(0, help="prompt stability: also have the model write this many "
                                                "paraphrases of the instruction", flag="--generate-paraphrases",
                                        metavar="N")
    fast: bool = setting(False, help="embedding methods: " + FAST_HELP, flag="--fast")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CodingConfig":
        data = dict(data or {})
        # A run stores the codebook itself, not a path that may change or vanish.
        if data.get("codebook") is not None and not isinstance(data["codebook"], dict):
            data["codebook"] = as_codebook(data["codebook"]).to_dict()
        if isinstance(data.get("paraphrases"), str):  # a file name: the run keeps the sentences themselves
            path = Path(data["paraphrases"]).expanduser()
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise TextlabError(f"Cannot read the paraphrase file {path}: {exc.strerror or exc}.") from exc
            data["paraphrases"] = [line.strip() for line in lines if line.strip()]
        return super().from_dict(data)  # type: ignore[return-value]


def _validate_stability(config: CodingConfig, method: str) -> None:
    if isinstance(config.stability_sample, bool) or not isinstance(config.stability_sample, int) \
            or config.stability_sample < 0:
        raise TextlabError(f"stability_sample must be a whole number of texts (0: no check), not "
                           f"{config.stability_sample!r}.")
    if not config.stability_sample:
        return
    if config.backend != "llm" or method != "zero-shot":
        raise TextlabError("The prompt-stability check (--stability N) re-asks a generative model: it needs "
                           "zero-shot coding with --backend llm.")
    if config.stability_sample < 2:
        raise TextlabError("The prompt-stability check needs at least 2 texts (--stability N); 30 or more give "
                           "a usable interval.")
    if not isinstance(config.stability_repeats, int) or config.stability_repeats < 0:
        raise TextlabError(f"stability_repeats must be a whole number, not {config.stability_repeats!r}.")
    if config.stability_temperature < 0 or config.stability_temperature > 2:
        raise TextlabError(f"stability_temperature must be between 0 and 2, not {config.stability_temperature}.")
    if config.generate_paraphrases < 0:
        raise TextlabError(f"generate_paraphrases must be 0 or more, not {config.generate_paraphrases}.")
    if config.paraphrases is not None and (not isinstance(config.paraphrases, list)
                                           or not all(isinstance(p, str) for p in config.paraphrases)):
        raise TextlabError("paraphrases must be a list of instruction sentences (or --paraphrase-file FILE with "
                           "one per line).")
    if config.paraphrases == [] and not config.generate_paraphrases and config.stability_repeats < 2:
        raise TextlabError("The prompt-stability check has nothing to compare: give paraphrases, "
                           "--generate-paraphrases N or --stability-repeats 2 or more.")


# ---------------------------------------------------------------------- task


class CodingTask(Task):
    name = "coding"
    title = "Codebook coding"
    description = "Codes from your codebook, zero-shot or learned from coded examples."
    Config = CodingConfig
    chunk_size = 2048
    columns = ("code_label", "code_labels", "code_explanation")
    column_prefixes = ("code_",)  # code_<slug> (0..1) for each code of the codebook (and its none label)
    label_columns = ("code_label", "code_labels")
    multi_label_columns = ("code_labels",)
    not_for_charts = ("code_explanation",)  # free text: read in close reading
    row_flags = {
        "split": "longer than the model window: read in overlapping windows",
        "non_english": "probably not English, which this English-only method cannot read",
        "trained_on": "a human-coded training row: its codes are out-of-fold predictions",
        "unparsed": "the language model's answer named no codebook label (after one retry): not coded",
    }
    llm_backend = True

    def validate(self, config: CodingConfig) -> None:
        if config.method not in METHODS:
            raise TextlabError(f"Unknown coding method '{config.method}': use {', '.join(METHODS)}.")
        method = method_of(config)
        if config.fast and (config.backend in ("transformers", "llm") or config.classifier == "setfit"):
            raise TextlabError("--fast is the fast embedding path: it codes with embeddings (zero-shot similarity "
                               "or few-shot logistic regression), not with an NLI model, a language model or "
                               "SetFit. Leave out --fast, or use --backend offline.")
        if method == "few-shot" and config.backend == "llm":
            # Said before the LLM settings are checked: no model would help this combination.
            raise TextlabError("The LLM backend codes zero-shot from the codebook; few-shot coding (--labels-column) "
                               "learns from embeddings (backend auto or offline).")
        super().validate(config)
        book = codebook_of(config)
        if method == "zero-shot":
            if book is None:
                raise CodebookError(
                    "Zero-shot coding needs a codebook (--codebook FILE, or write one in the app). "
                    "To learn codes from coded rows instead, give --labels-column."
                )
            if config.backend != "llm":  # the LLM settings are checked by Task.validate
                choose_backend("coding", config.backend, config.model)
        elif not config.labels_column:
            raise TextlabError("Few-shot coding needs a column of human codes (--labels-column COL).")
        if not 0 < config.threshold < 1:
            raise TextlabError(f"threshold must be between 0 and 1, not {config.threshold}.")
        if config.temperature <= 0:
            raise TextlabError(f"temperature must be positive, not {config.temperature}.")
        if config.cv_folds < 2:
            raise TextlabError("cv_folds must be at least 2.")
        _validate_stability(config, method)
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
            require_setfit()
        if method == "few-shot" and config.backend == "transformers" and not config.model:
            raise TextlabError(
                "Few-shot coding trains on sentence embeddings (backend offline/auto); set --model to a "
                "sentence-transformers model to use a stronger embedding model."
            )

    def check(self, config: CodingConfig, context: RunContext) -> None:
        if config.stability_sample and not any(t.strip() for t in context.texts if isinstance(t, str)):
            raise TextlabError("No text to check prompt stability on: every text is empty.")
        if method_of(config) != "few-shot":
            return
        book = codebook_of(config)
        multi = multi_label_of(config, book)
        idx, codes = training_rows(context.texts, context.frame, config.labels_column, multi,
                                   book.output_labels if book else None)
        check_training_codes(codes, multi, config.labels_column)

    def input_fingerprint(self, config: CodingConfig, context: RunContext) -> str | None:
        # Few-shot results depend on the human codes: new or corrected codes mean a new run.
        if method_of(config) != "few-shot":
            return None
        return column_fingerprint(context.frame, [config.labels_column])

    def load(self, config: CodingConfig, context: RunContext | None = None) -> Predictor:
        book = codebook_of(config)
        if method_of(config) == "few-shot":
            if context is None or context.frame is None:
                raise TextlabError("Few-shot coding needs the corpus with its column of human codes.")
            return FewShotCoder(config, book, context)
        if config.backend == "llm":
            from .generative import LLMCoder  # the openai client and the model load only for this backend

            return LLMCoder(config, book, context)
        if config.fast:  # the embedding method on the fast model, whatever auto would pick
            return SimilarityCoder(config, book, "fast path requested (--fast)", context)
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


def run(texts: list[str], config: CodingConfig | dict | None = None, frame: pd.DataFrame | None = None, **settings) -> pd.DataFrame:
    """Code a list of texts in-process (notebooks, tests). ``frame`` holds the human codes for few-shot."""
    return execute.run(TASK, texts, config, frame=frame, **settings)
