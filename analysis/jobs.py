"""Background runs of analyses: the queue, claiming, heartbeats and cancel.

``execute_run`` does one run of a project: it claims the run, runs the task layer's chunk
loop (``analysis.tasks.execute``) with the project's checkpoints as the store, keeps the
run table's progress, stage and heartbeat current, and writes the result and manifest. A
run cut off by a crash, a kill or a restart is picked up again by ``execute_run`` on the
same run id: finished chunks are read back, not recomputed, so no finished batch is lost.

``JobManager`` is the one worker per server process: a thread that takes runs off a queue
one at a time, so two analyses never fight over the GPU or the two cores of a laptop. On
start it resumes the runs that a dead process left behind. The Streamlit pages and the CLI
both go through here; nothing here knows about either.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable


from .errors import JobCancelled, JobPaused, TextlabError
from .provenance import build_manifest, row_counts
from .tasks import get_task
from .tasks.base import BaseConfig, RunContext
from .engines import LOCAL, Engine
from .tasks.execute import CheckpointStore, ProgressFn, non_empty
from .workspace import Project, Run, Workspace, corpus_hash, default_root, now_iso

log = logging.getLogger(__name__)

# A running run whose heartbeat is older than this, on another machine, is taken as dead
# (runs of Textlab versions without worker heartbeats).
STALE_AFTER = timedelta(minutes=15)
# Every process that runs jobs beats in the workspace this often (seconds); one that has not
# beaten for WORKER_STALE is dead (kill -9, power cut, a container restarted), and its runs
# are taken over by a living worker.
WORKER_BEAT_S = 5.0
WORKER_STALE = timedelta(seconds=45)
# How often a worker looks for runs that a dead process left behind (seconds).
WATCH_INTERVAL_S = 15.0
# Progress writes to SQLite at most this often (seconds): polling pages need no more.
PROGRESS_INTERVAL = 0.5
# A run that has had the worker this long steps aside (between chunks, resuming from its
# checkpoints) when another participant's run is waiting: a 40,000-text run does not keep a
# room of small ones waiting (seconds; only where a scheduler serves several workspaces).
TIME_SLICE_S = 20.0
# Texts per second assumed for a task not yet seen running (only to compare runs' sizes).
DEFAULT_RATE = 50.0

def run_context(project: Project, corpus, run_id: str | None = None) -> RunContext:
    """The corpus table with the project's hand codes (``human_<coder>`` columns) beside it."""
    frame = project.with_human_codes(corpus.data.reset_index(drop=True))
    return RunContext(texts=corpus.texts, frame=frame, project=project, doc_ids=corpus.doc_ids,
                      run_folder=project.run_folder(run_id) if run_id else None)


def _report_stage(workspace: Workspace, run_id: str, message: str) -> None:
    workspace.update_run(run_id, stage=message, heartbeat=now_iso())
    if workspace.run(run_id).cancel_requested:
        raise JobCancelled(f"Run {run_id} was cancelled.")


def execute_run(
    workspace: Workspace,
    run_id: str,
    *,
    owner: str,
    on_progress: ProgressFn | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_loaded: Callable[[dict[str, Any]], None] | None = None,
    should_pause: Callable[[], bool] | None = None,
    engine: Engine | None = None,
) -> Run:
    """Run (or resume) one run to the end. Returns the finished run record.

    Raises JobCancelled when the run's cancel flag is set, and any TextlabError of the task;
    the run's status is set accordingly either way. ``should_pause()`` is asked between chunks:
    when it says so the run is queued again (JobPaused) and resumes from its checkpoints.
    ``engine``: where the chunks run (default: the local engine, this process); it is not a
    setting of the run, so a run resumes or is reused on any engine.
    """
    run = workspace.run(run_id)
    project = workspace.project_of(run)
    already_ours = run.status == "running" and run.owner == owner
    if not already_ours and not workspace.claim_run(run_id, owner, ("queued", "interrupted", "failed", "cancelled")):
        raise TextlabError(f"Run {run_id} is {run.status} in another process; it cannot be started here.")
    if run.status in ("cancelled", "failed"):  # an explicit restart clears the old stop request
        workspace.update_run(run_id, cancel_requested=0)
    started_clock = time.monotonic()
    try:
        result_run = _execute(workspace, project, workspace.run(run_id), on_progress, started_clock, on_stage,
                              on_loaded, should_pause, engine or LOCAL)
    except JobPaused:
        workspace.update_run(run_id, status="queued", heartbeat=now_iso(),
                             stage="Paused so that other participants' analyses get a turn; it resumes by itself")
        raise
    except JobCancelled:
        workspace.update_run(run_id, status="cancelled", finished=now_iso(), error="Cancelled by the user.",
                             stage=None)
        raise
    except TextlabError as exc:
        _record_failure(workspace, run_id, str(exc))
        raise
    except OSError as exc:  # disk full, folder gone, permissions: the user can fix these
        message = _os_error_message(exc, project.run_folder(run_id), run.task)
        _record_failure(workspace, run_id, message)
        raise TextlabError(message) from exc
    except Exception as exc:  # an unexpected failure: keep the traceback on disk for a bug report
        detail = traceback.format_exc()
        folder = project.run_folder(run_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "error.log").write_text(detail, encoding="utf-8")
            where = f" Details: {folder / 'error.log'}"
        except OSError:
            log.error("Run %s failed:\n%s", run_id, detail)
            where = " Details are in the server log (the run folder could not be written)."
        message = f"Unexpected error in the {run.task} analysis: {type(exc).__name__}: {exc}.{where}"
        _record_failure(workspace, run_id, message)
        raise TextlabError(message) from exc
    return result_run


