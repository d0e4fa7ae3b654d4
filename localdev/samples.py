"""Moving a sample webhook's times to the runner's clock, for ``localdev send`` and ``localdev demo``.

The samples under ``events/`` were written for one week of November 2026. Sent as they are to a runner
whose clock says otherwise, their appointments are in the past (or far ahead) and no timed rule ever
fires. ``shifted`` moves every time in a sample by the same whole number of days, so that the sample's
earliest appointment start lands on the day after the runner's date, at the same time of day, and the
sample keeps its offsets: the event's own time (``occurred_at``, ``createdAt``, ``created_at``,
``EventTime``, ``timestamp``) moves with its booking. The days are counted in UTC: across a daylight-saving change the
customer's local time of day moves by the hour of the change.

A sample without an appointment start (an Autotask ticket change, a generic assignment) is anchored on
its event time instead, the same day its booking in the samples starts on, so that a story of samples
shifted one by one stays together. ``shift_days`` of several documents gives one shift for a whole
story (``localdev demo``).

Pure functions: no clock, no I/O.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

# The paths (keys from the document's root) of each source's times. The first group are appointment
# starts (the anchor); the rest move by the same shift. A path the document lacks, or whose value is not
# a time, is left alone.
_STARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "generic": (("appointment", "start"),),
    "calcom": (("payload", "startTime"), ("payload", "rescheduleStartTime")),
    "calendly": (("payload", "scheduled_event", "start_time"),),
    "autotask": (),
    "connectwise": (),
    "halopsa": (("appointment", "start_date"),),
}
_EVENT_TIMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "generic": (("occurred_at",),),
    "calcom": (("createdAt",),),
    "calendly": (("created_at",),),
    "autotask": (("EventTime",),),
    "connectwise": (),
    "halopsa": (("timestamp",),),
}
_OTHER_TIMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "generic": (("appointment", "end"),),
    "calcom": (("payload", "endTime"), ("payload", "rescheduleEndTime")),
    "calendly": (
        ("payload", "created_at"),
        ("payload", "updated_at"),
        ("payload", "scheduled_event", "end_time"),
        ("payload", "scheduled_event", "created_at"),
        ("payload", "scheduled_event", "updated_at"),
        ("payload", "no_show", "created_at"),
        ("payload", "cancellation", "created_at"),
        ("payload", "scheduled_event", "cancellation", "created_at"),
    ),
    "autotask": (),
    "connectwise": (),  # its times are inside Entity, a JSON string: sent as they are
    "halopsa": (("appointment", "end_date"),),
}
SOURCES = tuple(_STARTS)

# An ISO 8601 time as the vendors write it: the date is all a whole-day shift changes.
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)$")


def shifted(source: str, document: Any, now: datetime) -> Any:
    """A copy of ``document`` with every time moved so its earliest start is on the day after ``now``."""
    return shift(source, document, shift_days([(source, document)], now))


def shift_days(documents: list[tuple[str, Any]], now: datetime) -> int:
    """Whole days that move the earliest anchor of ``documents`` (source, document) to the day after ``now``.

    The anchor of a document is its earliest appointment start, or its event time when it has none; 0
    when no document has either. ``now`` is read in UTC (a naive one is taken as UTC).
    """
    anchors = [day for source, document in documents if (day := _anchor(source, document)) is not None]
    if not anchors:
        return 0
    today = now.astimezone(UTC).date() if now.tzinfo is not None else now.date()
    return (today + timedelta(days=1) - min(anchors)).days


def shift(source: str, document: Any, days: int) -> Any:
    """A copy of ``document`` with each of the source's times moved by ``days`` (same time of day)."""
    _check(source)
    result = copy.deepcopy(document)
    for path in _STARTS[source] + _EVENT_TIMES[source] + _OTHER_TIMES[source]:
        parent = _parent(result, path)
        if parent is None:
            continue
        text = parent[path[-1]]
        moved = _shifted_text(text, days) if isinstance(text, str) else None
        if moved is not None:
            parent[path[-1]] = moved
    return result


def _anchor(source: str, document: Any) -> date | None:
    _check(source)
    starts = [day for path in _STARTS[source] if (day := _day_at(document, path)) is not None]
    if starts:
        return min(starts)
    times = [day for path in _EVENT_TIMES[source] if (day := _day_at(document, path)) is not None]
    return min(times) if times else None


def _day_at(document: Any, path: tuple[str, ...]) -> date | None:
    parent = _parent(document, path)
    if parent is None or not isinstance(parent[path[-1]], str):
        return None
    match = _TIME.match(parent[path[-1]])
    if match is None:
        return None
    moment = datetime.fromisoformat(parent[path[-1]].replace("Z", "+00:00"))
    return moment.astimezone(UTC).date() if moment.tzinfo is not None else moment.date()


def _parent(document: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    """The dict holding ``path``'s last key, or None when the document lacks it."""
    node = document
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and path[-1] in node:
        return node
    return None


def _shifted_text(text: str, days: int) -> str | None:
    match = _TIME.match(text)
    if match is None:
        return None
    return (date.fromisoformat(match.group(1)) + timedelta(days=days)).isoformat() + match.group(2)


def _check(source: str) -> None:
    if source not in _STARTS:
        raise KeyError(source)
