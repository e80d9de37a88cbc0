"""The embedded on-disk store: projects, runs, checkpoints, results and manifests.

Layout under the workspace root (``TEXTLAB_HOME``, default ``./workspace``)::

    textlab.sqlite                      metadata: projects and runs (WAL mode)
    projects/<project>/corpus.parquet   the imported corpus (doc_id + every input column)
    projects/<project>/runs/<run>/chunks/chunk-000000.parquet   checkpoints
    projects/<project>/runs/<run>/result.parquet                the finished result
    projects/<project>/runs/<run>/manifest.json                 provenance
    projects/<project>/annotations.parquet                      hand codes
    projects/<project>/samples.parquet, samples.json           drawn hand-coding samples and their designs

SQLite holds what changes often (status, progress) and what must be queried; Parquet holds
tables. Every file is written to a temporary name in its folder and moved into place with
``os.replace``, so a crash never leaves a half-written table behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .corpus import Corpus
from .fileio import atomic_write_bytes, atomic_write_parquet  # noqa: F401  (also part of this module's face)
from .datetimes import DATE_ORDERS
from .errors import CorpusError, TextlabError

DB_NAME = "textlab.sqlite"

# A run is one of these; ``interrupted`` means its process died and it waits to resume.
RUN_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    source TEXT,
    text_column TEXT NOT NULL,
    id_column TEXT,
    group_column TEXT,
    date_column TEXT,
    rows INTEGER NOT NULL,
    input_hash TEXT NOT NULL,
    import_report TEXT,
    data_hash TEXT,
    date_order TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    heartbeat TEXT,
    owner TEXT,
    n_total INTEGER NOT NULL DEFAULT 0,
    n_done INTEGER NOT NULL DEFAULT 0,
    docs_per_s REAL,
    backend TEXT,
    model TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stage TEXT,
    tokens_per_text REAL
);
CREATE INDEX IF NOT EXISTS runs_by_project ON runs(project_id, created);
CREATE TABLE IF NOT EXISTS workers (
    owner TEXT PRIMARY KEY,
    heartbeat TEXT NOT NULL
);
"""


_LATER_RUN_COLUMNS = (("stage", "TEXT"), ("tokens_per_text", "REAL"))
_LATER_PROJECT_COLUMNS = (("data_hash", "TEXT"), ("date_order", "TEXT"))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_root() -> Path:
    return Path(os.environ.get("TEXTLAB_HOME") or "workspace")


