"""The console loads from the runner under a strict CSP, without a single error, and passes axe-core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.browser.support import CONSOLE_PATH, SIGN_IN_EMAIL

if TYPE_CHECKING:
    from tests.browser.support import Console


def script_src(policy: str) -> str:
    directives = {part.split()[0]: part for part in (p.strip() for p in policy.split(";")) if part}
    return directives.get("script-src", directives.get("default-src", ""))


def test_the_console_is_served_with_a_strict_csp(console: Console) -> None:
    reply = console.local.get(CONSOLE_PATH)
    assert reply.status == 200, (
        f"the local runner does not serve the console at {CONSOLE_PATH} (HTTP {reply.status}): "
        "console/index.html or its route in localdev is not there yet"
    )
    policy = next(iter(reply.header_values("Content-Security-Policy")), "")
    assert policy, "the console is served without a Content-Security-Policy header"
    assert "'self'" in script_src(policy) and "'unsafe-inline'" not in script_src(policy), policy


def test_the_console_opens_without_errors_and_is_accessible(console: Console) -> None:
    console.open()
    assert "Appointment desk" in console.title()
    console.find(SIGN_IN_EMAIL)  # signed out: the sign-in form first
    console.assert_no_errors()
    console.assert_accessible()


def test_a_dispatcher_signs_in_through_the_form(console: Console) -> None:
    console.sign_in("dana@msp.example")
    console.wait_for_text("#signed-in-as", "dana@msp.example")
    console.assert_no_errors()
    console.assert_accessible()
