"""Export or erase one customer's data: ``python -m tools.customer_data export|erase --email <address> [--table T]``.

An admin tool (docs/reliability.md, "Data lifecycle"): it scans the whole table, page by page (a filter on the
item kind; the customer's email address, in any letter case, is matched on each document), so it costs a full
read of the table. It finds

- every appointment whose customer has that address (letter case ignored), with all that is kept under it:
  its history, its mails (the outbox), its external ids (``REF#``), its ticket links (``TICKET#``) and the
  coupon it was offered (``COUPON#``);
- every event still waiting for its booking (``WAIT#``) that names the address.

``export`` prints them as one JSON document (``--out FILE`` writes it to a file). ``erase`` deletes every item
found and prints what it deleted, by kind; ``--dry-run`` only counts. The table is ``--table``, else
``$TABLE_NAME``; the region is boto3's (``AWS_REGION``/``AWS_DEFAULT_REGION``, or ``--region``). Backups
(point-in-time recovery, 35 days) still hold erased data until they age out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient

Key = dict[str, Any]
BATCH = 25  # BatchWriteItem's most


def _scan(client: DynamoDBClient, table: str) -> Iterator[Mapping[str, Any]]:
    """Every appointment and waiting-event item, page by page. The address is matched here, not in the filter:
    DynamoDB's ``contains`` is case-sensitive, and vendors send addresses in any letter case."""
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#kind IN (:appointment, :waiting)",
        "ProjectionExpression": "PK, SK, #kind, #doc",
        "ExpressionAttributeNames": {"#kind": "kind", "#doc": "doc"},
        "ExpressionAttributeValues": {":appointment": {"S": "appointment"}, ":waiting": {"S": "waiting"}},
    }
    while True:
        page = client.scan(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _is_customers(item: Mapping[str, Any], email: str) -> bool:
    document = json.loads(item["doc"]["S"])
    if item["kind"]["S"] == "appointment":
        customer = document.get("customer") or {}
        return str(customer.get("email") or "").casefold() == email.casefold()
    return email.casefold() in item["doc"]["S"].casefold()  # a waiting event: the address anywhere in it


def _partition(client: DynamoDBClient, table: str, pk: str) -> list[Mapping[str, Any]]:
    items: list[Mapping[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**request)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _get(client: DynamoDBClient, table: str, key: Key) -> Mapping[str, Any] | None:
    return client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _linked_keys(appointment: Mapping[str, Any], appointment_id: str) -> list[Key]:
    """The items outside the appointment's partition that point at it: external ids, ticket link, coupon."""
    document = json.loads(appointment["doc"]["S"])
    keys: list[Key] = [
        {"PK": {"S": f"REF#{ref['system']}#{ref['id']}"}, "SK": {"S": "REF"}}
        for ref in document.get("external_refs") or []
    ]
    ticket = document.get("ticket")
    if ticket:
        keys.append({"PK": {"S": f"TICKET#{ticket['system']}#{ticket['id']}"}, "SK": {"S": f"APPT#{appointment_id}"}})
    coupon = (document.get("cancellation") or {}).get("coupon")
    if coupon:
        keys.append({"PK": {"S": f"COUPON#{coupon['code']}"}, "SK": {"S": "COUPON"}})
    return keys


def find(client: DynamoDBClient, table: str, email: str) -> list[Mapping[str, Any]]:
    """Every item holding or pointing at the customer's data (see the module's docstring)."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for hit in _scan(client, table):
        if not _is_customers(hit, email):
            continue
        if hit["kind"]["S"] == "waiting":
            found[(hit["PK"]["S"], hit["SK"]["S"])] = _get(client, table, {"PK": hit["PK"], "SK": hit["SK"]}) or hit
            continue
        appointment_id = hit["PK"]["S"].removeprefix("APPT#")
        for item in _partition(client, table, hit["PK"]["S"]):
            found[(item["PK"]["S"], item["SK"]["S"])] = item
        for key in _linked_keys(hit, appointment_id):
            linked = _get(client, table, key)
            # An external id handed to another appointment (a merge) is that appointment's, not this one's.
            if linked is not None and linked.get("appointment_id", {}).get("S") == appointment_id:
                found[(key["PK"]["S"], key["SK"]["S"])] = linked
    return list(found.values())


def _plain(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as JSON; ``doc`` attributes (JSON text) are parsed."""
    [(kind, inner)] = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return int(inner) if inner.lstrip("-").isdigit() else float(inner)
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    if kind in ("SS", "NS"):
        return sorted(inner)
    return inner


def export(client: DynamoDBClient, table: str, email: str) -> dict[str, Any]:
    """The customer's appointments (each with its history, mails and links) and waiting events, as JSON."""
    appointments: dict[str, dict[str, Any]] = {}
    waiting: list[Any] = []
    linked: list[dict[str, Any]] = []
    for item in sorted(find(client, table, email), key=lambda i: (i["PK"]["S"], i["SK"]["S"])):
        kind = item.get("kind", {}).get("S")
        fields = {k: (json.loads(v["S"]) if k in ("doc", "appointment") else _plain(v)) for k, v in item.items()}
        if kind == "waiting":
            waiting.append(fields["doc"])
        elif item["PK"]["S"].startswith("APPT#"):
            entry = appointments.setdefault(
                item["PK"]["S"].removeprefix("APPT#"), {"appointment": None, "history": [], "mails": []}
            )
            if kind == "appointment":
                entry["appointment"] = fields["doc"]
            elif kind == "history":
                entry["history"].append(fields["doc"])
            elif kind == "mail":
                entry["mails"].append({k: v for k, v in fields.items() if k not in ("PK", "SK", "kind")})
        else:
            linked.append(fields)
    return {
        "email": email,
        "table": table,
        "exported_at": datetime.now(UTC).isoformat(),
        "appointments": list(appointments.values()),
        "waiting_events": waiting,
        "links": linked,
    }


def erase(client: DynamoDBClient, table: str, email: str, *, dry_run: bool = False) -> dict[str, int]:
    """Delete every item :func:`find` finds; how many of each kind (appointment, history, mail, ref, ...)."""
    items = find(client, table, email)
    counts = Counter(item.get("kind", {}).get("S", "other") for item in items)
    if not dry_run:
        keys = [{"PK": item["PK"], "SK": item["SK"]} for item in items]
        for first in range(0, len(keys), BATCH):
            requests: list[Any] = [{"DeleteRequest": {"Key": key}} for key in keys[first : first + BATCH]]
            pending: dict[str, Any] = {table: requests}
            while pending:
                pending = dict(client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.customer_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("export", "erase"))
    parser.add_argument("--email", required=True, help="the customer's email address (letter case ignored)")
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="the table (default: $TABLE_NAME)")
    parser.add_argument("--region", default=None, help="the table's region (default: boto3's)")
    parser.add_argument("--out", default=None, help="export: write the JSON here instead of to stdout")
    parser.add_argument("--dry-run", action="store_true", help="erase: count what would go, delete nothing")
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("--table (or $TABLE_NAME) is required: the stack's AppointmentsTableName output")
    if "@" not in args.email:
        parser.error("--email must be an email address")
    client: DynamoDBClient = boto3.client("dynamodb", region_name=args.region)
    if args.command == "export":
        text = json.dumps(export(client, args.table, args.email), indent=2, ensure_ascii=False)
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
            print(f"exported to {args.out}", file=sys.stderr)
        else:
            print(text)
        return 0
    counts = erase(client, args.table, args.email, dry_run=args.dry_run)
    print(json.dumps({"email": args.email, "dry_run": args.dry_run, "deleted": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
