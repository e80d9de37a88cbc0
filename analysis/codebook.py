"""Codebooks: the researcher's codes, with definitions, include/exclude notes and examples.

Format (design contract): JSON or YAML ``{name, version, multi_label, hypothesis_template,
none_label, codes: [{label, definition, include, exclude, examples: [...]}]}``; CSV with one
row per code and ``label`` / ``definition`` columns (``include``, ``exclude`` and
``examples`` optional; several examples in one cell are separated by new lines or ``|``).

A codebook is checked before any model sees it, and every run records its fingerprint
(``Codebook.fingerprint``: a hash of the content that matters for coding), so a methods
section can say exactly which codebook produced which codes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import CodebookError
from .export import export_table, unneutralize_text
from .textutil import slug

MAX_CODES = 100            # beyond this, zero-shot coding is slow and the result unreadable
MAX_LABEL_CHARS = 80
MAX_EXAMPLES = 50
DEFAULT_TEMPLATE = "This text is about {}."
RESERVED_SLUGS = {"label", "labels"}  # code_label / code_labels are the result columns
CODE_FIELDS = ("label", "definition", "include", "exclude", "examples")
BOOK_FIELDS = ("name", "version", "multi_label", "hypothesis_template", "none_label", "codes")


@dataclass
class Code:
    label: str
    definition: str = ""
    include: str = ""
    exclude: str = ""
    examples: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return slug(self.label)

    def description(self) -> str:
        """Label, definition and include notes as one text (what the offline coder embeds).

        Exclude notes are left out on purpose: embedding "not X" moves the code towards X.
        """
        parts = [self.label.strip()]
        for text in (self.definition, self.include):
            if text and text.strip():
                parts.append(text.strip())
        return ". ".join(p.rstrip(".") for p in parts) + "."


@dataclass
class Codebook:
    codes: list[Code]
    name: str = "Codebook"
    version: str = ""
    multi_label: bool = False
    hypothesis_template: str = DEFAULT_TEMPLATE
    # When set (e.g. "None of these"), a text may get this label instead of a code.
    none_label: str | None = None

    # ------------------------------------------------------------------ checks

    def validate(self) -> "Codebook":
        """Raise CodebookError naming the problem and the fix; return self when fine."""
        if not self.codes:
            raise CodebookError("The codebook has no codes. Add at least two codes, each with a label.")
        if len(self.codes) > MAX_CODES:
            raise CodebookError(
                f"The codebook has {len(self.codes)} codes; Textlab codes at most {MAX_CODES}. "
                "Merge codes into broader ones or code in two rounds (broad codes first)."
            )
        seen: dict[str, str] = {}
        for i, code in enumerate(self.codes, start=1):
            if not isinstance(code.label, str) or not code.label.strip():
                raise CodebookError(f"Code {i} has an empty label. Give every code a short label.")
            label = code.label.strip()
            if len(label) > MAX_LABEL_CHARS:
                raise CodebookError(
                    f"The label of code {i} is {len(label)} characters long ('{label[:40]}...'); keep labels under "
                    f"{MAX_LABEL_CHARS} characters and put the detail in the definition."
                )
            if ";" in label:
                raise CodebookError(f"Code label '{label}' contains ';', which separates codes in multi-label results. Remove it.")
            key = code.slug
            if key in RESERVED_SLUGS:
                raise CodebookError(f"Code label '{label}' would clash with the result column code_{key}. Rename the code.")
            if key in seen:
                other = seen[key]
                what = "appears twice" if other.lower() == label.lower() else f"gives the same column name (code_{key}) as '{other}'"
                raise CodebookError(f"Code label '{label}' {what}. Every code needs its own label.")
            seen[key] = label
            if not isinstance(code.examples, list) or not all(isinstance(e, str) for e in code.examples):
                raise CodebookError(f"The examples of code '{label}' must be a list of texts.")
            if len(code.examples) > MAX_EXAMPLES:
                raise CodebookError(
                    f"Code '{label}' has {len(code.examples)} examples; use at most {MAX_EXAMPLES}. "
                    "For more coded texts, use few-shot coding with a column of human codes."
                )
        if len(self.codes) < 2 and not self.none_label and not self.multi_label:
            raise CodebookError(
                "A single-label codebook needs at least two codes (or one code plus a 'none of these' option)."
            )
        template = self.hypothesis_template
        if not isinstance(template, str) or template.count("{}") != 1:
            raise CodebookError(
                f"The hypothesis template must contain '{{}}' exactly once, where the code label goes "
                f"(got {template!r}); for example {DEFAULT_TEMPLATE!r}."
            )
        try:
            template.format("x")
        except (IndexError, KeyError, ValueError) as exc:
            raise CodebookError(
                f"The hypothesis template {template!r} has other braces besides '{{}}' ({exc}). Remove them."
            ) from None
        if self.none_label is not None:
            none = str(self.none_label).strip()
            if not none:
                self.none_label = None
            elif slug(none) in seen or slug(none) in RESERVED_SLUGS:
                raise CodebookError(f"The 'none of these' label '{none}' clashes with a code label. Rename one of them.")
        return self

    # ------------------------------------------------------------------ views

    @property
    def labels(self) -> list[str]:
        return [c.label.strip() for c in self.codes]

    @property
    def output_labels(self) -> list[str]:
        """Labels a text can receive: the codes, plus the 'none' label when it is enabled."""
        return self.labels + ([self.none_label.strip()] if self.none_label else [])

    def fingerprint(self) -> str:
        """12 hex digits of SHA-256 over everything that changes the coding (not the name)."""
        content = self.to_dict()
        content.pop("name", None)
        content.pop("version", None)
        raw = json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(raw).hexdigest()[:12]

    def version_tag(self) -> str:
        """What a run manifest records: the user's version (if any) and the fingerprint."""
        return f"{self.version} ({self.fingerprint()})" if self.version else self.fingerprint()

    # ------------------------------------------------------------------ conversions

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "multi_label": bool(self.multi_label),
            "hypothesis_template": self.hypothesis_template,
            "none_label": self.none_label,
            "codes": [asdict(c) for c in self.codes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the codebook") -> "Codebook":
        if not isinstance(data, dict):
            raise CodebookError(f"{source} must be a mapping with a 'codes' list, not {type(data).__name__}.")
        unknown = sorted(set(data) - set(BOOK_FIELDS))
        if unknown:
            raise CodebookError(f"{source} has unknown field(s) {', '.join(unknown)}; known: {', '.join(BOOK_FIELDS)}.")
        raw_codes = data.get("codes")
        if not isinstance(raw_codes, list):
            raise CodebookError(f"{source} needs a 'codes' list, each code with at least a 'label'.")
        codes = []
        for i, raw in enumerate(raw_codes, start=1):
            if isinstance(raw, str):  # a bare list of labels is a valid (if thin) codebook
                raw = {"label": raw}
            if not isinstance(raw, dict):
                raise CodebookError(f"Code {i} in {source} must be a mapping with a 'label', not {type(raw).__name__}.")
            extra = sorted(set(raw) - set(CODE_FIELDS))
            if extra:
                raise CodebookError(
                    f"Code {i} in {source} has unknown field(s) {', '.join(extra)}; known: {', '.join(CODE_FIELDS)}."
                )
            examples = raw.get("examples") or []
            if isinstance(examples, str):
                examples = _split_examples(examples)
            codes.append(Code(
                label=_text(raw.get("label")),
                definition=_text(raw.get("definition")),
                include=_text(raw.get("include")),
                exclude=_text(raw.get("exclude")),
                examples=[str(e).strip() for e in examples if str(e).strip()] if isinstance(examples, list) else examples,
            ))
        multi = data.get("multi_label", False)
        if not isinstance(multi, bool):
            raise CodebookError(f"multi_label in {source} must be true or false, not {multi!r}.")
        none = data.get("none_label")
        return cls(
            codes=codes,
            name=_text(data.get("name")) or "Codebook",
            version=_text(data.get("version")),
            multi_label=multi,
            hypothesis_template=data.get("hypothesis_template") or DEFAULT_TEMPLATE,
            none_label=_text(none) or None,
        ).validate()

    @classmethod
    def from_labels(cls, labels: list[str], **kwargs) -> "Codebook":
        return cls(codes=[Code(label=str(label)) for label in labels], **kwargs).validate()

    def to_frame(self) -> pd.DataFrame:
        """One row per code, examples one per line: the table the app's editor shows."""
        return pd.DataFrame(
            [{"label": c.label, "definition": c.definition, "include": c.include, "exclude": c.exclude,
              "examples": "\n".join(c.examples)} for c in self.codes],
            columns=list(CODE_FIELDS),
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "the codebook table", **settings) -> "Codebook":
        if "label" not in frame.columns:
            raise CodebookError(f"{source} needs a 'label' column (found: {', '.join(map(str, frame.columns))}).")
        extra = [c for c in frame.columns if c not in CODE_FIELDS]
        if extra:
            raise CodebookError(f"{source} has unknown column(s) {', '.join(map(str, extra))}; known: {', '.join(CODE_FIELDS)}.")
        rows = frame.fillna("").astype(str).to_dict("records")
        # Rows left entirely blank (an editor's spare row) are not codes.
        rows = [r for r in rows if any(v.strip() for v in r.values())]
        codes = [{k: (_split_examples(v) if k == "examples" else v) for k, v in r.items()} for r in rows]
        return cls.from_dict({**settings, "codes": codes}, source)


def codes_table(codes: list | None) -> pd.DataFrame:
    """The editor's table for a ``codes`` list as stored, also one still being written (empty
    labels, bare label strings) that ``Codebook.from_dict`` would refuse: one row per code,
    examples one per line. ``Codebook.from_frame`` reads the edited table back."""
    if not codes:
        return pd.DataFrame(columns=list(CODE_FIELDS))
    rows = []
    for code in codes:
        if not isinstance(code, dict):
            code = {"label": str(code)}
        rows.append({"label": code.get("label", ""), "definition": code.get("definition") or "",
                     "include": code.get("include") or "", "exclude": code.get("exclude") or "",
                     "examples": "\n".join(code.get("examples") or [])})
    return pd.DataFrame(rows, columns=list(CODE_FIELDS))


def _text(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).strip()


def _split_examples(cell: str) -> list[str]:
    if not cell or not str(cell).strip():
        return []
    parts = str(cell).replace("\r\n", "\n").split("\n")
    if len(parts) == 1:
        parts = parts[0].split("|")
    return [p.strip() for p in parts if p.strip()]


# ---------------------------------------------------------------------- files


def read_codebook(source: str | os.PathLike | bytes, name: str | None = None) -> Codebook:
    """Read a codebook from a JSON, YAML or CSV file (or its bytes, with ``name`` for the type)."""
    if isinstance(source, bytes):
        raw, label = source, name or "the codebook"
        suffix = Path(name or "").suffix.lower()
    else:
        path = Path(source)
        label, suffix = path.name, path.suffix.lower()
        if not path.exists():
            raise CodebookError(f"Codebook file {path} does not exist.")
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CodebookError(f"{label} is not UTF-8 text. Save it as UTF-8 (JSON, YAML or CSV).") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CodebookError(f"{label} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
        return Codebook.from_dict(data, label)
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise CodebookError(f"{label} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None
        return Codebook.from_dict(data, label)
    if suffix in (".csv", ".tsv"):
        try:
            frame = pd.read_csv(io.StringIO(text), sep=None, engine="python", dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, csv.Error) as exc:
            raise CodebookError(f"{label} could not be read as CSV: {exc}.") from None
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        # Our CSV export prefixes formula-like cells with ' (see codebook_bytes): read
        # them back as they were written, so the round trip gives the same codebook.
        frame = frame.map(unneutralize_text)
        return Codebook.from_frame(frame, label)
    raise CodebookError(f"{label}: codebooks are read from .json, .yaml, .yml or .csv files, not '{suffix or 'no extension'}'.")


def codebook_bytes(book: Codebook, fmt: str, *, neutralize: bool = True) -> bytes:
    """The codebook as a file's bytes: fmt is json, yaml or csv.

    CSV cells that a spreadsheet would run as a formula (a definition "-rent too high")
    get a leading apostrophe, as in every Textlab export (`export.neutralize_formulas`);
    `read_codebook` removes it again. ``neutralize=False`` writes them verbatim.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt == "json":
        return (json.dumps(book.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if fmt in ("yaml", "yml"):
        import yaml

        return yaml.safe_dump(book.to_dict(), sort_keys=False, allow_unicode=True).encode("utf-8")
    if fmt == "csv":
        # CSV keeps only the codes; the book's settings need JSON or YAML.
        frame = book.to_frame()
        frame["examples"] = [" | ".join(c.examples) for c in book.codes]
        return export_table(frame, "csv", neutralize=neutralize).data
    raise CodebookError(f"Codebooks are written as json, yaml or csv, not '{fmt}'.")


def write_codebook(book: Codebook, path: str | os.PathLike) -> Path:
    from .fileio import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, codebook_bytes(book.validate(), path.suffix))
    return path


def as_codebook(value: Codebook | dict | str | os.PathLike | list) -> Codebook:
    """A Codebook from what a config or the CLI holds: a Codebook, a dict, a file path or a list of labels."""
    if isinstance(value, Codebook):
        return value.validate()
    if isinstance(value, dict):
        return Codebook.from_dict(value)
    if isinstance(value, list):
        return Codebook.from_labels(value)
    if isinstance(value, (str, os.PathLike)) and str(value).strip():
        return read_codebook(value)
    raise CodebookError("Coding needs a codebook: a JSON, YAML or CSV file (--codebook FILE), or codes written in the app.")
