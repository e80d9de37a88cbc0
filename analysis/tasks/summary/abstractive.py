"""Abstractive summaries with a local seq2seq model (distilbart-cnn by default).

``Seq2SeqSummarizer`` loads an encoder-decoder model (BART and the like) from local files
only (``models.load_seq2seq``: safetensors, no ``trust_remote_code``; a missing model is a
``ModelNotAvailable`` that names ``textlab models download NAME``) and writes one summary
per text, in the caller's order.

What happens to a text
  * Empty (or whitespace-only) text: ``""``.
  * Fewer than ``passthrough_words`` words (default 30, counted as in the ``stats`` task):
    the text comes back unchanged. A summary of a 20-word survey answer would be as long
    as the answer or a paraphrase of it, not a summary.
  * A text that fits the model window (``window`` tokens, special tokens included; 1024
    for BART, read from the tokenizer's ``model_max_length`` and the config's
    ``max_position_embeddings``): one ``generate`` call on its tokens.
  * A longer text is never truncated. It is summarised by map-reduce: its tokens are cut
    into chunks of at most ``window - specials`` tokens (2 for BART), at sentence
    boundaries (``textutil.split_sentences``) where possible; a single sentence longer
    than a chunk is cut into consecutive token windows. As few chunks as whole sentences
    allow, as evenly filled as possible (no stub at the end).
    Every chunk is summarised (the chunks of all texts are batched together with the
    texts that fit), the chunk summaries of a text are joined with spaces, and the joined
    text is summarised again. If the joined text is still longer than the window the same
    step repeats, for at most ``max_rounds`` (3) generation rounds per text; in the last
    round the chunk summaries of a still-too-long text are joined and returned as they are
    (the summary then covers the whole text in several pieces; ``n_unreduced`` counts
    them). ``chunked`` / ``n_chunked`` say which texts went through map-reduce,
    ``rounds`` how many generation rounds each text took.

Generation
  Deterministic (``do_sample=False``): greedy with ``num_beams=1``, beam search
  otherwise (``length_penalty`` then applies). ``max_new_tokens`` / ``min_new_tokens``
  bound each summary (they override the model's own ``max_length`` / ``min_length``);
  ``no_repeat_ngram_size`` bans repeated n-grams (transformers' vectorised processor).
  ``max_new_tokens`` is capped at ``window - 2`` so that decoder positions never run past
  the model's position table. Encoder inputs are always padded on the right (BART's
  absolute positions start at the first token, so left padding would shift them); with the
  attention mask a text's summary is the same whether it is generated alone or in a batch.

Batching
  ``analysis.runner.run_batched``: inputs sorted by length and cut into batches by a token
  budget in which each row costs its input tokens plus ``num_beams * max_new_tokens``
  (the decoder's cache grows by that much), at most ``batch_size`` rows per batch
  (default 512 on CUDA, 16 elsewhere); the CUDA budget is sized from the GPU's memory and
  the model's shape. Out of memory halves the batch and retries. bf16 on CUDA (fp16 on
  GPUs without bf16), fp32 on the CPU, as ``runner.resolve_dtype`` decides.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ... import models
from ...errors import TextlabError
from ..base import Predictor
from ...runner import (
    DEFAULT_MAX_TOKENS,
    HoldsModel,
    check_positive,
    model_window,
    device_description,
    run_batched,
)
from ...textutil import split_sentences, word_counts, words

if TYPE_CHECKING:
    from . import SummaryConfig

DEFAULT_MODEL = "distilbart-cnn"
CPU_BATCH_SIZE = 16
CUDA_BATCH_SIZE = 512
MAX_ROUNDS = 3
# Token budget on CUDA: a share of the GPU's memory divided by an estimate of the bytes one
# budget token costs during generation, clamped to this range.
CUDA_MEMORY_SHARE = 0.35
CUDA_MAX_TOKENS_CAP = 1 << 20


def _check_nonnegative(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise TextlabError(f"{name} must be a whole number of at least 0, not {value!r}.")
    return int(value)


class Seq2SeqSummarizer(HoldsModel):
    """One abstractive summary per text from a local seq2seq model; see the module docstring.

    ``model``: a registry name (``distilbart-cnn``, ``bart-large-cnn``), a Hugging Face id
    in the local cache, or a local model folder. The model is loaded here, so a missing or
    unsuitable model fails at construction with a message that says what to do.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, device="auto", dtype="auto", batch_size: int | None = None,
                 max_new_tokens: int = 80, min_new_tokens: int = 10, num_beams: int = 1,
                 length_penalty: float = 1.0, no_repeat_ngram_size: int = 3, passthrough_words: int = 30,
                 max_rounds: int = MAX_ROUNDS):
        # Arguments first: a typo should not cost a model load.
        max_new_tokens = check_positive("max_new_tokens", max_new_tokens)
        min_new_tokens = _check_nonnegative("min_new_tokens", min_new_tokens)
        if min_new_tokens > max_new_tokens:
            raise TextlabError(
                f"min_new_tokens ({min_new_tokens}) cannot be larger than max_new_tokens ({max_new_tokens})."
            )
        self.num_beams = check_positive("num_beams", num_beams)
        try:
            self.length_penalty = float(length_penalty)
        except (TypeError, ValueError):
            raise TextlabError(f"length_penalty must be a number, not {length_penalty!r}.") from None
        self.no_repeat_ngram_size = _check_nonnegative("no_repeat_ngram_size", no_repeat_ngram_size)
        self.passthrough_words = _check_nonnegative("passthrough_words", passthrough_words)
        self.max_rounds = check_positive("max_rounds", max_rounds)
        if batch_size is not None:
            batch_size = check_positive("batch_size", batch_size)

        self.spec = models.get_spec(model, task="summary")
        self.tokenizer, self.model = models.load_seq2seq(self.spec, device=device, dtype=dtype)
        self.path = Path(models.require(self.spec))
        self.model_id = self.spec.display_id
        self.revision = models.resolved_revision(self.path) or self.spec.revision
        if self.tokenizer.pad_token_id is None:
            raise TextlabError(f"The tokenizer of '{self.model_id}' has no padding token, so texts cannot be batched.")
        # max_new_tokens / min_new_tokens below always decide the length; the model's own
        # max_length / min_length (142 / 56 for distilbart-cnn) would only draw warnings.
        self.model.generation_config.max_length = None
        self.model.generation_config.min_length = None
        self.device = next(self.model.parameters()).device
        self.torch_dtype = next(self.model.parameters()).dtype

        self.window = model_window(self.tokenizer, self.model)
        self._prefix, self._suffix = self._special_tokens()
        self.chunk_tokens = max(1, self.window - len(self._prefix) - len(self._suffix))
        # Decoder positions: the start token plus the generated tokens must fit the table.
        cap = max(1, self.window - 2)
        self.requested_max_new_tokens = max_new_tokens
        self.max_new_tokens = min(max_new_tokens, cap)
        self.min_new_tokens = min(min_new_tokens, self.max_new_tokens)

        cuda = self.device.type == "cuda"
        self.batch_size = batch_size if batch_size is not None else (CUDA_BATCH_SIZE if cuda else CPU_BATCH_SIZE)
        row_cost = self.window + self.num_beams * self.max_new_tokens  # the longest possible row
        budget = self._cuda_token_budget() if cuda else DEFAULT_MAX_TOKENS
        if batch_size is not None:
            # An explicit batch size caps the rows; the budget then allows that many full rows.
            budget = max(budget, batch_size * row_cost)
        self.max_tokens = int(max(budget, row_cost))

        self.chunked = np.zeros(0, dtype=bool)
        self.n_chunked = 0
        self.rounds = np.zeros(0, dtype=np.int64)
        self.n_unreduced = 0
        self.n_passthrough = 0
        self.n_generated = 0  # generate() inputs in the last call (texts + chunks, all rounds)
        self.batch_rows: list[int] = []  # rows of each generate() batch in the last call

    # ---- setup helpers

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The special tokens the tokenizer puts before and after a text (<s> ... </s> for BART)."""
        enc = self.tokenizer("summary", add_special_tokens=True, return_special_tokens_mask=True)
        ids, mask = list(enc["input_ids"]), list(enc["special_tokens_mask"])
        content = [i for i, m in enumerate(mask) if not m]
        if not content:
            return [], []
        return ids[:content[0]], ids[content[-1] + 1:]

    def _cuda_token_budget(self) -> int:
        """Token budget for one batch on CUDA, from the GPU's memory and the model's shape.

        A budget token costs about: its decoder key/value cache (self- and cross-attention
        caches hold 2 x d_model values per decoder layer for every input and output token),
        the encoder's widest activation (the feed-forward layer) while the batch is encoded,
        and a share of the per-row float32 scores over the vocabulary (a few copies, spread
        over the row's generated tokens).
        """
        config = self.model.config
        d_model = int(getattr(config, "d_model", None) or getattr(config, "hidden_size", 1024))
        layers = int(getattr(config, "decoder_layers", None) or getattr(config, "num_decoder_layers", None)
                     or getattr(config, "num_hidden_layers", 12))
        ffn = int(getattr(config, "encoder_ffn_dim", None) or getattr(config, "d_ff", None) or 4 * d_model)
        vocab = int(getattr(config, "vocab_size", 50000))
        elem = torch.finfo(self.torch_dtype).bits // 8
        per_token = elem * (2 * layers * d_model + ffn + 6 * d_model) + 3 * vocab * 4 / max(1, self.max_new_tokens)
        try:
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            free, _total = torch.cuda.mem_get_info(index)
        except Exception:  # no driver answer: a conservative fixed budget
            return DEFAULT_MAX_TOKENS * 4
        budget = int(CUDA_MEMORY_SHARE * free / per_token)
        return int(min(CUDA_MAX_TOKENS_CAP, max(DEFAULT_MAX_TOKENS, budget)))

    def generation_kwargs(self) -> dict:
        """The keyword arguments given to ``model.generate`` (also for reproducing a summary)."""
        kwargs = dict(
            max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens, num_beams=self.num_beams,
            do_sample=False, no_repeat_ngram_size=self.no_repeat_ngram_size, num_return_sequences=1,
        )
        if self.num_beams > 1:
            kwargs["length_penalty"] = self.length_penalty
        return kwargs

    # ---- preprocess: tokens, chunks

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text with the model's special tokens, never truncated."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False, padding=False,
                             return_attention_mask=False, verbose=False)
        return [list(ids) for ids in enc["input_ids"]]

    def _sentence_token_runs(self, text: str) -> list[list[int]]:
        """The text's tokens (no special tokens), grouped by sentence."""
        sentences = split_sentences(text)
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True,
                                 return_attention_mask=False, verbose=False)
            ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
            starts, pos = [], 0
            for sentence in sentences:
                at = text.find(sentence, pos)
                if at < 0:  # cannot happen for substrings; fall back to one run (token windows)
                    starts = []
                    break
                starts.append(at)
                pos = at + len(sentence)
            if not starts:
                return [ids]
            runs: list[list[int]] = [[] for _ in starts]
            for token, (begin, end) in zip(ids, offsets):
                # The token's last character decides: a leading space (BPE's "Ġ") belongs to
                # the gap before the sentence, its last character to the sentence.
                where = max(begin, end - 1)
                runs[max(0, bisect.bisect_right(starts, where) - 1)].append(token)
            return [run for run in runs if run]
        # Slow tokenizers give no offsets: tokenise sentence by sentence.
        pieces = sentences or [text]
        enc = self.tokenizer(pieces, add_special_tokens=False, truncation=False, return_attention_mask=False,
                             verbose=False)
        return [list(run) for run in enc["input_ids"] if len(run)]

    def _chunks(self, text: str) -> list[list[int]]:
        """Token chunks of at most ``chunk_tokens`` tokens (no special tokens), at sentence ends.

        As few chunks as whole sentences allow (filling chunks in order is optimal for
        that), and of those the most even: the smallest chunk capacity that still needs no
        more chunks (binary search), so the last chunk is not a stub.
        """
        limit = self.chunk_tokens
        pieces: list[list[int]] = []
        for run in self._sentence_token_runs(text):
            if len(run) <= limit:
                pieces.append(run)
            else:  # one sentence longer than a chunk: consecutive token windows
                pieces.extend(run[i:i + limit] for i in range(0, len(run), limit))
        sizes = [len(p) for p in pieces]
        if not sizes:
            return []

        def fill(capacity: int) -> list[int]:
            """Chunk start indices (into pieces) when each chunk takes pieces up to capacity."""
            starts, used = [0], 0
            for i, size in enumerate(sizes):
                if used and used + size > capacity:
                    starts.append(i)
                    used = 0
                used += size
            return starts

        fewest = len(fill(limit))
        low, high = max(max(sizes), -(-sum(sizes) // fewest)), limit
        while low < high:
            middle = (low + high) // 2
            if len(fill(middle)) <= fewest:
                high = middle
            else:
                low = middle + 1
        starts = fill(low) + [len(pieces)]
        return [[t for piece in pieces[a:b] for t in piece] for a, b in zip(starts, starts[1:])]

    # ---- forward

    def collate(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        """Right-padded input ids and attention mask on the model's device."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        pin = self.device.type == "cuda"
        out = {}
        for name, arr in (("input_ids", ids), ("attention_mask", mask)):
            tensor = torch.from_numpy(arr)
            out[name] = (tensor.pin_memory() if pin else tensor).to(self.device, non_blocking=pin)
        return out

    def _forward(self, rows: list[list[int]]) -> list[str]:
        batch = self.collate(rows)
        self.batch_rows.append(len(rows))
        with torch.inference_mode():
            out = self.model.generate(**batch, **self.generation_kwargs())
        decoded = self.tokenizer.batch_decode(out.cpu().tolist(), skip_special_tokens=True,
                                              clean_up_tokenization_spaces=True)
        return [text.strip() for text in decoded]

    def _generate(self, items: list[list[int]], on_batch: Callable[[int], None] | None) -> list[str]:
        if not items:
            return []
        lengths = np.fromiter((len(ids) + self.num_beams * self.max_new_tokens for ids in items),
                              dtype=np.int64, count=len(items))
        self.n_generated += len(items)
        return run_batched(items, lengths, self._forward, max_tokens=self.max_tokens,
                           max_batch_size=self.batch_size, on_batch=on_batch)

    # ---- public

    def summarize(self, texts: list[str], progress: Callable[[int], None] | None = None) -> list[str]:
        """One summary per text, in input order; ``progress(k)``: k texts done so far."""
        if isinstance(texts, str):
            raise TextlabError("summarize expects a list of texts, not a single string.")
        if self.model is None:
            raise TextlabError("This summarizer was closed; create a new one.")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TextlabError(f"Texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}.")
        n = len(texts)
        out = [""] * n
        self.chunked = np.zeros(n, dtype=bool)
        self.rounds = np.zeros(n, dtype=np.int64)
        self.n_unreduced = 0
        self.n_generated = 0
        self.batch_rows = []

        reported = [0]

        def report(k: int) -> None:
            k = min(n, int(k))
            if progress is not None and k > reported[0]:
                reported[0] = k
                progress(k)

        counts = word_counts(texts)
        current: dict[int, str] = {}
        self.n_passthrough = 0
        for i, text in enumerate(texts):
            if not text.strip():
                out[i] = ""
            elif counts[i] < self.passthrough_words:
                out[i] = text
                self.n_passthrough += 1
            else:
                current[i] = text
        done = n - len(current)
        report(done)

        for round_no in range(1, self.max_rounds + 1):
            if not current:
                break
            last = round_no == self.max_rounds
            owners = list(current)
            items: list[list[int]] = []
            item_owner: list[int] = []
            whole: set[int] = set()  # texts summarised in one piece this round (final)
            for i, ids in zip(owners, self.encode([current[i] for i in owners])):
                self.rounds[i] = round_no
                if len(ids) <= self.window:
                    items.append(ids)
                    item_owner.append(i)
                    whole.add(i)
                    continue
                self.chunked[i] = True
                for chunk in self._chunks(current[i]):
                    items.append(self._prefix + chunk + self._suffix)
                    item_owner.append(i)
            # Progress: texts finishing this round, in proportion to the inputs done.
            share = len(whole) / max(1, len(items))
            base = done
            summaries = self._generate(items, lambda k: report(base + int(k * share)))
            parts: dict[int, list[str]] = {i: [] for i in owners}
            for i, summary in zip(item_owner, summaries):
                parts[i].append(summary)
            following: dict[int, str] = {}
            for i in owners:
                if i in whole:
                    out[i] = parts[i][0]
                    continue
                joined = " ".join(s for s in parts[i] if s)
                if last:
                    out[i] = joined
                    self.n_unreduced += 1
                else:
                    following[i] = joined
            done += len(owners) - len(following)
            report(done)
            current = following
        self.n_chunked = int(self.chunked.sum())
        report(n)
        return out

    def describe(self) -> dict:
        """Settings and last-run figures for run manifests."""
        import transformers

        settings = self.generation_kwargs()
        settings["length_penalty"] = self.length_penalty
        notes = []
        if self.max_new_tokens < self.requested_max_new_tokens:
            notes.append(
                f"max_new_tokens lowered from {self.requested_max_new_tokens} to {self.max_new_tokens} "
                f"(the model's window is {self.window} tokens)"
            )
        return {
            "backend": "transformers",
            "library": f"transformers {transformers.__version__}",
            "model": self.model_id,
            "model_revision": self.revision,
            "model_path": str(self.path),
            "device": device_description(self.device),
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "generation": settings,
            "decoding": "greedy" if self.num_beams == 1 else f"beam search ({self.num_beams} beams)",
            "window": self.window,
            "chunk_tokens": self.chunk_tokens,
            "passthrough_words": self.passthrough_words,
            "short_texts": f"texts with fewer than {self.passthrough_words} words are returned unchanged",
            "long_texts": (
                f"map-reduce: texts over {self.window} tokens are split into chunks of at most "
                f"{self.chunk_tokens} tokens at sentence boundaries, each chunk is summarised, the chunk "
                f"summaries are joined and summarised again, for at most {self.max_rounds} rounds; after "
                "the last round a still-too-long text's chunk summaries are joined (never truncated)"
            ),
            "batch_size": self.batch_size,
            "max_tokens_per_batch": self.max_tokens,
            "n_chunked": self.n_chunked,
            "n_unreduced": self.n_unreduced,
            "n_passthrough": self.n_passthrough,
            "notes": notes,
        }


# ---------------------------------------------------------------------- the predictor


class AbstractivePredictor(Predictor):
    def __init__(self, config: SummaryConfig, model: str, reason: str):
        self.reason = reason
        self.passthrough_words = config.passthrough_words
        self.summarizer = Seq2SeqSummarizer(
            model, device=config.device, batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
            min_new_tokens=config.min_new_tokens, num_beams=config.num_beams,
            passthrough_words=config.passthrough_words)

    def predict(self, texts: list[str], progress=None) -> pd.DataFrame:
        out = self.summarizer.summarize(texts, progress)
        return pd.DataFrame({"summary": out, "split": self.summarizer.chunked.copy(),
                             "passthrough": [len(words(t)) < self.passthrough_words for t in texts]})

    def describe(self) -> dict[str, Any]:
        return {**self.summarizer.describe(), "backend_choice": self.reason, "method": "abstractive (seq2seq)"}

    def close(self) -> None:
        self.summarizer.close()
