"""template.yaml: lint-clean, no dangling Refs after the SAM transform, and in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from appointments.config import Settings
from localdev.template import TEMPLATE, load_template, resources_of_type
from tools.template_check import findings

ROOT = TEMPLATE.parent
TEXT = TEMPLATE.read_text()


def test_cfn_lint_finds_nothing() -> None:
    matches = lint(TEXT, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_the_transformed_template_has_no_dangling_refs() -> None:
    assert findings(TEXT) == []


def test_the_transform_check_catches_a_ref_plain_lint_would_miss() -> None:
    # Given a function whose environment and policy name a table that does not exist
    broken = TEXT.replace(
        "\nOutputs:",
        """
  ProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/probe/
      Handler: app.lambda_handler
      Environment:
        Variables:
          OTHER_TABLE: !Ref MissingTable
      Policies:
        - DynamoDBCrudPolicy: {TableName: !Ref MissingTable}

Outputs:""",
    )
    # Then the check reports it
    problems = findings(broken)
    assert problems
    assert all("MissingTable" in p for p in problems)


def test_every_global_environment_variable_is_a_setting_and_every_required_setting_is_set() -> None:
    template = load_template()
    variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    aliases = {field.alias for field in Settings.model_fields.values()}
    required = {field.alias for field in Settings.model_fields.values() if field.is_required()}
    assert {v for v in variables if not v.startswith("POWERTOOLS_")} <= aliases
    assert required <= variables


def test_every_parameter_is_used() -> None:
    template = load_template()
    body = TEXT.split("\nResources:", 1)[1] + TEXT.split("\nGlobals:", 1)[1]
    unused = [name for name in template["Parameters"] if not re.search(rf"!Ref {name}\b", body)]
    assert unused == []


def test_functions_run_python_3_13_on_arm64_with_tracing() -> None:
    function = load_template()["Globals"]["Function"]
    assert (function["Runtime"], function["Architectures"], function["Tracing"]) == ("python3.13", ["arm64"], "Active")


@pytest.mark.parametrize("logical_id", list(resources_of_type(load_template(), "AWS::Serverless::LayerVersion")))
def test_each_layer_holds_its_package_and_pinned_requirements(logical_id: str) -> None:
    layer = resources_of_type(load_template(), "AWS::Serverless::LayerVersion")[logical_id]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "appointments" / "__init__.py").is_file()
    requirements = [line.split("#")[0].strip() for line in (content / "requirements.txt").read_text().splitlines()]
    pins = [line for line in requirements if line]
    assert pins
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.\-]*", pin) for pin in pins), pins
    assert layer["Metadata"]["BuildMethod"] == "python3.13"


def test_the_dev_environment_installs_the_layer_pins() -> None:
    dev = (ROOT / "requirements" / "dev.txt").read_text()
    assert "-r ../layers/core/requirements.txt" in dev
    assert Path(ROOT / "layers" / "core" / "requirements.txt").is_file()


def test_the_local_runner_reads_each_functions_events_from_the_template() -> None:
    from localdev.template import functions

    specs = {spec.logical_id: spec for spec in functions(load_template())}

    [webhook] = specs["WebhookIngressFunction"].routes
    assert (webhook.method, webhook.path, webhook.api, webhook.stage) == (
        "POST",
        "/webhooks/{source}",
        "WebhookApi",
        "v1",
    )
    assert webhook.iam_auth is False  # the signature is the webhooks' only auth
    [queue] = specs["EventProcessorFunction"].subscriptions
    assert (queue.queue, queue.batch_size, queue.reports_item_failures) == ("EventQueue", 10, True)
    assert specs["WebhookIngressFunction"].timeout == 8


def test_the_ops_api_is_iam_signed_and_refuses_in_its_own_error_shape() -> None:
    import json

    properties = load_template()["Resources"]["OpsApi"]["Properties"]
    assert properties["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    for name, response in properties["GatewayResponses"].items():
        template = response["ResponseTemplates"]["application/json"]
        rendered = template.replace("$context.error.messageString", '"Forbidden"').replace("$context.requestId", "r1")
        body = json.loads(rendered)
        assert set(body) == {"error", "request_id"}, name
        assert set(body["error"]) == {"code", "message", "details"}, name


def test_webhooks_and_ops_never_share_an_api() -> None:
    from localdev.template import functions

    routes = [route for spec in functions(load_template()) for route in spec.routes]
    assert {route.api for route in routes if route.path.startswith("/webhooks")} == {"WebhookApi"}
    assert all(not route.iam_auth for route in routes if route.api == "WebhookApi")
    ops = [route for route in routes if route.api == "OpsApi"]
    # The documentation and the root that redirects to it alone are public.
    assert all(route.iam_auth for route in ops if route.path not in ("/docs", "/"))
    assert not any(route.iam_auth for route in ops if route.path in ("/docs", "/"))


def test_docs_events_lists_every_history_action_as_an_event_type() -> None:
    from appointments.domain.history import Action, Record

    document = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    missing = [a.value for a in (*Action, *Record) if f"`appointment.{a.value}`" not in document]
    assert missing == []


def test_bounces_complaints_and_rejects_of_every_mail_reach_the_mail_feedback_function() -> None:
    from localdev.template import functions, ses_event_destinations

    template = load_template()
    resources = template["Resources"]
    # Every function sends through the product's configuration set
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["MAIL_CONFIGURATION_SET"] == {"Ref": "MailConfigurationSet"}
    # whose event destination publishes what a dispatcher must know to the feedback topic
    [destination] = ses_event_destinations(template)
    assert (destination.configuration_set, destination.topic) == ("local-mail", "MailFeedbackTopic")
    assert destination.event_types == {"bounce", "complaint", "reject"}
    # which SES may publish to for that configuration set only
    [statement] = resources["MailFeedbackTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Action"]) == ({"Service": "ses.amazonaws.com"}, "sns:Publish")
    assert (
        "configuration-set/${MailConfigurationSet}"
        in statement["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    )
    # and the function reads, keeping what it gives up on
    spec = {s.logical_id: s for s in functions(template)}["MailFeedbackFunction"]
    assert [topic.topic for topic in spec.topics] == ["MailFeedbackTopic"]
    assert spec.dead_letter_queue == "MailFeedbackDeadLetterQueue"
