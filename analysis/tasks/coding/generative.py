"""Codebook coding with a generative language model (``backend="llm"``).

The prompt is built from the codebook (labels, definitions, include and exclude notes,
examples) and asks for a JSON answer naming one code (``{"code": ...}``) or, multi-label,
a list (``{"codes": [...]}``). The answer is constrained to the codebook where the backend
can: in process every label is scored as the prompt's continuation (exact guided choice);
a server gets a JSON schema of the labels. Every answer is then parsed strictly: a
JSON object with a codebook label, or an answer that is exactly a label. An answer that is
neither gets one retry with a reminder; if that fails too the text is counted as
``unparsed`` (a row flag in the manifest) and gets no code: it is never guessed.

``code_<code>`` holds the label probabilities when the backend has them (in process always;
a server only with log-probabilities); otherwise the columns are absent and the manifest
says so. Validate LLM codes against held-out human codes like any other coder's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import llm
from ...codebook import Codebook
from ...textutil import slug
from .. import prompting
from ..base import Predictor, RunContext
from .labels import MULTI_SEPARATOR, multi_label_of

if TYPE_CHECKING:
    from . import CodingConfig

SYSTEM_PROMPT = ("You are a careful research assistant who codes texts with a codebook, as a trained human "
                 "coder would. Answer only with the JSON object asked for.")


def codebook_prompt(book: Codebook, multi: bool, explain: bool = False, instruction: str | None = None) -> str:
    """The instructions part of the prompt: every code with its definition, notes and examples."""
    lines = [f"Codebook: {book.name}", "", "Codes:"]
    for code in book.codes:
        parts = [f"- {code.label}"]
        if code.definition.strip():
            parts.append(f": {code.definition.strip()}")
        line = "".join(parts)
        if code.include.strip():
            line += f" Include: {code.include.strip()}"
        if code.exclude.strip():
            line += f" Exclude: {code.exclude.strip()}"
        lines.append(line)
        for example in code.examples[:3]:
            lines.append(f'    Example: "{example.strip()}"')
    labels = choices_of(book)
    if book.none_label:
        lines.append(f"- {book.none_label}: none of the codes above applies.")
    lines.append("")
    lines.append(instruction or (MULTI_INSTRUCTION if multi else SINGLE_INSTRUCTION))
    why = ', "explanation": "one sentence on why"' if explain else ""
    if multi:
        lines.append('Answer with JSON: {"codes": [...]' + why + '} using only these labels: ' + ", ".join(labels) + ".")
    else:
        lines.append('Answer with JSON: {"code": "..."' + why + '} using exactly one of these labels: '
                     + ", ".join(labels) + ".")
    return "\n".join(lines)


# The instruction sentence of the prompt: what the prompt-stability check paraphrases.
SINGLE_INSTRUCTION = "Choose the one code that fits the text best."
MULTI_INSTRUCTION = "Choose every code that applies to the text (an empty list when none does)."


def choices_of(book: Codebook) -> list[str]:
    return list(book.labels) + ([book.none_label] if book.none_label else [])


def conversation(instructions: str, text: str, system: str = SYSTEM_PROMPT) -> llm.Conversation:
    return prompting.conversation(system, prompting.with_text(instructions, text))


def parse_codes(answer: str, labels: list[str], multi: bool) -> list[str] | None:
    """The codes an answer names, or None when it names none clearly (see ``prompting.parse_choice``)."""
    return prompting.parse_choice(answer, labels, multi)[0]


class LLMCoder(Predictor):
    """Zero-shot coding by prompting a generative model with the codebook."""

    def __init__(self, config: "CodingConfig", book: Codebook, context: RunContext | None):
        self.config, self.book, self.context = config, book, context
        self.multi = multi_label_of(config, book)
        self.labels = choices_of(book)
        self.instructions = codebook_prompt(book, self.multi, config.explain)
        self.backend = prompting.load_backend(config, context)
        self.params = llm.GenerationParams(max_tokens=prompting.max_tokens(config), temperature=0.0,
                                           seed=config.seed, choices=tuple(self.labels), multi=self.multi,
                                           explain=config.explain)
        self.n_retried = 0
        self.has_probs = False
        self.stability: dict[str, Any] | None = None
        self.plan = None if context is None else prompting.plan_tokens(
            self.backend, lambda t: conversation(self.instructions, t), context.texts, context)

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        conversations = [conversation(self.instructions, t) for t in texts]
        answers, parsed, explanations, retried = prompting.choose(self.backend, conversations, self.params,
                                                                  self.labels, progress)
        self.n_retried += retried
        frame = pd.DataFrame(index=range(len(texts)))
        if self.multi:
            frame["code_labels"] = [None if p is None else MULTI_SEPARATOR.join(p) if p else (self.book.none_label or "")
                                    for p in parsed]
        else:
            frame["code_label"] = [None if p is None else p[0] for p in parsed]
        probs = [a.choice_probs for a in answers]
        if not self.multi and all(p is not None for p in probs) and probs:
            self.has_probs = True
            for label in self.labels:
                frame[f"code_{slug(label)}"] = [np.nan if parsed[i] is None else probs[i].get(label, 0.0)
                                                for i in range(len(texts))]
        if self.config.explain:
            frame["code_explanation"] = explanations
        frame["unparsed"] = [p is None for p in parsed]
        return frame

    def finish(self) -> None:
        """The prompt-stability check on a random sample of the run's texts, when asked for."""
        config = self.config
        if not config.stability_sample or self.context is None:
            return
        from .stability import BUILTIN_PARAPHRASES, generate_paraphrases, prompt_stability, sample_rows

        original = MULTI_INSTRUCTION if self.multi else SINGLE_INSTRUCTION
        paraphrases = list(BUILTIN_PARAPHRASES[self.multi] if config.paraphrases is None else config.paraphrases)
        written = []
        if config.generate_paraphrases:
            self.context.stage("Prompt stability: the model paraphrases the instruction")
            written = generate_paraphrases(self.backend, original, config.generate_paraphrases, config.seed)
        report = prompt_stability(self.backend, self.book, self.context.texts, multi=self.multi,
                                  rows=sample_rows(self.context.texts, config.stability_sample, config.seed),
                                  repeats=config.stability_repeats, temperature=config.stability_temperature,
                                  paraphrases=paraphrases + written, params=self.params, stage=self.context.stage)
        self.stability = report.to_dict()
        self.stability["paraphrases_by_model"] = written
        if config.generate_paraphrases and len(written) < config.generate_paraphrases:
            self.stability["notes"].append(f"The model wrote {len(written)} usable paraphrases of the "
                                           f"{config.generate_paraphrases} asked for (empty or repeated ones are "
                                           "left out).")

    def describe(self) -> dict[str, Any]:
        extra = {"prompt_stability": self.stability} if self.stability is not None else {}
        return {
            **extra,
            **prompting.describe_generation(self.backend, self.params,
                                            {"system": SYSTEM_PROMPT, "user": self.instructions + prompting.TEXT_SLOT},
                                            self.n_retried, self.has_probs),
            "method": "zero-shot (generative model prompted with the codebook)",
            "planned": self.plan,
            "labels": self.labels,
            "multi_label": self.multi,
            "codebook_version": self.book.version_tag(),
            "codebook": self.book.to_dict(),
        }

    def close(self) -> None:
        prompting.close_backend(self.backend)
