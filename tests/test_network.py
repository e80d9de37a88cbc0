"""Nothing leaves the machine: the CLI and the app (server and browser) connect to 127.0.0.1
only, and the server listens on 127.0.0.1 only.

The Python processes run under an audit hook (``sys.addaudithook``) that records every
name lookup and connection that is not to this machine; the browser's requests are
recorded by Playwright. The Hugging Face offline switches of the test suite are removed
from the environment, so the defaults are what is tested.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.paths import ROOT, SAMPLE_CSV

LOCAL = {"127.0.0.1", "::1", "localhost", "", None, "0.0.0.0"}

AUDITED = """
import json, socket, sys
sys.path.insert(0, {root!r})
LOG = open({log!r}, "a", buffering=1)
LOCAL = {local!r}

def host_of(address):
    if isinstance(address, tuple) and address:
        return address[0]
    return None  # a Unix socket path

def audit(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
        host = host.decode() if isinstance(host, bytes) else host
        if host not in LOCAL:
            LOG.write(json.dumps([event, str(host)]) + "\\n")
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        host = host_of(address)
        if isinstance(address, tuple) and host not in LOCAL:
            LOG.write(json.dumps([event, str(address)]) + "\\n")

sys.addaudithook(audit)
from ui.launch import main  # the `textlab` command: app here, the rest in analysis.cli
sys.exit(main({argv!r}))
"""


def clean_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TEXTLAB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["TEXTLAB_HOME"] = str(tmp_path / "workspace")
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty model cache, as on a new machine
    return env


def audited(tmp_path: Path, argv: list[str]) -> tuple[list[str], Path]:
    log = tmp_path / f"outside-{len(list(tmp_path.glob('outside-*')))}.log"
    script = AUDITED.format(root=str(ROOT), log=str(log), local=LOCAL, argv=argv)
    return [sys.executable, "-c", script], log


def outside(log: Path) -> list:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_command_line_connects_nowhere(tmp_path):
    book = ROOT / "sample_data" / "policy_codebook.json"
    out = tmp_path / "out.xlsx"
    sample = tmp_path / "sample.csv"  # every task runs; 120 texts keep the test short
    sample.write_text("".join(SAMPLE_CSV.read_text("utf-8").splitlines(keepends=True)[:121]), encoding="utf-8")
    command, log = audited(tmp_path, ["analyze", str(sample), "-o", str(out), "--task", "stats", "--task",
                                      "sentiment", "--task", "emotion", "--task", "coding", "--codebook", str(book),
                                      "--task", "summary", "--task", "topics"])
    done = subprocess.run(command, env=clean_env(tmp_path), capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.exists()
    info_command, info_log = audited(tmp_path, ["info", str(SAMPLE_CSV)])
    assert subprocess.run(info_command, env=clean_env(tmp_path), capture_output=True, timeout=120).returncode == 0
    assert outside(log) == [] and outside(info_log) == []


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on a TCP port (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_app_connects_nowhere_and_listens_on_this_machine_only(tmp_path):
    from tests.test_browser import require_chromium

    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    command, log = audited(tmp_path, ["app", "--port", str(port)])  # the default address
    server = subprocess.Popen(command, env=clean_env(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    requests: list[str] = []
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("textlab app did not start")
        if Path("/proc/net/tcp").exists():
            assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and no IPv6 wildcard
        with sync_playwright() as p:
            # Chromium's own background traffic (updates, safe browsing) is the browser's, not
            # Textlab's, and not what page requests record: switched off as in the browser test.
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)
            page.goto(url)
            page.get_by_role("tab", name="Sample data").click()
            page.get_by_role("button", name="Load sample data").click()
            expect(page.get_by_text("Loaded the sample data")).to_be_visible()
            for name in ("Text statistics", "Sentiment", "Codebook coding", "Explore", "Validate", "Export"):
                page.get_by_role("link", name=name).click()
                expect(page.get_by_role("heading", level=1)).to_be_visible()
            page.get_by_role("link", name="Text statistics").click()
            page.get_by_role("button", name="Run text statistics").click()
            expect(page.get_by_text("Median tokens")).to_be_visible(timeout=300_000)
            page.reload()
            expect(page.get_by_text("Median tokens")).to_be_visible()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    elsewhere = [u for u in requests if not u.startswith((url, "data:", "blob:", "about:"))]
    assert requests and elsewhere == []
    assert outside(log) == []


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the listening sockets from /proc/net")
def test_streamlit_run_with_the_project_config_listens_on_this_machine_only(tmp_path):
    """`streamlit run app.py` (the config in .streamlit/) binds 127.0.0.1, not every interface."""
    port = free_port()
    env = {**clean_env(tmp_path), "TEXTLAB_HOME": str(tmp_path / "ws")}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                               str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not listening_addresses(port):
            time.sleep(0.2)
        assert listening_addresses(port) == {"0100007F"}
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "External URL" not in output and "Network URL" not in output  # no public-IP lookup either
