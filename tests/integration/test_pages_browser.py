"""The smoke run's evaluation page and selection page in a real headless Chromium.

Chromium (Debian's ``chromium``, installed with apt-get when missing) is started by the test with
``--remote-debugging-port`` on 127.0.0.1 and driven over the DevTools protocol (aiohttp's
websocket client): every console message, uncaught exception, log entry and network request
is recorded. A page passes when nothing is logged as an error, nothing but file:// and data:
URLs is requested, every plot decodes (an img with a non-zero natural size) and the
highlighted spans are <mark> elements. One full-page screenshot per page goes to the test's
temporary folder (and to $REDSM5_SCREENSHOT_DIR when set). Chromium is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

aiohttp = pytest.importorskip("aiohttp")

PAGE_JS = """(() => ({
  title: document.title,
  imgs: [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})),
  marks: [...document.querySelectorAll('mark')].map(m => ({cls: m.className, title: m.title, text: m.textContent,
                                                            post: m.closest('.post') ? m.closest('.post')
                                                                  .querySelector('h3').textContent : null})),
  links: [...document.querySelectorAll('a')].map(a => ({href: a.getAttribute('href'), url: a.href})),
  symptomRows: document.querySelectorAll('tr.symptom').length,
  headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
  text: document.body.innerText,
  width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
}))()"""


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be (needs root and apt-get: apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    proc = subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode == 0:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"apt-get install chromium failed: {(proc.stderr or proc.stdout)[-600:]}")
    return found


class Browser:
    """Headless Chromium with a DevTools port on 127.0.0.1, in its own profile folder; stop() ends it by PID."""

    def __init__(self, binary: str, profile: Path):
        self.profile = profile
        profile.mkdir(parents=True, exist_ok=True)
        self.log = open(profile.parent / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise AssertionError(
                    f"chromium did not open its DevTools port: "
                    f"{(profile.parent / 'chromium.log').read_text(errors='replace')[-1500:]}"
                )
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its group: the renderer/zygote children it started
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.log.close()


class Session:
    """A DevTools session on one page target: commands, and the events seen while waiting for replies."""

    def __init__(self, ws):
        self.ws, self.n, self.events = ws, 0, []

    async def _next(self, timeout: float) -> dict:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"DevTools connection closed: {msg.type} {msg.data!r}")
        return json.loads(msg.data)

    async def send(self, method: str, timeout: float = 60, **params) -> dict:
        self.n += 1
        mid = self.n
        await self.ws.send_json({"id": mid, "method": method, "params": params})
        while True:
            msg = await self._next(timeout)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    async def wait_event(self, method: str, timeout: float = 60) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        end = time.monotonic() + timeout
        while True:
            msg = await self._next(max(0.1, end - time.monotonic()))
            if msg.get("method") == method:
                return msg
            self.events.append(msg)


def _problems(events: list[dict]) -> list[str]:
    """Console errors/warnings, uncaught exceptions and error log entries among DevTools events."""
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
            out.append(f"console.{p['type']}: {args}")
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"uncaught: {d.get('text')} {(d.get('exception') or {}).get('description', '')}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log {p['entry']['level']} ({p['entry'].get('source')}): {p['entry']['text']}")
    return out


async def _visit(port: int, path: Path, shot: Path) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = [t for t in await resp.json() if t.get("type") == "page"]
        async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            s = Session(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                await s.send(f"{domain}.enable")
            await s.send(
                "Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1, mobile=False
            )
            s.events.clear()
            await s.send("Page.navigate", url=path.resolve().as_uri())
            await s.wait_event("Page.loadEventFired")
            await asyncio.sleep(0.5)  # late console messages
            info = (await s.send("Runtime.evaluate", expression=PAGE_JS, returnByValue=True))["result"]["value"]
            size = (await s.send("Page.getLayoutMetrics"))["cssContentSize"]
            png = await s.send(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            shot.write_bytes(base64.b64decode(png["data"]))
            info["problems"] = _problems(s.events)
            info["requests"] = [
                e["params"]["request"]["url"] for e in s.events if e.get("method") == "Network.requestWillBeSent"
            ]
            return info


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = _chromium()
    b = Browser(binary, tmp_path_factory.mktemp("chromium") / "profile")
    yield b
    b.stop()
    assert b.proc.poll() is not None


def _visit_sync(browser, page: Path, shot: Path) -> dict:
    info = asyncio.run(_visit(browser.port, page, shot))
    keep = os.environ.get("REDSM5_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return info


def _one(paths):
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]


def test_the_console_watch_catches_errors(browser, tmp_path):
    """The checks below can fail: a page with a script error and a missing image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="missing.png"><script>console.error("boom");'
        "undefined_function();</script></body></html>"
    )
    info = _visit_sync(browser, bad, tmp_path / "bad.png")
    text = "\n".join(info["problems"])
    assert "console.error: boom" in text and "undefined_function" in text
    assert info["imgs"] == [{"alt": "", "complete": True, "w": 0, "h": 0}]


