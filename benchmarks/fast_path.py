"""A fast CPU embedding path: candidates against the fp32 MiniLM, by speed and by task figures.

    python benchmarks/fast_path.py [--eval-dir ../shared/eval] [--only NAME ...] [--markdown FILE]

Reference: the bundled all-MiniLM-L6-v2 in float32 through ``analysis.embeddings.Embedder``
(CPU, batch 64, long texts split into windows). Candidates:

- ``torch-int8``: the same model with its Linear layers quantised to int8 on the fly
  (``torch.ao.quantization.quantize_dynamic``), still through ``Embedder``.
- ``onnx-fp32`` / ``onnx-int8``: the transformer exported to ONNX (TorchScript exporter) and
  run by onnxruntime, in fp32 and after onnxruntime's dynamic int8 quantisation (weights
  int8, activations quantised per batch) -- what sentence-transformers'
  ``export_dynamic_quantized_onnx_model`` does, without optimum-onnx, whose releases require
  transformers < 4.58. ``onnx-fp32`` runs only when named in ``--only``. Run inside the same sentence-transformers pipeline (tokenizer,
  pooling) and ``Embedder`` (windows), with only the transformer swapped.
- ``openvino-fp32`` / ``openvino-w8`` / ``openvino-int8``: the same ONNX graph in OpenVINO,
  as it is (what the runtime alone gives), with NNCF int8 weight compression, or with NNCF's post-training int8 quantisation (weights and
  activations, ``ModelType.TRANSFORMER``) calibrated on the project's own
  ``sample_data/policy_survey.csv`` (not on evaluation data).
- ``static-256``, ``static-384``, ``static-none``: a static Model2Vec-style model distilled
  from the bundled MiniLM by ``analysis.fastpath.build_static_model`` with PCA to 256
  dimensions, PCA without reduction, and no PCA. Built once into ``--static-dir`` and reused
  while the source fingerprint matches (``--rebuild`` forces it).

Measured for each:

- **speed**: texts/s embedding the first ``--n`` (2,000) AG News texts (mean 38 words) and the
  bodies of the first ``--long-n`` (100) BBC articles (mean ~320 words: MiniLM splits these
  into windows), after a warm-up call, model loading excluded, median of ``--repeats`` (3)
  runs; no embedding cache. The repeats of all options are interleaved (round 1 of each,
  then round 2, ...) so that load from other programs falls on all alike; that load is
  measured (``_common.OtherLoad``) and printed. torch, onnxruntime and OpenVINO use all cores.
- **agreement with fp32** on all AG News texts: mean and 5th percentile of the cosine between
  a text's candidate and fp32 vectors (same vector space only; a static model has its own),
  and, for every candidate, Pearson r between candidate and fp32 cosines over 20,000 random
  pairs of texts (does it rank similarities the same way?).
- **tasks**: AG News few-shot macro-F1 (logistic regression, 32 coded rows per code, the five
  draws of ``benchmarks/coding_validity.py``, mean), AG News KMeans NMI (k = 4,
  ``n_init=10``, seeds 0-2, mean, as ``benchmarks/topics_benchmark.py``), and BBC ROUGE-2 F1
  of the app's extractive summary (``extractive_summaries`` with its defaults on the article
  bodies, references re-split, as ``benchmarks/summary_validity.py``; ``--summary-limit``
  for a subset).

Target (issue 16): at least 5x the fp32 texts/s on AG News with no task figure more than
0.03 below fp32. Evaluation data stays in ``../shared/eval``; nothing of it is written here.
Needs ``pip install rouge-score model2vec skeletoken onnx onnxruntime openvino nncf``
(candidates whose packages are missing are skipped and said so).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import OtherLoad, cpu_name, host_description, package_version, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coding_validity import draw  # noqa: E402  (the same few-shot draws as the validity benchmark)
from summary_validity import body_of, resplit_reference  # noqa: E402

from analysis import models  # noqa: E402
from analysis.codebook import read_codebook  # noqa: E402
from analysis.embeddings import Embedder, folder_fingerprint, _normalize  # noqa: E402
from analysis.tasks.coding import FewShotModel  # noqa: E402
from analysis.tasks.summary.extractive import extractive_summaries  # noqa: E402

MARK_BEGIN = "<!-- fast-path:start -->"
MARK_END = "<!-- fast-path:end -->"
TARGET_SPEEDUP = 5.0
TARGET_DROP = 0.03
FEW_SHOT_N = 32
FEW_SHOT_DRAWS = 5
KMEANS_SEEDS = (0, 1, 2)
PAIRS = 20_000
STATIC_VARIANTS = {"static-256": 256, "static-384": 384, "static-none": None}
# onnx-fp32 only on request (--only): it shows what the runtime alone gives, at a few minutes more.
DEFAULT = ["fp32", "torch-int8", "onnx-int8", "openvino-fp32", "openvino-w8", "openvino-int8", *STATIC_VARIANTS]
ALL = [*DEFAULT, "onnx-fp32"]


# --------------------------------------------------------------------------- candidates


class SwappedEmbedder(Embedder):
    """An Embedder whose freshly loaded sentence-transformers model is changed by ``swap(st)``.

    Everything else (tokenizer, windows for long texts, batching, normalisation) stays the
    app's, so the difference to fp32 is the model alone. Loaded outside models.POOL, which
    would hand back the fp32 model it holds under the same key.
    """

    def __init__(self, swap, **kwargs):
        self._swap = swap
        super().__init__(**kwargs)

    def _load(self):
        return self._swap(self._load_now())


class _TokenModel:
    """Stands in for the transformer inside sentence-transformers: token vectors from a runtime."""

    def __init__(self, run, config):
        import torch

        self._run, self.config, self._torch = run, config, torch

    def __call__(self, input_ids, attention_mask, token_type_ids=None, **_):
        feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
                "token_type_ids": (token_type_ids if token_type_ids is not None
                                   else self._torch.zeros_like(input_ids)).numpy()}
        return {"last_hidden_state": self._torch.from_numpy(np.asarray(self._run(feed)))}

    forward = __call__


def _replace_transformer(st, run) -> object:
    import torch

    transformer = st[0]

    class Runtime(torch.nn.Module):  # a Module, so that sentence-transformers' .to()/.eval() keep working
        def __init__(self):
            super().__init__()
            self.inner = _TokenModel(run, transformer.model.config)
            self.config = transformer.model.config

        def forward(self, **kwargs):
            return self.inner(**{k: kwargs.get(k) for k in ("input_ids", "attention_mask", "token_type_ids")})

    transformer.model = Runtime()
    transformer.model_forward_params = None  # pass everything; Runtime picks what it needs
    return st


def export_onnx(source: Path, folder: Path) -> Path:
    """The MiniLM transformer (token vectors) as ONNX, dynamic batch and length."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(source), local_files_only=True, use_safetensors=True).eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 16, dtype=torch.long)
    path = folder / "model.onnx"
    torch.onnx.export(TokenVectors(model), (ids, ids, torch.zeros_like(ids)), str(path), input_names=names,
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]})
    return path


