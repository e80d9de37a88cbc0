"""A million texts on one machine: time and peak memory of each stage at 100k and 1M rows.

    python benchmarks/scale_rows.py --rows 100000 1000000 [--format csv|parquet|zip]
                                    [--tasks stats sentiment coding] [--markdown docs/benchmarks.md]

For each size a fresh Python process builds an N-row corpus by resampling the sample
survey (seeded; short texts, 8 columns) and runs the stages a researcher runs, through the
same code as ``textlab analyze``: import (``load_corpus``), the quality report, saving the
project, one job per task (``jobs.execute_run``, checkpoints and manifest included) and the
export (``Project.results_frame`` + ``export.write_table``, Parquet then CSV). Coding runs
the sample codebook on the fast path (``--fast``: the static embedding model) because the
fp32 MiniLM embeds 20-50 texts/s on this machine (a million texts would take 6-14 hours). The
fast model is built (or found) before the stages start; its one-time build is timed on its own
and left out of the overall peak. Every text is made distinct (three words of the sample's
vocabulary appended), so no stage gains from repeated texts.

Peak RSS is the process's high-water mark (VmHWM) during each stage, reset before it
(``/proc/self/clear_refs``), so it includes what earlier stages keep (the corpus) and the
interpreter; the overall peak is the largest of them. Time per 100k rows says whether a
stage is linear in rows.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import host_description, module_versions, write_section  # noqa: E402

STAGES = ("import", "quality report", "save project", "stats", "sentiment", "coding", "export parquet",
          "export csv")


def _status_kb(field: str) -> int:
    m = re.search(rf"{field}:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def make_corpus(rows: int, path: Path) -> None:
    import numpy as np
    import pandas as pd

    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    picked = sample.iloc[rng.integers(0, len(sample), rows)].reset_index(drop=True)
    picked["respondent_id"] = [f"B{i:07d}" for i in range(rows)]
    # Three words of the sample's vocabulary appended to each text: (almost) every text distinct,
    # as in a real corpus, so no stage gains from the sample's 467 texts repeating.
    vocabulary = sorted({w for t in sample["text"] for w in t.split() if w.isalpha()})
    words = np.asarray(vocabulary, dtype=object)[rng.integers(0, len(vocabulary), (rows, 3))]
    picked["text"] = [f"{t} {' '.join(w)}" if t.strip() else t for t, w in zip(picked["text"], words)]
    if path.suffix == ".zip":  # one text file per row, as a folder of transcripts or articles comes
        import zipfile

        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for i, text in enumerate(picked["text"]):
                archive.writestr(f"texts/{i:07d}.txt", text or " ")
    elif path.suffix == ".parquet":
        picked.to_parquet(path, index=False)
    else:
        picked.to_csv(path, index=False)


def worker(rows: int, fmt: str, tasks: list[str]) -> dict:
    """One size in this (fresh) process; prints one JSON line."""
    from analysis.corpus import load_corpus, quality_report
    from analysis.export import write_table
    from analysis.jobs import execute_run, make_owner
    from analysis.workspace import Workspace

    out: dict = {"rows": rows, "format": fmt, "stages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / f"corpus.{fmt}"
        make_corpus(rows, source)
        out["file_mb"] = source.stat().st_size / 2**20
        out["baseline_mb"] = _status_kb("VmRSS") / 1024
        state: dict = {}

        def stage(name, fn):
            _reset_peak()
            start = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - start
            out["stages"][name] = {"s": seconds, "peak_mb": _status_kb("VmHWM") / 1024}
            print(f"  {rows:,} rows: {name}: {seconds:.1f} s, peak {out['stages'][name]['peak_mb']:,.0f} MB",
                  file=sys.stderr, flush=True)
            return value

        ids = "file" if fmt == "zip" else "respondent_id"
        corpus, _ = stage("import", lambda: load_corpus(source, text_column="text", id_column=ids))
        stage("quality report", lambda: quality_report(corpus))
        ws = Workspace(tmp / "ws")
        project = stage("save project", lambda: ws.create_project("bench", corpus))
        corpus = None  # the project holds it from here on, as in the CLI and the app
        owner = make_owner()
        if "coding" in tasks:  # built once per machine (a few minutes): not part of the coding time
            from analysis.embeddings import fast_model_path

            stage("build fast model (once)", fast_model_path)
        configs = {"stats": {}, "sentiment": {"backend": "offline"},
                   "coding": {"backend": "offline", "fast": True,
                              "codebook": str(ROOT / "sample_data" / "policy_codebook.json")}}
        runs = {}
        for task in tasks:
            from analysis.tasks import get_task

            config = get_task(task).Config.from_dict(configs[task]).to_dict()
            run = project.create_run(task, config, n_total=0)
            runs[task] = stage(task, lambda run=run: execute_run(ws, run.id, owner=owner))
            state[task] = runs[task].status
        frame = stage("export parquet", lambda: write_table(project.results_frame(runs), tmp / "out.parquet"))
        del frame
        stage("export csv", lambda: write_table(project.results_frame(runs), tmp / "out.csv"))
        out["columns"] = len(project.results_frame(runs).columns)
        out["status"] = state
    out["peak_mb"] = max(s["peak_mb"] for name, s in out["stages"].items() if "once" not in name)
    return out


def run_size(rows: int, fmt: str, tasks: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(rows), "--format", fmt, "--tasks", *tasks]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results: list[dict], command: str) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {host_description(ram=True)}; {module_versions('pandas', 'pyarrow', 'torch')}  ",
        f"Date: {date.today().isoformat()}\n",
        "| rows | stage | time (s) | s per 100k rows | peak RSS (MB) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in results:
        for name, s in r["stages"].items():
            lines.append(f"| {r['rows']:,} | {name} | {s['s']:.1f} | {s['s'] / r['rows'] * 1e5:.2f} | {s['peak_mb']:,.0f} |")
    lines.append("")
    for r in results:
        total = sum(s["s"] for s in r["stages"].values())
        lines.append(f"- {r['rows']:,} rows ({r['format']}, {r['file_mb']:,.0f} MB file, {r['columns']} output columns): "
                     f"**peak RSS {r['peak_mb']:,.0f} MB**, all stages {total / 60:.1f} min.")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000])
    ap.add_argument("--format", choices=("csv", "parquet", "zip"), default="csv",
                    help="the input file: CSV or Parquet of 8 columns, or a ZIP of one .txt file per row")
    ap.add_argument("--tasks", nargs="+", default=["stats", "sentiment", "coding"])
    ap.add_argument("--markdown", help="rewrite this script's section of a Markdown file")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.format, args.tasks)))
        return 0
    results = [run_size(n, args.format, args.tasks) for n in args.rows]
    command = "python benchmarks/scale_rows.py " + " ".join(sys.argv[1:])
    text = markdown(results, command)
    print(text)
    if args.markdown:
        begin, end = (f"<!-- scale-rows {args.format}:start -->", f"<!-- scale-rows {args.format}:end -->")
        title = f"### A million texts on one machine: {args.format.upper()} input (CPU)\n"
        write_section(Path(args.markdown), begin, end, "\n".join([begin, title, text, end]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