def test_evaluation_page_in_chromium(browser, smoke_run, tmp_path):
    final = Path(_one((smoke_run["dir"] / "results" / "final").glob("*/evaluation_report.html"))).parent
    report = json.loads((final / "evaluation_report.json").read_text())
    rows = {r["post_id"]: r for r in map(json.loads, (final / report["outputs"]["test_predictions"]).open())}
    info = _visit_sync(browser, final / report["outputs"]["evaluation_html"], tmp_path / "evaluation_report.png")
    assert info["problems"] == []
    assert all(u.startswith(("file://", "data:")) for u in info["requests"]), info["requests"]
    assert info["title"].startswith("Test evaluation:")
    assert info["symptomRows"] == 9
    plots = sorted(p.stem for p in (final / report["outputs"]["plots"]).glob("*.png"))
    assert len(info["imgs"]) == len(plots) == 5 and "reliability" in plots
    # issue 18: every test figure with its interval, the baselines on the same test posts, the paper's
    # definitions, calibration, and where the thresholds came from
    for heading in ("Model vs baseline (test split)", "As in the ReDSM5 paper (test split)", "Calibration"):
        assert any(h.startswith(heading) for h in info["headings"]), (heading, info["headings"])
    assert any(h.startswith("Thresholds:") for h in info["headings"]), info["headings"]
    macro = report["intervals"]["at_tuned_thresholds"]["macro_f1"]
    assert f"{macro['estimate']:.3f} [{macro['low']:.3f}, {macro['high']:.3f}]" in info["text"]
    assert "published, different split" in info["text"]
    assert all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in info["imgs"]), info["imgs"]
    gold = [m for m in info["marks"] if m["cls"] == "span-gold" and m["title"]]
    pred = [m for m in info["marks"] if m["cls"] == "span-pred" and m["title"]]
    assert gold, info["marks"]
    assert bool(pred) == bool(report["task"]["evidence_task"])  # the smoke model has no evidence head
    for m in gold:  # every gold mark is one of the post's gold spans (merged), named by its symptoms
        row = rows[m["post"].removeprefix("post ")]
        spans = {sp["text"] for s in m["title"].split(", ") for sp in row["gold_evidence"][s]}
        assert any(t in m["text"] for t in spans), (m, spans)
    # the page is no wider than the window (nothing overflows sideways)
    assert info["width"] <= 1200
    assert (tmp_path / "evaluation_report.png").stat().st_size > 50_000


def test_selection_page_in_chromium_links_to_the_evaluation_page(browser, smoke_run, tmp_path):
    page = Path(_one((smoke_run["dir"] / "results" / "selection").glob("*/selection_report.html")))
    info = _visit_sync(browser, page, tmp_path / "selection_report.png")
    assert info["problems"] == []
    assert all(u.startswith(("file://", "data:")) for u in info["requests"]), info["requests"]
    assert len(info["imgs"]) == 3 and all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in info["imgs"])
    assert sorted(p.name for p in (page.parent / "plots").glob("*.png")) == [
        "fold_scores.png",
        "optimisation_history.png",
        "score_vs_latency.png",
    ]
    (link,) = [a for a in info["links"] if a["href"].endswith("evaluation_report.html")]
    assert link["href"].startswith("../../final/")
    target = Path(link["url"].removeprefix("file://"))
    assert (
        target.is_file()
        and target == _one((smoke_run["dir"] / "results" / "final").glob("*/evaluation_report.html")).resolve()
    )
    assert info["width"] <= 1200


def test_uncertainty_blocks_of_the_crafted_reports_in_chromium(browser, tmp_path, monkeypatch):
    """The report_version 3 blocks (intervals, few-positive badges, thresholds chosen out-of-fold, baselines, the
    paper's definitions, calibration and its reliability plot; the selection page's t-intervals, comparisons and
    winner lead), rendered from the shipping unit tests' crafted reports (built with the real uncertainty
    functions), load cleanly, decode every plot and overflow nothing sideways. Needs no smoke run."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "unit" / "shipping"))
    import test_evaluation_page as crafted

    from workflow_lib.shipping.report_html import evaluation_page, selection_page

    rep = crafted.uncertainty_report(co_best=True)
    rows, texts = crafted._rows_of_arrays(rep)
    evaluation_page(rep, rows, texts).write(tmp_path / "evaluation_report.html", tmp_path / "plots")
    info = _visit_sync(browser, tmp_path / "evaluation_report.html", tmp_path / "evaluation_report_v3.png")
    assert info["problems"] == []
    assert all(u.startswith(("file://", "data:")) for u in info["requests"]), info["requests"]
    assert info["symptomRows"] == 9
    assert len(info["imgs"]) == 5 and all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in info["imgs"])
    assert "reliability diagrams" in {i["alt"] for i in info["imgs"]}
    assert (tmp_path / "plots" / "reliability.png").read_bytes().startswith(b"\x89PNG")
    assert info["width"] <= 1200  # the interval cells keep to one line without pushing a table past the window

    (tmp_path / "selection").mkdir()
    page = tmp_path / "selection" / "selection_report.html"
    selection_page(crafted._selection_report(), []).write(page, tmp_path / "selection" / "plots")
    info = _visit_sync(browser, page, tmp_path / "selection_report_v3.png")
    assert info["problems"] == []
    assert len(info["imgs"]) == 3 and all(i["complete"] and i["w"] > 100 and i["h"] > 100 for i in info["imgs"])
    assert info["width"] <= 1200
