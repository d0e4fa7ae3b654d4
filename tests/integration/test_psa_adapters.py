"""The PSA write-back adapters against the fake PSA on 127.0.0.1: what each sends, what it costs, how it fails.

The real HTTP client (``VendorHttp``, no back-off) talks to ``localdev.fake_psa`` over a socket. The fake
counts requests per dialect and keeps the tickets, so a test reads what the PSA would show and how many
calls a write cost against each PSA's limits. Time is one ``ManualClock`` (Halo's token lifetime).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from appointments.adapters.clock import ManualClock
from appointments.adapters.psa_autotask import AutotaskCredentials, AutotaskTickets
from appointments.adapters.psa_connectwise import ConnectWiseCredentials, ConnectWiseTickets, condition_string
from appointments.adapters.psa_halopsa import HaloCredentials, HaloTickets
from appointments.adapters.vendor_http import HttpPolicy, VendorHttp
from appointments.errors import VendorRateLimited, VendorRefused, VendorUnavailable
from appointments.ports import PsaNote
from localdev.fake_psa import DevCredentials, FakePsa, Fault, serve

NOW = datetime(2026, 12, 1, 15, 10, tzinfo=UTC)
DEV = DevCredentials()
EVENT = "evt-0001"
REFERENCE = f"appointment desk event {EVENT}"


def a_note(reference: str = REFERENCE, *, internal: bool = True) -> PsaNote:
    text = f"The customer did not call in within 10 minutes of 10:00 EST.\n\n({reference})"
    return PsaNote(title="Appointment desk: no show", text=text, reference=reference, internal=internal)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def fake(clock: ManualClock) -> FakePsa:
    return FakePsa(clock=clock.now)


@pytest.fixture
def base(fake: FakePsa) -> Iterator[str]:
    with serve(fake) as base_url:
        yield base_url


def http(vendor: str, **policy: float) -> VendorHttp:
    return VendorHttp(vendor, HttpPolicy(backoff=0, read_timeout=policy.get("read_timeout", 5.0)))


def autotask(base: str, credentials: AutotaskCredentials | None = None) -> AutotaskTickets:
    credentials = credentials or AutotaskCredentials(
        DEV.autotask_integration_code, DEV.autotask_username, DEV.autotask_secret
    )
    return AutotaskTickets(http("autotask"), credentials, zone_lookup=f"{base}/autotask")


def connectwise(base: str, private_key: str = DEV.connectwise_private_key) -> ConnectWiseTickets:
    credentials = ConnectWiseCredentials(
        site=f"{base}/connectwise",
        company=DEV.connectwise_company,
        public_key=DEV.connectwise_public_key,
        private_key=private_key,
        client_id=DEV.connectwise_client_id,
    )
    return ConnectWiseTickets(http("connectwise"), credentials)


def halo(base: str, clock: ManualClock, secret: str = DEV.halo_client_secret, tenant: str | None = None) -> HaloTickets:
    credentials = HaloCredentials(f"{base}/halopsa", DEV.halo_client_id, secret, tenant)
    return HaloTickets(http("halopsa"), credentials, clock)


# -- Autotask ------------------------------------------------------------------------------------------


def test_autotask_sets_the_status_and_adds_an_internal_note_in_two_calls_after_the_zone(
    base: str, fake: FakePsa
) -> None:
    # Given a ticket in the New status
    fake.put_ticket("autotask", "9001", status="1")
    tickets = autotask(base)
    # When the write-back sets NO-SHOW (picklist 14) and notes why
    tickets.set_status("9001", "14")
    tickets.add_note("9001", a_note())
    # Then the ticket shows both, the note internal ("Internal Only", publish 2)
    ticket = fake.ticket("autotask", "9001")
    assert ticket is not None
    assert ticket.status == "14"
    assert [(n.title, n.internal) for n in ticket.notes] == [("Appointment desk: no show", True)]
    # And it cost the zone lookup once, then one call per write
    assert fake.count("autotask", path_contains="zoneInformation") == 1
    assert fake.requests["autotask"] == 3
    assert fake.count("autotask", method="PATCH") == fake.count("autotask", method="POST") == 1
    # And GET /_local/psa lists the writes, the note tied to its event
    assert [(w["kind"], w.get("status"), w["event_id"]) for w in fake.listing()["items"]] == [
        ("status", "14", None),
        ("note", None, EVENT),
    ]
    assert fake.listing()["items"][1]["at"] == NOW.isoformat()


def test_autotask_publishes_a_public_note_to_all_users(base: str, fake: FakePsa) -> None:
    # When a note is configured visible to the contact
    autotask(base).add_note("9002", a_note(internal=False))
    # Then it is published to All Autotask Users (publish 1), which customers see
    ticket = fake.ticket("autotask", "9002")
    assert ticket is not None
    assert [n.internal for n in ticket.notes] == [False]


def test_autotask_finds_a_note_by_its_reference_on_that_ticket_only(base: str, fake: FakePsa) -> None:
    # Given a note for the event on one ticket
    tickets = autotask(base)
    tickets.add_note("9001", a_note())
    # When it looks on that ticket, another ticket, and for another event
    found = tickets.has_note("9001", REFERENCE)
    elsewhere = tickets.has_note("9002", REFERENCE)
    other = tickets.has_note("9001", "appointment desk event evt-0002")
    # Then only the first is there, each look one call (the zone still looked up once)
    assert (found, elsewhere, other) == (True, False, False)
    assert fake.count("autotask", method="GET", path_contains="TicketNotes/query") == 3
    assert fake.count("autotask", path_contains="zoneInformation") == 1


def test_autotask_429_is_rate_limited_with_its_retry_after(base: str, fake: FakePsa) -> None:
    # Given Autotask answers the next entity call with 429
    tickets = autotask(base)
    tickets.has_note("9001", REFERENCE)  # the zone is known
    fake.fail_next(Fault(status=429, retry_after="30"), system="autotask")
    # When the status is set
    with pytest.raises(VendorRateLimited) as raised:
        tickets.set_status("9001", "14")
    # Then the caller waits 30 s: nothing was retried here
    assert raised.value.retry_after == 30
    assert fake.count("autotask", method="PATCH") == 1


def test_autotask_500_on_the_status_patch_is_retried_and_written_once(base: str, fake: FakePsa) -> None:
    # Given the next PATCH fails with a 500
    tickets = autotask(base)
    tickets.has_note("9001", REFERENCE)
    fake.fail_next(Fault(status=500), system="autotask")
    # When the status is set
    tickets.set_status("9001", "14")
    # Then the PATCH was sent again (setting a status is idempotent) and the status written once
    assert fake.count("autotask", method="PATCH") == 2
    assert [w["kind"] for w in fake.writes] == ["status"]


def test_autotask_500_on_the_note_post_is_not_retried(base: str, fake: FakePsa) -> None:
    # Given the next POST fails with a 500
    tickets = autotask(base)
    tickets.has_note("9001", REFERENCE)
    fake.fail_next(Fault(status=500), system="autotask")
    # When a note is added
    with pytest.raises(VendorUnavailable):
        tickets.add_note("9001", a_note())
    # Then one POST: a note is never sent twice by the client (the caller looks with has_note first)
    assert fake.count("autotask", method="POST") == 1
    assert fake.writes == []


def test_autotask_a_deleted_ticket_is_refused_with_404(base: str, fake: FakePsa) -> None:
    # Given a PSA that holds only the tickets put in
    fake.create_on_use = False
    tickets = autotask(base)
    # When the write-back writes to a ticket it does not hold
    with pytest.raises(VendorRefused) as status:
        tickets.set_status("404404", "14")
    with pytest.raises(VendorRefused) as note:
        tickets.add_note("404404", a_note())
    # Then both are refused for good, as 404
    assert status.value.status == note.value.status == 404


def test_autotask_wrong_secret_is_refused(base: str, fake: FakePsa) -> None:
    tickets = autotask(base, AutotaskCredentials(DEV.autotask_integration_code, DEV.autotask_username, "wrong"))
    with pytest.raises(VendorRefused) as raised:
        tickets.set_status("9001", "14")
    assert raised.value.status == 401


# -- ConnectWise -----------------------------------------------------------------------------------------


def test_connectwise_sets_a_status_by_name_or_id_and_adds_internal_and_discussion_notes(
    base: str, fake: FakePsa
) -> None:
    tickets = connectwise(base)
    # When a status is set by name, then by id, and two notes are added
    tickets.set_status("4711", "NO-SHOW: remote customer")
    first = fake.ticket("connectwise", "4711")
    assert first is not None
    named = first.status
    tickets.set_status("4711", "42")
    tickets.add_note("4711", a_note())
    tickets.add_note("4711", a_note("appointment desk event evt-0002", internal=False))
    # Then the ticket has the last status and an Internal Analysis and a Discussion note
    ticket = fake.ticket("connectwise", "4711")
    assert ticket is not None
    assert (named, ticket.status) == ("NO-SHOW: remote customer", "42")
    assert [n.internal for n in ticket.notes] == [True, False]
    # And each write was one call
    assert fake.requests["connectwise"] == 4
    assert [w["event_id"] for w in fake.writes if w["kind"] == "note"] == [EVENT, "evt-0002"]


def test_connectwise_finds_a_note_by_its_reference(base: str, fake: FakePsa) -> None:
    tickets = connectwise(base)
    tickets.add_note("4711", a_note())
    assert tickets.has_note("4711", REFERENCE) is True
    assert tickets.has_note("4711", "appointment desk event evt-0002") is False
    assert tickets.has_note("4712", REFERENCE) is False
    assert fake.count("connectwise", method="GET") == 3


def test_connectwise_conditions_quote_the_reference() -> None:
    assert condition_string('%say "hi" \\ bye%') == '"%say \\"hi\\" \\\\ bye%"'


def test_connectwise_429_500_and_404(base: str, fake: FakePsa) -> None:
    tickets = connectwise(base)
    # A 429 is the caller's to wait for
    fake.fail_next(Fault(status=429, retry_after="5"))
    with pytest.raises(VendorRateLimited) as limited:
        tickets.set_status("4711", "NO-SHOW")
    assert limited.value.retry_after == 5
    # A 500 on the status PATCH is retried; on the note POST it is not
    fake.fail_next(Fault(status=500))
    tickets.set_status("4711", "NO-SHOW")
    fake.fail_next(Fault(status=500))
    with pytest.raises(VendorUnavailable):
        tickets.add_note("4711", a_note())
    assert (fake.count("connectwise", method="PATCH"), fake.count("connectwise", method="POST")) == (3, 1)
    # A ticket the PSA does not hold is 404
    fake.create_on_use = False
    with pytest.raises(VendorRefused) as gone:
        tickets.add_note("999", a_note())
    assert gone.value.status == 404


def test_connectwise_wrong_key_is_refused(base: str) -> None:
    with pytest.raises(VendorRefused) as raised:
        connectwise(base, private_key="wrong").set_status("4711", "NO-SHOW")
    assert raised.value.status == 401


# -- HaloPSA ---------------------------------------------------------------------------------------------


def test_halo_fetches_one_token_for_a_status_and_a_hidden_note(base: str, fake: FakePsa, clock: ManualClock) -> None:
    tickets = halo(base, clock)
    # When the write-back sets the status and adds a note, then looks for it
    tickets.set_status("321", "21")
    tickets.add_note("321", a_note())
    found = tickets.has_note("321", REFERENCE)
    # Then one token served all three, and the action is hidden from the end user
    ticket = fake.ticket("halopsa", "321")
    assert ticket is not None
    assert ticket.status == "21"
    assert [(n.internal, n.title) for n in ticket.notes] == [(True, "Note")]
    assert found is True
    assert tickets.has_note("321", "appointment desk event evt-0002") is False
    assert fake.count("halopsa", path_contains="/auth/token") == 1
    assert fake.requests["halopsa"] == 5


def test_halo_public_note_is_visible_to_the_user(base: str, fake: FakePsa, clock: ManualClock) -> None:
    halo(base, clock).add_note("321", a_note(internal=False))
    ticket = fake.ticket("halopsa", "321")
    assert ticket is not None
    assert [n.internal for n in ticket.notes] == [False]


def test_halo_token_is_renewed_before_it_expires(base: str, fake: FakePsa, clock: ManualClock) -> None:
    tickets = halo(base, clock)
    tickets.set_status("321", "21")
    # When 59 minutes pass (the token lives 60, kept until a minute before)
    clock.advance(timedelta(minutes=59))
    tickets.set_status("321", "22")
    # Then a second token was fetched, and no call was refused
    assert fake.count("halopsa", path_contains="/auth/token") == 2
    assert fake.requests["halopsa"] == 4


def test_halo_a_401_on_a_kept_token_fetches_a_new_one_once(base: str, fake: FakePsa, clock: ManualClock) -> None:
    tickets = halo(base, clock)
    tickets.set_status("321", "21")
    # Given Halo revoked every token it issued
    fake.expire_tokens()
    # When the write-back adds a note
    tickets.add_note("321", a_note())
    # Then the 401 brought one new token and the note was added once
    assert fake.count("halopsa", path_contains="/auth/token") == 2
    assert fake.count("halopsa", method="POST", path_contains="/api/Actions") == 2
    ticket = fake.ticket("halopsa", "321")
    assert ticket is not None
    assert len(ticket.notes) == 1


def test_halo_wrong_secret_is_refused_without_a_loop(base: str, fake: FakePsa, clock: ManualClock) -> None:
    with pytest.raises(VendorRefused) as raised:
        halo(base, clock, secret="wrong").set_status("321", "21")
    assert raised.value.status == 401
    assert fake.requests["halopsa"] == 1


def test_halo_hosted_tenant_is_named_on_the_token_request(clock: ManualClock) -> None:
    fake = FakePsa(clock=clock.now, credentials=DevCredentials(halo_tenant="acme msp"))
    with serve(fake) as base:
        with pytest.raises(VendorRefused):
            halo(base, clock).set_status("321", "21")
        halo(base, clock, tenant="acme msp").set_status("321", "21")
    ticket = fake.ticket("halopsa", "321")
    assert ticket is not None
    assert ticket.status == "21"


def test_halo_500_retried_on_the_status_not_on_the_action_and_429_and_404(
    base: str, fake: FakePsa, clock: ManualClock
) -> None:
    tickets = halo(base, clock)
    tickets.has_note("321", REFERENCE)  # the token is kept
    # A 500 on the status update is retried (setting a status twice changes nothing)
    fake.fail_next(Fault(status=500), system="halopsa")
    tickets.set_status("321", "21")
    assert fake.count("halopsa", method="POST", path_contains="/api/Tickets") == 2
    # A 500 on the action is not
    fake.fail_next(Fault(status=500), system="halopsa")
    with pytest.raises(VendorUnavailable):
        tickets.add_note("321", a_note())
    assert fake.count("halopsa", method="POST", path_contains="/api/Actions") == 1
    # A 429 carries Retry-After
    fake.fail_next(Fault(status=429, retry_after="12"), system="halopsa")
    with pytest.raises(VendorRateLimited) as limited:
        tickets.has_note("321", REFERENCE)
    assert limited.value.retry_after == 12
    # An unknown ticket is 404
    fake.create_on_use = False
    with pytest.raises(VendorRefused) as gone:
        tickets.set_status("999", "21")
    assert gone.value.status == 404


# -- the fake itself -------------------------------------------------------------------------------------


def test_a_fault_for_one_dialect_leaves_the_others_alone(base: str, fake: FakePsa, clock: ManualClock) -> None:
    fake.fail_next(Fault(status=503), system="connectwise")
    autotask(base).set_status("1", "5")
    halo(base, clock).set_status("1", "5")
    with pytest.raises(VendorUnavailable):
        connectwise(base).add_note("1", a_note())
    assert dict(fake.requests) == {"autotask": 2, "halopsa": 2, "connectwise": 1}


def test_a_slow_answer_times_out_and_a_read_is_tried_again(base: str, fake: FakePsa) -> None:
    # Given the next answer comes after the client's read timeout
    tickets = AutotaskTickets(
        VendorHttp("autotask", HttpPolicy(backoff=0, read_timeout=0.2)),
        AutotaskCredentials(DEV.autotask_integration_code, DEV.autotask_username, DEV.autotask_secret),
        zone_lookup=f"{base}/autotask",
    )
    tickets.add_note("9001", a_note())
    fake.fail_next(Fault(status=200, delay_seconds=0.5), system="autotask")
    # When it looks for the note (a GET: urllib3 sends it again)
    # Then the second try answers
    assert tickets.has_note("9001", REFERENCE) is True


def test_the_listing_and_reset(base: str, fake: FakePsa) -> None:
    connectwise(base).add_note("7", PsaNote(title="t", text="no reference here", reference="x"))
    assert fake.listing() == {
        "items": [
            {
                "system": "connectwise",
                "ticket_id": "7",
                "kind": "note",
                "text": "no reference here",
                "event_id": None,
                "at": NOW.isoformat(),
            }
        ]
    }
    fake.reset()
    assert (fake.listing(), fake.tickets, dict(fake.requests)) == ({"items": []}, {}, {})


def test_an_unknown_dialect_is_404(fake: FakePsa) -> None:
    answer = fake.answer("GET", "/zendesk/api", "", {}, b"")
    assert answer.status == 404
    assert fake.requests == {}


def test_idempotent_false_sends_even_a_get_once(base: str, fake: FakePsa) -> None:
    # Given the next answer is a 500
    fake.fail_next(Fault(status=500))
    # When a GET is marked as not to be sent twice
    with pytest.raises(VendorUnavailable):
        http("autotask").request("GET", f"{base}/autotask/atservicesrest/v1.0/zoneInformation", idempotent=False)
    # Then it went once (by default a GET is retried)
    assert fake.requests["autotask"] == 1


def test_the_runner_secret_points_every_psa_client_at_the_fake(base: str, fake: FakePsa, clock: ManualClock) -> None:
    # Given the PsaCredentials secret the local runner builds for its fake
    from appointments.adapters.psa_clients import psa_clients
    from localdev.fake_psa import fake_psa_credentials

    clients = psa_clients(fake_psa_credentials(base, fake.credentials), clock)
    # When each client writes a status
    for system, status in (("autotask", "14"), ("connectwise", "NO-SHOW"), ("halopsa", "21")):
        clients[system].set_status("77", status)
    # Then each reached its dialect, authorised
    assert [(w["system"], w["status"]) for w in fake.writes] == [
        ("autotask", "14"),
        ("connectwise", "NO-SHOW"),
        ("halopsa", "21"),
    ]