def config_hash(task: str, config: dict, inputs: str | None = None) -> str:
    """A stable hash of a task's configuration: the same settings give the same hash.

    ``inputs`` fingerprints what the task reads besides the texts (None: texts only, and the
    hash is the one older workspaces stored)."""
    payload = {"task": task, "config": config}
    if inputs is not None:
        payload["inputs"] = inputs
    payload = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def corpus_hash(corpus: Corpus) -> str:
    """SHA-256 over doc ids and texts: identifies the input of a run in its manifest."""
    digest = hashlib.sha256()
    for doc_id, text in zip(corpus.doc_ids, corpus.texts):
        digest.update(doc_id.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def data_hash(corpus: Corpus) -> str:
    """SHA-256 over the whole input: every column (names, types, values) and the column roles.

    ``corpus_hash`` identifies what the analyses read (ids and texts); this one tells whether
    the file given now is the file stored, so that a corrected ``region`` or a new ``coder``
    column is never exported from an older copy.
    """
    frame = parquet_safe(corpus.data)
    digest = hashlib.sha256()
    roles = [corpus.text_column, corpus.id_column, corpus.group_column, corpus.date_column]
    digest.update(json.dumps({"roles": roles, "columns": list(frame.columns),
                              "dtypes": [str(t) for t in frame.dtypes]}, default=str).encode("utf-8"))
    try:
        values = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(values.tobytes())
    except TypeError:  # cells pandas cannot hash (lists, dicts): hash their text instead
        digest.update(frame.astype(str).to_csv(index=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Make a frame storable in Parquet without changing what a reader sees.

    Pyarrow refuses object columns that mix types (ints and strings from JSON, say) and
    non-string column names. Such columns are stored as strings; everything else is
    kept as it is.
    """
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col].dropna().head(100_000)}
            if len(kinds) > 1 or (kinds and not kinds <= {str}):
                out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
    return out


@dataclass
class Run:
    id: str
    project_id: str
    task: str
    config: dict
    config_hash: str
    status: str
    created: str
    started: str | None = None
    finished: str | None = None
    heartbeat: str | None = None
    owner: str | None = None
    n_total: int = 0
    n_done: int = 0
    docs_per_s: float | None = None
    backend: str | None = None
    model: str | None = None
    error: str | None = None
    cancel_requested: bool = False
    stage: str | None = None                # what a running job does before predicting (e.g. fine-tuning)
    tokens_per_text: float | None = None    # a generative model's prompt tokens per text (tokens/s = texts/s x this)

    @property
    def fraction(self) -> float:
        return 1.0 if self.n_total == 0 and self.status == "done" else (self.n_done / self.n_total if self.n_total else 0.0)

    @property
    def eta_s(self) -> float | None:
        if not self.docs_per_s or self.status != "running":
            return None
        return max(self.n_total - self.n_done, 0) / self.docs_per_s

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Run":
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


@dataclass
class ProjectInfo:
    id: str
    name: str
    created: str
    source: str | None
    text_column: str
    id_column: str | None
    group_column: str | None
    date_column: str | None
    rows: int
    input_hash: str
    import_report: dict = field(default_factory=dict)
    data_hash: str | None = None            # None: a project made before whole-input hashes
    # "day-first"/"month-first" for dates like 04.03.2021; None: the order the column shows.
    date_order: str | None = None


@dataclass
class CorpusUpdate:
    """Columns that differ between the stored corpus and the file imported again."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = [f"{label} {', '.join(repr(c) for c in cols)}" for label, cols in
                 (("added", self.added), ("changed", self.changed), ("removed", self.removed)) if cols]
        return "; ".join(parts) or "column roles changed"


class Workspace:
    """A folder of projects. Safe to share between threads and processes (SQLite WAL)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.root = self.root.expanduser().resolve()
        try:
            (self.root / "projects").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TextlabError(
                f"Cannot create the workspace folder {self.root}: {exc.strerror}. "
                "Set TEXTLAB_HOME to a folder you can write to."
            ) from exc
        self.db_path = self.root / DB_NAME
        with closing(self.connect()) as con:
            con.executescript(_SCHEMA)
            # Workspaces made by an older Textlab: add the columns that came later.
            for table, later in (("runs", _LATER_RUN_COLUMNS), ("projects", _LATER_PROJECT_COLUMNS)):
                have = {row["name"] for row in con.execute(f"PRAGMA table_info({table})")}
                for column, kind in later:
                    if column not in have:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def connect(self) -> sqlite3.Connection:
        # A fresh connection per operation: cheap, and safe across the worker thread and
        # Streamlit's script threads. Autocommit mode; WAL lets readers poll progress while
        # the worker writes.
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    # -- projects -------------------------------------------------------------------
    def create_project(self, name: str, corpus: Corpus, import_report: dict | None = None) -> "Project":
        name = (name or "").strip() or (Path(corpus.source).stem if corpus.source else "Untitled corpus")
        project_id = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        folder = self.root / "projects" / project_id
        atomic_write_parquet(folder / "corpus.parquet", parquet_safe(corpus.data))
        with closing(self.connect()) as con:
            con.execute(
                "INSERT INTO projects (id, name, created, source, text_column, id_column, group_column, "
                "date_column, rows, input_hash, import_report, data_hash, date_order) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    project_id, name, now_iso(), corpus.source, corpus.text_column, corpus.id_column,
                    corpus.group_column, corpus.date_column, len(corpus), corpus_hash(corpus),
                    json.dumps(import_report or {}, default=str), data_hash(corpus), corpus.date_order,
                ),
            )
        return Project(self, project_id)

    def list_projects(self) -> list[ProjectInfo]:
        with closing(self.connect()) as con:
            rows = con.execute("SELECT * FROM projects ORDER BY created DESC, id DESC").fetchall()
        return [self._info(r) for r in rows]

    def find_project(self, input_hash: str, text_column: str) -> "Project | None":
        """The newest project whose analysed input (doc ids and texts of this text column) is
        this one (used by the CLI to resume). Its other columns may differ from the file given
        now: compare ``info.data_hash`` with ``data_hash(corpus)`` and ``update_corpus``."""
        with closing(self.connect()) as con:
            row = con.execute(
                "SELECT id FROM projects WHERE input_hash=? AND text_column=? ORDER BY created DESC LIMIT 1",
                (input_hash, text_column),
            ).fetchone()
        return Project(self, row["id"]) if row else None

    def project(self, project_id: str) -> "Project":
        with closing(self.connect()) as con:
            row = con.execute("SELECT id FROM projects WHERE id=?", (project_id,)).fetchone()
        if row is None:
            raise TextlabError(f"No project '{project_id}' in the workspace {self.root}.")
        return Project(self, project_id)

    def delete_project(self, project_id: str) -> None:
        import shutil

        with closing(self.connect()) as con:
            con.execute("DELETE FROM runs WHERE project_id=?", (project_id,))
            con.execute("DELETE FROM projects WHERE id=?", (project_id,))
        shutil.rmtree(self.root / "projects" / project_id, ignore_errors=True)

    @staticmethod
    def _info(row: sqlite3.Row) -> ProjectInfo:
        data = dict(row)
        data["import_report"] = json.loads(data["import_report"] or "{}")
        return ProjectInfo(**data)

    # -- runs across projects (used by the job worker) --------------------------------
    def runs_with_status(self, *statuses: str) -> list[Run]:
        marks = ",".join("?" * len(statuses))
        with closing(self.connect()) as con:
            rows = con.execute(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY created", statuses).fetchall()
        return [Run.from_row(r) for r in rows]

    def run(self, run_id: str) -> Run:
        with closing(self.connect()) as con:
            row = con.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise TextlabError(f"No run '{run_id}' in the workspace {self.root}.")
        return Run.from_row(row)

    def update_run(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        unknown = set(fields) - set(Run.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if "config" in fields:
            fields["config"] = json.dumps(fields["config"], sort_keys=True, default=str)
        assignments = ", ".join(f"{k}=?" for k in fields)
        with closing(self.connect()) as con:
            con.execute(f"UPDATE runs SET {assignments} WHERE id=?", (*fields.values(), run_id))

    def claim_run(self, run_id: str, owner: str, from_statuses: tuple[str, ...], status: str = "running",
                  expected_owner: str | None = None) -> bool:
        """Atomically take a run for this worker; False when another worker has it.

        ``expected_owner``: take it only from this owner (a dead one), so that two living
        workers looking at the same dead run cannot both take it.
        """
        marks = ",".join("?" * len(from_statuses))
        query = (f"UPDATE runs SET status=?, owner=?, heartbeat=?, started=COALESCE(started, ?) "
                 f"WHERE id=? AND status IN ({marks})")
        args: list[Any] = [status, owner, now_iso(), now_iso(), run_id, *from_statuses]
        if expected_owner is not None:
            query += " AND owner IS ?"
            args.append(expected_owner)
        with closing(self.connect()) as con:
            cur = con.execute(query, args)
            return cur.rowcount == 1

    # -- worker liveness: each process that runs jobs beats here every few seconds, so a
    # process killed without a trace (kill -9, a container restarted with the same pid) is
    # recognised as dead by the others and its runs are taken over.
    def beat(self, owner: str) -> None:
        with closing(self.connect()) as con:
            con.execute("INSERT INTO workers VALUES (?, ?) ON CONFLICT(owner) DO UPDATE SET heartbeat=excluded.heartbeat",
                        (owner, now_iso()))

    def worker_heartbeat(self, owner: str) -> str | None:
        with closing(self.connect()) as con:
            row = con.execute("SELECT heartbeat FROM workers WHERE owner=?", (owner,)).fetchone()
        return row["heartbeat"] if row else None

    def forget_worker(self, owner: str) -> None:
        with closing(self.connect()) as con:
            con.execute("DELETE FROM workers WHERE owner=?", (owner,))

    def project_of(self, run: Run) -> "Project":
        return Project(self, run.project_id)


class Project:
    """One imported corpus with its runs. Cheap to create: reads happen on demand."""

    def __init__(self, workspace: Workspace, project_id: str):
        self.workspace = workspace
        self.id = project_id
        self.folder = workspace.root / "projects" / project_id

    def __repr__(self) -> str:
        return f"Project({self.id!r})"

    @property
    def info(self) -> ProjectInfo:
        with closing(self.workspace.connect()) as con:
            row = con.execute("SELECT * FROM projects WHERE id=?", (self.id,)).fetchone()
        if row is None:
            raise TextlabError(f"Project '{self.id}' no longer exists in {self.workspace.root}.")
        return Workspace._info(row)

    @property
    def name(self) -> str:
        return self.info.name

    def rename(self, name: str) -> None:
        with closing(self.workspace.connect()) as con:
            con.execute("UPDATE projects SET name=? WHERE id=?", (name.strip() or self.name, self.id))

    def corpus(self) -> Corpus:
        info = self.info
        path = self.folder / "corpus.parquet"
        if not path.exists():
            raise TextlabError(f"The corpus file of project '{info.name}' is missing ({path}). Import the file again.")
        data = pd.read_parquet(path)
        return Corpus(
            data=data, text_column=info.text_column, id_column=info.id_column,
            group_column=info.group_column, date_column=info.date_column, source=info.source or "",
            date_order=info.date_order,
        )

    def update_corpus(self, corpus: Corpus, import_report: dict | None = None) -> "CorpusUpdate":
        """Replace the stored table by ``corpus`` when its ids and texts are the stored ones.

        Metadata can be corrected or added after a first import (a fixed ``region``, a new
        ``coder`` column); runs keep their results because they read ids and texts only (a
        run that reads another column, like few-shot coding, records that column's hash and
        is not reused when it changed). Returns what changed, for the user to see.
        """
        info = self.info
        if corpus_hash(corpus) != info.input_hash or corpus.text_column != info.text_column:
            raise TextlabError(
                f"Project '{info.name}' holds other texts or ids than {corpus.source or 'this corpus'}; "
                "import it as a new project instead."
            )
        old = self.corpus().data
        new = corpus.data
        added = [c for c in new.columns if c not in old.columns]
        removed = [c for c in old.columns if c not in new.columns]
        changed = []
        for column in new.columns:
            if column in old.columns and column != "doc_id":
                a, b = parquet_safe(old[[column]])[column], parquet_safe(new[[column]])[column]
                if str(a.dtype) != str(b.dtype) or not a.reset_index(drop=True).equals(b.reset_index(drop=True)):
                    changed.append(column)
        atomic_write_parquet(self.folder / "corpus.parquet", parquet_safe(new))
        # An order given with the new file wins; else the one chosen earlier, for the same column.
        date_order = corpus.date_order or (info.date_order if corpus.date_column == info.date_column else None)
        with closing(self.workspace.connect()) as con:
            con.execute(
                "UPDATE projects SET source=?, id_column=?, group_column=?, date_column=?, import_report=?, data_hash=?, "
                "date_order=? WHERE id=?",
                (corpus.source, corpus.id_column, corpus.group_column, corpus.date_column,
                 json.dumps(import_report or info.import_report, default=str), data_hash(corpus), date_order,
                 self.id),
            )
        return CorpusUpdate(added=added, removed=removed, changed=changed)

    def set_roles(self, group_column: str | None = None, date_column: str | None = None,
                  date_order: str | None | object = ...) -> None:
        """Group and date columns can change after import; text and id cannot (runs depend on them).

        ``date_order`` ("day-first", "month-first", or None for the order the column shows):
        left out, the stored order is kept while the date column stays the same (an order
        chosen for one column says nothing about another).
        """
        if date_order is ...:
            info = self.info
            date_order = info.date_order if date_column == info.date_column else None
        if date_order is not None and date_order not in DATE_ORDERS:
            raise CorpusError(f"Unknown date order {date_order!r}; choose one of: {', '.join(DATE_ORDERS)}.")
        with closing(self.workspace.connect()) as con:
            con.execute(
                "UPDATE projects SET group_column=?, date_column=?, date_order=? WHERE id=?",
                (group_column, date_column, date_order, self.id),
            )

    # -- runs -----------------------------------------------------------------------
    def create_run(self, task: str, config: dict, n_total: int, status: str = "queued",
                   inputs: str | None = None, owner: str | None = None) -> Run:
        """A new run. ``inputs``: a fingerprint of the columns besides the texts that the task
        reads (``Task.input_fingerprint``), so a run is reused only on the same inputs.
        ``owner``: the worker that will run it, set in the same write (a queued run without an
        owner looks abandoned to a watcher, which would take it over as 'interrupted')."""
        run_id = f"{task}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        with closing(self.workspace.connect()) as con:
            con.execute(
                "INSERT INTO runs (id, project_id, task, config, config_hash, status, created, n_total, owner) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, self.id, task, json.dumps(config, sort_keys=True, default=str),
                 config_hash(task, config, inputs), status, now_iso(), n_total, owner),
            )
        return self.workspace.run(run_id)

    def runs(self, task: str | None = None) -> list[Run]:
        query, args = "SELECT * FROM runs WHERE project_id=?", [self.id]
        if task:
            query += " AND task=?"
            args.append(task)
        with closing(self.workspace.connect()) as con:
            rows = con.execute(query + " ORDER BY created DESC, id DESC", args).fetchall()
        return [Run.from_row(r) for r in rows]

    def find_run(self, task: str, config: dict, statuses: tuple[str, ...], inputs: str | None = None) -> Run | None:
        """The newest run of this task with exactly this configuration (and inputs
        fingerprint) and one of these statuses."""
        wanted = config_hash(task, config, inputs)
        for run in self.runs(task):
            if run.config_hash == wanted and run.status in statuses:
                return run
        return None

    @property
    def embeddings_dir(self) -> Path:
        """The project's embedding cache: one pass per (model, variant) shared by its runs and pages."""
        return self.folder / "embeddings"

    def run_folder(self, run_id: str) -> Path:
        return self.folder / "runs" / run_id

    def write_checkpoint(self, run_id: str, chunk_index: int, df: pd.DataFrame) -> None:
        atomic_write_parquet(self.run_folder(run_id) / "chunks" / f"chunk-{chunk_index:06d}.parquet", df)

    def checkpoints(self, run_id: str) -> dict[int, Path]:
        folder = self.run_folder(run_id) / "chunks"
        if not folder.exists():
            return {}
        return {int(p.stem.split("-")[1]): p for p in sorted(folder.glob("chunk-*.parquet"))}

    def write_result(self, run_id: str, result: pd.DataFrame, manifest: dict) -> None:
        folder = self.run_folder(run_id)
        atomic_write_parquet(folder / "result.parquet", parquet_safe(result))
        atomic_write_bytes(folder / "manifest.json", json.dumps(manifest, indent=2, default=str, ensure_ascii=False).encode("utf-8"))

    def result(self, run_id: str) -> pd.DataFrame:
        path = self.run_folder(run_id) / "result.parquet"
        if not path.exists():
            raise TextlabError(f"Run '{run_id}' has no result yet (it is not finished).")
        return pd.read_parquet(path)

    def manifest(self, run_id: str) -> dict:
        path = self.run_folder(run_id) / "manifest.json"
        return json.loads(path.read_text("utf-8")) if path.exists() else {}

    def latest_runs(self) -> dict[str, Run]:
        """The newest finished run of each task: what the Explore and Export pages show."""
        latest: dict[str, Run] = {}
        for run in self.runs():
            if run.status == "done" and run.task not in latest:
                latest[run.task] = run
        return latest

    def results_frame(self, runs: dict[str, Run] | None = None) -> pd.DataFrame:
        """The corpus with the result columns of the given (default: latest) runs, row for row."""
        frame = self.corpus().data
        for run in (runs if runs is not None else self.latest_runs()).values():
            result = self.result(run.id)
            columns = [c for c in result.columns if c != "doc_id"]
            aligned = result.set_index("doc_id").reindex(frame["doc_id"])[columns]
            # Result columns win over same-named input columns (a re-imported export).
            frame = frame.drop(columns=[c for c in columns if c in frame.columns])
            frame = pd.concat([frame, aligned.reset_index(drop=True)], axis=1)
        return frame

    def manifests(self) -> list[dict]:
        return [self.manifest(run.id) for run in self.latest_runs().values()]

    # -- page settings: what a run depends on (a codebook being written, the method, the
    # column of human codes) is kept with the project, so a refresh, a closed tab or a
    # restart reopens it as it was. One small JSON file, replaced atomically.

    def settings(self, name: str) -> dict:
        path = self.folder / "settings.json"
        try:
            data = json.loads(path.read_text("utf-8")) if path.exists() else {}
        except (OSError, ValueError):  # a damaged file loses drafts, not results
            return {}
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    def save_settings(self, name: str, values: dict) -> None:
        path = self.folder / "settings.json"
        with _FileLock(self.folder / ".settings.lock"):
            try:
                data = json.loads(path.read_text("utf-8")) if path.exists() else {}
            except (OSError, ValueError):
                data = {}
            if data.get(name) == values:
                return
            data[name] = values
            atomic_write_bytes(path, json.dumps(data, indent=1, ensure_ascii=False, default=str).encode("utf-8"))

    # -- hand codes (validation) ---------------------------------------------------------
    # One Parquet table per project (annotations.parquet: doc_id, coder, code, coded_at),
    # rewritten whole on each save under an exclusive lock, so two reruns or two browser
    # tabs saving at once cannot lose each other's codes. Reads need no lock: the file is
    # replaced atomically.

    def _annotations_path(self) -> Path:
        return self.folder / "annotations.parquet"

    def _corpus_ids(self) -> pd.Series:
        path = self.folder / "corpus.parquet"
        if not path.exists():
            raise TextlabError(f"The corpus file of project '{self.name}' is missing ({path}). Import the file again.")
        return pd.read_parquet(path, columns=["doc_id"])["doc_id"].astype(str)

    def annotations(self) -> pd.DataFrame:
        """Hand codes: one row per (doc_id, coder) with its code and when it was given (UTC ISO)."""
        path = self._annotations_path()
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype=object) for c in ANNOTATION_COLUMNS})
        return pd.read_parquet(path).reindex(columns=list(ANNOTATION_COLUMNS))

    def save_annotations(self, coder: str, codes: dict[str, str | None]) -> None:
        """Store a coder's codes {doc_id: code}; a code of None (or "") removes that hand code.

        Codes replace the coder's earlier code for the same text. Doc ids must be texts of
        this project; the coder name must be 1-60 characters with a letter or digit.
        """
        coder = check_coder_name(coder)
        column = annotation_column(coder)
        ids = self._corpus_ids()
        import pyarrow.parquet as pq

        if column in set(pq.read_schema(self.folder / "corpus.parquet").names):
            raise TextlabError(
                f"The coder name '{coder}' gives the column '{column}', which the imported file already has; "
                "choose another coder name."
            )
        cleaned: dict[str, str | None] = {}
        for doc_id, code in dict(codes).items():
            text = None if code is None or (isinstance(code, float) and code != code) else str(code).strip()
            cleaned[str(doc_id)] = text or None
        unknown = sorted(set(cleaned) - set(ids))
        if unknown:
            shown = ", ".join(unknown[:5]) + (", …" if len(unknown) > 5 else "")
            raise TextlabError(
                f"{len(unknown):,} of the hand-coded doc_id(s) are not texts of this project ({shown}). "
                "Hand codes must refer to the project's doc_id column."
            )
        if not cleaned:
            return
        with _FileLock(self.folder / ".annotations.lock"):
            table = self.annotations()
            clash = sorted({c for c in table["coder"].dropna().unique() if c != coder and annotation_column(c) == column})
            if clash:
                raise TextlabError(
                    f"The coder name '{coder}' is too close to the existing coder '{clash[0]}' (both give the "
                    f"column '{column}'). Use the same name as before, or a clearly different one."
                )
            stamp = now_iso()
            keep = ~((table["coder"] == coder) & table["doc_id"].isin(list(cleaned)))
            added = pd.DataFrame(
                [(d, coder, c, stamp) for d, c in cleaned.items() if c is not None], columns=list(ANNOTATION_COLUMNS)
            )
            parts = [part for part in (table[keep], added) if len(part)]
            out = pd.concat(parts, ignore_index=True) if parts else table.iloc[0:0]
            atomic_write_parquet(self._annotations_path(), out.astype(object).reset_index(drop=True))

    def human_codes(self) -> pd.DataFrame:
        """Hand codes as columns ``human_<coder>``, one row per corpus row (same index as
        ``corpus().data`` and ``results_frame()``, so the two join side by side).

        No coder yet: a frame with the rows and no columns.
        """
        ids = self._corpus_ids()
        out = pd.DataFrame(index=ids.index)
        table = self.annotations()
        for coder in sorted(table["coder"].dropna().unique(), key=lambda c: (str(c).casefold(), str(c))):
            part = table[table["coder"] == coder].drop_duplicates("doc_id", keep="last").set_index("doc_id")["code"]
            out[annotation_column(coder)] = part.reindex(ids.to_numpy()).to_numpy(dtype=object)
        return out

    # -- hand-coding samples: how the texts to hand-code were drawn -------------------------
    # Corrected estimates (``inference``) need to know how each hand-coded text was drawn.
    # Two files, written atomically under one exclusive lock (like the hand codes):
    #   samples.parquet  doc_id, sample_id, stratum: one row per drawn text per draw
    #   samples.json     {"version": 1, "samples": [record, ...]}: each draw's record
    #                    (``validation.SampleDraw.record`` less its docs) with design_id,
    #                    current and continues
    # The table is written first and the JSON last: a crash between the two leaves table rows
    # of a draw the JSON does not know, and readers ignore those.
    #
    # One design is current per project: a draw adds to it when it has the same design, the
    # same ``by`` column split into the same strata (``strata_hash``) and was drawn from the
    # first draw's pool less the texts already drawn (its ``excluded`` are exactly those);
    # any other draw starts a new current design, and the earlier records stay, marked not
    # current. Rule for the union of successive draws of one design: the stratum size N_s of
    # a text is the size of its stratum in the FIRST draw of the design. A later draw picks a
    # simple random sample of the stratum's texts not yet drawn, with a count that depends on
    # the counts only, so the union of the draws within a stratum is itself a simple random
    # sample of the first draw's stratum (of N_s texts). That needs a fresh seed for each
    # draw: the same random numbers on the shrunken pool would make the union non-uniform,
    # so a repeated seed is refused.

    def _samples_json(self) -> Path:
        return self.folder / "samples.json"

    def _samples_table_path(self) -> Path:
        return self.folder / "samples.parquet"

    def sample_records(self) -> list[dict]:
        """Every recorded draw, oldest first (history included): each with sample_id,
        design_id, current, continues, design, by, seed, n, drawn_at, pool_size, excluded,
        strata {name: {"size", "drawn"}} and strata_hash."""
        path = self._samples_json()
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text("utf-8"))
            records = data["samples"]
            assert isinstance(records, list)
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
            raise TextlabError(f"The record of the hand-coding samples of project '{self.name}' is damaged ({path}: "
                               f"{exc}). Restore it from a backup, or delete it to start a new sample.") from None
        return records

    def _sample_table(self, records: list[dict] | None = None) -> pd.DataFrame:
        """samples.parquet, rows of recorded draws only (see above), in the stored order."""
        path = self._samples_table_path()
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype=object) for c in SAMPLE_COLUMNS})
        table = pd.read_parquet(path).reindex(columns=list(SAMPLE_COLUMNS))
        known = {r["sample_id"] for r in (self.sample_records() if records is None else records)}
        return table[table["sample_id"].isin(known)].reset_index(drop=True)

    @staticmethod
    def _current(records: list[dict]) -> list[dict]:
        return [r for r in records if r.get("current")]

    def _continues(self, record: dict, current: list[dict], table: pd.DataFrame) -> bool:
        """Whether a draw adds to the current design (see the rule above)."""
        if not current:
            return False
        first = current[0]
        if (record.get("design"), record.get("by"), record.get("strata_hash")) != (
                first.get("design"), first.get("by"), first.get("strata_hash")):
            return False
        drawn = set(table.loc[table["sample_id"].isin([r["sample_id"] for r in current]), "doc_id"])
        if set(map(str, record.get("excluded") or [])) != set(map(str, first.get("excluded") or [])) | drawn:
            return False
        used = [r.get("seed") for r in current]
        if record.get("seed") in used:
            raise TextlabError(
                f"The seed {record.get('seed')} was already used for the current sample; a draw that adds to it "
                f"needs another seed (the same random numbers on the smaller pool would not give a random sample). "
                f"Seeds used: {', '.join(map(str, used))}.")
        return True

    def record_sample(self, draw) -> dict:
        """Keep a drawn sample (a ``validation.SampleDraw``, or its record) in the project.

        It adds to the current design or starts a new one (rule above). Returns the stored
        record (without its docs) with design_id, current=True and continues (True when it
        added to the design that was current). Recording the same draw twice changes nothing.
        """
        from .validation import DESIGNS

        record = dict(getattr(draw, "record", draw))
        if record.get("design") not in DESIGNS:
            raise TextlabError(f"Unknown sample design {record.get('design')!r}: choose one of {', '.join(DESIGNS)}.")
        docs = record.pop("docs", None) or []
        if not docs or not record.get("sample_id"):
            raise TextlabError("This is not a drawn sample: it has no sample_id or no drawn texts. "
                               "Draw one with analysis.validation.draw_sample.")
        ids = pd.DataFrame(docs).reindex(columns=["doc_id", "stratum"]).astype(object)
        ids["doc_id"] = ids["doc_id"].astype(str)
        unknown = sorted(set(ids["doc_id"]) - set(self._corpus_ids()))
        if unknown:
            shown = ", ".join(unknown[:5]) + (", …" if len(unknown) > 5 else "")
            raise TextlabError(f"{len(unknown):,} drawn doc_id(s) are not texts of this project ({shown}); "
                               "draw the sample from the project's table.")
        with _FileLock(self.folder / ".samples.lock"):
            records = self.sample_records()
            for old in records:
                if old["sample_id"] == record["sample_id"]:
                    return dict(old)
            table = self._sample_table(records)
            current = self._current(records)
            continues = self._continues(record, current, table)
            if not continues:
                for old in records:
                    old["current"] = False
            stored = {**record, "design_id": current[0]["design_id"] if continues else record["sample_id"],
                      "current": True, "continues": continues}
            records.append(stored)
            rows = ids.assign(sample_id=record["sample_id"])[list(SAMPLE_COLUMNS)]
            out = pd.concat([part for part in (table, rows) if len(part)], ignore_index=True)
            atomic_write_parquet(self._samples_table_path(), out.astype(object))
            atomic_write_bytes(self._samples_json(), json.dumps({"version": 1, "samples": records}, indent=1,
                                                                ensure_ascii=False, default=str).encode("utf-8"))
        return dict(stored)

    def sample_design(self) -> dict | None:
        """The current design, or None before the first draw: design_id, design, by, seeds,
        n (texts drawn in all its draws), population (texts the first draw was made from),
        excluded (doc_ids left out of that first pool), strata {name: {"size": N_s of the
        first draw, "drawn": n_s of all draws}}, samples [{sample_id, drawn_at, n, seed}],
        total_drawn (the same as n),
        started_at and strata_hash."""
        current = self._current(self.sample_records())
        if not current:
            return None
        first = current[0]
        total = sum(int(r["n"]) for r in current)
        strata = {name: {"size": int(v["size"]), "drawn": 0} for name, v in first["strata"].items()}
        for r in current:
            for name, v in r["strata"].items():
                strata.setdefault(name, {"size": int(v["size"]), "drawn": 0})["drawn"] += int(v["drawn"])
        return {
            "design_id": first["design_id"], "design": first["design"], "by": first.get("by"),
            "seeds": [r["seed"] for r in current], "n": total, "total_drawn": total,
            "population": int(first["pool_size"]), "excluded": list(first.get("excluded") or []),
            "strata": strata, "started_at": first["drawn_at"], "strata_hash": first.get("strata_hash"),
            "samples": [{"sample_id": r["sample_id"], "drawn_at": r["drawn_at"], "n": int(r["n"]), "seed": r["seed"]}
                        for r in current],
        }

    def current_sample_ids(self) -> list[str]:
        """The doc_ids of the current design, draw after draw, each in its random order:
        what the hand-coding form shows after a refresh. Empty before the first draw."""
        records = self.sample_records()
        order = [r["sample_id"] for r in self._current(records)]
        if not order:
            return []
        table = self._sample_table(records)
        table = table[table["sample_id"].isin(order)]
        rank = {s: i for i, s in enumerate(order)}
        table = table.assign(_rank=table["sample_id"].map(rank)).sort_values("_rank", kind="stable")
        return list(dict.fromkeys(table["doc_id"].astype(str)))

    def sample_membership(self) -> pd.DataFrame:
        """One row per corpus row (same index as ``human_codes()`` and ``results_frame()``):
        ``sample_stratum`` (the text's stratum in the current design; None when not drawn in
        it) and ``stratum_size`` (that stratum's N_s from the design's first draw; NaN when
        not drawn). Inference weighs a hand-coded text N_s / (hand-coded texts of stratum s)."""
        ids = self._corpus_ids()
        out = pd.DataFrame({"sample_stratum": pd.Series([None] * len(ids), index=ids.index, dtype=object),
                            "stratum_size": pd.Series(float("nan"), index=ids.index, dtype=float)})
        design = self.sample_design()
        if design is None:
            return out
        table = self._sample_table()
        table = table[table["sample_id"].isin([s["sample_id"] for s in design["samples"]])]
        stratum = table.drop_duplicates("doc_id").set_index("doc_id")["stratum"]
        found = stratum.reindex(ids.to_numpy())
        strata = [None if pd.isna(v) else str(v) for v in found.to_numpy(dtype=object)]
        sizes = {name: float(v["size"]) for name, v in design["strata"].items()}
        # object, not pandas' string dtype: None stays None for texts not drawn
        return pd.DataFrame({
            "sample_stratum": pd.Series(strata, index=ids.index, dtype=object),
            "stratum_size": pd.Series([sizes.get(v, float("nan")) if v is not None else float("nan") for v in strata],
                                      index=ids.index, dtype=float),
        })

    def new_sample(self, frame: pd.DataFrame, n: int, *, design: str, by: str | None = None, seed: int = 0):
        """Draw and record a sample (``validation.draw_sample`` + ``record_sample``).

        When ``design`` and ``by`` are the current design's and ``frame`` splits into the same
        strata, the draw adds to it: its texts are left out, and a seed already used in it is
        replaced by the next unused one (max + 1). Otherwise it starts a new design drawn from
        every text of ``frame``. Returns the ``SampleDraw`` with its record as stored (plus docs).
        """
        from .validation import draw_sample, strata_hash

        current = self.sample_design()
        exclude = None
        by = None if design == "simple_random" else by
        if current and (current["design"], current["by"]) == (design, by) \
                and current["strata_hash"] == strata_hash(frame, by):
            exclude = set(current["excluded"]) | set(self.current_sample_ids())
            if len(exclude) >= len(frame):
                raise TextlabError(f"Every text is already in the current sample ({current['n']:,} drawn); "
                                   "there is nothing left to add.")
            if seed in current["seeds"]:
                seed = max(int(s) for s in current["seeds"]) + 1
        draw = draw_sample(frame, n, design=design, by=by, seed=seed, exclude=exclude)
        docs = draw.record["docs"]
        draw.record = {**self.record_sample(draw), "docs": docs}
        return draw

    def with_human_codes(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (one row per corpus row, in corpus order) with the ``human_<coder>`` columns beside it."""
        humans = self.human_codes()
        if not len(humans.columns):
            return frame
        return pd.concat([frame, humans.set_index(frame.index)], axis=1)


ANNOTATION_COLUMNS = ("doc_id", "coder", "code", "coded_at")
SAMPLE_COLUMNS = ("doc_id", "sample_id", "stratum")
MAX_CODER_NAME = 60


def check_coder_name(coder: str) -> str:
    """A coder name as stored: stripped, 1-60 characters, with at least one letter or digit."""
    name = str(coder or "").strip()
    if not name:
        raise TextlabError("Enter a coder name (your name or initials) before saving hand codes.")
    if len(name) > MAX_CODER_NAME:
        raise TextlabError(f"The coder name is {len(name)} characters long; use at most {MAX_CODER_NAME}.")
    if not any(ch.isalnum() for ch in name) or any(not ch.isprintable() for ch in name):
        raise TextlabError(f"The coder name {name!r} needs a letter or digit and no control characters.")
    return name


def annotation_column(coder: str) -> str:
    """Column of a coder's hand codes: ``human_`` + the lower-case slug of the name."""
    import re

    slug = re.sub(r"[^0-9a-z]+", "_", str(coder).strip().lower()).strip("_")
    if not slug:  # a name in a script without ASCII letters: keep it readable and unique
        slug = "coder_" + hashlib.sha256(str(coder).encode("utf-8")).hexdigest()[:8]
    return f"human_{slug}"


class _FileLock:
    """An exclusive lock across threads and processes: a SQLite EXCLUSIVE transaction on a
    small lock file (portable, unlike fcntl, and waits instead of failing)."""

    def __init__(self, path: Path, timeout: float = 60):
        self.path, self.timeout = path, timeout
        self.con: sqlite3.Connection | None = None

    def __enter__(self) -> "_FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            self.con.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            self.con.close()
            raise TextlabError(f"Could not lock {self.path} to save ({exc}); try again.") from exc
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.con.execute("ROLLBACK")
        finally:
            self.con.close()