def _os_error_message(exc: OSError, folder, task: str) -> str:
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk is full: the {task} analysis could not save its results in {folder}. Free some space "
                "and press Resume (or run the command again): finished chunks are kept.")
    what = exc.strerror or str(exc)
    return (f"The {task} analysis could not read or write {exc.filename or folder}: {what}. Check that the "
            "workspace folder exists and is writable, then resume: finished chunks are kept.")


def _record_failure(workspace: Workspace, run_id: str, message: str) -> None:
    """Mark the run failed; if even that cannot be written, the log has it and the run is
    found dead (and resumed) by the next worker, never left 'running' by a living one."""
    try:
        workspace.update_run(run_id, status="failed", finished=now_iso(), error=message, stage=None)
    except Exception:
        log.exception("Could not record that run %s failed: %s", run_id, message)


def _execute(workspace: Workspace, project: Project, run: Run, on_progress: ProgressFn | None, started_clock: float,
             on_stage: Callable[[str], None] | None = None,
             on_loaded: Callable[[dict[str, Any]], None] | None = None,
             should_pause: Callable[[], bool] | None = None, engine: Engine = LOCAL) -> Run:
    task = get_task(run.task)
    config = task.Config.from_dict(run.config)
    corpus = project.corpus()
    texts, ids = corpus.texts, corpus.doc_ids
    context = run_context(project, corpus, run.id)
    last_write = 0.0

    def cancelled() -> bool:
        if workspace.run(run.id).cancel_requested:
            return True
        if should_pause is not None and should_pause():
            raise JobPaused(f"Run {run.id} steps aside for other participants' runs.")
        return False

    def progress(done: int, total: int, rate: float) -> None:
        nonlocal last_write
        if on_progress:
            on_progress(done, total, rate)
        # SQLite gets progress at most every PROGRESS_INTERVAL: polling pages need no more.
        if time.monotonic() - last_write >= PROGRESS_INTERVAL or done == total:
            last_write = time.monotonic()
            workspace.update_run(run.id, n_total=total, n_done=done, docs_per_s=rate, heartbeat=now_iso(), error=None)
            if cancelled():
                raise JobCancelled(f"Run {run.id} was cancelled.")

    def stage(message: str) -> None:
        _report_stage(workspace, run.id, message)
        if on_stage is not None:
            on_stage(message)

    def loaded(description: dict[str, Any]) -> None:
        per_text = (description.get("planned") or {}).get("prompt_tokens_per_text")
        workspace.update_run(run.id, backend=description.get("backend"), model=description.get("model"), stage=None,
                             tokens_per_text=per_text)
        if on_loaded is not None:
            on_loaded(description)

    try:
        done = engine.execute(task, texts, CheckpointStore(project, run.id), config=config, context=context,
                              doc_ids=ids, progress=progress, stage=stage, cancelled=cancelled, on_loaded=loaded)
    except JobPaused:
        raise
    except JobCancelled as exc:
        raise JobCancelled(f"Run {run.id} was cancelled.") from exc
    result = done.result

    finished = now_iso()
    manifest = build_manifest(
        run_id=run.id, task=run.task, project={"id": project.id, "name": project.name}, description=done.description,
        parameters=config.to_dict(), seed=config.seed,
        input_={"source": corpus.source, "hash_sha256": corpus_hash(corpus), "text_column": corpus.text_column,
                "id_column": corpus.id_column},
        started=run.started, finished=finished, duration_s=time.monotonic() - started_clock,
        resumed_from=done.resumed_from, rows={**row_counts(texts, result), **done.row_flags},
        row_examples=done.row_examples, columns=[c for c in result.columns if c != "doc_id"],
    )
    manifest["row_flags"] = dict(task.row_flags)  # what each count in rows above means
    manifest["engine"] = engine.manifest(done)  # local, or ray with its workers and blocks computed
    # Every value each label column can take, in a fixed order: exports number labels by it.
    manifest["label_sets"] = task.label_sets(manifest)
    # The columns holding the code a text got (declared by the task), for the export's value labels.
    manifest["label_columns"] = [c for c in task.label_columns if c in manifest["columns"]]
    manifest["multi_label_columns"] = [c for c in task.multi_label_columns if c in manifest["columns"]]
    project.write_result(run.id, result, manifest)
    workspace.update_run(run.id, status="done", finished=finished, n_done=done.n_items, heartbeat=finished, stage=None)
    return workspace.run(run.id)


