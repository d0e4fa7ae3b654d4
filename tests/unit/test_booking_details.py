"""BookingDetails holds no more than an appointment does, and vendors' extras are clipped to fit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from appointments.domain.events import (
    MAX_ANSWERS,
    MAX_ANSWERS_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEYS,
    MAX_TECHNICIANS,
    BookingDetails,
    json_bytes,
    kept_answers,
    kept_metadata,
    nesting_depth,
)
from appointments.domain.model import Answer, Technician, TicketRef
from tests.factories import DANA, START


def details(**overrides: Any) -> BookingDetails:
    fields: dict[str, Any] = {
        "start": START,
        "end": START + timedelta(minutes=30),
        "timezone": "America/New_York",
        "customer": DANA,
    }
    fields.update(overrides)
    return BookingDetails(**fields)


def refused_field(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        details(**overrides)
    [error] = raised.value.errors()
    return ".".join(str(part) for part in error["loc"])


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_a_booking_within_every_bound_is_taken() -> None:
    # Given a booking at every limit
    technicians = tuple(Technician(id=f"t-{i}", name=f"Tech {i}") for i in range(MAX_TECHNICIANS))
    answers = tuple(Answer(question=f"q{i}", answer="a") for i in range(MAX_ANSWERS))
    metadata = {f"k{i}": i for i in range(MAX_METADATA_KEYS)}
    ticket = TicketRef(system="a" * 500, id="b" * 500)
    # When it is built, Then it holds them all
    booking = details(technicians=technicians, answers=answers, metadata=metadata, ticket=ticket)
    assert (len(booking.technicians or ()), len(booking.answers), len(booking.metadata)) == (20, 50, 50)


@pytest.mark.parametrize("length", [timedelta(0), -timedelta(minutes=30)])
def test_an_end_not_after_the_start_is_refused_naming_the_end(length: timedelta) -> None:
    assert refused_field(end=START + length) == "end"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"technicians": tuple(Technician(id=f"t-{i}", name="T") for i in range(21))}, "technicians"),
        ({"answers": tuple(Answer(question="q", answer="a") for _ in range(51))}, "answers"),
        ({"answers": tuple(Answer(question="q" * 500, answer="€" * 5000) for _ in range(5))}, "answers"),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "metadata"),
        ({"metadata": {"notes": "x" * MAX_METADATA_BYTES}}, "metadata"),
        ({"metadata": {"deep": nested(MAX_METADATA_DEPTH)}}, "metadata"),
        ({"ticket": TicketRef(system="psa", id="😀" * 250)}, "ticket"),
    ],
    ids=[
        "21-technicians",
        "51-answers",
        "answers-over-64-KiB",
        "51-metadata-keys",
        "metadata-over-16-KiB",
        "metadata-too-deep",
        "ticket-id-over-1000-bytes",
    ],
)
def test_more_than_an_appointment_holds_is_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    assert refused_field(**overrides) == field


def test_answers_are_clipped_in_order_to_the_count_and_the_size_an_appointment_holds() -> None:
    # Given more answers than fit, some of them large
    large = [Answer(question=f"big {i}", answer="€" * 5000) for i in range(10)]
    small = [Answer(question=f"small {i}", answer="yes") for i in range(60)]
    # When they are clipped
    kept = kept_answers([*large, *small])
    # Then the first ones that fit are kept, in order, and the details take them
    assert len(kept) == MAX_ANSWERS
    assert json_bytes(kept) <= MAX_ANSWERS_BYTES
    assert [a.question for a in kept[:4]] == ["big 0", "big 1", "big 2", "big 3"]
    assert kept[-1].question == f"small {MAX_ANSWERS - 5}"
    assert details(answers=kept).answers == kept


def test_metadata_is_clipped_in_order_leaving_out_what_does_not_fit() -> None:
    # Given metadata with a value too deep, one too large, and more keys than fit
    metadata = {"deep": nested(MAX_METADATA_DEPTH), "huge": "x" * MAX_METADATA_BYTES}
    metadata |= {f"k{i}": i for i in range(60)}
    # When it is clipped
    kept = kept_metadata(metadata)
    # Then what could not be held is left out and the rest kept in order up to the key limit
    assert list(kept) == [f"k{i}" for i in range(MAX_METADATA_KEYS)]
    assert details(metadata=kept).metadata == kept


def test_metadata_at_the_depth_limit_is_kept() -> None:
    metadata = {"deep": nested(MAX_METADATA_DEPTH - 1)}
    assert kept_metadata(metadata) == metadata
    assert nesting_depth(metadata) == MAX_METADATA_DEPTH


def test_nesting_depth_stops_counting_past_its_limit() -> None:
    assert nesting_depth("text") == 0
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    assert nesting_depth(nested(900), limit=4) == 5
