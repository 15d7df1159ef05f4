"""Load a page in headless Chromium and report what a reader would meet: console errors, charts, and
labels drawn over each other or cut off by their chart's edge.

Chromium is driven through the DevTools protocol over a minimal WebSocket client (standard library
only): console messages, uncaught exceptions and failed loads arrive as events, and a script run in
the page measures every SVG label with its transform applied (rotated labels included).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)

# Runs in the page: every label's four corners on screen, per chart, then the pairs that overlap
# (separating-axis test on the oriented boxes) and the labels that reach outside their chart.
_MEASURE = r"""
(() => {
  const corners = (el) => {
    const b = el.getBBox(), m = el.getScreenCTM();
    return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
      .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  };
  const axes = (q) => [0, 1].map(i => {
    const [x1, y1] = q[i], [x2, y2] = q[i + 1]; const l = Math.hypot(x2 - x1, y2 - y1) || 1;
    return [-(y2 - y1) / l, (x2 - x1) / l];
  });
  const span = (q, [ax, ay]) => { const p = q.map(([x, y]) => x * ax + y * ay);
    return [Math.min(...p), Math.max(...p)]; };
  const overlap = (a, b) => [...axes(a), ...axes(b)].every(axis => {
    const [a0, a1] = span(a, axis), [b0, b1] = span(b, axis);
    return Math.min(a1, b1) - Math.max(a0, b0) > 0.5;
  });
  const charts = [...document.querySelectorAll('svg.chart')];
  const out = {charts: charts.length, empty: [], overlaps: [], clipped: [], texts: 0};
  charts.forEach((svg, i) => {
    const r = svg.getBoundingClientRect();
    const marks = svg.querySelectorAll('polyline, polygon, rect, circle, line, path').length;
    if (r.width < 10 || r.height < 10 || marks === 0) out.empty.push(i);
    const texts = [...svg.querySelectorAll('text')]
      .filter(t => t.textContent.trim() && t.getBBox().width > 0);
    out.texts += texts.length;
    const boxes = texts.map(corners);
    boxes.forEach((q, j) => {
      if (q.some(([x, y]) => x < r.left - 0.5 || x > r.right + 0.5 || y < r.top - 0.5 || y > r.bottom + 0.5))
        out.clipped.push(`chart ${i}: "${texts[j].textContent}"`);
      for (let k = j + 1; k < boxes.length; k++)
        if (overlap(q, boxes[k]))
          out.overlaps.push(`chart ${i}: "${texts[j].textContent}" / "${texts[k].textContent}"`);
    });
  });
  out.height = Math.ceil(document.documentElement.scrollHeight);
  return out;
})()
"""


def chromium() -> str:
    """The Chromium binary; under CI a missing browser fails the test instead of skipping it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "Chromium is not installed (make browser installs it: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class _WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: masked text frames out, frames in."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            data += chunk
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):  # ping / pong: not sent by DevTools in practice
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self) -> None:
        self.sock.close()


@dataclass
class PageCheck:
    url: str
    errors: list[str] = field(default_factory=list)
    charts: int = 0
    empty_charts: list[int] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    texts: int = 0
    screenshot: Path | None = None


class Browser:
    """One headless Chromium with a fresh profile; pages are loaded one after another in one tab."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="mlops-chromium-")
        self.proc = subprocess.Popen(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as resp:
            targets = json.loads(resp.read())
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = _WebSocket(page["webSocketDebuggerUrl"], timeout)
        self._id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.receive())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            if "method" in msg:
                self.events.append(msg)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {self.timeout} s")
            msg = json.loads(self.ws.receive())
            if "method" in msg:
                self.events.append(msg)

    def check(self, url: str, screenshot: Path | None = None, width: int = 1200) -> PageCheck:
        """Load `url`, collect every console error, measure the charts, optionally screenshot the page."""
        self.events.clear()
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})
        self._wait_for("Page.loadEventFired")
        result = self.call("Runtime.evaluate", {"expression": _MEASURE, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"the measuring script failed: {result['exceptionDetails']}")
        measured = result["result"]["value"]
        check = PageCheck(
            url=url,
            errors=_errors(self.events),
            charts=measured["charts"],
            empty_charts=measured["empty"],
            overlaps=measured["overlaps"],
            clipped=measured["clipped"],
            texts=measured["texts"],
        )
        if screenshot is not None:
            height = min(int(measured["height"]), 16000)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            check.screenshot = screenshot
        return check

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among the DevTools events."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(
                "console: "
                + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            )
        elif e["method"] == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            described = details.get("exception", {}).get("description", "")
            out.append(f"exception: {details.get('text', '')} {described}".strip())
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return out
