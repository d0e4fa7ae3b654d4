"""The shared helpers of the sources on hostile input: a typed refusal (401, 400), never a crash (500)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from appointments.errors import InvalidSignature, MalformedPayload
from appointments.sources.base import load_json_object, verify_timestamped_signature

SECRET = "whsec_edges"
NOW = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
BODY = b'{"event_id": "evt_1"}'
# Digits str.isdigit() passes and int() refuses or reads: superscript two, Arabic-Indic and fullwidth digits.
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10)))


def header_with(timestamp: str, body: bytes = BODY) -> str:
    """A header whose v1 is the true HMAC over ``"<timestamp>.<body>"``: only the timestamp can be wrong."""
    digest = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def test_a_plain_unix_timestamp_still_verifies() -> None:
    verify_timestamped_signature(header_with(str(int(NOW.timestamp()))), SECRET, BODY, NOW, tolerance_seconds=300)


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("\u0661\u0662\u0663", id="arabic-indic-digits"),
        pytest.param(str(int(NOW.timestamp())).translate(FULLWIDTH), id="fullwidth-now"),
        pytest.param("1" * 5000, id="5000-digits"),
        pytest.param(str(int(NOW.timestamp())).zfill(5000), id="now-zero-padded-to-5000-digits"),
        pytest.param(str(int(NOW.timestamp())).zfill(13), id="now-zero-padded-to-13-digits"),
        pytest.param("-" + str(int(NOW.timestamp())), id="negative"),
        pytest.param(" " + str(int(NOW.timestamp())) + "\n", id="trailing-newline"),
        pytest.param("", id="empty"),
    ],
)
def test_a_timestamp_that_is_not_a_few_ascii_digits_is_an_invalid_signature(timestamp: str) -> None:
    # Given a header correctly signed over a timestamp that is not plain ASCII Unix time
    header = header_with(timestamp)

    # When it is verified, then it is refused as any bad signature is: never a ValueError
    with pytest.raises(InvalidSignature):
        verify_timestamped_signature(header, SECRET, BODY, NOW, tolerance_seconds=300)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="lists-50000-deep"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="objects-50000-deep"),
        pytest.param(b'{"a": ' + b"9" * 5000 + b"}", id="5000-digit-integer"),
    ],
)
def test_json_the_parser_cannot_hold_is_a_malformed_payload(body: bytes) -> None:
    # When a body nested past the interpreter's stack, or with an integer int() refuses, is loaded,
    # then it is a 400 like any body that is not JSON: never a RecursionError or ValueError
    with pytest.raises(MalformedPayload):
        load_json_object(body)
