"""SetFit step time: seconds per optimiser step of few-shot fine-tuning (``--classifier setfit``).

    python benchmarks/setfit_speed.py [--device auto|cpu|cuda] [--model FOLDER] [--rows 64]
                                      [--iterations 20] [--batch-size 16] [--markdown docs/benchmarks.md]

Fine-tunes the embedding model (the bundled MiniLM, or ``--model``) through
``analysis.tasks.coding.setfit.finetune_setfit``, the code a run uses, on ``--rows`` coded
texts of the sample survey (its ``human_code`` column, repeated to fill the rows), and times
every optimiser step from the trainer's callback. The first 3 steps (warm-up: CUDA kernels,
allocator) are left out of the median. Pairs/s = batch size / median step time. A run's
SetFit time is about (pairs it draws, ``setfit_pairs``) / (pairs/s) plus loading and saving.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import gpu_name, host_description, module_versions, write_section  # noqa: E402

WARM_UP = 3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", help="sentence-transformers folder (default: the bundled MiniLM)")
    ap.add_argument("--rows", type=int, default=64, help="coded texts (default 64)")
    ap.add_argument("--iterations", type=int, default=20, help="pairs per coded row (SetFit's num_iterations)")
    ap.add_argument("--batch-size", type=int, default=16, help="pairs per optimiser step (Textlab's default 16)")
    ap.add_argument("--markdown", help="rewrite this device's section of a Markdown file")
    args = ap.parse_args(argv)

    import pandas as pd

    from analysis import models
    from analysis.runner import resolve_device
    from analysis.tasks.coding.setfit import finetune_setfit

    device = resolve_device(args.device)
    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    coded = sample[sample["human_code"].str.strip() != ""]
    coded = pd.concat([coded] * (args.rows // len(coded) + 1)).head(args.rows)
    model = args.model or models.bundled_embedding_path()
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        finetune_setfit(model, coded["text"].tolist(), coded["human_code"].tolist(), Path(out) / "tuned",
                        device=str(device), iterations=args.iterations, batch_size=args.batch_size,
                        on_step=lambda step, total: stamps.append(time.perf_counter()))
        total = time.perf_counter() - start
    steps = [b - a for a, b in zip(stamps, stamps[1:])][WARM_UP:]
    if not steps:
        raise SystemExit(f"Only {len(stamps)} steps: raise --rows or --iterations.")
    median = statistics.median(steps)
    where = gpu_name(device) if device.type == "cuda" else host_description()
    lines = [
        f"Command: `python benchmarks/setfit_speed.py --device {args.device} --rows {args.rows} "
        f"--iterations {args.iterations} --batch-size {args.batch_size}`  ",
        f"Machine: {where}; {module_versions('torch', 'setfit', 'sentence_transformers')}  ",
        f"Date: {date.today().isoformat()}\n",
        "| device | model | steps | pairs per step | median step (ms) | pairs/s | whole fine-tuning (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
        f"| {device.type} | {Path(str(model)).name} | {len(stamps)} | {args.batch_size} | {median * 1000:.1f} | "
        f"{args.batch_size / median:,.0f} | {total:.1f} |",
    ]
    text = "\n".join(lines)
    print(text)
    print(f"setfit step: {median * 1000:.1f} ms, {args.batch_size / median:,.0f} pairs/s")
    if args.markdown:
        begin, end = f"<!-- setfit_speed.py {device.type}: begin -->", f"<!-- setfit_speed.py {device.type}: end -->"
        title = f"### SetFit step time ({'GPU' if device.type == 'cuda' else 'CPU'})\n"
        write_section(Path(args.markdown), begin, end, "\n".join([begin, title, text, end]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
