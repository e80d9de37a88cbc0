"""Zero-shot coding speed: the app's background worker against the `textlab` command.

Both paths code the same corpus with the same settings (offline zero-shot, the sample
codebook) on fresh workspaces, so nothing comes from the embedding cache:

- ``cli``: ``textlab analyze CORPUS -o OUT --task coding --codebook ... --backend offline``;
- ``app``: ``streamlit run app.py`` with TEXTLAB_HOME in a temporary folder, the coding page
  open in headless Chromium (Playwright) the whole time, so the page's progress fragment
  polls as it does for a user. "Run coding" is clicked and the run is watched in the
  workspace. While it runs the browser switches pages a few times and times how long each
  page takes to show its heading (the grey-placeholder complaint).

The corpus: ``sample_data/policy_survey.csv`` repeated to ``--n`` rows, each repeat perturbed
(an opener and a closing phrase, a word swap) so that every text is distinct and is embedded.

Figures: texts/s = non-empty texts / the run's ``duration_s`` in its manifest (model load
included, the same measure on both paths); texts/s once flowing = texts / (end - first
``n_done > 0``), model load left out; CPU seconds of the server and the browser (app) or of
the command (cli); time to the first progress shown (``n_done > 0`` or a stage in the run
record) and the page-switch latencies. ``--tabs N`` keeps N sessions on the coding page (each
polls the run), ``--leave`` leaves the page once the run is queued (nobody watching).
``--profile`` takes ``py-spy dump`` snapshots of the server, ``--record FILE`` a 60 s
``py-spy record`` (raw format). On a shared machine the figures move by 2x from one run to the
next: compare rows measured one after the other, and the CPU seconds.

    python benchmarks/app_vs_cli.py --n 2000 --repeat 2 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import pandas as pd

from _common import host_description, module_versions, stop_process, write_section

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "policy_survey.csv"
CODEBOOK = ROOT / "sample_data" / "policy_codebook.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BEGIN = "<!-- BEGIN benchmarks/app_vs_cli.py -->"
END = "<!-- END benchmarks/app_vs_cli.py -->"

OPENERS = ["", "Honestly, ", "To be fair, ", "I think ", "Well, ", "For me, ", "Frankly, ", "As I see it, ",
           "In short, ", "Personally, ", "Right now, ", "Simply put, "]
CLOSERS = ["", " That's it.", " Thanks.", " Nothing more to add.", " Please act.", " Same as last year.",
           " It matters.", " Sort it out.", " We all feel it.", " End of."]


def make_corpus(n: int, seed: int = 1) -> pd.DataFrame:
    """The sample survey repeated to n rows; every repeat is a distinct, perturbed text."""
    base = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    rng = random.Random(seed)
    rows, seen = [], set()
    for i in range(n):
        row = dict(base.iloc[i % len(base)])
        text = row["text"]
        if i >= len(base) and text.strip():
            words = text.split()
            if len(words) > 3:
                a = rng.randrange(len(words) - 1)
                words[a], words[a + 1] = words[a + 1], words[a]
            text = rng.choice(OPENERS) + " ".join(words) + rng.choice(CLOSERS)
            while text in seen:
                text += rng.choice(CLOSERS) or " Yes."
        seen.add(text)
        row["text"] = text
        row["respondent_id"] = f"R{i + 1:05d}"
        rows.append(row)
    return pd.DataFrame(rows)


def _manifest(workspace: Path, run_id: str) -> dict:
    for path in workspace.glob(f"projects/*/runs/{run_id}/manifest.json"):
        return json.loads(path.read_text("utf-8"))
    return {}


def _runs(workspace: Path) -> list[dict]:
    db = workspace / "textlab.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM runs WHERE task='coding' ORDER BY created")]
    finally:
        con.close()


def _load_avg() -> float:
    return os.getloadavg()[0]


def _env() -> dict:
    # This copy's code, not another checkout installed in editable mode (before/after copies).
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def run_cli(corpus: Path, folder: Path) -> dict:
    ws = folder / "ws_cli"
    out = folder / "out.csv"
    import resource

    started = time.monotonic()
    load = _load_avg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    err = folder / "stderr.txt"
    with open(err, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "analysis.cli", "analyze", str(corpus), "-o", str(out), "--task", "coding",
             "--codebook", str(CODEBOOK), "--backend", "offline", "--workspace", str(ws)],
            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=fh,
        )
        first_text = ended = None
        while proc.poll() is None:  # the same watch as for the app: when texts start to flow
            try:
                runs = _runs(ws)
            except sqlite3.Error:
                runs = []
            if runs and first_text is None and runs[-1]["n_done"]:
                first_text = time.monotonic()
            if runs and ended is None and runs[-1]["status"] == "done":
                ended = time.monotonic()
            time.sleep(0.25)
    stderr = err.read_text()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode:
        raise SystemExit("textlab analyze failed:\n" + stderr[-3000:])
    run = _runs(ws)[-1]
    manifest = _manifest(ws, run["id"])
    coded = run["n_total"]
    return {"path": "cli", "texts": coded, "duration_s": manifest["duration_s"],
            "texts_per_s": coded / manifest["duration_s"], "wall_s": wall, "first_progress_s": None,
            "load_before": load, "load_after": _load_avg(), "cpu_s": {"cli": round(cpu, 1)},
            "flowing_texts_per_s": coded / ((ended or time.monotonic()) - first_text) if first_text else None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _py_spy_dump(pid: int) -> str:
    try:
        return subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True,
                              timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"py-spy failed: {exc}"


def _cpu(proc) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except Exception:  # a renderer that has gone
        return 0.0


def run_app(corpus: Path, folder: Path, *, profile: bool = False, switches: int = 3, tabs: int = 1,
            record: Path | None = None, leave: bool = False) -> dict:
    from playwright.sync_api import expect, sync_playwright

    sys.path.insert(0, str(ROOT))
    from analysis.corpus import load_corpus
    from analysis.workspace import Workspace

    ws_root = folder / "ws_app"
    loaded, _ = load_corpus(corpus)
    project = Workspace(ws_root).create_project(corpus.stem, loaded)
    port = _free_port()
    env = {**_env(), "TEXTLAB_HOME": str(ws_root)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    result: dict = {"path": "app", "dumps": [], "tabs": tabs}
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("streamlit did not start")
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)
            # From the start page, as a user comes: deep links to a page show a raw sidebar (issue 10, 5).
            page.goto(f"{url}/?project={project.id}")
            page.get_by_role("link", name="Codebook coding").click()
            expect(page.get_by_text("5 codes · version")).to_be_visible()
            result["load_before"] = _load_avg()
            page.get_by_role("button", name="Run coding").click()
            clicked = time.monotonic()
            recorder = None
            if record:  # a sampling profile of the server while the run goes
                recorder = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "-d", "60", "-r", "20",
                                             "-f", "raw", "-o", str(record), "--nonblocking"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if leave:  # nobody watching: the worker alone in the server (once the run is queued)
                while not _runs(ws_root):
                    time.sleep(0.1)
                page.goto("about:blank")
            import psutil

            mine = psutil.Process(os.getpid()).children(recursive=True)  # not other people's browsers
            procs = [psutil.Process(server.pid)] + [q for q in mine if "chrom" in q.name()]
            cpu0 = {q.pid: _cpu(q) for q in procs}
            for _ in range(tabs - 1):  # more sessions watching the run (each one polls it)
                other = browser.new_page(viewport={"width": 1400, "height": 1000})
                other.goto(f"{url}/?project={project.id}")
                other.get_by_role("link", name="Codebook coding").click()
            first = first_text = None
            switch_times: list[float] = []
            last_switch = clicked
            while True:
                runs = _runs(ws_root)
                run = runs[-1] if runs else None
                now = time.monotonic()
                if run and first is None and (run["n_done"] or run["stage"]):
                    first = now - clicked
                if run and first_text is None and run["n_done"]:
                    first_text = now
                if run and run["status"] in ("done", "failed", "cancelled"):
                    break
                if profile and run and run["status"] == "running" and len(result["dumps"]) < 3 \
                        and run["n_done"] > run["n_total"] * (len(result["dumps"]) + 1) / 5:
                    result["dumps"].append(_py_spy_dump(server.pid))
                if not leave and run and run["n_done"] > 0 and len(switch_times) < switches and now - last_switch > 10:
                    # Another page and back: how long until each shows its heading.
                    t0 = time.monotonic()
                    page.get_by_role("link", name="Text statistics").click()
                    expect(page.get_by_role("heading", name="Text statistics")).to_be_visible()
                    expect(page.get_by_role("button", name="Run text statistics")).to_be_visible()
                    t1 = time.monotonic()
                    page.get_by_role("link", name="Codebook coding").click()
                    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
                    switch_times.append(round(t1 - t0, 2))
                    switch_times.append(round(time.monotonic() - t1, 2))
                    last_switch = time.monotonic()
                time.sleep(0.25)
            ended = time.monotonic()
            cpu = {"server": _cpu(procs[0]) - cpu0[procs[0].pid],
                   "browser": sum(_cpu(q) - cpu0[q.pid] for q in procs[1:])}
            browser.close()
        if run["status"] != "done":
            raise SystemExit(f"the app's run ended {run['status']}: {run['error']}")
        manifest = _manifest(ws_root, run["id"])
        result.update(texts=run["n_total"], duration_s=manifest["duration_s"],
                      texts_per_s=run["n_total"] / manifest["duration_s"], first_progress_s=first,
                      page_switch_s=switch_times, load_after=_load_avg(),
                      # Texts/s once texts flow (model load left out), and CPU seconds per process.
                      flowing_texts_per_s=run["n_total"] / (ended - first_text) if first_text else None,
                      cpu_s={k: round(v, 1) for k, v in cpu.items()}, watched=not leave)
    finally:
        stop_process(server)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="alternate cli/app this many times")
    parser.add_argument("--only", choices=["cli", "app"], default=None)
    parser.add_argument("--tabs", type=int, default=1, help="browser tabs open on the coding page during the app run")
    parser.add_argument("--record", type=Path, default=None, help="py-spy record (raw) of the server, 60 s")
    parser.add_argument("--switches", type=int, default=3, help="page switches (there and back) during the app run")
    parser.add_argument("--leave", action="store_true", help="leave the page after clicking Run (nobody watching)")
    parser.add_argument("--profile", action="store_true", help="py-spy dumps of the server during the app run")
    parser.add_argument("--label", default="", help="a word for the table (e.g. before, after)")
    parser.add_argument("--json", type=Path, default=None, help="append the results as JSON lines here")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--note", default="", help="a paragraph under the table")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="write --markdown from the JSON lines of earlier runs instead of running")
    args = parser.parse_args()

    if args.from_json:  # a series run as several invocations (e.g. before/after checkouts)
        results = [json.loads(line) for line in args.from_json.read_text("utf-8").splitlines() if line.strip()]
        write_markdown(args.markdown, results, args)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="textlab-app-vs-cli-") as tmp:
        folder = Path(tmp)
        corpus = folder / "policy_survey_2000.csv"
        make_corpus(args.n).to_csv(corpus, index=False)
        for i in range(args.repeat):
            for path in ("cli", "app"):
                if args.only and path != args.only:
                    continue
                sub = folder / f"{path}{i}"
                sub.mkdir()
                r = run_cli(corpus, sub) if path == "cli" else run_app(corpus, sub, profile=args.profile, tabs=args.tabs,
                                                                  switches=args.switches, record=args.record,
                                                                  leave=args.leave)
                r["label"] = args.label
                dumps = r.pop("dumps", [])
                for k, dump in enumerate(dumps):
                    print(f"---- py-spy dump {k + 1}\n{dump}")
                print(json.dumps(r), flush=True)
                results.append(r)
                if args.json:
                    with open(args.json, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(r) + "\n")
    if args.markdown:
        write_markdown(args.markdown, results, args)


def write_markdown(path: Path, results: list[dict], args) -> None:
    lines = [
        BEGIN,
        f"### Zero-shot coding: app worker vs `textlab` command ({date.today():%Y-%m-%d})",
        "",
        (f"Command: `python benchmarks/app_vs_cli.py --n {args.n} [--only app|cli] [--tabs N] --label L --json "
         f"{args.from_json.name}` for each row, in the order of the table, then `--from-json {args.from_json.name} "
         f"--markdown {path}`  " if args.from_json else
         f"Command: `python benchmarks/app_vs_cli.py --n {args.n} --repeat {args.repeat} --markdown {path}`  "),
        f"Machine: {host_description()}; {module_versions('torch', 'streamlit', 'sentence_transformers')}; "
        "other engineers' tests shared the cores (load average in the table)  ",
        f"Corpus: sample_data/policy_survey.csv repeated and perturbed to {args.n:,} distinct texts; offline "
        "zero-shot (all-MiniLM-L6-v2 similarity, the sample codebook), fresh workspaces (no embedding cache). "
        "texts/s = texts / the run's duration in its manifest (model load included).",
        "",
        "| path | texts | run (s) | texts/s | texts/s once flowing | CPU s | first progress (s) | page switches (s) | load avg |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for r in results:
        first = "-" if r.get("first_progress_s") is None else f"{r['first_progress_s']:.1f}"
        switches = ", ".join(f"{s:.1f}" for s in r.get("page_switch_s", [])) or "-"
        name = r["path"] + (f" ({r['tabs']} tabs)" if r.get("tabs", 1) > 1 else "")
        flowing = "-" if not r.get("flowing_texts_per_s") else f"{r['flowing_texts_per_s']:.1f}"
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in (r.get("cpu_s") or {}).items()) or "-"
        lines.append(f"| {name} {r.get('label', '')} | {r['texts']:,} | {r['duration_s']:.1f} | "
                     f"{r['texts_per_s']:.1f} | {flowing} | {cpu} | {first} | {switches} | {r['load_before']:.1f} |")
    if args.note:
        lines += ["", args.note]
    lines.append(END)
    write_section(path, BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    main()
