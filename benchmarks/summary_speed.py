"""Speed of abstractive summaries (``analysis.tasks.summary.abstractive.Seq2SeqSummarizer``), CPU and GPU.

    python benchmarks/summary_speed.py cpu [--n 8] [--threads 1] [--markdown docs/benchmarks.md]
    python benchmarks/summary_speed.py gpu [--n 4096] [--markdown docs/benchmarks.md]
    python benchmarks/summary_speed.py gpu --device cpu --size tiny --n 64   # smoke test, no markdown

Model: distilbart-cnn-12-6-sized with random weights, built from the real
sshleifer/distilbart-cnn-12-6 config values (BART: d_model 1024, 12 encoder and 6 decoder
layers, 16 heads, feed-forward 4096, 1024 positions, GELU, post-layer-norm) and saved
with ``save_pretrained`` (safetensors) plus the tokenizer in a temporary folder, so it
loads through ``models.load_seq2seq`` like the real model. The real BART tokenizer is not
available offline, so the bundled all-MiniLM-L6-v2 WordPiece tokenizer is used (its
``model_max_length`` set to BART's 1024) and the vocabulary is its size: the shared
embedding / LM-head matrix has 30,522 rows instead of 50,264, which makes each decode step
read 18M fewer weights than the real model (the bound below is printed for both).
``--size tiny``: the 2-layer, d_model 32 test model instead (a smoke test).

Texts: synthetic, exactly ``--tokens`` (256) model tokens each, special tokens included
(one-token vocabulary words with a full stop every 8 to 15 words; seeded). Generation as
in the issue: greedy (``num_beams=1``), ``min_new_tokens = max_new_tokens = 60`` so that
random weights do not stop early, Textlab's default ``no_repeat_ngram_size=3``,
``passthrough_words=0`` (every text is summarised).

``cpu`` (``--device cpu``; float32): ``Seq2SeqSummarizer.summarize`` on ``--n`` texts
(default 8: the distilbart-sized model needs seconds per text on a laptop-class CPU),
after a warm-up on 1 text; texts/s and generated tokens/s, model load timed separately.

``gpu`` (``--device``, default cuda; without CUDA it says "not measured")
  * Textlab: ``Seq2SeqSummarizer(folder, device="cuda")`` (bf16, length-sorted
    token-budget batches of up to 512 rows through ``run_batched``), ``summarize`` on
    ``--n`` (4,096) texts after a warm-up batch, end to end (tokenisation, padding,
    ``generate``, decoding); texts/s, generated tokens/s, rows per batch. The same with
    ``--sweep`` batch sizes (default 256 and 1024) for reference.
  * the encoder alone (one forward pass per batch of the same rows), to show how much of
    the time is the 60 decode steps.
  * baseline: plain ``model.generate`` once per text (bf16, same settings) on
    ``--per-text`` texts (32).
  * memory-bandwidth bound of the decode steps. Greedy decoding runs 60 steps per batch
    and each step must read all decoder weights once (whatever the number of rows), so a
    batch of B rows takes at least 60 x bytes / bandwidth, where bytes = 2 (bf16) x the
    decoder's parameters (the 6 layers, plus the token-embedding matrix, which BART ties
    to the LM head and reads in full at every step for the logits):
        bound texts/s = B / (60 x bytes / bandwidth),  bandwidth = 4.8 TB/s (H200 HBM3e).
    This bound ignores the encoder and the key/value caches; a tighter one also counts
    the cache reads of every step (cross-attention: 256 input positions x 6 layers x 2 x
    1024 values per row; self-attention: the tokens generated so far), which grow with B
    and dominate at large batches. Both are printed with the share reached.
  Target (from the issue): >= 800 texts/s on an H200.

``--markdown FILE`` rewrites only this script's section of FILE (between its marker
comments; appended at the end the first time): ``cpu`` rewrites the CPU block, ``gpu``
the GPU block, each keeping the other. A ``gpu`` run without CUDA leaves a measured GPU
block alone and otherwise writes "not measured". Smoke runs (``--size tiny``, or ``gpu``
on a CPU) never write markdown.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
from _common import host_description, module_versions, processor, write_part  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GPU_COMMAND = "python benchmarks/summary_speed.py gpu --markdown docs/benchmarks.md"
CPU_COMMAND = "python benchmarks/summary_speed.py cpu --markdown docs/benchmarks.md"
NOT_MEASURED = f"not measured: no GPU in this session; run `{GPU_COMMAND}` on a CUDA machine"
NO_GPU: list[str] = []  # run_gpu's answer without CUDA (identity-compared)
TARGET_TEXTS_PER_S = 800
NEW_TOKENS = 60
H200_BANDWIDTH = 4.8e12
REAL_VOCAB = 50264  # sshleifer/distilbart-cnn-12-6 config.json vocab_size

MARK_BEGIN = "<!-- BEGIN benchmarks/summary_speed.py: generated, re-run the script instead of editing -->"
MARK_END = "<!-- END benchmarks/summary_speed.py -->"
INTRO = [
    "## Abstractive summaries (CPU and GPU)",
    "",
    "`benchmarks/summary_speed.py` times `Seq2SeqSummarizer` (analysis/tasks/summary/abstractive.py) with a "
    "distilbart-cnn-12-6-sized BART with random weights (the real config values: d_model 1024, 12 encoder / "
    "6 decoder layers, 16 heads, FFN 4096; the bundled MiniLM WordPiece tokenizer stands in for BART's, so "
    "the vocabulary is 30,522 instead of 50,264) on synthetic texts of exactly 256 model tokens, greedy, "
    "60 new tokens forced (min = max), no_repeat_ngram_size 3. Target on an H200: at least 800 texts/s. "
    "See the script's docstring for the details and the memory-bandwidth bound.",
]


# sshleifer/distilbart-cnn-12-6 config.json values, minus vocab_size and the special-token
# ids (the stand-in tokenizer's).
DISTILBART = dict(
    d_model=1024, encoder_layers=12, decoder_layers=6, encoder_attention_heads=16, decoder_attention_heads=16,
    encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024, activation_function="gelu",
    scale_embedding=False, dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, init_std=0.02,
)
TINY = dict(
    d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
    encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024, init_std=0.02,
)


# --------------------------------------------------------------------------- environment


def versions() -> str:
    return module_versions("torch", "transformers", "tokenizers")


def machine(device) -> str:
    import torch

    from analysis.runner import device_description

    cpu = f"{host_description(processor())}, torch threads {torch.get_num_threads()}"
    return f"{device_description(device)}; {cpu}" if device.type == "cuda" else cpu


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def fmt_rate(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- model and texts


def stand_in_tokenizer():
    from tests.tiny_models import bundled_tokenizer

    # BART takes no token_type_ids; BART's window is 1024 tokens.
    return bundled_tokenizer(model_input_names=["input_ids", "attention_mask"], model_max_length=1024)


def build_model(folder: Path, size: str) -> Path:
    """A distilbart-sized (or tiny) random BART + the stand-in tokenizer, saved as safetensors."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = stand_in_tokenizer()
    shape = DISTILBART if size == "distilbart" else TINY
    config = BartConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.sep_token_id,
        forced_eos_token_id=tokenizer.sep_token_id, **shape,
    )
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def make_texts(tokenizer, n: int, tokens: int, seed: int = 0) -> list[str]:
    """n texts of exactly ``tokens`` model tokens (special tokens included), seeded."""
    vocab = tokenizer.get_vocab()
    words = sorted(w for w in vocab if re.fullmatch(r"[a-z]{3,12}", w))
    rng = np.random.default_rng(seed)
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    content = tokens - specials
    texts = []
    for _ in range(n):
        pieces, sentence, until = [], [], int(rng.integers(8, 16))
        while len(pieces) + len(sentence) < content:
            sentence.append(words[int(rng.integers(len(words)))])
            if len(sentence) == until and len(pieces) + len(sentence) + 1 <= content:
                pieces.extend(sentence + ["."])
                sentence, until = [], int(rng.integers(8, 16))
        pieces.extend(sentence)
        pieces = pieces[:content]
        text = " ".join(pieces).replace(" .", ".")
        texts.append(text[0].upper() + text[1:])
    counts = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    if set(counts) != {tokens}:
        raise RuntimeError(f"synthetic texts are {min(counts)}..{max(counts)} tokens, not {tokens}")
    return texts


