"""The browser harness itself, on a page of its own under the console's kind of CSP (``script-src 'self'``):
the CSP is enforced and its violation reported as an error, an uncaught exception is reported, and the
vendored axe-core still runs (WebDriver's script injection is not subject to the page's CSP) and reports."""

from __future__ import annotations

import functools
import http.server
import threading
from typing import TYPE_CHECKING, Any

import pytest
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.axe import AXE_VERSION, assert_accessible, axe_violations
from tests.browser.support import WAIT_SECONDS, browser_log, page_errors

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from selenium import webdriver

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strict page</title><script src="page.js"></script></head>
<body><main><h1>Strict page</h1><img src="pixel.png"><button id="mute"></button>
<script>window.inlineRan = true;</script></main></body></html>
"""
SCRIPT = "window.pageScriptRan = true; setTimeout(function () { notDefinedAnywhere(); }, 0);"
PIXEL = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class _StrictHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def strict_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("strict")
    (root / "index.html").write_text(PAGE)
    (root / "page.js").write_text(SCRIPT)
    (root / "pixel.png").write_bytes(PIXEL)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_StrictHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _load(driver: webdriver.Chrome, url: str) -> list[dict[str, Any]]:
    """Load ``url``; return what the page logged once its script ran and its uncaught error was logged."""
    driver.get("about:blank")
    browser_log(driver)
    driver.get(url)
    wait = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.05)
    wait.until(lambda d: d.execute_script("return document.readyState === 'complete' && window.pageScriptRan"))
    entries: list[dict[str, Any]] = []

    def script_error_logged(d: webdriver.Chrome) -> bool:
        entries.extend(browser_log(d))
        return any(entry["source"] == "javascript" for entry in entries)

    wait.until(script_error_logged)
    return entries


def test_the_csp_is_enforced_and_its_violations_and_script_errors_are_errors(
    chromium: webdriver.Chrome, strict_site: str
) -> None:
    entries = _load(chromium, f"{strict_site}/index.html")
    assert chromium.execute_script("return window.inlineRan === undefined")  # the inline script was refused
    errors = page_errors(entries, strict_site)
    assert any(error.startswith("[security]") and "Content Security Policy" in error for error in errors), errors
    assert any(error.startswith("[javascript]") and "notDefinedAnywhere" in error for error in errors), errors
    assert page_errors(entries, strict_site, allowed=("Content Security Policy", "notDefinedAnywhere")) == []


def test_axe_runs_under_the_strict_csp_and_fails_on_serious_violations(
    chromium: webdriver.Chrome, strict_site: str
) -> None:
    _load(chromium, f"{strict_site}/index.html")
    found = {violation["id"]: violation["impact"] for violation in axe_violations(chromium)}
    assert found.get("image-alt") == "critical" and found.get("button-name") == "critical", found
    with pytest.raises(AssertionError) as failure:
        assert_accessible(chromium)
    message = str(failure.value)
    assert f"axe-core {AXE_VERSION}" in message
    assert "image-alt" in message and "button-name" in message and '["#mute"]' in message
    # Injected once per page; a second check reuses it.
    assert chromium.execute_script("return axe.version") == AXE_VERSION
    assert_accessible(chromium, within="h1")