# Owners made by this process (and not yet retired): the only ones known alive for sure. An
# owner with this process's pid that is not here belongs to a dead process whose pid was
# given again (containers: every server is PID 1).
_LIVE_OWNERS: set[str] = set()


def make_owner() -> str:
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _LIVE_OWNERS.add(owner)
    return owner


def _age(stamp: str | None) -> timedelta | None:
    if not stamp:
        return None
    return datetime.now(timezone.utc) - datetime.fromisoformat(stamp)


def owner_is_dead(owner: str | None, heartbeat: str | None, workspace: Workspace | None = None) -> bool:
    """Whether the process that owns a run is gone (so the run can be resumed).

    ``heartbeat``: the run's own; ``workspace``: where workers beat (see ``WorkerBeat``).
    """
    if not owner:
        return True
    if owner in _LIVE_OWNERS:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return True  # our pid, not our owner: a process before a restart
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        # The pid is in use, perhaps by another program that got it: the beat decides.
    worker_beat = workspace.worker_heartbeat(owner) if workspace is not None else None
    if worker_beat is not None:
        return _age(worker_beat) > WORKER_STALE
    if host == socket.gethostname() and pid_text.isdigit():
        return False  # an older Textlab without worker beats, pid alive: trust the pid
    age = _age(heartbeat)
    return age is None or age > STALE_AFTER