def summarizer(folder: Path, device: str, batch_size: int | None = None):
    from analysis.tasks.summary.abstractive import Seq2SeqSummarizer

    return Seq2SeqSummarizer(str(folder), device=device, dtype="auto", batch_size=batch_size,
                             max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, num_beams=1,
                             passthrough_words=0)


def timed_summarize(summ, texts: list[str]) -> tuple[float, list[str]]:
    sync(summ.device)
    start = time.perf_counter()
    out = summ.summarize(texts)
    sync(summ.device)
    return time.perf_counter() - start, out


def check_outputs(summ, out: list[str], n: int) -> None:
    if len(out) != n or not all(out) or summ.n_chunked:
        raise RuntimeError(f"unexpected output: {len(out)} summaries for {n} texts, {summ.n_chunked} chunked")


# --------------------------------------------------------------------------- cpu


def run_cpu(args) -> list[str] | None:
    from analysis.runner import resolve_device

    device = resolve_device(args.device or "cpu")
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp) / "model", args.size)
        texts = make_texts(stand_in_tokenizer(), args.n + 1, args.tokens)
        start = time.perf_counter()
        summ = summarizer(folder, str(device), args.batch_size)
        load_s = time.perf_counter() - start
        params = sum(p.numel() for p in summ.model.parameters())
        timed_summarize(summ, texts[:1])  # warm-up
        wall, out = timed_summarize(summ, texts[1:])
        check_outputs(summ, out, args.n)
        info = summ.describe()
        rows = summ.batch_rows
        summ.close()
    load_after = load_average()
    rate = args.n / wall
    print(f"device: {machine(device)}; {versions()}")
    print(f"model: {args.size}-sized random BART, {params / 1e6:.0f}M parameters, {info['dtype']}, load {load_s:.1f} s")
    print(f"{args.n} texts x {args.tokens} tokens, greedy, {NEW_TOKENS} new tokens: {wall:.1f} s, "
          f"{fmt_rate(rate)} texts/s, {fmt_rate(rate * NEW_TOKENS)} generated tokens/s "
          f"(batches of {', '.join(map(str, rows))} rows)")
    if args.size != "distilbart" or device.type != "cpu":
        print("smoke run: no markdown written")
        return None
    loads = ", ".join(f"{x:.1f}" for x in (load_before, load_after) if x is not None)
    return [
        f"### Abstractive summaries, CPU ({date.today().isoformat()})",
        "",
        f"Command: `python benchmarks/summary_speed.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {machine(device)}; {versions()}; 1-minute load average {loads} at the start and end "
        "(other processes on a shared machine slow the figures down)  ",
        f"Model: distilbart-cnn-12-6-sized BART, random weights, {params / 1e6:.0f}M parameters (vocabulary "
        f"30,522), float32, loaded in {load_s:.1f} s; batches of up to {info['batch_size']} rows "
        f"({', '.join(map(str, rows))} rows here).",
        "",
        "| texts | tokens per text | decoding | new tokens | wall (s) | s per text | texts/s | generated tokens/s |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
        f"| {args.n} | {args.tokens} | greedy, no_repeat_ngram_size 3 | {NEW_TOKENS} | {wall:.1f} | "
        f"{wall / args.n:.1f} | **{fmt_rate(rate)}** | {fmt_rate(rate * NEW_TOKENS)} |",
        "",
        f"Timed after a warm-up on one text; model load not included. At {wall / args.n:.0f} s per text on this "
        "machine, abstractive summaries of a whole corpus need a GPU; on a CPU they suit a few hundred texts, "
        "and the extractive summary stays the offline default.",
    ]


