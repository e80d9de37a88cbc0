"""Throughput of the ray engine with 1 and 2 (or more) model workers, beside the local engine.

    python benchmarks/ray_scaling.py [--texts 20000] [--coding-texts 4096] [--workers 1 2]
                                     [--tasks sentiment coding] [--markdown docs/benchmarks.md]

The same corpus for every engine: texts resampled (seeded) from the non-empty texts of
sample_data/policy_survey.csv. ``sentiment``: VADER (backend offline) on ``--texts`` texts;
``coding``: offline zero-shot coding (MiniLM embedding similarity to the sample codebook, no
embedding cache) on ``--coding-texts`` texts. Each row runs the chunk loop once, in memory
(``MemoryStore``, the task's own chunk size unless ``--chunk-size``):

* ``local``: ``analysis.tasks.execute.execute`` in this process;
* ``ray, N workers``: ``analysis.engines.ray.execute_ray`` on a local Ray instance started
  once by this script (``ray.init(num_cpus=<cores>)``), N actors each loading the model.

texts/s is end to end: model load included (and, on Ray, starting the actors, which import
torch etc. in fresh processes); not included: Ray's own start and this process's imports,
each paid once per process (a warm-up run on 8 texts does the imports). "after first
results" is the rate from the first results to the end, i.e. without the start-up (shown
for Ray only with at least two chunks per worker). Results are checked equal to the local engine's.
``--markdown FILE`` rewrites the section between ``<!-- ray-scaling:start -->`` and
``<!-- ray-scaling:end -->`` (appended when missing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
from _common import host_description, module_versions, processor, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- ray-scaling:start -->", "<!-- ray-scaling:end -->"


def survey_texts(n: int, seed: int = 0) -> list[str]:
    import pandas as pd

    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    texts = [t for t in sample["text"] if t.strip()]
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.integers(0, len(texts), n)]


def _burn(n: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - start


def effective_cores(n_procs: int, n: int = 10_000_000) -> float:
    """How many CPU-bound processes this machine runs at full speed at once: ``n_procs`` times
    one process's time for a pure-Python loop over the mean time of ``n_procs`` running it
    together (2 vCPUs on one physical core give about 1). Workers cannot scale past this."""
    from concurrent.futures import ProcessPoolExecutor

    alone = _burn(n)
    with ProcessPoolExecutor(n_procs) as pool:
        together = list(pool.map(_burn, [n] * n_procs))
    return n_procs * alone / (sum(together) / len(together))


def command_line() -> str:
    return "python benchmarks/ray_scaling.py " + " ".join(sys.argv[1:])


def workload(name: str, args):
    from analysis.tasks import get_task

    task = get_task(name)
    if name == "sentiment":
        return task, task.Config(backend="offline"), survey_texts(args.texts), "VADER (offline)"
    config = task.Config.from_dict({"backend": "offline", "codebook": str(ROOT / "sample_data" /
                                                                          "policy_codebook.json")})
    return task, config, survey_texts(args.coding_texts, seed=1), "zero-shot, MiniLM similarity (offline)"


def timed(run, n: int):
    """(seconds, texts/s after the first chunk arrived, Execution) of one run of the chunk loop."""
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()

    def progress(done: int, total: int, rate: float) -> None:
        marks.append((time.perf_counter(), done))

    done = run(progress)
    seconds = time.perf_counter() - start
    arrived = [(t, d) for t, d in marks if d > 0]
    steady = None
    if len(arrived) >= 2 and arrived[-1][0] > arrived[0][0]:
        steady = (arrived[-1][1] - arrived[0][1]) / (arrived[-1][0] - arrived[0][0])
    return seconds, steady, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=20_000, help="sentiment corpus size (default 20,000)")
    parser.add_argument("--coding-texts", type=int, default=4_096, help="coding corpus size (default 4,096: two chunks)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="ray workers to compare (default 1 2)")
    parser.add_argument("--tasks", nargs="+", default=["sentiment", "coding"], choices=["sentiment", "coding"])
    parser.add_argument("--chunk-size", type=int, help="texts per chunk (default: each task's own)")
    parser.add_argument("--markdown", type=Path, help="rewrite the ray-scaling section of this Markdown file")
    args = parser.parse_args()

    import pandas as pd
    import ray

    from analysis.engines.ray import execute_ray
    from analysis.tasks.execute import MemoryStore, execute

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    capacity = effective_cores(cores)
    clock = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.perf_counter() - clock

    rows = []
    for name in args.tasks:
        task, config, texts, method = workload(name, args)
        chunk = args.chunk_size or task.chunk_size

        def store():
            return MemoryStore(stored_plan={"chunk_size": chunk, "n_items": len(texts)})

        n_chunks = -(-len(texts) // chunk)
        # Warm-up, not timed: this process imports the task's modules (torch, ...) once, as a
        # textlab process does; every timed run still loads its model (the ray actors import too).
        execute(task, texts[:8], MemoryStore(), config=config)
        print(f"{name}: {len(texts):,} texts in {n_chunks} chunks of {chunk}", file=sys.stderr)
        seconds, steady, local = timed(lambda p: execute(task, texts, store(), config=config, progress=p), len(texts))
        rows.append((name, method, len(texts), n_chunks, "local", seconds, steady))
        print(f"  local: {seconds:.1f} s", file=sys.stderr)
        for workers in args.workers:
            seconds, steady, done = timed(lambda p: execute_ray(task, texts, store(), config=config, progress=p,
                                                                workers=workers), len(texts))
            pd.testing.assert_frame_equal(done.result, local.result, check_exact=False, rtol=1e-5, atol=1e-6)
            if n_chunks < 2 * done.engine["workers"]:  # each worker's chunks arrive at once: no rate to see
                steady = None
            rows.append((name, method, len(texts), n_chunks, f"ray, {done.engine['workers']} worker"
                         + ("s" if done.engine["workers"] > 1 else ""), seconds, steady))
            print(f"  ray {workers}: {seconds:.1f} s", file=sys.stderr)
    ray.shutdown()

    machine = host_description(processor(), ram=True)
    versions = module_versions("ray", "torch", "sentence_transformers", "pandas")
    lines = [
        f"Command: `{command_line()}`",
        f"Machine: {machine}; {versions}. Ray started once ({ray_start:.1f} s, not counted).",
        f"Parallel capacity: {cores} CPU-bound processes at once run like {capacity:.1f} at full speed (a "
        "pure-Python loop alone vs. together): more workers than that cannot go faster.",
        "",
        "| task | method | texts | chunks | engine | seconds | texts/s | texts/s after first results |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, method, n, n_chunks, engine, seconds, steady in rows:
        after = f"{steady:,.0f}" if steady else "-"
        lines.append(f"| {name} | {method} | {n:,} | {n_chunks} | {engine} | {seconds:.1f} | {n / seconds:,.0f} "
                     f"| {after} |")
    print("\n".join(lines))
    if args.markdown:
        section = "\n".join([BEGIN, f"### Ray engine scaling ({date.today().isoformat()})", "",
                             "Measured by `benchmarks/ray_scaling.py`: the chunk loop in memory on the local "
                             "engine and on a local Ray instance with 1 and 2 model workers; results equal "
                             "to the local engine's.", "", *lines, END])
        write_section(args.markdown, BEGIN, END, section)
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
