"""CPU throughput of the foundation: import -> quality report -> stats job -> export.

Builds an N-row corpus by resampling the sample survey texts (seeded), then times each
step through the same code the app and the CLI use, including the workspace, the job
runner's checkpoints and the manifest.

    python benchmarks/pipeline_cpu.py --rows 10000 100000 [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.corpus import load_corpus, quality_report  # noqa: E402
from analysis.export import write_table  # noqa: E402
from analysis.jobs import JobManager  # noqa: E402
from analysis.workspace import Workspace  # noqa: E402


def make_corpus(rows: int, path: Path) -> None:
    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    picked = sample.iloc[rng.integers(0, len(sample), rows)].reset_index(drop=True)
    picked["respondent_id"] = [f"B{i:07d}" for i in range(rows)]
    picked.to_csv(path, index=False)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def bench(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "corpus.csv"
        make_corpus(rows, source)
        (corpus, _), t_import = timed(lambda: load_corpus(source, text_column="text", id_column="respondent_id"))
        _, t_quality = timed(lambda: quality_report(corpus))
        ws = Workspace(tmp / "ws")
        project, t_project = timed(lambda: ws.create_project("bench", corpus))
        manager = JobManager(ws)

        def run_stats():
            manager.submit(project, "stats")
            manager.wait()
        _, t_stats = timed(run_stats)
        frame = project.results_frame()
        _, t_csv = timed(lambda: write_table(frame, tmp / "out.csv"))
        _, t_parquet = timed(lambda: write_table(frame, tmp / "out.parquet"))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": rows, "import_s": t_import, "quality_s": t_quality, "project_s": t_project,
        "stats_s": t_stats, "stats_docs_per_s": rows / t_stats, "csv_s": t_csv, "parquet_s": t_parquet,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000])
    parser.add_argument("--markdown", help="append a results table to this file")
    args = parser.parse_args()
    results = [bench(n) for n in args.rows]
    table = pd.DataFrame(results)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    if args.markdown:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        lines = [
            f"\n### Foundation pipeline on CPU ({date.today().isoformat()})\n",
            f"Command: `python benchmarks/pipeline_cpu.py --rows {' '.join(map(str, args.rows))}`  ",
            f"Machine: {machine}\n",
            "| rows | import (s) | quality report (s) | save project (s) | stats job (s) | stats texts/s | CSV export (s) | Parquet export (s) | peak RSS (MB) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            lines.append(
                f"| {r['rows']:,} | {r['import_s']:.2f} | {r['quality_s']:.2f} | {r['project_s']:.2f} | {r['stats_s']:.2f} | "
                f"{r['stats_docs_per_s']:,.0f} | {r['csv_s']:.2f} | {r['parquet_s']:.2f} | {r['peak_rss_mb']:,.0f} |"
            )
        with open(args.markdown, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
