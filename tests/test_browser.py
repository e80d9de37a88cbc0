"""One real-browser walk: Debian's Chromium (driven by Playwright) against `textlab app`.

Loads the sample data, sees the preview, runs text statistics (and reloads the page: the
project stays open) and sentiment, sees their charts, codes the sample with its codebook
(killing the server mid-run and starting it again: the run resumes by itself), sees the codes
on Explore and the agreement with the human coders, finds
topics and sees the document map, sees a group summary with its sources,
downloads the CSV export and checks its rows. A second walk codes a dozen texts with a
generative model (a tiny local chat model) chosen in the sidebar's Language model section.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

from tests.paths import ROOT, SAMPLE_CSV

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`textlab app` on a fixed port and workspace; can be killed (-9) and started again."""

    def __init__(self, tmp_path, extra_args: tuple[str, ...] = ()):
        self.extra_args = list(extra_args)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = tmp_path / "workspace"
        self.env = {**os.environ, "TEXTLAB_HOME": str(self.home), "HF_HUB_OFFLINE": "1"}
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ui.launch", "app", "--port", str(self.port), "--address", "127.0.0.1",
             *self.extra_args],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/_stcore/health", timeout=1)
                return
            except OSError:
                time.sleep(0.3)
        self.proc.kill()
        pytest.fail("textlab app did not start: " + self.proc.stdout.read().decode(errors="replace")[-2000:])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def require_chromium() -> None:
    """Skip without Debian's Chromium, except under CI, where .ci/run installs it."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("needs Debian's chromium (apt-get install chromium chromium-driver)")


@pytest.fixture
def server(tmp_path):
    require_chromium()
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def _wait_for_run(home, task: str, statuses: tuple[str, ...], timeout: float):
    """The newest run of a task once it has one of these statuses (read from the workspace)."""
    from analysis.workspace import Workspace

    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = [r for r in Workspace(home).runs_with_status(*statuses) if r.task == task]
        if runs:
            return runs[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {task} run became {statuses} within {timeout} s")


@pytest.mark.timeout(2400)  # one long walk through every analysis; each step has its own wait below
def test_sample_data_to_chart_to_csv_export(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        # Charts render a moment after the numbers; on a loaded 2-core CI machine that can take
        # longer than Playwright's 5 s default for expect().
        expect.set_options(timeout=60_000)
        page.goto(server.url)
        try:
            _walk(page, expect, server, tmp_path)
        except Exception:  # what the page showed, for the report
            os.makedirs(ROOT / "tests" / "_artifacts", exist_ok=True)
            page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    _check_export(tmp_path / "export.csv")


def _walk(page, expect, server, tmp_path) -> None:
    from analysis.workspace import Workspace


    # Data: load the sample and see the preview.
    page.get_by_role("tab", name="Sample data").click()
    page.get_by_role("button", name="Load sample data").click()
    expect(page.get_by_text("Loaded the sample data")).to_be_visible()
    expect(page.get_by_text("Open project: Policy survey (sample)")).to_be_visible()
    expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible()

    # Text statistics: run the job and see a chart.
    page.get_by_role("link", name="Text statistics").click()
    page.get_by_role("button", name="Run text statistics").click()
    expect(page.get_by_text("Median tokens")).to_be_visible(timeout=300_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    # F5 keeps the page and the open project (both are in the URL).
    assert "project=" in page.url
    page.reload()
    expect(page.get_by_text("Median tokens")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("No project is open")).to_have_count(0)
    os.makedirs(ROOT / "tests" / "_artifacts", exist_ok=True)
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "stats.png"), full_page=False)

    # Sentiment (auto: VADER here, as no transformer model is downloaded): run and see charts.
    page.get_by_role("link", name="Sentiment").click()
    page.get_by_role("button", name="Run sentiment").click()
    expect(page.get_by_text("Mean score")).to_be_visible(timeout=300_000)
    expect(page.get_by_text("Mean sentiment by region")).to_be_visible()
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "sentiment.png"), full_page=True)

    # Codebook coding: the sample codebook is loaded with the sample data; code zero-shot
    # (offline here), then check the codes against the two human coders.
    page.get_by_role("link", name="Codebook coding").click()
    expect(page.get_by_text("5 codes · version")).to_be_visible()
    page.get_by_role("button", name="Run coding").click()
    # The server dies mid-run (kill -9) and is started again: the run resumes by itself,
    # before anyone opens a page, and the reloaded page shows its result.
    running = _wait_for_run(server.home, "coding", ("running",), 120)
    server.kill()
    assert Workspace(server.home).run(running.id).status == "running"
    server.start()
    _wait_for_run(server.home, "coding", ("done",), 600)
    page.reload()
    expect(page.get_by_text("Share of texts per code")).to_be_visible(timeout=120_000)
    # Explore shows the codes by default (the newest run's label column).
    page.get_by_role("link", name="Explore").click()
    expect(page.get_by_role("combobox", name="Result")).to_match_aria_snapshot(
        '- combobox "Result": "Codebook coding: Code"')
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    page.get_by_role("link", name="Validate").click()
    expect(page.get_by_text("texts compared").first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="Per code")).to_be_visible()
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "validate.png"), full_page=False)
    # Hand-code a small simple random sample (the default design), then see corrected shares by region.
    page.get_by_role("tab", name="Hand-code a sample").click()
    coder = page.get_by_role("textbox", name="Coder name")
    coder.fill("Browser")
    coder.press("Enter")
    size = page.get_by_role("spinbutton", name="Sample size")
    size.fill("4")
    size.press("Enter")
    page.get_by_role("button", name="Draw sample").click()
    expect(page.get_by_text("Current sample: simple random")).to_be_visible()
    for done in range(4):
        expect(page.get_by_text(f"Text {done + 1} of 4")).to_be_visible()
        page.get_by_role("combobox", name="Code", exact=True).click()
        page.get_by_role("option", name="Housing" if done % 2 else "Health care").click()
        page.get_by_role("button", name="Save and next").click()
    expect(page.get_by_text("End of the sample")).to_be_visible()
    page.get_by_role("tab", name="Corrected estimates").click()
    expect(page.get_by_text("Hand codes from the recorded simple random sample").first).to_be_visible()
    expect(page.get_by_text("4 texts drawn, 4 hand-coded")).to_be_visible()  # the new coder joins the selection
    expect(page.get_by_text("Model-only vs corrected estimates").first).to_be_visible()
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "estimates.png"), full_page=True)

    # Topics: five topics (KMeans), then the document map.
    page.get_by_role("link", name="Topics").click()
    number = page.get_by_role("spinbutton", name="Number of topics (0 = find automatically)")
    number.fill("5")
    number.press("Enter")
    page.get_by_role("button", name="Find topics").click()
    expect(page.get_by_role("tab", name="Document map")).to_be_visible(timeout=600_000)
    page.get_by_role("tab", name="Document map").click()
    expect(page.get_by_text("Document map (UMAP of the embeddings")).to_be_visible()
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "topics.png"), full_page=False)

    # Summaries: a group summary with its sources (no per-text run needed).
    page.get_by_role("link", name="Summaries").click()
    page.get_by_role("button", name="Summarise groups").click()
    expect(page.get_by_text("Representative sentences")).to_be_visible(timeout=600_000)
    expect(page.get_by_text("characters").first).to_be_visible()

    # Export: download the CSV and check its rows.
    page.get_by_role("link", name="Export").click()
    expect(page.get_by_role("heading", name="Export")).to_be_visible()
    with page.expect_download() as info:
        # The data file's button (not the previous page's, which may linger during the switch).
        page.get_by_role("button", name=re.compile(r"^Download .+\.csv$")).click()
    target = tmp_path / "export.csv"
    info.value.save_as(target)


def _browser(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )


@pytest.mark.timeout(900)
def test_coding_a_few_texts_with_a_generative_model(server, tmp_path):
    """The Language model section of the sidebar (a local model folder: the tiny chat model of
    tests/tiny_models.py), backend "Generative language model" on the Coding page, one text in
    "What the model sees", then a run on a dozen texts of the sample and its results."""
    from playwright.sync_api import expect, sync_playwright

    from analysis.corpus import build_corpus
    from analysis.workspace import Workspace
    from tests.tiny_models import make_tiny_causal_lm

    model = make_tiny_causal_lm(tmp_path / "tiny-chat")
    frame = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False).head(12)
    corpus = build_corpus(frame, "text", id_column="respondent_id", group_column="region", date_column="date",
                          source=str(SAMPLE_CSV))  # the sample's codebook opens with it
    project = Workspace(server.home).create_project("Sample, 12 texts", corpus)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        page.goto(f"{server.url}/coding?project={project.id}")
        try:
            _code_with_a_language_model(page, expect, model)
        except Exception:
            os.makedirs(ROOT / "tests" / "_artifacts", exist_ok=True)
            page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "llm_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    (run,) = Workspace(server.home).project(project.id).runs("coding")
    assert run.status == "done" and run.config["backend"] == "llm" and run.config["model"] == str(model)


def _code_with_a_language_model(page, expect, model) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    expect(page.get_by_text("12 codes").or_(page.get_by_text("5 codes · version"))).to_be_visible()
    # The sidebar: a local model folder.
    sidebar.get_by_text("Language model", exact=True).click()
    sidebar.get_by_text("A local model folder or .gguf file").click()
    folder = sidebar.get_by_label("Model folder or .gguf file", exact=True)
    folder.fill(str(model))
    folder.press("Enter")
    expect(sidebar.get_by_text("Runs in this process")).to_be_visible()
    # The Coding page: backend "Generative language model", one text seen by the model.
    page.get_by_text("Generative language model", exact=True).click()
    expect(page.get_by_text("Explain each answer")).to_be_visible()
    expect(page.get_by_text("tiny-chat").first).to_be_visible()
    page.get_by_text("What the model sees", exact=True).click()
    page.get_by_role("button", name="Ask the model about this text").click()
    expect(page.get_by_text("Raw answer tokens")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("The code read from it")).to_be_visible()
    # The prompt-stability check, run with the coding job (the default sample: all 12 texts).
    page.get_by_text("Prompt stability check", exact=True).click()
    page.get_by_text("Check prompt stability after coding", exact=True).click()
    expect(page.get_by_text("more answers (the run's own answers come from the cache)")).to_be_visible()
    # The run and its results.
    page.get_by_role("button", name="Run coding").click()
    expect(page.get_by_text("Share of texts per code")).to_be_visible(timeout=300_000)
    expect(page.get_by_text("12 texts coded")).to_be_visible()
    expect(page.get_by_role("heading", name="Prompt stability")).to_be_visible()
    expect(page.get_by_text("paraphrased instructions (temperature 0)").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"over 3 runs of 12 texts"))).to_be_visible()
    os.makedirs(ROOT / "tests" / "_artifacts", exist_ok=True)
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "coding_llm.png"), full_page=True)
    page.get_by_role("heading", name="Prompt stability").scroll_into_view_if_needed()
    page.screenshot(path=str(ROOT / "tests" / "_artifacts" / "coding_llm_stability.png"))


def _check_export(target) -> None:
    exported = pd.read_csv(target, dtype=str, keep_default_na=False)
    sample = pd.read_csv(SAMPLE_CSV, dtype=str, keep_default_na=False)
    assert len(exported) == len(sample)
    assert exported["respondent_id"].tolist() == sample["respondent_id"].tolist()
    assert {"stats_words", "stats_language", "doc_id", "sentiment_label", "sentiment_score",
            "code_label", "code_housing", "topic_id", "topic_label", "topic_prob"} <= set(exported.columns)
