"""Jobs after crashes: a killed server's runs resume on their own, dead owners are recognised
(also when their pid was given again), pool workers die with their parent, a full disk is a
clear failure."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

import tests.slow_task  # noqa: F401  (registers the "slow" task)
from analysis import jobs
from analysis.corpus import Corpus
from analysis.errors import TextlabError
from analysis.jobs import JobManager, WorkerBeat, execute_run, make_owner, owner_is_dead
from analysis.workspace import Workspace
from tests.paths import ROOT


def corpus_of(texts):
    return Corpus(data=pd.DataFrame({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts}),
                  text_column="text")


def logged_chunks(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines() if path.exists() else []


def wait_for(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_an_owner_with_our_pid_but_not_ours_is_dead():
    """Containers: the restarted server is PID 1 again; the dead one's runs must not look alive."""
    ours = make_owner()
    assert not owner_is_dead(ours, None)
    assert owner_is_dead(f"{socket.gethostname()}:{os.getpid()}:0dead0ff", None)


def test_worker_beat_decides_for_a_pid_in_use_and_for_other_hosts(home):
    ws = Workspace()
    stale = "otherhost:4242:aaaa"
    ws.beat(stale)
    assert not owner_is_dead(stale, None, ws)  # beat just now
    old = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5)).isoformat()
    with ws.connect() as con:
        con.execute("UPDATE workers SET heartbeat=? WHERE owner=?", (old, stale))
    assert owner_is_dead(stale, None, ws)
    # A pid that is in use (our parent) by a process that is not a Textlab worker any more.
    reused = f"{socket.gethostname()}:{os.getppid()}:bbbb"
    ws.beat(reused)
    with ws.connect() as con:
        con.execute("UPDATE workers SET heartbeat=? WHERE owner=?", (old, reused))
    assert owner_is_dead(reused, None, ws)
    beat = WorkerBeat(ws, make_owner(), interval=0.05).start()
    first = ws.worker_heartbeat(beat.owner)
    assert wait_for(lambda: ws.worker_heartbeat(beat.owner) != first, 5)
    beat.stop()
    assert ws.worker_heartbeat(beat.owner) is None


DEAD_WORKER = """
import sys, time
sys.path.insert(0, {root!r})
import tests.slow_task
from analysis.jobs import JobManager
from analysis.workspace import Workspace
ws = Workspace({home!r})
manager = JobManager(ws)
manager.retry({run!r})
time.sleep(600)
"""


def test_a_living_worker_takes_over_the_run_of_a_killed_one(home, tmp_path, monkeypatch):
    """Two servers on one workspace: when one is killed, the other finishes its run unasked."""
    ws = Workspace(home)
    project = ws.create_project("p", corpus_of([f"text {i}" for i in range(60)]))
    log = tmp_path / "log"
    run = project.create_run("slow", {"delay": 0.05, "log": str(log)}, n_total=60, status="cancelled")
    living = JobManager(ws).start(watch_interval=0.2)  # the server that stays up
    other = subprocess.Popen([sys.executable, "-c", DEAD_WORKER.format(root=str(ROOT), home=str(home), run=run.id)])
    try:
        assert wait_for(lambda: len(logged_chunks(log)) >= 2, 60)
        assert ws.run(run.id).owner != living.owner
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    assert wait_for(lambda: ws.run(run.id).status == "done", 60), ws.run(run.id)
    assert ws.run(run.id).owner == living.owner
    assert len(logged_chunks(log)) <= 7  # 6 chunks; at most the one cut off is computed again
    assert len(project.result(run.id)) == 60


SERVER = """
import sys
sys.path.insert(0, {root!r})
import tests.slow_task
from ui.launch import main
sys.exit(main(["app", "--port", "{port}", "--workspace", {home!r}]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(ROOT), port=port, home=str(home))],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(home.parent))
    return proc, port


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
            return reply.read() == b"ok"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_killed_server_resumes_its_run_on_restart_without_a_browser(home, tmp_path):
    """`textlab app` starts the worker with the server: nobody has to open a page or click."""
    ws = Workspace(home)
    project = ws.create_project("p", corpus_of([f"text {i}" for i in range(80)]))
    log = tmp_path / "log"
    run = project.create_run("slow", {"delay": 0.08, "log": str(log)}, n_total=80)  # queued, no owner
    env = {**os.environ, "TEXTLAB_DEBUG": ""}
    first, port = start_server(home, env)
    try:
        assert wait_for(lambda: len(logged_chunks(log)) >= 3, 90), first.stderr.read1().decode() if first.poll() is not None else "no progress"
        assert healthy(port)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert ws.run(run.id).status == "running"  # left behind by the dead server
    saved = len(project.checkpoints(run.id))
    logged_before = len(logged_chunks(log))
    second, port = start_server(home, env)
    try:
        assert wait_for(lambda: ws.run(run.id).status == "done", 120), ws.run(run.id)
        assert healthy(port)
    finally:
        second.terminate()
        second.wait(30)
    recomputed = len(logged_chunks(log)) - logged_before
    assert recomputed == 8 - saved  # only the chunks that were not saved
    assert len(project.result(run.id)) == 80


POOL_OWNER = """
import sys, time
sys.path.insert(0, {root!r})
from analysis.tasks.sentiment import SentimentConfig, VaderPredictor
predictor = VaderPredictor(SentimentConfig(backend="offline"), "test")
predictor.workers = 2
predictor._scores(["a fine day it is"] * 4000)
print(" ".join(str(p) for p in predictor._pool._processes), flush=True)
time.sleep(600)
"""


def test_vader_pool_workers_die_with_a_killed_parent():
    proc = subprocess.Popen([sys.executable, "-c", POOL_OWNER.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie until reaped by init counts as gone
        status = Path(f"/proc/{pid}/status")
        return status.exists() and "zombie" in status.read_text()
    assert wait_for(lambda: all(gone(p) for p in pids), 15), [p for p in pids if not gone(p)]


def test_a_full_disk_fails_the_run_with_a_clear_message(home, monkeypatch):
    ws = Workspace()
    project = ws.create_project("p", corpus_of([f"text {i}" for i in range(30)]))
    run = project.create_run("slow", {"delay": 0.0}, n_total=30)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(project), "write_checkpoint", full)
    monkeypatch.setattr(Path, "write_text", full)  # error.log cannot be written either
    with pytest.raises(TextlabError, match="disk is full"):
        execute_run(ws, run.id, owner=make_owner())
    after = ws.run(run.id)
    assert after.status == "failed" and "Free some space" in after.error


def test_manager_for_is_one_started_manager_per_workspace(home):
    first = jobs.manager_for(home)
    assert jobs.manager_for(str(home)) is first
    assert first._watcher is not None and first._watcher.is_alive()
