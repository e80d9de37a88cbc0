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

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import llm
from ...codebook import Codebook
from ...errors import TextlabError
from ...textutil import slug
from ..base import Predictor, RunContext
from .labels import MULTI_SEPARATOR, multi_label_of

if TYPE_CHECKING:
    from . import CodingConfig

SYSTEM_PROMPT = ("You are a careful research assistant who codes texts with a codebook, as a trained human "
                 "coder would. Answer only with the JSON object asked for.")


def codebook_prompt(book: Codebook, multi: bool) -> str:
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
    if multi:
        lines.append("Choose every code that applies to the text (an empty list when none does).")
        lines.append('Answer with JSON: {"codes": [...]} using only these labels: ' + ", ".join(labels) + ".")
    else:
        lines.append("Choose the one code that fits the text best.")
        lines.append('Answer with JSON: {"code": "..."} using exactly one of these labels: ' + ", ".join(labels) + ".")
    return "\n".join(lines)


def choices_of(book: Codebook) -> list[str]:
    return list(book.labels) + ([book.none_label] if book.none_label else [])


def conversation(instructions: str, text: str) -> llm.Conversation:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f'{instructions}\n\nText:\n"""\n{text}\n"""'}]


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_codes(answer: str, labels: list[str], multi: bool) -> list[str] | None:
    """The codes an answer names, or None when it names none clearly (then the text is not coded).

    Accepted: a JSON object ``{"code": LABEL}`` / ``{"codes": [LABEL, ...]}`` (labels matched
    without regard to case or surrounding spaces), or an answer that is exactly one label
    (quotes and a final full stop allowed). Anything else, including a label outside the
    codebook, is not an answer.
    """
    by_lower = {label.lower().strip(): label for label in labels}
    text = (answer or "").strip()
    found = _JSON_OBJECT.search(text)
    if found:
        try:
            data = json.loads(found.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            value = data.get("codes" if multi else "code", data.get("code" if multi else "codes"))
            values = value if isinstance(value, list) else [value]
            if not multi and len(values) != 1:
                return None
            mapped = [by_lower.get(str(v).lower().strip()) for v in values if v is not None]
            if any(m is None for m in mapped) or (not mapped and not multi):
                return None
            return list(dict.fromkeys(mapped))
    bare = text.strip().strip("\"'`").rstrip(".").strip()
    if bare.lower() in by_lower:
        return [by_lower[bare.lower()]]
    return None


def answer_cache(context: RunContext | None) -> llm.AnswerCache | None:
    """The project's answer cache (a re-run or a resume asks nothing twice); None in memory."""
    if context is None or context.project is None:
        return None
    return llm.AnswerCache(Path(context.project.folder) / "llm" / "answers.sqlite")


def load_backend(config: "CodingConfig", context: RunContext | None):
    cache = answer_cache(context)
    if config.llm_url:
        if not config.llm_model:
            raise TextlabError("A model server needs the model's name too (--llm-model NAME; the server's "
                               "/v1/models lists them).")
        return llm.ServerLLM(config.llm_url, config.llm_model, allow_remote=config.allow_remote, cache=cache)
    if not config.model:
        raise TextlabError("The LLM backend needs a model: a server (--llm-url URL --llm-model NAME) or a local "
                           "instruct-model folder or GGUF file (--model PATH).")
    return llm.LocalLLM(config.model, device=config.device, batch_size=config.batch_size or 8, cache=cache)


class LLMCoder(Predictor):
    """Zero-shot coding by prompting a generative model with the codebook."""

    def __init__(self, config: "CodingConfig", book: Codebook, context: RunContext | None):
        self.config, self.book = config, book
        self.multi = multi_label_of(config, book)
        self.labels = choices_of(book)
        self.instructions = codebook_prompt(book, self.multi)
        self.backend = load_backend(config, context)
        self.params = llm.GenerationParams(max_tokens=config.llm_max_tokens, temperature=0.0, seed=config.seed,
                                           choices=tuple(self.labels), multi=self.multi)
        self.n_retried = 0
        self.has_probs = False

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        conversations = [conversation(self.instructions, t) for t in texts]
        answers = self.backend.chat(conversations, self.params, progress=progress)
        parsed = [parse_codes(a.text, self.labels, self.multi) for a in answers]
        retry = [i for i, p in enumerate(parsed) if p is None]
        if retry:
            self.n_retried += len(retry)
            reminder = ('Answer only with JSON: {"codes": [...]}' if self.multi else 'Answer only with JSON: {"code": "..."}'
                        ) + " using the labels " + ", ".join(self.labels) + "."
            again = self.backend.chat([conversations[i] + [{"role": "assistant", "content": answers[i].text},
                                                            {"role": "user", "content": reminder}] for i in retry],
                                      self.params)
            for i, answer in zip(retry, again):
                parsed[i] = parse_codes(answer.text, self.labels, self.multi)
                answers[i] = answer
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
        frame["unparsed"] = [p is None for p in parsed]
        return frame

    def describe(self) -> dict[str, Any]:
        return {
            **self.backend.describe(),
            "method": "zero-shot (generative model prompted with the codebook)",
            "labels": self.labels,
            "multi_label": self.multi,
            "prompt": {"system": SYSTEM_PROMPT, "user": self.instructions + '\n\nText:\n"""\n{text}\n"""'},
            "parameters_generation": {"temperature": 0.0, "seed": self.config.seed,
                                      "max_tokens": self.config.llm_max_tokens},
            "retried_answers": self.n_retried,
            "label_probabilities": ("from the model (in process: each label scored; server: log-probabilities)"
                                    if self.has_probs else "absent: the backend gave no probabilities"),
            "codebook_version": self.book.version_tag(),
            "codebook": self.book.to_dict(),
        }

    def close(self) -> None:
        self.backend.close()
        cache = getattr(self.backend, "cache", None)
        if cache is not None:
            cache.close()
