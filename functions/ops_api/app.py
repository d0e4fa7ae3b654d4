"""The ops API: every back-office action (docs/ops-api.md). IAM auth in AWS, a bearer token locally.

The caller's identity (the IAM user or role ARN API Gateway puts in the request context) is the actor
in history; a request without one is refused before its body is read.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from appointments import wiring
from appointments.api.ops import (
    ACTION_ERRORS,
    CHECK_IN,
    CREATE_ERRORS,
    READ_ERRORS,
    REOPEN,
    RUN_ERRORS,
    AppointmentDetail,
    AppointmentList,
    AppointmentView,
    AttentionList,
    CancelBody,
    ChecksRun,
    CompleteBody,
    ConfirmBody,
    ContactAttemptBody,
    CreateBody,
    DeferBody,
    EmptyBody,
    HoldBody,
    NoShowBody,
    NoteBody,
    ReassignBody,
    RequestRescheduleBody,
    RescheduleBody,
    UnmatchedEvent,
    UnmatchedList,
    answers,
    external_ref,
    if_match_version,
    ticket_ref,
)
from appointments.domain.model import Actor, Status, UtcDatetime
from appointments.http import (
    caller_identity,
    console_cors,
    form_body,
    json_body,
    register_error_handlers,
    unauthenticated,
)
from appointments.observability import logger, metrics, record_sweep, tracer
from appointments.services.back_office import AppointmentQuery

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from appointments.domain.model import Appointment
    from appointments.services.back_office import Command

app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=json_body)
DOCS_PATH = "/docs"  # Swagger UI, public; every other route needs a caller
ROOT_PATH = "/"  # public too: points a browser at the documentation
PUBLIC_PATHS = (DOCS_PATH, ROOT_PATH)
TITLE = "Appointment desk: ops API"
DESCRIPTION = (
    "Every back-office action on appointments. In AWS every request is signed (IAM auth) and the caller's "
    "identity becomes the actor in history; the local runner takes `Authorization: Bearer $OPS_API_TOKEN`. "
    'Errors share one shape: `{"error": {"code", "message", "details"}, "request_id"}`. Actions take '
    "`If-Match: <version>` (bare or quoted) and answer 412 when it is stale; responses carry the version as ETag."
)


@functools.cache
def document_api() -> None:
    """Title, servers and security of the OpenAPI document, and Swagger UI at /docs. Done on the first request
    for the docs (or by ``make openapi``), not at import: Powertools' OpenAPI models take longer to import than
    the rest of this function, and no other request needs them."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    # The local runner (and `sam local start-api`) serve the routes at the root; API Gateway's own URL has
    # the stage in its path. Swagger UI tries the first.
    servers = [
        Server(url="/", description="The local runner: routes at the root, `Authorization: Bearer $OPS_API_TOKEN`."),
        Server(url="/v1", description="API Gateway's execute-api URL (stage v1): IAM-signed requests only."),
    ]
    bearer = HTTPBearer(
        description="The local runner's OPS_API_TOKEN; in AWS requests are IAM-signed (SigV4), which a browser "
        "cannot do."
    )
    app.configure_openapi(
        title=TITLE,
        version="1.0.0",
        description=DESCRIPTION,
        servers=servers,
        security_schemes={"opsToken": bearer},
        security=[{"opsToken": []}],  # every documented route; /docs and / are not in the document
    )
    # The servers are given again: without them Swagger UI would name the stage path the request came by.
    app.enable_swagger(path=DOCS_PATH, servers=servers, persist_authorization=True)


register_error_handlers(app)

ACTED = answers(AppointmentView, ACTION_ERRORS)
IfMatch = Annotated[str | None, Header(alias="If-Match", description="The version the change is meant for.")]
# An action without fields (check-in, reopen) takes `{}` or no body at all, and refuses anything else.
NoBody = Annotated[EmptyBody | None, Body(description="`{}`, or no body.")]


def _actor() -> Actor:
    return Actor.ops(caller_identity(app.current_event.raw_event) or "unknown")


