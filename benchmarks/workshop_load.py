"""Workshop load test: N participants at once on one `textlab app --workshop` server.

Each participant joins, loads the sample data, runs sentiment, then codebook coding (the
sample codebook), and waits for each result on the page. Two kinds of participant:

- ``--client ws`` (default): a session driven over Streamlit's websocket (``_stclient.py``):
  the same reruns, widget values, cookies and once-a-second progress polling a browser
  sends, without drawing anything. The room's laptops do the drawing in a real workshop;
  here they would share the server's 2 cores.
- ``--client browser``: a headless Chromium context each (Playwright). Tried first: 30 tabs
  took 1.6 of the machine's 2 cores and left the server a third of one (measured), so the
  test measured the browsers.

Measured: the time until the last participant sees their coding results, each step's median
and slowest participant, the server's peak memory (VmHWM of the server process), and errors
(pages that showed an error or an exception, runs that failed, participants who never got
results).

    python benchmarks/workshop_load.py --participants 30 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OtherLoad, host_description, stop_process, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JOIN, FACILITATOR = "load-test", "load-facilitator"
BEGIN = "<!-- BEGIN benchmarks/workshop_load.py: generated, re-run the script instead of editing -->"
END = "<!-- END benchmarks/workshop_load.py -->"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss(pid: int) -> int:
    """VmHWM (peak resident memory) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def _participant(browser, url: str, i: int, timeout_ms: int, results: list, tasks: list[str]) -> None:
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    record = {"participant": i, "error": None}
    start = time.perf_counter()
    try:
        await page.goto(url)
        await page.get_by_role("textbox", name="Join code").fill(JOIN)
        await page.get_by_role("textbox", name="Your name").fill(f"Participant {i:02d}")
        await page.get_by_role("button", name="Join").click()
        await expect(page.get_by_text(f"Participant {i:02d}").first).to_be_visible(timeout=timeout_ms)
        record["joined_s"] = time.perf_counter() - start
        _say(i, "joined")
        await page.get_by_role("tab", name="Sample data").click()
        await page.get_by_role("button", name="Load sample data").click()
        await expect(page.get_by_text("Loaded the sample data")).to_be_visible(timeout=timeout_ms)
        record["loaded_s"] = time.perf_counter() - start
        _say(i, "loaded")
        if "sentiment" in tasks:
            await page.get_by_role("link", name="Sentiment").click()
            await page.get_by_role("button", name="Run sentiment").click()
            await expect(page.get_by_text("Mean score")).to_be_visible(timeout=timeout_ms)
            record["sentiment_s"] = time.perf_counter() - start
        if "coding" in tasks:
            await page.get_by_role("link", name="Codebook coding").click()
            await expect(page.get_by_text("5 codes · version")).to_be_visible(timeout=timeout_ms)
            await page.get_by_role("button", name="Run coding").click()
            await expect(page.get_by_text("Share of texts per code")).to_be_visible(timeout=timeout_ms)
            record["coding_s"] = time.perf_counter() - start
        errors = await page.get_by_test_id("stException").count() + await page.get_by_test_id("stAlertContentError").count()
        if errors:
            record["error"] = f"{errors} error element(s) on the page"
    except Exception as exc:  # a participant who never got results: counted, not fatal
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        os.makedirs(ROOT / "tests" / "_artifacts", exist_ok=True)
        try:
            await page.screenshot(path=str(ROOT / "tests" / "_artifacts" / f"load_failure_{i:02d}.png"))
        except Exception:
            pass
    record["done_s"] = time.perf_counter() - start
    results.append(record)
    await context.close()


def _say(i: int, what: str) -> None:
    if os.environ.get("LOAD_VERBOSE"):
        print(f"{time.strftime('%H:%M:%S')} participant {i}: {what}", file=sys.stderr, flush=True)


async def _ws_participant(url: str, i: int, timeout: float, results: list, tasks: list[str]) -> None:
    from _stclient import Session

    record = {"participant": i, "error": None}
    start = time.perf_counter()
    session = Session(url)
    try:
        await session.connect()
        await session.rerun(timeout=timeout)
        session.type("Join code", JOIN)
        session.type("Your name", f"Participant {i:02d}")
        await session.click("Join", timeout=timeout)
        screen = await session.rerun(timeout=timeout)
        if not screen.has(f"you are **Participant {i:02d}**"):
            raise RuntimeError("not joined: " + " | ".join(screen.errors or screen.texts[:5]))
        record["joined_s"] = time.perf_counter() - start
        _say(i, "joined")
        screen = await session.click("Load sample data", timeout=timeout)
        if not screen.has("Loaded the sample data"):
            raise RuntimeError("sample not loaded: " + " | ".join(screen.errors))
        record["loaded_s"] = time.perf_counter() - start
        _say(i, "loaded")
        for task, button, shown in (("sentiment", "Run sentiment", "Mean score"),
                                    ("coding", "Run coding", "Code next")):
            if task not in tasks:
                continue
            await session.goto(task, timeout=timeout)
            await session.click(button, timeout=timeout)
            await session.wait_for(shown, timeout)
            record[f"{task}_s"] = time.perf_counter() - start
            _say(i, task)
        errors = session.screen.errors
        if errors:
            record["error"] = f"{len(errors)} error(s) on the page: {errors[0][:200]}"
    except Exception as exc:  # a participant who never got results: counted, not fatal
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    finally:
        await session.close()
    record["done_s"] = time.perf_counter() - start
    record["reruns"] = session.runs
    results.append(record)


