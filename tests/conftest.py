"""Test-wide setup: AWS never reachable for real, and the same fake credentials everywhere."""

from __future__ import annotations

import os

# Set before any test module imports boto3: clients read these when they are built.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # botocore >= 1.44 routes some calls to account-id endpoints that moto does not serve.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # Metrics stay on (their EMF lines go to the captured stdout): Powertools 3.37 never clears the
        # metric set when POWERTOOLS_METRICS_DISABLED is set, so a long run would overflow it.
        # The namespace is read when the shared Metrics is built at import, as in Lambda.
        "POWERTOOLS_METRICS_NAMESPACE": "AppointmentDesk",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
