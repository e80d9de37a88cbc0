"""A Streamlit session driven over its websocket, for load tests: one object per participant.

Why not 30 browsers: on a 2-core machine, 30 headless Chromium tabs took 1.6 of the 2 cores
(measured), so the server had a third of a core and the test measured the browsers. This
client speaks the browser's protocol (protobuf BackMsg/ForwardMsg on ``/_stcore/stream``,
with the XSRF cookie and token a browser sends) and does what the page does for the server:
a full rerun per click or page switch, with every widget's value, and a fragment rerun each
time the server asks for one (``auto_rerun``: the progress bar polling once a second). It
renders nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

_COOKIE_SCRIPT = re.compile(r"textlab_participant=([0-9a-f]{16}\.[0-9a-f]{64})")


@dataclass
class Widget:
    id: str
    kind: str
    label: str
    default: object = None


@dataclass
class Screen:
    """What the last run put on the page: texts, widgets, errors."""

    texts: list[str] = field(default_factory=list)
    widgets: dict[str, Widget] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def has(self, text: str) -> bool:
        return any(text in t for t in self.texts)

    def widget(self, kind: str, label: str) -> Widget:
        for w in self.widgets.values():
            if w.kind == kind and w.label == label:
                return w
        raise LookupError(f"no {kind} {label!r} on the page; labels: {[w.label for w in self.widgets.values()]}")


class Session:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.ws = None
        self.pages: dict[str, str] = {}  # url path -> page script hash
        self.page_hash = ""
        self.screen = Screen()
        self.values: dict[str, WidgetState] = {}  # widget values set so far (sent with every rerun)
        self.fragments: dict[str, float] = {}  # fragment id -> rerun interval (s)
        self.runs = 0

    async def connect(self) -> None:
        def fetch():
            with urllib.request.urlopen(self.url + "/_stcore/health") as resp:  # sets the XSRF cookie, as for a browser
                return resp.headers.get_all("Set-Cookie") or []
        for header in await asyncio.to_thread(fetch):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]
        await self._open()

    async def _open(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        xsrf = self.cookies.get("_streamlit_xsrf", "")
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.ws = await websockets.connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit", xsrf],
            additional_headers={"Cookie": cookie, "Origin": self.url}, max_size=2**26, open_timeout=120,
            ping_timeout=None)

    async def reconnect(self) -> None:
        """A reload: a new session with the cookies the page wrote (the participant's token)."""
        self.values, self.fragments = {}, {}
        await self._open()

    async def rerun(self, *, triggers: tuple[str, ...] = (), fragment: str | None = None, timeout: float = 600) -> Screen:
        msg = BackMsg()
        state = msg.rerun_script
        state.page_script_hash = self.page_hash
        for wid, value in self.values.items():
            state.widget_states.widgets.append(value)
        for wid in triggers:
            state.widget_states.widgets.add(id=wid, trigger_value=True)
        if fragment:
            state.fragment_id = fragment
            state.is_auto_rerun = True
        await self.ws.send(msg.SerializeToString())
        screen = Screen() if fragment is None else self.screen
        if fragment is None:
            self.fragments = {}
        deadline = time.monotonic() + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(1.0, deadline - time.monotonic()))
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "delta":
                self._read_delta(fwd.delta, screen)
            elif kind == "navigation":
                for page in fwd.navigation.app_pages:
                    self.pages[page.url_pathname] = page.page_script_hash
                self.page_hash = fwd.navigation.page_script_hash or self.page_hash
            elif kind == "auto_rerun":
                self.fragments[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
            elif kind == "script_finished":
                self.runs += 1
                if fwd.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    break
                # The run stopped for another (a fragment's st.rerun, a button's): that one follows,
                # and only the fragments it registers poll from then on.
                screen, self.fragments = Screen(), {}
        self.screen = screen
        return screen

    def _read_delta(self, delta, screen: Screen) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        proto = getattr(element, kind)
        for attr in ("body", "label", "text", "message"):
            value = getattr(proto, attr, None)
            if isinstance(value, str) and value:
                screen.texts.append(value)
        if kind == "html":
            found = _COOKIE_SCRIPT.search(proto.body)
            if found:  # what the page's one-line script does in a browser
                self.cookies["textlab_participant"] = found.group(1)
        if kind == "alert" and proto.format == proto.ERROR:
            screen.errors.append(proto.body)
        if kind == "exception":
            screen.errors.append(f"{proto.type}: {proto.message}")
        if getattr(proto, "id", "") and kind in ("button", "text_input", "text_area", "selectbox", "radio",
                                                  "checkbox", "number_input", "page_link", "download_button"):
            screen.widgets[proto.id] = Widget(proto.id, kind, getattr(proto, "label", ""))

    # -- what a participant does -----------------------------------------------------------

    def type(self, label: str, text: str) -> None:
        widget = self.screen.widget("text_input", label)
        self.values[widget.id] = WidgetState(id=widget.id, string_value=text)

    async def click(self, label: str, timeout: float = 600) -> Screen:
        return await self.rerun(triggers=(self.screen.widget("button", label).id,), timeout=timeout)

    async def goto(self, url_path: str, timeout: float = 600) -> Screen:
        self.page_hash = self.pages[url_path]
        self.values, self.fragments = {}, {}
        return await self.rerun(timeout=timeout)

    async def wait_for(self, text: str, timeout: float) -> Screen:
        """Let the page poll until ``text`` shows up: the progress fragment's reruns, at the interval
        the server asks for, as the browser sends them (the fragment reruns the whole page when the
        run ends, and that page has the results)."""
        deadline = time.monotonic() + timeout
        while not self.screen.has(text):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} did not appear within {timeout:.0f} s")
            if self.fragments:
                fragment, interval = next(iter(self.fragments.items()))
                await asyncio.sleep(interval or 1.0)
                await self.rerun(fragment=fragment)
            else:
                await asyncio.sleep(1.0)
                await self.rerun()
        return self.screen

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
