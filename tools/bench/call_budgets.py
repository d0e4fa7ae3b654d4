"""The AWS calls (and PSA requests) each operation may make: what the code does today, exactly.

One entry per operation ``tools/bench/calls.py`` measures (its docstrings say how each is set up), keyed
``service.Operation`` as botocore names them; the PSA's requests as ``<system>.<METHOD> <path>``. The bench
prints the measured calls next to these; ``tests/integration/test_call_budgets.py`` asserts them exactly, so
a change that adds a call has to change its budget here, in review. "could be N" marks a call found to be
avoidable: the budget stays at today's figure until the code changes.
"""

from __future__ import annotations

BUDGETS: dict[str, dict[str, int]] = {
    # The first webhook of a container reads the signing secrets (cached 5 minutes), then queues its events.
    "webhook.first": {"secretsmanager.GetSecretValue": 1, "sqs.SendMessageBatch": 1},
    # Verify against the cached secret, queue every event of the body in one batch.
    "webhook.generic": {"sqs.SendMessageBatch": 1},
    # Autotask is verified and queued the same way: the source makes no difference to the bill.
    "webhook.autotask": {"sqs.SendMessageBatch": 1},
    # The ref looked up; the waits on its id and its ticket read before and after the one transaction (an
    # event that began to wait meanwhile is not missed).
    "event.new_booking": {"dynamodb.GetItem": 1, "dynamodb.Query": 4, "dynamodb.TransactWriteItems": 1},
    # The ref, the appointment, one transaction.
    "event.update": {"dynamodb.GetItem": 2, "dynamodb.TransactWriteItems": 1},
    # The ticket's appointments found by index, each read, one transaction.
    "event.ticket_update": {"dynamodb.GetItem": 1, "dynamodb.Query": 1, "dynamodb.TransactWriteItems": 1},
    # Every minute: the due index's 4 appointment shards, its 4 mail shards, and the unmatched alerts' one.
    "sweep.nothing_due": {"dynamodb.Query": 9},
    # The 9 queries; the appointment read and changed in one transaction. Its mail goes out through the
    # stream's relay (relay.mail): the sweep leaves a mail younger than a minute to it (was 4 calls more per
    # mail here, each raced by the relay).
    "sweep.one_reminder": {"dynamodb.GetItem": 1, "dynamodb.Query": 9, "dynamodb.TransactWriteItems": 1},
    # Linear: each due reminder adds GetItem 1, TransactWriteItems 1; the 9 queries stay (one page per shard).
    "sweep.three_reminders": {"dynamodb.GetItem": 3, "dynamodb.Query": 9, "dynamodb.TransactWriteItems": 3},
    # The no-show costs what a reminder costs: one transaction, its "we missed you" mail left to the relay.
    "sweep.one_no_show": {"dynamodb.GetItem": 1, "dynamodb.Query": 9, "dynamodb.TransactWriteItems": 1},
    # A mail pending for over a minute (the stream never handed it over, or SES throttled it): the sweep
    # claims it (conditional update), reads the appointment to render it, sends it, marks it sent.
    "sweep.mail_safety_net": {
        "dynamodb.GetItem": 1,
        "dynamodb.Query": 9,
        "dynamodb.UpdateItem": 2,
        "sesv2.SendEmail": 1,
    },
    # Claimed (conditional update), the appointment read to render it, sent, marked sent.
    "relay.mail": {"dynamodb.GetItem": 1, "dynamodb.UpdateItem": 2, "sesv2.SendEmail": 1},
    # The stream's record of a mail already sent, handed over again (at-least-once): one claim, refused.
    "relay.mail_already_sent": {"dynamodb.UpdateItem": 1},
    # Claimed, put on the bus, marked published once the bus took it.
    "relay.event": {"dynamodb.UpdateItem": 2, "events.PutEvents": 1},
    # A booking and a note in one batch: the mail as above, each history entry as above. One PutEvents per
    # record, though it takes 10 entries: each record is claimed, put and marked on its own so that a failure
    # retries that record alone (the stream's partial batch response). EventBridge bills per entry: batching
    # would save latency (about 20 ms per extra entry), not money.
    "relay.booking_batch": {
        "dynamodb.GetItem": 1,
        "dynamodb.UpdateItem": 6,
        "events.PutEvents": 2,
        "sesv2.SendEmail": 1,
    },
    # A new container reads the PSA credentials and looks up Autotask's zone (both kept for its life).
    "psa.write_first": {
        "autotask.GET TicketNotes/query": 1,
        "autotask.GET zoneInformation": 1,
        "autotask.PATCH Tickets": 1,
        "autotask.POST Tickets/{id}/Notes": 1,
        "dynamodb.Query": 1,
        "dynamodb.TransactWriteItems": 1,
        "secretsmanager.GetSecretValue": 1,
    },
    # The appointment loaded once (written already?), the status, the note searched then added, the write
    # recorded on the record loaded (conditional on its version: reloaded only if someone committed meanwhile).
    "psa.write": {
        "autotask.GET TicketNotes/query": 1,
        "autotask.PATCH Tickets": 1,
        "autotask.POST Tickets/{id}/Notes": 1,
        "dynamodb.Query": 1,
        "dynamodb.TransactWriteItems": 1,
    },
    # A redelivered event: the load finds it written; the PSA is not called.
    "psa.write_again": {"dynamodb.Query": 1},
    # Every ops action: the appointment read, one transaction (state, history, mail).
    "ops.confirm": {"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1},
    "ops.reassign": {"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1},
    # The detail: state, history and mails in one query of the appointment's items.
    "ops.get": {"dynamodb.Query": 1},
    # GET /attention: one query per UTC day of [now - 2 days, now + 7 days) (10 days), one page of the
    # unmatched events.
    "console.attention_empty": {"dynamodb.Query": 11},
    # ... plus one load per appointment in that window with a record needing a human in the last 2 days (its
    # attention_at): 1 of the 3 booked here. A busy day's ordinary changes cost nothing (was one load each).
    "console.attention_three": {"dynamodb.Query": 12},
    # The Today screen (and its 10-second refresh): attention (11), the day's list (2 UTC days).
    "console.today": {"dynamodb.Query": 13},
    # The appointment screen (and its refresh): attention (11), the detail (1).
    "console.appointment": {"dynamodb.Query": 12},
}
