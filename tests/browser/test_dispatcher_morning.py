"""A dispatcher's Monday morning through the console only, in a real browser against the local runner.

The bookings arrive as the booking page's webhooks would; everything the dispatcher does, they do in the
console: find the unassigned booking in "Needs attention" with its countdown and reassign it, log a voicemail
on a second, cancel a third with a coupon, and watch a fourth turn into a no-show once its start passes. The
history timeline shows each step with the dispatcher as actor. Then the hostile customer name, the CSP, axe
on every screen, and the whole of it by keyboard.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selenium.webdriver.common.keys import Keys

from tests.local.conftest import START
from tests.signing import sample

if TYPE_CHECKING:
    from tests.browser.support import Console

DISPATCHER = "dana.dispatch@msp.example"
# `make screenshots` sets this to docs/ to refresh the README's pictures; a plain test run writes none there.
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
HOSTILE = "<img src=x onerror=alert(1)>"


def book(console: Console, external_id: str, name: str, start_minutes: int, *, assigned: bool = True) -> None:
    """A booking from the booking page, starting ``start_minutes`` after the runner's START."""
    document: dict[str, Any] = json.loads(sample("generic/appointment_scheduled.json"))
    start = START.replace(second=0) + timedelta(minutes=start_minutes)
    document["event_id"] = f"evt_{external_id}"
    document["occurred_at"] = START.strftime("%Y-%m-%dT%H:%M:%SZ")
    document["appointment"].update(
        {
            "external_id": external_id,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer": {"name": name, "email": f"{external_id}@client.example"},
            "technicians": [{"id": "t-17", "name": "Sam Okafor"}] if assigned else [],
            "ticket": None,
        }
    )
    reply = console.local.send("generic/appointment_scheduled.json", body=json.dumps(document).encode())
    assert reply.status == 202, reply.body
    console.settle()


def shoot(console: Console, name: str) -> None:
    if SHOTS:
        console.screenshot(Path(SHOTS) / name)


def open_from_attention(console: Console, name: str) -> None:
    console.click("#nav-attention")
    console.wait_for_text("#attention-list", name)
    item = next(
        element
        for element in console.all("#attention-list li")
        if name in element.text and element.get_attribute("data-kind") == "unassigned_soon"
    )
    item.find_element("css selector", "a.button").click()


def open_today(console: Console, name: str) -> None:
    console.click("#nav-today")
    console.wait_for_text("#lanes", name)
    link = next(a for a in console.all("#lanes a.card-link") if name in a.text)
    link.click()
    console.wait_for("#appointment-title")


def timeline(console: Console) -> list[str]:
    return console.texts("#timeline li")