# --------------------------------------------------------------------------- gpu


def decoder_param_count(model) -> tuple[int, int]:
    """(decoder parameters incl. the tied embedding / LM head, of which the embedding matrix)."""
    decoder = model.get_decoder()
    seen, total = set(), 0
    for p in decoder.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    lm_head = model.get_output_embeddings().weight
    if id(lm_head) not in seen:  # untied head: read every step too
        total += lm_head.numel()
    return total, lm_head.numel()


def bounds(model, rows: int, input_tokens: int, bandwidth: float, elem: int, vocab: int | None = None):
    """Weight-read bound and weights + KV-cache bound, in texts/s, for batches of ``rows``."""
    config = model.config
    params, embedding = decoder_param_count(model)
    if vocab is not None:
        params += (vocab - config.vocab_size) * config.d_model
    weight_bytes = elem * params
    weights_only = rows / (NEW_TOKENS * weight_bytes / bandwidth)
    per_layer_row = 2 * config.d_model * elem * config.decoder_layers
    # Per step and row: cross-attention K/V over the input, self-attention K/V over the tokens so far.
    cache_bytes = rows * per_layer_row * (NEW_TOKENS * input_tokens + NEW_TOKENS * (NEW_TOKENS + 1) / 2)
    with_cache = rows / ((NEW_TOKENS * weight_bytes + cache_bytes) / bandwidth)
    return params, weight_bytes, weights_only, with_cache


