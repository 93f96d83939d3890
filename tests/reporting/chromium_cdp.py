"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (no extra Python packages).

Chromium reads NUL-terminated JSON commands on fd 3 and writes answers and events on fd 4.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import time


class Chromium:
    """A headless Chromium driven through a pipe; ``events`` collects everything that is not an answer."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run"]

    def __init__(self, binary, user_dir):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        args = [binary, *self.FLAGS, f"--user-data-dir={user_dir}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}', *args],
                                     pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=30):
        deadline = time.time() + timeout
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


PAGE_FACTS = """JSON.stringify({
  images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  title: document.title
})"""


def inspect_page(binary: str, user_dir: str, url: str, width: int) -> dict:
    """Load ``url`` at a viewport ``width``; return what the page looks like and every problem it logged.

    problems: console calls, uncaught exceptions and log entries (failed loads) of level warning/error.
    requests: every URL the page asked for other than itself and data: URIs.
    """
    c = Chromium(binary, user_dir)
    try:
        target = c.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = c.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            c.send(m, session=s)
        c.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                      "mobile": width < 600}, session=s)
        c.send("Page.navigate", {"url": url}, session=s)
        c.wait_event("Page.loadEventFired")
        res = c.send("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True}, session=s)
        facts = json.loads(res["result"]["value"])
        problems, requests = [], []
        for e in c.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                problems.append(p["exceptionDetails"].get("text", "exception"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                problems.append(" ".join(str(a.get("value")) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                problems.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.requestWillBeSent":
                u = p["request"]["url"]
                if not u.startswith("data:") and u != url:
                    requests.append(u)
        facts.update(problems=problems, requests=requests)
        return facts
    finally:
        c.close()
