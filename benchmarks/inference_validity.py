"""Corrected shares on real human-labelled data: model-only vs corrected by a random hand-coded sample.

The offline models code every row of three public, human-labelled development files kept
outside the repository (``../shared/eval``; rows are read, never copied):

- TweetEval sentiment (validation): VADER through ``analysis.tasks.sentiment`` (offline
  backend, as ``benchmarks/validity.py`` runs it); codes negative / neutral / positive.
- GoEmotions, Ekman taxonomy (dev): the NRC lexicon through ``analysis.tasks.emotion``
  (offline backend), its label mapped to Ekman with ``validity.NRC_TO_EKMAN``; only the rows
  with a single gold label (a multi-label row has no single true code to count).
- AG News (dev): the offline coder (embedding zero-shot with ``benchmarks/agnews_codebook.json``,
  as ``benchmarks/coding_validity.py`` runs it).

The true share of each code is the share among all gold labels. For each hand-code sample
size, ``--runs`` seeded simple random samples of rows keep their gold label as the "hand
code" (the other rows' gold cell is empty), and ``analysis.inference.corrected_shares``
gives each code's share with a 95% interval, model-only and corrected. Reported per code:
bias (mean estimate minus the true share), coverage of the true share and mean interval width.

    python benchmarks/inference_validity.py [--runs 500] [--sizes 100 200 400]
        [--datasets tweeteval goemotions agnews] [--markdown docs/validity.md]

The model codes are cached under ``--cache`` (default /tmp/textlab-inference-validity), keyed
by the file's hash, so a re-run only repeats the sampling.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import OtherLoad, host_description, module_versions, package_version, write_section  # noqa: E402

from analysis.inference import corrected_shares  # noqa: E402

BEGIN, END = "<!-- inference_validity.py: begin -->", "<!-- inference_validity.py: end -->"
DATASETS = {  # key: (file, title, model)
    "tweeteval": ("sentiment_tweeteval_val.csv", "TweetEval sentiment (validation)", "VADER (offline sentiment)"),
    "goemotions": ("emotion_goemotions_ekman_dev.csv", "GoEmotions Ekman (dev), single-label rows",
                   "NRC lexicon (offline emotion), mapped to Ekman"),
    "agnews": ("coding_agnews_dev.csv", "AG News (dev)", "offline coder (embedding zero-shot, written codebook)"),
}
ESTIMATORS = ("model_only", "corrected")
LEVEL = 0.95


# --------------------------------------------------------------------------- model codes


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def model_codes(key: str, path: Path, cache: Path) -> tuple[pd.Series, float, bool]:
    """The model's code of every row of the file (None where it gives none), the seconds it took
    and whether it came from the cache."""
    cached = cache / f"{key}-{_file_hash(path)}.csv"
    timing = cached.with_suffix(".seconds")
    if cached.is_file():
        codes = pd.read_csv(cached, dtype=str, keep_default_na=False)["pred"]
        seconds = float(timing.read_text()) if timing.is_file() else float("nan")
        return codes.where(codes != "", None), seconds, True
    started = time.perf_counter()
    if key == "tweeteval":
        from validity import read_eval_csv, run_sentiment

        frame, _ = run_sentiment(read_eval_csv(path, ("text", "label"))["text"].tolist())
        pred = [v if isinstance(v, str) else None for v in frame["sentiment_label"]]
    elif key == "goemotions":
        from validity import NRC_TO_EKMAN, read_eval_csv, run_emotion

        frame, _ = run_emotion(read_eval_csv(path, ("text", "labels"))["text"].tolist())
        pred = [NRC_TO_EKMAN[v] if isinstance(v, str) else None for v in frame["emotion_label"]]
    else:
        from coding_validity import zero_shot

        from analysis.codebook import read_codebook
        from analysis.embeddings import Embedder

        data = pd.read_csv(path)
        book = read_codebook(ROOT / "benchmarks" / "agnews_codebook.json")
        embedder = Embedder("all-minilm-l6-v2", device="cpu", cache_dir=cache / "embeddings")
        pred = zero_shot(book, embedder.encode(data["text"].astype(str).tolist()), embedder)
    seconds = time.perf_counter() - started
    cache.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"pred": [p or "" for p in pred]}).to_csv(cached, index=False)
    timing.write_text(f"{seconds:.1f}")
    return pd.Series(pred, dtype=object), seconds, False


def load(key: str, eval_dir: Path, cache: Path) -> dict:
    """Model and gold code of each usable row, with counts of the rows left out and why."""
    name = DATASETS[key][0]
    path = eval_dir / name
    data = pd.read_csv(path, dtype=str, keep_default_na=False)
    gold = data["labels" if key == "goemotions" else "label"].str.strip()
    if key != "agnews":
        gold = gold.str.lower()
    pred, seconds, from_cache = model_codes(key, path, cache)
    if len(pred) != len(data):
        sys.exit(f"{key}: {len(pred)} model codes for {len(data)} rows (stale cache in {cache}? delete it)")
    multi = gold.str.contains(";", regex=False)
    no_pred = pred.isna().to_numpy()
    keep = ~multi.to_numpy() & ~no_pred & (gold != "").to_numpy()
    frame = pd.DataFrame({"pred": pred[keep].to_numpy(), "gold": gold[keep].to_numpy()})
    return {"key": key, "file": name, "rows": len(data), "multi": int(multi.sum()),
            "no_pred": int((no_pred & ~multi.to_numpy()).sum()), "frame": frame, "seconds": seconds,
            "cached": from_cache}


# --------------------------------------------------------------------------- simulation


def simulate(frame: pd.DataFrame, size: int, runs: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """One row per (run, estimator, code): estimate, ci_low, ci_high; and the true shares."""
    truth = frame["gold"].value_counts(normalize=True)
    codes = sorted(set(truth.index) | set(frame["pred"]))
    truth = truth.reindex(codes, fill_value=0.0)
    gold = frame["gold"].to_numpy(dtype=object)
    rng = np.random.default_rng(seed)
    found = []
    work = frame[["pred"]].copy()
    for run in range(runs):
        cells = np.full(len(frame), "", dtype=object)
        sample = rng.choice(len(frame), size, replace=False)
        cells[sample] = gold[sample]
        work["gold"] = cells
        table, _ = corrected_shares(work, "pred", "gold", level=LEVEL, multi_label=False, estimand="share")
        table = table[table["group"] == ""].set_index(["estimator", "code"])
        cases = pd.Series(gold[sample]).value_counts()
        for estimator in ESTIMATORS:
            for code in codes:
                n_cases = int(cases.get(code, 0))
                if (estimator, code) in table.index:
                    r = table.loc[(estimator, code)]
                    found.append((run, estimator, code, n_cases, r["estimate"], r["ci_low"], r["ci_high"]))
                else:  # a code neither the model gave nor the sample holds: no row, counted as missing
                    found.append((run, estimator, code, n_cases, np.nan, np.nan, np.nan))
    columns = ["run", "estimator", "code", "cases", "estimate", "ci_low", "ci_high"]
    return pd.DataFrame(found, columns=columns), truth


def per_code(found: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    f = found.assign(true=found["code"].map(truth))
    f["covers"] = (f["ci_low"] <= f["true"]) & (f["true"] <= f["ci_high"])
    f["width"] = f["ci_high"] - f["ci_low"]
    f["no_case"] = f["cases"] == 0
    f["covers_with_case"] = f["covers"].where(~f["no_case"])
    f["zero_width"] = f["width"] <= 1e-9
    g = f.groupby(["estimator", "code"])
    out = pd.DataFrame({"true": g["true"].first(), "mean_estimate": g["estimate"].mean(),
                        "coverage": g["covers"].mean(), "width": g["width"].mean(),
                        "rmse": g.apply(lambda p: float(np.sqrt(np.mean((p["estimate"] - p["true"]) ** 2))),
                                        include_groups=False),
                        "missing": g["estimate"].apply(lambda s: int(s.isna().sum())),
                        "no_case": g["no_case"].mean(), "coverage_with_case": g["covers_with_case"].mean(),
                        "zero_width": g["zero_width"].mean()})
    out["bias"] = out["mean_estimate"] - out["true"]
    return out.reset_index()


def summarise(codes: pd.DataFrame) -> dict:
    out = {}
    for estimator in ESTIMATORS:
        c = codes[codes["estimator"] == estimator]
        out[estimator] = {"abs_bias": float(c["bias"].abs().mean()), "max_abs_bias": float(c["bias"].abs().max()),
                          "cov_min": float(c["coverage"].min()), "cov_mean": float(c["coverage"].mean()),
                          "width": float(c["width"].mean()), "rmse": float(c["rmse"].mean())}
    return out


# --------------------------------------------------------------------------- output


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_summary(results: list[dict], sizes: list[int], runs: int) -> None:
    print(f"\nCorrected shares on human-labelled data ({runs} random samples per size; 95% intervals)")
    print(f"{'dataset':<11}{'n':>5}  {'mean|bias| only/corr':>21}  {'coverage only min/mean':>23}  "
          f"{'coverage corr min/mean':>23}  {'width only/corr':>16}")
    for res in results:
        for size in sizes:
            s = res["summary"][size]
            mo, co = s["model_only"], s["corrected"]
            print(f"{res['key']:<11}{size:>5}  {mo['abs_bias']:>10.3f}/{co['abs_bias']:<10.3f}  "
                  f"{pct(mo['cov_min']):>11}/{pct(mo['cov_mean']):<11}  {pct(co['cov_min']):>11}/{pct(co['cov_mean']):<11}"
                  f"  {mo['width']:>7.3f}/{co['width']:<8.3f}")


def finite_note(results: list[dict], sizes: list[int]) -> str:
    """A sentence on the largest sampled fraction, when its corrected coverage is above nominal."""
    res, size = max(((r, s) for r in results for s in sizes), key=lambda rs: rs[1] / len(rs[0]["frame"]))
    cov = res["summary"][size]["corrected"]["cov_mean"]
    if cov <= LEVEL:
        return ""
    return (f" Where a large part of the file is hand-coded ({size:,} of {len(res['frame']):,} {res['key']} rows) "
            f"coverage is a little above 95% ({pct(cov)} on average): the true share here is that of the file "
            "itself, while prediction-powered inference treats the rows as a sample of a larger population (no "
            "finite-population correction), which errs on the safe side.")


def reading(results: list[dict], sizes: list[int], runs: int) -> list[str]:
    """Plain sentences from the figures (no hand-written numbers)."""
    lines = []
    low = LEVEL - 2 * np.sqrt(LEVEL * (1 - LEVEL) / runs)  # below this, more than Monte Carlo noise
    corr_cov = []
    for res in results:
        c = res["codes"][sizes[0]]
        only = c[c["estimator"] == "model_only"].set_index("code")
        covered = list(only.index[only["coverage"] >= 0.5])
        worst = only["bias"].abs().idxmax()
        text = f"**{res['title']}** ({res['model']}): the model-only interval "
        text += ("never covers the true share of any code" if not covered else
                 "covers the true share only of " + ", ".join(covered) + f" ({len(covered)} of {len(only)} codes)")
        text += (f"; it is furthest off for {worst} ({only.loc[worst, 'mean_estimate']:.3f} against "
                 f"{only.loc[worst, 'true']:.3f}, {only.loc[worst, 'bias']:+.3f}).")
        corr = {s: res["codes"][s][res["codes"][s]["estimator"] == "corrected"].set_index("code") for s in sizes}
        corr_cov += [v for c in corr.values() for v in c["coverage"]]
        text += (f" Corrected intervals cover the true share in "
                 f"{pct(min(c['coverage'].min() for c in corr.values()))}-"
                 f"{pct(max(c['coverage'].max() for c in corr.values()))} of the draws (per code, at "
                 f"{', '.join(map(str, sizes))} hand codes), with mean |bias| at most "
                 f"{max(c['bias'].abs().mean() for c in corr.values()):.3f}; their mean width falls from "
                 f"{corr[sizes[0]]['width'].mean():.3f} to {corr[sizes[-1]]['width'].mean():.3f} "
                 f"(about ±{corr[sizes[-1]]['width'].mean() / 2 * 100:.1f} points at {sizes[-1]}).")
        under = [(s, code, r["coverage"], s * r["true"]) for s, c in corr.items() for code, r in c.iterrows()
                 if r["coverage"] < low]
        if under:
            text += (" More than two Monte Carlo standard errors below 95%: "
                     + "; ".join(f"{code} at {s} ({pct(v)}, about {e:.0f} hand-coded case{'s' * (round(e) != 1)} "
                                 "expected)" for s, code, v, e in under) + ".")
        lines += [text, ""]
    cells = [(res["key"], s, c, r) for res in results for s in sizes
             for c, r in res["codes"][s][res["codes"][s]["estimator"] == "corrected"].set_index("code").iterrows()]
    short = [x for x in cells if x[3]["coverage"] < low]
    small = [x for x in short if x[3]["true"] < 0.10]
    other = [x for x in short if x[3]["true"] >= 0.10]
    rare_note = ""
    if short:
        rare_note = (f" {len(short)} of the {len(cells)} code-and-size cells fall more than two Monte Carlo standard "
                     "errors below 95% (by chance alone about one in 40 would).")
    if small:
        cases = [s * r["true"] for _, s, _, r in small]
        rare_note += (" " + ", ".join(f"{k} {c} at {s} ({pct(r['coverage'])})" for k, s, c, r in small)
                      + f" are codes with a true share under 10% and {min(cases):.0f}-{max(cases):.0f} "
                      "hand-coded cases expected, where the normal-approximation interval of a small share is "
                      "somewhat too narrow.")
        zero = [x for x in small if x[3]["zero_width"] > 0.01]
        if zero:
            k, s_, c, r = max(zero, key=lambda x: x[3]["zero_width"])
            rare_note += (f" Samples with no hand-coded case of a code got a zero-width interval (for {c} at {s_}: "
                          f"{pct(r['zero_width'])} of the draws), which cannot cover.")
    if other:
        rare_note += (" " + ", ".join(f"{k} {c} at {s} ({pct(r['coverage'])})" for k, s, c, r in other)
                      + f" {'is' if len(other) == 1 else 'are'} within "
                      f"{100 * max(LEVEL - r['coverage'] for *_, r in other):.1f} points of 95%.")
    if small:
        rare_note += " Code more texts, or read such shares with care, when a code has only a handful of hand-coded cases."
    lines += [
        f"Over all datasets, sizes and codes the corrected coverage runs from {pct(min(corr_cov))} to "
        f"{pct(max(corr_cov))} (mean {pct(float(np.mean(corr_cov)))}). The model-only estimate does not depend on "
        "the sample (it uses the model codes of every row), so per code its interval covers the true share "
        "always or never, and a model's systematic error leaves it narrow around the wrong value. The corrected "
        "interval pays for being right with width: it reflects the size of the hand-coded sample."
        + rare_note
        + finite_note(results, sizes), ""]
    return lines


def inference_version() -> str:
    """'analysis/inference.py at <commit>' (with ', edited' when the working copy differs), from git."""
    import subprocess

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("log", "-1", "--format=%h", "--", "analysis/inference.py")
    if not commit:
        return "analysis/inference.py (no git)"
    edited = bool(git("status", "--porcelain", "--", "analysis/inference.py"))
    return f"analysis/inference.py at {commit}" + (" (edited)" if edited else "")


def markdown(results: list[dict], args, elapsed: float, load_other: float | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sizes = args.sizes
    command = "python benchmarks/inference_validity.py"
    if args.runs != 500:
        command += f" --runs {args.runs}"
    if sizes != [100, 200, 400]:
        command += " --sizes " + " ".join(map(str, sizes))
    if args.datasets != list(DATASETS):
        command += " --datasets " + " ".join(args.datasets)
    command += " --markdown docs/validity.md"
    model_s = ("model codes" + (" computed on an earlier run and cached" if all(r["cached"] for r in results) else "")
               + ": " + ", ".join(f"{r['key']} {r['seconds']:.0f} s" + (" (cached)" if r["cached"] else "")
                                  for r in results))
    if all(r["cached"] for r in results):
        model_s = model_s.replace(" (cached)", "")
    load = f"; the machine is shared with other agents, whose processes kept {load_other:.1f} cores busy on average" \
        if load_other is not None else ""
    se = np.sqrt(LEVEL * (1 - LEVEL) / args.runs)
    lines = [BEGIN, "## Corrected shares on human-labelled data", "",
             f"Command: `{command}`  ",
             f"Machine: {host_description()}, no GPU; date: {stamp}; {elapsed:.0f} s in all ({model_s}){load}  ",
             f"Versions: {module_versions('numpy', 'pandas')}, ppi-python {package_version('ppi-python')}, "
             f"{inference_version()}, vaderSentiment {package_version('vaderSentiment')}, nrclex {package_version('nrclex')}, "
             f"sentence-transformers {package_version('sentence-transformers')}", "",
             "The offline models code every row of three public human-labelled development files "
             "(`../shared/eval`, not in the repository); the true share of each code is its share among all gold "
             f"labels. For each size, {args.runs} simple random samples (seed {args.seed}) keep their gold label as "
             "the hand code, the other rows' gold cell is empty, and `analysis.inference.corrected_shares` gives "
             "each code's share with a 95% interval: model-only (Wilson over the model codes of every row) and "
             "corrected (prediction-powered, PPI++ with power tuning, ppi-python). Bias is the mean estimate over "
             "the draws minus the true share, coverage the share of draws whose interval holds the true share "
             f"(Monte Carlo standard error about {100 * se:.1f} points at 95%), width the mean of high minus low.", ""]
    lines += ["| dataset | model | rows used | left out |", "|---|---|---:|---|"]
    for r in results:
        left = []
        if r["multi"]:
            left.append(f"{r['multi']:,} multi-label rows")
        if r["no_pred"]:
            left.append(f"{r['no_pred']:,} rows the model gave no code (empty text)")
        lines.append(f"| {r['title']} | {r['model']} | {len(r['frame']):,} of {r['rows']:,} | "
                     f"{'; '.join(left) or 'none'} |")
    lines += ["", "Per dataset and hand-code sample size, over the codes (only = model-only, corr = corrected):", "",
              "| dataset | codes | hand-coded | mean \\|bias\\| only | mean \\|bias\\| corr | coverage only (min / mean) "
              "| coverage corr (min / mean) | mean width only | mean width corr |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for size in sizes:
            s = r["summary"][size]
            mo, co = s["model_only"], s["corrected"]
            lines.append(f"| {r['key']} | {len(r['truth'])} | {size} | {mo['abs_bias']:.3f} | {co['abs_bias']:.3f} | "
                         f"{pct(mo['cov_min'])} / {pct(mo['cov_mean'])} | **{pct(co['cov_min'])} / "
                         f"{pct(co['cov_mean'])}** | {mo['width']:.3f} | {co['width']:.3f} |")
    size = args.table_size if args.table_size in sizes else sizes[len(sizes) // 2]
    lines += ["", f"Per code, {size} hand codes:", "",
              "| dataset | code | true share | expected hand-coded cases | draws with no case | model-only estimate "
              "| model-only covers | corrected bias | corrected coverage | corrected coverage, draws with a case | "
              "corrected width | corrected RMSE |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        c = r["codes"][size].set_index(["estimator", "code"])
        for code in r["truth"].index:
            mo, co = c.loc[("model_only", code)], c.loc[("corrected", code)]
            lines.append(f"| {r['key']} | {code} | {mo['true']:.3f} | {size * mo['true']:.1f} | {pct(co['no_case'])} | "
                         f"{mo['mean_estimate']:.3f} | {pct(mo['coverage'])} | {co['bias']:+.4f} | "
                         f"**{pct(co['coverage'])}** | {pct(co['coverage_with_case'])} | {co['width']:.3f} | "
                         f"{co['rmse']:.3f} |")
    missing = sum(int(r["codes"][s]["missing"].sum()) for r in results for s in sizes)
    lines += [""]
    if missing:
        lines += [f"{missing} estimates were missing (a code neither the model gave nor the sample held); they count "
                  "as not covering.", ""]
    lines += ["What it means:", ""] + reading(results, sizes, args.runs) + [END]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table-size", type=int, default=200, help="sample size of the per-code table")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/textlab-inference-validity"),
                    help="where the model codes are cached (outside the repository)")
    ap.add_argument("--markdown", type=Path, help="rewrite this script's section of a Markdown file")
    args = ap.parse_args(argv)

    started = time.monotonic()
    other = OtherLoad()
    results = []
    for index, key in enumerate(args.datasets):
        res = load(key, args.eval_dir, args.cache)
        res["title"], res["model"] = DATASETS[key][1:]
        took = f"from the cache ({res['seconds']:.0f} s when computed)" if res["cached"] else f"in {res['seconds']:.0f} s"
        print(f"{key}: {len(res['frame']):,} of {res['rows']:,} rows used; model codes {took}", flush=True)
        too_big = [s for s in args.sizes if s >= len(res["frame"])]
        if too_big:
            sys.exit(f"{key}: sample size(s) {too_big} not below the {len(res['frame'])} rows")
        res["codes"], res["summary"] = {}, {}
        for size in args.sizes:
            t = time.monotonic()
            found, truth = simulate(res["frame"], size, args.runs, seed=args.seed * 1_000_003 + 1000 * index + size)
            res["truth"] = truth
            res["codes"][size] = per_code(found, truth)
            res["summary"][size] = summarise(res["codes"][size])
            s, c = res["summary"][size], res["codes"][size]
            print(f"  {size:>4} hand codes: corrected coverage {pct(s['corrected']['cov_min'])}-"
                  f"{pct(c[c['estimator'] == 'corrected']['coverage'].max())}, "
                  f"model-only {pct(s['model_only']['cov_mean'])} on average ({time.monotonic() - t:.0f} s)",
                  flush=True)
        results.append(res)
    elapsed = time.monotonic() - started
    print_summary(results, args.sizes, args.runs)
    print(f"\n{elapsed:.0f} s in all")
    if args.markdown:
        write_section(args.markdown, BEGIN, END, markdown(results, args, elapsed, other.cores()))
        print(f"wrote the section of {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
