"""Sentence embeddings: one pass per (model, corpus), cached on disk, shared by tasks.

Codebook coding, topics and extractive summaries all start from the same vectors, so they
are computed once by :class:`Embedder` and kept in a cache folder (per project:
``Project.embeddings_dir``). A second analysis of the same corpus, a resumed job or a
codebook tweak re-reads them instead of running the model again.

**Vectors.** ``Embedder.encode`` returns a float32 matrix (one row per text, in input
order) whose rows have unit length, so a dot product is a cosine similarity. Empty or
whitespace-only texts get a row of zeros (similarity 0 to everything) and are never sent
to the model. The model runs in float32 on the CPU and in bfloat16 (float16 on GPUs
without bf16) on CUDA; the normalisation is always computed in float32.

**Long texts are split, never truncated.** sentence-transformers silently cuts every
input at the model's ``max_seq_length`` tokens (256 for all-MiniLM-L6-v2, about 180
English words): the rest of a long answer or speech would not count at all, and nothing
would say so. Here each text is first measured with the model's own (fast) tokenizer,
without special tokens. A text that does not fit in one window (``max_seq_length`` minus
the [CLS]/[SEP]-style special tokens) is cut into consecutive windows of at most that
many tokens. The cuts are made on the *original* text, at character offsets the tokenizer
reports, and at word boundaries where possible, so the windows are consecutive slices
of the text that together give the text back: every word is in exactly one window. Each
window is embedded like a text of its own and the text's vector is the mean of its window
vectors weighted by their token counts, normalised again. ``Embedder.split`` /
``n_split`` say which texts were split, ``Embedder.windows(text)`` shows the windows.

**Cache layout.** ``<cache_dir>/<model id slug>@<revision>/<dtype>-win<max_seq_length>/``
holds shards. Each ``encode`` slice (at most :data:`SLICE_SIZE` texts on CUDA,
:data:`CPU_SLICE_SIZE` elsewhere, so a cancelled job loses little) that computed new
vectors writes one shard: ``<uuid>.npy`` (float32 matrix, one row per text) and then
``<uuid>.keys.npy`` (per row: the SHA-256 of the exact text and its window count). Both
are written to a temporary name and renamed into place, vectors first, so a crash leaves
at worst vectors without keys (ignored), never keys without vectors. Shard names are
unique, so several Embedders (threads, processes, jobs) can share a folder: the worst
case is the same text computed twice. A shard that cannot be read (truncated, keys
without vectors, wrong shape) is skipped with a logged warning and its texts are
recomputed. The revision is the Hub commit when known; for a local folder without one
(the bundled MiniLM, a fine-tuned model) it is ``local-`` plus a fingerprint of the
folder's weight and config files, so a retrained model in the same folder does not
reuse old vectors. The dtype and the window length are part of the folder name because
they change the vectors.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path

import numpy as np

from analysis import models
from analysis.errors import TextlabError
from analysis.runner import (
    HoldsModel,
    device_description,
    free_accelerator_memory,
    resolve_device,
    resolve_dtype,
)
from analysis.fileio import atomic_write_bytes
from analysis.textutil import folder_slug

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-minilm-l6-v2"
SLICE_SIZE = 8192  # texts per cache shard and per tokenisation pass (CUDA)
CPU_SLICE_SIZE = 256  # on the CPU and MPS: ~5 s of work, so the progress bar moves
CPU_BATCH_SIZE = 64
CUDA_BATCH_SIZE = 256
# Batches per model.encode call (progress and OOM granularity). One: on a CPU a call of 8
# batches took 10-40 s, so a job's bar sat at 0 for its first half minute. Eight calls of 64
# texts cost the same CPU time as one of 512 (within the 10% noise of a 2-core machine).
_CHUNK_BATCHES = 1
_VECTORS = ".npy"
_KEYS = ".keys.npy"
# Many small shards (a codebook's definitions embedded at each run) are merged on load.
_SMALL_SHARD = 1024
_MERGE_AT = 32
_KEY_DTYPE = np.dtype([("key", np.uint8, (32,)), ("windows", "<u4")])

__all__ = [
    "Embedder", "embed", "clear_cache", "cache_size", "text_key", "fast_model_path", "task_embedding_model",
    "DEFAULT_MODEL", "SLICE_SIZE", "CPU_SLICE_SIZE",
]


# --------------------------------------------------------------------------- helpers


def text_key(text: str) -> bytes:
    """The cache key of a text: SHA-256 of its exact UTF-8 bytes (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32 (in place when already float32); zero rows stay zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, (oom_type, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def folder_fingerprint(folder: Path) -> str:
    """A cheap content fingerprint of a model folder's weights, config and tokenizer files.

    Hashes each file's relative path and size plus three 64 KiB samples (start, middle,
    end): enough to tell a retrained or different model apart without reading gigabytes.
    """
    digest = hashlib.sha256()
    patterns = ("*.safetensors", "*.json", "*.txt", "*.model")
    files = sorted({p for pattern in patterns for p in folder.rglob(pattern)
                    if p.is_file() and ".cache" not in p.relative_to(folder).parts
                    and p.name != "textlab_source.json"})
    block = 1 << 16
    for path in files:
        size = path.stat().st_size
        digest.update(str(path.relative_to(folder)).encode("utf-8") + b"\0" + str(size).encode() + b"\0")
        with open(path, "rb") as fh:
            for offset in sorted({0, max(0, size // 2 - block // 2), max(0, size - block)}):
                fh.seek(offset)
                digest.update(fh.read(block))
    return digest.hexdigest()[:12]


def _identity(model: str | os.PathLike) -> tuple[models.ModelSpec, str]:
    """The model's spec and its display id (Hub id, else folder or registry name)."""
    spec = models.get_spec(str(model) if isinstance(model, os.PathLike) else model, task="embedding")
    if spec.kind != "sentence-embedding" and spec.path is None:
        raise TextlabError(
            f"Model '{spec.name}' is a {spec.kind} model, not a sentence-embedding model. "
            f"Use {DEFAULT_MODEL} or another sentence-transformers model."
        )
    display = spec.hf_id or (Path(spec.path).name if spec.path else spec.name)
    return spec, display


def model_folder(model: str | os.PathLike) -> Path:
    """The local folder of a sentence-embedding model (ModelNotAvailable, with the download
    command, when it is not on this machine)."""
    return Path(models.require(_identity(model)[0]))


# --------------------------------------------------------------------------- cache


class _ShardCache:
    """Shards of one (model, revision, dtype, window) folder: lookups and appends.

    The index (sorted keys -> shard, row) is read once, on first use; shards written by
    this process are added to it, shards written meanwhile by others are not (they are
    picked up by the next Embedder).
    """

    def __init__(self, folder: Path, dim: int):
        self.folder = folder
        self.dim = dim
        self._loaded = False
        self._vectors: list[np.ndarray] = []   # memory-mapped, one per shard
        self._windows: list[np.ndarray] = []
        self._keys = np.zeros(0, dtype="S32")  # sorted
        self._shard = np.zeros(0, dtype=np.int32)
        self._row = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, int]] = []

    # ---- reading

    def _read_shard(self, keys_path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        stem = keys_path.name[: -len(_KEYS)]
        vec_path = keys_path.with_name(stem + _VECTORS)
        try:
            meta = np.load(keys_path, allow_pickle=False)
            if meta.dtype != _KEY_DTYPE or meta.ndim != 1:
                raise ValueError(f"unexpected keys layout {meta.dtype}")
            if not vec_path.is_file():
                raise ValueError("keys without a vectors file")
            vectors = np.load(vec_path, mmap_mode="r", allow_pickle=False)
            if vectors.dtype != np.float32 or vectors.shape != (len(meta), self.dim):
                raise ValueError(f"vectors {vectors.dtype}{vectors.shape} do not match {len(meta)} keys x {self.dim}")
        except (OSError, ValueError, EOFError) as exc:
            log.warning("Embedding cache: skipping unreadable shard %s (%s); its texts will be recomputed.",
                        keys_path, exc)
            return None
        return meta, vectors

    def _load(self) -> None:
        self._loaded = True
        if not self.folder.is_dir():
            return
        self._remove_leftovers()
        shards = []
        for keys_path in sorted(self.folder.glob("*" + _KEYS)):
            read = self._read_shard(keys_path)
            if read is not None:
                shards.append((keys_path, *read))
        small = [s for s in shards if len(s[1]) < _SMALL_SHARD]
        if len(small) >= _MERGE_AT:
            merged = self._merge(small)
            if merged is not None:
                shards = [s for s in shards if len(s[1]) >= _SMALL_SHARD] + [merged]
        for _, meta, vectors in shards:
            self._append(meta, vectors)

    def _remove_leftovers(self, age_s: float = 3600.0) -> None:
        """Delete temporary files and vectors without keys left by a crash over an hour ago."""
        now = time.time()
        for path in self.folder.iterdir():
            name = path.name
            orphan = name.endswith(_VECTORS) and not name.endswith(_KEYS) and \
                not path.with_name(name[: -len(_VECTORS)] + _KEYS).exists()
            if not (name.startswith(".") and name.endswith(".tmp")) and not orphan:
                continue
            try:
                if now - path.stat().st_mtime > age_s:
                    path.unlink()
            except OSError:
                pass

    def _merge(self, shards):
        """Write the small shards as one and delete them; None (nothing changed) on failure."""
        meta = np.concatenate([s[1] for s in shards])
        vectors = np.concatenate([np.asarray(s[2]) for s in shards])
        _, first = np.unique(np.ascontiguousarray(meta["key"]).view("S32").ravel(), return_index=True)
        meta, vectors = meta[first], vectors[first]
        try:
            keys_path = self._write(meta, vectors)
        except OSError as exc:
            log.warning("Embedding cache: could not merge %d small shards in %s (%s).", len(shards), self.folder, exc)
            return None
        for old, _, _ in shards:
            stem = old.name[: -len(_KEYS)]
            for path in (old, old.with_name(stem + _VECTORS)):  # keys first: never keys without vectors
                try:
                    path.unlink()
                except OSError:
                    pass  # another process merged it already, or (Windows) it is still mapped
        read = self._read_shard(keys_path)
        return None if read is None else (keys_path, *read)

    def _append(self, meta: np.ndarray, vectors: np.ndarray) -> None:
        self._vectors.append(vectors)
        self._windows.append(np.asarray(meta["windows"]))
        self._pending.append((np.ascontiguousarray(meta["key"]).view("S32").ravel(), len(self._vectors) - 1))

    def _index(self) -> None:
        if not self._loaded:
            self._load()
        if not self._pending:
            return
        keys = [self._keys] + [k for k, _ in self._pending]
        shard = [self._shard] + [np.full(len(k), s, dtype=np.int32) for k, s in self._pending]
        row = [self._row] + [np.arange(len(k), dtype=np.int64) for k, _ in self._pending]
        self._pending = []
        keys, shard, row = np.concatenate(keys), np.concatenate(shard), np.concatenate(row)
        order = np.argsort(keys, kind="stable")
        self._keys, self._shard, self._row = keys[order], shard[order], row[order]

    def __len__(self) -> int:
        self._index()
        return len(self._keys)

    def lookup(self, keys: np.ndarray):
        """For S32 ``keys``: the found mask, and per shard (key indices, vectors, window counts).

        Vectors are read one shard at a time, so the caller can place them without a
        second copy of every cached vector in memory.
        """
        self._index()
        found = np.zeros(len(keys), dtype=bool)
        if not len(self._keys) or not len(keys):
            return found, []
        pos = np.searchsorted(self._keys, keys).clip(max=len(self._keys) - 1)
        found = self._keys[pos] == keys
        which = np.flatnonzero(found)
        shard, row = self._shard[pos[which]], self._row[pos[which]]

        def per_shard():
            for s in np.unique(shard):
                sel = np.flatnonzero(shard == s)
                yield which[sel], np.asarray(self._vectors[s][row[sel]]), self._windows[s][row[sel]]

        return found, per_shard()

    # ---- writing

    def _write(self, meta: np.ndarray, vectors: np.ndarray) -> Path:
        stem = uuid.uuid4().hex
        for path, array in ((self.folder / (stem + _VECTORS), vectors), (self.folder / (stem + _KEYS), meta)):
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            atomic_write_bytes(path, buffer.getvalue())  # vectors first, then keys
        return self.folder / (stem + _KEYS)

    def add(self, keys: list[bytes], vectors: np.ndarray, windows: np.ndarray) -> None:
        """Write one shard and add it to the index. A write error only loses the caching."""
        if not keys:
            return
        meta = np.zeros(len(keys), dtype=_KEY_DTYPE)
        meta["key"] = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 32)
        meta["windows"] = windows
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            keys_path = self._write(meta, vectors)
        except OSError as exc:
            log.warning("Embedding cache: could not write a shard to %s (%s); vectors are not cached.",
                        self.folder, exc)
            return
        if not self._loaded:
            return  # the shard is read with all others on first lookup
        # Indexed from the file, memory-mapped like the others: a million-text run would
        # otherwise keep every vector it computed in memory (1 GB at 256 dimensions).
        read = self._read_shard(keys_path)
        if read is not None:
            self._append(*read)


def _model_folders(cache_dir: Path, model=None) -> list[Path]:
    if not cache_dir.is_dir():
        return []
    folders = [p for p in cache_dir.iterdir() if p.is_dir() and "@" in p.name]
    if model is not None:
        prefix = folder_slug(_identity(model)[1]) + "@"
        folders = [p for p in folders if p.name.startswith(prefix)]
    return sorted(folders)


def cache_size(cache_dir: str | os.PathLike) -> dict:
    """Vectors and bytes in an embedding cache, in total and per model folder (for the UI)."""
    cache_dir = Path(cache_dir)
    total = {"vectors": 0, "bytes": 0, "models": {}}
    for folder in _model_folders(cache_dir):
        entry = {"vectors": 0, "bytes": 0}
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            entry["bytes"] += path.stat().st_size
            if path.name.endswith(_KEYS):
                try:
                    entry["vectors"] += len(np.load(path, mmap_mode="r", allow_pickle=False))
                except (OSError, ValueError, EOFError):
                    pass
        total["models"][folder.name] = entry
        total["vectors"] += entry["vectors"]
        total["bytes"] += entry["bytes"]
    return total


def clear_cache(cache_dir: str | os.PathLike, model: str | os.PathLike | None = None) -> dict:
    """Delete the cached vectors of one model (all revisions), or of all models.

    Returns what was removed, as :func:`cache_size` counts it. Vectors an open
    :class:`Embedder` has already read stay usable by it.
    """
    cache_dir = Path(cache_dir)
    removed = {"vectors": 0, "bytes": 0, "models": {}}
    for folder in _model_folders(cache_dir, model):
        size = cache_size(cache_dir)["models"].get(folder.name, {"vectors": 0, "bytes": 0})
        shutil.rmtree(folder, ignore_errors=True)
        removed["models"][folder.name] = size
        removed["vectors"] += size["vectors"]
        removed["bytes"] += size["bytes"]
    return removed


# --------------------------------------------------------------------------- embedder


class Embedder(HoldsModel):
    """Sentence embeddings with a sentence-transformers model: batched, split, cached.

    ``model`` is a registry name (default all-MiniLM-L6-v2, bundled), a Hugging Face id
    already in the local cache, or a local sentence-transformers folder. Loading never
    touches the network and never runs code from the model folder. ``device``: auto, cpu,
    cuda[:N] or mps. ``batch_size``: texts per forward pass (default 256 on CUDA, 64
    elsewhere; halved automatically when the GPU runs out of memory). ``cache_dir``: where
    vectors are kept between runs (None: no cache). ``dtype``: auto (bf16/fp16 on CUDA,
    float32 elsewhere), float32, float16 or bfloat16.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, device: str = "auto",
                 batch_size: int | None = None, cache_dir: str | os.PathLike | None = None,
                 dtype: str = "auto"):
        spec, display = _identity(model)
        path = models.require(spec)  # ModelNotAvailable, with the download command, if missing
        if spec.kind != "sentence-embedding":
            log.warning("%s is not a sentence-transformers folder (no modules.json): its token vectors "
                        "are mean-pooled.", path)
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(self.device, dtype)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size < 1):
            raise TextlabError(f"batch_size must be a positive whole number, not {batch_size!r}.")
        default_batch = CUDA_BATCH_SIZE if self.device.type == "cuda" else CPU_BATCH_SIZE
        self.batch_size = int(batch_size) if batch_size is not None else default_batch
        self.spec = spec
        self.path = Path(path)
        self.model_id = display
        self.revision = models.resolved_revision(self.path) or spec.revision
        self.model = self._load()
        tokenizer = self.model.tokenizer
        if tokenizer is None:
            raise TextlabError(f"Model '{display}' has no text tokenizer, so it cannot embed texts.")
        self.tokenizer = tokenizer
        self.dim = int(self.model.get_embedding_dimension())
        # A static model (the fast path, analysis.fastpath) averages looked-up token vectors:
        # it has no window, so no text is ever split and its tokenizer is a bare `tokenizers` one.
        self.static = is_static(self.model)
        prompt = self.model.prompts.get(self.model.default_prompt_name) if self.model.default_prompt_name else None
        self.prompt = prompt or None
        if self.static:
            self.max_seq_length = 0
            self.window_tokens = sys.maxsize
        else:
            self.max_seq_length = int(self.model.max_seq_length or _tokenizer_limit(tokenizer) or 512)
            # Tokens of text per window: special tokens and any default prompt take the rest.
            prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
            specials = tokenizer.num_special_tokens_to_add(pair=False)
            self.window_tokens = max(1, self.max_seq_length - specials - prompt_tokens)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache_folder = self._make_cache_folder()
        self._cache = _ShardCache(self._cache_folder, self.dim) if self._cache_folder is not None else None
        self._lock = threading.Lock()
        self.split = np.zeros(0, dtype=bool)
        self.n_split = 0
        self.cache_hits = 0
        self.n_computed = 0
        # The same over every encode call of this Embedder (a run encodes chunk by chunk): the manifest's figures.
        self.totals = {"hits": 0, "computed": 0, "split": 0}

    # ---- loading

    def _load(self):
        # One load per server for each (model, device, dtype): later runs reuse it (models.POOL).
        key = ("sentence-transformers", str(self.path), str(self.device), str(self.torch_dtype),
               models.folder_stamp(self.path))
        return models.POOL.get(key, self._load_now, self.device.type)

    def _load_now(self):
        import torch
        from sentence_transformers import SentenceTransformer

        model_kwargs = {"use_safetensors": True}
        if self.torch_dtype != torch.float32:
            model_kwargs.update(models.dtype_kwarg(self.torch_dtype))
        try:
            st = SentenceTransformer(str(self.path), device=str(self.device), local_files_only=True,
                                     trust_remote_code=False, model_kwargs=model_kwargs)
        except Exception as exc:  # a broken or unsupported folder: one clear message
            if _is_oom(exc):
                free_accelerator_memory()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TextlabError(f"Could not load embedding model '{self.model_id}' from {self.path}: {reason}") from exc
        if st.dtype is not None and st.dtype != self.torch_dtype:
            st.to(self.torch_dtype)
        st.eval()
        if self.torch_dtype != torch.float32:
            _pool_in_float32(st)
        return st

    def cache_folder(self) -> Path | None:
        """This model's shard folder inside ``cache_dir`` (None without a cache)."""
        return self._cache_folder

    def _make_cache_folder(self) -> Path | None:
        if self.cache_dir is None:
            return None
        revision = self.revision or f"local-{folder_fingerprint(self.path)}"
        dtype = str(self.torch_dtype).removeprefix("torch.")
        variant = f"{dtype}-static" if self.static else f"{dtype}-win{self.max_seq_length}"
        if self.prompt:
            variant += "-p" + hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()[:8]
        return self.cache_dir / f"{folder_slug(self.model_id)}@{folder_slug(revision)}" / variant

    # ---- windows

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens of each text with this model's tokenizer, special tokens not counted, never truncated."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        if self.static:
            return np.fromiter((len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)),
                               dtype=np.int64, count=len(texts))
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, padding=False,
                             return_attention_mask=False, return_token_type_ids=False, verbose=False)
        return np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64, count=len(texts))

    def _cut_points(self, texts: Sequence[str]) -> list[list[int]]:
        """Character offsets where each text's windows start (first is always 0)."""
        limit = self.window_tokens
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, padding=False,
                                 return_attention_mask=False, return_token_type_ids=False,
                                 return_offsets_mapping=True, verbose=False)
            spans = [(enc["offset_mapping"][i], enc.word_ids(i)) for i in range(len(texts))]
        else:  # slow tokenizer: whitespace-separated words, each measured alone
            spans = [self._word_spans(text) for text in texts]
        cuts = []
        for (offsets, words) in spans:
            starts, i, n = [0], 0, len(offsets)
            while n - i > limit:
                j = i + limit  # first token of the next window, if on a word boundary
                k = j
                while k > i and words[k] is not None and words[k] == words[k - 1]:
                    k -= 1
                i = k if k > i else j  # a single word longer than a window is cut inside
                starts.append(offsets[i][0])
            cuts.append(starts)
        return cuts

    def _word_spans(self, text: str):
        offsets, words = [], []
        for w, match in enumerate(re.finditer(r"\S+", text)):
            count = max(1, len(self.tokenizer.tokenize(match.group())))
            offsets.extend([(match.start(), match.end())] * count)
            words.extend([w] * count)
        return offsets, words

    def _windows(self, texts: Sequence[str], depth: int = 0) -> tuple[list[list[str]], list[np.ndarray]]:
        """Each text as consecutive windows that fit, with each window's token count."""
        pieces = []
        for text, cut in zip(texts, self._cut_points(texts)):
            cut = sorted(set(cut))
            pieces.append([text[a:b] for a, b in zip(cut, cut[1:] + [len(text)])])
        flat = self.token_counts([w for ws in pieces for w in ws])
        counts, start = [], 0
        for ws in pieces:
            counts.append(flat[start: start + len(ws)])
            start += len(ws)
        # A window cut inside a word (or at a sentencepiece word start) can tokenise to a
        # few tokens more on its own than inside the text: such a window is split again.
        for t, (ws, cs) in enumerate(zip(pieces, counts)):
            if cs.max() <= self.window_tokens or len(ws) == 1 or depth >= 4:
                continue
            new_ws, new_cs = [], []
            for w, c in zip(ws, cs):
                if c > self.window_tokens:
                    sub_ws, sub_cs = self._windows([w], depth + 1)
                    new_ws.extend(sub_ws[0])
                    new_cs.extend(sub_cs[0])
                else:
                    new_ws.append(w)
                    new_cs.append(c)
            pieces[t], counts[t] = new_ws, np.asarray(new_cs, dtype=np.int64)
        return pieces, counts

    def windows(self, text: str) -> list[str]:
        """The consecutive slices of ``text`` that are embedded separately (one if it fits)."""
        with self._lock:
            if self.static or not text.strip() or self.token_counts([text])[0] <= self.window_tokens:
                return [text]
            return self._windows([text])[0][0]

    # ---- encoding

    def _encode_pieces(self, pieces: list[str], lengths: np.ndarray, report: Callable[[int], None]) -> np.ndarray:
        """Unit vectors (float32) for model inputs that fit the window, longest first, OOM-safe."""
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(pieces), self.dim), dtype=np.float32)
        done = 0
        while done < len(order):
            idx = order[done: done + self.batch_size * _CHUNK_BATCHES]
            oom = None
            try:
                vectors = self.model.encode([pieces[i] for i in idx], batch_size=self.batch_size,
                                            convert_to_numpy=True, normalize_embeddings=False,
                                            show_progress_bar=False)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                oom = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if oom is not None:  # freed outside the except block, which pins the batch's tensors
                free_accelerator_memory()
                if self.batch_size == 1:
                    raise TextlabError(
                        f"Out of accelerator memory embedding a single text ({oom}). Use a smaller model, "
                        "--device cpu, or free memory used by other programs.")
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("Out of GPU memory: embedding batch size lowered to %d.", self.batch_size)
                continue
            out[idx] = _normalize(np.asarray(vectors, dtype=np.float32).reshape(len(idx), self.dim))
            done += len(idx)
            report(done)
        return out

    def _compute(self, texts: list[str], report: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors and window counts for non-empty texts (no cache involved)."""
        if self.static:  # no window to fit; characters order the batches well enough
            lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
            return self._encode_pieces(texts, lengths, report), np.ones(len(texts), dtype=np.int64)
        lengths = self.token_counts(texts)
        long = np.flatnonzero(lengths > self.window_tokens)
        windows = np.ones(len(texts), dtype=np.int64)
        if not len(long):
            return self._encode_pieces(texts, lengths, report), windows
        parts, counts = self._windows([texts[i] for i in long])
        # Model inputs: each text, or its first window in its place and the others appended.
        pieces, piece_lengths, groups = list(texts), list(lengths), []
        for i, ws, cs in zip(long, parts, counts):
            rows = [i, *range(len(pieces), len(pieces) + len(ws) - 1)]
            pieces[i], piece_lengths[i] = ws[0], cs[0]
            pieces.extend(ws[1:])
            piece_lengths.extend(cs[1:])
            groups.append((i, rows, cs))
            windows[i] = len(ws)
        scale = len(texts) / len(pieces)
        vectors = self._encode_pieces(pieces, np.asarray(piece_lengths, dtype=np.int64),
                                      lambda k: report(int(k * scale)))
        # Windows back to texts: token-count-weighted mean of the window vectors, normalised.
        combined = np.zeros((len(long), self.dim), dtype=np.float64)
        for row, (_, rows, weights) in enumerate(groups):
            w = weights.astype(np.float64)
            combined[row] = (vectors[rows].astype(np.float64) * w[:, None]).sum(axis=0) / w.sum()
        vectors = vectors[: len(texts)]
        vectors[long] = _normalize(combined)
        return vectors, windows

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """float32 (n, dim) unit vectors in input order; empty/whitespace texts give zero rows.

        Cached texts are read from the cache, the others computed (each distinct text once)
        and cached one shard per slice of texts. ``progress(k)``: how many
        of these texts are done so far (cached and empty ones count as done at once).
        After the call ``split`` / ``n_split`` say which texts were split into windows and
        ``cache_hits`` how many came from the cache.
        """
        if isinstance(texts, str):
            raise TextlabError("encode expects a list of texts, not a single string.")
        texts = list(texts)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TextlabError(f"Texts must be strings; item {bad} is {type(texts[bad]).__name__}.")
        if self.model is None:
            raise TextlabError("This Embedder was closed; create a new one to embed more texts.")
        with self._lock:
            return self._encode(texts, progress)

    def _encode(self, texts: list[str], progress) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        windows = np.zeros(n, dtype=np.int64)
        # Distinct non-empty texts, with the rows that hold each.
        first: dict[bytes, int] = {}
        unique_keys: list[bytes] = []
        unique_text: list[str] = []
        owner = np.full(n, -1, dtype=np.int64)
        for i, text in enumerate(texts):
            if not text.strip():
                continue
            key = text_key(text)
            u = first.get(key)
            if u is None:
                u = first[key] = len(unique_keys)
                unique_keys.append(key)
                unique_text.append(text)
            owner[i] = u
        rows_of = _group_rows(owner, len(unique_keys))

        todo = np.arange(len(unique_keys))
        hits = 0
        if self._cache is not None and unique_keys:
            found, shards = self._cache.lookup(np.array(unique_keys, dtype="S32"))
            for where, vectors, counts in shards:
                for u, vec, count in zip(where, vectors, counts):
                    out[rows_of[u]] = vec
                    windows[rows_of[u]] = count
                    hits += len(rows_of[u])
            todo = np.flatnonzero(~found)
        self.cache_hits = hits
        pending = int(sum(len(rows_of[u]) for u in todo))
        done = n - pending
        if progress is not None:
            progress(done)
        computed = 0
        # Smaller shards on slow devices: a cancelled job loses at most one slice of work.
        slice_size = SLICE_SIZE if self.device.type == "cuda" or self.static else min(SLICE_SIZE, CPU_SLICE_SIZE)
        for start in range(0, len(todo), slice_size):
            part = todo[start: start + slice_size]
            rows = [rows_of[u] for u in part]
            n_rows = sum(len(r) for r in rows)
            report = (lambda k, base=done, m=n_rows, total=len(part):
                      progress(base + min(m, k * m // max(total, 1)))) if progress is not None else (lambda k: None)
            vectors, counts = self._compute([unique_text[u] for u in part], report)
            if self._cache is not None:
                self._cache.add([unique_keys[u] for u in part], vectors, counts)
            for r, vec, count in zip(rows, vectors, counts):
                out[r] = vec
                windows[r] = count
            computed += len(part)
            done += n_rows
            if progress is not None:
                progress(done)
        self.n_computed = computed
        self.split = windows > 1
        self.n_split = int(self.split.sum())
        for name, value in (("hits", hits), ("computed", computed), ("split", self.n_split)):
            self.totals[name] += value
        return out

    # ---- reporting

    def describe(self) -> dict:
        """Settings and last-run figures for run manifests."""
        import sentence_transformers

        return {
            "backend": "embedding",
            "library": f"sentence-transformers {sentence_transformers.__version__}",
            "model": self.model_id,
            "model_revision": self.revision,
            "model_path": str(self.path),
            "device": device_description(self.device),
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
            "dim": self.dim,
            "max_seq_length": None if self.static else self.max_seq_length,
            "normalized": True,
            "long_texts": (
                "static token vectors (fast path): the mean over every token of the text, so nothing is cut"
                if self.static else
                f"split into consecutive windows of at most {self.window_tokens} tokens (at word boundaries); "
                "vector = token-count-weighted mean of the window vectors, re-normalised; never truncated"
            ),
            "n_split": self.totals["split"],
            "cache": {
                "dir": str(self.cache_dir) if self.cache_dir is not None else None,
                "folder": str(self.cache_folder()) if self.cache_dir is not None else None,
                "hits": self.totals["hits"],  # over every call (a run's chunks), not only the last
                "computed": self.totals["computed"],
            },
        }


def is_static(st) -> bool:
    """Whether a loaded SentenceTransformer is a static (token lookup) model."""
    first = next(iter(st.children()), None)
    return type(first).__name__ == "StaticEmbedding"


def _pool_in_float32(st) -> None:
    """Pool and normalise a half-precision model's token vectors in float32.

    Only when every module after the transformer is parameter-free (Pooling, Normalize):
    a Dense layer in bf16 would refuse float32 input. Otherwise the output is cast to
    float32 and normalised again by the Embedder anyway.
    """
    import torch

    heads = list(st.children())[1:]
    if not heads or any(any(True for _ in m.parameters()) for m in heads):
        return

    def to_float32(module, args):
        features = args[0] if args else None
        if not isinstance(features, MutableMapping):  # a dict, or transformers' BatchEncoding
            return None
        for name, value in features.items():
            if isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16):
                features[name] = value.float()
        return None

    heads[0].register_forward_pre_hook(to_float32)


def _tokenizer_limit(tokenizer) -> int | None:
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else None


def _group_rows(owner: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """For each group id, the positions where ``owner`` equals it (ascending)."""
    valid = np.flatnonzero(owner >= 0)
    order = valid[np.argsort(owner[valid], kind="stable")]
    bounds = np.searchsorted(owner[order], np.arange(n_groups + 1))
    return [order[bounds[g]: bounds[g + 1]] for g in range(n_groups)]


# --------------------------------------------------------------------------- the fast path

FAST_MODEL = "textlab-fast-static-minilm"  # folder under TEXTLAB_MODELS
_fast_lock = threading.Lock()


def fast_model_path(stage: Callable[[str], None] | None = None) -> Path:
    """The fast path's model folder, distilled from the bundled all-MiniLM-L6-v2 on first use
    (``analysis.fastpath``) into TEXTLAB_MODELS; never downloads."""
    dest = models.textlab_models_dir() / FAST_MODEL
    with _fast_lock:
        if not fast_model_ready(dest) or _fast_source_changed(dest):
            from analysis.fastpath import build_static_model

            if stage is not None:
                stage("Building the fast embedding model from the bundled MiniLM (once)")
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                build_static_model(models.bundled_embedding_path(), dest)
            except OSError:
                if not fast_model_ready(dest):  # else another process built it meanwhile
                    raise
    return dest


def _fast_source_changed(folder: Path) -> bool:
    """Whether the bundled MiniLM changed (a package upgrade) since the fast model was built from it:
    then it is built again, never used stale."""
    import json

    try:
        recorded = json.loads((folder / "textlab_fastpath.json").read_text("utf-8"))["source"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return recorded != folder_fingerprint(models.bundled_embedding_path())


def fast_model_ready(folder: Path | None = None) -> bool:
    folder = folder or models.textlab_models_dir() / FAST_MODEL
    return (folder / "textlab_fastpath.json").is_file() and (folder / "modules.json").is_file()


def task_embedding_model(settings, default: str, stage: Callable[[str], None] | None = None) -> str:
    """The embedding model a run uses: ``model``, the fast path's with ``fast``, else ``default``.
    ``settings``: a task Config or a run's parameters (a dict, as manifests keep them)."""
    get = settings.get if isinstance(settings, dict) else (lambda name, d=None: getattr(settings, name, d))
    if get("fast", False):
        if get("model"):
            raise TextlabError("--fast uses Textlab's own fast embedding model; leave out --model (or leave out "
                               "--fast to use the model you named).")
        return str(fast_model_path(stage))
    return get("model") or default


def embed(texts, model: str | os.PathLike = DEFAULT_MODEL, *, cache_dir=None, device: str = "auto",
          batch_size: int | None = None, progress=None) -> np.ndarray:
    """One-shot :meth:`Embedder.encode`: load the model, embed, release it."""
    embedder = Embedder(model, device=device, batch_size=batch_size, cache_dir=cache_dir)
    try:
        return embedder.encode(texts, progress)
    finally:
        embedder.close()
