"""Typed errors of the product.

Every failure a caller can act on is one of these classes. Each carries a stable ``code``, the HTTP
status an API maps it to, and whether retrying the same request may succeed. Callers branch on the
class, never on the message text; the message is for people and never holds secrets or personal data.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence


class AppError(Exception):
    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, details: Sequence[dict[str, object]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: tuple[dict[str, object], ...] = tuple(details)


class NotFound(AppError):
    code = "not_found"
    http_status = HTTPStatus.NOT_FOUND


class AppointmentNotFound(NotFound):
    code = "appointment_not_found"

    def __init__(self, appointment_id: str) -> None:
        super().__init__(f"appointment {appointment_id!r} does not exist")
        self.appointment_id = appointment_id


class InvalidInput(AppError):
    """Input that is well-formed but breaks a rule; the message names the field."""

    code = "invalid_input"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details=({"field": field, "message": message},))
        self.field = field


class UnknownAppointmentType(InvalidInput):
    code = "unknown_appointment_type"

    def __init__(self, key: str, known: Sequence[str]) -> None:
        super().__init__("type", f"unknown appointment type {key!r}; known types: {', '.join(sorted(known))}")
        self.key = key


class InvalidTransition(AppError):
    """The action is not allowed in the appointment's current status."""

    code = "invalid_transition"
    http_status = HTTPStatus.CONFLICT

    def __init__(self, *, status: str, action: str, allowed: Sequence[str], reason: str | None = None) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        because = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot {action} an appointment that is {status}{because}; allowed actions: {allowed_text}",
            details=({"status": status, "action": action, "allowed_actions": list(allowed)},),
        )
        self.status = status
        self.action = action
        self.allowed = tuple(allowed)


class VersionConflict(AppError):
    """Another writer changed the appointment first; re-read and decide again."""

    code = "version_conflict"
    http_status = HTTPStatus.CONFLICT
    retryable = True

    def __init__(self, appointment_id: str, expected_version: int) -> None:
        super().__init__(f"appointment {appointment_id!r} changed since version {expected_version}")
        self.appointment_id = appointment_id
        self.expected_version = expected_version


class AlreadyExists(AppError):
    code = "already_exists"
    http_status = HTTPStatus.CONFLICT


class AppointmentNotYetKnown(AppError):
    """An event about a booking no appointment holds yet; retried, since its creation may still be queued."""

    code = "appointment_not_yet_known"
    http_status = HTTPStatus.CONFLICT
    retryable = True


class ExternalRefTaken(AlreadyExists):
    """The external id already belongs to an appointment: the first writer won."""

    code = "external_ref_taken"

    def __init__(self, system: str, external_id: str, appointment_id: str | None) -> None:
        super().__init__(f"{system}:{external_id} already belongs to an appointment")
        self.system = system
        self.external_id = external_id
        self.appointment_id = appointment_id


class CouponCodeTaken(AlreadyExists):
    """A new coupon's code is already in use (a one-in-2^80 draw): draw another."""

    code = "coupon_code_taken"
    retryable = True

    def __init__(self) -> None:
        super().__init__("the coupon code is already in use")


class StoreUnavailable(AppError):
    """The store is throttled or failing; the same request may succeed later."""

    code = "store_unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class ConfigError(AppError):
    code = "config_error"


class StoreError(AppError):
    """The store refused a request for a reason retrying will not fix (a bug or a misconfiguration)."""

    code = "store_error"


class UnknownSource(NotFound):
    code = "unknown_source"

    def __init__(self, source: str, known: Sequence[str]) -> None:
        super().__init__(f"no webhook source {source!r}; known sources: {', '.join(sorted(known))}")
        self.source = source


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the body is larger than {limit_bytes // 1024} KiB")


class SecretsUnavailable(AppError):
    """The secret store could not be read; the sender must retry."""

    code = "secrets_unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class QueueUnavailable(AppError):
    """The event could not be queued; the sender must retry (nothing was stored)."""

    code = "queue_unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class InvalidSignature(AppError):
    """A webhook's signature is missing, wrong, stale, or made with an unknown secret.

    The message is the same whatever the cause, so it tells an attacker nothing.
    """

    code = "unauthorized"
    http_status = HTTPStatus.UNAUTHORIZED

    def __init__(self) -> None:
        super().__init__("the request signature is missing or not valid")


class MalformedPayload(AppError):
    """The body is not JSON, or not the vendor's form at all."""

    code = "malformed_payload"
    http_status = HTTPStatus.BAD_REQUEST


class UnsupportedPayload(InvalidInput):
    """A webhook's JSON of the wrong shape; the message names the field."""

    code = "unsupported_payload"


class PreconditionFailed(AppError):
    """``If-Match`` named a version that is no longer current: re-read, then decide again."""

    code = "precondition_failed"
    http_status = HTTPStatus.PRECONDITION_FAILED

    def __init__(self, appointment_id: str, given: int, current: int | None) -> None:
        now = f"; it is now version {current}" if current is not None else ""
        super().__init__(
            f"appointment {appointment_id!r} is no longer version {given}{now}",
            details=({"given_version": given, "current_version": current},),
        )


class Unauthenticated(AppError):
    """The caller has no identity the API can act for."""

    code = "unauthorized"
    http_status = HTTPStatus.UNAUTHORIZED

    def __init__(self) -> None:
        super().__init__("the request carries no caller identity")


class MailThrottled(AppError):
    """The mail service is throttling or failing for now: the mail goes back to pending and is retried."""

    code = "mail_throttled"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class MailRejected(AppError):
    """The mail service refused this mail for good (an address it will not send to, content it rejects)."""

    code = "mail_rejected"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


class EventsUnavailable(AppError):
    """The event bus did not take every event: the stream record is retried."""

    code = "events_unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class VendorUnavailable(AppError):
    """A vendor's API did not answer usefully (timeouts, connection errors, 5xx after retries): try later."""

    code = "vendor_unavailable"
    http_status = HTTPStatus.BAD_GATEWAY
    retryable = True

    def __init__(self, vendor: str, reason: str) -> None:
        super().__init__(f"{vendor}: {reason}")
        self.vendor = vendor


class VendorRateLimited(VendorUnavailable):
    """The vendor said 429: wait ``retry_after`` seconds before the next request to it."""

    code = "vendor_rate_limited"

    def __init__(self, vendor: str, retry_after: float) -> None:
        super().__init__(vendor, f"rate limited; retry after {retry_after:g} s")
        self.retry_after = retry_after


class VendorRefused(AppError):
    """A vendor's API refused the request (401, 403, 404, 422 ...): retrying the same request will not help."""

    code = "vendor_refused"
    http_status = HTTPStatus.BAD_GATEWAY

    def __init__(self, vendor: str, status: int) -> None:
        super().__init__(f"{vendor}: the API answered {status}")
        self.vendor = vendor
        self.status = status


class SigningKeyUnavailable(AppError):
    """A webhook's signing key could not be fetched from its vendor (ConnectWise's ``key_url``): 503, so the
    sender retries; nothing was queued."""

    code = "signing_key_unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True
