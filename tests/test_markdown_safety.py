"""User strings are shown literally in Streamlit markdown (issue 11, finding 1).

A project, file, column, group, code, coder or topic name is data: no image, link, icon, colour,
emoji or formatting may come from it on any page. Unit tests of ``ui.widgets.literal`` and an
AppTest walk of every page with hostile names (the browser check is test_browser_injection.py).
"""

import re
import time

import pandas as pd
import pytest
from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

from analysis.corpus import build_corpus
from analysis.workspace import Workspace
from tests.paths import ROOT
from tests.test_pages import PAGES, wait_for_stats
from ui.widgets import literal

WJ = "\u2060"
ACTIVE = "\\`*_{}[]#+-.!|<>~$:/&=^"
HOSTILE = "![pn](http://127.0.0.1:8599/p.png) [x](http://127.0.0.1:8599/l)"


def unescaped(markdown: str) -> str:
    """What a reader sees: backslash escapes resolved, word joiners dropped."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WJ, "")


@pytest.mark.parametrize("char", list(ACTIVE))
def test_every_markdown_active_character_is_escaped(char):
    assert literal(f"a{char} b") == f"a\\{char} b"
    assert unescaped(literal(f"a{char}b")) == f"a{char}b"


@pytest.mark.parametrize("text", [
    "![pn](http://127.0.0.1:8599/p.png)", "[x](http://127.0.0.1:8599/l)", "<http://127.0.0.1:8599/a>",
    ":red[x]", ":material/home:", ":smile:", ":+1:", ":streamlit:", "**bold** _it_ `code` ~~del~~ $x^2$",
    "# heading", "- item", "1. item", "> quote", "a | b", "&lt;b&gt;", "http://127.0.0.1:8599/x www.example.com a@b.com",
    "a -> b <- c -- d",
])
def test_links_images_icons_colours_and_emoji_are_neutralised(text):
    out = literal(text)
    assert unescaped(out) == text  # shown as written
    # No markdown opener is left unescaped: every active character carries a backslash.
    assert not re.search(r"(?<!\\)[\[\]!`*_<>~$:&|#]", out.replace("\\\\", "")), out
    # Streamlit rewrites some patterns after the escapes are resolved: those are broken by a word joiner.
    plain = re.sub(r"\\(.)", r"\1", out)
    assert not re.search(r":[\w+\-/]|https?://|www\.|@\w|->|<-|--", plain), plain


def test_a_label_stays_one_line_and_a_multiline_text_keeps_its_lines():
    assert "\n" not in literal("a\nb\r\nc")
    assert unescaped(literal("a\nb")) == "a b"
    out = literal("one\n    four spaces\n# not a heading", multiline=True)
    assert out.split("  \n")[1].startswith("\u00a0" * 4)  # no indented code block
    assert unescaped(out).replace("\u00a0", " ").split("  \n") == ["one", "    four spaces", "# not a heading"]


def test_code_spans_hold_any_backticks():
    assert literal("a`b``c", code=True) == "```a`b``c```"
    assert literal("`x`", code=True) == "`` `x` ``"
    assert literal("col", code=True) == "`col`"
    assert ":material/" not in literal(":material/home:", code=True)  # Streamlit rewrites the source


# ---------------------------------------------------------------------- every page, hostile names

HOSTILE_COLUMNS = {"text": "![t](http://127.0.0.1:8599/t.png) text", "group": ":red[grp] [g](http://127.0.0.1:8599/g)",
                   "date": "**when** :material/home:", "code": "human_code ![c](http://127.0.0.1:8599/c.png)"}
HOSTILE_VALUES = ["![v](http://127.0.0.1:8599/v.png)", ":smile: [w](http://127.0.0.1:8599/w)"]
HOSTILE_CODES = ["![k](http://127.0.0.1:8599/k.png)", "Plain"]


def _hostile_project(home) -> str:
    n = 24
    table = pd.DataFrame({
        HOSTILE_COLUMNS["text"]: [f"Text {i} about rents and buses ![i](http://127.0.0.1:8599/i.png)" for i in range(n)],
        HOSTILE_COLUMNS["group"]: [HOSTILE_VALUES[i % 2] for i in range(n)],
        HOSTILE_COLUMNS["date"]: [f"2021-03-{i % 28 + 1:02d}" for i in range(n)],
        HOSTILE_COLUMNS["code"]: [HOSTILE_CODES[i % 2] for i in range(n)],
    })
    corpus = build_corpus(table, HOSTILE_COLUMNS["text"], group_column=HOSTILE_COLUMNS["group"],
                          date_column=HOSTILE_COLUMNS["date"], source=HOSTILE + ".csv")
    project = Workspace(home).create_project(HOSTILE, corpus)
    project.save_annotations("![cn](http://127.0.0.1:8599/cn.png)", {project.corpus().data["doc_id"][0]: HOSTILE_CODES[0]})
    codebook = {"name": HOSTILE, "codes": [{"label": c, "definition": "about " + c} for c in HOSTILE_CODES]}
    project.save_settings("coding", {"codebook": codebook, "method": "few-shot", "labels_column": HOSTILE_COLUMNS["code"]})
    return project.id


MARKDOWN_FIELDS = {"body", "label", "help", "text"}
PLAIN = {"Text", "Json", "CodeBlock", "Exception"}  # st.text, st.json, st.code: shown as they are
MARKDOWN_OPTIONS = {"Radio", "ButtonGroup"}  # radio, pills, segmented control options are markdown


def _strings(message, out: list[str]) -> None:
    kind = type(message).__name__
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE:
            for sub in [value] if isinstance(value, Message) else value:
                _strings(sub, out)
        elif field.type == field.TYPE_STRING and kind not in PLAIN and (
                field.name in MARKDOWN_FIELDS or (field.name == "options" and kind in MARKDOWN_OPTIONS)):
            out.extend([value] if isinstance(value, str) else value)


def _rendered_markdown(at: AppTest) -> list[str]:
    """Every markdown source on the page: bodies, labels and help texts of all elements and blocks."""
    out: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            _strings(node.proto, out)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


LINK_OR_IMAGE = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(|(?<![\\\u2060]):(?:red|material|smile)|https?://|(?<!\\)\*\*when")


CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def _assert_literal(sources: list[str], page: str) -> None:
    for source in sources:
        source = source.replace("\\\\", "")
        # Code spans show their content as it is, except Streamlit's rewrite of ":material/" in the source.
        assert not any(":material/" in m.group(2) for m in CODE_SPAN.finditer(source)), f"{page}: {source!r}"
        outside = CODE_SPAN.sub("", source)
        assert not LINK_OR_IMAGE.search(outside), f"{page}: markdown from user data in {source!r}"


@pytest.mark.timeout(900)
def test_every_page_shows_hostile_names_literally(home, monkeypatch):
    monkeypatch.setenv("TEXTLAB_DEBUG", "1")  # a page failure is a test failure, not a message
    project_id = _hostile_project(home)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["project"] = project_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    seen_name = False
    for page in PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        sources = _rendered_markdown(at)
        _assert_literal(sources, page)
        seen_name |= any(HOSTILE in unescaped(s) for s in sources)
    # The walk saw the names (escaped), so the check above looked at something.
    assert seen_name
    # With results (text statistics, few-shot codes learned from the hostile codes) every page again:
    # charts' captions, Explore's groups, Validate's comparison of codes and coders.
    at.switch_page("pages/stats.py")
    at.run()
    at.button(key="submit_stats").click().run()
    wait_for_stats(at)
    at.switch_page("pages/coding.py")
    at.run()
    at.radio(key="coding_method").set_value("few-shot").run()
    at.selectbox(key="coding_labels_col").set_value(HOSTILE_COLUMNS["code"]).run()
    at.button(key="submit_coding").click().run()
    deadline = time.time() + 240
    while "coding" not in Workspace(home).project(project_id).latest_runs() and time.time() < deadline:
        time.sleep(0.5)
    assert "coding" in Workspace(home).project(project_id).latest_runs(), [e.value for e in at.error]
    for page in PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        _assert_literal(_rendered_markdown(at), page + " (with results)")
    # Data page: the projects list, the delete confirmation.
    at.switch_page("pages/data.py")
    at.run()
    at.button(key=f"delete_{project_id}").click().run()
    sources = _rendered_markdown(at)
    _assert_literal(sources, "pages/data.py (delete)")
    assert any(f"Delete '{HOSTILE}'" in unescaped(s) for s in sources)
    # Coding page: the few-shot caption with the human codes.
    at.switch_page("pages/coding.py")
    at.run()
    at.radio(key="coding_method").set_value("few-shot").run()
    at.selectbox(key="coding_labels_col").set_value(HOSTILE_COLUMNS["code"]).run()
    assert any(HOSTILE_CODES[0] in unescaped(str(c.value)) for c in at.caption), [c.value for c in at.caption]
    _assert_literal(_rendered_markdown(at), "pages/coding.py")
