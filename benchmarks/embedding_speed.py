"""Speed of the shared embedding pass (``analysis.embeddings.Embedder``) with the bundled MiniLM.

    python benchmarks/embedding_speed.py [--n 5000] [--device auto|cpu|cuda] [--batch-size N]
                                         [--lengths 30,64,256] [--markdown docs/benchmarks.md]

For each length (model tokens per text, [CLS] and [SEP] included: 30 is tweet length,
256 fills all-MiniLM-L6-v2's window exactly) it embeds ``--n`` synthetic texts:

* **Textlab**: ``Embedder(device=..., cache_dir=TMP).encode(texts)`` on new texts, end to
  end as an analysis runs it: the length measurement with the tokenizer, hashing,
  sentence-transformers' own tokenisation, the model, the float32 normalisation and
  writing the cache shards. Texts/s and tokens/s (tokens with special tokens).
  On CUDA the model runs in bf16 (fp16 where bf16 is missing), batch 256; on CPU float32,
  batch 64 (or ``--batch-size``).
* **sentence-transformers**: ``model.encode(texts, batch_size=..., normalize_embeddings=True)``
  on the same loaded model, for reference: the difference is Textlab's own overhead.
* **from cache**: the same texts again (a second analysis of the corpus): hashing and
  reading the vectors, no model.

Texts are made of words drawn (fixed seed) from a built-in list of common English words,
each of which is a single token for the MiniLM tokenizer, so a text of k words has exactly
k + 2 model tokens. Model loading is timed separately and excluded; one warm-up call runs
first. ``--repeats R`` runs each length R times on new texts and reports the median (a
shared or throttled CPU varies a lot from run to run). Never touches the network.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
from _common import (append_markdown, cpu_name, gpu_name, host_description, module_versions,  # noqa: E402
                     processor)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = """
the of and to in is was for on that with as by at from his her he she it they we you this
be are were have has had not but or an which one all their there been if more when will would
who so no out up into do than only other new some could time these two may then first any my
now such like our over man me even most made after also did many before must through back years
where much your way well down should because each just those people how too little state good
very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used
take three house city school water park street market bank rate rates price prices money tax
job jobs work wage family child children health doctor hospital clinic bus train road car
police court law party vote election council government minister policy public service rent
home energy food team game match goal player season club league coach win lost fans ball
music film book art news paper radio week month morning night today early late open close
high low big small young free full hard easy best better worse poor rich happy sad angry
""".split()

MINILM_TOKENS = 256


def machine(device) -> str:
    return gpu_name(device) if device.type == "cuda" else host_description(cpu_name() or processor())


def versions() -> str:
    return module_versions("torch", "transformers", "sentence_transformers", "tokenizers")


def single_token_words(tokenizer) -> list[str]:
    words = sorted(set(WORDS))
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [w for w, i in zip(words, ids) if len(i) == 1]


def synthetic_texts(words: list[str], n: int, tokens: int, seed: int = 0) -> list[str]:
    """n distinct texts of exactly ``tokens`` model tokens (specials included)."""
    rng = np.random.default_rng(seed)
    k = max(1, tokens - 2)
    picks = rng.integers(0, len(words), size=(n, k))
    return [" ".join(words[j] for j in row) for row in picks]


def timed(fn) -> float:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="texts per length (default 5000)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256 on CUDA, 64 on CPU")
    parser.add_argument("--lengths", default="30,64,256", help="model tokens per text, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="runs per length, median reported (default 1)")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain sentence-transformers run")
    parser.add_argument("--model", default=None,
                        help="a sentence-transformers folder (default: the bundled all-MiniLM-L6-v2; on a lent GPU "
                             "the fp16 copy benchmarks/prepare_device.py writes, as the bundled package is too big "
                             "to carry)")
    parser.add_argument("--markdown", type=Path, help="append a section with the figures to this file")
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    if any(t < 3 or t > MINILM_TOKENS for t in lengths):
        parser.error(f"lengths must be between 3 and {MINILM_TOKENS} tokens (one MiniLM window)")

    from analysis.embeddings import Embedder

    cache = tempfile.TemporaryDirectory(prefix="textlab-embedding-bench-")
    start = time.perf_counter()
    embedder = Embedder(*([args.model] if args.model else []), device=args.device, batch_size=args.batch_size,
                        cache_dir=cache.name)
    load_s = time.perf_counter() - start
    where = machine(embedder.device)
    dtype = embedder.describe()["dtype"]
    words = single_token_words(embedder.tokenizer)
    print(f"Machine: {where}; {dtype}, batch {embedder.batch_size}; model loaded in {load_s:.1f} s; "
          f"{len(words)} single-token words", file=sys.stderr)
    embedder.encode(synthetic_texts(words, min(args.n, 512), 64, seed=99))  # warm-up

    rows = []
    for tokens in lengths:
        runs, refs = [], []
        for r in range(args.repeats):  # new texts each time: every run computes everything
            texts = synthetic_texts(words, args.n, tokens, seed=1000 * tokens + r)
            counts = embedder.token_counts(texts) + 2
            assert (counts == tokens).all(), "synthetic texts must have exactly the requested length"
            if not args.no_reference:
                refs.append(timed(lambda: embedder.model.encode(
                    texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                    show_progress_bar=False)))
            runs.append(timed(lambda: embedder.encode(texts)))
            assert embedder.n_split == 0 and embedder.cache_hits == 0
        cached_s = timed(lambda: embedder.encode(texts))
        assert embedder.cache_hits == len(texts)
        seconds = statistics.median(runs)
        row = {"tokens": tokens, "textlab_s": seconds, "cached_s": cached_s,
               "texts_s": args.n / seconds, "tokens_s": args.n * tokens / seconds}
        if refs:
            row["st_s"] = statistics.median(refs)
        rows.append(row)
        ref = f", sentence-transformers alone {args.n / row['st_s']:,.0f} texts/s" if refs else ""
        print(f"{tokens:>4} tokens: {row['texts_s']:,.0f} texts/s, {row['tokens_s']:,.0f} tokens/s{ref}; "
              f"from cache {args.n / cached_s:,.0f} texts/s "
              f"(runs: {', '.join(f'{args.n / t:,.0f}' for t in runs)} texts/s)", file=sys.stderr)
    batch = embedder.batch_size
    embedder.close()
    cache.cleanup()

    lines = [
        f"### Embeddings: all-MiniLM-L6-v2 on {where}",
        "",
        f"`python benchmarks/embedding_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
        f" ({date.today().isoformat()}; {versions()}). {args.n:,} synthetic texts per length"
        f"{f' (median of {args.repeats} runs)' if args.repeats > 1 else ''}, "
        f"{dtype}, batch {batch}, end to end (length measurement, hashing, tokenisation, model, "
        f"normalisation, writing the cache shards); model load ({load_s:.1f} s) excluded.",
        "",
        "| tokens per text | Textlab texts/s | Textlab tokens/s |"
        + (" sentence-transformers texts/s |" if not args.no_reference else "") + " from cache texts/s |",
        "|---:|---:|---:|" + ("---:|" if not args.no_reference else "") + "---:|",
    ]
    for row in rows:
        ref = f" {args.n / row['st_s']:,.0f} |" if "st_s" in row else ""
        lines.append(f"| {row['tokens']} | {row['texts_s']:,.0f} | {row['tokens_s']:,.0f} |{ref}"
                     f" {args.n / row['cached_s']:,.0f} |")
    print("\n".join(lines) + "\n")
    if args.markdown:
        append_markdown(args.markdown, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
