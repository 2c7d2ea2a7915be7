"""The report in a real browser: headless Chromium renders it with no console error and no request.

Chromium is driven through its DevTools protocol over a pipe (``--remote-debugging-pipe``), so the
test needs nothing but the Debian ``chromium`` package (installed by .ci/run): no driver, no
browser download, no port. A screenshot (PNG) and a PDF print of the report are saved as test
artifacts in ``reports/test-artifacts/`` (or ``$BIAS_AUDIT_ARTIFACTS``). The test is skipped, with
the reason, only where no Chromium is installed.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from audit import write_report

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
PAYLOAD = "<script>alert(1)</script>"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
TILE, MAX_TILES = 3000, 30  # full-page screenshot tiles (px), at most this many
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--window-size=1280,900",
    "--remote-debugging-pipe",
)


def _chromium() -> str | None:
    found = os.environ.get("BIAS_AUDIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found or next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium; or set BIAS_AUDIT_CHROMIUM)"
)


def artifacts_dir() -> Path:
    out = Path(os.environ.get("BIAS_AUDIT_ARTIFACTS", ROOT / "reports" / "test-artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    return out


class Chromium:
    """A headless Chromium with one page, spoken to over the DevTools pipe (fd 3 in, fd 4 out)."""

    def __init__(self, executable: str, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        command = " ".join(  # bash, not sh: dash cannot redirect from fds above 9
            [f"exec '{executable}'", *FLAGS, f"'--user-data-dir={profile}'", "about:blank",
             f"3<&{to_browser_r}", f"4>&{from_browser_w}"]
        )
        self.proc = subprocess.Popen(["bash", "-c", command], pass_fds=(to_browser_r, from_browser_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                stderr = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"Chromium closed the DevTools pipe: {stderr[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == "Page.javascriptDialogOpening":  # an alert() would block the page: dismiss it
                self.send("Page.handleJavaScriptDialog", {"accept": True})
            if event.get("method") == method:
                return event

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds`` (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass

    def open_page(self) -> None:
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:  # noqa: BLE001 - already gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def load_in_chromium(html_path: Path, screenshot: Path | None = None, pdf: Path | None = None,
                     print_screenshot: Path | None = None) -> dict:
    """Open ``html_path``; return what the page did: console errors, requests, dialogs, and some DOM facts."""
    with tempfile.TemporaryDirectory(prefix="bias-audit-chromium-") as profile:
        browser = Chromium(CHROMIUM, Path(profile))
        try:
            browser.open_page()
            url = html_path.resolve().as_uri()
            browser.send("Page.navigate", {"url": url})
            browser.wait_for("Page.loadEventFired")
            browser.drain(1.0)
            facts = browser.evaluate(
                "JSON.stringify({scripts: document.scripts.length, title: document.title,"
                " charts: document.querySelectorAll('svg.chart').length,"
                " chartsWithTitle: document.querySelectorAll('svg.chart > title').length,"
                " height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth,"
                " text: document.body.innerText})"
            )
            if screenshot is not None:  # the first screen, then the whole page in tiles
                height = json.loads(facts)["height"]
                for k, top in enumerate([0, *range(0, min(height, TILE * MAX_TILES), TILE)]):
                    clip = {"x": 0, "y": top, "width": 1280, "height": 900 if k == 0 else min(TILE, height - top), "scale": 1}
                    shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
                    path = screenshot if k == 0 else screenshot.with_name(f"{screenshot.stem}-page{k:02d}.png")
                    path.write_bytes(base64.b64decode(shot["data"]))
            if screenshot is not None:  # a drill-down table, opened as a reader would
                box = json.loads(browser.evaluate(
                    "(() => { const d = document.querySelector('details.drill'); if (!d) return 'null'; d.open = true;"
                    " const r = d.getBoundingClientRect();"
                    " return JSON.stringify({y: r.top + window.scrollY, h: r.height}); })()"))
                if box:
                    clip = {"x": 0, "y": box["y"] - 10, "width": 1280, "height": min(box["h"] + 20, 1400), "scale": 1}
                    shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
                    screenshot.with_name(f"{screenshot.stem}-items.png").write_bytes(base64.b64decode(shot["data"]))
            if print_screenshot is not None:  # what the print styles do, as one image of the first pages
                browser.send("Emulation.setEmulatedMedia", {"media": "print"})
                shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                               "clip": {"x": 0, "y": 0, "width": 1280, "height": 6000, "scale": 1}})
                print_screenshot.write_bytes(base64.b64decode(shot["data"]))
                browser.send("Emulation.setEmulatedMedia", {"media": ""})
            if pdf is not None:
                printed = browser.send("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True})
                pdf.write_bytes(base64.b64decode(printed["data"]))
            browser.drain(0.5)
        finally:
            browser.close()
    events = browser.events
    console_errors = [
        " ".join(str(a.get("value", a.get("description", ""))) for a in e["params"].get("args", []))
        for e in events if e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert")
    ]
    console_errors += [e["params"]["exceptionDetails"].get("text", "exception") for e in events
                       if e.get("method") == "Runtime.exceptionThrown"]
    console_errors += [e["params"]["entry"].get("text", "") for e in events
                       if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"]
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    dialogs = [e["params"].get("message") for e in events if e.get("method") == "Page.javascriptDialogOpening"]
    return {"url": url, "console_errors": console_errors, "requests": requests, "dialogs": dialogs,
            "facts": json.loads(facts)}


def _assert_clean(result: dict) -> None:
    assert result["console_errors"] == [], result["console_errors"]
    others = [u for u in result["requests"] if u != result["url"]]
    assert others == [], f"the report made network requests: {others}"
    assert result["dialogs"] == []
    assert result["facts"]["scripts"] == 0


def test_report_renders_in_chromium_without_errors_or_requests():
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    out = artifacts_dir()
    html = write_report(results, out / "report-example.html")
    result = load_in_chromium(html, screenshot=out / "report-example.png", pdf=out / "report-example.pdf",
                              print_screenshot=out / "report-example-print.png")
    print(f"\nreport, screenshot and PDF saved in {out}")

    _assert_clean(result)
    facts = result["facts"]
    assert re.match(r"^(Gender )?[Bb]ias transfer audit: FAIL", facts["title"]), facts["title"]
    assert facts["charts"] >= 10 and facts["chartsWithTitle"] == facts["charts"]
    assert facts["width"] <= 1280, "the page scrolls sideways at 1280 px"
    assert "FAIL: 4 of 12 gates failed" in facts["text"]
    png = (out / "report-example.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    assert (out / "report-example.pdf").read_bytes()[:5] == b"%PDF-"


def test_script_payload_is_inert_in_chromium(tmp_path):
    """A script in a model name, condition, item and rationale shows as text and never runs."""
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    results = {**results, "models": [copy.deepcopy(results["models"][0])], "gates": copy.deepcopy(results["gates"][:2])}
    model = results["models"][0]
    model["name"] = PAYLOAD
    model["conditions"] = {"intrinsic": model["conditions"]["intrinsic"], PAYLOAD: model["conditions"]["zero_shot"]}
    model["transfer"] = {PAYLOAD: model["transfer"]["zero_shot"]}
    model["choices"] = {PAYLOAD: model["choices"]["zero_shot"][:20]}
    first = model["choices"][PAYLOAD][0]["item"]
    results["items"] = {**results["items"], first: {**results["items"][first], "sentence": PAYLOAD + " he did."}}
    results["gates"][0]["rationale"] = PAYLOAD
    results["provenance"] = {**results["provenance"], "config": {"note": PAYLOAD}}

    html = write_report(results, tmp_path / "payload.html")
    result = load_in_chromium(html)
    _assert_clean(result)
    assert PAYLOAD in result["facts"]["text"]  # shown to the reader as text


def test_the_check_sees_requests_and_console_errors(tmp_path):
    """Negative control: the same check catches a page that fetches something and logs an error."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><title>bad</title><img src="http://127.0.0.1:9/pixel.png" alt="">'
                   '<script>console.error("boom")</script>', encoding="utf-8")
    result = load_in_chromium(bad)
    assert "http://127.0.0.1:9/pixel.png" in result["requests"]
    assert "boom" in result["console_errors"]
    with pytest.raises(AssertionError):
        _assert_clean(result)
