"""Validity of codebook coding with a generative language model (``backend="llm"``) on AG News.

Data: the development split in ``../shared/eval/coding_agnews_dev.csv`` (3,800 rows, four
balanced codes), read for evaluation only. A seeded sample of ``--n`` rows (equal per code,
``analysis.validation.stratified_sample``) is coded with the written codebook
``benchmarks/agnews_codebook.json`` through the task layer (``analysis.tasks.execute`` with
``CodingConfig(backend="llm")``, the path ``coding.run`` and the app take; the execute path
also gives the row flags and the manifest description):

1. The embedded default: SmolLM2-135M-Instruct in process (no ``llm_url``, no ``model``),
   exact label scoring (every label scored as the answer's continuation, so no answer can
   fall outside the codebook). With ``--llm-url URL --llm-model NAME`` a server model is
   coded too, on the same rows.
2. Scores against the human labels with ``analysis.validation.agreement``: macro-F1,
   accuracy and Cohen's kappa with 95% bootstrap intervals (1,000 resamples, seed 0),
   per-code F1, the share of texts given each code, parse failures (the ``unparsed`` row
   flag: no label after one retry) and wall time.
3. Reference points on the very same rows: always answering the most frequent code
   (majority baseline), the expectation of guessing uniformly at random (chance), and
   the offline default (embedding similarity, all-MiniLM-L6-v2, same codebook), with a
   paired bootstrap of the macro-F1 difference. The full-file embedding figures of
   ``docs/validity.md`` (``benchmarks/coding_validity.py``) are quoted from that file
   with their n.
4. Prompt sensitivity: the first ``--n-prompts`` rows of the sample are coded again with
   two paraphrases of the instruction sentence (``codebook_prompt(..., instruction=...)``
   put into a loaded ``LLMCoder``; the rest of the prompt is unchanged), and Krippendorff's
   alpha (nominal) is computed between the three prompts' codes (``agreement``'s group
   alpha with a bootstrap interval; ``analysis.validation._krippendorff`` as a check).
   A deliberately small check; the proper prompt-stability analysis is another module.

    python benchmarks/llm_validity.py [--n 400] [--n-prompts 200] [--markdown docs/validity.md]
    python benchmarks/llm_validity.py --llm-url http://127.0.0.1:8000/v1 --llm-model NAME [--n 3800]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import host_description, module_versions, package_version, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.codebook import read_codebook  # noqa: E402
from analysis.tasks import execute  # noqa: E402
from analysis.tasks.coding import TASK, CodingConfig  # noqa: E402
from analysis.tasks.coding.generative import SINGLE_INSTRUCTION, codebook_prompt  # noqa: E402
from analysis.validation import _krippendorff, agreement, stratified_sample  # noqa: E402

MARK_BEGIN = "<!-- llm_validity.py: begin -->"
MARK_END = "<!-- llm_validity.py: end -->"
EMBEDDING_BEGIN = "<!-- coding_validity.py: begin -->"
EMBEDDING_END = "<!-- coding_validity.py: end -->"

# Two paraphrases of SINGLE_INSTRUCTION ("Choose the one code that fits the text best."),
# written before any text was coded with them.
PARAPHRASES = (
    "Read the text and decide which single code describes it best.",
    "Which one of the codes above is the best fit for this text? Pick exactly one.",
)


# --------------------------------------------------------------------------- helpers


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def code_version() -> str:
    """The commit, and whether analysis/ has changes nobody committed (other engineers at work)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "analysis"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes in analysis/: " + ", ".join(
        line[3:] for line in dirty.splitlines()) + ")" if dirty else "")


def scored(pred: list, gold: list, labels: list[str]) -> dict:
    """Macro-F1, accuracy and kappa with intervals, per-code F1, predicted shares."""
    report = agreement(list(pred), list(gold), labels=labels, n_boot=1000, seed=0)
    s = report.summary
    main = s[s["comparison"] == report.main_comparison].set_index("metric")
    out = {m: (float(main.loc[m, "value"]), float(main.loc[m, "ci_low"]), float(main.loc[m, "ci_high"]))
           for m in ("macro_f1", "accuracy", "cohen_kappa")}
    out["f1"] = dict(zip(report.per_code["code"], report.per_code["f1"]))
    prev = report.prevalence[report.prevalence["source"] == "model"]
    out["share"] = dict(zip(prev["code"], prev["share"]))
    out["n"] = report.n_compared
    out["missing"] = report.n_missing
    return out