async def _run_ws(url: str, n: int, timeout: float, tasks: list[str], stagger: float) -> list[dict]:
    results: list[dict] = []
    jobs = []
    for i in range(n):
        jobs.append(asyncio.create_task(_ws_participant(url, i + 1, timeout, results, tasks)))
        await asyncio.sleep(stagger)  # people do not click in the same millisecond
    await asyncio.gather(*jobs)
    return sorted(results, key=lambda r: r["participant"])


async def _run(url: str, n: int, timeout_ms: int, tasks: list[str], stagger: float) -> list[dict]:
    from playwright.async_api import async_playwright

    results: list[dict] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-renderer-backgrounding", "--disable-background-timer-throttling"])
        jobs = []
        for i in range(n):
            jobs.append(asyncio.create_task(_participant(browser, url, i + 1, timeout_ms, results, tasks)))
            await asyncio.sleep(stagger)  # people do not click in the same millisecond
        await asyncio.gather(*jobs)
        await browser.close()
    return sorted(results, key=lambda r: r["participant"])


def _failed_runs(home: Path) -> tuple[int, int]:
    sys.path.insert(0, str(ROOT))
    from analysis.workshop import Workshop
    from analysis.workspace import Workspace

    workshop, done, failed = Workshop(home), 0, 0
    for person in workshop.participants():
        ws = Workspace(workshop.workspace_root(person.id))
        done += len(ws.runs_with_status("done"))
        failed += len(ws.runs_with_status("failed", "interrupted", "cancelled"))
    return done, failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--participants", type=int, default=30)
    ap.add_argument("--tasks", nargs="+", default=["sentiment", "coding"], choices=["sentiment", "coding"])
    ap.add_argument("--timeout", type=float, default=1800, help="seconds a participant may wait for a result")
    ap.add_argument("--stagger", type=float, default=0.5, help="seconds between participants' arrivals")
    ap.add_argument("--client", choices=["ws", "browser"], default="ws",
                    help="ws: sessions over Streamlit's websocket (default); browser: headless Chromium each")
    ap.add_argument("--markdown", type=Path, help="write the section into this file (docs/benchmarks.md)")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="textlab-load-"))
    port = _free_port()
    env = {**os.environ, "TEXTLAB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "ui.launch", "app", "--port", str(port), "--workshop", "--join-code", JOIN,
         "--facilitator-code", FACILITATOR, "--max-participants", str(max(args.participants, 100))],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        load = OtherLoad()
        started, client_start = time.perf_counter(), sum(os.times()[:2])
        if args.client == "ws":
            results = asyncio.run(_run_ws(url, args.participants, args.timeout, args.tasks, args.stagger))
        else:
            results = asyncio.run(_run(url, args.participants, int(args.timeout * 1000), args.tasks, args.stagger))
        wall = time.perf_counter() - started
        client_cpu = sum(os.times()[:2]) - client_start
        peak = _peak_rss(server.pid)
        other = load.cores()
    finally:
        stop_process(server)
    done, failed = _failed_runs(home)
    shutil.rmtree(home, ignore_errors=True)

    errors = [r for r in results if r["error"]]
    last = max((r.get(f"{args.tasks[-1]}_s", float("nan")) for r in results if not r["error"]), default=float("nan"))
    lines = [BEGIN, "## Workshop load test (one server, many participants)", "",
             f"`python benchmarks/workshop_load.py --participants {args.participants} --tasks {' '.join(args.tasks)}"
             f" --client {args.client} --markdown docs/benchmarks.md` on {host_description(ram=True)}, {time.strftime('%Y-%m-%d')}; "
             f"offline backends (VADER, MiniLM zero-shot coding), "
             + ("one websocket session per participant (what a browser sends, nothing drawn)" if args.client == "ws"
                else "one headless Chromium context per participant")
             + f" on the same machine as the server, arrivals {args.stagger:g} s apart"
             + (f"; the server (with anything else running) used {other:.1f} of the 2 cores on average, the "
                f"load client {client_cpu / max(wall, 1e-9):.2f}" if other is not None else "") + ".", "",
             "| measure | value |", "|---|---|",
             f"| participants served (saw every result) | {len(results) - len(errors)} of {args.participants} |",
             f"| errors (pages with an error, participants without results) | {len(errors)} |",
             f"| runs done / failed, interrupted or cancelled | {done} / {failed} |",
             f"| time until the last participant saw {args.tasks[-1]} results | {last:,.0f} s |",
             f"| whole test (first arrival to last result) | {wall:,.0f} s |",
             f"| server peak memory (VmHWM) | {peak / 2**30:,.2f} GiB |"]
    for task in ["joined", "loaded", *args.tasks]:
        times = [r[f"{task}_s"] for r in results if f"{task}_s" in r]
        if times:
            lines.append(f"| {task}: median / slowest participant | {statistics.median(times):,.0f} s / "
                         f"{max(times):,.0f} s |")
    lines += ["", "The single worker runs one analysis at a time in fair turns between participants (a "
              "long run steps aside after 20 s between chunks when others wait), so the last participant's "
              "wait is about the sum of everyone's work: on 2 cores, about "
              f"{last / max(args.participants, 1):,.1f} s per participant here."]
    if errors:
        lines += ["", "Errors: " + "; ".join(f"participant {r['participant']}: {r['error']}" for r in errors[:10])]
    lines.append(END)
    print("\n".join(lines))
    if args.markdown:
        write_section(args.markdown, BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    main()
