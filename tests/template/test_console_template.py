"""template.yaml: the console's sign-in, API and hosting are locked down the way docs/deploying.md says."""

from __future__ import annotations

from typing import Any

from localdev.console_site import CONTENT_SECURITY_POLICY
from localdev.template import functions, load_template

RESOURCES: dict[str, Any] = load_template()["Resources"]


def props(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = RESOURCES[logical_id]["Properties"]
    return properties


def test_people_sign_in_with_their_email_admin_created_strong_passwords_optional_totp() -> None:
    pool = props("ConsoleUserPool")
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert (pool["MfaConfiguration"], pool["EnabledMfas"]) == ("OPTIONAL", ["SOFTWARE_TOKEN_MFA"])
    password = pool["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 12
    assert all(password[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols"))


def test_the_console_client_uses_the_code_flow_without_a_secret() -> None:
    client = props("ConsoleUserPoolClient")
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert "implicit" not in client["AllowedOAuthFlows"]


def test_the_console_api_fronts_the_ops_function_with_cognito_and_ops_keeps_iam() -> None:
    api = props("ConsoleApi")
    default = api["Auth"]["DefaultAuthorizer"]
    assert "UserPoolArn" in api["Auth"]["Authorizers"][default]
    assert props("OpsApi")["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    routes = [route for spec in functions(load_template()) for route in spec.routes if route.api == "ConsoleApi"]
    assert {(route.function, route.path, route.method) for route in routes} == {
        ("OpsApiFunction", "/{proxy+}", "ANY"),
        ("OpsApiFunction", "/", "ANY"),
    }
    assert all(route.cognito_auth and not route.iam_auth for route in routes)


def test_the_bucket_is_private_encrypted_versioned_and_read_only_by_cloudfront() -> None:
    bucket = props("ConsoleBucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    origin = props("ConsoleDistribution")["DistributionConfig"]["Origins"][0]
    assert "OriginAccessControlId" in origin
    assert props("ConsoleDistribution")["DistributionConfig"]["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == (
        "redirect-to-https"
    )


def test_cloudfront_sets_the_strict_csp_hsts_nosniff_and_referrer_policy() -> None:
    headers = props("ConsoleHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"][0]
    for directive in CONTENT_SECURITY_POLICY.split("; "):
        if not directive.startswith("connect-src"):
            assert directive in csp
    assert "connect-src 'self' https://*.execute-api.${AWS::Region}.amazonaws.com https://" in csp
    assert "'unsafe-inline'" not in csp
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
