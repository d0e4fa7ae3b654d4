"""The dispatcher's console in a real browser: the system's headless Chromium (one per test session) against
the local runner (one per test module, manual clock at ``START``), and a ``console`` per test.

Without Chromium the tests skip with the way to get it (``make browser``); under CI (``CI=true``) they fail
instead: CI must run them. Each test starts with the runner reset (no data, no mail, clock at ``START``),
the browser's storage for the runner's origin cleared, and fails if the page logged an error (a CSP
violation, an uncaught exception, ``console.error``, a console asset missing); a failing test leaves a
screenshot, whose path it prints."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import pytest
from selenium.common.exceptions import WebDriverException

from localdev.template import TEMPLATE
from tests.browser.support import Console, browser_log, browser_missing, start_chromium
from tests.local.conftest import START, running

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from pathlib import Path

    from selenium import webdriver

    from tests.local.conftest import LocalRunner

CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """The headless Chromium every browser test shares (started once: about a second)."""
    missing = browser_missing()
    if missing:
        if in_ci():
            pytest.fail(f"{missing}. CI runs the browser tests, never skips them.", pytrace=False)
        pytest.skip(missing)
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def desk() -> Iterator[LocalRunner]:
    """The product's template.yaml in the local runner on a free port, manual clock: the console's server."""
    with running(TEMPLATE) as local:
        yield local


@pytest.fixture
def console(
    chromium: webdriver.Chrome, desk: LocalRunner, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Console]:
    """A fresh start for one test: runner reset, clock at ``START``, browser blank and signed out."""
    assert desk.post("/_local/reset").status == 200
    assert desk.post("/_local/clock", {"now": START.isoformat()}).status == 200
    chromium.get("about:blank")
    chromium.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": desk.base, "storageTypes": "all"})
    chromium.delete_all_cookies()
    browser_log(chromium)  # what an earlier test left
    page = Console(chromium, desk)
    yield page
    failed = request.node.stash.get(CALL_FAILED, False)
    if failed and chromium.current_url != "about:blank":
        with contextlib.suppress(WebDriverException):
            shot = page.screenshot(tmp_path / "failure.png")
            print(f"browser screenshot at the failure: {shot} ({chromium.current_url})")
    errors = page.errors()
    if chromium.current_url.startswith(desk.base):  # the sign-in lives in the tab's sessionStorage
        chromium.execute_script("sessionStorage.clear(); localStorage.clear();")
    chromium.get("about:blank")  # stops the page's polling before the next test resets the runner
    if errors and not failed:
        pytest.fail("the page logged errors:\n" + "\n".join(errors), pytrace=False)
