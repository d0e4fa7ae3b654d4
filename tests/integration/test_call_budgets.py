"""Each operation makes exactly the AWS calls (and PSA requests) its budget in ``tools/bench/call_budgets.py``
allows: through the real handlers under moto, counted by a botocore hook on the boto3 session.

The operations are ``tools/bench/calls.py``'s, so the bench and these tests measure the same thing; each
operation's docstring says what it starts from. A call added or removed shows here first: change the
budget with it, and say why in its comment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.bench import calls
from tools.bench.call_budgets import BUDGETS
from tools.bench.calls import Desk


@pytest.fixture
def desk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    with calls.open_desk(monkeypatch) as opened:
        yield opened


def test_every_operation_the_bench_measures_has_a_budget() -> None:
    assert set(calls.OPERATIONS) == set(BUDGETS)


# -- one webhook in ---------------------------------------------------------------------------------------


def test_the_first_webhook_of_a_container_reads_the_secrets_once_then_queues(desk: Desk) -> None:
    # Given a new container; When a signed generic webhook comes in
    measured = calls.webhook_first(desk)
    # Then the signing secrets are read, and the events queued in one batch
    assert measured == BUDGETS["webhook.first"]


def test_a_warm_webhook_costs_one_batch_of_messages(desk: Desk) -> None:
    # Given a warm container (its secrets cached); When a generic, then an Autotask webhook come in
    # Then each is one SendMessageBatch: verification costs nothing
    assert calls.webhook_generic(desk) == BUDGETS["webhook.generic"]


def test_an_autotask_webhook_costs_the_same(desk: Desk) -> None:
    assert calls.webhook_autotask(desk) == BUDGETS["webhook.autotask"]


# -- one event applied --------------------------------------------------------------------------------------


def test_a_new_booking_reads_its_ref_and_its_waits_around_one_transaction(desk: Desk) -> None:
    # Given a generic booking on the queue; When the processor applies it
    # Then the ref is looked up, the waits on its id and ticket read before and after one transaction
    assert calls.event_new_booking(desk) == BUDGETS["event.new_booking"]


def test_an_update_reads_the_ref_and_the_appointment_and_writes_once(desk: Desk) -> None:
    # Given a booking held; When its reschedule is applied
    assert calls.event_update(desk) == BUDGETS["event.update"]


def test_a_ticket_update_finds_the_tickets_appointment_and_writes_once(desk: Desk) -> None:
    # Given a booking on Autotask ticket 48213; When the ticket's assignment is applied
    assert calls.event_ticket_update(desk) == BUDGETS["event.ticket_update"]


# -- one sweep ------------------------------------------------------------------------------------------------


def test_a_sweep_with_nothing_due_reads_each_shard_once(desk: Desk) -> None:
    # Given nothing due; When the minute's sweep runs; Then only the due index's shards are read
    assert calls.sweep_nothing_due(desk) == BUDGETS["sweep.nothing_due"]


def test_a_due_reminder_is_applied_in_one_transaction_its_mail_left_to_the_relay(desk: Desk) -> None:
    # Given one reminder due; When the sweep runs
    # Then the shards, the appointment read and changed in one transaction; no mail call (the relay sends it)
    assert calls.sweep_one_reminder(desk) == BUDGETS["sweep.one_reminder"]


def test_a_mail_the_stream_missed_is_sent_by_the_next_sweep_after_a_minute(desk: Desk) -> None:
    # Given a reminder mail whose stream record was lost; When the sweep runs a minute later
    # Then the sweep's safety net sends it: claimed, rendered, sent, marked
    assert calls.sweep_mail_safety_net(desk) == BUDGETS["sweep.mail_safety_net"]


def test_the_sweeps_cost_grows_by_the_same_calls_for_each_due_item(desk: Desk) -> None:
    # Given three reminders due; When the sweep runs
    measured = calls.sweep_three_reminders(desk)
    # Then it is the fixed shard reads plus three times one item's calls
    assert measured == BUDGETS["sweep.three_reminders"]
    fixed, one = BUDGETS["sweep.nothing_due"], BUDGETS["sweep.one_reminder"]
    each = {name: count - fixed.get(name, 0) for name, count in one.items()}
    assert measured == {name: fixed.get(name, 0) + 3 * each.get(name, 0) for name in measured}


def test_a_no_show_costs_what_a_reminder_costs(desk: Desk) -> None:
    # Given a reminded booking nobody called in for; When the sweep runs ten minutes after its start
    assert calls.sweep_one_no_show(desk) == BUDGETS["sweep.one_no_show"]


# -- one mail, one domain event ----------------------------------------------------------------------------


def test_a_mail_on_the_stream_is_claimed_read_sent_and_marked(desk: Desk) -> None:
    # Given a reschedule request's mail on the stream; When the relay takes its record
    assert calls.relay_mail(desk) == BUDGETS["relay.mail"]


def test_a_mail_handed_over_twice_costs_the_relay_one_refused_claim(desk: Desk) -> None:
    # Given a reminder the relay sent; When the stream hands the relay its mail record again
    assert calls.relay_mail_already_sent(desk) == BUDGETS["relay.mail_already_sent"]


def test_a_domain_event_is_claimed_published_and_marked(desk: Desk) -> None:
    # Given a note's history entry on the stream; When the relay takes its record
    assert calls.relay_event(desk) == BUDGETS["relay.event"]


def test_a_batch_costs_the_sum_of_its_records(desk: Desk) -> None:
    # Given a booking and a note on it; When the stream hands the relay their three records in one batch
    measured = calls.relay_booking_batch(desk)
    # Then each history entry is its own PutEvents, and the mail is sent as alone
    assert measured == BUDGETS["relay.booking_batch"]
    mail, event = BUDGETS["relay.mail"], BUDGETS["relay.event"]
    assert measured == {name: mail.get(name, 0) + 2 * event.get(name, 0) for name in measured}


# -- one PSA write ------------------------------------------------------------------------------------------


def test_the_first_psa_write_of_a_container_reads_the_credentials_and_the_zone(desk: Desk) -> None:
    # Given a new container; When a no-show is written back to its Autotask ticket
    assert calls.psa_write_first(desk) == BUDGETS["psa.write_first"]


def test_a_psa_write_sets_the_status_adds_one_note_and_records_it(desk: Desk) -> None:
    # Given a warm container; When a no-show is written back
    # Then the appointment is loaded (twice), the status set, the note searched and added, the write recorded
    assert calls.psa_write(desk) == BUDGETS["psa.write"]


def test_a_redelivered_psa_event_costs_one_load_and_no_request_to_the_psa(desk: Desk) -> None:
    # Given a no-show written back; When EventBridge delivers it again
    assert calls.psa_write_again(desk) == BUDGETS["psa.write_again"]


# -- ops and the console ------------------------------------------------------------------------------------


def test_an_ops_action_reads_once_and_writes_once(desk: Desk) -> None:
    # Given an appointment waiting for a new time; When a dispatcher confirms it
    assert calls.ops_confirm(desk) == BUDGETS["ops.confirm"]


def test_a_reassignment_reads_once_and_writes_once(desk: Desk) -> None:
    assert calls.ops_reassign(desk) == BUDGETS["ops.reassign"]


def test_an_appointments_detail_is_one_query(desk: Desk) -> None:
    assert calls.ops_get(desk) == BUDGETS["ops.get"]


def test_attention_reads_each_day_of_its_window_and_the_unmatched(desk: Desk) -> None:
    # Given an empty desk; When the console asks what needs attention
    # Then ten days of the by-day index and one page of unmatched events are read
    assert calls.console_attention_empty(desk) == BUDGETS["console.attention_empty"]


def test_attention_loads_only_the_appointments_with_a_record_needing_a_human(desk: Desk) -> None:
    # Given three bookings made today, one with a bounced mail; When the console asks what needs attention
    measured = calls.console_attention_three(desk)
    # Then only that one is loaded on top of the window's reads
    assert measured == BUDGETS["console.attention_three"]
    assert measured["dynamodb.Query"] == BUDGETS["console.attention_empty"]["dynamodb.Query"] + 1


def test_the_today_screen_is_attention_and_the_days_list(desk: Desk) -> None:
    assert calls.console_today(desk) == BUDGETS["console.today"]


def test_the_appointment_screen_is_attention_and_the_detail(desk: Desk) -> None:
    assert calls.console_appointment(desk) == BUDGETS["console.appointment"]
