"""Free prompt: a researcher's own instruction to a generative model, one answer per text.

For extraction and open questions the codebook does not cover ("Which politician is
mentioned? Answer with the name or 'none'."). The template holds ``{text}`` and may name
other columns of the corpus (``{region}``, ``{date}``), filled in per row; literal braces
are written ``{{`` and ``}}``. The answer lands in ``prompt_answer`` as the model wrote it
(trimmed; cut at a stop sequence), limited to ``llm_max_tokens`` tokens.

The full template, the system message, the model and every generation parameter are
recorded in the manifest; answers are cached in the project like every LLM answer, so a
re-run or a resume asks nothing twice. An empty answer is counted (row flag ``empty_answer``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import llm
from ..errors import TextlabError
from . import execute, prompting
from .base import LLMConfig, Predictor, RunContext, Task, setting

DEFAULT_SYSTEM = "You are a careful research assistant. Answer briefly and only from the text."


@dataclass
class PromptConfig(LLMConfig):
    backend: str = "llm"
    template: str | None = setting(None, help="the prompt: an instruction with {text} and, optionally, {column} "
                                              "fields of the corpus ({{ and }} for literal braces)")
    prompt_file: str | None = setting(None, help="a text file holding the template (read into the run's settings, "
                                                 "so the run keeps the template itself)", flag="--prompt-file",
                                      metavar="FILE")
    system: str | None = setting(None, help="the system message (default: a careful research assistant)")
    stop: str | None = setting(None, help="stop sequence: the answer ends before it (\\n for the end of a line)",
                               flag="--stop", metavar="TEXT")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "PromptConfig":
        data = dict(data or {})
        if data.get("prompt_file") and not data.get("template"):
            path = Path(str(data["prompt_file"])).expanduser()
            try:
                data["template"] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise TextlabError(f"Cannot read the prompt file {path}: {exc.strerror or exc}.") from exc
        return super().from_dict(data)  # type: ignore[return-value]


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order (``{text}`` included); bad syntax is an error."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TextlabError(f"The prompt template cannot be read ({exc}). Write literal braces as {{{{ and }}}}.") from exc
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or spec or conversion or not name.replace("_", "").replace(" ", "").isalnum():
            raise TextlabError(f"The prompt template has a field '{{{name}}}' it cannot fill: use {{text}} or a "
                               "column name in braces, and {{ }} for literal braces.")
        fields.append(name)
    return list(dict.fromkeys(fields))


def stop_sequence(stop: str | None) -> tuple[str, ...]:
    return () if not stop else (stop.replace("\\n", "\n").replace("\\t", "\t"),)


def render(template: str, text: str, row: dict[str, Any] | None = None) -> str:
    values = {name: "" if value is None or (isinstance(value, float) and value != value) else str(value)
              for name, value in (row or {}).items()}
    values["text"] = text
    return template.format_map(values)


class PromptPredictor(Predictor):
    wants_rows = True  # the template may name other columns of each text's row

    def __init__(self, config: PromptConfig, context: RunContext | None):
        self.config = config
        self.template = config.template or ""
        self.fields = [f for f in template_fields(self.template) if f != "text"]
        self.frame = None if context is None else context.frame
        self.system = config.system or DEFAULT_SYSTEM
        self.backend = prompting.load_backend(config, context)
        self.params = llm.GenerationParams(max_tokens=prompting.max_tokens(config, free=True), temperature=0.0,
                                           seed=config.seed, stop=stop_sequence(config.stop))
        self.plan = None if context is None else prompting.plan_tokens(
            self.backend, lambda t: self.conversation(t, {f: "" for f in self.fields}), context.texts, context)

    def conversation(self, text: str, row: dict[str, Any] | None = None) -> llm.Conversation:
        return prompting.conversation(self.system, render(self.template, text, row))

    def predict(self, texts: list[str], progress=None, rows: list[int] | None = None) -> pd.DataFrame:
        metadata = [None] * len(texts)
        if self.fields and self.frame is not None and rows is not None:
            metadata = self.frame[self.fields].iloc[rows].to_dict("records")
        answers = self.backend.chat([self.conversation(t, m) for t, m in zip(texts, metadata)], self.params,
                                    progress=progress)
        cleaned = [a.text.strip() for a in answers]
        return pd.DataFrame({"prompt_answer": [c or None for c in cleaned], "empty_answer": [not c for c in cleaned]})

    def describe(self) -> dict[str, Any]:
        return {**prompting.describe_generation(self.backend, self.params,
                                                {"system": self.system, "user": self.template}, 0),
                "method": "free prompt (the researcher's template)", "template_fields": ["text", *self.fields],
                "planned": self.plan}

    def close(self) -> None:
        prompting.close_backend(self.backend)


class PromptTask(Task):
    name = "prompt"
    title = "Free prompt"
    description = "Your own question to a language model, one answer per text."
    Config = PromptConfig
    chunk_size = 512   # generation is slow: checkpoint often
    columns = ("prompt_answer",)
    not_for_charts = ("prompt_answer",)  # free text: read in close reading
    row_flags = {"empty_answer": "the model gave an empty answer"}
    llm_backend = True

    def validate(self, config: PromptConfig) -> None:
        super().validate(config)
        if config.backend not in ("llm", "auto"):
            raise TextlabError("A free prompt needs a generative model: backend llm.")
        if not (config.template or "").strip():
            raise TextlabError("A free prompt needs a template: --prompt-file FILE (a text with {text} where the "
                               "text goes), or write one on the Prompt page.")
        if "text" not in template_fields(config.template):
            raise TextlabError("The prompt template must say where the text goes: put {text} in it.")
        if config.explain:
            raise TextlabError("--explain adds a reason to a label; a free prompt's answer is the model's own text, "
                               "so ask for the reason in the template itself.")

    def check(self, config: PromptConfig, context: RunContext) -> None:
        fields = [f for f in template_fields(config.template or "") if f != "text"]
        columns = [] if context.frame is None else list(context.frame.columns)
        missing = [f for f in fields if f not in columns]
        if missing:
            raise TextlabError(f"The prompt template names {', '.join('{' + m + '}' for m in missing)}, which "
                               f"the corpus does not have. Its columns: {', '.join(map(str, columns)) or 'none'}.")

    def load(self, config: PromptConfig, context: RunContext | None = None) -> Predictor:
        return PromptPredictor(config, context)

    def empty_row(self) -> dict[str, Any]:
        return {"prompt_answer": None}


TASK = PromptTask()


def run(texts: list[str], config: PromptConfig | dict | None = None, **settings) -> pd.DataFrame:
    """The model's answer to the template for each text, in order (empty texts get none)."""
    return execute.run(TASK, texts, config, **settings)