def chance(gold: list, labels: list[str]) -> tuple[float, float]:
    """Expected accuracy and macro-F1 of guessing each code with probability 1/k (independent
    of the text): per code, precision = its gold share, recall = 1/k."""
    k = len(labels)
    shares = np.array([np.mean(np.array(gold) == c) for c in labels])
    f1 = 2 * shares * (1 / k) / (shares + 1 / k)
    return 1 / k, float(f1.mean())


def paired_difference(pred_a, pred_b, gold, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """macro-F1(a) - macro-F1(b) on the same rows, with a paired percentile bootstrap."""
    from sklearn.metrics import f1_score

    a, b, g = (np.array(x, dtype=object) for x in (pred_a, pred_b, gold))
    a = np.where(pd.isna(a), "(none)", a)
    b = np.where(pd.isna(b), "(none)", b)
    labels = sorted(set(g))

    def diff(idx):
        return (f1_score(g[idx], a[idx], labels=labels, average="macro", zero_division=0)
                - f1_score(g[idx], b[idx], labels=labels, average="macro", zero_division=0))

    rng = np.random.default_rng(seed)
    draws = [diff(rng.integers(0, len(g), len(g))) for _ in range(n_boot)]
    return diff(np.arange(len(g))), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def embedding_figures(doc: Path) -> tuple[list[str], str]:
    """The full-file embedding rows of docs/validity.md (coding_validity.py's section), as written."""
    if not doc.exists():
        return [], ""
    text = doc.read_text("utf-8")
    if EMBEDDING_BEGIN not in text:
        return [], ""
    section = text[text.index(EMBEDDING_BEGIN):text.index(EMBEDDING_END)]
    rows = [line for line in section.splitlines() if re.match(r"\| (zero-shot|\d+ \|)", line)]
    when = re.search(r"on (\d{4}-\d\d-\d\d)", section)
    return rows, when.group(1) if when else "?"


def code(texts: list[str], settings: dict) -> dict:
    """One coding run through the task layer; the codes, flags, description and timing."""
    config = CodingConfig.from_dict(settings)
    load_before = load_average()
    t = time.perf_counter()
    done = execute.execute(TASK, texts, execute.MemoryStore(), config=config)
    wall = time.perf_counter() - t
    return {"pred": done.result["code_label"].tolist(), "wall": wall, "flags": done.row_flags,
            "description": done.description, "load": (load_before, load_average()), "result": done.result}


def embedding_zero_shot(book, texts: list[str], cache: str) -> tuple[list[str], bool]:
    """The offline default on the same rows (what coding_validity.py scores on the whole file), and
    whether every vector came from the embedding cache of an earlier run."""
    from analysis.embeddings import Embedder
    from analysis.tasks.coding import SimilarityCoder

    with Embedder("all-minilm-l6-v2", device="cpu", cache_dir=cache) as embedder:
        vectors = embedder.encode(texts)
        coder = SimilarityCoder(CodingConfig(), book, "benchmark", None, embedder=embedder)
        probs, _ = coder.scores(vectors)
        cached = embedder.cache_hits == len(texts)
    return list(np.array(book.labels, dtype=object)[probs.argmax(axis=1)]), cached


def prompt_sensitivity(settings: dict, book, texts: list[str], default_codes: list,
                       default_frame: pd.DataFrame) -> dict:
    """The same texts coded with the two paraphrased instructions; alpha across the three prompts."""
    config = CodingConfig.from_dict(settings)
    TASK.validate(config)
    coder = TASK.load(config, None)  # the LLMCoder the run uses; only its instruction sentence changes
    runs = {"default": list(default_codes)}
    frames = {"default": default_frame}
    times = {}
    try:
        for k, sentence in enumerate(PARAPHRASES, 1):
            coder.instructions = codebook_prompt(book, False, instruction=sentence)
            t = time.perf_counter()
            frame = coder.predict(texts)
            times[f"paraphrase {k}"] = time.perf_counter() - t
            runs[f"paraphrase {k}"] = frame["code_label"].tolist()
            frames[f"paraphrase {k}"] = frame
    finally:
        coder.close()
    # Outside the alpha: the default instruction with the codes listed in reverse order (a
    # codebook is an ordered list, and the order is not meant to matter).
    reversed_book = dict(settings["codebook"], codes=list(reversed(settings["codebook"]["codes"])))
    order_coder = TASK.load(CodingConfig.from_dict({**settings, "codebook": reversed_book}), None)
    try:
        t = time.perf_counter()
        order_frame = order_coder.predict(texts)
        times["codes reversed"] = time.perf_counter() - t
    finally:
        order_coder.close()
    order_codes = order_frame["code_label"].tolist()
    alpha, alpha_check, note = three_prompt_alpha(runs, book.labels)
    # The same for the prior-corrected codes (see ``signal``), each prompt corrected by its own means.
    corrected = {k: corrected_codes(f, book.labels) for k, f in frames.items()}
    corrected_alpha = three_prompt_alpha(corrected, book.labels) if all(corrected.values()) else None
    names = list(runs)
    pairs = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs[f"{a} / {b}"] = float(np.mean([x == y for x, y in zip(runs[a], runs[b])]))
    all_same = float(np.mean([len({r[i] for r in runs.values()}) == 1 for i in range(len(texts))]))
    return {"runs": runs, "times": times, "alpha": alpha, "alpha_check": alpha_check, "alpha_note": note,
            "pairs": pairs, "all_same": all_same, "corrected_alpha": corrected_alpha, "order_codes": order_codes,
            "order_agree": float(np.mean([x == y for x, y in zip(order_codes, runs["default"])]))}


def three_prompt_alpha(runs: dict[str, list], labels: list[str]):
    """Krippendorff's alpha (nominal) between the prompts' codes: agreement's group alpha with its
    bootstrap interval, and ``_krippendorff`` on the same codes as a check."""
    index = {c: i for i, c in enumerate(labels)}
    matrix = np.array([[index.get(c, np.nan) if isinstance(c, str) else np.nan for c in codes]
                       for codes in runs.values()], dtype=float)
    first, *others = runs
    report = agreement(runs[first], {k: runs[k] for k in others}, labels=labels, n_boot=1000, seed=0,
                       pred_name=first)
    s = report.summary
    group = s[(s["comparison"] == f"{first} + coders") & (s["metric"] == "krippendorff_alpha")].iloc[0]
    return (float(group["value"]), float(group["ci_low"]), float(group["ci_high"])), _krippendorff(matrix), \
        group["note"]


def corrected_codes(result: pd.DataFrame, labels: list[str]) -> list | None:
    """Argmax of each code_<label> probability divided by its mean over the rows (None without them)."""
    from analysis.textutil import slug

    columns = [f"code_{slug(c)}" for c in labels]
    if not all(c in result.columns for c in columns):
        return None
    probs = result[columns].to_numpy(dtype=float)
    return list(np.array(labels, dtype=object)[np.nanargmax(probs / np.nanmean(probs, axis=0, keepdims=True),
                                                           axis=1)])


def signal(result: pd.DataFrame, gold: list, labels: list[str]) -> dict:
    """Is there a signal under the bias? Per code, the one-vs-rest AUC of its probability column
    (``code_<slug>``), and the codes after dividing each column by its mean over the sample
    (a label-free prior correction, "contextual calibration" style; a diagnostic, not a Textlab setting)."""
    from sklearn.metrics import roc_auc_score

    from analysis.textutil import slug

    columns = [f"code_{slug(c)}" for c in labels]
    if not all(c in result.columns for c in columns):
        return {}
    probs = result[columns].to_numpy(dtype=float)
    g = np.array(gold, dtype=object)
    auc = {c: float(roc_auc_score(g == c, probs[:, j])) for j, c in enumerate(labels)}
    pred = corrected_codes(result, labels)
    return {"auc": auc, "corrected": scored(pred, gold, labels), "mean_prob": dict(zip(labels, probs.mean(axis=0)))}


def free_generation(settings: dict, book, texts: list[str]) -> dict:
    """The same prompt answered by free generation (no label scoring), parsed strictly with one
    retry (``prompting.choose``): what a backend without constrained answers gets from this model."""
    from analysis.llm import GenerationParams
    from analysis.tasks import prompting
    from analysis.tasks.coding.generative import choices_of, conversation

    config = CodingConfig.from_dict(settings)
    TASK.validate(config)
    coder = TASK.load(config, None)
    labels = choices_of(book)
    params = GenerationParams(max_tokens=prompting.max_tokens(config), temperature=0.0, seed=config.seed)
    try:
        t = time.perf_counter()
        answers, parsed, _, retried = prompting.choose(coder.backend, [conversation(coder.instructions, x)
                                                                       for x in texts], params, labels)
        wall = time.perf_counter() - t
    finally:
        coder.close()
    return {"n": len(texts), "unparsed": sum(p is None for p in parsed), "retried": retried, "wall": wall,
            "codes": [None if p is None else p[0] for p in parsed], "examples": [a.text for a in answers[:3]]}


def fmt(triple) -> str:
    value, lo, hi = triple
    if not np.isfinite(value):
        return "undefined"
    return f"**{value:.3f}** [{lo:.3f}, {hi:.3f}]"


def pct(v: float) -> str:
    """A share in per cent; near 0 or 1 with a decimal (99.5% is not "100%")."""
    return f"{v:.1%}" if (0 < v < 0.01 or 0.99 < v < 1) else f"{v:.0%}"


def shares_text(share: dict, labels: list[str]) -> str:
    return ", ".join(f"{c} {pct(share.get(c, 0.0))}" for c in labels)


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval-dir", default=str(ROOT.parent / "shared" / "eval"))
    ap.add_argument("--n", type=int, default=400, help="rows of the seeded sample, equal per code (default 400)")
    ap.add_argument("--n-prompts", type=int, default=200,
                    help="rows of that sample coded with the two paraphrases too (default 200; 0: skip)")
    ap.add_argument("--free-n", type=int, default=16,
                    help="rows of the sample answered by free generation too, embedded model (default 16; 0: skip)")
    ap.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    ap.add_argument("--device", default="cpu", help="device of the in-process model (default cpu)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core); on a "
                    "machine shared with other busy processes 1 can be several times faster")
    ap.add_argument("--llm-url", help="also code with a model on this OpenAI-compatible server")
    ap.add_argument("--llm-model", help="the server model's name (with --llm-url)")
    ap.add_argument("--allow-remote", action="store_true", help="allow a server outside this machine's network")
    ap.add_argument("--no-embedded", action="store_true", help="skip the embedded model (server only)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "textlab-bench-embeddings"),
                    help="embedding cache of the offline comparison")
    ap.add_argument("--markdown", help="rewrite this script's section of a Markdown file (docs/validity.md)")
    args = ap.parse_args(argv)
    if bool(args.llm_url) != bool(args.llm_model):
        ap.error("--llm-url and --llm-model go together")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    started = datetime.now().astimezone()
    t_script = time.perf_counter()
    data = pd.read_csv(Path(args.eval_dir) / "coding_agnews_dev.csv")
    book = read_codebook(ROOT / "benchmarks" / "agnews_codebook.json")
    sample = stratified_sample(data, "label", args.n, allocation="equal", seed=args.seed)
    texts = sample["text"].astype(str).tolist()
    gold = sample["label"].astype(str).tolist()
    labels = list(book.labels)
    print(f"{len(texts)} rows ({', '.join(f'{c} {gold.count(c)}' for c in labels)}); load average {load_average()}",
          flush=True)

    models = []
    base = {"codebook": book.to_dict(), "backend": "llm", "device": args.device}
    if not args.no_embedded:
        models.append(("SmolLM2-135M-Instruct, embedded default (in process)", dict(base)))
    if args.llm_url:
        models.append((f"{args.llm_model} (server)", {**base, "llm_url": args.llm_url, "llm_model": args.llm_model,
                                                      "allow_remote": args.allow_remote}))
    results = []
    for name, settings in models:
        run = code(texts, settings)
        r = scored(run["pred"], gold, labels)
        unparsed = int(run["flags"].get("unparsed", 0))
        retried = run["description"].get("retried_answers", 0)
        print(f"{name}: macro-F1 {r['macro_f1'][0]:.3f} [{r['macro_f1'][1]:.3f}, {r['macro_f1'][2]:.3f}]  accuracy "
              f"{r['accuracy'][0]:.3f}  kappa {r['cohen_kappa'][0]:.3f}  unparsed {unparsed}  retried {retried}  "
              f"{run['wall']:.0f} s ({len(texts) / run['wall']:.2f} texts/s; load {run['load'][0]} -> "
              f"{run['load'][1]})", flush=True)
        print(f"  codes given: {shares_text(r['share'], labels)}", flush=True)
        sensitivity = None
        if args.n_prompts:
            m = min(args.n_prompts, len(texts))
            load_before = load_average()
            sensitivity = prompt_sensitivity(settings, book, texts[:m], run["pred"][:m],
                                             run["result"].iloc[:m].reset_index(drop=True))
            sensitivity["load"] = (load_before, load_average())
            sensitivity["scores"] = {k: scored(v, gold[:m], labels) for k, v in sensitivity["runs"].items()}
            sensitivity["order_score"] = scored(sensitivity["order_codes"], gold[:m], labels)
            print(f"  prompt sensitivity on {m} rows: alpha {sensitivity['alpha'][0]:.3f} (check "
                  f"{sensitivity['alpha_check']:.3f}); pairs {sensitivity['pairs']}; all three agree on "
                  f"{sensitivity['all_same']:.0%}", flush=True)
        run["signal"] = signal(run["result"], gold, labels)
        if run["signal"]:
            print(f"  AUC per code {run['signal']['auc']}; prior-corrected macro-F1 "
                  f"{run['signal']['corrected']['macro_f1'][0]:.3f}", flush=True)
        run["free"] = None
        if args.free_n and "llm_url" not in settings:
            load_before = load_average()
            run["free"] = free_generation(settings, book, texts[:args.free_n])
            run["free"]["load"] = (load_before, load_average())
            print(f"  free generation on {args.free_n} rows: {run['free']['unparsed']} unparsed after "
                  f"{run['free']['retried']} retries ({run['free']['wall']:.0f} s); e.g. {run['free']['examples'][:2]}",
                  flush=True)
        results.append((name, settings, run, r, unparsed, retried, sensitivity))

    # Reference points on the same rows.
    majority = max(labels, key=gold.count)  # ties (a balanced sample): the codebook's first code
    r_major = scored([majority] * len(gold), gold, labels)
    chance_acc, chance_f1 = chance(gold, labels)
    t = time.perf_counter()
    emb, emb_cached = embedding_zero_shot(book, texts, args.cache)
    emb_s = time.perf_counter() - t
    emb_time = f"{emb_s:.0f} s" + (" (vectors from the embedding cache of an earlier run)" if emb_cached else "")
    r_emb = scored(emb, gold, labels)
    print(f"embedding zero-shot, same rows: macro-F1 {r_emb['macro_f1'][0]:.3f}  ({emb_s:.0f} s)", flush=True)
    diffs = [paired_difference(run["pred"], emb, gold) for _, _, run, *_ in results]
    doc_rows, doc_date = embedding_figures(ROOT / "docs" / "validity.md")
    total_s = time.perf_counter() - t_script
    print(f"whole script {total_s:.0f} s; load average {load_average()}")

    if not args.markdown:
        return 0
    command = "python benchmarks/llm_validity.py " + " ".join(sys.argv[1:])
    lines = [
        MARK_BEGIN,
        "## Generative LLM coding (AG News)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {host_description(ram=True)}, CPU only ({platform.system()} {platform.release()}); **shared** with "
        "other engineers' processes (tests, app runs) during the run, so the times are slower than on an idle "
        "machine: load average (1, 5, 15 min) is given next to each time  ",
        f"Date: {started.strftime('%Y-%m-%d %H:%M %Z')}; code: {code_version()}  ",
        f"Torch CPU threads: {threads}" + (" (`--threads`; torch's default is one per core)" if args.threads else
                                            " (torch's default)") + "  ",
        f"Versions: {module_versions('torch', 'transformers', 'sklearn', labels={'sklearn': 'scikit-learn'})}, "
        f"krippendorff {package_version('krippendorff')}  ",
        f"Data: `../shared/eval/coding_agnews_dev.csv` (development split, never copied into this repository): a "
        f"sample of {len(texts)} rows, {len(texts) // len(labels)} per code (`stratified_sample(..., 'label', "
        f"{args.n}, allocation='equal', seed={args.seed})`). Codebook: `benchmarks/agnews_codebook.json` (the same "
        "written codebook as the embedding figures above). Intervals: 1,000 bootstrap resamples of the rows "
        f"(seed 0), 95% percentile. Whole script: {total_s / 60:.1f} min.",
        "",
        "Every model runs through the task layer (`analysis.tasks.execute` with `CodingConfig(backend=\"llm\")`, "
        "the path of `coding.run`, the CLI and the app): the codebook prompt (definitions, include and exclude "
        "notes, the first three examples of each code, \"Choose the one code that fits the text best.\" and the "
        "JSON answer format) and temperature 0. In process, each label is scored as the continuation of the "
        "prompt (exact label scoring), so no answer can fall outside the codebook; a server model gets a JSON "
        "schema of the labels and its answers are parsed strictly (one retry, then `unparsed`).",
        "",
        "| coder (same rows) | n | macro-F1 [95% CI] | accuracy [95% CI] | Cohen's kappa [95% CI] | unparsed | "
        "wall time (load average before -> after) |",
        "|---|---:|---|---|---|---:|---|",
    ]
    for name, settings, run, r, unparsed, retried, _ in results:
        lines.append(f"| {name} | {r['n']} | {fmt(r['macro_f1'])} | {fmt(r['accuracy'])[0:]} | "
                     f"{fmt(r['cohen_kappa'])} | {unparsed} (retried {retried}) | {run['wall']:.0f} s, "
                     f"{len(texts) / run['wall']:.2f} texts/s ({run['load'][0]} -> {run['load'][1]}) |")
    lines += [
        f"| offline default: embedding similarity (all-MiniLM-L6-v2), same codebook | {r_emb['n']} | "
        f"{fmt(r_emb['macro_f1'])} | {fmt(r_emb['accuracy'])} | {fmt(r_emb['cohen_kappa'])} | 0 | {emb_time} |",
        f"| always \"{majority}\" (majority baseline; the sample is balanced, so the first code) | {r_major['n']} | "
        f"{r_major['macro_f1'][0]:.3f} | {r_major['accuracy'][0]:.3f} | 0 | - | - |",
        f"| guessing each code with probability 1/{len(labels)} (chance, expected) | {len(gold)} | {chance_f1:.3f} | "
        f"{chance_acc:.3f} | 0 | - | - |",
        "",
        "Per-code F1 and the share of texts given each code (gold: 25% each):",
        "",
        "| coder | " + " | ".join(f"F1 {c}" for c in labels) + " | codes given |",
        "|---|" + "---:|" * len(labels) + "---|",
    ]
    for name, _, _, r, *_ in results:
        lines.append(f"| {name} | " + " | ".join(f"{r['f1'].get(c, float('nan')):.3f}" for c in labels)
                     + f" | {shares_text(r['share'], labels)} |")
    lines.append("| offline default (embedding similarity) | " + " | ".join(f"{r_emb['f1'].get(c, float('nan')):.3f}"
                                                                         for c in labels)
                 + f" | {shares_text(r_emb['share'], labels)} |")
    lines.append("")
    for (name, *_), d in zip(results, diffs):
        lines.append(f"Paired macro-F1 difference on the same {len(gold)} rows, {name} minus the embedding "
                     f"zero-shot: **{d[0]:+.3f}** [{d[1]:+.3f}, {d[2]:+.3f}] (paired bootstrap, 1,000 resamples).")
    if doc_rows:
        lines += [
            "",
            f"For comparison, the embedding figures already in this file (`benchmarks/coding_validity.py`, "
            f"{doc_date}), quoted as written there. They are on the **whole** file (zero-shot: n = 3,800; few-shot: "
            "n = 3,800 minus the coded rows, i.e. 3,768 to 3,544 scored rows, mean of five draws), not on this "
            "sample, so compare the LLM with them through the same-rows embedding row above:",
            "",
            "| embedding method (whole file) | figures |",
            "|---|---|",
        ]
        for row in doc_rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            if cells[0].startswith("zero-shot"):
                lines.append(f"| {cells[0]} (n = 3,800) | macro-F1 {cells[1]}, accuracy {cells[2]} |")
            else:
                n = int(cells[0])
                lines.append(f"| few-shot, logistic regression, {n} coded rows per code (n = {3800 - 4 * n:,} "
                             f"scored) | macro-F1 {cells[1]} (min {cells[2]}, max {cells[3]}) |")
    for name, settings, run, r, unparsed, retried, sens in results:
        if sens is None:
            continue
        m = len(sens["runs"]["default"])
        lines += [
            "",
            f"### Prompt sensitivity: {name}",
            "",
            f"The first {m} rows of the sample, coded with the default instruction sentence and two paraphrases "
            "(the rest of the prompt unchanged; a loaded `LLMCoder` with `codebook_prompt(book, False, "
            "instruction=...)`). Krippendorff's alpha (nominal) between the three prompts' codes: "
            + (f"{fmt(sens['alpha'])}" if np.isfinite(sens["alpha"][0]) else f"{sens['alpha_note'] or 'undefined'}")
            + f" (`analysis.validation._krippendorff` on the same codes: {sens['alpha_check']:.3f}); "
            f"all three prompts give the same code to {sens['all_same']:.0%} of the rows. Load average "
            f"{sens['load'][0]} -> {sens['load'][1]}.",
            "",
            "| instruction sentence | macro-F1 [95% CI] vs human | accuracy | codes given | agrees with default | "
            "time |",
            "|---|---|---:|---|---:|---:|",
        ]
        sentences = {"default": SINGLE_INSTRUCTION, "paraphrase 1": PARAPHRASES[0], "paraphrase 2": PARAPHRASES[1]}
        for key, codes in sens["runs"].items():
            s = sens["scores"][key]
            agree = "-" if key == "default" else f"{sens['pairs'][f'default / {key}']:.0%}"
            took = f"{run['wall'] * m / len(texts):.0f} s (share of the run)" if key == "default" \
                else f"{sens['times'][key]:.0f} s"
            lines.append(f"| {key}: \"{sentences[key]}\" | {fmt(s['macro_f1'])} | {s['accuracy'][0]:.3f} | "
                         f"{shares_text(s['share'], labels)} | {agree} | {took} |")
        o = sens["order_score"]
        lines.append(f"| not in the alpha: the default sentence with the codes listed in reverse order "
                     f"({', '.join(reversed(labels))}) | {fmt(o['macro_f1'])} | {o['accuracy'][0]:.3f} | "
                     f"{shares_text(o['share'], labels)} | {sens['order_agree']:.0%} | "
                     f"{sens['times']['codes reversed']:.0f} s |")
        lines.append("")
        lines.append(f"Paraphrase 1 / paraphrase 2 agree on {sens['pairs']['paraphrase 1 / paraphrase 2']:.0%} of "
                     "the rows." + ("" if np.isfinite(sens["alpha"][0]) else
                                    " With one code for every row under every prompt, alpha has no variation to "
                                    "measure: the prompts agree because the model answers the same thing whatever "
                                    "it reads, which is stability of a constant, not reliability."))
        ca = sens.get("corrected_alpha")
        if ca:
            lines.append("")
            lines.append("The same three prompts after the label-free prior correction of the next section (each "
                         "prompt's probabilities divided by their own means): Krippendorff's alpha "
                         + (fmt(ca[0]) if np.isfinite(ca[0][0]) else (ca[2] or "undefined"))
                         + f" (`_krippendorff`: {ca[1]:.3f}; 1 would mean the wording changes none of these "
                         "codes): what the wording does to the model's probabilities beneath its constant top code.")
    for name, settings, run, r, *_ in results:
        sig, free = run.get("signal"), run.get("free")
        if not sig and not free:
            continue
        lines += ["", f"### Where the errors come from: {name}", ""]
        if sig:
            lines.append(
                "Signal under the bias (diagnostics, not Textlab settings): the one-vs-rest AUC of each "
                "`code_<label>` probability against the human code ("
                + ", ".join(f"{c} {v:.2f}" for c, v in sig["auc"].items())
                + "; 0.5 is no signal), mean probability given to each code ("
                + ", ".join(f"{c} {v:.2f}" for c, v in sig["mean_prob"].items())
                + "), and the codes after dividing each probability column by its mean over the sample (a "
                "label-free prior correction, fitted on these rows' texts, no human codes): macro-F1 "
                f"{fmt(sig['corrected']['macro_f1'])}, codes given {shares_text(sig['corrected']['share'], labels)}.")
        if free:
            lines += ["", f"Free generation instead of label scoring, the first {free['n']} rows (the same prompt, "
                      "greedy, max_tokens 32, parsed strictly with one retry by `prompting.choose`, as a server "
                      f"without JSON schemas would be): **{free['unparsed']} of {free['n']} unparsed** after "
                      f"{free['retried']} retries ({free['wall']:.0f} s; load {free['load'][0]} -> {free['load'][1]}). "
                      "First answers, verbatim: " + "; ".join(
                          "`" + " ".join(x.split())[:90].replace("`", "'") + "`" for x in free["examples"]) + "."]
    # What it means, from the figures above.
    lines += ["", "### What this means", ""]
    for name, settings, run, r, unparsed, retried, sens in results:
        f1 = r["macro_f1"][0]
        top = max(r["share"], key=r["share"].get)
        lines.append(
            f"- **{name}: macro-F1 {f1:.3f}, accuracy {r['accuracy'][0]:.3f}, kappa {r['cohen_kappa'][0]:.3f}**, "
            f"against {r_major['macro_f1'][0]:.3f} / {r_major['accuracy'][0]:.3f} for always answering "
            f"\"{majority}\" and {chance_f1:.3f} / {chance_acc:.3f} for guessing at random; it gives "
            f"\"{top}\" to {pct(r['share'][top])} of the texts. The offline default (embedding similarity) scores "
            f"{r_emb['macro_f1'][0]:.3f} on the same rows"
            + (f" and took {emb_time} instead of {run['wall']:.0f} s." if "llm_url" not in settings
               else "."))
    if any("llm_url" not in st for _, st, *_ in results):
        r0 = next(r for _, st, _, r, *_ in results if "llm_url" not in st)
        if r0["macro_f1"][2] < chance_f1:
            verdict = (": on these rows its macro-F1 is below that of guessing at random (the whole interval), "
                       "because it gives nearly every text the same code.")
        elif r0["macro_f1"][1] <= max(chance_f1, r_major["macro_f1"][0]):
            verdict = ": on these rows its codes are not distinguishable from guessing (the interval reaches chance)."
        else:
            verdict = (": its codes beat chance, but stay far below the offline default."
                       if r0["macro_f1"][0] < r_emb["macro_f1"][1] else ".")
        lines += [
            "- The embedded model is there to learn how LLM coding works (prompt, manifest, probabilities, "
            "validation) without a server, not to code a study" + verdict + " "
            "For real coding use a model server (`--llm-url URL --llm-model NAME`; a 7B-class instruct model or "
            "larger) and validate it with this script (`python benchmarks/llm_validity.py --llm-url URL "
            "--llm-model NAME --no-embedded`), or use the offline default or few-shot coding, which are far "
            "better here and faster.",
        ]
        sens0 = next((sn for _, st, *_, sn in results if "llm_url" not in st and sn), None)
        if sens0:
            d, o = sens0["scores"]["default"], sens0["order_score"]
            headline = ("The code order matters more than the wording." if sens0["order_agree"] < min(
                sens0["pairs"].values()) else "Wording and code order.")
            lines.append(
                f"- **{headline}** Paraphrasing the instruction sentence changed "
                f"{1 - min(sens0['pairs'].values()):.0%} of the codes; listing the same codes in reverse order "
                f"changed {1 - sens0['order_agree']:.0%} (macro-F1 {d['macro_f1'][0]:.3f} -> {o['macro_f1'][0]:.3f} "
                f"on the same {len(sens0['order_codes'])} rows)."
                + (" The answer depends on where a code sits in the prompt, not only on the text: a small model's "
                   "position bias." if sens0["order_agree"] < 0.9 else "")
                + " Check any model on both before trusting its codes (another order, another wording, then "
                "agreement with human codes).")
        free = next((run["free"] for _, st, run, *_ in results if run.get("free")), None)
        if free:
            lines.append(
                "- Exact label scoring makes every answer a codebook label (0 unparsed), but that is a guarantee "
                f"about the format, not the content: left to generate freely, the same model left {free['unparsed']} "
                f"of {free['n']} answers without a label (see the free-generation check above).")
    lines += ["", MARK_END]
    write_section(Path(args.markdown), MARK_BEGIN, MARK_END, "\n".join(lines), tidy=True)
    print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