class WorkerBeat:
    """A daemon thread that keeps an owner's heartbeat fresh in the workspace while it lives."""

    def __init__(self, workspace: Workspace, owner: str, interval: float = WORKER_BEAT_S):
        self.workspace, self.owner, self.interval = workspace, owner, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "WorkerBeat":
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="textlab-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            self.workspace.beat(self.owner)
        except Exception as exc:  # a full disk or a locked database must not kill the worker
            log.warning("Could not record the worker heartbeat: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def stop(self) -> None:
        self._stop.set()
        _LIVE_OWNERS.discard(self.owner)
        try:
            self.workspace.forget_worker(self.owner)
        except Exception:  # best effort: a stale row only delays nothing (the owner is retired)
            pass

    def __enter__(self) -> "WorkerBeat":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


_MANAGERS: dict[str, "JobManager"] = {}
_MANAGERS_LOCK = threading.Lock()


def manager_for(root: str | os.PathLike | None = None, *, scheduler: "Scheduler | None" = None,
                queue_limit: int | None = None) -> "JobManager":
    """The one started job manager of this process for a workspace folder.

    The app's server start (``textlab app``) and the pages share it, so there is one worker
    per server however it was started. In workshop mode every participant's workspace has a
    manager of its own and they all share the server's ``scheduler`` (one worker, fair turns),
    each with at most ``queue_limit`` runs queued or running.
    """
    key = str(Path(root if root is not None else default_root()).expanduser().resolve())
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(key)
        if manager is None:
            manager = _MANAGERS[key] = JobManager(Workspace(key), scheduler=scheduler, queue_limit=queue_limit)
    return manager.start()


_SHARED: "Scheduler | None" = None


def shared_scheduler() -> "Scheduler":
    """The server's one worker for every participant's workspace (workshop mode)."""
    global _SHARED
    with _MANAGERS_LOCK:
        if _SHARED is None:
            _SHARED = Scheduler()
        return _SHARED


def retire_manager(root: str | os.PathLike) -> None:
    """Stop serving a workspace that is going away (a workshop reset): its queued runs leave the
    queue, its heartbeat and watcher stop, so nothing writes into the deleted folder again."""
    key = str(Path(root).expanduser().resolve())
    with _MANAGERS_LOCK:
        manager = _MANAGERS.pop(key, None)
    if manager is not None:
        manager.stop()


class Scheduler:
    """The worker of a server: one thread that runs queued runs one at a time, so two analyses
    never fight over the GPU or a laptop's two cores.

    It serves one workspace, or (workshop mode) every participant's: turns go round robin
    between workspaces (``workshop.FairQueue``), and a run that has had the worker for
    ``time_slice`` seconds steps aside between chunks while another workspace's run waits.
    """

    def __init__(self, time_slice: float = TIME_SLICE_S):
        from .workshop import FairQueue

        self.queue = FairQueue()
        self.time_slice = time_slice
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.current: tuple["JobManager", str] | None = None
        self._current_since = 0.0
        self.rates: dict[str, float] = {}  # texts/s last seen per task: the expected wait

    def put(self, manager: "JobManager", run_id: str) -> None:
        self.queue.put(manager.key, (manager, run_id))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="textlab-worker", daemon=True)
                self._thread.start()

    def _seconds_left(self, manager: "JobManager", run_id: str) -> float:
        """Expected seconds of work a run has left (texts left over its task's last rate)."""
        try:
            run = manager.workspace.run(run_id)
        except TextlabError:
            return 0.0
        rate = run.docs_per_s or self.rates.get(run.task) or DEFAULT_RATE
        return max((run.n_total or 0) - (run.n_done or 0), 0) / rate

    def should_pause(self, manager: "JobManager") -> bool:
        """Step aside when the run has had its time slice and another participant's waiting run
        needs less work than this one has left: a small run never waits for a big one, while
        runs of equal size finish one after the other instead of all together at the end."""
        current = self.current
        if (current is None or time.monotonic() - self._current_since <= self.time_slice
                or not self.queue.owners_waiting(besides=manager.key)):
            return False
        mine = self._seconds_left(*current)
        return any(self._seconds_left(other, run_id) < mine
                   for owner, (other, run_id) in self.queue.items() if owner != manager.key)

    def _work(self) -> None:
        while True:
            got = self.queue.get(timeout=5)
            if got is None:
                with self._lock:
                    if not self.queue.pending():
                        self._thread = None
                        return
                continue
            _, (manager, run_id) = got
            self.current, self._current_since = (manager, run_id), time.monotonic()
            paused = False
            try:
                if manager.workspace.claim_run(run_id, manager.owner, ("queued", "interrupted")):
                    run = manager.workspace.run(run_id)

                    def seen(done: int, total: int, rate: float, task: str = run.task) -> None:
                        if rate > 0:
                            self.rates[task] = rate

                    execute_run(manager.workspace, run_id, owner=manager.owner, on_progress=seen,
                                should_pause=lambda: self.should_pause(manager))
            except JobPaused:
                paused = True
                self.queue.put(manager.key, (manager, run_id))  # back of its owner's line
            except TextlabError as exc:  # recorded on the run; the worker goes on
                log.info("Run %s stopped: %s", run_id, exc)
            except Exception:  # pragma: no cover - execute_run records these; keep the worker alive
                log.exception("Run %s crashed the worker", run_id)
            finally:
                self.current = None
                if not paused:
                    manager._finished(run_id)

    def waiting(self, manager: "JobManager", run_id: str) -> tuple[int, float | None]:
        """(runs ahead of this one, expected seconds until it starts; None when not known)."""
        ahead = self.queue.ahead(manager.key, (manager, run_id))
        current = self.current
        seconds: float | None = 0.0
        for other, other_run in ([current] if current else []) + [item for _, item in ahead]:
            try:
                run = other.workspace.run(other_run)
            except TextlabError:
                continue
            rate = run.docs_per_s or self.rates.get(run.task)
            left = max((run.n_total or 0) - (run.n_done or 0), 0)
            if rate and seconds is not None:
                seconds += left / rate
            elif left:
                seconds = None
        return len(ahead) + (1 if current and current[1] != run_id else 0), seconds


