"""The accessibility check: the vendored axe-core (tests/browser/vendor/axe.min.js) run in the page.

It goes in through WebDriver's Execute Script, which Chromium runs in the page's own context without
consulting the page's Content-Security-Policy: the console's ``script-src 'self'`` forbids inline script,
yet axe runs (tests/browser/test_console_smoke.py checks both on a strict-CSP page of its own). Nothing
is served by the runner for it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver

VENDOR = Path(__file__).parent / "vendor"
AXE_JS = VENDOR / "axe.min.js"
AXE_VERSION = "4.14.1"
FAILING_IMPACTS = ("serious", "critical")

# Execute Script awaits the promise this returns. ``within`` is a CSS selector or null (the whole document).
_RUN = """
const within = arguments[0] ? document.querySelector(arguments[0]) : document;
if (!within) { throw new Error('assert_accessible: nothing matches ' + arguments[0]); }
return axe.run(within, {resultTypes: ['violations']}).then((results) => results.violations.map((v) => ({
  id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
  nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
})));
"""


@cache
def axe_source() -> str:
    source = AXE_JS.read_text(encoding="utf-8")
    assert f"axe v{AXE_VERSION}" in source[:200], f"{AXE_JS} is not axe-core {AXE_VERSION}"
    return source


def axe_violations(driver: WebDriver, within: str | None = None) -> list[dict[str, Any]]:
    """Every axe-core violation on the page as it is now (or inside the element ``within``)."""
    if not driver.execute_script("return typeof window.axe?.run === 'function'"):
        driver.execute_script(axe_source())
    violations: list[dict[str, Any]] = driver.execute_script(_RUN, within)
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']}: {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:5]:
            lines.append(f"    {json.dumps(node['target'])} {node['html'][:160]}")
            lines.extend(f"      {line}" for line in str(node["summary"] or "").splitlines())
        if len(violation["nodes"]) > 5:
            lines.append(f"    ... and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


def assert_accessible(
    driver: WebDriver, *, within: str | None = None, impacts: tuple[str, ...] = FAILING_IMPACTS
) -> list[dict[str, Any]]:
    """Fail on any axe-core violation of impact serious or critical, listing each with its elements.

    Returns the lesser (minor, moderate) violations, which pass, for a test that wants to look at them."""
    violations = axe_violations(driver, within)
    failing = [violation for violation in violations if violation["impact"] in impacts]
    assert not failing, (
        f"axe-core {AXE_VERSION} found {len(failing)} {'/'.join(impacts)} accessibility violation(s) on "
        f"{driver.current_url}:\n{describe(failing)}"
    )
    return [violation for violation in violations if violation["impact"] not in impacts]
