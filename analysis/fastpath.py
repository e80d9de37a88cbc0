"""A fast CPU embedding option: a static (Model2Vec-style) model distilled from a local one.

A static model keeps one vector per token of the source model's vocabulary (the source
model's output for that token alone, PCA-reduced and down-weighted for frequent tokens,
as Model2Vec does); a text's vector is the mean of its tokens' vectors. No transformer runs
at embedding time, so it is tens to hundreds of times faster on a CPU, at some cost in
quality (``benchmarks/fast_path.py`` measures both against the fp32 MiniLM).

:func:`build_static_model` distills it from a local sentence-transformers folder (the
bundled all-MiniLM-L6-v2 by default) and saves it as a sentence-transformers folder
(``StaticEmbedding`` + ``Normalize``, safetensors only) that
``SentenceTransformer(str(dest), local_files_only=True)`` loads. Nothing is downloaded and
no code from the model folder runs. Needs ``pip install model2vec skeletoken`` (not the
``model2vec[distill]`` extra, which pins transformers below 5.4; the distillation code
itself works with the transformers Textlab uses).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from analysis.errors import TextlabError

__all__ = ["METADATA_FILE", "SIF_COEFFICIENT", "build_static_model"]

METADATA_FILE = "textlab_fastpath.json"
# Model2Vec's default: weight of a token = a / (a + p(token)), p from Zipf's law on the
# vocabulary rank (WordPiece vocabularies are roughly frequency-sorted).
SIF_COEFFICIENT = 1e-4
# Unused WordPiece slots carry no meaning; Model2Vec drops them by default too.
TOKEN_REMOVE_PATTERN = r"\[unused\d+\]"


def _transformer_folder(source: Path) -> Path:
    """The folder of the Transformer module of a sentence-transformers model (often the root)."""
    try:
        modules = json.loads((source / "modules.json").read_text("utf-8"))
    except (OSError, ValueError):
        return source  # a plain transformers folder: the model is the folder itself
    for module in modules:
        if str(module.get("type", "")).endswith("Transformer"):
            return source / module.get("path", "")
    raise TextlabError(f"{source} has no Transformer module to distill a static model from.")


def _pooling_mode(source: Path) -> str:
    """Model2Vec's pooling for the source's own pooling (MiniLM: mean), so token vectors match it."""
    try:
        modules = json.loads((source / "modules.json").read_text("utf-8"))
        pooling = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))
        config = json.loads((source / pooling["path"] / "config.json").read_text("utf-8"))
    except (OSError, ValueError, StopIteration, KeyError):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "first"
    if config.get("pooling_mode_lasttoken"):
        return "last"
    return "mean"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_identity(source: Path, transformer: Path) -> dict:
    """What the static model was distilled from: enough to tell a different or retrained source."""
    from analysis import models
    from analysis.embeddings import folder_fingerprint

    weights = sorted(transformer.glob("*.safetensors"))
    return {
        "path": str(source),
        "name": source.name if source.name != "model" else source.parent.name,
        "revision": models.resolved_revision(source),
        # The same fingerprint the embedding cache uses for a local folder ("local-<fp>").
        "fingerprint": folder_fingerprint(source),
        "weights_sha256": {p.name: _sha256(p) for p in weights},
    }


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def build_static_model(source: Path, dest: Path, pca_dims: int | None = 256, *,
                       sif_coefficient: float | None = SIF_COEFFICIENT, device: str = "cpu") -> Path:
    """Distill a static embedding model from the sentence-transformers folder ``source`` into ``dest``.

    ``pca_dims``: dimensions kept by PCA (256, Model2Vec's default); the source's own width
    (384 for MiniLM) rotates and centres without reducing; None skips PCA. ``sif_coefficient``:
    Zipf/SIF down-weighting of frequent tokens (None: none). ``device``: where the source
    model runs during distillation (one forward pass per vocabulary token; a few minutes
    on a laptop CPU).

    ``dest`` is written atomically: built in a temporary folder beside it and renamed into
    place, replacing an earlier build, so a crash never leaves a half-written model there.
    Returns ``dest``.
    """
    source, dest = Path(source), Path(dest)
    if not (source / "config.json").is_file() and not (source / "modules.json").is_file():
        raise TextlabError(f"{source} is not a model folder (no config.json or modules.json).")
    try:
        import model2vec
        from model2vec.distill import distill_from_model
    except ImportError as exc:
        raise TextlabError("Building the static model needs model2vec: pip install model2vec skeletoken "
                           f"({exc}).") from exc
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding
    from transformers import AutoModel, AutoTokenizer

    transformer = _transformer_folder(source)
    if not any(transformer.glob("*.safetensors")):
        raise TextlabError(f"{transformer} has no safetensors weights; only safetensors are loaded.")
    started = time.perf_counter()
    # Loaded here rather than through model2vec.distill(), which has no local_files_only flag.
    model = AutoModel.from_pretrained(str(transformer), local_files_only=True, use_safetensors=True,
                                      trust_remote_code=False, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(transformer), local_files_only=True, use_fast=True,
                                              trust_remote_code=False)
    pooling = _pooling_mode(source)
    with torch.inference_mode():
        static = distill_from_model(model=model, tokenizer=tokenizer, device=device, pca_dims=pca_dims,
                                    sif_coefficient=sif_coefficient, token_remove_pattern=TOKEN_REMOVE_PATTERN,
                                    quantize_to="float32", pooling=pooling)
    # float32 on purpose: EmbeddingBag in float16 is slow or missing on CPUs, and the file stays small.
    weights = StaticEmbedding._fold_model2vec_weights(static.embedding, getattr(static, "token_mapping", None),
                                                      getattr(static, "weights", None)).float()
    module = StaticEmbedding(static.tokenizer, embedding_weights=weights)
    # Normalize: same unit vectors as Model2Vec's normalize=True and as Textlab's Embedder.
    st = SentenceTransformer(modules=[module, Normalize()], device="cpu")
    seconds = time.perf_counter() - started
    del model

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    old = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.old")
    try:
        # No model card: it would look the base model up on the Hub.
        st.save(str(tmp), safe_serialization=True, create_model_card=False)
        meta = {
            "kind": "static (Model2Vec-style) distillation",
            "source": _source_identity(source, transformer),
            "settings": {"pca_dims": pca_dims, "sif_coefficient": sif_coefficient, "pooling": pooling,
                         "token_remove_pattern": TOKEN_REMOVE_PATTERN, "vocabulary": "source tokenizer's own",
                         "weights_dtype": "float32", "normalized": True},
            "vocab_size": int(weights.shape[0]),
            "dim": int(weights.shape[1]),
            "distill_seconds": round(seconds, 1),
            "device": device,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {"python": platform.python_version(), "model2vec": model2vec.__version__,
                         "skeletoken": _package("skeletoken"), "torch": torch.__version__,
                         "transformers": _package("transformers"),
                         "sentence-transformers": _package("sentence-transformers")},
        }
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        if dest.exists():
            os.replace(dest, old)  # the rename below is then the only moment dest is missing
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest
