"""Least privilege: each function's role grants exactly the AWS actions its code calls, on the stack's own
resources, and nothing on ``*`` that AWS would let us scope.

The template is read after the SAM transform (``tools.template_check.translate``), so the policies SAM
generates (policy templates, the managed policies it attaches for event sources, dead-letter queue
statements) are judged too, not only what ``template.yaml`` spells out. ``ALLOWED`` is the table: per
function, each (action, resource) it may have and why its code needs it. A grant not in the table fails,
and so does an entry of the table no longer granted (the table is the documentation: docs/reliability.md
has it as the threat model's IAM table). ``tests/local/test_log_hygiene.py`` records the calls the
functions make while the product runs, and checks each against this table.

Resources are written as the template names them after the transform: ``Table.Arn`` for
``!GetAtt Table.Arn``, ``Secret`` for ``!Ref Secret``, and the text of a ``!Sub``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from localdev.template import TEMPLATE
from tools.template_check import translate

TABLE = "AppointmentsTable.Arn"
INDEXES = "${AppointmentsTable.Arn}/index/*"
STREAM = "AppointmentsTable.StreamArn"
EVENT_QUEUE = "EventQueue.Arn"
WEBHOOK_SECRETS = "WebhookSecrets"
PSA_CREDENTIALS = "PsaCredentials"
BUS = "AppointmentEventBus.Arn"
SES_IDENTITIES = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"
SES_CONFIGURATION_SET = (
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${MailConfigurationSet}"
)
ANY = "*"

# SES v2 SendEmail with raw MIME content (every mail: it may carry an .ics part) is authorised as both
# ses:SendEmail and ses:SendRawEmail, on the sending identity and on the configuration set.
_SES = {
    ("ses:SendEmail", SES_IDENTITIES): "SES v2 SendEmail: the From identity (and, in the sandbox, the recipient's)",
    ("ses:SendEmail", SES_CONFIGURATION_SET): "SES v2 SendEmail names the stack's configuration set",
    ("ses:SendRawEmail", SES_IDENTITIES): "SendEmail with Raw content is also authorised as SendRawEmail",
    ("ses:SendRawEmail", SES_CONFIGURATION_SET): "SendEmail with Raw content, through the configuration set",
}

# Function -> (action, resource) -> why the code needs it. TransactWriteItems has no IAM action of its
# own: each item is authorised as PutItem / UpdateItem / DeleteItem / ConditionCheckItem.
ALLOWED: dict[str, dict[tuple[str, str], str]] = {
    "WebhookIngressFunction": {
        ("sqs:SendMessage", EVENT_QUEUE): "SqsEventQueue.send: SendMessageBatch of the parsed events",
        ("secretsmanager:GetSecretValue", WEBHOOK_SECRETS): "the sources' signing secrets",
    },
    "OpsApiFunction": {
        ("dynamodb:GetItem", TABLE): "get an appointment, find an external id; the sweep's alert claim",
        ("dynamodb:BatchGetItem", TABLE): "GET /unmatched reads the waiting events the due index lists",
        ("dynamodb:Query", TABLE): "load an appointment with history and mails; a ticket's appointments",
        ("dynamodb:Query", INDEXES): "by_day for lists and /attention, due for GET /unmatched and /checks/run",
        ("dynamodb:PutItem", TABLE): "every action's transaction (appointment, history, mail, refs)",
        ("dynamodb:UpdateItem", TABLE): "/checks/run: mail and alert claims, finish and release; a failed mail",
        ("dynamodb:DeleteItem", TABLE): "a ticket unlinked (transaction); /checks/run drops a stale alert",
        **_SES,
    },
    "EventProcessorFunction": {
        ("sqs:ReceiveMessage", EVENT_QUEUE): "Lambda's event source mapping polls with the function's role",
        ("sqs:DeleteMessage", EVENT_QUEUE): "the event source mapping deletes what succeeded",
        ("sqs:GetQueueAttributes", EVENT_QUEUE): "the event source mapping reads the queue's settings",
        ("dynamodb:GetItem", TABLE): "an appointment; an external id's appointment",
        ("dynamodb:Query", TABLE): "load an appointment; a ticket's appointments; events waiting for a booking",
        ("dynamodb:PutItem", TABLE): "the change's transaction; an event kept waiting and its alert",
        ("dynamodb:UpdateItem", TABLE): "AppointmentRetentionDays: a moved end re-dates the older items' expires_at",
        (
            "dynamodb:DeleteItem",
            TABLE,
        ): "the transaction releases waiting events, unlinks a ticket, absorbs a duplicate",
    },
    "ScheduledChecksFunction": {
        ("dynamodb:GetItem", TABLE): "re-reads each due appointment; an alert's waiting event",
        ("dynamodb:Query", INDEXES): "the due index, one Query per shard",
        ("dynamodb:PutItem", TABLE): "each rule's transaction (appointment, history, mail)",
        ("dynamodb:UpdateItem", TABLE): "mail and alert claims, finish, release; a failed mail (transaction)",
        ("dynamodb:DeleteItem", TABLE): "an unmatched alert whose event found its booking",
        **_SES,
    },
    "TimeZestPollerFunction": {
        ("dynamodb:GetItem", TABLE): "its cursor item (POLL#timezest only, by condition)",
        ("dynamodb:PutItem", TABLE): "its cursor item, conditionally replaced (POLL#timezest only)",
        ("sqs:SendMessage", EVENT_QUEUE): "the changed scheduling requests' events, as the webhooks queue them",
        ("secretsmanager:GetSecretValue", WEBHOOK_SECRETS): 'the TimeZest API key (its "timezest" entry)',
    },
    "OutboxRelayFunction": {
        ("dynamodb:DescribeStream", STREAM): "Lambda's event source mapping reads the stream with the function's role",
        ("dynamodb:GetRecords", STREAM): "the event source mapping",
        ("dynamodb:GetShardIterator", STREAM): "the event source mapping",
        ("dynamodb:ListStreams", ANY): "the event source mapping; ListStreams has no resource type (only *)",
        ("sqs:SendMessage", "OutboxRelayDeadLetterQueue.Arn"): "the mapping's OnFailure destination",
        ("dynamodb:GetItem", TABLE): "the mail's appointment",
        ("dynamodb:PutItem", TABLE): "a failed mail's history entry (transaction)",
        ("dynamodb:UpdateItem", TABLE): "claim, finish, release a mail; mark and unmark a history entry published",
        ("events:PutEvents", BUS): "each history entry as a domain event",
        **_SES,
    },
    "MailFeedbackFunction": {
        ("dynamodb:Query", TABLE): "load the mail's appointment",
        ("dynamodb:PutItem", TABLE): "the mail_bounced history entry and ops alert (transaction)",
        ("sqs:SendMessage", "MailFeedbackDeadLetterQueue.Arn"): "SAM's DeadLetterQueue: Lambda's async DLQ",
    },
    "PsaWritebackFunction": {
        ("dynamodb:Query", TABLE): "load the event's appointment",
        ("dynamodb:PutItem", TABLE): "psa_written / psa_write_failed in history, the failure's ops alert",
        ("secretsmanager:GetSecretValue", PSA_CREDENTIALS): "the PSA API credentials",
        ("sqs:SendMessage", "PsaWritebackDeadLetterQueue.Arn"): "SAM's DeadLetterQueue: Lambda's async DLQ",
    },
}

# AWS managed policies a function role may carry, and why each is acceptable. Nothing else: SAM's event
# source policies (AWSLambdaSQSQueueExecutionRole, AWSLambdaDynamoDBExecutionRole) grant on "*" and are
# replaced by the functions' own roles above.
MANAGED: dict[str, str] = {
    "service-role/AWSLambdaBasicExecutionRole": (
        "logs:CreateLogGroup/CreateLogStream/PutLogEvents on *: the log group is named after the generated "
        "function name, which the function's own role cannot name (circular dependency); writes only"
    ),
    "AWSXrayWriteOnlyAccess": (
        "xray:PutTraceSegments/PutTelemetryRecords/GetSampling*: X-Ray has no resource-level permissions, "
        "AWS requires Resource *"
    ),
}

# Resource "*" allowed only here: (function, action) -> why AWS requires it.
ANY_RESOURCE_EXCEPTIONS = {
    ("OutboxRelayFunction", "dynamodb:ListStreams"): "ListStreams supports no resource type",
}


@cache
def transformed() -> dict[str, Any]:
    return translate(TEMPLATE.read_text())


def _name(expression: Any) -> str:
    """A resource expression as text: ``X.Arn`` for GetAtt, ``X`` for Ref, the string of a Sub."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and len(expression) == 1:
        [(function, argument)] = expression.items()
        if function == "Fn::GetAtt":
            return ".".join(argument) if isinstance(argument, list) else str(argument)
        if function == "Ref":
            return str(argument)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            for key, value in variables.items():
                text = text.replace("${" + key + "}", "${" + _name(value) + "}")
            return str(text)
    raise AssertionError(f"a resource expression this test cannot name: {expression!r}")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_roles() -> dict[str, str]:
    """Each Lambda function of the stack -> the logical id of its execution role."""
    roles = {}
    for logical_id, resource in transformed()["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{logical_id}: its role is not in the stack"
            roles[logical_id] = role["Fn::GetAtt"][0]
    return roles


def statements(role: str) -> list[dict[str, Any]]:
    properties = transformed()["Resources"][role]["Properties"]
    found: list[dict[str, Any]] = []
    for policy in properties.get("Policies") or []:
        found += _listed(policy["PolicyDocument"]["Statement"])
    return found


def grants(role: str) -> set[tuple[str, str]]:
    granted = set()
    for statement in statements(role):
        for action in _listed(statement["Action"]):
            for resource in _listed(statement["Resource"]):
                granted.add((action, _name(resource)))
    return granted


def managed_policies(role: str) -> list[str]:
    arns = transformed()["Resources"][role]["Properties"].get("ManagedPolicyArns") or []
    return [_name(arn).split(":policy/", 1)[1] for arn in arns]


def test_every_function_has_a_row_in_the_table() -> None:
    assert sorted(function_roles()) == sorted(ALLOWED)


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_each_statement_allows_plainly(function: str) -> None:
    for statement in statements(function_roles()[function]):
        assert statement["Effect"] == "Allow", statement
        assert {"NotAction", "NotResource", "Principal"}.isdisjoint(statement), statement
        assert "Action" in statement and "Resource" in statement, statement


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_no_wildcard_action(function: str) -> None:
    actions = [action for action, _ in grants(function_roles()[function])]
    assert [a for a in actions if "*" in a] == []


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_no_resource_star_but_where_aws_requires_it(function: str) -> None:
    unscoped = {action for action, resource in grants(function_roles()[function]) if resource == ANY}
    assert unscoped == {action for (owner, action) in ANY_RESOURCE_EXCEPTIONS if owner == function}


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_the_role_grants_exactly_the_table(function: str) -> None:
    granted = grants(function_roles()[function])
    allowed = set(ALLOWED[function])
    assert sorted(granted - allowed) == [], "granted but not in the table (not called, or not explained)"
    assert sorted(allowed - granted) == [], "in the table but no longer granted: update the table"


@pytest.mark.parametrize("function", sorted(ALLOWED))
def test_only_the_documented_managed_policies(function: str) -> None:
    assert set(managed_policies(function_roles()[function])) <= set(MANAGED)


def test_every_reason_is_written() -> None:
    for function, rows in ALLOWED.items():
        assert all(reason.strip() for reason in rows.values()), function


def test_only_lambda_assumes_a_function_role() -> None:
    for role in set(function_roles().values()):
        document = transformed()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        principals = [s["Principal"] for s in _listed(document["Statement"])]
        assert principals == [{"Service": ["lambda.amazonaws.com"]}] or principals == [
            {"Service": "lambda.amazonaws.com"}
        ], role


def test_schedules_may_only_invoke_their_own_function() -> None:
    roles = {
        logical_id: resource
        for logical_id, resource in transformed()["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id not in set(function_roles().values())
    }
    for logical_id, role in roles.items():
        for policy in role["Properties"].get("Policies") or []:
            for statement in _listed(policy["PolicyDocument"]["Statement"]):
                assert _listed(statement["Action"]) == ["lambda:InvokeFunction"], logical_id
                [target] = _listed(statement["Resource"])
                assert logical_id.startswith(_name(target).removesuffix(".Arn")), logical_id