def _answer(appointment: Appointment, body: AppointmentView, status_code: int = 200) -> Response[AppointmentView]:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"ETag": f'"{appointment.version}"'},
    )


def _acted(appointment_id: str, command: Command, if_match: str | None) -> Response[AppointmentView]:
    after = wiring.back_office().act(appointment_id, command, actor=_actor(), if_match=if_match_version(if_match))
    return _answer(after, AppointmentView.of(after))


@app.get(ROOT_PATH, include_in_schema=False)
def root() -> Response[str]:
    # Relative: from the runner's / it is /docs, from API Gateway's /v1/ it is /v1/docs.
    return Response(
        status_code=302,
        content_type=content_types.APPLICATION_JSON,
        body='{"docs": "docs", "message": "Swagger UI is at docs (the OpenAPI document: docs?format=json)"}',
        headers={"Location": "docs"},
    )


@app.get(
    "/appointments",
    summary="List appointments by start time, with filters",
    responses=answers(AppointmentList, READ_ERRORS),
)
def list_appointments(
    start_from: Annotated[UtcDatetime | None, Query(alias="from", description="Start at or after (ISO-8601).")] = None,
    start_to: Annotated[UtcDatetime | None, Query(alias="to", description="Start before (ISO-8601).")] = None,
    status: Annotated[Status | None, Query()] = None,
    unassigned: Annotated[bool | None, Query()] = None,
    technician: Annotated[str | None, Query(max_length=500, description="A technician id.")] = None,
    external_id: Annotated[str | None, Query(max_length=200, description="<system>:<id>")] = None,
    ticket: Annotated[
        str | None,
        Query(
            max_length=200,
            description="<system>:<id> of a ticket, e.g. autotask:48213: every appointment linked to it, by start "
            "(other filters apply; `from` and `to` do not). The ticket's id, not its number (T20261123.0004): "
            "the link is kept by system and id.",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=200,
            description="Search: a case-insensitive part of the customer's name, email or company, the ticket's "
            "number or id, the appointment's id or an external id. Without `from`/`to` it looks from 7 days ago to "
            "30 days ahead. Combines with the other filters.",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AppointmentList:
    query = AppointmentQuery(
        start_from=start_from,
        start_to=start_to,
        status=status,
        unassigned=unassigned,
        technician=technician,
        external_ref=external_ref(external_id) if external_id else None,
        ticket=ticket_ref(ticket) if ticket else None,
        text=q,
        limit=limit,
        cursor=cursor,
    )
    page = wiring.back_office().find(query)
    return AppointmentList(items=[AppointmentView.of(a) for a in page.items], next_cursor=page.next_cursor)


@app.get(
    "/attention",
    summary="What needs a human now, most urgent first",
    description="Unassigned appointments starting within 24 h, at-risk and unassigned-at-start alerts, failed "
    "and bounced mails, PSA write-back failures (recorded in the last 2 days about appointments starting from 2 "
    "days ago to 7 days ahead, not yet resolved) and booking changes waiting for their booking; each with the "
    "suggested action.",
    responses=answers(AttentionList, READ_ERRORS),
)
def attention() -> AttentionList:
    return AttentionList.of(wiring.attention().report())


@app.get(
    "/unmatched",
    summary="Events waiting for a booking or ticket the desk does not hold yet",
    description="Each is applied the moment its booking arrives, and dropped when `expires_at` passes "
    "(`UnmatchedEventRetentionHours`). Soonest dropped first.",
    responses=answers(UnmatchedList, READ_ERRORS),
)
def list_unmatched(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> UnmatchedList:
    page = wiring.back_office().unmatched(limit=limit, cursor=cursor)
    return UnmatchedList(items=[UnmatchedEvent.of(w) for w in page.items], next_cursor=page.cursor)


@app.post(
    "/checks/run",
    summary="Run the timed rules now (reminder, pre-notice, auto-cancel, no-show)",
    description="What every minute's run does, at once. Effects keep `system` as their actor; the caller is in "
    "each history entry's detail as `requested_by`.",
    responses=answers(ChecksRun, RUN_ERRORS),
)
def run_checks(body: NoBody = None) -> ChecksRun:
    context = app.lambda_context
    report = wiring.sweeper().sweep(
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000, requested_by=_actor().id
    )
    record_sweep(report)
    return ChecksRun.model_validate(report.summary())


@app.get(
    "/appointments/<appointment_id>",
    summary="One appointment with notes, contact attempts and history",
    responses=answers(AppointmentDetail, READ_ERRORS),
)
def get_appointment(appointment_id: str) -> Response[AppointmentDetail]:
    record = wiring.back_office().detail(appointment_id)
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=AppointmentDetail.of_record(record),
        headers={"ETag": f'"{record.appointment.version}"'},
    )


@app.post(
    "/appointments",
    summary="Create an appointment agreed by phone",
    responses=answers(AppointmentView, CREATE_ERRORS, status=201),
)
def create_appointment(body: CreateBody) -> Response[AppointmentView]:
    created = wiring.back_office().create(body.draft(), actor=_actor())
    return _answer(created, AppointmentView.of(created), status_code=201)


@app.post(
    "/appointments/<appointment_id>/reschedule",
    summary="Move to a new time; the customer is mailed",
    responses=ACTED,
)
def reschedule(appointment_id: str, body: RescheduleBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post(
    "/appointments/<appointment_id>/request-reschedule",
    summary="Ask the customer to pick a new time",
    responses=ACTED,
)
def request_reschedule(
    appointment_id: str, body: RequestRescheduleBody, if_match: IfMatch = None
) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post(
    "/appointments/<appointment_id>/reassign",
    summary="Replace the technicians; the customer is mailed",
    responses=ACTED,
)
def reassign(appointment_id: str, body: ReassignBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post("/appointments/<appointment_id>/confirm", summary="Accept a requested appointment", responses=ACTED)
def confirm(appointment_id: str, body: ConfirmBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post(
    "/appointments/<appointment_id>/cancel",
    summary="Cancel, offering a coupon unless a discount exists",
    responses=ACTED,
)
def cancel(appointment_id: str, body: CancelBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post("/appointments/<appointment_id>/complete", summary="Record the work done", responses=ACTED)
def complete(appointment_id: str, body: CompleteBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post(
    "/appointments/<appointment_id>/reopen",
    summary="Back to scheduled from completed or no-show",
    responses=ACTED,
)
def reopen(appointment_id: str, body: NoBody = None, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, REOPEN, if_match)


@app.post(
    "/appointments/<appointment_id>/no-show",
    summary="Mark the customer absent (once the start has passed)",
    responses=ACTED,
)
def no_show(appointment_id: str, body: NoShowBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post("/appointments/<appointment_id>/check-in", summary="The customer called in: no no-show", responses=ACTED)
def check_in(appointment_id: str, body: NoBody = None, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, CHECK_IN, if_match)


@app.post("/appointments/<appointment_id>/notes", summary="Add an internal note (never mailed)", responses=ACTED)
def add_note(appointment_id: str, body: NoteBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post(
    "/appointments/<appointment_id>/contact-attempts",
    summary="Log a call; mails the link unless reached",
    responses=ACTED,
)
def contact_attempt(
    appointment_id: str, body: ContactAttemptBody, if_match: IfMatch = None
) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post("/appointments/<appointment_id>/hold", summary="Keep on schedule: no auto-cancel", responses=ACTED)
def hold(appointment_id: str, body: HoldBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@app.post(
    "/appointments/<appointment_id>/defer",
    summary="Push N weeks out (default 4); the customer is mailed",
    responses=ACTED,
)
def defer(appointment_id: str, body: DeferBody, if_match: IfMatch = None) -> Response[AppointmentView]:
    return _acted(appointment_id, body.command(), if_match)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="OpsRequests", unit=MetricUnit.Count, value=1)
    if event.get("resource") not in PUBLIC_PATHS and caller_identity(event) is None:
        return console_cors(event, unauthenticated(event))
    if event.get("resource") == DOCS_PATH:
        document_api()
    return console_cors(event, form_body(event) or app.resolve(event, context))
