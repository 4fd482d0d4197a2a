"""A real browser on the running daemon's page: Debian's chromium, headless, driven by
Playwright (its own browser download cannot work here, so it is pointed at
/usr/bin/chromium)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess, until
from tests.web.live import EVIL, alerts, start_demo
from ttamond.control import request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[DaemonProcess, str]]:
    daemon, url = start_demo(tmp_path)
    try:
        yield daemon, url
    finally:
        daemon.close()


def test_the_page_renders_charts_escapes_text_and_acknowledges(
        demo: tuple[DaemonProcess, str], tmp_path: Path) -> None:
    daemon, url = demo
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            dialogs: list[str] = []

            def dialog_opened(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dialog_opened)
            failures: list[str] = []
            page.on("console", lambda message: failures.append(message.text)
                    if message.type == "error" else None)
            page.goto(f"{url}/")
            # Progressive loading: the shell is there at once, each panel fills itself in.
            # (Selectors rather than wait_for_function: the page's policy forbids eval.)
            page.wait_for_selector("[aria-busy=true]", state="detached", timeout=15_000)
            assert page.locator("section#host svg.chart path.line").count() >= 2
            assert "StoryError: <script>window.hacked" in page.locator("section#errors").inner_text()
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

            # The error's message is shown as text on its page, never run.
            page.locator("section#errors a", has_text="<script>").first.click()
            page.wait_for_selector("section#error pre")
            assert EVIL.split("<")[1] in page.locator("section#error pre").inner_text()
            assert page.evaluate("window.hacked") is None and dialogs == []
            page.locator("section#error button:has-text('Resolve')").click()
            page.wait_for_selector("section#error .badge.ok")
            (group,) = request(daemon.socket_path, "errors_list", {})
            assert group["state"] == "resolved"

            # Acknowledging from the page reaches the escalator.
            page.goto(f"{url}/alerts")
            page.wait_for_selector("section#alerts button:has-text('Acknowledge')")
            page.locator("section#alerts button:has-text('Acknowledge')").first.click()
            page.wait_for_load_state()
            acknowledged = until(lambda: [a for a in alerts(daemon, "firing")
                                          if a["acknowledged_by"] == "web"],
                                 "the alert to be acknowledged")
            assert acknowledged[0]["alertname"] == "MemoryInUse"
            page.wait_for_selector("[aria-busy=true]", state="detached")
            assert "acknowledged by web" in page.locator("section#alerts").inner_text()
            page.screenshot(path=str(tmp_path / "alerts.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    # Content-Security-Policy violations and failed loads show up as console errors.
    assert failures == [], failures