def test_a_dispatchers_morning_through_the_console(console: Console) -> None:
    # Given four bookings for today: one nobody is assigned to, three with Sam
    book(console, "mon-1", "Ava Unassigned", 270, assigned=False)  # 14:30: pre-notice 11:30, auto-cancel 13:30
    book(console, "mon-2", "Ben Voicemail", 300)
    book(console, "mon-3", "Cleo Cancels", 330)
    book(console, "mon-4", "Dev Noshow", 60)  # 11:00
    console.sign_in(DISPATCHER)

    # The unassigned one is in "Needs attention" with its countdowns, and is reassigned from there
    console.click("#nav-attention")
    console.wait_for_text("#attention-list", "Ava Unassigned")
    attention = console.text("#attention-list")
    assert "Pre-notice in 1 h 30 min" in attention or "Pre-notice in 1 h 29 min" in attention, attention
    assert "Auto-cancel in 3 h" in attention, attention
    console.assert_accessible()
    shoot(console, "console-attention.png")
    open_from_attention(console, "Ava Unassigned")
    console.wait_for("#form-reassign")
    console.fill("#reassign-technician_id", "t-23")
    console.fill("#reassign-technician_name", "Alex Kim")
    console.fill("#reassign-message", "Alex will call you at the time you booked.")
    assert "Alex will call you" in console.text("#reassign-preview")
    console.assert_accessible()
    console.click("#reassign-submit")
    console.wait_for_text("#status", "Reassign: done.")
    console.wait_for_text(".facts", "Alex Kim (primary)")
    shoot(console, "console-appointment.png")
    console.click("#nav-attention")
    console.wait(lambda _: "Ava Unassigned" not in console.text("#screen"), "Ava to leave Needs attention")

    # A second gets a voicemail contact attempt
    open_today(console, "Ben Voicemail")
    console.click("#open-contact_attempt")
    console.select("#contact_attempt-outcome", "voicemail")
    console.fill("#contact_attempt-note", "Left the booking link.")
    console.click("#contact_attempt-submit")
    console.wait_for_text(".plain", "called, voicemail")

    # A third is cancelled, with the coupon offered
    open_today(console, "Cleo Cancels")
    console.click("#open-cancel")
    console.fill("#cancel-reason", "customer fixed it herself")
    console.fill("#cancel-message", "Glad it works again.")
    assert console.driver.find_element("css selector", "#cancel-offer_discount").is_selected()
    console.click("#cancel-submit")
    console.wait_for_text(".facts", "coupon")
    assert "15%" in console.text(".facts")

    # The fourth passes its start with nobody calling in, and shows as no-show once the clock moves
    console.set_clock(START.replace(hour=11, minute=10, second=0))
    open_today(console, "Dev Noshow")
    console.wait_for_text(".facts", "no show")

    # The Today screen shows them all in their lanes
    console.click("#nav-today")
    console.wait_for_text("#lanes", "Alex Kim")
    assert "Unassigned (0)" in console.text("#lanes")
    console.assert_accessible()
    shoot(console, "console-today.png")

    # And the first one's timeline shows each step with the dispatcher as actor
    open_today(console, "Ava Unassigned")
    steps = timeline(console)
    assert any("reassign" in step and DISPATCHER in step for step in steps), steps
    open_today(console, "Cleo Cancels")
    assert any("cancel" in step and DISPATCHER in step for step in timeline(console))
    open_today(console, "Ben Voicemail")
    assert any("contact attempt" in step and DISPATCHER in step for step in timeline(console))
    console.assert_no_errors()


def test_a_hostile_customer_name_is_text_everywhere(console: Console) -> None:
    # Given a booking whose customer is named like an HTML tag with a script in it
    book(console, "evil-1", HOSTILE, 120, assigned=False)
    console.sign_in(DISPATCHER)
    alerts: list[Any] = []
    # When it shows on every screen
    for screen, wanted in (("#nav-today", "#lanes"), ("#nav-attention", "#attention-list")):
        console.click(screen)
        console.wait_for_text(wanted, HOSTILE)
        alerts.append(console.driver.execute_script("return document.querySelectorAll('#screen img').length"))
    open_today(console, HOSTILE)
    console.wait_for_text("#appointment-title", HOSTILE)
    alerts.append(console.driver.execute_script("return document.querySelectorAll('#screen img').length"))
    console.click("#nav-search")
    console.fill("#search-q", "evil-1@client")
    console.click("#search-submit")
    console.wait_for_text("#search-results", HOSTILE)
    # Then it is text, never an element
    alerts.append(console.driver.execute_script("return document.querySelectorAll('#screen img').length"))
    assert alerts == [0, 0, 0, 0]
    console.assert_no_errors()
    console.assert_accessible()
    shoot(console, "console-search.png")


def test_every_action_by_keyboard_alone(console: Console) -> None:
    # Given an unassigned booking, and a dispatcher without a mouse
    book(console, "kbd-1", "Kim Keyboard", 240, assigned=False)
    console.open()
    console.press("kbd@msp.example", into="#sign-in-email")
    console.press(Keys.ENTER)
    console.wait_for("#nav-today")
    # When they tab to "Needs attention", open the item and reassign with the keyboard only
    console.tab_to("#nav-attention").send_keys(Keys.ENTER)
    link = console.tab_to("#attention-list a.button")
    link.send_keys(Keys.ENTER)
    console.wait_for("#form-reassign")
    assert console.is_focused("#reassign-technician_id")
    console.press("t-31", Keys.TAB, "Robin Ray", Keys.TAB, Keys.TAB, "On our way.")
    console.tab_to("#reassign-submit").send_keys(Keys.ENTER)
    # Then it is done, and the focus is back on the page's heading
    console.wait_for_text(".facts", "Robin Ray (primary)")
    console.assert_no_errors()