@dataclass
class Built:
    encoder: object  # .encode(texts, progress=None) -> unit vectors
    note: str
    setup_s: float
    size_mb: float | None
    same_space: bool = True
    extra: dict = field(default_factory=dict)


def _file_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1e6


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


class StaticEncoder:
    """A static sentence-transformers folder with the Embedder's output contract (unit float32 rows,
    zero rows for blank texts). No windows: a static model has no length limit."""

    def __init__(self, folder: Path, batch_size: int = 1024):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True, trust_remote_code=False)
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = batch_size

    def encode(self, texts, progress=None):
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if keep:
            vectors = self.model.encode([texts[i] for i in keep], batch_size=self.batch_size, convert_to_numpy=True,
                                        normalize_embeddings=False, show_progress_bar=False)
            out[keep] = _normalize(vectors)
        if progress is not None:
            progress(len(texts))
        return out

    def close(self):
        self.model = None


def static_folder(args, name: str, pca, source: Path) -> tuple[Path, dict]:
    """A built static model for this variant: reused while its source fingerprint matches."""
    from analysis.fastpath import METADATA_FILE, build_static_model

    folder = Path(args.static_dir) / name
    meta_path = folder / METADATA_FILE
    fingerprint = folder_fingerprint(source)
    if not args.rebuild and meta_path.is_file():
        meta = json.loads(meta_path.read_text("utf-8"))
        if meta["source"]["fingerprint"] == fingerprint and meta["settings"]["pca_dims"] == pca:
            return folder, meta
    print(f"{name}: distilling from {source} (pca_dims={pca}) ...", flush=True)
    build_static_model(source, folder, pca_dims=pca)
    meta = json.loads(meta_path.read_text("utf-8"))
    meta["built_now"] = True
    return folder, meta


