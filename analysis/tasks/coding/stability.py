"""Prompt stability of LLM coding: does the code depend on luck or on the wording?

After Barrie, Palaiologou & Törnberg (2024), "Prompt Stability Scoring for Text Annotation
with Large Language Models": a sample of texts is coded again

- **intra-prompt**: with the same prompt several times, sampling on (``temperature`` > 0,
  one seed per repeat), which measures how much a code owes to the draw; and
- **inter-prompt**: with paraphrases of the prompt's instruction at temperature 0 (the
  run's own prompt among them), which measures how much it owes to the wording;

and the agreement between the runs is Krippendorff's alpha (nominal; multi-label: the mean
of each code's binary alpha), each run taken as one coder, with a percentile bootstrap
interval over texts. Alpha >= 0.8 is the usual bar for reliable coding, 0.667 for
tentative conclusions (Krippendorff 2004), which the PSS paper also uses.

Why not the authors' ``promptstability`` package: it needs Python < 3.11 and its own
model wrappers and paraphraser (a PEGASUS download); the measure itself is a few lines over
the ``krippendorff`` package, and here it runs through the same backend, prompt, answer
cache and strict parsing as the coding run it checks (the temperature-0 run with the
original instruction is the coding run itself, answered from the cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ... import llm
from ...codebook import Codebook
from ...errors import TextlabError
from .. import prompting
from .generative import MULTI_INSTRUCTION, SINGLE_INSTRUCTION, choices_of, codebook_prompt, conversation

# Written to keep the meaning of the default instruction while changing its words and
# structure; the user can give their own (one per line) or have the model write more.
BUILTIN_PARAPHRASES = {
    False: ("Pick the single code that describes the text most accurately.",
            "Which one of the codes above fits this text best? Select exactly one.",
            "Read the text and assign it the one code that matches it most closely.",
            "Decide which code applies to the text; if several seem to, take the best fitting one."),
    True: ("Pick every code that describes the text (none, if no code fits).",
           "Which of the codes above apply to this text? Select all that do, or none.",
           "Read the text and assign it each code that matches it; leave out codes that do not.",
           "Decide for each code whether it applies to the text, and list the ones that do."),
}
RELIABLE_ALPHA = 0.8
TENTATIVE_ALPHA = 0.667
PARAPHRASE_REQUEST = ("Rewrite the following instruction in other words. Keep its meaning exactly; change the wording "
                      "and sentence structure. Answer with the rewritten instruction only, in one sentence.\n\n"
                      "Instruction: {instruction}")


@dataclass
class StabilityReport:
    """The runs of a prompt-stability check and the agreement between them."""

    rows: list[int]                            # positions in the corpus of the sampled texts
    runs: dict[str, list[str | None]]          # run name -> code of each sampled text (None: unparsed)
    prompts: dict[str, str]                    # inter-prompt run name -> its instruction sentence
    intra: dict[str, Any] | None               # alpha, ci_low, ci_high, agreement, runs, temperature
    inter: dict[str, Any] | None
    multi_label: bool
    unparsed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"n_texts": len(self.rows), "rows": self.rows, "multi_label": self.multi_label,
                "intra_prompt": self.intra, "inter_prompt": self.inter, "prompts": self.prompts,
                "unparsed": self.unparsed, "notes": self.notes, "runs": self.runs,
                "method": "Krippendorff's alpha (nominal) between runs, each run one coder; 95% percentile "
                          "bootstrap over texts (Barrie, Palaiologou & Törnberg 2024, Prompt Stability Score)"}


def summary_frame(report: dict[str, Any]) -> pd.DataFrame:
    """One row per check (intra-, inter-prompt) for a table: alpha with its interval, the share
    of texts every run coded alike, the runs compared and the verdict."""
    rows = []
    for key, name in (("intra_prompt", "same prompt, repeated (sampling on)"),
                      ("inter_prompt", "paraphrased instructions (temperature 0)")):
        part = report.get(key)
        if part:
            rows.append({"check": name, "alpha": part["alpha"], "ci_low": part["ci_low"], "ci_high": part["ci_high"],
                         "all_runs_agree": part["agreement"], "runs": part["runs"], "texts": part["n_texts"],
                         "verdict": verdict(part["alpha"], part["agreement"])})
    return pd.DataFrame(rows)


def runs_frame(report: dict[str, Any], texts: list[str]) -> pd.DataFrame:
    """The sampled texts with every run's code, least stable first (for close reading)."""
    frame = pd.DataFrame({"row": report["rows"], "text": [texts[i] for i in report["rows"]]})
    for name, codes in report["runs"].items():
        frame[name] = codes
    names = list(report["runs"])
    frame["distinct_codes"] = frame[names].apply(lambda r: len({c for c in r if c is not None}), axis=1)
    return frame.sort_values(["distinct_codes", "row"], ascending=[False, True], kind="stable").reset_index(drop=True)


