"""Read ``template.yaml``: the resources tests and the local runner create in moto.

The template is parsed with cfn-lint's decoder (it understands ``!Ref``/``!Sub`` short forms), and
only the properties moto needs are taken. Anything this module cannot reproduce is refused loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

_TABLE_PROPERTIES = frozenset(
    {
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "TimeToLiveSpecification",
        "PointInTimeRecoverySpecification",
        "SSESpecification",
        "StreamSpecification",
        "TableName",
    }
)


class TemplateError(Exception):
    """The template has something the local tooling cannot reproduce; the message says what and where."""


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    create_request: dict[str, Any]
    ttl_attribute: str | None


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    template, matches = decode(str(path))
    if template is None or matches:
        problems = "; ".join(str(m) for m in matches) or "empty template"
        raise TemplateError(f"{path}: cannot parse: {problems}")
    return dict(template)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def dynamodb_tables(template: dict[str, Any]) -> list[TableSpec]:
    """One ``create_table`` request per ``AWS::DynamoDB::Table``, named by its logical id."""
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = resource.get("Properties", {})
        unknown = set(properties) - _TABLE_PROPERTIES
        if unknown:
            raise TemplateError(f"Resources.{logical_id}: unsupported properties {sorted(unknown)}")
        request: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                request[key] = properties[key]
        if "StreamSpecification" in properties:
            request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        ttl = properties.get("TimeToLiveSpecification", {})
        ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
        specs.append(TableSpec(logical_id=logical_id, create_request=request, ttl_attribute=ttl_attribute))
    return specs


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    attributes: dict[str, str]
    dead_letter_queue: str | None  # logical id of the queue it redrives to
    max_receive_count: int | None

    @property
    def name(self) -> str:
        return f"{self.logical_id}.fifo" if self.attributes.get("FifoQueue") == "true" else self.logical_id


@dataclass(frozen=True)
class ApiRoute:
    """An ``Api`` event: a method and path of a REST API, served by one function."""

    function: str
    event: str
    api: str  # logical id of the AWS::Serverless::Api (ServerlessRestApi when implicit)
    stage: str
    path: str  # API Gateway's resource template, e.g. /webhooks/{source}
    method: str  # upper case, or ANY
    iam_auth: bool  # AWS_IAM on the route or as the API's default authorizer
    binary_media_types: tuple[str, ...]
    # A Cognito user pool authorizer (the console's API): not served as a route of its own locally; the
    # runner takes a dev sign-in's token on the IAM routes instead and passes its email as the claims.
    cognito_auth: bool = False


@dataclass(frozen=True)
class QueueSubscription:
    """An ``SQS`` event: Lambda's event source mapping from a queue to a function."""

    function: str
    event: str
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int
    reports_item_failures: bool


@dataclass(frozen=True)
class ScheduledInvocation:
    """A ``Schedule`` (EventBridge rule) or ``ScheduleV2`` (EventBridge Scheduler) event."""

    function: str
    event: str
    kind: str  # Schedule | ScheduleV2
    expression: str
    timezone: str
    input: str | None  # the JSON text delivered instead of the default event, if set
    state_parameter: str | None = None  # ``State: !Ref <parameter>``: on or off by that parameter's value


@dataclass(frozen=True)
class StreamSubscription:
    """A ``DynamoDB`` event: Lambda's event source mapping from a table's stream to a function."""

    function: str
    event: str
    table: str  # logical id of the AWS::DynamoDB::Table whose stream it reads
    starting_position: str  # TRIM_HORIZON | LATEST
    batch_size: int
    filters: tuple[str, ...]  # FilterCriteria patterns (JSON text): a record is delivered if any matches
    reports_item_failures: bool
    maximum_retry_attempts: int  # -1: until the record expires (AWS's default)
    bisect_on_error: bool
    on_failure_queue: str | None  # logical id of the AWS::SQS::Queue of DestinationConfig.OnFailure


@dataclass(frozen=True)
class BusRule:
    """An ``EventBridgeRule`` event: a rule on an event bus whose target is the function."""

    function: str
    event: str
    bus: str  # the bus's name: "default", or the Name of one of the template's AWS::Events::EventBus
    pattern: str  # the rule's event pattern (JSON text)
    input: str | None  # the JSON text delivered instead of the event, if set


@dataclass(frozen=True)
class TopicSubscription:
    """An ``SNS`` event: the function subscribed to a topic; SNS invokes it asynchronously, once per message."""

    function: str
    event: str
    topic: str  # logical id of the AWS::SNS::Topic
    filter_policy: str | None  # the subscription's FilterPolicy (JSON text), if any
    filter_policy_scope: str  # MessageAttributes (SNS's default) or MessageBody


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    environment: dict[str, Any]
    memory_mb: int = 128
    routes: tuple[ApiRoute, ...] = ()
    subscriptions: tuple[QueueSubscription, ...] = ()
    schedules: tuple[ScheduledInvocation, ...] = ()
    streams: tuple[StreamSubscription, ...] = ()
    rules: tuple[BusRule, ...] = ()
    topics: tuple[TopicSubscription, ...] = ()
    async_retries: int = 2  # EventInvokeConfig.MaximumRetryAttempts: retries of an asynchronous invocation
    dead_letter_queue: str | None = None  # logical id of the SQS queue of the function's DeadLetterQueue


_QUEUE_ATTRIBUTES = {
    "FifoQueue": "FifoQueue",
    "ContentBasedDeduplication": "ContentBasedDeduplication",
    "DeduplicationScope": "DeduplicationScope",
    "FifoThroughputLimit": "FifoThroughputLimit",
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
}


def sqs_queues(template: dict[str, Any]) -> list[QueueSpec]:
    """Queues in creation order: dead-letter queues before the queues that redrive to them."""
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::SQS::Queue").items():
        properties = resource.get("Properties", {})
        attributes = {
            attribute: str(properties[key]).lower() if isinstance(properties[key], bool) else str(properties[key])
            for key, attribute in _QUEUE_ATTRIBUTES.items()
            if key in properties
        }
        redrive = properties.get("RedrivePolicy")
        target: str | None = None
        if redrive is not None:
            arn = redrive.get("deadLetterTargetArn", {})
            getatt = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
            if not getatt or getatt[1] != "Arn":
                raise TemplateError(
                    f"Resources.{logical_id}.RedrivePolicy: deadLetterTargetArn must be !GetAtt <Queue>.Arn"
                )
            target = getatt[0]
        specs.append(
            QueueSpec(
                logical_id=logical_id,
                attributes=attributes,
                dead_letter_queue=target,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )
        )
    return sorted(specs, key=lambda spec: spec.dead_letter_queue is not None)


def secrets(template: dict[str, Any]) -> list[str]:
    return list(resources_of_type(template, "AWS::SecretsManager::Secret"))


def functions(template: dict[str, Any], *, root: Path | None = None) -> list[FunctionSpec]:
    """Every function with the Globals merged in, as SAM merges them, and its events.

    ``root`` is the folder CodeUri paths are relative to (the template's own folder).
    """
    base = root or TEMPLATE.parent
    defaults = template.get("Globals", {}).get("Function", {})
    specs = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = resource.get("Properties", {})
        environment = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        events = _events(template, logical_id, properties.get("Events", {}))
        invoke_config = properties.get("EventInvokeConfig", defaults.get("EventInvokeConfig", {}))
        dead_letter = properties.get("DeadLetterQueue", defaults.get("DeadLetterQueue"))
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=base / properties["CodeUri"],
                handler=properties["Handler"],
                timeout=int(properties.get("Timeout", defaults.get("Timeout", 3))),
                environment=environment,
                memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
                routes=tuple(events.routes),
                subscriptions=tuple(events.subscriptions),
                schedules=tuple(events.schedules),
                streams=tuple(events.streams),
                rules=tuple(events.rules),
                topics=tuple(events.topics),
                async_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
                dead_letter_queue=_dead_letter_queue(
                    template, dead_letter, f"Resources.{logical_id}.Properties.DeadLetterQueue"
                ),
            )
        )
    return specs


_IMPLICIT_API = "ServerlessRestApi"


@dataclass
class _FunctionEvents:
    routes: list[ApiRoute] = field(default_factory=list)
    subscriptions: list[QueueSubscription] = field(default_factory=list)
    schedules: list[ScheduledInvocation] = field(default_factory=list)
    streams: list[StreamSubscription] = field(default_factory=list)
    rules: list[BusRule] = field(default_factory=list)
    topics: list[TopicSubscription] = field(default_factory=list)


_EMULATED_EVENTS = "Api, SQS, Schedule, ScheduleV2, DynamoDB, EventBridgeRule, SNS"


def _events(template: dict[str, Any], function: str, events: dict[str, Any]) -> _FunctionEvents:
    found = _FunctionEvents()
    for name, event in events.items():
        where = f"Resources.{function}.Properties.Events.{name}"
        kind, properties = event.get("Type"), event.get("Properties", {})
        if kind == "Api":
            found.routes.append(_route(template, function, name, properties, where))
        elif kind == "SQS":
            found.subscriptions.append(_subscription(function, name, properties, where))
        elif kind in ("Schedule", "ScheduleV2"):
            schedule = _schedule(function, name, kind, properties, where)
            if schedule is not None:
                found.schedules.append(schedule)
        elif kind == "DynamoDB":
            stream = _stream(template, function, name, properties, where)
            if stream is not None:
                found.streams.append(stream)
        elif kind == "EventBridgeRule":
            rule = _bus_rule(template, function, name, properties, where)
            if rule is not None:
                found.rules.append(rule)
        elif kind == "SNS":
            found.topics.append(_topic_subscription(template, function, name, properties, where))
        else:
            raise TemplateError(f"{where}: event type {kind!r} is not emulated ({_EMULATED_EVENTS} are)")
    return found


def _logical_id(value: Any, attribute: str | None, where: str) -> str:
    """The resource a ``!Ref`` (attribute None) or ``!GetAtt <id>.<attribute>`` names."""
    if attribute is None and isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return str(value["Ref"])
    getatt = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if attribute is not None and isinstance(getatt, list) and len(getatt) == 2 and getatt[1] == attribute:
        return str(getatt[0])
    wanted = "!Ref <Resource>" if attribute is None else f"!GetAtt <Resource>.{attribute}"
    raise TemplateError(f"{where}: must be {wanted}")


def _route(template: dict[str, Any], function: str, name: str, properties: dict[str, Any], where: str) -> ApiRoute:
    api = _IMPLICIT_API
    api_properties: dict[str, Any] = {}
    if "RestApiId" in properties:
        api = _logical_id(properties["RestApiId"], None, f"{where}.RestApiId")
        resource = template.get("Resources", {}).get(api, {})
        if resource.get("Type") != "AWS::Serverless::Api":
            raise TemplateError(f"{where}.RestApiId: {api} is not an AWS::Serverless::Api")
        api_properties = resource.get("Properties", {})
    for unsupported in ("RequestModel", "RequestParameters"):
        if unsupported in properties:
            raise TemplateError(f"{where}.{unsupported}: API Gateway request validation is not emulated")
    default_authorizer = api_properties.get("Auth", {}).get("DefaultAuthorizer")
    authorizer = properties.get("Auth", {}).get("Authorizer", default_authorizer)
    cognito = _is_cognito_authorizer(api_properties, authorizer)
    if authorizer not in (None, "NONE", "AWS_IAM") and not cognito:
        raise TemplateError(
            f"{where}: authorizer {authorizer!r} is not emulated (AWS_IAM, NONE and Cognito user pools are)"
        )
    path, method = properties.get("Path"), properties.get("Method")
    if not isinstance(path, str) or not path.startswith("/") or not isinstance(method, str):
        raise TemplateError(f"{where}: Path (starting with /) and Method are required")
    return ApiRoute(
        function=function,
        event=name,
        api=api,
        stage=str(api_properties.get("StageName", "Prod")),
        path=path,
        method=method.upper(),
        iam_auth=authorizer == "AWS_IAM",
        binary_media_types=tuple(str(t) for t in api_properties.get("BinaryMediaTypes", ())),
        cognito_auth=cognito,
    )


def _is_cognito_authorizer(api_properties: dict[str, Any], authorizer: Any) -> bool:
    """Whether ``authorizer`` names one of the API's Cognito user pool authorizers (``UserPoolArn``)."""
    if not isinstance(authorizer, str):
        return False
    declared = (api_properties.get("Auth", {}).get("Authorizers") or {}).get(authorizer)
    return isinstance(declared, dict) and "UserPoolArn" in declared


def _subscription(function: str, name: str, properties: dict[str, Any], where: str) -> QueueSubscription:
    for unsupported in ("FilterCriteria", "DestinationConfig"):
        if unsupported in properties:
            raise TemplateError(f"{where}.{unsupported}: not emulated by the local queue pump")
    return QueueSubscription(
        function=function,
        event=name,
        queue=_logical_id(properties.get("Queue"), "Arn", f"{where}.Queue"),
        batch_size=int(properties.get("BatchSize", 10)),
        reports_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", ()),
    )


def _schedule(
    function: str, name: str, kind: str, properties: dict[str, Any], where: str
) -> ScheduledInvocation | None:
    expression = properties.get("Schedule" if kind == "Schedule" else "ScheduleExpression")
    if not isinstance(expression, str):
        raise TemplateError(f"{where}: the schedule expression must be a literal string")
    state = properties.get("State", "ENABLED")
    if properties.get("Enabled") is False or state == "DISABLED":
        return None
    state_parameter = None
    if isinstance(state, dict):
        if set(state) != {"Ref"} or not isinstance(state["Ref"], str):
            raise TemplateError(f"{where}.State: must be ENABLED, DISABLED or a !Ref to a parameter")
        state_parameter = state["Ref"]
    text_input = properties.get("Input")
    if text_input is not None and not isinstance(text_input, str):
        raise TemplateError(f"{where}.Input: must be a literal JSON string")
    timezone = properties.get("ScheduleExpressionTimezone", "UTC")
    return ScheduledInvocation(
        function=function,
        event=name,
        kind=kind,
        expression=expression,
        timezone=str(timezone),
        input=text_input,
        state_parameter=state_parameter,
    )


# What the stream pump does with each DynamoDB event property; anything else stops the runner at start.
_STREAM_EMULATED = frozenset(
    {
        "Stream",
        "StartingPosition",
        "BatchSize",
        "FilterCriteria",
        "FunctionResponseTypes",
        "MaximumRetryAttempts",
        "BisectBatchOnFunctionError",
        "DestinationConfig",
        "Enabled",
    }
)
# Accepted and without effect locally: batches go out as soon as the pump reads them, one at a time, and
# are never old enough to expire; metrics and the filters' encryption key do not exist here.
_STREAM_IGNORED = frozenset(
    {
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "MaximumRecordAgeInSeconds",
        "MetricsConfig",
        "KmsKeyArn",
    }
)


def _stream(
    template: dict[str, Any], function: str, name: str, properties: dict[str, Any], where: str
) -> StreamSubscription | None:
    unknown = set(properties) - _STREAM_EMULATED - _STREAM_IGNORED
    if unknown:
        raise TemplateError(f"{where}: {', '.join(sorted(unknown))} not emulated by the local stream pump")
    table = _logical_id(properties.get("Stream"), "StreamArn", f"{where}.Stream")
    resource = template.get("Resources", {}).get(table, {})
    if resource.get("Type") != "AWS::DynamoDB::Table":
        raise TemplateError(f"{where}.Stream: {table} is not an AWS::DynamoDB::Table")
    if "StreamSpecification" not in resource.get("Properties", {}):
        raise TemplateError(f"{where}.Stream: {table} has no StreamSpecification, so it has no stream to read")
    position = properties.get("StartingPosition")
    if position not in ("TRIM_HORIZON", "LATEST"):
        raise TemplateError(f"{where}.StartingPosition: must be TRIM_HORIZON or LATEST, not {position!r}")
    response_types = set(properties.get("FunctionResponseTypes", ())) - {"ReportBatchItemFailures"}
    if response_types:
        raise TemplateError(f"{where}.FunctionResponseTypes: only ReportBatchItemFailures exists")
    batch_size = _integer(properties.get("BatchSize", 100), 1, 10000, f"{where}.BatchSize")
    retries = _integer(properties.get("MaximumRetryAttempts", -1), -1, 10000, f"{where}.MaximumRetryAttempts")
    if properties.get("Enabled", True) is False:
        return None
    return StreamSubscription(
        function=function,
        event=name,
        table=table,
        starting_position=position,
        batch_size=batch_size,
        filters=_filter_patterns(properties.get("FilterCriteria"), f"{where}.FilterCriteria"),
        reports_item_failures=bool(properties.get("FunctionResponseTypes")),
        maximum_retry_attempts=retries,
        bisect_on_error=properties.get("BisectBatchOnFunctionError", False) is True,
        on_failure_queue=_on_failure_queue(template, properties.get("DestinationConfig"), f"{where}.DestinationConfig"),
    )