class JobManager:
    """The background runs of one workspace, run by a ``Scheduler`` (its own, or the server's
    shared one in workshop mode)."""

    def __init__(self, workspace: Workspace, *, scheduler: Scheduler | None = None, queue_limit: int | None = None):
        self.workspace = workspace
        self.key = str(workspace.root)
        self.owner = make_owner()
        self.scheduler = scheduler if scheduler is not None else Scheduler()
        self.queue_limit = queue_limit
        self._lock = threading.Lock()
        self._unfinished: set[str] = set()
        self._beat = WorkerBeat(workspace, self.owner).start()
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Stop serving this workspace: cancel its runs, take them off the queue, end the beat and
        the watcher (the run on the worker stops at its next chunk)."""
        self._stopped.set()
        for run_id in list(self._unfinished):
            try:
                self.workspace.update_run(run_id, cancel_requested=1)
            except Exception:  # the folder may be gone already
                pass
            if self.scheduler.queue.remove(self.key, (self, run_id)):
                self._finished(run_id)
        self._beat.stop()

    @property
    def current(self) -> str | None:
        """The run of this workspace the worker is running now, if any."""
        current = self.scheduler.current
        return current[1] if current and current[0] is self else None

    def start(self, watch_interval: float = WATCH_INTERVAL_S) -> "JobManager":
        """Serve the workspace: resume what a dead process left now, and keep looking.

        Called when a server starts. Runs of another server on the same workspace that dies
        later are taken over within ``WORKER_STALE`` plus ``watch_interval``.
        """
        with self._lock:
            if self._watcher is not None:
                return self
            self._watcher = threading.Thread(target=self._watch, args=(watch_interval,), name="textlab-watcher",
                                             daemon=True)
        self.resume_interrupted()
        self._watcher.start()
        return self

    def _watch(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            try:
                self.resume_interrupted()
            except Exception:  # keep watching; the next look may succeed (a locked database)
                log.exception("Looking for interrupted runs failed")

    def _check_limit(self) -> None:
        if self.queue_limit is not None and len(self._unfinished) >= self.queue_limit:
            raise TextlabError(f"You have {len(self._unfinished)} analyses waiting or running, the most this server "
                               "allows each person: wait for one to finish, or cancel one.")

    def submit(self, project: Project, task_name: str, config: BaseConfig | dict | None = None) -> Run:
        """Validate the settings now (so the user sees mistakes at once), then queue the run."""
        task = get_task(task_name)
        if not isinstance(config, BaseConfig):
            config = task.Config.from_dict(config)
        task.validate(config)
        self._check_limit()
        corpus = project.corpus()
        context = run_context(project, corpus)
        task.check(config, context)
        n_total = len(non_empty(corpus.texts))
        run = project.create_run(task_name, config.to_dict(), n_total, inputs=task.input_fingerprint(config, context),
                                 owner=self.owner)
        self._enqueue(run.id)
        return self.workspace.run(run.id)

    def cancel(self, run_id: str) -> None:
        self.workspace.update_run(run_id, cancel_requested=1)
        run = self.workspace.run(run_id)
        if run.status in ("queued", "interrupted"):
            self.workspace.update_run(run_id, status="cancelled", finished=now_iso(), error="Cancelled by the user.",
                                      stage=None)
            if self.scheduler.queue.remove(self.key, (self, run_id)):
                self._finished(run_id)

    def retry(self, run_id: str) -> None:
        """Queue a failed, cancelled or interrupted run again; it resumes from its checkpoints."""
        self._check_limit()
        self.workspace.update_run(run_id, status="queued", cancel_requested=0, error=None, owner=self.owner)
        self._enqueue(run_id)

    def waiting(self, run_id: str) -> tuple[int, float | None]:
        """Runs ahead of a queued run and the expected seconds until it starts (None: unknown)."""
        return self.scheduler.waiting(self, run_id)

    def resume_interrupted(self) -> list[str]:
        """Queue the runs that a dead process left queued or running. Returns their ids."""
        resumed = []
        for run in self.workspace.runs_with_status("queued", "running"):
            if run.owner == self.owner or not owner_is_dead(run.owner, run.heartbeat, self.workspace):
                continue
            # Take it only if no other living worker took it first (two servers, one workspace).
            if not self.workspace.claim_run(run.id, self.owner, (run.status,), status="interrupted",
                                            expected_owner=run.owner):
                continue
            self._enqueue(run.id)
            resumed.append(run.id)
        if resumed:
            log.info("Resuming %d interrupted run(s): %s", len(resumed), ", ".join(resumed))
        return resumed

    def _enqueue(self, run_id: str) -> None:
        with self._lock:
            self._unfinished.add(run_id)
        self.scheduler.put(self, run_id)

    def _finished(self, run_id: str) -> None:
        with self._lock:
            self._unfinished.discard(run_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this workspace's runs are done (tests, scripts). True when they were in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._unfinished:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
