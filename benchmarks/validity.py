"""Validity of the offline sentiment (VADER) and emotion (NRC) backends against human judgement.

Scores the defaults exactly as the app and the CLI run them (``analysis.tasks.sentiment``
and ``analysis.tasks.emotion`` with ``backend="offline"``) on public human-labelled
development data kept outside the repository (``../shared/eval`` by default; the rows are
read, never copied):

1. VADER tweets and movie-review snippets (Hutto & Gilbert 2014): Pearson r of
   ``sentiment_score`` with the mean human rating, 95% bootstrap CI, for the default
   ``multi_sentence="auto"`` and for ``"whole"`` and ``"sentences"``; plus pseudo-documents
   (k snippets joined, gold = mean of their ratings) to show what the rules do on long texts.
2. TweetEval sentiment validation split: macro-recall (the TweetEval metric), accuracy,
   macro-F1, per-class recall, confusion matrix.
3. GoEmotions (Ekman taxonomy) dev split: NRC label mapped to Ekman; macro-F1, accuracy,
   per-class F1, under the "any gold label" and the stricter "first gold label" rules.

    python benchmarks/validity.py [--eval-dir ../shared/eval] [--markdown docs/validity.md]

With ``--markdown`` the section between the ``validity.py`` markers of that file is
rewritten (created the first time), so re-running replaces the figures instead of
appending them. Runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from _common import package_version, write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.tasks import emotion, sentiment  # noqa: E402
from analysis.tasks.base import cpu_count  # noqa: E402

RESAMPLES = 1000
SEED = 0

# Files (exact name first; else the only file matching the pattern, so that a held-out
# split with another suffix can be scored with the same script).
FILES = {
    "tweets": ("sentiment_vader_tweets.csv", "sentiment_vader_tweets*.csv"),
    "movies": ("sentiment_vader_movieReviewSnippets.csv", "sentiment_vader_movieReviewSnippets*.csv"),
    "tweeteval": ("sentiment_tweeteval_val.csv", "sentiment_tweeteval_*.csv"),
    "goemotions": ("emotion_goemotions_ekman_dev.csv", "emotion_goemotions_ekman_*.csv"),
}

# Published anchors (see ../shared/eval/README.md).
VADER_PACKAGE_R = {"tweets": (0.872, 4200), "movies": (0.427, 10605)}  # vaderSentiment 3.3.2, full files
VADER_PAPER_R = {"tweets": 0.881, "movies": 0.451}                    # Hutto & Gilbert 2014, Table 4
TWEETEVAL_TEST = {"twitter-roberta-base (TimeLMs-2021)": 73.7, "SVM": 62.9}
GOEMOTIONS_EKMAN_BERT_TEST = 62.4

SENTIMENT_LABELS = ("negative", "neutral", "positive")
EKMAN = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
NRC_LABELS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust", "none")

# NRC (Plutchik's eight + "none") -> Ekman. Fixed by reasoning about the categories, before
# any scoring: GoEmotions' own Ekman grouping (Demszky et al. 2020, ekman_mapping.json) puts
# admiration, approval, gratitude, caring and love (trust-like) and desire, excitement and
# optimism (anticipation-like) under joy, and keeps surprise for surprise, realization,
# confusion and curiosity; in Plutchik's wheel trust and anticipation are joy's neighbours
# (joy+trust = love, anticipation+joy = optimism) while anticipation is surprise's opposite.
NRC_TO_EKMAN = {
    "anger": "anger", "disgust": "disgust", "fear": "fear", "joy": "joy", "sadness": "sadness",
    "surprise": "surprise", "none": "neutral", "trust": "joy", "anticipation": "joy",
}
# Alternatives reported as sensitivity lines (not used to choose the mapping).
NRC_TO_EKMAN_ALTERNATIVES = {
    "trust, anticipation -> neutral": {**NRC_TO_EKMAN, "trust": "neutral", "anticipation": "neutral"},
    "trust -> joy, anticipation -> surprise": {**NRC_TO_EKMAN, "anticipation": "surprise"},
}
PSEUDO_DOC_SIZES = (5, 10, 20)
# Everyday emotion words, checked against the lexicon as shipped (coverage note in the doc).
EVERYDAY_EMOTION_WORDS = ("happy", "sad", "angry", "afraid", "scared", "love", "hate", "great", "awesome",
                          "amazing", "funny", "thanks", "wow", "disgusting", "surprised", "worried")


# ---------------------------------------------------------------- data


def find_file(eval_dir: Path, key: str) -> Path | None:
    exact, pattern = FILES[key]
    if (eval_dir / exact).is_file():
        return eval_dir / exact
    matches = sorted(eval_dir.glob(pattern))
    return matches[0] if len(matches) == 1 else None


def read_eval_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    # Every field as text: "NA", "null" or "None" are words here, not missing values.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        sys.exit(f"{path} lacks column(s) {', '.join(missing)} (has {', '.join(frame.columns)}).")
    return frame


# ---------------------------------------------------------------- statistics


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(x, y).statistic)


def bootstrap_pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """95% percentile CI of Pearson r over RESAMPLES resamples of the rows (seed SEED), by
    ``scipy.stats.bootstrap`` (paired: rows are resampled as (x, y) pairs)."""
    from scipy.stats import bootstrap, pearsonr

    def r(a, b, axis=-1):
        return pearsonr(a, b, axis=axis).statistic

    ci = bootstrap((x, y), r, paired=True, vectorized=True, n_resamples=RESAMPLES, batch=100,
                   method="percentile", confidence_level=0.95, rng=np.random.default_rng(SEED)).confidence_interval
    return float(ci.low), float(ci.high)


@dataclass
class ClassScores:
    labels: tuple[str, ...]
    confusion: np.ndarray
    accuracy: float
    macro_recall: float
    macro_f1: float
    recall: dict[str, float]
    precision: dict[str, float]
    f1: dict[str, float]
    support: dict[str, int]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)


def score_classes(gold: list[str], pred: list[str], labels: tuple[str, ...], with_ci: bool = True) -> ClassScores:
    """Accuracy, macro-recall, macro-F1 and per-class figures, with 95% bootstrap CIs of the
    three summary figures.

    Accuracy, macro-F1, the per-class table and the confusion matrix are the app's own
    (``analysis.validation.agreement``: scikit-learn values, percentile bootstrap over the
    rows). Macro-recall, the TweetEval metric, is not among them: scikit-learn's
    ``recall_score``, its interval by ``scipy.stats.bootstrap`` over the same number of
    resamples with the same seed.
    """
    from scipy.stats import bootstrap
    from sklearn.metrics import recall_score

    from analysis.validation import agreement

    unknown = sorted({v for v in list(gold) + list(pred) if v not in labels})
    if unknown:
        raise ValueError(f"labels outside {labels}: {unknown}")
    # agreement averages F1 over the labels that occur; here that must be all of them.
    absent = [label for label in labels if label not in gold and label not in pred]
    if absent:
        raise ValueError(f"labels that occur neither in gold nor in pred: {absent}")
    report = agreement(pred, gold, labels=list(labels), n_boot=RESAMPLES if with_ci else 1, seed=SEED)
    assert report.n_compared == len(gold) and list(report.labels) == list(labels), "every row compared, no new label"
    per_code = report.per_code.set_index("code").loc[list(labels)]
    index = {label: i for i, label in enumerate(labels)}
    g = np.array([index[v] for v in gold])
    p = np.array([index[v] for v in pred])

    def macro_recall(a, b):
        return recall_score(a, b, labels=list(range(len(labels))), average="macro", zero_division=0)

    scores = ClassScores(
        labels=labels, confusion=report.confusion.loc[list(labels), list(labels)].to_numpy(),
        accuracy=report.metric("accuracy"), macro_recall=float(macro_recall(g, p)), macro_f1=report.metric("macro_f1"),
        recall=per_code["recall"].to_dict(), precision=per_code["precision"].to_dict(), f1=per_code["f1"].to_dict(),
        support=per_code["support"].astype(int).to_dict(),
    )
    if with_ci:
        main = report.summary[report.summary["comparison"] == report.main_comparison].set_index("metric")
        for name in ("accuracy", "macro_f1"):
            scores.ci[name] = (float(main.loc[name, "ci_low"]), float(main.loc[name, "ci_high"]))
        ci = bootstrap((g, p), macro_recall, paired=True, vectorized=False, n_resamples=RESAMPLES, method="percentile",
                       confidence_level=0.95, rng=np.random.default_rng(SEED)).confidence_interval
        scores.ci["macro_recall"] = (float(ci.low), float(ci.high))
    return scores


# ---------------------------------------------------------------- backends


def run_sentiment(texts: list[str], multi_sentence: str = "auto") -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    frame = sentiment.run(texts, sentiment.SentimentConfig(backend="offline", multi_sentence=multi_sentence))
    return frame, time.perf_counter() - start


def run_emotion(texts: list[str]) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    frame = emotion.run(texts, emotion.EmotionConfig(backend="offline"))
    return frame, time.perf_counter() - start


# ---------------------------------------------------------------- evaluations


def eval_vader(path: Path, key: str) -> dict:
    data = read_eval_csv(path, ("gold_mean", "text"))
    gold_all = pd.to_numeric(data["gold_mean"], errors="coerce").to_numpy(dtype=float)
    texts = data["text"].tolist()
    result = {"file": path.name, "rows": len(data), "modes": {}}
    for mode in ("auto", "whole", "sentences"):
        frame, seconds = run_sentiment(texts, mode)
        score = frame["sentiment_score"].to_numpy(dtype=float)
        ok = ~np.isnan(score) & ~np.isnan(gold_all)  # empty texts get no score
        x, y = score[ok], gold_all[ok]
        result["modes"][mode] = {"r": pearson(x, y), "ci": bootstrap_pearson(x, y), "n": int(ok.sum()),
                                 "seconds": seconds}
    words = data["text"].str.split().str.len()
    result["max_words"] = int(words.max())
    result["over_80_words"] = int((words > 80).sum())
    expected, full_rows = VADER_PACKAGE_R[key]
    result["package_r"] = expected
    result["paper_r"] = VADER_PAPER_R[key]
    result["anchor_applies"] = len(data) == full_rows
    result["reproduces"] = abs(result["modes"]["auto"]["r"] - expected) < 0.0015
    return result


def eval_pseudo_documents(path: Path, sizes: tuple[int, ...] = PSEUDO_DOC_SIZES) -> list[dict]:
    """Long texts with a human reference: k snippets (shuffled, seed SEED) joined with a space,
    gold = mean of their ratings. Same snippets for every mode."""
    data = read_eval_csv(path, ("gold_mean", "text"))
    gold = pd.to_numeric(data["gold_mean"], errors="coerce").to_numpy(dtype=float)
    texts = data["text"].to_numpy(dtype=object)
    rows = []
    for k in sizes:
        order = np.random.default_rng(SEED).permutation(len(data))
        groups = order[: len(order) // k * k].reshape(-1, k)
        docs = [" ".join(texts[g]) for g in groups]
        doc_gold = gold[groups].mean(axis=1)
        row = {"k": k, "n": len(docs), "median_words": float(np.median([len(d.split()) for d in docs])),
               "over_80": float(np.mean([len(d.split()) > 80 for d in docs])), "modes": {}}
        for mode in ("auto", "whole", "sentences"):
            frame, _ = run_sentiment(docs, mode)
            score = frame["sentiment_score"].to_numpy(dtype=float)
            row["modes"][mode] = {"r": pearson(score, doc_gold), "ci": bootstrap_pearson(score, doc_gold),
                                  "extreme": float(np.mean(np.abs(score) > 0.9))}
        rows.append(row)
    return rows


def eval_tweeteval(path: Path) -> dict:
    data = read_eval_csv(path, ("text", "label"))
    gold = data["label"].str.strip().str.lower().tolist()
    frame, seconds = run_sentiment(data["text"].tolist())
    pred = frame["sentiment_label"].tolist()
    keep = [i for i, v in enumerate(pred) if isinstance(v, str)]  # empty texts get no label
    gold_k, pred_k = [gold[i] for i in keep], [pred[i] for i in keep]
    scores = score_classes(gold_k, pred_k, SENTIMENT_LABELS)
    majority = max(SENTIMENT_LABELS, key=gold_k.count)
    baseline = score_classes(gold_k, [majority] * len(gold_k), SENTIMENT_LABELS, with_ci=False)
    return {"file": path.name, "rows": len(data), "n": len(keep), "scores": scores, "seconds": seconds,
            "majority": majority, "baseline": baseline,
            "predicted": {label: pred_k.count(label) for label in SENTIMENT_LABELS}}


def _ekman_gold(labels: pd.Series) -> list[list[str]]:
    gold = [[part.strip().lower() for part in str(v).split(";") if part.strip()] for v in labels]
    bad = sorted({g for row in gold for g in row if g not in EKMAN})
    if bad:
        sys.exit(f"GoEmotions labels outside the Ekman set {EKMAN}: {bad}")
    if any(not row for row in gold):
        sys.exit("GoEmotions file has rows without a label.")
    return gold


def score_ekman(gold: list[list[str]], pred: list[str], with_ci: bool = True) -> dict:
    # "Any" rule: a prediction is right when it is any of the gold labels; for F1 the gold
    # label of a row is the matched one, else the first listed. "First" rule: the first listed.
    matched = [p if p in g else g[0] for g, p in zip(gold, pred)]
    first = [g[0] for g in gold]
    return {"any": score_classes(matched, pred, EKMAN, with_ci), "first": score_classes(first, pred, EKMAN, with_ci)}


def eval_goemotions(path: Path) -> dict:
    data = read_eval_csv(path, ("text", "labels"))
    gold = _ekman_gold(data["labels"])
    frame, seconds = run_emotion(data["text"].tolist())
    raw = frame["emotion_label"].tolist()
    keep = [i for i, v in enumerate(raw) if isinstance(v, str)]
    gold, raw = [gold[i] for i in keep], [raw[i] for i in keep]
    shares = frame.loc[keep, [f"emotion_{e}" for e in emotion.NRC_EMOTIONS]].to_numpy(dtype=float)
    top = shares.max(axis=1, keepdims=True)
    tied_mask = (top[:, 0] > 0) & ((shares == top).sum(axis=1) > 1)
    tied = float(np.mean(tied_mask))
    tied_to = pd.Series([v for v, t in zip(raw, tied_mask) if t]).value_counts()
    lexicon = emotion.nrc_lexicon()
    missing_words = [w for w in EVERYDAY_EMOTION_WORDS if emotion.lexicon_form(w, lexicon) not in lexicon]
    pred = [NRC_TO_EKMAN[v] for v in raw]
    main = score_ekman(gold, pred)
    alternatives = {name: score_ekman(gold, [mapping[v] for v in raw], with_ci=False)
                    for name, mapping in NRC_TO_EKMAN_ALTERNATIVES.items()}
    majority = max(EKMAN, key=lambda e: sum(e in g for g in gold))
    baseline = score_ekman(gold, [majority] * len(gold), with_ci=False)
    matched = [p if p in g else g[0] for g, p in zip(gold, pred)]
    crosstab = pd.crosstab(pd.Categorical(raw, categories=NRC_LABELS), pd.Categorical(matched, categories=EKMAN),
                           dropna=False)
    return {"file": path.name, "rows": len(data), "n": len(keep), "seconds": seconds, "main": main,
            "alternatives": alternatives, "majority": majority, "baseline": baseline,
            "multi_label": sum(len(g) > 1 for g in gold), "none_share": raw.count("none") / len(raw),
            "tied_share": tied, "tied_to": tied_to, "crosstab": crosstab, "lexicon_size": len(lexicon),
            "missing_words": missing_words,
            "predicted_raw": {label: raw.count(label) for label in NRC_LABELS}}


# ---------------------------------------------------------------- output


def fmt_ci(ci: tuple[float, float], digits: int = 3, scale: float = 1.0) -> str:
    return f"[{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def print_summary(res: dict) -> None:
    print(f"Validity of the offline backends ({res['date']}; {res['machine']})")
    print(f"{res['versions']}\n")
    if res.get("vader"):
        print("VADER: Pearson r of sentiment_score with the human mean (95% bootstrap CI)")
        print(f"  {'file':<8} {'n':>6}  {'auto (default)':<24} {'whole':<24} {'sentences':<24} package/paper")
        for key, v in res["vader"].items():
            cells = [f"{m['r']:.3f} {fmt_ci(m['ci'])}" for m in v["modes"].values()]
            print(f"  {key:<8} {v['modes']['auto']['n']:>6}  {cells[0]:<24} {cells[1]:<24} {cells[2]:<24} "
                  f"{v['package_r']:.3f}/{v['paper_r']:.3f}")
            if not v["anchor_applies"]:
                print(f"  ({key}: {v['rows']} rows, not the full published file: the anchor does not apply)")
            elif not v["reproduces"]:
                print(f"  WARNING: {key} r = {v['modes']['auto']['r']:.4f} does not reproduce the package's "
                      f"{v['package_r']:.3f}")
    if res.get("pseudo"):
        print("\nPseudo-documents (k movie snippets joined; gold = mean rating): r (share |score| > 0.9)")
        for row in res["pseudo"]:
            cells = "  ".join(f"{mode} {m['r']:.3f} ({pct(m['extreme'])}%)" for mode, m in row["modes"].items())
            print(f"  k={row['k']:<3} n={row['n']:<5} median {row['median_words']:.0f} words  {cells}")
    if res.get("tweeteval"):
        t = res["tweeteval"]
        s = t["scores"]
        print(f"\nTweetEval sentiment (validation, n={t['n']}): macro-recall {pct(s.macro_recall)} "
              f"{fmt_ci(s.ci['macro_recall'], 1, 100)}, accuracy {pct(s.accuracy)}, macro-F1 {pct(s.macro_f1)}; "
              "recall " + ", ".join(f"{label} {pct(s.recall[label])}" for label in s.labels))
        print("  published (test split): " + ", ".join(f"{k} {v}" for k, v in TWEETEVAL_TEST.items()))
    if res.get("goemotions"):
        g = res["goemotions"]
        a, f = g["main"]["any"], g["main"]["first"]
        print(f"\nGoEmotions Ekman (dev, n={g['n']}): macro-F1 {pct(a.macro_f1)} {fmt_ci(a.ci['macro_f1'], 1, 100)}, "
              f"accuracy {pct(a.accuracy)} (any gold label); first gold label: macro-F1 {pct(f.macro_f1)}, "
              f"accuracy {pct(f.accuracy)}")
        print("  F1 " + ", ".join(f"{label} {pct(a.f1[label])}" for label in EKMAN))
        for name, alt in g["alternatives"].items():
            print(f"  sensitivity {name}: macro-F1 {pct(alt['any'].macro_f1)}, accuracy {pct(alt['any'].accuracy)}")
        print(f"  published fine-tuned bert-base-cased (test): macro-F1 {GOEMOTIONS_EKMAN_BERT_TEST}")


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    return ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def confusion_table(scores: ClassScores, row_labels=None, matrix=None) -> list[str]:
    labels = scores.labels
    matrix = scores.confusion if matrix is None else matrix
    row_labels = row_labels or labels
    header = ["gold \\ predicted"] + list(labels) + ["recall"]
    rows = []
    for i, label in enumerate(row_labels):
        rows.append([f"**{label}**"] + [f"{int(v):,}" for v in matrix[i]] + [pct(scores.recall[label])])
    return md_table(header, rows)


MARK_BEGIN = "<!-- BEGIN benchmarks/validity.py: generated, re-run the script instead of editing -->"
MARK_END = "<!-- END benchmarks/validity.py -->"
OLD_PLACEHOLDER = re.compile(r"No analysis whose validity can be measured is built yet.*?(?:\n\s*\n|\Z)", re.S)
STILL_TO_COME = (
    "Codebook coding (AG News) and topics and summaries (AG News, BBC) add their own sections "
    "below as they land.\n"
)


def markdown(res: dict) -> str:
    L: list[str] = [MARK_BEGIN, "", "## Sentiment and emotion: offline backends", ""]
    L += [
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']}  ",
        f"Date: {res['date']}; code: {res['commit']}  ",
        f"Versions: {res['versions']}  ",
        f"Bootstrap: {RESAMPLES:,} resamples of the rows (seed {SEED}), 95% percentile intervals. "
        f"Run time of the whole script: {res['seconds']:.0f} s.",
        "",
        "These are development figures on `../shared/eval` (public data, never copied into this "
        "repository); an independent held-out split of the same sources is used to check them. Nothing "
        "was tuned on these files: every figure uses the backends' defaults.",
        "",
    ]

    if res.get("vader"):
        L += ["### Sentiment (VADER): agreement with the mean human rating", ""]
        L += [
            "Pearson r between `sentiment_score` (VADER's compound, -1..1) and the mean of about 20 human "
            "ratings (-4..+4) per text, for the default `multi_sentence=\"auto\"` and the two forced rules.",
            "",
        ]
        rows = []
        for key, v in res["vader"].items():
            name = {"tweets": "Tweets", "movies": "Movie-review snippets"}[key]
            m = v["modes"]
            rows.append([f"{name} (`{v['file']}`)", f"{m['auto']['n']:,}",
                         f"**{m['auto']['r']:.3f}** {fmt_ci(m['auto']['ci'])}",
                         f"{m['whole']['r']:.3f} {fmt_ci(m['whole']['ci'])}",
                         f"{m['sentences']['r']:.3f} {fmt_ci(m['sentences']['ci'])}",
                         f"{v['package_r']:.3f} / {v['paper_r']:.3f}"])
        L += md_table(["data", "n", "r, auto (default)", "r, whole", "r, sentences", "published: package / paper"], rows)
        L.append("")
        notes = []
        for key, v in res["vader"].items():
            r = v["modes"]["auto"]["r"]
            if not v["anchor_applies"]:
                notes.append(f"{key}: {v['rows']:,} rows, not the full published file, so the anchor does not apply.")
            elif v["reproduces"]:
                notes.append(f"{key}: r = {r:.4f} reproduces the vaderSentiment package figure ({v['package_r']:.3f}).")
            else:
                notes.append(f"**{key}: r = {r:.4f} does NOT reproduce the package figure ({v['package_r']:.3f}).**")
        L += [
            "Reproduction: " + " ".join(notes) + " The paper's figures (0.881, 0.451) are slightly higher; "
            "they were computed with the 2014 implementation, and the package's rules and lexicon have been "
            "revised since.",
            "",
        ]
        longest = max(v["max_words"] for v in res["vader"].values())
        over = sum(v["over_80_words"] for v in res["vader"].values())
        tw = res["vader"].get("tweets", {}).get("modes")
        L += [
            f"Why `auto`: no text in these files has more than {longest} words ({over} over 80), so `auto` "
            "scores every one whole, exactly as VADER was validated, and equals `whole` here."
            + (f" Splitting short texts into sentences loses cross-sentence cues: on tweets r falls from "
               f"{tw['whole']['r']:.3f} to {tw['sentences']['r']:.3f}." if tw else "")
            + " Long texts are where `whole` fails: VADER sums word valences and squashes the sum, so "
            "a long text's compound drifts to ±1 with length alone. The pseudo-documents below show it.",
            "",
        ]
    if res.get("pseudo"):
        L += [
            "**Long texts (pseudo-documents).** k movie-review snippets, shuffled (seed 0) and joined with a "
            "space, scored as one text; the reference is the mean of their human ratings (an assumption: "
            "readers were never asked to rate the joined text, and the snippets come from different reviews). "
            "In brackets: share of texts with |score| > 0.9.",
            "",
        ]
        rows = []
        for row in res["pseudo"]:
            m = row["modes"]
            rows.append([str(row["k"]), f"{row['n']:,}", f"{row['median_words']:.0f}", pct(row["over_80"]) + "%"]
                        + [f"{m[mode]['r']:.3f} {fmt_ci(m[mode]['ci'])} ({pct(m[mode]['extreme'])}%)"
                           for mode in ("auto", "whole", "sentences")])
        L += md_table(["k", "texts", "median words", "over 80 words", "r, auto", "r, whole", "r, sentences"], rows)
        L.append("")
        by_k = {row["k"]: row["modes"] for row in res["pseudo"]}
        kmax = max(by_k)
        kmin = min(by_k)
        text = (
            f"With {kmax} snippets (median {next(r['median_words'] for r in res['pseudo'] if r['k'] == kmax):.0f} "
            f"words) `whole` pins {pct(by_k[kmax]['whole']['extreme'])}% of the texts beyond ±0.9 and r falls to "
            f"{by_k[kmax]['whole']['r']:.3f}, while the sentence mean (what `auto` uses there) keeps "
            f"r = {by_k[kmax]['sentences']['r']:.3f}."
        )
        small = by_k[kmin]
        if small["auto"]["r"] < min(small["whole"]["r"], small["sentences"]["r"]):
            text += (
                f" **Caveat for mixed-length corpora:** with {kmin} snippets the texts straddle the 80-word "
                f"threshold, and `auto` (r = {small['auto']['r']:.3f}) is worse than either forced rule "
                f"({small['whole']['r']:.3f} whole, {small['sentences']['r']:.3f} sentences): texts just under 80 "
                "words get a whole-text compound and texts just over it a compressed sentence mean, two different "
                "scales. When the texts of one corpus fall on both sides of 80 words and scores are compared "
                "across texts, force one rule (`sentences` for documents, `whole` for short posts)."
            )
        L += [text, ""]

    if res.get("tweeteval"):
        t = res["tweeteval"]
        s = t["scores"]
        b = t["baseline"]
        L += ["### Sentiment (VADER): TweetEval three-class labels", ""]
        L += [
            f"`{t['file']}` (TweetEval sentiment, validation split, n = {t['n']:,}); `sentiment_label` with the "
            "default thresholds (compound ≥ 0.05 positive, ≤ -0.05 negative).",
            "",
        ]
        L += md_table(["metric", "VADER (offline default)", f"always \"{t['majority']}\""], [
            ["**macro-recall** (TweetEval metric)", f"**{pct(s.macro_recall)}** {fmt_ci(s.ci['macro_recall'], 1, 100)}",
             pct(b.macro_recall)],
            ["accuracy", f"{pct(s.accuracy)} {fmt_ci(s.ci['accuracy'], 1, 100)}", pct(b.accuracy)],
            ["macro-F1", f"{pct(s.macro_f1)} {fmt_ci(s.ci['macro_f1'], 1, 100)}", pct(b.macro_f1)],
        ])
        L += ["", "Confusion matrix (rows: gold, columns: VADER), with per-class recall:", ""]
        L += confusion_table(s)
        L += ["", "Per-class F1: " + ", ".join(f"{label} {pct(s.f1[label])}" for label in s.labels) + ".", ""]
        L += [
            "Published TweetEval figures are on the **test** split (12,284 tweets), not this validation split, "
            "so they are reference points, not a like-for-like comparison: "
            + "; ".join(f"{k} {v}" for k, v in TWEETEVAL_TEST.items()) + " macro-recall.",
            "",
        ]

    if res.get("goemotions"):
        g = res["goemotions"]
        a, f = g["main"]["any"], g["main"]["first"]
        ba = g["baseline"]["any"]
        L += ["### Emotion (NRC lexicon): GoEmotions, Ekman taxonomy", ""]
        L += [
            f"`{g['file']}` (Reddit comments, dev split, n = {g['n']:,}; {g['multi_label']:,} rows carry two or "
            "three gold labels). The NRC label is mapped to Ekman's six plus neutral: anger, disgust, fear, joy, "
            "sadness and surprise to themselves, `none` (no lexicon word) to neutral, and **trust and "
            "anticipation to joy**.",
            "",
            "Why trust and anticipation → joy: the mapping was fixed from the categories, before scoring. "
            "GoEmotions' own grouping into Ekman classes (Demszky et al. 2020) files admiration, approval, "
            "gratitude, caring and love (what NRC calls trust) and desire, excitement and optimism (NRC's "
            "anticipation) under joy, and keeps surprise for surprise, realization, confusion and curiosity. "
            "In Plutchik's wheel, on which the NRC lexicon is built, trust and anticipation are joy's "
            "neighbours (joy + trust = love, anticipation + joy = optimism) and anticipation is the opposite "
            "of surprise. The alternatives are shown as sensitivity lines.",
            "",
            "Scoring rule: a prediction is **correct when it is any of the row's gold labels**. For F1, a "
            "row's gold label is the matched one when the prediction is among its labels, else the first "
            "listed. The stricter variant always uses the first listed label; the file lists labels "
            "alphabetically, so \"first\" is an arbitrary pick, not a primary label.",
            "",
        ]
        L += md_table(["metric", "NRC (offline default)", "first gold label only", f"always \"{g['majority']}\""], [
            ["**macro-F1** (7 classes)", f"**{pct(a.macro_f1)}** {fmt_ci(a.ci['macro_f1'], 1, 100)}",
             f"{pct(f.macro_f1)} {fmt_ci(f.ci['macro_f1'], 1, 100)}", pct(ba.macro_f1)],
            ["accuracy", f"{pct(a.accuracy)} {fmt_ci(a.ci['accuracy'], 1, 100)}",
             f"{pct(f.accuracy)} {fmt_ci(f.ci['accuracy'], 1, 100)}", pct(ba.accuracy)],
        ])
        L += ["", "Per class (any-gold-label rule):", ""]
        L += md_table(["class", "support", "precision", "recall", "F1"],
                      [[label, f"{a.support[label]:,}", pct(a.precision[label]), pct(a.recall[label]),
                        pct(a.f1[label])] for label in EKMAN])
        L += ["", "Sensitivity to the trust/anticipation mapping (any-gold-label rule):", ""]
        L += md_table(["mapping", "macro-F1", "accuracy"],
                      [["trust, anticipation -> joy (default)", pct(a.macro_f1), pct(a.accuracy)]]
                      + [[name, pct(alt["any"].macro_f1), pct(alt["any"].accuracy)]
                         for name, alt in g["alternatives"].items()])
        L += [
            "",
            "Where the NRC labels land (rows: the backend's own label; columns: gold, matched-else-first):",
            "",
        ]
        ct = g["crosstab"]
        L += md_table(["NRC \\ gold"] + list(EKMAN) + ["total"],
                      [[f"**{label}**"] + [f"{int(v):,}" for v in ct.loc[label]] + [f"{int(ct.loc[label].sum()):,}"]
                       for label in NRC_LABELS])
        L += [
            "",
            f"{pct(g['none_share'])}% of the comments contain no word associated with any of the eight emotions "
            f"(`none`). {pct(g['tied_share'])}% have a top emotion tied with another (most NRC words carry several "
            "emotions: \"happy\" is anticipation, joy and trust), so the tie-break (polarity balance, then "
            "alphabetical order) decides their label"
            + (f"; {pct(g['tied_to'].get('anger', 0) / g['tied_to'].sum())}% of these go to anger and "
               f"{pct(g['tied_to'].get('anticipation', 0) / g['tied_to'].sum())}% to anticipation, the alphabetically "
               "first negative and positive emotions, which inflates both labels" if len(g["tied_to"]) else "")
            + ". The lexicon as shipped (nrclex, "
            f"{g['lexicon_size']:,} words) lacks some everyday emotion words"
            + (f", e.g. {', '.join(chr(34) + w + chr(34) for w in g['missing_words'])}" if g["missing_words"] else "")
            + ": comments that rely on them count as `none`.",
            "",
            f"Published reference: fine-tuned bert-base-cased, GoEmotions Ekman **test** split, macro-F1 "
            f"{GOEMOTIONS_EKMAN_BERT_TEST}. Not comparable: that model was trained on GoEmotions; the lexicon "
            "counts words and was never fitted to Reddit or to these classes.",
            "",
        ]

    L += ["### What these figures mean for a study", ""]
    interp = []
    if res.get("vader"):
        v = res["vader"]
        tw = v.get("tweets", {}).get("modes", {}).get("auto")
        mv = v.get("movies", {}).get("modes", {}).get("auto")
        line = "- **VADER scores track human ratings closely on short social-media posts"
        line += f" (r = {tw['r']:.2f} on tweets)" if tw else ""
        line += "** and much less on edited, ironic or comparative prose"
        line += (f" (r = {mv['r']:.2f} on movie-review snippets: it explains about {pct(mv['r'] ** 2)}% of the "
                 "variance in the human mean)") if mv else ""
        line += (". Aggregate scores over many texts (group means, trends) are far more trustworthy than "
                 "the score of a single text; report the correlation that matches your genre.")
        interp.append(line)
        interp.append(
            "- **Long texts.** VADER was built and validated on texts of one to a few sentences. For texts over "
            "80 words Textlab averages sentence scores (`auto`), which avoids the drift of whole-text scores to "
            "±1; the pseudo-document check supports this, but no human-rated long documents were available. "
            "Do not compare `auto` scores across texts on both sides of 80 words (see the caveat above)."
        )
    if res.get("tweeteval"):
        s = res["tweeteval"]["scores"]
        weakest = min(s.labels, key=lambda lab: s.recall[lab])
        interp.append(
            f"- **Three-class labels** agree with TweetEval annotators on {pct(s.accuracy)}% of tweets "
            f"(macro-recall {pct(s.macro_recall)}, versus about 63 for a trained SVM and 74 for a fine-tuned "
            f"RoBERTa on the test split). The weakest class is {weakest} (recall {pct(s.recall[weakest])})"
            + (": VADER calls a text neutral only when its compound is within ±0.05, i.e. when almost no "
               "lexicon word fires, so tweets that annotators call neutral but that contain a valenced word "
               "are labelled positive or negative. Use the continuous score, "
               "or a transformer model, when the neutral category matters." if weakest == "neutral" else ".")
        )
    if res.get("goemotions"):
        g = res["goemotions"]
        a = g["main"]["any"]
        interp.append(
            f"- **NRC emotion labels are a coarse, word-count signal** (macro-F1 {pct(a.macro_f1)} on GoEmotions "
            f"against {GOEMOTIONS_EKMAN_BERT_TEST} for a fine-tuned model; accuracy {pct(a.accuracy)} versus "
            f"{pct(g['baseline']['any'].accuracy)} for always answering \"{g['majority']}\"). The lexicon has no "
            "negation (\"not happy\" counts as joy), no intensity and no context, and one emotion word in a "
            "short comment decides the label. Use the `emotion_<name>` shares to compare groups of texts, "
            "validate on a hand-coded sample of your own corpus before reporting per-text labels, and prefer a "
            "transformer model for per-text classification."
        )
    interp.append(
        "- All figures are English-only; neither lexicon handles other languages."
    )
    L += interp
    L += ["", MARK_END]
    return "\n".join(L) + "\n"


def write_markdown(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if not (MARK_BEGIN in text and MARK_END in text) and OLD_PLACEHOLDER.search(text):
        # a page from before the first figures: the block takes the place of its placeholder paragraph
        text = OLD_PLACEHOLDER.sub(lambda _: block + "\n" + STILL_TO_COME + "\n", text, count=1)
        path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
        return
    write_section(path, MARK_BEGIN, MARK_END, block.rstrip("\n"), new_file="# Validity\n", tidy=True)


# The code these figures depend on; uncommitted changes to it are flagged next to the commit.
SCORED_CODE = ("analysis/tasks/sentiment.py", "analysis/tasks/emotion.py", "analysis/tasks/base.py",
               "analysis/jobs.py", "analysis/textutil.py")


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *SCORED_CODE], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"{head}" + (" (the scored code has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", default=str(ROOT.parent / "shared" / "eval"),
                        help="folder with the evaluation CSV files (default: <repo>/../shared/eval)")
    parser.add_argument("--markdown", help="rewrite this file's validity.py section with the figures")
    args = parser.parse_args()

    eval_dir = Path(args.eval_dir)
    if not eval_dir.is_dir():
        sys.exit(f"Evaluation data not found: {eval_dir} is not a folder. Pass --eval-dir with the folder "
                 "holding the shared evaluation files (see ../shared/eval/README.md).")
    paths = {key: find_file(eval_dir, key) for key in FILES}
    missing = [FILES[key][0] for key, p in paths.items() if p is None]
    if len(missing) == len(FILES):
        sys.exit(f"None of the evaluation files ({', '.join(f[0] for f in FILES.values())}) is in {eval_dir}.")
    for name in missing:
        print(f"note: {name} not found in {eval_dir}; its figures are skipped", file=sys.stderr)

    start = time.perf_counter()
    res: dict = {
        "date": date.today().isoformat(),
        "machine": (f"{platform.system()} {platform.release()}, {platform.machine()}, "
                    f"{os.cpu_count()} cores ({cpu_count()} usable), Python {platform.python_version()}"),
        "versions": ", ".join(f"{name} {package_version(name)}" for name in
                              ("vaderSentiment", "nrclex", "scikit-learn", "numpy", "pandas")),
        "commit": git_commit(),
        "command": "python benchmarks/validity.py" + (" --eval-dir " + args.eval_dir
                                                      if Path(args.eval_dir).resolve() != (ROOT.parent / "shared" / "eval").resolve()
                                                      else "") + (f" --markdown {args.markdown}" if args.markdown else ""),
    }
    res["vader"] = {key: eval_vader(paths[key], key) for key in ("tweets", "movies") if paths[key]}
    if paths["movies"]:
        res["pseudo"] = eval_pseudo_documents(paths["movies"])
    if paths["tweeteval"]:
        res["tweeteval"] = eval_tweeteval(paths["tweeteval"])
    if paths["goemotions"]:
        res["goemotions"] = eval_goemotions(paths["goemotions"])
    res["seconds"] = time.perf_counter() - start

    print_summary(res)
    print(f"\n({res['seconds']:.0f} s)")
    if args.markdown:
        write_markdown(Path(args.markdown), markdown(res))
        print(f"Wrote the figures to {args.markdown}")
    failed = [key for key, v in res["vader"].items() if v["anchor_applies"] and not v["reproduces"]]
    if failed:
        sys.exit(f"VADER r does not reproduce the published package figure for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