def calibration_texts(n: int = 300) -> list[str]:
    """Texts written for this project (sample_data), for OpenVINO's activation ranges."""
    data = pd.read_csv(ROOT / "sample_data" / "policy_survey.csv")
    texts = [t for t in data["text"].dropna().astype(str) if t.strip()]
    return texts[:n]


def build(name: str, args, source: Path, work: Path) -> Built:
    t0 = time.perf_counter()
    embed_kwargs = {"model": "all-minilm-l6-v2", "device": "cpu", "cache_dir": None}
    if name == "fp32":
        enc = Embedder(**embed_kwargs)
        return Built(enc, "Embedder, float32, batch 64", time.perf_counter() - t0, _file_mb(source / "model.safetensors"))
    if name == "torch-int8":
        import torch

        def swap(st):
            st[0].model = torch.ao.quantization.quantize_dynamic(st[0].model, {torch.nn.Linear}, dtype=torch.qint8)
            return st

        enc = SwappedEmbedder(swap, **embed_kwargs)
        buffer = io.BytesIO()
        torch.save(enc.model[0].model.state_dict(), buffer)
        return Built(enc, "torch quantize_dynamic(Linear, qint8) in Embedder", time.perf_counter() - t0,
                     len(buffer.getvalue()) / 1e6)
    if name.startswith(("onnx", "openvino")):
        onnx_path = work / "model.onnx"
        if not onnx_path.is_file():
            export_onnx(source, work)
        if name == "onnx-fp32" or name == "onnx-int8":
            import onnxruntime as ort

            path = onnx_path
            if name == "onnx-int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                path = work / "model_int8.onnx"
                if not path.is_file():
                    quantize_dynamic(str(onnx_path), str(path), weight_type=QuantType.QInt8)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            enc = SwappedEmbedder(lambda st: _replace_transformer(st, lambda feed: session.run(None, feed)[0]),
                                  **embed_kwargs)
            note = (f"onnxruntime {ort.__version__}" + (", quantize_dynamic QInt8 weights" if name == "onnx-int8" else "")
                    + ", in Embedder")
            return Built(enc, note, time.perf_counter() - t0, _file_mb(path))
        import nncf
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(onnx_path))
        if name == "openvino-fp32":
            note = "OpenVINO, float32 (the runtime alone, no quantisation)"
        elif name == "openvino-w8":
            model = nncf.compress_weights(model)  # int8 weights (asymmetric, per channel), fp32 activations
            note = "OpenVINO, NNCF compress_weights (int8 weights)"
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(source), local_files_only=True)

            def to_feed(text):
                e = tok([text], truncation=True, max_length=256, return_tensors="np")
                return {k: e[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}

            data = nncf.Dataset(calibration_texts(), to_feed)
            model = nncf.quantize(model, data, model_type=nncf.ModelType.TRANSFORMER, subset_size=300)
            note = "OpenVINO, NNCF quantize (int8 weights + activations; calibrated on sample_data)"
        saved = work / f"{name}.xml"
        ov.save_model(model, str(saved))
        compiled = core.compile_model(model, "CPU")
        request = compiled.create_infer_request()
        enc = SwappedEmbedder(lambda st: _replace_transformer(st, lambda feed: request.infer(feed)[0].copy()),
                              **embed_kwargs)
        return Built(enc, f"{note}, openvino {package_version('openvino')}, in Embedder", time.perf_counter() - t0,
                     _file_mb(saved, saved.with_suffix(".bin")))
    if name in STATIC_VARIANTS:
        folder, meta = static_folder(args, name, STATIC_VARIANTS[name], source)
        load_t = time.perf_counter()
        enc = StaticEncoder(folder)
        pca = meta["settings"]["pca_dims"]
        note = (f"model2vec {meta['versions']['model2vec']} distillation, "
                + (f"PCA {pca}" if pca else "no PCA") + f", SIF {meta['settings']['sif_coefficient']:g}, "
                f"{meta['dim']} dims")
        return Built(enc, note, time.perf_counter() - load_t, _folder_mb(folder), same_space=False,
                     extra={"distill_s": meta.get("distill_seconds"), "built_now": meta.get("built_now", False)})
    raise ValueError(name)


# --------------------------------------------------------------------------- measures


def few_shot_f1(vectors: np.ndarray, labels: np.ndarray, codes: list[str]) -> float:
    from sklearn.metrics import f1_score

    scores = []
    for seed in range(FEW_SHOT_DRAWS):
        train, test = draw(labels, codes, FEW_SHOT_N, seed)
        model = FewShotModel(seed=seed, labels=codes).fit(vectors[train], list(labels[train]))
        scores.append(f1_score(list(labels[test]), model.predict(vectors[test]), average="macro"))
    return float(np.mean(scores))


def kmeans_nmi(vectors: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    return float(np.mean([normalized_mutual_info_score(labels, KMeans(4, random_state=s, n_init=10).fit_predict(vectors))
                          for s in KMEANS_SEEDS]))


def rouge2(encoder, bodies: list[str], references: list[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge2"], use_stemmer=True)
    summaries = extractive_summaries(bodies, encoder)
    return float(np.mean([scorer.score(ref, "\n".join(src[a:b] for a, b in s.spans))["rouge2"].fmeasure
                          for s, src, ref in zip(summaries, bodies, references)]))


def pair_sims(vectors: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.einsum("ij,ij->i", vectors[pairs[0]], vectors[pairs[1]])


# --------------------------------------------------------------------------- report


def fmt_delta(value: float, ref: float) -> str:
    return f"{value:.3f} ({value - ref:+.3f})"


def table(rows: list[dict]) -> list[str]:
    ref = rows[0]
    lines = [
        "| option | texts/s, AG News | x fp32 | texts/s, BBC articles | x fp32 | cosine to fp32, mean / p5 | "
        "pair-sim r | few-shot F1 @32 | KMeans NMI | ROUGE-2 | size, MB | target |",
        "|---|---:|---:|---:|---:|---|---:|---|---|---|---:|---|",
    ]
    for r in rows:
        cos = f"{r['cos_mean']:.4f} / {r['cos_p5']:.4f}" if r["cos_mean"] is not None else "other space"
        size = f"{r['size_mb']:.0f}" if r["size_mb"] is not None else "?"
        lines.append(
            f"| {r['name']} | {r['tps']:,.0f} | {r['tps'] / ref['tps']:.1f} | {r['tps_long']:,.1f} | "
            f"{r['tps_long'] / ref['tps_long']:.1f} | {cos} | {r['pair_r']:.3f} | {fmt_delta(r['f1'], ref['f1'])} | "
            f"{fmt_delta(r['nmi'], ref['nmi'])} | {fmt_delta(r['rouge2'], ref['rouge2'])} | {size} | "
            f"{verdict(r, ref)} |")
    return lines


def verdict(r: dict, ref: dict) -> str:
    if r is ref:
        return "reference"
    fast = r["tps"] / ref["tps"] >= TARGET_SPEEDUP
    worst = min(r[k] - ref[k] for k in ("f1", "nmi", "rouge2"))
    good = worst >= -TARGET_DROP
    return "**meets**" if fast and good else (f"fast enough, worst drop {worst:.3f}" if fast else
                                             f"{r['tps'] / ref['tps']:.1f}x only" + ("" if good else f", worst drop {worst:.3f}"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval-dir", default=str(ROOT.parent / "shared" / "eval"))
    ap.add_argument("--only", nargs="+", choices=ALL, help="these candidates only (fp32 always runs)")
    ap.add_argument("--n", type=int, default=2000, help="AG News texts timed (default 2000)")
    ap.add_argument("--long-n", type=int, default=100, help="BBC article bodies timed (default 100)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--summary-limit", type=int, help="ROUGE on the first N BBC articles only")
    ap.add_argument("--static-dir", default=str(Path.home() / ".cache" / "textlab-fastpath"),
                    help="where the distilled static models are built and kept")
    ap.add_argument("--rebuild", action="store_true", help="distill the static models again")
    ap.add_argument("--markdown", help="rewrite the fast-path section of this Markdown file")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    try:
        import rouge_score  # noqa: F401
    except ImportError:
        print("This benchmark needs rouge-score: pip install rouge-score", file=sys.stderr)
        return 2
    eval_dir = Path(args.eval_dir)
    ag = pd.read_csv(eval_dir / "coding_agnews_dev.csv")
    texts = ag["text"].astype(str).tolist()
    labels = ag["label"].astype(str).to_numpy(dtype=object)
    codes = read_codebook(ROOT / "benchmarks" / "agnews_codebook.json").labels  # coding_validity's order
    bbc = pd.read_csv(eval_dir / "summary_bbc_dev.csv")
    n_bbc = len(bbc)
    if args.summary_limit:
        bbc = bbc.head(args.summary_limit)
    bodies = [body_of(a) for a in bbc["article"].astype(str)]
    references = [resplit_reference(str(s)) for s in bbc["summary"]]
    long_texts = [body_of(a) for a in pd.read_csv(eval_dir / "summary_bbc_dev.csv")["article"].astype(str)][: args.long_n]
    timed = texts[: args.n]
    warm = texts[-64:]  # warm-up on other rows than the timed ones
    rng = np.random.default_rng(0)
    pairs = (rng.integers(0, len(texts), PAIRS), rng.integers(0, len(texts), PAIRS))
    source = models.bundled_embedding_path()

    names = ["fp32"] + [n for n in (args.only or DEFAULT) if n != "fp32"]
    rows, failed, built = [], [], {}
    with tempfile.TemporaryDirectory(prefix="textlab-fastpath-") as tmp:
        work = Path(tmp)
        for name in names:
            print(f"== building {name}", flush=True)
            try:
                built[name] = build(name, args, source, work)
                built[name].encoder.encode(warm)  # warm-up
                built[name].encoder.encode(long_texts[:4])
            except Exception as exc:  # a candidate that cannot be built is reported, not fatal
                reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                print(f"{name}: skipped ({reason})", flush=True)
                traceback.print_exc()
                failed.append((name, reason))
                built.pop(name, None)
        # Timing: repeat r of every candidate, then repeat r + 1, so that load from other programs on
        # the machine falls on all of them alike; that load is measured and reported.
        times = {name: {"short": [], "long": []} for name in built}
        first = {}
        other = OtherLoad()
        for r in range(args.repeats):
            for name, b in built.items():
                for kind, batch in (("short", timed), ("long", long_texts)):
                    t = time.perf_counter()
                    vectors = b.encoder.encode(batch)
                    times[name][kind].append(time.perf_counter() - t)
                    if kind == "short":
                        first[name] = vectors
            print(f"timing round {r + 1}/{args.repeats} done", flush=True)
        other_cores = other.cores()
        ref_vectors = None
        for name, b in built.items():
            enc = b.encoder
            tps = len(timed) / statistics.median(times[name]["short"])
            tps_long = len(long_texts) / statistics.median(times[name]["long"])
            vectors = np.vstack([first[name], enc.encode(texts[args.n:])]) if args.n < len(texts) else first[name]
            if ref_vectors is None:
                ref_vectors = vectors
            if b.same_space and vectors.shape[1] == ref_vectors.shape[1]:
                cos = np.einsum("ij,ij->i", vectors, ref_vectors)
                cos_mean, cos_p5 = float(cos.mean()), float(np.percentile(cos, 5))
            else:
                cos_mean = cos_p5 = None
            pair_r = float(np.corrcoef(pair_sims(vectors, pairs), pair_sims(ref_vectors, pairs))[0, 1])
            t = time.perf_counter()
            r2 = rouge2(enc, bodies, references)
            summary_s = time.perf_counter() - t
            row = {"name": name, "note": b.note, "setup_s": b.setup_s, "size_mb": b.size_mb,
                   "tps": tps, "tps_long": tps_long, "cos_mean": cos_mean, "cos_p5": cos_p5, "pair_r": pair_r,
                   "f1": few_shot_f1(vectors, labels, codes), "nmi": kmeans_nmi(vectors, labels), "rouge2": r2,
                   "summary_s": summary_s, **b.extra}
            rows.append(row)
            cos_text = "other space" if cos_mean is None else f"{cos_mean:.4f}/{cos_p5:.4f}"
            print(f"{name}: {tps:,.0f} texts/s (x{tps / rows[0]['tps']:.1f}), long {tps_long:,.1f}/s, "
                  f"cos {cos_text}, pair r {pair_r:.3f}, F1 {row['f1']:.3f}, NMI {row['nmi']:.3f}, "
                  f"ROUGE-2 {r2:.4f} (summaries {summary_s:.0f} s), setup {b.setup_s:.1f} s, "
                  f"{b.size_mb or 0:.0f} MB", flush=True)
            close = getattr(enc, "close", None)
            if close is not None and name != "fp32":
                close()
            gc.collect()
    total_s = time.perf_counter() - started

    lines = table(rows)
    print()
    print("\n".join(lines))
    for name, reason in failed:
        print(f"{name}: not measured ({reason})")
    load_text = "unknown" if other_cores is None else f"{other_cores:.1f} cores"
    print(f"whole run {total_s:.0f} s; other programs used {load_text} on average during the timing")

    if args.markdown:
        distilled = [r for r in rows if r.get("distill_s")]
        section = [
            MARK_BEGIN,
            "## Fast CPU embedding path",
            "",
            f"`python benchmarks/fast_path.py {' '.join(sys.argv[1:] if argv is None else argv)}` on {date.today().isoformat()}, "
            f"{host_description(f'{cpu_name()} ({platform.machine()})', ram=True)}, CPU only; "
            f"torch {package_version('torch')}, transformers {package_version('transformers')}, "
            f"sentence-transformers {package_version('sentence-transformers')}, onnxruntime "
            f"{package_version('onnxruntime')}, openvino {package_version('openvino')}, model2vec "
            f"{package_version('model2vec')}. Whole run {total_s / 60:.0f} min; other programs used {load_text} "
            "on average while the speeds were timed (the repeats of all options are interleaved, so such load "
            "falls on all of them alike).",
            "",
            f"Reference: bundled all-MiniLM-L6-v2, float32, through `Embedder`. Speed: first {len(timed):,} AG News "
            f"texts and the bodies of the first {len(long_texts)} BBC articles, warm-up first, loading excluded, "
            f"median of {args.repeats}. Tasks: AG News few-shot macro-F1 (logistic regression, {FEW_SHOT_N} per code, "
            f"mean of {FEW_SHOT_DRAWS} draws), AG News KMeans NMI (k = 4, mean of {len(KMEANS_SEEDS)} seeds), BBC "
            f"ROUGE-2 of the default extractive summary ({len(bodies)} of {n_bbc} articles). Differences to fp32 in brackets. "
            f"Target: at least {TARGET_SPEEDUP:.0f}x the fp32 texts/s with no task figure more than {TARGET_DROP} "
            "below fp32. Pair-sim r: Pearson r between the option's and fp32's cosines over 20,000 random pairs.",
            "",
            *lines,
            "",
            *[f"- {r['name']}: {r['note']}." for r in rows],
            *[f"- {name}: not measured ({reason})." for name, reason in failed],
        ]
        if distilled:
            section.append(f"- Distilling a static model from the MiniLM takes about "
                           f"{statistics.median(r['distill_s'] for r in distilled):.0f} s on this machine "
                           "(one forward pass per vocabulary token); it is done once.")
        section += ["", MARK_END]
        write_section(Path(args.markdown), MARK_BEGIN, MARK_END, "\n".join(section))
        print(f"wrote the fast-path section of {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
