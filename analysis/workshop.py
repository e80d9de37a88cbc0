"""Workshop mode: many participants on one server, each with a private workspace.

A facilitator starts one server (``textlab app --workshop``); participants join with the
join code and a name and get a workspace of their own under the server's workspace root::

    <root>/workshop/config.json        codes (salted hashes), limits
    <root>/workshop/secret.key         the key that signs participants' tokens (0600)
    <root>/workshop/workshop.sqlite    participants, broadcasts
    <root>/workshop/broadcasts/<id>/   datasets and codebooks sent to every participant
    <root>/participants/<id>/          a participant's own workspace (projects, runs, models)

Isolation is by construction: a participant's session only ever opens the Workspace of its own
folder, and every project id is looked up in that workspace's database, so another
participant's project id (from a URL, a widget key or a guess) is simply not there. A
participant is known by a token ``<id>.<signature>`` (HMAC-SHA256 of the id under the secret
key) that the browser keeps in a cookie: it cannot be forged without the key, and a reset
of the workshop makes a new key, so old tokens stop working.

``FairQueue`` is the scheduling policy of the one job worker a server has (``analysis.jobs``):
round robin between participants, first come first served within one, so a participant's
40,000-text run does not keep everybody else's small ones waiting.

Nothing here imports Streamlit or the job layer above it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Hashable

from .errors import TextlabError
from .fileio import atomic_write_bytes

WORKSHOP_DIR = "workshop"
PARTICIPANTS_DIR = "participants"
COOKIE_NAME = "textlab_participant"
_NAME = re.compile(r"^[\w][\w .'\-]{0,39}$", re.UNICODE)
_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Limits:
    """What one participant may use, so that one cannot take the server down for everyone."""

    upload_mb: float = 50.0          # one uploaded file
    rows_per_project: int = 20_000   # texts in one project
    quota_mb: float = 500.0          # a participant's workspace on disk
    queued_jobs: int = 3             # runs waiting or running at once
    max_participants: int = 100

    @classmethod
    def from_dict(cls, data: dict | None) -> "Limits":
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        limits = cls(**known)
        for name, value in asdict(limits).items():
            if not isinstance(value, (int, float)) or value <= 0:
                raise TextlabError(f"The workshop limit {name} must be a positive number, not {value!r}.")
        return limits


@dataclass(frozen=True)
class Participant:
    id: str
    name: str
    joined: str


@dataclass
class Broadcast:
    id: str
    kind: str         # "dataset" or "codebook"
    name: str
    file: str         # the file's name inside the broadcast folder
    sent: str
    options: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def _hash_code(code: str, salt: bytes) -> str:
    # Codes are short and typed in a room; a slow salted hash keeps a copied config file from
    # giving them away at once.
    return hashlib.pbkdf2_hmac("sha256", code.encode("utf-8"), salt, 200_000).hex()


def workshop_folder(root: str | os.PathLike) -> Path:
    return Path(root).expanduser().resolve() / WORKSHOP_DIR


def is_configured(root: str | os.PathLike) -> bool:
    return (workshop_folder(root) / "config.json").is_file()


class Workshop:
    """The participants, codes, limits and broadcasts of one server's workspace root."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.folder = self.root / WORKSHOP_DIR
        path = self.folder / "config.json"
        try:
            self._config = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise TextlabError(f"No workshop is set up in {self.root}: start the server with "
                               "`textlab app --workshop`.") from None
        except (OSError, ValueError) as exc:
            raise TextlabError(f"The workshop settings ({path}) cannot be read: {exc}.") from None
        self.limits = Limits.from_dict(self._config.get("limits"))
        self._lock = threading.Lock()

    # -- setting up --------------------------------------------------------------------------

    @classmethod
    def configure(cls, root: str | os.PathLike, *, join_code: str | None = None,
                  facilitator_code: str | None = None, limits: Limits | dict | None = None) -> tuple["Workshop", dict]:
        """Set up (or update) the workshop of ``root``. A code not given keeps the one set before,
        or is made up (returned in plain text, once, for the facilitator to hand out).

        Returns the workshop and {"join_code": ..., "facilitator_code": ...} of the codes made
        up or given now (the stored ones are hashes and cannot be shown again)."""
        folder = workshop_folder(root)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        old = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        shown: dict[str, str] = {}
        config = dict(old)
        for key, given in (("join_code", join_code), ("facilitator_code", facilitator_code)):
            if given is not None:
                given = str(given).strip()
                if len(given) < 4:
                    raise TextlabError(f"The {key.replace('_', ' ')} must have at least 4 characters.")
            if given is None and f"{key}_hash" in old:
                continue
            code = given or (secrets.token_hex(3) if key == "join_code" else secrets.token_urlsafe(9))
            salt = secrets.token_bytes(16)
            config[f"{key}_salt"], config[f"{key}_hash"] = salt.hex(), _hash_code(code, salt)
            shown[key] = code
        for key, other in (("join_code", "facilitator_code"), ("facilitator_code", "join_code")):
            # Salts differ, so compare a code given now with the other one's stored hash.
            if key in shown and config.get(f"{other}_salt") and hmac.compare_digest(
                    _hash_code(shown[key], bytes.fromhex(config[f"{other}_salt"])), config[f"{other}_hash"]):
                raise TextlabError("The join code and the facilitator code must differ: participants would "
                                   "open the facilitator page.")
        if limits is not None:
            config["limits"] = asdict(limits if isinstance(limits, Limits) else Limits.from_dict(limits))
        config.setdefault("limits", asdict(Limits()))
        config.setdefault("created", _now())
        atomic_write_bytes(path, json.dumps(config, indent=1).encode("utf-8"))
        os.chmod(path, 0o600)
        workshop = cls(root)
        workshop._secret()  # made now, not by the first two participants at once
        with closing(workshop._connect()):
            pass
        return workshop, shown

    def _secret(self) -> bytes:
        path = self.folder / "secret.key"
        if not path.exists():
            with self._lock:
                if not path.exists():
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(secrets.token_bytes(32))
        return path.read_bytes()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.folder / "workshop.sqlite", timeout=30, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE IF NOT EXISTS participants (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                    "name_key TEXT NOT NULL UNIQUE, joined TEXT NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS broadcasts (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                    "name TEXT NOT NULL, file TEXT NOT NULL, sent TEXT NOT NULL, options TEXT NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS deliveries (participant TEXT NOT NULL, broadcast TEXT NOT NULL, "
                    "project TEXT NOT NULL, PRIMARY KEY (participant, broadcast))")
        return con

    def _check_code(self, code: str, key: str) -> bool:
        salt, expected = self._config.get(f"{key}_salt"), self._config.get(f"{key}_hash")
        if not salt or not expected:
            return False
        return hmac.compare_digest(_hash_code(str(code or "").strip(), bytes.fromhex(salt)), expected)

    def is_facilitator(self, code: str) -> bool:
        return self._check_code(code, "facilitator_code")

    # -- participants --------------------------------------------------------------------------

    def token(self, participant_id: str) -> str:
        signature = hmac.new(self._secret(), participant_id.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{participant_id}.{signature}"

    def join(self, code: str, name: str) -> tuple[Participant, str]:
        """A new participant with a private workspace, and the token that brings them back."""
        if not self._check_code(code, "join_code"):
            raise TextlabError("That join code is not this workshop's. Ask the facilitator for it.")
        name = " ".join(str(name or "").split())
        if not _NAME.match(name):
            raise TextlabError("Choose a name of 1 to 40 letters, digits, spaces, dots, hyphens or apostrophes.")
        participant = Participant(secrets.token_hex(8), name, _now())
        with closing(self._connect()) as con:
            (count,) = con.execute("SELECT COUNT(*) FROM participants").fetchone()
            if count >= self.limits.max_participants:
                raise TextlabError(f"The workshop is full ({count} participants). Ask the facilitator.")
            try:
                con.execute("INSERT INTO participants VALUES (?, ?, ?, ?)",
                            (participant.id, participant.name, name.casefold(), participant.joined))
            except sqlite3.IntegrityError:
                raise TextlabError(f"Someone has already joined as {name!r}. Choose another name; to come back "
                                   "from another browser, use your return key.") from None
        self.workspace_root(participant.id).mkdir(parents=True, exist_ok=True)
        return participant, self.token(participant.id)

    def login_id(self, issuer: str, subject: str) -> str:
        """The participant id of an institution login (OIDC issuer and subject): the same person
        always gets the same workspace, and nothing of the login is stored in clear."""
        if not str(subject or "").strip():
            raise TextlabError("The login gave no user id (subject); ask the facilitator.")
        digest = hmac.new(self._secret(), f"{issuer}|{subject}".encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:16]

    def participant_for_login(self, issuer: str, subject: str) -> Participant | None:
        """The participant of an institution login who joined before, or None."""
        pid = self.login_id(issuer, subject)
        with closing(self._connect()) as con:
            row = con.execute("SELECT id, name, joined FROM participants WHERE id=?", (pid,)).fetchone()
        return Participant(*row) if row else None

    def join_with_login(self, code: str, issuer: str, subject: str, name: str) -> Participant:
        """Join once with the join code after signing in with the institution's login (``st.login``);
        later sign-ins come back to the same workspace without a code. A name someone has already
        gets a number."""
        if not self._check_code(code, "join_code"):
            raise TextlabError("That join code is not this workshop's. Ask the facilitator for it.")
        found = self.participant_for_login(issuer, subject)
        if found is not None:
            return found
        pid = self.login_id(issuer, subject)
        base = " ".join(re.sub(r"[^\w .'\-]", "", str(name or ""), flags=re.UNICODE).split())[:36] or "Participant"
        with closing(self._connect()) as con:
            (count,) = con.execute("SELECT COUNT(*) FROM participants").fetchone()
            if count >= self.limits.max_participants:
                raise TextlabError(f"The workshop is full ({count} participants). Ask the facilitator.")
            for n in range(1, 1000):
                shown = base if n == 1 else f"{base} {n}"
                try:
                    con.execute("INSERT INTO participants VALUES (?, ?, ?, ?)", (pid, shown, shown.casefold(), _now()))
                    break
                except sqlite3.IntegrityError as exc:
                    if "participants.id" in str(exc):  # joined in another tab a moment ago
                        break
        self.workspace_root(pid).mkdir(parents=True, exist_ok=True)
        return self.participant_for_login(issuer, subject)

    def participant(self, token: str | None) -> Participant | None:
        """The participant a token stands for; None for a missing, forged or outdated token."""
        pid, _, signature = str(token or "").strip().partition(".")
        if not _ID.match(pid) or not hmac.compare_digest(self.token(pid), f"{pid}.{signature}"):
            return None
        with closing(self._connect()) as con:
            row = con.execute("SELECT id, name, joined FROM participants WHERE id=?", (pid,)).fetchone()
        return Participant(*row) if row else None

    def participants(self) -> list[Participant]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT id, name, joined FROM participants ORDER BY joined, name").fetchall()
        return [Participant(*r) for r in rows]

    def workspace_root(self, participant_id: str) -> Path:
        if not _ID.match(str(participant_id)):  # never a path built from anything else
            raise TextlabError(f"Not a participant id: {participant_id!r}.")
        return self.root / PARTICIPANTS_DIR / participant_id

    def reset(self) -> int:
        """Remove every participant, their workspaces and the broadcasts, and sign with a new key
        (every browser's token stops working). The codes and limits stay. Returns how many left."""
        people = self.participants()
        with closing(self._connect()) as con:
            con.execute("DELETE FROM participants")
            con.execute("DELETE FROM broadcasts")
            con.execute("DELETE FROM deliveries")
        shutil.rmtree(self.root / PARTICIPANTS_DIR, ignore_errors=True)
        shutil.rmtree(self.folder / "broadcasts", ignore_errors=True)
        (self.folder / "secret.key").unlink(missing_ok=True)
        self._secret()
        return len(people)

    # -- limits --------------------------------------------------------------------------------

    def usage_bytes(self, participant_id: str) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.workspace_root(participant_id)):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    def check_upload(self, n_bytes: int) -> None:
        if n_bytes > self.limits.upload_mb * 1e6:
            raise TextlabError(f"The file is {n_bytes / 1e6:,.1f} MB; in this workshop a file may have at most "
                               f"{self.limits.upload_mb:,.0f} MB. Use a smaller sample of it, or ask the facilitator.")

    def check_rows(self, rows: int) -> None:
        if rows > self.limits.rows_per_project:
            raise TextlabError(f"The file has {rows:,} texts; in this workshop a project may have at most "
                               f"{self.limits.rows_per_project:,}. Use a sample of it, or ask the facilitator.")

    def check_quota(self, participant_id: str, adding: int = 0) -> None:
        used = self.usage_bytes(participant_id)
        if used + adding > self.limits.quota_mb * 1e6:
            raise TextlabError(f"Your workspace holds {used / 1e6:,.0f} MB of at most {self.limits.quota_mb:,.0f} MB "
                               "in this workshop. Delete a project you no longer need (Data page) to make room.")

    # -- broadcasts ----------------------------------------------------------------------------

    def broadcast(self, kind: str, name: str, data: bytes, filename: str, options: dict | None = None) -> Broadcast:
        """Keep a dataset or a codebook for every participant, present and future."""
        if kind not in ("dataset", "codebook"):
            raise TextlabError(f"Unknown broadcast {kind!r}: a dataset or a codebook.")
        safe = re.sub(r"[^\w.\-]+", "_", Path(str(filename)).name)[-80:] or "file"
        item = Broadcast(secrets.token_hex(6), kind, str(name)[:80] or safe, safe, _now(), dict(options or {}))
        folder = self.folder / "broadcasts" / item.id
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / safe, data)
        with closing(self._connect()) as con:
            con.execute("INSERT INTO broadcasts VALUES (?, ?, ?, ?, ?, ?)",
                        (item.id, item.kind, item.name, item.file, item.sent, json.dumps(item.options)))
        return item

    def broadcasts(self, kind: str | None = None) -> list[Broadcast]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT id, kind, name, file, sent, options FROM broadcasts ORDER BY sent").fetchall()
        items = [Broadcast(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
        return [b for b in items if kind is None or b.kind == kind]

    def broadcast_path(self, item: Broadcast) -> Path:
        return self.folder / "broadcasts" / item.id / item.file

    def deliver(self, participant_id: str) -> list[str]:
        """Give a participant every broadcast dataset they do not have yet, as a project of their
        own workspace (a late joiner gets them on joining). Returns the new project ids."""
        from .corpus import load_corpus
        from .workspace import Workspace

        made = []
        for item in self.broadcasts("dataset"):
            with closing(self._connect()) as con:
                if con.execute("SELECT 1 FROM deliveries WHERE participant=? AND broadcast=?",
                               (participant_id, item.id)).fetchone():
                    continue
            corpus, report = load_corpus(self.broadcast_path(item), **item.options)
            project = Workspace(self.workspace_root(participant_id)).create_project(
                f"{item.name} (from the facilitator)", corpus, import_report=report.__dict__)
            with closing(self._connect()) as con:
                con.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?)", (participant_id, item.id, project.id))
            made.append(project.id)
        return made

    def overview(self) -> Any:
        """One row per participant for the facilitator: name, joined, projects, disk use and runs
        by status."""
        import pandas as pd

        from .workspace import Workspace

        rows = []
        for person in self.participants():
            folder = self.workspace_root(person.id)
            projects, counts = 0, {}
            if folder.exists():
                ws = Workspace(folder)
                projects = len(ws.list_projects())
                for run in ws.runs_with_status("queued", "running", "interrupted", "done", "failed", "cancelled"):
                    counts[run.status] = counts.get(run.status, 0) + 1
            rows.append({"participant": person.name, "joined": person.joined.replace("T", " "), "projects": projects,
                         "disk_mb": round(self.usage_bytes(person.id) / 1e6, 1),
                         "waiting": counts.get("queued", 0) + counts.get("interrupted", 0),
                         "running": counts.get("running", 0), "done": counts.get("done", 0),
                         "failed": counts.get("failed", 0), "id": person.id})
        return pd.DataFrame(rows, columns=["participant", "joined", "projects", "disk_mb", "waiting", "running",
                                           "done", "failed", "id"])

    def active_runs(self) -> list[tuple[Participant, Any]]:
        """Every participant's queued, running or interrupted runs, oldest first."""
        from .workspace import Workspace

        found = []
        for person in self.participants():
            folder = self.workspace_root(person.id)
            if folder.exists():
                found += [(person, run) for run in
                          Workspace(folder).runs_with_status("queued", "running", "interrupted")]
        return sorted(found, key=lambda pair: pair[1].created or "")

    def delivered(self, broadcast_id: str) -> dict[str, str]:
        """{participant id: project id} of a broadcast dataset."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT participant, project FROM deliveries WHERE broadcast=?", (broadcast_id,))
            return dict(rows.fetchall())

    def codes_of(self, broadcast_id: str) -> dict[str, dict[str, str]]:
        """Each participant's hand codes of a broadcast dataset's texts: {name: {doc_id: code}}
        (a participant who coded as several coders counts with the first coder's codes)."""
        from .workspace import Workspace

        names = {p.id: p.name for p in self.participants()}
        out: dict[str, dict[str, str]] = {}
        for pid, project_id in self.delivered(broadcast_id).items():
            try:
                project = Workspace(self.workspace_root(pid)).project(project_id)
            except TextlabError:  # the participant deleted it
                continue
            table = project.annotations()
            if table.empty:
                continue
            first = table["coder"].dropna().iloc[0]
            mine = table[table["coder"] == first].drop_duplicates("doc_id", keep="last")
            out[names.get(pid, pid)] = {str(d): str(c) for d, c in zip(mine["doc_id"], mine["code"]) if c is not None}
        return out


class FairQueue:
    """Round robin between owners (participants), first in first out within an owner.

    ``get`` serves the owners in turn, starting after the one served last, so an owner with
    many queued runs gets one turn per round like everybody else. Thread-safe.
    """

    def __init__(self) -> None:
        self._queues: "OrderedDict[Hashable, deque]" = OrderedDict()
        self._last: Hashable | None = None
        self._cv = threading.Condition()

    def put(self, owner: Hashable, item: Any) -> None:
        with self._cv:
            self._queues.setdefault(owner, deque()).append(item)
            self._cv.notify()

    def _order(self) -> list[Hashable]:
        """Owners with queued items, in the order their next turn comes."""
        owners = [o for o, q in self._queues.items() if q]
        if self._last in owners:
            i = owners.index(self._last) + 1
            owners = owners[i:] + owners[:i]
        elif self._last is not None:
            # The last served owner has nothing queued: continue after its place in the ring.
            ring = list(self._queues)
            if self._last in ring:
                after = ring[ring.index(self._last) + 1:] + ring[:ring.index(self._last)]
                owners = [o for o in after if self._queues[o]]
        return owners

    def get(self, timeout: float | None = None) -> tuple[Hashable, Any] | None:
        with self._cv:
            if not self._cv.wait_for(lambda: any(self._queues.values()), timeout):
                return None
            owner = self._order()[0]
            self._last = owner
            return owner, self._queues[owner].popleft()

    def pending(self, owner: Hashable | None = None) -> int:
        with self._cv:
            if owner is None:
                return sum(len(q) for q in self._queues.values())
            return len(self._queues.get(owner, ()))

    def owners_waiting(self, besides: Hashable | None = None) -> bool:
        with self._cv:
            return any(q for o, q in self._queues.items() if o != besides)

    def ahead(self, owner: Hashable, item: Any) -> list[tuple[Hashable, Any]]:
        """The queued items ``get`` will hand out before ``item`` of ``owner`` (empty if not queued)."""
        with self._cv:
            queue = self._queues.get(owner)
            if not queue or item not in queue:
                return []
            depth = list(queue).index(item)  # the owner's own items before it
            order = self._order()
            out: list[tuple[Hashable, Any]] = []
            for round_ in range(depth + 1):
                for other in order:
                    if other == owner:
                        if round_ == depth:
                            return out
                        out.append((owner, queue[round_]))
                    elif round_ < len(self._queues[other]):
                        out.append((other, self._queues[other][round_]))
            return out

    def remove(self, owner: Hashable, item: Any) -> bool:
        with self._cv:
            queue = self._queues.get(owner)
            if queue and item in queue:
                queue.remove(item)
                return True
            return False

    def items(self) -> list[tuple[Hashable, Any]]:
        with self._cv:
            return [(o, i) for o, q in self._queues.items() for i in q]


def server_resources() -> dict[str, Any]:
    """What the facilitator watches: the GPU's memory (None without one), the server's peak memory and
    the models loaded once for everyone (``models.POOL``)."""
    import resource

    from .models import POOL
    from .runner import accelerator_memory

    return {"gpu": accelerator_memory(), "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "models": POOL.summary()}


def code_agreement_table(codes: dict[str, dict[str, str]]) -> tuple[Any, list[str]]:
    """Participants' codes of the same texts ({participant: {doc_id: code}}) as one table, one
    column per participant, one row per text coded by at least two."""
    import pandas as pd

    frame = pd.DataFrame({name: pd.Series(c, dtype=object) for name, c in codes.items() if c})
    if frame.empty or frame.shape[1] < 2:
        return frame.iloc[0:0], ["At least two participants must hand-code the shared texts to compare them."]
    shared = frame.notna().sum(axis=1) >= 2
    notes = []
    if not shared.all():
        notes.append(f"{int((~shared).sum())} text(s) coded by one participant only are left out.")
    return frame[shared], notes


def agreement_between_participants(table: Any) -> tuple[Any, float | None]:
    """The classroom's inter-coder reliability exercise: for each pair of participants the texts
    both coded, their raw agreement and Cohen's kappa (scikit-learn), and Krippendorff's alpha
    over everyone (the ``krippendorff`` package; nominal, missing codes allowed)."""
    import itertools

    import krippendorff
    import numpy as np
    import pandas as pd
    from sklearn.metrics import cohen_kappa_score

    rows = []
    for a, b in itertools.combinations(table.columns, 2):
        both = table[[a, b]].dropna()
        agree = float((both[a] == both[b]).mean()) if len(both) else float("nan")
        kappa = float("nan")
        if len(both) >= 2 and len(set(both[a]) | set(both[b])) > 1:
            kappa = float(cohen_kappa_score(both[a], both[b]))
        rows.append({"coder_a": a, "coder_b": b, "texts": len(both), "agreement": agree, "cohen_kappa": kappa})
    pairs = pd.DataFrame(rows, columns=["coder_a", "coder_b", "texts", "agreement", "cohen_kappa"])
    alpha = None
    values = sorted({v for v in table.stack().tolist()})
    if len(table) and len(values) > 1:
        index = {v: i for i, v in enumerate(values)}
        data = np.array([[index[v] if isinstance(v, str) else np.nan for v in table[c]] for c in table.columns],
                        dtype=float)
        alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return pairs, alpha

