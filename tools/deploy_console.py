"""Publish the dispatcher's console: ``python -m tools.deploy_console [--stack NAME] [--region REGION]``
(``make deploy-console``).

Reads the stack's outputs, uploads every file of ``console/`` to the ``ConsoleBucket`` output (with its content
type; files no longer in ``console/`` are deleted), writes ``config.json`` from the outputs, and invalidates the
CloudFront distribution so the new files are served at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# One table of content types: what the local runner serves the console with is what S3 is given.
from localdev.console_site import CONTENT_TYPES

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "console"
REQUIRED_OUTPUTS = (
    "ConsoleBucket",
    "ConsoleUrl",
    "ConsoleApiUrl",
    "UserPoolId",
    "UserPoolClientId",
    "UserPoolDomain",
    "ConsoleDistributionId",
)


def console_config(outputs: dict[str, str]) -> dict[str, Any]:
    """What the console reads from ``config.json`` in AWS: its API and how people sign in (Cognito's hosted UI,
    authorization code with PKCE; the ID token goes to the API as ``Authorization``)."""
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise ValueError(f"the stack has no output {', '.join(missing)}: deploy the template first")
    console_url = outputs["ConsoleUrl"].rstrip("/")
    return {
        "api": outputs["ConsoleApiUrl"].rstrip("/"),
        "signIn": "cognito",
        "cognito": {
            "domain": f"https://{outputs['UserPoolDomain']}",
            "clientId": outputs["UserPoolClientId"],
            "userPoolId": outputs["UserPoolId"],
            "redirectUri": f"{console_url}/",
            "logoutUri": f"{console_url}/",
            "scopes": ["openid", "email"],
        },
    }


def files_of(root: Path) -> dict[str, Path]:
    """The console's files by object key; its own ``config.json`` (a local one) is never uploaded."""
    found = {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*")) if path.is_file()}
    found.pop("config.json", None)
    return {key: path for key, path in found.items() if not any(part.startswith(".") for part in key.split("/"))}


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")


def _outputs(session: Any, stack: str) -> dict[str, str]:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def deploy(stack: str, region: str | None) -> None:  # pragma: no cover - talks to AWS
    import time

    import boto3

    session = boto3.Session(region_name=region)
    outputs = _outputs(session, stack)
    config = console_config(outputs)
    bucket = outputs["ConsoleBucket"]
    s3 = session.client("s3")
    files = files_of(CONSOLE)
    for key, path in files.items():
        cache = "no-cache" if key.endswith(".html") else "max-age=300"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type(key), CacheControl=cache)
        print(f"uploaded {key}")
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config, indent=2).encode(),
        ContentType="application/json",
        CacheControl="no-cache",
    )
    print("wrote config.json")
    stale: list[dict[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [
            {"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] not in files and o["Key"] != "config.json"
        ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stale[start : start + 1000]})
    for gone in stale:
        print(f"deleted {gone['Key']}")
    session.client("cloudfront").create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time())},
    )
    print(f"the console: {outputs['ConsoleUrl']}/")


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - talks to AWS
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_console", description=__doc__)
    parser.add_argument("--stack", default="appointment-desk", help="the stack's name (samconfig.toml's stack_name)")
    parser.add_argument("--region", default=None, help="the stack's region (default: your AWS configuration's)")
    arguments = parser.parse_args(argv)
    try:
        deploy(arguments.stack, arguments.region)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