def verdict(alpha: float | None, agreement: float | None = None) -> str:
    if alpha is None or not math.isfinite(alpha):
        return "undefined (every run gave every text the same single code, or too few codes)"
    if alpha >= RELIABLE_ALPHA:
        return "stable (alpha >= 0.8)"
    if alpha >= TENTATIVE_ALPHA:
        return "tentative (0.667 <= alpha < 0.8)"
    if agreement is not None and agreement >= 0.8:
        # Alpha corrects for chance: when nearly every text gets one code, agreeing is easy.
        return ("unstable (alpha < 0.667) despite high raw agreement: nearly every text got the same code, so "
                "the runs agree little beyond what that code's share alone would give")
    return "unstable (alpha < 0.667): the codes depend on chance or wording"


def sample_rows(texts: list[str], n: int, seed: int = 0) -> list[int]:
    """``n`` non-empty texts drawn at random (seeded), in corpus order."""
    candidates = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
    if not candidates:
        raise TextlabError("No text to check prompt stability on: every text is empty.")
    take = min(n, len(candidates))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(candidates, size=take, replace=False))


def alpha_with_interval(runs: list[list[str | None]], labels: list[str], multi: bool, *, n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Krippendorff's alpha between runs (each a coder) over the texts, with a percentile
    bootstrap interval that resamples texts; plus the share of texts every run coded alike."""
    import krippendorff

    if multi:  # one binary coder-by-text matrix per code; alpha is their mean
        sets = [[None if c is None else frozenset(c.split(";")) if c else frozenset() for c in run] for run in runs]
        matrices = [np.array([[np.nan if s is None else float(label in s) for s in run] for run in sets])
                    for label in labels]
        domain = [0.0, 1.0]
    else:
        index = {label: k for k, label in enumerate(labels)}
        matrices = [np.array([[np.nan if c is None else float(index[c]) for c in run] for run in runs])]
        domain = [float(k) for k in range(len(labels))]
    n_units = matrices[0].shape[1]

    def alpha_of(columns) -> float:
        values = []
        for data in matrices:
            part = data[:, columns]
            observed = part[np.isfinite(part)]
            if (np.isfinite(part).sum(axis=0) >= 2).sum() == 0 or len(np.unique(observed)) < 2:
                continue  # undefined: nothing pairable, or one value only
            try:
                values.append(float(krippendorff.alpha(reliability_data=part, value_domain=domain,
                                                       level_of_measurement="nominal")))
            except (ValueError, ZeroDivisionError):
                continue
        return float(np.mean(values)) if values else math.nan

    point = alpha_of(np.arange(n_units))
    rng = np.random.default_rng(seed)
    draws = np.array([alpha_of(rng.integers(0, n_units, n_units)) for _ in range(n_boot)]) if n_units else np.array([])
    draws = draws[np.isfinite(draws)]
    tail = (1 - level) / 2
    low, high = (float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))) if len(draws) else (None, None)
    complete = [j for j in range(n_units) if all(run[j] is not None for run in runs)]
    agree = [j for j in complete if len({run[j] for run in runs}) == 1]
    return {"alpha": None if not math.isfinite(point) else round(point, 4),
            "ci_low": None if low is None else round(low, 4), "ci_high": None if high is None else round(high, 4),
            "agreement": round(len(agree) / len(complete), 4) if complete else None,
            "runs": len(runs), "n_texts": n_units, "n_complete": len(complete), "n_boot": n_boot}


def generate_paraphrases(backend, instruction: str, n: int, seed: int = 0) -> list[str]:
    """``n`` paraphrases of ``instruction`` written by the model (sampling, one seed each);
    empty, repeated or runaway answers are left out, so fewer may come back."""
    found: list[str] = []
    for k in range(n):
        params = llm.GenerationParams(max_tokens=64, temperature=0.9, seed=seed + 101 + k, stop=("\n",))
        answer = backend.chat([prompting.conversation("You rewrite instructions.",
                                                      PARAPHRASE_REQUEST.format(instruction=instruction))], params)[0]
        text = answer.text.strip().strip('"').strip()
        if 10 <= len(text) <= 300 and text != instruction and text not in found:
            found.append(text)
    return found


def prompt_stability(backend, book: Codebook, texts: list[str], *, multi: bool, rows: list[int],
                     repeats: int = 3, temperature: float = 0.7, paraphrases: list[str] | None = None,
                     params: llm.GenerationParams, n_boot: int = 1000,
                     stage: Callable[[str], None] | None = None) -> StabilityReport:
    """Code ``texts[rows]`` ``repeats`` times with the run's prompt at ``temperature`` and once
    per paraphrase of its instruction at temperature 0, through ``backend`` (a loaded
    ServerLLM or LocalLLM); ``params`` are the coding run's generation settings (the
    temperature-0 run with the original instruction is then answered from the cache)."""
    labels = choices_of(book)
    original = MULTI_INSTRUCTION if multi else SINGLE_INSTRUCTION
    sampled = [texts[i] for i in rows]
    notes: list[str] = []
    runs: dict[str, list[str | None]] = {}
    unparsed: dict[str, int] = {}
    prompts: dict[str, str] = {}

    def code(name: str, instruction: str, run_params: llm.GenerationParams) -> None:
        if stage is not None:
            stage(f"Prompt stability: {name} ({len(sampled)} texts)")
        conversations = [conversation(codebook_prompt(book, multi, run_params.explain, instruction), t)
                         for t in sampled]
        _, parsed, _, _ = prompting.choose(backend, conversations, run_params, labels)
        runs[name] = [None if p is None else ";".join(p) if multi else p[0] for p in parsed]
        unparsed[name] = sum(p is None for p in parsed)

    intra = inter = None
    if repeats >= 2 and temperature > 0:
        names = []
        for k in range(repeats):
            name = f"repeat_{k + 1}"
            code(name, original, llm.GenerationParams(**{**params.key(), "temperature": temperature,
                                                         "seed": params.seed + 1 + k}))
            names.append(name)
        intra = {**alpha_with_interval([runs[n] for n in names], labels, multi, n_boot=n_boot, seed=params.seed),
                 "temperature": temperature, "seeds": [params.seed + 1 + k for k in range(repeats)]}
    else:
        notes.append("Intra-prompt check skipped: it needs at least 2 repeats at a temperature above 0 (at "
                     "temperature 0 every repeat gives the same answer by construction).")
    wordings = [p.strip() for p in (paraphrases or []) if p and p.strip() and p.strip() != original]
    if wordings:
        prompts["original"] = original
        code("original", original, params)
        for k, wording in enumerate(wordings):
            name = f"paraphrase_{k + 1}"
            prompts[name] = wording
            code(name, wording, params)
        inter = {**alpha_with_interval([runs[n] for n in prompts], labels, multi, n_boot=n_boot, seed=params.seed),
                 "temperature": params.temperature}
    else:
        notes.append("Inter-prompt check skipped: no paraphrase of the instruction was given.")
    return StabilityReport(rows=list(rows), runs=runs, prompts=prompts, intra=intra, inter=inter, multi_label=multi,
                           unparsed=unparsed, notes=notes)