def _integer(value: Any, low: int, high: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise TemplateError(f"{where}: must be a literal whole number")
    number = int(value)
    if not low <= number <= high:
        raise TemplateError(f"{where}: must be from {low} to {high}, not {number}")
    return number


def _filter_patterns(criteria: Any, where: str) -> tuple[str, ...]:
    if criteria is None:
        return ()
    filters = criteria.get("Filters") if isinstance(criteria, dict) else None
    if not isinstance(filters, list) or set(criteria) != {"Filters"}:
        raise TemplateError(f"{where}: must be {{Filters: [{{Pattern: '<JSON>'}}, ...]}}")
    patterns = []
    for index, item in enumerate(filters):
        pattern = item.get("Pattern") if isinstance(item, dict) else None
        if not isinstance(pattern, str):
            raise TemplateError(f"{where}.Filters[{index}].Pattern: must be a literal JSON string")
        patterns.append(pattern)
    return tuple(patterns)


def _on_failure_queue(template: dict[str, Any], config: Any, where: str) -> str | None:
    if config is None:
        return None
    on_failure = config.get("OnFailure") if isinstance(config, dict) else None
    if not isinstance(on_failure, dict) or set(config) != {"OnFailure"}:
        raise TemplateError(f"{where}: only OnFailure is emulated")
    if on_failure.get("Type", "SQS") != "SQS":
        raise TemplateError(f"{where}.OnFailure: only an SQS queue is emulated as the destination")
    queue = _logical_id(on_failure.get("Destination"), "Arn", f"{where}.OnFailure.Destination")
    if template.get("Resources", {}).get(queue, {}).get("Type") != "AWS::SQS::Queue":
        raise TemplateError(f"{where}.OnFailure.Destination: {queue} is not an AWS::SQS::Queue")
    return queue


# Accepted and without effect locally: they govern EventBridge's delivery to Lambda, which never fails here.
_RULE_PROPERTIES = frozenset(
    {"EventBusName", "Pattern", "RuleName", "State", "Input", "Target", "RetryPolicy", "DeadLetterConfig"}
)


def _bus_rule(
    template: dict[str, Any], function: str, name: str, properties: dict[str, Any], where: str
) -> BusRule | None:
    unknown = set(properties) - _RULE_PROPERTIES
    if unknown:
        raise TemplateError(f"{where}: {', '.join(sorted(unknown))} not emulated by the local event buses")
    pattern = properties.get("Pattern")
    if not isinstance(pattern, dict) or not pattern:
        raise TemplateError(f"{where}.Pattern: must be an event pattern (a mapping)")
    text_input = properties.get("Input")
    if text_input is not None and not isinstance(text_input, str):
        raise TemplateError(f"{where}.Input: must be a literal JSON string")
    bus = _bus_name(template, properties.get("EventBusName", "default"), f"{where}.EventBusName")
    if properties.get("State", "ENABLED") == "DISABLED":
        return None
    return BusRule(function=function, event=name, bus=bus, pattern=json.dumps(pattern), input=text_input)


def _bus_name(template: dict[str, Any], value: Any, where: str) -> str:
    """``default``, or the name of one of the template's buses: by ``!Ref``, ``!GetAtt <Bus>.Name`` or its name."""
    buses = event_buses(template)
    if isinstance(value, str):
        if value == "default" or value in buses.values():
            return value
        raise TemplateError(f"{where}: {value!r} is neither default nor the Name of the template's event buses")
    getatt = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    logical_id = _logical_id(value, "Name" if getatt else None, where)
    if logical_id not in buses:
        raise TemplateError(f"{where}: {logical_id} is not an AWS::Events::EventBus")
    return buses[logical_id]


# Accepted and without effect locally: the region is the runner's, and SNS's delivery to the function (what a
# subscription's RedrivePolicy catches) never fails here.
_SNS_IGNORED = frozenset({"Region", "RedrivePolicy"})


def _topic_subscription(
    template: dict[str, Any], function: str, name: str, properties: dict[str, Any], where: str
) -> TopicSubscription:
    unknown = set(properties) - {"Topic", "FilterPolicy", "FilterPolicyScope"} - _SNS_IGNORED
    if unknown:
        raise TemplateError(f"{where}: {', '.join(sorted(unknown))} not emulated by the local topics")
    topic = _logical_id(properties.get("Topic"), None, f"{where}.Topic")
    if topic not in sns_topics(template):
        raise TemplateError(f"{where}.Topic: {topic} is not an AWS::SNS::Topic")
    policy = properties.get("FilterPolicy")
    if policy is not None and (not isinstance(policy, dict) or not policy):
        raise TemplateError(f"{where}.FilterPolicy: must be a filter policy (a mapping)")
    scope = properties.get("FilterPolicyScope", "MessageAttributes")
    if scope not in ("MessageAttributes", "MessageBody"):
        raise TemplateError(f"{where}.FilterPolicyScope: must be MessageAttributes or MessageBody, not {scope!r}")
    return TopicSubscription(
        function=function,
        event=name,
        topic=topic,
        filter_policy=None if policy is None else json.dumps(policy),
        filter_policy_scope=scope,
    )


def _dead_letter_queue(template: dict[str, Any], config: Any, where: str) -> str | None:
    """The logical id of a function's ``DeadLetterQueue`` (``{Type: SQS, TargetArn: !GetAtt <Queue>.Arn}``)."""
    if config is None:
        return None
    if not isinstance(config, dict) or config.get("Type") != "SQS":
        raise TemplateError(f"{where}: only an SQS dead-letter queue (Type: SQS) is emulated")
    queue = _logical_id(config.get("TargetArn"), "Arn", f"{where}.TargetArn")
    if template.get("Resources", {}).get(queue, {}).get("Type") != "AWS::SQS::Queue":
        raise TemplateError(f"{where}.TargetArn: {queue} is not an AWS::SQS::Queue")
    return queue


def sns_topics(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → name of every standard ``AWS::SNS::Topic`` (the name defaults to the logical id)."""
    topics = {}
    for logical_id, resource in resources_of_type(template, "AWS::SNS::Topic").items():
        properties = resource.get("Properties", {})
        where = f"Resources.{logical_id}.Properties"
        if properties.get("FifoTopic") in (True, "true"):
            raise TemplateError(f"{where}.FifoTopic: FIFO topics are not emulated by the local topics")
        topics[logical_id] = _pseudo_sub(properties.get("TopicName", logical_id), f"{where}.TopicName")
    return topics


@dataclass(frozen=True)
class SesEventDestination:
    """An ``AWS::SES::ConfigurationSetEventDestination`` that publishes to an SNS topic."""

    logical_id: str
    configuration_set: str  # the configuration set's name
    name: str
    event_types: frozenset[str]  # SES's MatchingEventTypes, lower case: bounce, complaint, reject, ...
    topic: str  # logical id of the AWS::SNS::Topic


def ses_configuration_sets(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → name of every ``AWS::SES::ConfigurationSet`` (the name defaults to the logical id)."""
    return {
        logical_id: _pseudo_sub(
            resource.get("Properties", {}).get("Name", logical_id), f"Resources.{logical_id}.Properties.Name"
        )
        for logical_id, resource in resources_of_type(template, "AWS::SES::ConfigurationSet").items()
    }


def ses_event_destinations(template: dict[str, Any]) -> list[SesEventDestination]:
    """Every enabled event destination with an ``SnsDestination``; the others (CloudWatch, Firehose, EventBridge)
    publish nothing locally."""
    sets = ses_configuration_sets(template)
    found = []
    for logical_id, resource in resources_of_type(template, "AWS::SES::ConfigurationSetEventDestination").items():
        properties = resource.get("Properties", {})
        where = f"Resources.{logical_id}.Properties"
        destination = properties.get("EventDestination", {})
        sns = destination.get("SnsDestination")
        if sns is None or destination.get("Enabled", False) is not True:
            continue
        named = properties.get("ConfigurationSetName")
        if isinstance(named, str):
            configuration_set = named
        else:
            referenced = _logical_id(named, None, f"{where}.ConfigurationSetName")
            if referenced not in sets:
                raise TemplateError(f"{where}.ConfigurationSetName: {referenced} is not an AWS::SES::ConfigurationSet")
            configuration_set = sets[referenced]
        topic = _logical_id(sns.get("TopicARN"), None, f"{where}.EventDestination.SnsDestination.TopicARN")
        if topic not in sns_topics(template):
            raise TemplateError(f"{where}.EventDestination.SnsDestination.TopicARN: {topic} is not an AWS::SNS::Topic")
        found.append(
            SesEventDestination(
                logical_id=logical_id,
                configuration_set=configuration_set,
                name=str(destination.get("Name", logical_id)),
                event_types=frozenset(str(t).lower() for t in destination.get("MatchingEventTypes", ())),
                topic=topic,
            )
        )
    return found


def layer_paths(template: dict[str, Any], *, root: Path | None = None) -> list[Path]:
    """Each ``AWS::Serverless::LayerVersion``'s ContentUri: what Lambda puts on the path as /opt/python."""
    base = root or TEMPLATE.parent
    paths = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::LayerVersion").items():
        content = resource.get("Properties", {}).get("ContentUri")
        if not isinstance(content, str):
            raise TemplateError(f"Resources.{logical_id}.Properties.ContentUri: must be a local folder")
        paths.append(base / content)
    return paths


def ses_identities(template: dict[str, Any]) -> dict[str, Any]:
    """Logical id → the (unresolved) ``EmailIdentity`` of every ``AWS::SES::EmailIdentity``."""
    return {
        logical_id: resource.get("Properties", {}).get("EmailIdentity")
        for logical_id, resource in resources_of_type(template, "AWS::SES::EmailIdentity").items()
    }


def event_buses(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → name of every ``AWS::Events::EventBus`` (the name defaults to the logical id)."""
    return {
        logical_id: _pseudo_sub(
            resource.get("Properties", {}).get("Name", logical_id), f"Resources.{logical_id}.Properties.Name"
        )
        for logical_id, resource in resources_of_type(template, "AWS::Events::EventBus").items()
    }


LOCAL_STACK_NAME = "local"  # what ${AWS::StackName} is to the local tools


def _pseudo_sub(value: Any, where: str) -> str:
    """A literal, or a ``!Sub`` of pseudo parameters only (``${AWS::StackName}`` is ``local``)."""
    from localdev.resources import ACCOUNT_ID, REGION

    if isinstance(value, str):
        return value
    text = value.get("Fn::Sub") if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(text, str):
        raise TemplateError(f"{where}: must be a literal or a !Sub of pseudo parameters")
    pseudo = {
        "AWS::StackName": LOCAL_STACK_NAME,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
    }
    for name, replacement in pseudo.items():
        text = text.replace(f"${{{name}}}", replacement)
    if "${" in text:
        raise TemplateError(
            f"{where}: !Sub {value['Fn::Sub']!r} names more than the pseudo parameters {sorted(pseudo)}"
        )
    return text


def resolve(value: Any, *, physical: dict[str, str], parameters: dict[str, str], where: str) -> str:
    """A template value as a string: literals, ``Ref`` (resources and parameters) and ``Fn::Join``."""
    if isinstance(value, str | int | float | bool):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Ref" and isinstance(argument, str):
            if argument in physical:
                return physical[argument]
            if argument in parameters:
                return parameters[argument]
            raise TemplateError(f"{where}: !Ref {argument} names nothing the local tools created")
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            separator, items = argument
            if isinstance(items, dict):  # a Ref to a CommaDelimitedList parameter
                return resolve(items, physical=physical, parameters=parameters, where=where)
            return str(separator).join(resolve(i, physical=physical, parameters=parameters, where=where) for i in items)
    raise TemplateError(f"{where}: {value!r} is not a value the local tools can resolve")


def parameter_defaults(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    values = {}
    for name, parameter in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in parameter:
            values[name] = str(parameter["Default"])
        else:
            raise TemplateError(f"Parameters.{name} has no default: give it a local value")
    return values
