"""make deploy-console: the config.json the console reads in AWS, and which files go to the bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tools.deploy_console import console_config, content_type, files_of

if TYPE_CHECKING:
    from pathlib import Path

OUTPUTS = {
    "ConsoleBucket": "desk-consolebucket-1a2b3c",
    "ConsoleUrl": "https://d111111abcdef8.cloudfront.net",
    "ConsoleApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1",
    "UserPoolId": "eu-west-1_AbCdEf123",
    "UserPoolClientId": "3n4b5urk1ft4fl3mg5e7ecqf7",
    "UserPoolDomain": "appointment-desk-123456789012.auth.eu-west-1.amazoncognito.com",
    "ConsoleDistributionId": "E2QWRUHAPOMQZL",
}


def test_config_json_names_the_console_api_and_the_hosted_sign_in() -> None:
    assert console_config(OUTPUTS) == {
        "api": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1",
        "signIn": "cognito",
        "cognito": {
            "domain": "https://appointment-desk-123456789012.auth.eu-west-1.amazoncognito.com",
            "clientId": "3n4b5urk1ft4fl3mg5e7ecqf7",
            "userPoolId": "eu-west-1_AbCdEf123",
            "redirectUri": "https://d111111abcdef8.cloudfront.net/",
            "logoutUri": "https://d111111abcdef8.cloudfront.net/",
            "scopes": ["openid", "email"],
        },
    }


def test_a_stack_without_the_console_outputs_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="UserPoolClientId"):
        console_config({k: v for k, v in OUTPUTS.items() if k != "UserPoolClientId"})


def test_every_console_file_but_a_local_config_and_hidden_files_is_uploaded(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    for name in ("index.html", "console.js", "console.css", "vendor/htmx.min.js", "config.json", ".DS_Store"):
        (tmp_path / name).write_text("x")
    assert sorted(files_of(tmp_path)) == ["console.css", "console.js", "index.html", "vendor/htmx.min.js"]
    assert [content_type(k) for k in ("index.html", "a.js", "a.css", "a.bin")] == [
        "text/html; charset=utf-8",
        "text/javascript; charset=utf-8",
        "text/css; charset=utf-8",
        "application/octet-stream",
    ]
