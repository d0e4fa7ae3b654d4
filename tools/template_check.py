"""Lint the template after the SAM transform, so a dangling ``!Ref`` inside a SAM resource is caught.

cfn-lint 1.54+ no longer runs the full SAM transform: a ``!Ref`` to a missing resource in a
function's environment or policy template passes plain ``cfn-lint template.yaml``. Translating the
template with aws-sam-translator first (offline: no IAM look-ups) and linting the result catches it.

Usage: ``python -m tools.template_check template.yaml`` (exit 1 and the findings when it fails).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

_LOCAL_URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


class _NoNetworkPolicyLoader:
    """The translator asks IAM for managed policy ARNs; we name none, so nothing needs looking up."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template_text: str) -> dict[str, Any]:
    template: dict[str, Any] = copy.deepcopy(yaml_parse(template_text))
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in _LOCAL_URI_PROPERTIES:
            value = properties.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                # Local paths are uploaded by sam package; the translator only accepts S3 URIs.
                properties[key] = f"s3://local-artifacts/{value.strip('/')}"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated: dict[str, Any] = transform(template, {}, _NoNetworkPolicyLoader())
    return translated


def findings(template_text: str) -> list[str]:
    """cfn-lint errors of the translated template, one line each (empty when clean).

    Warnings are left to the plain cfn-lint run on the source template; here they would only restate
    the transform (a parameter used only in Globals looks unused until a function takes it).
    """
    translated = translate(template_text)
    matches = lint(json.dumps(translated), config=ManualArgs(regions=["us-east-1"]))
    return [
        f"{m.rule.id} {m.message} ({'/'.join(str(p) for p in m.path)})" for m in matches if m.rule.id.startswith("E")
    ]


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "template.yaml")
    problems = findings(path.read_text())
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"{path}: clean after the SAM transform")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