def encoder_time(summ, texts: list[str]) -> float:
    """The encoder alone over the same batches as summarize (rows = the summarizer's batch size)."""
    import torch

    ids = summ.encode(texts)
    rows = summ.batch_rows[0] if summ.batch_rows else summ.batch_size
    encoder = summ.model.get_encoder()
    sync(summ.device)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(ids), rows):
            batch = summ.collate(ids[i:i + rows])
            encoder(**batch)
    sync(summ.device)
    return time.perf_counter() - start


def per_text_baseline(summ, texts: list[str]) -> float:
    import torch

    kwargs = summ.generation_kwargs()
    sync(summ.device)
    start = time.perf_counter()
    for text in texts:
        enc = summ.tokenizer(text, return_tensors="pt").to(summ.device)
        with torch.inference_mode():
            out = summ.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **kwargs)
        summ.tokenizer.decode(out[0].cpu(), skip_special_tokens=True)
    sync(summ.device)
    return time.perf_counter() - start


def run_gpu(args) -> list[str] | None:
    """The GPU measurements; markdown lines, None for a smoke run, NO_GPU without CUDA."""
    import torch

    from analysis.errors import TextlabError
    from analysis.runner import resolve_device

    try:
        device = resolve_device(args.device or "cuda")
    except TextlabError as exc:
        print(f"no CUDA device: GPU part not measured ({exc})")
        return NO_GPU
    smoke = device.type != "cuda" or args.size != "distilbart"
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp) / "model", args.size)
        texts = make_texts(stand_in_tokenizer(), args.n, args.tokens)
        start = time.perf_counter()
        summ = summarizer(folder, str(device), args.batch_size)
        load_s = time.perf_counter() - start
        elem = torch.finfo(summ.torch_dtype).bits // 8
        print(f"device: {machine(device)}; {versions()}")
        print(f"model: {args.size}-sized random BART, {summ.model.num_parameters() / 1e6:.0f}M parameters, "
              f"{str(summ.torch_dtype).removeprefix('torch.')}, load {load_s:.1f} s; token budget "
              f"{summ.max_tokens:,} per batch, up to {summ.batch_size} rows")
        timed_summarize(summ, texts[:summ.batch_size])  # warm-up: kernels, allocator
        wall, out = timed_summarize(summ, texts)
        check_outputs(summ, out, len(texts))
        rows_used = list(summ.batch_rows)
        rate = len(texts) / wall
        enc_s = encoder_time(summ, texts)
        rows = max(rows_used)
        params, weight_bytes, bound_w, bound_wc = bounds(summ.model, rows, args.tokens, args.bandwidth, elem)
        real_params, _, real_bound_w, _ = bounds(summ.model, rows, args.tokens, args.bandwidth, elem, REAL_VOCAB)
        print(f"Textlab: {len(texts)} texts in {wall:.2f} s = {fmt_rate(rate)} texts/s, "
              f"{fmt_rate(rate * NEW_TOKENS)} generated tokens/s; {len(rows_used)} batches of up to {rows} rows; "
              f"encoder alone {enc_s:.2f} s ({100 * enc_s / wall:.0f} % of the time)")
        print(
            f"bound (decode steps, weights only): bytes = {elem} x {params / 1e6:.1f}M decoder params = "
            f"{weight_bytes / 1e6:.0f} MB per step; a batch of {rows} rows needs >= {NEW_TOKENS} x "
            f"{weight_bytes / 1e6:.0f} MB / {args.bandwidth / 1e12:.1f} TB/s = "
            f"{1e3 * NEW_TOKENS * weight_bytes / args.bandwidth:.2f} ms, so <= {fmt_rate(bound_w)} texts/s "
            f"(reached {100 * rate / bound_w:.1f} %); with the real 50,264-row vocabulary: "
            f"{real_params / 1e6:.1f}M params, <= {fmt_rate(real_bound_w)} texts/s"
        )
        print(f"bound with the key/value cache reads of every step: <= {fmt_rate(bound_wc)} texts/s "
              f"(reached {100 * rate / bound_wc:.1f} %)")
        sweep = []
        for size in args.sweep:
            if size == summ.batch_size:
                continue
            other = summarizer(folder, str(device), size)
            timed_summarize(other, texts[:size])
            s_wall, s_out = timed_summarize(other, texts)
            check_outputs(other, s_out, len(texts))
            s_rows = max(other.batch_rows)
            s_bound = bounds(other.model, s_rows, args.tokens, args.bandwidth, elem)
            sweep.append((size, s_rows, s_wall, len(texts) / s_wall, s_bound[2], s_bound[3]))
            print(f"batch_size={size}: {fmt_rate(len(texts) / s_wall)} texts/s ({s_wall:.2f} s, rows {s_rows})")
            other.close()
        n_base = min(args.per_text, len(texts))
        base_s = per_text_baseline(summ, texts[:n_base])
        base_rate = n_base / base_s
        print(f"per-text model.generate: {n_base} texts in {base_s:.1f} s = {fmt_rate(base_rate)} texts/s; "
              f"Textlab is {rate / base_rate:.0f}x faster")
        ok = rate >= TARGET_TEXTS_PER_S
        print(f"target >= {TARGET_TEXTS_PER_S} texts/s: {'PASS' if ok else 'FAIL'}")
        describe = summ.describe()
        summ.close()
    if smoke:
        print("smoke run: no markdown written")
        return None
    lines = [
        f"### Abstractive summaries, GPU ({date.today().isoformat()})",
        "",
        f"Command: `python benchmarks/summary_speed.py {' '.join(sys.argv[1:])}`  ",
        f"Machine: {machine(device)}; {versions()}  ",
        f"Model: distilbart-cnn-12-6-sized BART, random weights, {describe['dtype']}, loaded in {load_s:.1f} s; "
        f"{len(texts):,} texts of {args.tokens} tokens, greedy, {NEW_TOKENS} new tokens (min = max), "
        f"no_repeat_ngram_size 3; token budget {describe['max_tokens_per_batch']:,} per batch.",
        "",
        "| what | rows per batch | wall (s) | texts/s | generated tokens/s | bound: weights (texts/s) | "
        "bound: weights + KV cache (texts/s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| **Textlab `Seq2SeqSummarizer.summarize`** (default batch size {describe['batch_size']}) | {rows} | "
        f"{wall:.2f} | **{fmt_rate(rate)}** | {fmt_rate(rate * NEW_TOKENS)} | {fmt_rate(bound_w)} "
        f"({100 * rate / bound_w:.1f} %) | {fmt_rate(bound_wc)} ({100 * rate / bound_wc:.1f} %) |",
    ]
    for size, s_rows, s_wall, s_rate, s_bw, s_bwc in sweep:
        lines.append(f"| same, batch_size={size} | {s_rows} | {s_wall:.2f} | {fmt_rate(s_rate)} | "
                     f"{fmt_rate(s_rate * NEW_TOKENS)} | {fmt_rate(s_bw)} ({100 * s_rate / s_bw:.1f} %) | "
                     f"{fmt_rate(s_bwc)} ({100 * s_rate / s_bwc:.1f} %) |")
    lines += [
        f"| encoder alone, same batches | {rows} | {enc_s:.2f} | - | - | - | - |",
        f"| plain `model.generate` per text ({n_base} texts) | 1 | {base_s:.1f} | {fmt_rate(base_rate)} | "
        f"{fmt_rate(base_rate * NEW_TOKENS)} | - | - |",
        "",
        f"Target >= {TARGET_TEXTS_PER_S} texts/s: **{'PASS' if ok else 'FAIL'}** ({rate / base_rate:.0f}x the "
        "per-text baseline). Bound (weights): every decode step reads all decoder weights once per batch, "
        f"bytes = {elem} x {params / 1e6:.1f}M decoder parameters (6 layers + the token-embedding matrix, tied "
        f"to the LM head) = {weight_bytes / 1e6:.0f} MB, so texts/s <= B / ({NEW_TOKENS} x bytes / "
        f"{args.bandwidth / 1e12:.1f} TB/s) for batches of B rows (with the real 50,264-token vocabulary: "
        f"{real_params / 1e6:.1f}M parameters, <= {fmt_rate(real_bound_w)} texts/s). The second bound adds "
        "the key/value cache reads of every step (cross-attention over the 256 input tokens and "
        "self-attention over the tokens so far, per row); neither counts the encoder.",
    ]
    return lines


