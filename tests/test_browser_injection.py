"""Real browser: hostile names load nothing and link nowhere (issue 11, finding 1).

A project whose name, file name, columns, groups and codes are markdown images and links is
opened in Chromium on the pages that show them; no <img>/<a> may point at the listener's address
and the browser may not request it.
"""

import os
import shutil
import time

import pandas as pd
import pytest

from tests.test_browser import Server, require_chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.slow]

TARGET = "127.0.0.1:8599"
HOSTILE = f"![pn](http://{TARGET}/p.png) [x](http://{TARGET}/l)"
PAGES = ["Export", "Codebook coding", "Validate", "Explore", "Text statistics"]  # after Data, the start page


def _hostile_workspace(home) -> str:
    from analysis.corpus import build_corpus
    from analysis.workspace import Workspace

    n = 24
    text, group, date, code = (f"![t](http://{TARGET}/t.png) text", f":red[g] [g](http://{TARGET}/g)",
                               "**when** :material/home:", f"human_code ![c](http://{TARGET}/c.png)")
    table = pd.DataFrame({
        text: [f"Text {i} about rents and buses ![i](http://{TARGET}/i.png)" for i in range(n)],
        group: [[f"![v](http://{TARGET}/v.png)", f":smile: [w](http://{TARGET}/w)"][i % 2] for i in range(n)],
        date: [f"2021-03-{i % 28 + 1:02d}" for i in range(n)],
        code: [[f"![k](http://{TARGET}/k.png)", "Plain"][i % 2] for i in range(n)],
    })
    corpus = build_corpus(table, text, group_column=group, date_column=date, source=HOSTILE + ".csv")
    project = Workspace(home).create_project(HOSTILE, corpus)
    project.save_annotations(f"![cn](http://{TARGET}/cn.png)", {project.corpus().data["doc_id"][0]: "Plain"})
    project.save_settings("coding", {"method": "few-shot", "labels_column": code, "codebook": {
        "name": HOSTILE, "codes": [{"label": f"![k](http://{TARGET}/k.png)", "definition": "a"},
                                   {"label": "Plain", "definition": "b"}]}})
    return project.id


@pytest.fixture
def server(tmp_path):
    require_chromium()
    srv = Server(tmp_path)
    srv.project_id = _hostile_workspace(srv.home)  # before the start: the app finds it on disk
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.timeout(300)
def test_hostile_names_create_no_image_or_link(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url) if TARGET in request.url else None)
        hostile = f"img[src*='{TARGET}'], a[href*='{TARGET}']"
        try:
            page.goto(f"{server.url}/?project={server.project_id}")
            heading = page.get_by_text("Open project:")
            expect(heading).to_be_visible()
            # The name as written (word joiners aside: invisible), not as an image and a link.
            assert HOSTILE in heading.inner_text().replace("\u2060", "")
            page.get_by_role("tab", name="Projects").click()
            page.get_by_role("button", name="Delete").click()
            expect(page.get_by_text("and all its results?")).to_be_visible()
            assert page.locator(hostile).count() == 0
            for title in PAGES:
                page.get_by_role("link", name=title).first.click()
                expect(page.locator("[data-testid='stMainBlockContainer'] h1").first).to_have_text(title)
                time.sleep(1.0)  # the page's last elements (labels, captions) render after its title
                if title == "Codebook coding":
                    page.get_by_text("Few-shot (learn from coded rows)").click()
                    expect(page.get_by_text("coded rows:")).to_be_visible()
                assert page.locator(hostile).count() == 0, title
        except Exception:
            os.makedirs("tests/_artifacts", exist_ok=True)
            page.screenshot(path="tests/_artifacts/injection_failure.png", full_page=True)
            raise
        finally:
            browser.close()
    assert requested == [], requested
