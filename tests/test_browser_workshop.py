"""Workshop mode in a real browser: `textlab app --workshop` and two browser contexts (two
participants' browsers). Ana joins and loads the sample; Ben joins in his own browser and tries
Ana's project by its URL on every page: refused. A reload of Ana's tab comes back to her
workspace (the signed cookie), and the facilitator page lists both."""

import os
import re

import pytest

from tests.paths import ROOT
from tests.test_browser import Server, _browser, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
JOIN, FACILITATOR = "room-42", "lead-7777"


@pytest.fixture
def workshop_server(tmp_path):
    require_chromium()
    server = Server(tmp_path, ("--workshop", "--join-code", JOIN, "--facilitator-code", FACILITATOR))
    server.start()
    yield server.url, server.home
    server.stop()


def _join(page, expect, url: str, name: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Join the workshop")).to_be_visible()
    page.get_by_role("textbox", name="Join code").fill(JOIN)
    page.get_by_role("textbox", name="Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_text(f"you are {name}")).to_be_visible()


@pytest.mark.timeout(600)
def test_two_participants_in_two_browsers_cannot_reach_each_others_projects(workshop_server):
    from playwright.sync_api import expect, sync_playwright

    from analysis.workshop import Workshop
    from analysis.workspace import Workspace

    url, home = workshop_server
    artifacts = ROOT / "tests" / "_artifacts"
    os.makedirs(artifacts, exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        expect.set_options(timeout=60_000)
        ana_context, ben_context = browser.new_context(), browser.new_context()  # two browsers' cookie jars
        ana, ben = ana_context.new_page(), ben_context.new_page()
        for page in (ana, ben):
            page.set_default_timeout(60_000)
            page.set_viewport_size({"width": 1400, "height": 1000})
        try:
            _join(ana, expect, url, "Ana")
            ana.get_by_role("tab", name="Sample data").click()
            ana.get_by_role("button", name="Load sample data").click()
            expect(ana.get_by_text("Loaded the sample data")).to_be_visible()
            expect(ana).to_have_url(re.compile(r"project="))
            ana_project = ana.url.split("project=")[1].split("&")[0]
            ana.screenshot(path=str(artifacts / "workshop_ana.png"), full_page=True)
            # The cookie the page wrote brings Ana back after a reload.
            assert any(c["name"] == "textlab_participant" for c in ana_context.cookies())
            ana.reload()
            expect(ana.get_by_text("you are Ana")).to_be_visible()
            expect(ana.get_by_test_id("stSidebar")).to_contain_text("467 rows")  # her project, still open

            _join(ben, expect, url, "Ben")
            for path in ("", "export", "validate", "coding"):
                ben.goto(f"{url}/{path}?project={ana_project}")
                expect(ben.get_by_text("you are Ben")).to_be_visible()
                if path:
                    expect(ben.get_by_text("No project is open")).to_be_visible()
                expect(ben.get_by_test_id("stSidebar")).to_contain_text("No project yet")
                expect(ben.get_by_test_id("stMain")).not_to_contain_text("Policy survey (sample)")
            ben.screenshot(path=str(artifacts / "workshop_ben.png"), full_page=True)
            # Without a cookie (a third browser) nothing of anyone's is shown.
            stranger = browser.new_context().new_page()
            stranger.goto(f"{url}/export?project={ana_project}")
            expect(stranger.get_by_role("heading", name="Join the workshop")).to_be_visible()
            expect(stranger.locator("body")).not_to_contain_text("Policy survey (sample)")

            # The teaching page cuts a text into tokens with two tokenizers.
            ana.goto(f"{url}/teaching?project={ana_project}")
            expect(ana.get_by_role("heading", name="How models read text")).to_be_visible()
            expect(ana.get_by_text("The same text, cut into tokens")).to_be_visible()
            expect(ana.get_by_text("What the model sees")).to_be_visible()
            ana.screenshot(path=str(artifacts / "teaching.png"), full_page=True)

            # The facilitator sees both participants.
            ana.goto(f"{url}/facilitator")
            ana.get_by_role("textbox", name="Facilitator code").fill(FACILITATOR)
            ana.get_by_role("button", name="Open the facilitator view").click()
            expect(ana.get_by_text("Participants").first).to_be_visible()
            expect(ana.get_by_text("Ben", exact=True).first).to_be_attached()  # the table is drawn on a canvas
            ana.screenshot(path=str(artifacts / "workshop_facilitator.png"), full_page=True)
        except Exception:
            for name, page in (("ana", ana), ("ben", ben)):
                page.screenshot(path=str(artifacts / f"workshop_failure_{name}.png"), full_page=True)
            raise
        finally:
            browser.close()
    workshop = Workshop(home)
    people = {p.name: p for p in workshop.participants()}
    assert set(people) == {"Ana", "Ben"}
    assert [i.id for i in Workspace(workshop.workspace_root(people["Ana"].id)).list_projects()] == [ana_project]
    assert Workspace(workshop.workspace_root(people["Ben"].id)).list_projects() == []