# --------------------------------------------------------------------------- markdown


def placeholder(part: str) -> list[str]:
    if part == "gpu":
        return ["### Abstractive summaries, GPU", "", NOT_MEASURED + "."]
    return ["### Abstractive summaries, CPU", "", f"not measured yet: run `{CPU_COMMAND}`."]


def write_markdown(path: Path, part: str, lines: list[str] | None) -> None:
    """Rewrite this script's ``part`` block in path; lines None = keep a measured block."""
    write_part(path, part, lines, script="summary_speed.py", begin=MARK_BEGIN, end=MARK_END, intro=INTRO,
               placeholder=placeholder)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    cpu = sub.add_parser("cpu", help="Seq2SeqSummarizer on the CPU")
    cpu.add_argument("--n", type=int, default=8, help="texts to summarise (default 8)")
    gpu = sub.add_parser("gpu", help="Seq2SeqSummarizer on a CUDA GPU, with the bandwidth bound")
    gpu.add_argument("--n", type=int, default=4096, help="texts to summarise (default 4,096)")
    gpu.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",") if x], default=[256, 1024],
                     help="further batch sizes to time (default 256,1024; '' for none)")
    gpu.add_argument("--per-text", type=int, default=32, help="texts for the per-text baseline (default 32)")
    gpu.add_argument("--bandwidth", type=float, default=H200_BANDWIDTH,
                     help="memory bandwidth in bytes/s for the bound (default 4.8e12, H200)")
    for p in (cpu, gpu):
        p.add_argument("--tokens", type=int, default=256, help="model tokens per text (default 256)")
        p.add_argument("--size", choices=("distilbart", "tiny"), default="distilbart")
        p.add_argument("--device", default=None, help="default: cpu for `cpu`, cuda for `gpu`")
        p.add_argument("--batch-size", type=int, default=None, help="rows per batch (default: Textlab's)")
        p.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's; 1 can be faster on a busy shared machine)")
        p.add_argument("--markdown", type=Path, default=None, help="rewrite this script's block in FILE")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    lines = run_cpu(args) if args.part == "cpu" else run_gpu(args)
    if args.markdown is not None:
        if lines is NO_GPU:
            write_markdown(args.markdown, "gpu", None)  # keeps a measured block, else "not measured"
        elif lines is not None:
            write_markdown(args.markdown, args.part, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
