"""Headless Chromium (the system's, driven by Selenium through chromedriver) and the ``Console`` helper the
browser tests drive the dispatcher's console with. Every wait is an explicit WebDriverWait, never a sleep."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.axe import assert_accessible

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from selenium.webdriver.remote.webelement import WebElement

    from tests.local.conftest import LocalRunner

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "WAIT_SECONDS",
    "Console",
    "Keys",
    "browser_missing",
    "page_errors",
    "start_chromium",
]

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000")
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05
CONSOLE_PATH = "/console/"
SIGN_IN_EMAIL = "#sign-in-email"
SIGN_IN_SUBMIT = "#sign-in-submit"
STATUS = "#status"
# "http://127.0.0.1:4321/console/app.js 12:7 Uncaught TypeError: ..." → the URL at its start.
_LOG_URL = re.compile(r"^(\S+)")
_PAGE_ASSETS = ("/", ".html", ".js", ".css", ".png", ".svg", ".woff2")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when Chromium and its driver are installed."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return None
    return (
        f"headless Chromium is not installed ({', '.join(missing)} missing): run `make browser` "
        "(apt-get install chromium chromium-driver; `make test` runs it first)"
    )


def browser_log(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """What the page logged since the last call (Chromium's browser log drains as it is read)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def start_chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, CSP reports, JS errors
    # An explicit driver path: Selenium Manager never runs, so nothing is downloaded.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_script_timeout(60)  # axe.run on a large page
    driver.set_page_load_timeout(30)
    return driver


def page_errors(entries: list[dict[str, Any]], base: str, allowed: Sequence[str] = ()) -> list[str]:
    """The errors among Chromium's browser log ``entries``: CSP violations, uncaught exceptions,
    ``console.error``, and console page assets (``base`` + /console/...: HTML, script, style, image, font)
    that failed to load. An API answer such
    as a 401 or a 409 is logged as a failed resource too, but it is not an error of the page."""
    found = []
    for entry in entries:
        if entry.get("level") != "SEVERE":
            continue
        message = str(entry.get("message", ""))
        if entry.get("source") == "network" and not _is_console_asset(message, base):
            continue
        if any(fragment in message for fragment in allowed):
            continue
        found.append(f"[{entry.get('source')}] {message}")
    return found


def _is_console_asset(message: str, base: str) -> bool:
    match = _LOG_URL.match(message)
    if not match:
        return False
    url = urlsplit(match.group(1))
    page_asset = url.path.endswith(_PAGE_ASSETS)  # not data such as config.json, which the page may do without
    return f"{url.scheme}://{url.netloc}" == base and url.path.startswith(CONSOLE_PATH) and page_asset


@dataclass
class Console:
    """One test's handle on the console: the browser, the runner behind it, and what the page logged.

    Selectors are CSS. Every ``wait_*``/``find`` waits up to ``WAIT_SECONDS`` and fails with what it
    waited for. Errors the page logs (a CSP violation, an uncaught exception, ``console.error``, a
    console asset that failed to load) fail the test when it ends unless ``allow_errors`` matched them.
    """

    driver: webdriver.Chrome
    local: LocalRunner
    _log: list[dict[str, Any]] = field(default_factory=list)
    _allowed: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.local.base

    # --- navigation and sign-in -------------------------------------------------------------------

    def open(self, path: str = CONSOLE_PATH) -> None:
        """Load ``path`` (the console by default) and wait until the document has loaded."""
        if path.startswith(CONSOLE_PATH):
            served = self.local.get(CONSOLE_PATH)
            assert served.status == 200, (
                f"the local runner does not serve the console at {CONSOLE_PATH} (HTTP {served.status}: "
                f"{served.body[:200]!r}): the console (console/index.html) and its route in localdev are not there yet"
            )
        self.driver.get(f"{self.base}{path}")
        self.wait(lambda driver: driver.execute_script("return document.readyState") == "complete", "the page to load")

    def sign_in(self, email: str) -> None:
        """Sign in through the page's form (``#sign-in-email``, ``#sign-in-submit``), as a person would.

        Opens the console first when the browser is elsewhere; returns once the form has gone."""
        if not self.driver.current_url.startswith(f"{self.base}{CONSOLE_PATH}"):
            self.open()
        self.fill(SIGN_IN_EMAIL, email)
        self.click(SIGN_IN_SUBMIT)
        try:
            self.wait_gone(SIGN_IN_EMAIL)
        except AssertionError as error:
            raise AssertionError(
                f"signing in as {email} left the sign-in form on screen; the page says {self.status_text()!r}; "
                f"errors: {self.errors()}"
            ) from error

    def title(self) -> str:
        return str(self.driver.title)

    # --- finding and waiting ----------------------------------------------------------------------

    def wait(self, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
        """Wait until ``condition(driver)`` is truthy and return its value; fail naming ``what``."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=POLL_SECONDS).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"waited {timeout:g} s for {what} on {self.driver.current_url}; errors: {self.errors()}"
            ) from None

    def find(self, selector: str, timeout: float = WAIT_SECONDS) -> WebElement:
        """The first element matching ``selector`` once it is visible."""
        element: WebElement = self.wait(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector)),
            f"{selector} to be visible",
            timeout,
        )
        return element

    def wait_for(self, selector: str, timeout: float = WAIT_SECONDS) -> WebElement:
        """The same as ``find``: wait until ``selector`` is visible."""
        return self.find(selector, timeout)

    def wait_present(self, selector: str, timeout: float = WAIT_SECONDS) -> WebElement:
        """The first element matching ``selector`` once it is in the DOM, visible or not."""
        element: WebElement = self.wait(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)),
            f"{selector} to be in the page",
            timeout,
        )
        return element

    def wait_gone(self, selector: str, timeout: float = WAIT_SECONDS) -> None:
        """Wait until nothing matching ``selector`` is visible (hidden or removed)."""
        self.wait(
            expected_conditions.invisibility_of_element_located((By.CSS_SELECTOR, selector)),
            f"{selector} to disappear",
            timeout,
        )

    def wait_for_text(self, selector: str, text: str, timeout: float = WAIT_SECONDS) -> WebElement:
        """Wait until the element matching ``selector`` contains ``text``; return it."""
        self.wait(
            expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text),
            f"{selector} to contain {text!r}",
            timeout,
        )
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[WebElement]:
        """Every element matching ``selector`` now (no wait)."""
        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    # --- reading ----------------------------------------------------------------------------------

    def text(self, selector: str, timeout: float = WAIT_SECONDS) -> str:
        """The visible text of ``selector`` once it is visible."""
        return str(self.find(selector, timeout).text)

    def texts(self, selector: str) -> list[str]:
        """The visible text of every element matching ``selector`` now."""
        return [str(element.text) for element in self.all(selector)]

    def status_text(self) -> str:
        """What the page's ``#status`` line says now ("" when it has none)."""
        found = self.all(STATUS)
        return str(found[0].text) if found else ""

    # --- acting -----------------------------------------------------------------------------------

    def click(self, selector: str, timeout: float = WAIT_SECONDS) -> None:
        element: WebElement = self.wait(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, selector)),
            f"{selector} to be clickable",
            timeout,
        )
        element.click()

    def fill(self, selector: str, value: str) -> None:
        """Replace the value of the field ``selector`` by typing ``value`` into it."""
        element = self.find(selector)
        element.clear()
        element.send_keys(value)

    def select(self, selector: str, label: str) -> None:
        """Choose the option whose visible text is ``label`` in the ``<select>`` ``selector``."""
        Select(self.find(selector)).select_by_visible_text(label)

    def press(self, *keys: str, into: str | None = None) -> None:
        """Press keys (``Keys.TAB``, ``Keys.ENTER``, ``Keys.ESCAPE`` or text): into the element ``into``,
        else wherever the focus is, as a keyboard-only user would."""
        if into is not None:
            self.find(into).send_keys(*keys)
        else:
            ActionChains(self.driver).send_keys(*keys).perform()

    def focused(self) -> WebElement:
        """The element that has the focus."""
        return self.driver.switch_to.active_element

    def is_focused(self, selector: str) -> bool:
        return bool(self.driver.execute_script("return !!document.activeElement?.matches(arguments[0])", selector))

    def tab_to(self, selector: str, most: int = 60) -> WebElement:
        """Press Tab until the focus is on ``selector`` (at most ``most`` times); return it."""
        for _ in range(most):
            if self.is_focused(selector):
                return self.focused()
            self.press(Keys.TAB)
        if self.is_focused(selector):
            return self.focused()
        raise AssertionError(f"{most} presses of Tab never reached {selector}")

    def screenshot(self, path: Path | str, selector: str | None = None) -> Path:
        """A PNG of the window (or of one element) at ``path``; folders are created."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        saved = self.find(selector).screenshot(str(target)) if selector else self.driver.save_screenshot(str(target))
        assert saved, f"Chromium could not write the screenshot {target}"
        return target

    # --- the runner behind the page ---------------------------------------------------------------

    def set_clock(self, now: datetime) -> None:
        """Move the runner's (manual) clock to ``now``; what came due runs and settles first."""
        reply = self.local.post("/_local/clock", {"now": now.isoformat()})
        assert reply.status == 200, reply.body

    def advance(self, seconds: int) -> None:
        reply = self.local.post("/_local/clock", {"advance_seconds": seconds})
        assert reply.status == 200, reply.body

    def settle(self) -> None:
        reply = self.local.post("/_local/settle")
        assert reply.status == 200, reply.body

    # --- what the page logged, and accessibility --------------------------------------------------

    def log(self) -> list[dict[str, Any]]:
        """Everything the page logged so far in this test (Chromium's browser log: level, source, message)."""
        self._log.extend(browser_log(self.driver))
        return list(self._log)

    def errors(self) -> list[str]:
        """The page's errors so far (``page_errors``), less those ``allow_errors`` expects."""
        return page_errors(self.log(), self.base, allowed=self._allowed)

    def allow_errors(self, *fragments: str) -> None:
        """Errors containing any of ``fragments`` are expected by this test: they fail nothing."""
        self._allowed.extend(fragments)

    def assert_no_errors(self) -> None:
        errors = self.errors()
        assert not errors, "the page logged errors:\n" + "\n".join(errors)

    def assert_accessible(self, within: str | None = None) -> None:
        """axe-core on the page as it is now (or on ``within``): no serious or critical violation."""
        assert_accessible(self.driver, within=within)
